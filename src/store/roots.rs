//! Where the store and the run root live by default.
//!
//! The choice depends on who the *real* caller is. Inside rbuild's rootless
//! user namespace `geteuid()` is 0 although the caller is an ordinary user,
//! so the sandbox's re-exec exports [`ROOTLESS_UID_ENV`] (`RBUILD_ROOTLESS_UID`)
//! with the caller's uid from outside the namespace; when it is set, the
//! rootless defaults apply whatever `geteuid()` says. `--root` /
//! `RBUILD_ROOT` and `--runroot` are handled by the CLI and override both.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::store::error::{Result, StoreError};

/// Set by the rootless re-exec to the caller's real uid (outside the namespace).
pub const ROOTLESS_UID_ENV: &str = "RBUILD_ROOTLESS_UID";

/// The storage root as root: `/var/lib/rbuild`.
pub const SYSTEM_ROOT: &str = "/var/lib/rbuild";

/// The run root as root: `/run/rbuild`.
pub const SYSTEM_RUNROOT: &str = "/run/rbuild";

/// What the defaults depend on; [`Caller::current`] reads the process.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The real caller's uid: `RBUILD_ROOTLESS_UID` if set, else `geteuid()`.
    pub uid: u32,
    /// Whether the caller is really root (not mapped root in a user namespace).
    pub is_root: bool,
    /// `$XDG_DATA_HOME`, if set and not empty.
    pub xdg_data_home: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`, if set and not empty.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$HOME`, if set and not empty.
    pub home: Option<PathBuf>,
    /// `$TMPDIR`, if set and not empty.
    pub tmpdir: Option<PathBuf>,
}

impl Caller {
    /// Reads the uid and environment of this process.
    pub fn current() -> Caller {
        Caller::from_env(nix::unistd::geteuid().as_raw(), |name| {
            std::env::var_os(name)
        })
    }

    /// Builds the caller from an effective uid and an environment lookup.
    pub fn from_env(euid: u32, var: impl Fn(&str) -> Option<OsString>) -> Caller {
        let path = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let rootless_uid = var(ROOTLESS_UID_ENV)
            .and_then(|v| v.into_string().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let (uid, is_root) = match rootless_uid {
            Some(uid) => (uid, false),
            None => (euid, euid == 0),
        };
        Caller {
            uid,
            is_root,
            xdg_data_home: path("XDG_DATA_HOME"),
            xdg_runtime_dir: path("XDG_RUNTIME_DIR"),
            home: path("HOME"),
            tmpdir: path("TMPDIR"),
        }
    }

    /// `/var/lib/rbuild` for root, else `$XDG_DATA_HOME/rbuild`, else
    /// `~/.local/share/rbuild`.
    pub fn root(&self) -> Result<PathBuf> {
        if self.is_root {
            return Ok(PathBuf::from(SYSTEM_ROOT));
        }
        if let Some(data) = self.xdg_data_home.as_ref().filter(|p| p.is_absolute()) {
            return Ok(data.join("rbuild"));
        }
        match self.home.as_ref().filter(|p| p.is_absolute()) {
            Some(home) => Ok(home.join(".local/share/rbuild")),
            None => Err(StoreError::NoRoot(format!(
                "running as uid {} without XDG_DATA_HOME or HOME set; set one of them or pass --root DIR",
                self.uid
            ))),
        }
    }

    /// `$XDG_RUNTIME_DIR/rbuild`, else `/run/rbuild` for root, else
    /// `$TMPDIR/rbuild-$UID` (TMPDIR defaulting to /tmp).
    pub fn runroot(&self) -> PathBuf {
        if let Some(run) = self.xdg_runtime_dir.as_ref().filter(|p| p.is_absolute()) {
            return run.join("rbuild");
        }
        if self.is_root {
            return PathBuf::from(SYSTEM_RUNROOT);
        }
        let tmp = self
            .tmpdir
            .clone()
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        tmp.join(format!("rbuild-{}", self.uid))
    }
}

/// The default storage root for this process (see [`Caller::root`]).
pub fn default_root() -> Result<PathBuf> {
    Caller::current().root()
}

/// The default run root for this process (see [`Caller::runroot`]).
pub fn default_runroot() -> PathBuf {
    Caller::current().runroot()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32) -> Caller {
        Caller {
            uid,
            is_root: uid == 0,
            xdg_data_home: None,
            xdg_runtime_dir: None,
            home: Some("/home/u".into()),
            tmpdir: None,
        }
    }

    #[test]
    fn root_uses_system_paths() {
        let c = user(0);
        assert_eq!(c.root().unwrap(), PathBuf::from("/var/lib/rbuild"));
        assert_eq!(c.runroot(), PathBuf::from("/run/rbuild"));
    }

    #[test]
    fn rootless_uses_xdg_then_home() {
        let mut c = user(1000);
        assert_eq!(
            c.root().unwrap(),
            PathBuf::from("/home/u/.local/share/rbuild")
        );
        assert_eq!(c.runroot(), PathBuf::from("/tmp/rbuild-1000"));
        c.xdg_data_home = Some("/data".into());
        c.xdg_runtime_dir = Some("/run/user/1000".into());
        c.tmpdir = Some("/scratch".into());
        assert_eq!(c.root().unwrap(), PathBuf::from("/data/rbuild"));
        assert_eq!(c.runroot(), PathBuf::from("/run/user/1000/rbuild"));
        c.xdg_runtime_dir = None;
        assert_eq!(c.runroot(), PathBuf::from("/scratch/rbuild-1000"));
    }

    #[test]
    fn rootless_without_home_is_a_clear_error() {
        let mut c = user(1000);
        c.home = None;
        let err = c.root().unwrap_err().to_string();
        assert!(err.contains("--root"), "{err}");
    }

    #[test]
    fn mapped_root_follows_the_env_var() {
        let env = |name: &str| match name {
            "RBUILD_ROOTLESS_UID" => Some(OsString::from("1000")),
            "HOME" => Some(OsString::from("/home/u")),
            _ => None,
        };
        // geteuid() is 0 inside the user namespace; the env var wins.
        let c = Caller::from_env(0, env);
        assert_eq!((c.uid, c.is_root), (1000, false));
        assert_eq!(
            c.root().unwrap(),
            PathBuf::from("/home/u/.local/share/rbuild")
        );
        assert_eq!(c.runroot(), PathBuf::from("/tmp/rbuild-1000"));
        let real_root = Caller::from_env(0, |_| None);
        assert!(real_root.is_root);
        assert_eq!(real_root.root().unwrap(), PathBuf::from(SYSTEM_ROOT));
    }
}
