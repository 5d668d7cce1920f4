//! Sub-id ranges (`/etc/subuid`, `/etc/subgid`) and writing a child's uid/gid
//! maps, through the setuid `newuidmap`/`newgidmap` helpers or, without a
//! range or helpers, as a single-id map written directly.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::{Result, SandboxError};

/// How many sub-ids map after the caller (as buildah and podman do).
pub const SUBID_SPAN: u32 = 65536;

/// One `NAME:START:COUNT` entry of `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubidRange {
    pub start: u32,
    pub count: u32,
}

/// One line of a uid or gid map: `inside host count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapLine {
    pub inside: u32,
    pub host: u32,
    pub count: u32,
}

/// uid or gid, for messages and helper names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Uid,
    Gid,
}

impl IdKind {
    /// The setuid helper that writes this map.
    pub fn helper(self) -> &'static str {
        match self {
            IdKind::Uid => "newuidmap",
            IdKind::Gid => "newgidmap",
        }
    }
    /// The sub-id file for this kind.
    pub fn subid_file(self) -> &'static Path {
        match self {
            IdKind::Uid => Path::new("/etc/subuid"),
            IdKind::Gid => Path::new("/etc/subgid"),
        }
    }
    fn proc_file(self) -> &'static str {
        match self {
            IdKind::Uid => "uid_map",
            IdKind::Gid => "gid_map",
        }
    }
}

/// Finds the first range for `user` (by name or numeric id) in sub-id file
/// text. Comment and blank lines are skipped; a malformed line that names
/// this user is an error, other malformed lines are ignored as shadow-utils does.
pub fn parse_subid(text: &str, file: &Path, user: &str, id: u32) -> Result<Option<SubidRange>> {
    let id_text = id.to_string();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(':');
        let owner = fields.next().unwrap_or_default();
        if owner != user && owner != id_text {
            continue;
        }
        let syntax = || SandboxError::SubidSyntax {
            path: file.to_path_buf(),
            line: index + 1,
            text: raw.to_string(),
        };
        let start = fields
            .next()
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(syntax)?;
        let count = fields
            .next()
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(syntax)?;
        if fields.next().is_some() {
            return Err(syntax());
        }
        if count == 0 {
            continue;
        }
        return Ok(Some(SubidRange { start, count }));
    }
    Ok(None)
}

/// Reads the range of `user` from the sub-id file of `kind`; a missing file
/// means no range.
pub fn lookup_subid(kind: IdKind, user: &str, id: u32) -> Result<Option<SubidRange>> {
    let file = kind.subid_file();
    match std::fs::read_to_string(file) {
        Ok(text) => parse_subid(&text, file, user, id),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SandboxError::io("read", file)(e)),
    }
}

/// The map rbuild wants: 0 → the caller, 1..=SUBID_SPAN → the sub-id range
/// (shorter when the range is).
pub fn full_map(caller: u32, range: SubidRange) -> Vec<IdMapLine> {
    vec![
        IdMapLine {
            inside: 0,
            host: caller,
            count: 1,
        },
        IdMapLine {
            inside: 1,
            host: range.start,
            count: range.count.min(SUBID_SPAN),
        },
    ]
}

/// The text of a map file for these lines.
pub fn map_text(lines: &[IdMapLine]) -> String {
    lines
        .iter()
        .map(|l| format!("{} {} {}\n", l.inside, l.host, l.count))
        .collect()
}

/// Finds a helper on `PATH`, then in the usual system directories.
pub fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Writes `pid`'s map of `kind` with the setuid helper at `helper`.
pub fn write_with_helper(kind: IdKind, helper: &Path, pid: i32, lines: &[IdMapLine]) -> Result<()> {
    let mut cmd = Command::new(helper);
    cmd.arg(pid.to_string());
    for l in lines {
        cmd.args([
            l.inside.to_string(),
            l.host.to_string(),
            l.count.to_string(),
        ]);
    }
    let out = cmd.output().map_err(|e| SandboxError::IdMapHelper {
        helper: kind.helper(),
        pid,
        detail: format!("cannot run {}: {e}", helper.display()),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(SandboxError::IdMapHelper {
        helper: kind.helper(),
        pid,
        detail: format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        ),
    })
}

/// Writes `0 caller 1` as `pid`'s map of `kind` directly. For gid maps the
/// kernel demands `setgroups` be denied first, which is why a single-id
/// sandbox cannot set supplementary groups.
pub fn write_single(kind: IdKind, pid: i32, caller: u32) -> Result<()> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if kind == IdKind::Gid {
        let setgroups = proc_dir.join("setgroups");
        std::fs::write(&setgroups, "deny").map_err(SandboxError::io("write", &setgroups))?;
    }
    let file = proc_dir.join(kind.proc_file());
    let text = map_text(&[IdMapLine {
        inside: 0,
        host: caller,
        count: 1,
    }]);
    std::fs::write(&file, text).map_err(SandboxError::io("write", &file))
}

/// Parses a `/proc/PID/uid_map` text.
pub fn parse_map(text: &str) -> Vec<IdMapLine> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|x| x.parse::<u32>());
            match (f.next(), f.next(), f.next()) {
                (Some(Ok(inside)), Some(Ok(host)), Some(Ok(count))) => Some(IdMapLine {
                    inside,
                    host,
                    count,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Whether `id` has a mapping in `lines`.
pub fn is_mapped(lines: &[IdMapLine], id: u32) -> bool {
    lines
        .iter()
        .any(|l| id >= l.inside && (id - l.inside) < l.count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/etc/subuid";

    #[test]
    fn finds_range_by_name_or_id_skipping_comments() {
        let text = "# comment\n\nalice:100000:65536\n1002:200000:1000\n";
        let p = Path::new(FILE);
        assert_eq!(
            parse_subid(text, p, "alice", 1001).unwrap(),
            Some(SubidRange {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            parse_subid(text, p, "bob", 1002).unwrap(),
            Some(SubidRange {
                start: 200000,
                count: 1000
            })
        );
        assert_eq!(parse_subid(text, p, "carol", 1003).unwrap(), None);
    }

    #[test]
    fn malformed_line_for_the_user_names_file_and_line() {
        let err = parse_subid("x:1:2\nalice:abc:5\n", Path::new(FILE), "alice", 7).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/etc/subuid:2"), "{msg}");
        assert!(msg.contains("NAME:START:COUNT"), "{msg}");
        // Someone else's broken line does not matter.
        assert_eq!(
            parse_subid("bob:zz\nalice:5:6\n", Path::new(FILE), "alice", 7).unwrap(),
            Some(SubidRange { start: 5, count: 6 })
        );
    }

    #[test]
    fn full_map_puts_caller_at_zero_and_caps_the_span() {
        let lines = full_map(
            1000,
            SubidRange {
                start: 100000,
                count: 200000,
            },
        );
        assert_eq!(map_text(&lines), "0 1000 1\n1 100000 65536\n");
        let short = full_map(
            1000,
            SubidRange {
                start: 5,
                count: 10,
            },
        );
        assert_eq!(short[1].count, 10);
    }

    #[test]
    fn parse_map_and_is_mapped() {
        let lines = parse_map("         0       1001          1\n1 100000 65536\n");
        assert_eq!(lines.len(), 2);
        assert!(is_mapped(&lines, 0));
        assert!(is_mapped(&lines, 65536));
        assert!(!is_mapped(&lines, 65537));
        let single = parse_map("0 1001 1\n");
        assert!(!is_mapped(&single, 1000));
    }
}
