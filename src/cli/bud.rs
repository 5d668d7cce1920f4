//! `rbuild bud` / `rbuild build`: build an image from a Containerfile.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};

use super::GlobalOptions;
use crate::build::request::{
    BuildRequest, ContainerfileSource, NetworkMode, OutputFormat, SecretSource, SecretSpec,
};

#[derive(Debug, clap::Args)]
pub struct BudArgs {
    /// The build context directory.
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// The Containerfile (`-` reads it from stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// Name (and tag) the image.
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// `K=V`, or `K` to take the value from the environment.
    #[arg(long = "build-arg", value_name = "ARG")]
    pub build_args: Vec<String>,
    /// A file of `K=V` lines (comments and blank lines allowed).
    #[arg(long = "build-arg-file", value_name = "FILE")]
    pub build_arg_files: Vec<PathBuf>,
    /// Add a label to the image.
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Add an annotation to the image manifest.
    #[arg(long = "annotation", value_name = "K=V")]
    pub annotations: Vec<String>,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    /// Manifest and config format.
    #[arg(long, default_value = "oci", value_parser = ["oci", "docker"])]
    pub format: String,
    /// Creation time in seconds since the epoch (also clamps file times);
    /// defaults to $SOURCE_DATE_EPOCH when set.
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<i64>,
    /// Do not use the build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Cache intermediate layers (default true).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub layers: bool,
    /// Build up to this stage.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Network for RUN steps: host (default) or none.
    #[arg(long, default_value = "host", value_parser = ["host", "none", "default"])]
    pub network: String,
    /// `id=ID,src=FILE` or `id=ID,env=VAR`.
    #[arg(long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,
    /// Stages to run at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Squash the layers this build adds into one.
    #[arg(long, conflicts_with = "squash_all")]
    pub squash: bool,
    /// Squash the whole image, base included, into one layer.
    #[arg(long)]
    pub squash_all: bool,
    /// When FROM pulls its image: always, missing (default), never or newer;
    /// `--pull` alone means always.
    #[arg(long, value_name = "POLICY", num_args = 0..=1, require_equals = true,
          default_value = "missing", default_missing_value = "always")]
    pub pull: String,
    /// Add the image to this manifest list (created when missing), as buildah does.
    #[arg(long, value_name = "LIST")]
    pub manifest: Option<String>,
    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
}

fn key_value(flag: &str, s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("--{flag} {s:?}: expected KEY=VALUE"),
    }
}

fn parse_secret(s: &str) -> anyhow::Result<SecretSpec> {
    let mut id = None;
    let mut source = None;
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("id", v)) => id = Some(v.to_string()),
            Some(("src" | "source", v)) => source = Some(SecretSource::File(PathBuf::from(v))),
            Some(("env", v)) => source = Some(SecretSource::Env(v.to_string())),
            Some(("type", "file" | "env")) => {}
            _ => bail!(
                "--secret {s:?}: unknown part {part:?}; expected id=ID,src=FILE or id=ID,env=VAR"
            ),
        }
    }
    let id = id.ok_or_else(|| anyhow::anyhow!("--secret {s:?}: missing id="))?;
    let source = source.unwrap_or_else(|| SecretSource::Env(id.clone()));
    if let SecretSource::File(p) = &source {
        if !p.is_file() {
            bail!("--secret {s:?}: {} is not a readable file", p.display());
        }
    }
    Ok(SecretSpec { id, source })
}

impl BudArgs {
    /// The build request: everything validated, files read.
    pub fn request(self) -> anyhow::Result<BuildRequest> {
        let mut build_args = BTreeMap::new();
        for file in &self.build_arg_files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading --build-arg-file {}", file.display()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (k, v) = key_value("build-arg-file", line)
                    .with_context(|| format!("{}:{}", file.display(), n + 1))?;
                build_args.insert(k, v);
            }
        }
        for a in &self.build_args {
            match a.split_once('=') {
                Some((k, v)) => {
                    build_args.insert(k.to_string(), v.to_string());
                }
                None => {
                    if let Ok(v) = std::env::var(a) {
                        build_args.insert(a.clone(), v);
                    }
                }
            }
        }
        let containerfile = match self.file.as_deref() {
            None => None,
            Some("-") => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading the Containerfile from stdin")?;
                Some(ContainerfileSource::Stdin(text))
            }
            Some(f) => {
                let p = PathBuf::from(f);
                // buildah: a relative -f that is not found is looked up in the context.
                let p = if !p.exists() && p.is_relative() && self.context.join(&p).exists() {
                    self.context.join(p)
                } else {
                    p
                };
                Some(ContainerfileSource::Path(p))
            }
        };
        let timestamp = match self.timestamp {
            Some(t) => Some(t),
            None => match std::env::var("SOURCE_DATE_EPOCH") {
                Ok(v) if !v.is_empty() => Some(v.trim().parse().with_context(|| {
                    format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")
                })?),
                _ => None,
            },
        };
        Ok(BuildRequest {
            context: self.context,
            containerfile,
            tags: self.tags,
            build_args,
            labels: self
                .labels
                .iter()
                .map(|l| key_value("label", l))
                .collect::<Result<_, _>>()?,
            annotations: self
                .annotations
                .iter()
                .map(|l| key_value("annotation", l))
                .collect::<Result<_, _>>()?,
            iidfile: self.iidfile,
            quiet: self.quiet,
            format: if self.format == "docker" {
                OutputFormat::Docker
            } else {
                OutputFormat::Oci
            },
            timestamp,
            no_cache: self.no_cache,
            layers: self.layers,
            target: self.target,
            network: if self.network == "none" {
                NetworkMode::None
            } else {
                NetworkMode::Host
            },
            secrets: self
                .secrets
                .iter()
                .map(|s| parse_secret(s))
                .collect::<Result<_, _>>()?,
            squash: self.squash,
            squash_all: self.squash_all,
            jobs: self
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            pull: self.pull.parse().map_err(anyhow::Error::msg)?,
            pull_options: super::pull::pull_options(&self.registry, None)?,
        })
    }
}

pub fn run(global: &GlobalOptions, args: BudArgs) -> anyhow::Result<i32> {
    let access = super::store_access::open(global)?;
    let manifest = args.manifest.clone();
    let request = args.request()?;
    // The outcome holds the build's lease, which protects the image until
    // it is in the list.
    let outcome = crate::build::build(&access.store, &access.runroot, &request)?;
    if let Some(list) = manifest {
        add_to_list(&access.store, &list, &outcome.image_id)?;
    }
    drop(outcome);
    Ok(0)
}

/// `--manifest LIST`: adds the built image to LIST, creating it if absent.
/// Parallel builds into one list (one per platform, as CI runs them) all
/// land: a create that lost the race adds to the winner's list, and an add
/// that raced with another is applied again.
fn add_to_list(
    store: &crate::store::Store,
    list: &str,
    image: &crate::digest::Digest,
) -> anyhow::Result<()> {
    use crate::registry::{manifest_list, RegistryError};
    use crate::store::StoreError;
    let rec = store.image(image)?;
    let existing = match manifest_list::lookup_list(store, list) {
        Ok(l) => l,
        Err(e) if e.is_not_found() => {
            let name = crate::image::lookup::local_name(list)
                .with_context(|| format!("--manifest {list:?}"))?;
            match manifest_list::create(store, &name, std::slice::from_ref(&rec)) {
                Ok(_) => return Ok(()),
                Err(RegistryError::Store(StoreError::ListExists(_))) => store.list(&name)?,
                Err(e) => return Err(e).with_context(|| format!("creating manifest list {name}")),
            }
        }
        Err(e) => return Err(e.into()),
    };
    manifest_list::add(store, &existing, &rec, &Default::default())
        .with_context(|| format!("adding the image to manifest list {}", existing.name))?;
    Ok(())
}
