//! COPY and ADD: sources from the context, an inline heredoc, another
//! stage or an image, written through the stage's merged view.

use std::fs;
use std::path::{Path, PathBuf};

use crate::build::add::{add_into, AddOptions};
use crate::build::context::SourceTree;
use crate::build::copy::{copy_into, CopyOptions};
use crate::build::copy_digest::sources_digest;
use crate::build::error::StepError;
use crate::build::executor::Executor;
use crate::build::plan::find_stage;
use crate::build::stage::StageState;
use crate::build::step::{StepResult, View};
use crate::build::userdb::resolve_chown;
use crate::containerfile::{Add, Copy, CopySource, Heredoc};
use crate::digest::{Digest, Hasher};
use crate::image::created_by::{self, ContentSummary};
use crate::layer::rootfs::Rootfs;

/// Where a COPY reads from, kept mounted for the step.
enum Origin {
    Context,
    Other { view: View, label: String },
}

/// Sources split by kind, expanded.
struct Sources {
    paths: Vec<String>,
    heredocs: Vec<Heredoc>,
}

fn parse_chmod(spec: &str) -> Result<u32, StepError> {
    u32::from_str_radix(spec, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            StepError::Invalid(format!(
                "--chmod={spec}: expected an octal mode such as 0755 (symbolic modes are not supported)"
            ))
        })
}

impl Executor<'_> {
    fn expand_sources(
        &self,
        state: &StageState,
        sources: &[CopySource],
    ) -> Result<Sources, StepError> {
        let mut out = Sources {
            paths: Vec::new(),
            heredocs: Vec::new(),
        };
        for s in sources {
            match s {
                CopySource::Path(p) => out.paths.push(state.expand(p)?),
                CopySource::Heredoc(h) => {
                    let mut h = h.clone();
                    if h.expand {
                        h.content = state.expand(&h.body())?;
                        h.chomp = false;
                    }
                    out.heredocs.push(h);
                }
            }
        }
        Ok(out)
    }

    /// The tree a `--from` names: an earlier stage or an image.
    fn tree_of_from(
        &self,
        state: &StageState,
        from: &str,
        stage_index: usize,
    ) -> Result<Origin, StepError> {
        let name = state.expand(from)?;
        let (layers, label) = if let Some(i) = find_stage(&self.cf, &name, stage_index) {
            let result = self
                .stage_result(i)
                .ok_or_else(|| StepError::Invalid(format!("stage {name:?} was not built")))?;
            (result.layers.clone(), format!("stage {name:?}"))
        } else {
            let rec = self.image_by_policy(&name).map_err(|e| {
                StepError::Invalid(format!(
                    "--from={name}: no stage or image by that name: {e}"
                ))
            })?;
            (rec.layers, format!("image {name:?}"))
        };
        let view = View::mount(self.store, &layers, &self.mounts_dir)?;
        Ok(Origin::Other { view, label })
    }

    pub(crate) fn dispatch_copy(
        &self,
        state: &mut StageState,
        copy: &Copy,
    ) -> Result<(), StepError> {
        let sources = self.expand_sources(state, &copy.sources)?;
        let dest = state.expand(&copy.dest)?;
        let origin = match &copy.from {
            Some(from) => self.tree_of_from(state, from, state.index)?,
            None => Origin::Context,
        };
        let tree = match &origin {
            Origin::Context => self.context.clone(),
            Origin::Other { view, label } => {
                SourceTree::image(view.root().to_path_buf(), label.clone())
            }
        };
        let opts = CopyOptions {
            chown: None,
            chmod: copy
                .chmod
                .as_deref()
                .map(|m| parse_chmod(&state.expand(m)?))
                .transpose()?,
            exclude: copy.excludes.clone(),
            parents: copy.parents,
            workdir: PathBuf::from(&state.config.image().config.working_dir),
            preserve_ownership_from_source: copy.from.is_some(),
        };
        let chown = copy.chown.as_deref().map(|c| state.expand(c)).transpose()?;
        self.copy_step(
            state,
            "COPY",
            copy.link,
            &copy.origin.original,
            &tree,
            &sources,
            &dest,
            opts,
            chown,
            None,
        )
    }

    pub(crate) fn dispatch_add(&self, state: &mut StageState, add: &Add) -> Result<(), StepError> {
        let sources = self.expand_sources(state, &add.sources)?;
        let dest = state.expand(&add.dest)?;
        let checksum = match &add.checksum {
            Some(c) => {
                let c = state.expand(c)?;
                Some(
                    c.parse::<Digest>()
                        .map_err(|e| StepError::Invalid(format!("--checksum={c}: {e}")))?,
                )
            }
            None => None,
        };
        let opts = CopyOptions {
            chown: None,
            chmod: add
                .chmod
                .as_deref()
                .map(|m| parse_chmod(&state.expand(m)?))
                .transpose()?,
            exclude: add.excludes.clone(),
            parents: false,
            workdir: PathBuf::from(&state.config.image().config.working_dir),
            preserve_ownership_from_source: false,
        };
        let chown = add.chown.as_deref().map(|c| state.expand(c)).transpose()?;
        let tree = self.context.clone();
        self.copy_step(
            state,
            "ADD",
            add.link,
            &add.origin.original,
            &tree,
            &sources,
            &dest,
            opts,
            chown,
            Some((checksum, add.keep_git_dir.unwrap_or(false))),
        )
    }

    /// The shared body of COPY and ADD; `add` carries ADD's extra options.
    #[allow(clippy::too_many_arguments)]
    fn copy_step(
        &self,
        state: &mut StageState,
        keyword: &str,
        link: bool,
        original: &str,
        tree: &SourceTree,
        sources: &Sources,
        dest: &str,
        opts: CopyOptions,
        chown: Option<String>,
        add: Option<(Option<Digest>, bool)>,
    ) -> Result<(), StepError> {
        // Inline heredoc files are written to a private tree first.
        let heredoc_dir = if sources.heredocs.is_empty() {
            None
        } else {
            let dir = tempfile::Builder::new()
                .prefix("heredoc-")
                .tempdir_in(std::env::temp_dir())?;
            for h in &sources.heredocs {
                let body = if h.chomp { h.body() } else { h.content.clone() };
                fs::write(dir.path().join(&h.name), body)?;
            }
            Some(dir)
        };
        let heredoc_tree = heredoc_dir
            .as_ref()
            .map(|d| SourceTree::context(d.path().to_path_buf(), Default::default()));
        let heredoc_names: Vec<String> = sources.heredocs.iter().map(|h| h.name.clone()).collect();

        // The cache key covers the bytes, modes and owners of every source.
        let mut content = Hasher::new();
        let urls: Vec<&String> = sources
            .paths
            .iter()
            .filter(|p| p.starts_with("http://") || p.starts_with("https://"))
            .collect();
        let local: Vec<String> = sources
            .paths
            .iter()
            .filter(|p| !urls.contains(p))
            .cloned()
            .collect();
        if !local.is_empty() {
            let d = sources_digest(tree, &local, &opts, &mut self.stat_cache())?;
            content.update(d.hex().as_bytes());
        }
        if let Some(t) = &heredoc_tree {
            let d = sources_digest(t, &heredoc_names, &opts, &mut self.stat_cache())?;
            content.update(d.hex().as_bytes());
        }
        let mut cacheable = true;
        for u in &urls {
            content.update(u.as_bytes());
            // Without a checksum a URL's content is unknown until fetched.
            if add.as_ref().is_none_or(|(c, _)| c.is_none()) {
                cacheable = false;
            }
        }
        let content = content.finish();
        // Docker counts what the sources matched, not how many were
        // written: a glob matching two files is `multi:`.
        let expanded: Vec<_> = local.iter().map(|p| tree.expand(p).ok()).collect();
        let matched: usize = expanded
            .iter()
            .map(|m| m.as_ref().map_or(1, |m| m.len()))
            .sum::<usize>()
            + urls.len()
            + sources.heredocs.len();
        let summary = if matched > 1 {
            ContentSummary::Multi(content)
        } else if expanded
            .first()
            .and_then(|m| m.as_ref())
            .and_then(|m| m.first().map(|m| m.meta.is_dir()))
            .unwrap_or(false)
        {
            ContentSummary::Dir(content)
        } else {
            ContentSummary::File(content)
        };
        let created_by = created_by::copy(keyword, link, &summary, dest);
        let fingerprint = state.runtime_fingerprint();
        let mut key = state.chain_key(&[
            original,
            &content.hex(),
            dest,
            &format!("{:?}", chown),
            &fingerprint,
        ]);
        if !cacheable {
            key = Digest::of(format!("{key} {:?}", std::time::SystemTime::now()).as_bytes());
        }
        let ctx = self.layer_context();
        let result = ctx.run_step(state, key, &created_by, |merged: &Path| {
            let rootfs = Rootfs::new(merged.to_path_buf());
            let mut opts = opts.clone();
            if let Some(spec) = &chown {
                opts.chown = Some(resolve_chown(&rootfs, spec)?);
            }
            if let Some((checksum, keep_git_dir)) = add {
                let add_opts = AddOptions {
                    copy: opts.clone(),
                    checksum,
                    keep_git_dir,
                };
                if !sources.paths.is_empty() {
                    add_into(&rootfs, tree, &sources.paths, dest, &add_opts)?;
                }
            } else if !sources.paths.is_empty() {
                copy_into(&rootfs, tree, &sources.paths, dest, &opts)?;
            }
            if let Some(t) = &heredoc_tree {
                copy_into(&rootfs, t, &heredoc_names, dest, &opts)?;
            }
            Ok(())
        })?;
        if let StepResult::Cached(id) = result {
            self.out.using_cache(&id);
        }
        Ok(())
    }
}
