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
//!
//! How `build` uses it, step by step:
//! 1. `cli::main` calls [`enter_user_namespace`] before any thread starts
//!    (commands that touch the store). Root: nothing happens. Unprivileged:
//!    the process re-executes inside a user + mount namespace where it is
//!    root; [`UsernsState::check_id`] says early when a `--chown`/`USER` id
//!    has no mapping (single-id mode).
//! 2. A new layer: `let g = mount_overlay(&parent_diffs_topmost_first,
//!    &new_diff, &work, &mountpoint, OverlayMode::Auto)?`. COPY/ADD write
//!    under `g.target()`; RUN calls [`run`] with `RunSpec { rootfs:
//!    g.target().into(), .. }`. Then `g.unmount()?`: the upper dir is the
//!    diff (whiteouts as 0/0 char devices, opaque dirs as
//!    `user.overlay.opaque`; fuse-overlayfs may also leave its own forms).
//! 3. [`run`] never leaves synthetic files or mount points in the upper
//!    (see `rootfs` for the exact rule); a SIGINT/SIGTERM during a step
//!    makes it return [`SandboxError::Interrupted`]: unmount and stop.

pub mod channel;
pub mod error;
pub mod helper;
pub mod idmap;
pub mod init_layer;
pub mod namespaces;
pub mod overlay;
pub mod overlay_copy;
pub mod process;
pub mod rootfs;
pub mod run;
pub mod syscall;

pub use error::{Result, SandboxError};
pub use helper::helper_main;
pub use idmap::IdKind;
pub use namespaces::{current_state, enter_user_namespace, IdMapping, UsernsState};
pub use overlay::{mount_overlay, MountGuard, OverlayMode};
pub use process::ExitKind;
pub use rootfs::{MountKind, SandboxMount};
pub use run::{interrupted, run, run_with_helper, Network, RunOutcome, RunSpec, RunStdio};
