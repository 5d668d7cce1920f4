//! The build executor: reads the Containerfile, plans the stages, runs
//! each stage's instructions in order and commits the target stage as an
//! image. One `dispatch_*` function per kind of instruction lives in the
//! `dispatch` files, as BuildKit's `convert.go` does.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex, MutexGuard};

use crate::build::args::{platform_args, BuildArgs};
use crate::build::context::SourceTree;
use crate::build::copy_digest::StatCache;
use crate::build::error::{BuildError, StepError};
use crate::build::output::Output;
use crate::build::plan::{dependencies, find_stage, plan, stage_label};
use crate::build::request::{BuildRequest, ContainerfileSource, OutputFormat};
use crate::build::stage::{StageResult, StageState};
use crate::build::step::LayerContext;
use crate::containerfile::shell::{EnvList, Lexer};
use crate::containerfile::{self, Containerfile, Stage};
use crate::digest::{Digest, Hasher};
use crate::image::lookup::local_name;
use crate::image::manifest::{Descriptor, ImageManifest, ManifestFormat};
use crate::image::{Compression, Image, ImageConfigBuilder, Platform, Timestamp};
use crate::store::{ImageRecord, Lease, Store};

/// What a finished build made.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub image_id: Digest,
    pub names: Vec<String>,
    /// The build's lease, which protects the image (unnamed with
    /// `--manifest`) from a concurrent `prune` until the caller has done
    /// with it (added it to a list); dropping it ends the protection.
    pub lease: Lease,
}

/// Everything shared by the stages of one build.
pub struct Executor<'a> {
    pub store: &'a Store,
    pub req: &'a BuildRequest,
    pub out: Output,
    pub cf: Containerfile,
    pub file_label: String,
    pub context: SourceTree,
    pub build_args: BuildArgs,
    pub global_env: EnvList,
    pub platform: Platform,
    pub created: Timestamp,
    pub lease: Lease,
    pub mounts_dir: PathBuf,
    pub run_dir: PathBuf,
    pub stat_cache: Mutex<StatCache>,
    pub results: Mutex<Vec<Option<StageResult>>>,
    /// Several stages may run at once: RUN output lines get a stage prefix.
    pub parallel: bool,
}

/// Builds `req` into an image in `store`; `runroot` holds mount points.
pub fn build(
    store: &Store,
    runroot: &Path,
    req: &BuildRequest,
) -> Result<BuildOutcome, BuildError> {
    let out = Output { quiet: req.quiet };
    let (text, file_label, file_path) = read_containerfile(req)?;
    let cf = containerfile::parse(&text, &file_label)?;
    for w in &cf.warnings {
        out.warn(&format!(
            "{}:{}: {}",
            w.span.file, w.span.start.line, w.message
        ));
    }
    if !req.context.is_dir() {
        return Err(BuildError::Context {
            path: req.context.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        });
    }
    // The context is walked from its real path: given as a relative path
    // through a symlink, the walk saw no files and `COPY .` copied nothing.
    let context_dir = req
        .context
        .canonicalize()
        .map_err(|source| BuildError::Context {
            path: req.context.clone(),
            source,
        })?;
    let context = SourceTree::open_context(context_dir, file_path.as_deref())
        .map_err(|e| BuildError::Plan(e.to_string()))?;
    let platform = Platform::host();
    let build_args = BuildArgs::new(req.build_args.clone());
    let mut global_env = global_args(&cf, &build_args, &platform)?;

    let lexer = Lexer::new(cf.escape);
    let expand_global = |w: &str| {
        lexer
            .process_word(w, &global_env)
            .unwrap_or_else(|_| w.to_string())
    };
    let plan = plan(&cf, req.target.as_deref(), &expand_global).map_err(BuildError::Plan)?;
    // Like the platform args: usable once a stage declares `ARG TARGETSTAGE`.
    global_env.set("TARGETSTAGE", &stage_label(&cf, plan.target));

    let created = match req.timestamp {
        Some(t) => Timestamp::from_unix(t)
            .ok_or_else(|| BuildError::Plan(format!("--timestamp {t} is out of range")))?,
        None => Timestamp::now(),
    };
    let run_dir = runroot.join(format!("build-{}", std::process::id()));
    let lease = store.lease()?;
    let stat_cache = StatCache::load(store.context_stat_cache_path());
    let stages = cf.stages.len();
    let ex = Executor {
        store,
        req,
        out,
        file_label,
        context,
        build_args,
        global_env,
        platform,
        created,
        lease,
        mounts_dir: run_dir.join("mounts"),
        run_dir: run_dir.clone(),
        stat_cache: Mutex::new(stat_cache),
        results: Mutex::new(vec![None; stages]),
        parallel: plan.needed.len() > 1 && req.jobs > 1,
        cf,
    };
    for i in &plan.skipped {
        ex.out.skipped_stage(&stage_label(&ex.cf, *i));
    }
    let result = ex.run_stages(&plan.needed);
    let _ = ex.stat_cache().save();
    let _ = fs::remove_dir_all(&run_dir);
    result?;
    let outcome = ex.commit(plan.target)?;
    for unused in ex.build_args.unused() {
        ex.out.warn(&format!(
            "the build argument {unused:?} was not consumed by any stage"
        ));
    }
    Ok(outcome)
}

fn read_containerfile(req: &BuildRequest) -> Result<(String, String, Option<PathBuf>), BuildError> {
    let path = match &req.containerfile {
        Some(ContainerfileSource::Stdin(text)) => {
            return Ok((text.clone(), "stdin".to_string(), None))
        }
        Some(ContainerfileSource::Path(p)) => p.clone(),
        None if !req.context.is_dir() => {
            // Say that the context is missing, not that it lacks a Containerfile.
            let source = match fs::metadata(&req.context) {
                Err(e) => e,
                Ok(_) => std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            };
            return Err(BuildError::Context {
                path: req.context.clone(),
                source,
            });
        }
        None => ["Containerfile", "Dockerfile"]
            .iter()
            .map(|n| req.context.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| BuildError::NoContainerfile(req.context.clone()))?,
    };
    let mut text = String::new();
    fs::File::open(&path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|source| BuildError::Read {
            path: path.clone(),
            source,
        })?;
    // Errors name the file as the user named it: with `-f` the path given
    // (the context may hold another Containerfile), else the file's name.
    let label = match &req.containerfile {
        Some(ContainerfileSource::Path(_)) => path.display().to_string(),
        _ => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
    };
    Ok((text, label, Some(path)))
}

/// The values of the ARGs before the first FROM (and the platform args),
/// which FROM lines and re-declared stage ARGs see.
fn global_args(
    cf: &Containerfile,
    build_args: &BuildArgs,
    platform: &Platform,
) -> Result<EnvList, BuildError> {
    let mut env = EnvList::new();
    for (k, v) in platform_args(platform, platform) {
        env.set(&k, &v);
    }
    let lexer = Lexer::new(cf.escape);
    for arg in &cf.global_args {
        for def in &arg.args {
            let value = match build_args.take(&def.name) {
                Some(v) => Some(v),
                None => match &def.default {
                    Some(d) => Some(lexer.process_word(d, &env).map_err(|e| {
                        BuildError::Plan(format!(
                            "{}:{}: {e}",
                            arg.origin.span.file, arg.origin.span.start.line
                        ))
                    })?),
                    None => None,
                },
            };
            if let Some(v) = value {
                env.set(&def.name, &v);
            }
        }
    }
    Ok(env)
}

impl Executor<'_> {
    /// The result of stage `i`, once built.
    pub(crate) fn stage_result(&self, i: usize) -> Option<StageResult> {
        self.results.lock().unwrap_or_else(|e| e.into_inner())[i].clone()
    }

    pub(crate) fn stat_cache(&self) -> MutexGuard<'_, StatCache> {
        self.stat_cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the needed stages, each as soon as the stages it reads from are
    /// done, at most `--jobs` at a time.
    fn run_stages(&self, needed: &[usize]) -> Result<(), BuildError> {
        let count = needed.len();
        let position: HashMap<usize, usize> = needed
            .iter()
            .enumerate()
            .map(|(n, &i)| (i, n + 1))
            .collect();
        let lexer = Lexer::new(self.cf.escape);
        let expand = |w: &str| {
            lexer
                .process_word(w, &self.global_env)
                .unwrap_or_else(|_| w.to_string())
        };
        let deps: HashMap<usize, Vec<usize>> = needed
            .iter()
            .map(|&i| (i, dependencies(&self.cf, i, &expand)))
            .collect();
        let jobs = self.req.jobs.max(1);
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            let mut pending: Vec<usize> = needed.to_vec();
            let mut done = HashSet::new();
            let mut running = 0;
            let mut first_error = None;
            loop {
                if first_error.is_none() {
                    let mut k = 0;
                    while k < pending.len() && running < jobs {
                        let i = pending[k];
                        if deps[&i].iter().all(|d| done.contains(d)) {
                            pending.remove(k);
                            running += 1;
                            let tx = tx.clone();
                            let pos = (position[&i], count);
                            scope.spawn(move || {
                                let _ = tx.send((i, self.run_stage(i, pos)));
                            });
                        } else {
                            k += 1;
                        }
                    }
                }
                if running == 0 {
                    break;
                }
                let Ok((i, result)) = rx.recv() else { break };
                running -= 1;
                match result {
                    Ok(r) => {
                        self.results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                        done.insert(i);
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
    }

    pub(crate) fn layer_context(&self) -> LayerContext<'_> {
        LayerContext {
            store: self.store,
            lease: &self.lease,
            mounts_dir: &self.mounts_dir,
            created: self.created,
            mtime_clamp: self.req.timestamp,
            use_cache: self.req.layers && !self.req.no_cache,
        }
    }

    fn run_stage(&self, i: usize, pos: (usize, usize)) -> Result<StageResult, BuildError> {
        let stage: Stage = self.cf.stages[i].clone();
        let total = stage.instructions.len() + 1;
        self.out
            .step(pos, (1, total), &self.display_from(&stage.from));
        let mut state = self
            .base_state(i, &stage)
            .map_err(|e| self.step_error(&stage.from.origin, e))?;
        let base_layers = state.layers.len();
        let triggers = state.config.take_onbuild();
        // Triggers count as steps after FROM (buildah numbers them so too;
        // the FROM line was printed before the base's triggers were known).
        let total = total + triggers.len();
        for (n, trigger) in triggers.iter().enumerate() {
            self.run_trigger(&mut state, trigger, &stage, pos, (n + 2, total))?;
        }
        let first = triggers.len() + 2;
        for (n, inst) in stage.instructions.iter().enumerate() {
            let text = match inst {
                containerfile::Instruction::Run(run) => crate::build::dispatch_run::step_text(run),
                other => other.origin().original.clone(),
            };
            self.out.step(pos, (n + first, total), &text);
            if crate::sandbox::interrupted().is_some() {
                return Err(BuildError::Interrupted);
            }
            self.dispatch(&mut state, inst)
                .map_err(|e| self.step_error(inst.origin(), e))?;
        }
        Ok(StageResult {
            config: state.config.image().clone(),
            base_layers,
            layers: state.layers,
            cache_key: state.cache_key,
        })
    }

    /// Runs one ONBUILD trigger of the base image at the start of a stage.
    fn run_trigger(
        &self,
        state: &mut StageState,
        trigger: &str,
        stage: &Stage,
        pos: (usize, usize),
        step: (usize, usize),
    ) -> Result<(), BuildError> {
        let text = format!("FROM scratch\n{trigger}\n");
        let parsed = containerfile::parse(&text, "ONBUILD trigger").map_err(|e| {
            self.step_error(
                &stage.from.origin,
                StepError::Invalid(format!("the base image's ONBUILD {trigger:?}: {e}")),
            )
        })?;
        for inst in &parsed.stages[0].instructions {
            self.out
                .step(pos, step, &format!("ONBUILD {}", inst.origin().original));
            self.dispatch(state, inst)
                .map_err(|e| self.step_error(&stage.from.origin, e))?;
        }
        Ok(())
    }

    pub(crate) fn step_error(
        &self,
        origin: &containerfile::Origin,
        source: StepError,
    ) -> BuildError {
        BuildError::Step {
            location: format!("{}:{}", origin.span.file, origin.span.start.line),
            step: origin.original.clone(),
            source: Box::new(source),
        }
    }

    /// A FROM line as buildah shows it in its STEP line: build args in the
    /// image and `--platform` expanded (the text as written when an
    /// expansion fails: the step itself then reports the error).
    fn display_from(&self, from: &containerfile::From) -> String {
        let original = &from.origin.original;
        if !original.contains('$') {
            return original.clone();
        }
        let lexer = Lexer::new(self.cf.escape);
        let expand = |w: &str| lexer.process_word(w, &self.global_env).ok();
        let mut image_seen = false;
        let mut words = Vec::new();
        for (n, word) in original.split_whitespace().enumerate() {
            let shown = if n == 0 {
                Some(word.to_string())
            } else if let Some(raw) = word.strip_prefix("--platform=") {
                expand(raw).map(|p| format!("--platform={p}"))
            } else if !image_seen && !word.starts_with("--") {
                image_seen = true;
                expand(word)
            } else {
                Some(word.to_string())
            };
            match shown {
                Some(w) => words.push(w),
                None => return original.clone(),
            }
        }
        words.join(" ")
    }

    /// An image named by FROM or a `--from`, found locally or pulled as
    /// `--pull` says (docker pulls the images `COPY --from` names too), and
    /// protected from removal for the rest of the build.
    pub(crate) fn image_by_policy(
        &self,
        image: &str,
    ) -> Result<crate::store::ImageRecord, crate::registry::RegistryError> {
        let mut pull_options = self.req.pull_options.clone();
        pull_options.platform = self.platform.clone();
        let printer = crate::registry::pull::stderr_printer(self.req.quiet);
        let rec = crate::registry::pull_with_policy(
            self.store,
            &self.lease,
            image,
            self.req.pull,
            &pull_options,
            &printer,
        )?;
        self.lease.protect_image(&rec.id)?;
        Ok(rec)
    }

    /// The stage's starting state: scratch, an earlier stage, or an image.
    fn base_state(&self, i: usize, stage: &Stage) -> Result<StageState, StepError> {
        let lexer = Lexer::new(self.cf.escape);
        let image = lexer.process_word(&stage.from.image, &self.global_env)?;
        if let Some(platform) = &stage.from.platform {
            let wanted = lexer.process_word(platform, &self.global_env)?;
            let host = format!("{}/{}", self.platform.os, self.platform.architecture);
            if !wanted.is_empty() && !wanted.starts_with(&host) {
                self.out.warn(&format!(
                    "{}:{}: FROM --platform={wanted}: rbuild builds for the host platform {host}; the flag is ignored",
                    stage.from.origin.span.file, stage.from.origin.span.start.line
                ));
            }
        }
        let mut key = Hasher::new();
        let (config, layers) = if image.eq_ignore_ascii_case("scratch") {
            key.update(b"scratch");
            (
                ImageConfigBuilder::scratch(self.platform.clone()),
                Vec::new(),
            )
        } else if let Some(dep) = find_stage(&self.cf, &image, i) {
            let base = self
                .stage_result(dep)
                .ok_or_else(|| StepError::Invalid(format!("stage {image:?} was not built")))?;
            key.update(base.cache_key.hex().as_bytes());
            (ImageConfigBuilder::from_base(base.config), base.layers)
        } else {
            let rec = self.image_by_policy(&image).map_err(|e| {
                StepError::Invalid(format!(
                    "{e}; import a base with `rbuild import ROOTFS.tar NAME` or pull it first"
                ))
            })?;
            key.update(rec.id.hex().as_bytes());
            let config = Image::from_json(&self.store.read_blob(&rec.id)?)
                .map_err(|e| StepError::Invalid(format!("the config of {image}: {e}")))?;
            (ImageConfigBuilder::from_base(config), rec.layers.clone())
        };
        let args = crate::build::args::ArgScope::default();
        Ok(StageState {
            index: i,
            config,
            layers,
            args,
            proxies: self.build_args.proxies(),
            cache_key: key.finish(),
            lexer,
        })
    }

    /// Writes the target stage as an image and names it.
    fn commit(&self, target: usize) -> Result<BuildOutcome, BuildError> {
        let result = self
            .stage_result(target)
            .ok_or_else(|| BuildError::Plan("the target stage was not built".to_string()))?;
        let mut result = result;
        if self.req.squash || self.req.squash_all {
            let squashed = crate::build::squash::squash(
                self.store,
                &self.lease,
                &self.mounts_dir,
                &result.layers,
                result.base_layers,
                self.req.squash_all,
            )
            .map_err(|e| BuildError::Plan(format!("squashing the layers: {e}")))?;
            if squashed != result.layers {
                let kept = squashed.len() - 1;
                let top = self.store.layer_meta(&squashed[kept])?.diff_id;
                crate::build::squash::squash_config(&mut result.config, kept, top);
                result.layers = squashed;
            }
        }
        let mut builder = ImageConfigBuilder::from_base(result.config);
        for (k, v) in &self.req.labels {
            builder.set_label(k, v);
        }
        builder.set_created(self.created);
        if let Some(t) = self.req.timestamp {
            if let Some(ts) = Timestamp::from_unix(t) {
                builder.clamp_timestamps(ts);
            }
        }
        let format = match self.req.format {
            OutputFormat::Oci => ManifestFormat::Oci,
            OutputFormat::Docker => ManifestFormat::Docker,
        };
        // A rebuild where every step hit the cache gives the same image ID,
        // as buildah's and docker's do: the config is reused, times and all.
        let use_cache = self.req.layers && !self.req.no_cache;
        let commit_key = {
            let mut h = Hasher::new();
            h.update(b"commit\n");
            h.update(result.cache_key.hex().as_bytes());
            if let Some(top) = result.layers.last() {
                h.update(top.digest().hex().as_bytes());
            }
            h.update(
                format!(
                    "{:?}",
                    (
                        &self.req.labels,
                        self.req.timestamp,
                        format,
                        self.req.squash,
                        self.req.squash_all
                    )
                )
                .as_bytes(),
            );
            h.finish()
        };
        let cached = if use_cache {
            self.store
                .cache_get(&commit_key)?
                .and_then(|e| e.blob)
                .and_then(|b| self.store.read_blob(&b).ok())
        } else {
            None
        };
        let commit_hit = cached.is_some();
        let config_bytes = match cached {
            Some(bytes) => bytes,
            None => {
                let image = builder.build();
                match format {
                    ManifestFormat::Oci => image.to_oci_json(),
                    ManifestFormat::Docker => image.to_docker_json(),
                }
            }
        };
        let names = self
            .req
            .tags
            .iter()
            .map(|t| local_name(t).map_err(|e| BuildError::Plan(format!("tag {t:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        self.out.commit(names.first().map(String::as_str));
        let record = write_image(
            self.store,
            &self.lease,
            &config_bytes,
            &result.layers,
            format,
            &self.req.annotations,
            names.clone(),
        )
        .map_err(BuildError::Commit)?;
        if use_cache && !commit_hit {
            let entry = crate::store::CacheEntry {
                layer: None,
                blob: Some(record.id),
                data: serde_json::Value::Null,
            };
            self.store.cache_put(&commit_key, &entry)?;
        }
        self.out.short_id(&record.id.short());
        for n in &names {
            self.out.tagged(n);
        }
        if let Some(path) = &self.req.iidfile {
            fs::write(path, record.id.to_string()).map_err(|source| BuildError::Write {
                path: path.clone(),
                source,
            })?;
        }
        self.out.image_id(&record.id.hex());
        Ok(BuildOutcome {
            image_id: record.id,
            names,
            lease: self.lease.clone(),
        })
    }
}

/// Stores an image: its config blob, a local manifest whose layer digests
/// are the diff IDs, and its record with `names`.
pub fn write_image(
    store: &Store,
    lease: &Lease,
    config_bytes: &[u8],
    layers: &[crate::store::ChainId],
    format: ManifestFormat,
    annotations: &std::collections::BTreeMap<String, String>,
    names: Vec<String>,
) -> Result<ImageRecord, crate::store::StoreError> {
    let id = store.put_blob(config_bytes)?;
    lease.protect_blob(&id)?;
    // Before the record exists: an image without names (a list instance,
    // a `bud --manifest` result) is what `prune` removes.
    lease.protect_image(&id)?;
    let mut descriptors = Vec::new();
    let mut size = 0;
    let layer_type = format
        .layer_media_type(Compression::None)
        .unwrap_or("application/vnd.oci.image.layer.v1.tar");
    for chain in layers {
        let meta = store.layer_meta(chain)?;
        size += meta.size;
        descriptors.push(Descriptor::new(layer_type, meta.diff_id, meta.size));
    }
    let manifest = ImageManifest {
        format,
        config: Descriptor::new(format.config_media_type(), id, config_bytes.len() as u64),
        layers: descriptors,
        annotations: if format == ManifestFormat::Oci {
            annotations.clone()
        } else {
            Default::default()
        },
    };
    let manifest_digest = store.put_blob(&manifest.to_json())?;
    lease.protect_blob(&manifest_digest)?;
    // A rebuild that changed nothing leaves the index alone (no write, no fsync).
    if let Ok(existing) = store.image(&id) {
        if existing.manifest == manifest_digest && names.iter().all(|n| existing.names.contains(n))
        {
            return Ok(existing);
        }
    }
    let record = ImageRecord {
        id,
        names,
        manifest: manifest_digest,
        index: None,
        top_layer: layers.last().copied(),
        layers: layers.to_vec(),
        created: Timestamp::now().to_string(),
        size,
    };
    store.put_image(&record)?;
    Ok(record)
}
