//! What a build was asked to do: a plain record the CLI fills and the
//! executor reads. Validated at the CLI edge; no I/O here.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the Containerfile text comes from.
#[derive(Debug, Clone)]
pub enum ContainerfileSource {
    /// A file on disk (its name is used in error messages and for
    /// `FILE.dockerignore` lookup).
    Path(PathBuf),
    /// Text read from stdin (`-f -`).
    Stdin(String),
}

/// The manifest and config flavour of the output image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Oci,
    Docker,
}

/// Network mode for RUN steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    #[default]
    Host,
    None,
}

/// Where a `--secret` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// One `--secret id=…,src=…|env=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    pub source: SecretSource,
}

/// A whole `rbuild bud` request.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// The Containerfile; `None` means look for `Containerfile`, then
    /// `Dockerfile` in the context.
    pub containerfile: Option<ContainerfileSource>,
    /// Names to tag the result with, as typed (normalised by the executor).
    pub tags: Vec<String>,
    /// `--build-arg K=V` (and `K` taken from the environment by the CLI).
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub iidfile: Option<PathBuf>,
    pub quiet: bool,
    pub format: OutputFormat,
    /// Fixed creation time (seconds since the epoch) from `--timestamp` or
    /// `SOURCE_DATE_EPOCH`; also clamps file mtimes in layers.
    pub timestamp: Option<i64>,
    pub no_cache: bool,
    pub layers: bool,
    pub target: Option<String>,
    pub network: NetworkMode,
    pub secrets: Vec<SecretSpec>,
    pub jobs: usize,
    /// `--squash`: the new layers of the target stage become one.
    pub squash: bool,
    /// `--squash-all`: the whole image becomes one layer.
    pub squash_all: bool,
}
