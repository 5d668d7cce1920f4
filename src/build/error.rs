//! Why a build failed: [`BuildError`] for the whole build, [`StepError`] for
//! one instruction, always reported with the step's `file:line` and text.

use std::io;
use std::path::PathBuf;

use crate::build::add::AddError;
use crate::build::context::ContextError;
use crate::build::copy::CopyError;
use crate::build::ignore::IgnoreError;
use crate::build::userdb::UserDbError;
use crate::containerfile::shell::LexError;
use crate::containerfile::ParseError;
use crate::layer::rootfs::RootfsError;
use crate::layer::LayerError;
use crate::sandbox::SandboxError;
use crate::store::StoreError;

/// A failed build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no Containerfile or Dockerfile in {0}: add one, or name it with -f FILE")]
    NoContainerfile(PathBuf),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("the build context {path} is not a usable directory ({source}): give an existing directory as CONTEXT")]
    Context {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Ignore(#[from] IgnoreError),
    #[error("{0}")]
    Plan(String),
    /// An instruction failed; `location` is `file:line`.
    #[error("{location}: error building at STEP \"{step}\": {source}")]
    Step {
        location: String,
        step: String,
        #[source]
        source: Box<StepError>,
    },
    #[error("committing the image: {0}")]
    Commit(#[source] StoreError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the build was interrupted")]
    Interrupted,
}

impl BuildError {
    /// The exit status of the RUN command that failed the build, which
    /// `bud` exits with (as buildah does), so scripts can tell a failing
    /// command from a builder error (125).
    pub fn run_exit_status(&self) -> Option<i32> {
        match self {
            BuildError::Step { source, .. } => match **source {
                StepError::ExitStatus(code) if (1..=255).contains(&code) => Some(code),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Why one instruction failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("exit status {0}")]
    ExitStatus(i32),
    #[error("{0}")]
    Expand(#[from] LexError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Sandbox(#[from] SandboxError),
    #[error("{0}")]
    Layer(#[from] LayerError),
    #[error("{0}")]
    Copy(#[from] CopyError),
    #[error("{0}")]
    Add(#[from] AddError),
    #[error("{0}")]
    Context(#[from] ContextError),
    #[error("{0}")]
    UserDb(#[from] UserDbError),
    #[error("{0}")]
    Rootfs(#[from] RootfsError),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Invalid(String),
}
