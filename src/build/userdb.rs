//! User and group names to ids through the image's own `/etc/passwd` and
//! `/etc/group`, read through [`Rootfs`] (a hostile `/etc -> /` cannot make
//! the build read the host's files).
//!
//! Two rules, because docker has two:
//! - `COPY --chown` ([`resolve_chown`]), as BuildKit: a name without a group
//!   takes the user's primary gid; a numeric uid without a group uses the
//!   same number as gid ("Providing a username without groupname or a UID
//!   without GID will use the same numeric UID as the GID" is documented,
//!   BuildKit uses the passwd gid for names).
//! - `USER` for RUN ([`resolve_user`]), as runc's `GetExecUser`: a uid is
//!   looked up for its primary gid and home (0 and `/` when absent); with
//!   no group given, the supplementary groups are every group listing the
//!   user's name.
//!
//! Numeric ids are always accepted, even when the files do not exist.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::layer::rootfs::{Rootfs, RootfsError};

pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

/// Why a user or group could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserDbError {
    #[error("invalid user {spec:?}: expected USER[:GROUP] with names or numeric ids")]
    BadSpec { spec: String },
    #[error("unable to find user {name:?}: no matching entry in {file}{missing}")]
    UnknownUser {
        name: String,
        file: &'static str,
        /// Set when the file itself is absent from the image.
        missing: &'static str,
    },
    #[error("unable to find group {name:?}: no matching entry in {file}{missing}")]
    UnknownGroup {
        name: String,
        file: &'static str,
        missing: &'static str,
    },
    #[error("reading {file} in the image: {source}")]
    Read {
        file: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
}

/// One `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// One `/etc/group` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Who a RUN step runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub supplementary_gids: Vec<u32>,
    /// For `HOME` when the image's ENV does not set it.
    pub home: PathBuf,
}

fn parse_id(s: &str) -> Option<u32> {
    // u32::MAX is (uid_t)-1, "no change" to the kernel: never a real id.
    s.parse::<u32>().ok().filter(|id| *id != u32::MAX)
}

fn split_spec(spec: &str) -> Result<(&str, Option<&str>), UserDbError> {
    let bad = || UserDbError::BadSpec {
        spec: spec.to_string(),
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(bad());
    }
    Ok((user, group))
}

/// Reads the lines of a file in the image; `None` when it does not exist.
fn read_lines(rootfs: &Rootfs, file: &'static str) -> Result<Option<Vec<String>>, UserDbError> {
    let f = match rootfs.open(file) {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.io_kind(),
                Some(io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    let mut lines = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|source| UserDbError::Read { file, source })?;
        lines.push(line);
    }
    Ok(Some(lines))
}

/// The entries of the image's `/etc/passwd` (malformed lines skipped, as libc does).
pub fn read_passwd(rootfs: &Rootfs) -> Result<Option<Vec<PasswdEntry>>, UserDbError> {
    Ok(read_lines(rootfs, PASSWD)?
        .map(|lines| lines.iter().filter_map(|l| parse_passwd_line(l)).collect()))
}

/// The entries of the image's `/etc/group`.
pub fn read_group(rootfs: &Rootfs) -> Result<Option<Vec<GroupEntry>>, UserDbError> {
    Ok(read_lines(rootfs, GROUP)?
        .map(|lines| lines.iter().filter_map(|l| parse_group_line(l)).collect()))
}

pub fn parse_passwd_line(line: &str) -> Option<PasswdEntry> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 4 {
        return None;
    }
    Some(PasswdEntry {
        name: f[0].to_string(),
        uid: parse_id(f[2])?,
        gid: parse_id(f[3])?,
        home: f.get(5).unwrap_or(&"").to_string(),
        shell: f.get(6).unwrap_or(&"").to_string(),
    })
}

pub fn parse_group_line(line: &str) -> Option<GroupEntry> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 3 {
        return None;
    }
    Some(GroupEntry {
        name: f[0].to_string(),
        gid: parse_id(f[2])?,
        members: f
            .get(3)
            .map(|m| {
                m.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn missing_note(present: bool) -> &'static str {
    if present {
        ""
    } else {
        " (the file does not exist in the image)"
    }
}

fn lookup_group(rootfs: &Rootfs, group: &str) -> Result<u32, UserDbError> {
    if let Some(gid) = parse_id(group) {
        return Ok(gid);
    }
    let groups = read_group(rootfs)?;
    groups
        .as_ref()
        .and_then(|gs| gs.iter().find(|g| g.name == group))
        .map(|g| g.gid)
        .ok_or(UserDbError::UnknownGroup {
            name: group.to_string(),
            file: GROUP,
            missing: missing_note(groups.is_some()),
        })
}

fn lookup_user(rootfs: &Rootfs, user: &str) -> Result<PasswdEntry, UserDbError> {
    let users = read_passwd(rootfs)?;
    users
        .as_ref()
        .and_then(|us| us.iter().find(|u| u.name == user).cloned())
        .ok_or(UserDbError::UnknownUser {
            name: user.to_string(),
            file: PASSWD,
            missing: missing_note(users.is_some()),
        })
}

/// `COPY --chown=SPEC` / `ADD --chown=SPEC` to (uid, gid).
pub fn resolve_chown(rootfs: &Rootfs, spec: &str) -> Result<(u32, u32), UserDbError> {
    let (user, group) = split_spec(spec)?;
    let (uid, primary) = match parse_id(user) {
        Some(uid) => (uid, uid),
        None => {
            let e = lookup_user(rootfs, user)?;
            (e.uid, e.gid)
        }
    };
    let gid = match group {
        Some(g) => lookup_group(rootfs, g)?,
        None => primary,
    };
    Ok((uid, gid))
}

/// The owner of directories `WORKDIR` creates under `USER SPEC`: as
/// `--chown`, except that a name the image does not know means id 0 (as
/// BuildKit's file operations resolve it), because an unknown `USER` is only
/// an error once something runs as it.
pub fn resolve_dir_owner(rootfs: &Rootfs, spec: &str) -> Result<(u32, u32), UserDbError> {
    let (user, group) = split_spec(spec)?;
    let known = |r: Result<u32, UserDbError>| match r {
        Err(UserDbError::UnknownUser { .. } | UserDbError::UnknownGroup { .. }) => Ok(0),
        other => other,
    };
    let (uid, primary) = match parse_id(user) {
        Some(uid) => (uid, uid),
        None => match lookup_user(rootfs, user) {
            Ok(e) => (e.uid, e.gid),
            Err(UserDbError::UnknownUser { .. }) => (0, 0),
            Err(e) => return Err(e),
        },
    };
    let gid = match group {
        Some(g) => known(lookup_group(rootfs, g))?,
        None => primary,
    };
    Ok((uid, gid))
}

/// `USER SPEC` to the ids and groups a RUN step gets.
pub fn resolve_user(rootfs: &Rootfs, spec: &str) -> Result<ExecUser, UserDbError> {
    let (user, group) = split_spec(spec)?;
    let entry = match parse_id(user) {
        Some(uid) => read_passwd(rootfs)?
            .and_then(|us| us.into_iter().find(|u| u.uid == uid))
            .unwrap_or(PasswdEntry {
                name: String::new(),
                uid,
                gid: 0,
                home: "/".to_string(),
                shell: String::new(),
            }),
        None => lookup_user(rootfs, user)?,
    };
    let (gid, supplementary_gids) = match group {
        Some(g) => (lookup_group(rootfs, g)?, Vec::new()),
        None => {
            let mut sgids: Vec<u32> = Vec::new();
            if !entry.name.is_empty() {
                for g in read_group(rootfs)?.unwrap_or_default() {
                    if g.members.contains(&entry.name) && !sgids.contains(&g.gid) {
                        sgids.push(g.gid);
                    }
                }
            }
            (entry.gid, sgids)
        }
    };
    let home = if entry.home.is_empty() {
        PathBuf::from("/")
    } else {
        Path::new(&entry.home).to_path_buf()
    };
    Ok(ExecUser {
        uid: entry.uid,
        gid,
        supplementary_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn image(passwd: Option<&str>, group: Option<&str>) -> (tempfile::TempDir, Rootfs) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        if let Some(p) = passwd {
            fs::write(dir.path().join("etc/passwd"), p).unwrap();
        }
        if let Some(g) = group {
            fs::write(dir.path().join("etc/group"), g).unwrap();
        }
        let r = Rootfs::new(dir.path().to_path_buf());
        (dir, r)
    }

    const PW: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\napp:x:1000:1001:App:/home/app:/bin/sh\nnohome:x:1002:1002::\n";
    const GR: &str = "root:x:0:\nwheel:x:10:app,other\nappgrp:x:1001:\ndocker:x:999:app\n";

    #[test]
    fn chown_rules() {
        let (_d, r) = image(Some(PW), Some(GR));
        assert_eq!(resolve_chown(&r, "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_chown(&r, "app:wheel").unwrap(), (1000, 10));
        assert_eq!(resolve_chown(&r, "app:5").unwrap(), (1000, 5));
        assert_eq!(resolve_chown(&r, "42").unwrap(), (42, 42));
        assert_eq!(resolve_chown(&r, "42:docker").unwrap(), (42, 999));
        assert_eq!(resolve_chown(&r, "0:0").unwrap(), (0, 0));
        let err = resolve_chown(&r, "ghost").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user \"ghost\": no matching entry in /etc/passwd"
        );
        let err = resolve_chown(&r, "app:ghosts").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group \"ghosts\": no matching entry in /etc/group"
        );
        for bad in ["", ":1", "a:", "a:b:c"] {
            assert!(
                matches!(resolve_chown(&r, bad), Err(UserDbError::BadSpec { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn workdir_owner_is_root_for_unknown_names() {
        let (_d, r) = image(Some(PW), Some(GR));
        assert_eq!(resolve_dir_owner(&r, "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_dir_owner(&r, "42").unwrap(), (42, 42));
        assert_eq!(resolve_dir_owner(&r, "app:wheel").unwrap(), (1000, 10));
        assert_eq!(resolve_dir_owner(&r, "ghost").unwrap(), (0, 0));
        assert_eq!(resolve_dir_owner(&r, "ghost:wheel").unwrap(), (0, 10));
        assert_eq!(resolve_dir_owner(&r, "app:ghosts").unwrap(), (1000, 0));
        let (_d, none) = image(None, None);
        assert_eq!(resolve_dir_owner(&none, "app").unwrap(), (0, 0));
        assert!(matches!(
            resolve_dir_owner(&r, "a:"),
            Err(UserDbError::BadSpec { .. })
        ));
    }

    #[test]
    fn numeric_ids_work_without_files() {
        let (_d, r) = image(None, None);
        assert_eq!(resolve_chown(&r, "7:8").unwrap(), (7, 8));
        let u = resolve_user(&r, "7").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_path()), (7, 0, Path::new("/")));
        let err = resolve_chown(&r, "app").unwrap_err().to_string();
        assert!(
            err.ends_with("/etc/passwd (the file does not exist in the image)"),
            "{err}"
        );
    }

    #[test]
    fn user_rules_with_supplementary_groups() {
        let (_d, r) = image(Some(PW), Some(GR));
        let u = resolve_user(&r, "app").unwrap();
        assert_eq!(
            u,
            ExecUser {
                uid: 1000,
                gid: 1001,
                supplementary_gids: vec![10, 999],
                home: PathBuf::from("/home/app"),
            }
        );
        // By uid: looked up for gid and groups.
        assert_eq!(resolve_user(&r, "1000").unwrap(), u);
        // An explicit group: no supplementary groups.
        let u = resolve_user(&r, "app:wheel").unwrap();
        assert_eq!((u.gid, u.supplementary_gids.len()), (10, 0));
        assert_eq!(resolve_user(&r, "nohome").unwrap().home, Path::new("/"));
        assert!(resolve_user(&r, "ghost").is_err());
    }

    #[test]
    fn hostile_etc_symlink_reads_the_image_not_the_host() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("passwd"), "img:x:5:6::/:/bin/sh\n").unwrap();
        let r = Rootfs::new(dir.path().to_path_buf());
        // /etc/passwd resolves to <root>/passwd, never the host's /etc/passwd.
        assert_eq!(resolve_chown(&r, "img").unwrap(), (5, 6));
        assert!(resolve_chown(&r, "root").is_err());
    }
}
