//! The sandbox's error type: one variant per failing step, each naming the
//! path or id involved and what to do about it.

use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can go wrong in `sandbox`.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{call} failed{}: {errno} ({})", fmt_path(.path), .errno.desc())]
    Sys {
        call: &'static str,
        path: Option<PathBuf>,
        errno: Errno,
    },

    #[error("{path}:{line}: malformed entry {text:?}: expected NAME:START:COUNT")]
    SubidSyntax {
        path: PathBuf,
        line: usize,
        text: String,
    },

    #[error("{helper} failed for pid {pid}: {detail}")]
    IdMapHelper {
        helper: &'static str,
        pid: i32,
        detail: String,
    },

    #[error(
        "this step needs {kind} {id}, but rbuild runs with a single-id map (only the caller is \
         mapped, as 0): add a range with `usermod --add-subuids 100000-165535 \
         --add-subgids 100000-165535 {user}` and install `uidmap` (newuidmap/newgidmap)"
    )]
    IdNotMapped {
        kind: &'static str,
        id: u32,
        user: String,
    },

    #[error("handshake with {peer} broken: {detail}")]
    Handshake { peer: &'static str, detail: String },

    #[error("overlay mount on {target} failed with {mode}: {detail}")]
    Overlay {
        mode: &'static str,
        target: PathBuf,
        detail: String,
    },

    #[error("unknown RBUILD_OVERLAY value {0:?}: use kernel, fuse or copy")]
    OverlayMode(String),

    #[error("path {path:?} escapes the root {root} or cannot be resolved: {detail}")]
    Escape {
        root: PathBuf,
        path: String,
        detail: String,
    },

    #[error("invalid RUN spec: {0}")]
    Spec(String),

    #[error("sandbox setup failed at {step}: {detail}")]
    Setup { step: String, detail: String },

    #[error("command {argv0:?} not found in PATH {path:?} inside the sandbox")]
    NotFound { argv0: String, path: String },

    #[error("the step was interrupted by signal {0}")]
    Interrupted(i32),
}

fn fmt_path(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" on {}", p.display()),
        None => String::new(),
    }
}

impl SandboxError {
    /// Wraps an `io::Error` with the operation and the path it failed on.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| SandboxError::Io { op, path, source }
    }

    /// Wraps an errno with the call and the path it failed on.
    pub fn sys(call: &'static str, path: Option<&std::path::Path>) -> impl FnOnce(Errno) -> Self {
        let path = path.map(|p| p.to_path_buf());
        move |errno| SandboxError::Sys { call, path, errno }
    }
}

/// The sandbox's result type.
pub type Result<T, E = SandboxError> = std::result::Result<T, E>;
