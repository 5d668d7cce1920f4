//! The rootless user namespace, overlay layer mounts and the RUN sandbox.
//!
//! Knows nothing about images or what a layer means: it maps ids, mounts
//! directories over directories and runs a command in a confined root.
//!
//! - [`enter_user_namespace`] (`namespaces`, `idmap`, `channel`): the one
//!   user + mount namespace a rootless command runs in.
//! - [`mount_overlay`] (`overlay`, `overlay_copy`): a layer's merged view.
//! - [`run`] (`run`, `helper`, `rootfs`, `process`): one RUN step.
//! - `syscall`: every kernel call, behind a trait that tests can record.

pub mod channel;
pub mod error;
pub mod helper;
pub mod idmap;
pub mod namespaces;
pub mod overlay;
pub mod overlay_copy;
pub mod process;
pub mod rootfs;
pub mod run;
pub mod syscall;

pub use error::{Result, SandboxError};
pub use helper::helper_main;
pub use namespaces::{enter_user_namespace, IdMapping, UsernsState};
pub use overlay::{mount_overlay, MountGuard, OverlayMode};
pub use process::ExitKind;
pub use rootfs::{MountKind, SandboxMount};
pub use run::{interrupted, run, run_with_helper, Network, RunOutcome, RunSpec, RunStdio};
