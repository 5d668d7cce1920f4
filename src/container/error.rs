//! The one error type of working-container operations: each variant says
//! which container or path failed and, where there is one, the fix.

use std::io;
use std::path::PathBuf;

use crate::build::add::AddError;
use crate::build::copy::CopyError;
use crate::build::userdb::UserDbError;
use crate::build::StepError;
use crate::image::config::ConfigError;
use crate::layer::rootfs::RootfsError;
use crate::layer::LayerError;
use crate::sandbox::SandboxError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(transparent)]
    Add(#[from] AddError),
    #[error(transparent)]
    UserDb(#[from] UserDbError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("the image config of container {container:?}: {source}")]
    Config {
        container: String,
        #[source]
        source: ConfigError,
    },
    #[error("container {container:?}: saved state is unreadable ({reason}); remove it with `rbuild rm {container}`")]
    State { container: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ContainerError {
    /// A closure for `map_err` naming the operation and path.
    pub fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> ContainerError {
        let path = path.into();
        move |source| ContainerError::Io { op, path, source }
    }
}

pub type Result<T, E = ContainerError> = std::result::Result<T, E>;
