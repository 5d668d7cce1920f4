//! Working containers: build an image one command at a time (`from`, `run`,
//! `copy`/`add`, `config`, `commit`) as buildah scripts do, or change a
//! container by hand (`mount` inside `unshare`) and commit what you did.
//!
//! The store keeps each container's record, upper dir and workdir; this
//! module keeps the image config being edited inside that record
//! ([`state`]), mounts the merged rootfs on demand ([`mounts`]: nothing of
//! a container lives only in memory or in the run root, so containers
//! survive a reboot), runs commands in the build sandbox ([`process`],
//! [`pty`] for `-t`), copies with COPY/ADD semantics ([`files`]), edits the
//! config ([`edit`]) and commits ([`commit`]).

pub mod commit;
pub mod edit;
pub mod error;
pub mod files;
pub mod lock;
pub mod mounts;
pub mod process;
pub mod pty;
pub mod state;

pub use commit::{commit, CommitOptions};
pub use edit::ConfigEdit;
pub use error::{ContainerError, Result};
pub use files::{copy, CopyRequest};
pub use lock::ContainerLock;
pub use process::{run, RunOptions};
pub use state::{ContainerState, WorkingContainer};
