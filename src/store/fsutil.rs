//! Filesystem primitives the store is built from: staged atomic writes
//! (temp file in `tmp/`, fsync, rename, fsync the directory), removal of
//! trees that contain read-only directories, and the `<pid>-` naming of
//! staging entries that lets gc tell a live build's files from a crashed one's.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::error::{Result, StoreError};

/// The prefix of every staging entry this process creates in `tmp/`.
pub(crate) fn tmp_prefix(kind: &str) -> String {
    format!("{}-{kind}-", std::process::id())
}

/// The pid a staging (or lease) entry name starts with, if it has one.
pub(crate) fn owner_pid(name: &str) -> Option<i32> {
    name.split_once('-')?.0.parse().ok()
}

/// Whether `pid` names a running process (of this pid namespace).
pub(crate) fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // kill(pid, 0) reports EPERM for live processes of other users, which
    // still count as alive; only ESRCH means gone.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(errno) => errno != nix::errno::Errno::ESRCH,
    }
}

/// How far a process's start time, read from /proc with one-second
/// resolution, may appear to be after things it made.
const START_SLACK: Duration = Duration::from_secs(5);

/// Whether the entry `name` (staging file, lease) made or last written at
/// `made` still belongs to a running process: its pid prefix names a live
/// process that started before `made`. The start-time check keeps a
/// recycled pid from keeping a crashed build's leftovers alive.
pub(crate) fn owner_alive(name: &str, made: SystemTime) -> bool {
    let Some(pid) = owner_pid(name) else {
        return false;
    };
    if !pid_alive(pid) {
        return false;
    }
    match process_start(pid) {
        Some(start) => start <= made + START_SLACK,
        // /proc hidden (hidepid) or racing with exit: trust the pid.
        None => true,
    }
}

/// When `pid` started, from `/proc/<pid>/stat` and the boot time.
fn process_start(pid: i32) -> Option<SystemTime> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; fields after
    // it start at field 3 (state), so starttime (field 22) is index 19.
    let after = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf reads a constant; no memory is passed.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    let since_boot = Duration::from_millis(ticks.saturating_mul(1000) / hz);
    Some(UNIX_EPOCH + Duration::from_secs(boot) + since_boot)
}

/// Makes a new uniquely named staging file in `tmp_dir`, opened for writing.
pub(crate) fn create_tmp_file(tmp_dir: &Path, kind: &str) -> Result<(File, PathBuf)> {
    let named = tempfile::Builder::new()
        .prefix(&tmp_prefix(kind))
        .tempfile_in(tmp_dir)
        .map_err(StoreError::io("create a staging file in", tmp_dir))?;
    let (file, path) = named
        .keep()
        .map_err(|e| StoreError::io("keep staging file", tmp_dir)(e.error))?;
    Ok((file, path))
}

/// A file being written that starts its writeback every [`Writeback::STEP`]
/// bytes (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which only queues the
/// I/O). The disk then works while the rest is still being produced, and the
/// fsync at the end waits for the last step instead of the whole file: for a
/// GiB-sized blob that is most of a second's difference.
pub(crate) struct Writeback {
    file: File,
    written: u64,
    started: u64,
}

impl Writeback {
    const STEP: u64 = 8 << 20;

    pub(crate) fn new(file: File) -> Writeback {
        Writeback {
            file,
            written: 0,
            started: 0,
        }
    }

    pub(crate) fn sync_all(&self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= Self::STEP {
            use std::os::fd::AsRawFd;
            let len = self.written - self.started;
            // SAFETY: a plain syscall on an fd this struct owns. A failure
            // (a filesystem without it) only loses the head start: the
            // final fsync still writes everything.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.started as libc::off64_t,
                    len as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Makes a new uniquely named staging directory in `tmp_dir`.
pub(crate) fn create_tmp_dir(tmp_dir: &Path, kind: &str) -> Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix(&tmp_prefix(kind))
        .tempdir_in(tmp_dir)
        .map_err(StoreError::io("create a staging directory in", tmp_dir))?;
    Ok(dir.keep())
}

/// fsyncs a directory so a rename into it survives a crash.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(StoreError::io("open directory to fsync", dir))?;
    d.sync_all().map_err(StoreError::io("fsync directory", dir))
}

/// Writes `bytes` to `dest` atomically: a reader sees the old file or the
/// whole new one, never a part, even after kill -9 or a power cut.
pub(crate) fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(tmp_dir, dest, bytes, true)
}

/// [`write_atomic`] without the fsyncs, for files that only matter while
/// their writer lives (leases): readers still never see half a file.
pub(crate) fn write_atomic_volatile(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(tmp_dir, dest, bytes, false)
}

fn write_atomic_with(tmp_dir: &Path, dest: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let (mut file, tmp_path) = create_tmp_file(tmp_dir, "write")?;
    let result = (|| {
        file.write_all(bytes)
            .map_err(StoreError::io("write staging file", &tmp_path))?;
        if durable {
            file.sync_all()
                .map_err(StoreError::io("fsync staging file", &tmp_path))?;
        }
        fs::rename(&tmp_path, dest).map_err(StoreError::io("rename staging file to", dest))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
        return result;
    }
    if durable {
        if let Some(parent) = dest.parent() {
            fsync_dir(parent)?;
        }
    }
    Ok(())
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub(crate) fn write_json<T: Serialize>(tmp_dir: &Path, dest: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Corrupt {
        path: dest.to_path_buf(),
        reason: format!("cannot serialise: {e}"),
    })?;
    bytes.push(b'\n');
    write_atomic(tmp_dir, dest, &bytes)
}

/// Reads a JSON file; `Ok(None)` if it does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        })
}

/// Creates a directory (and parents) if missing.
pub(crate) fn ensure_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(StoreError::io("create directory", path))
}

/// Opens (creating if needed) a plain file with mode 0644.
pub(crate) fn open_or_create(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(StoreError::io("open", path))
}

/// Removes a file or a whole tree; a missing path is success.
///
/// Layers hold image content, and images contain read-only directories
/// (0555 is common): when a plain removal is refused, every directory in
/// the tree gets u+rwx and the removal is retried. Inside the user
/// namespace the caller is mapped root, so sub-id owned files are removable.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("inspect", path)(e)),
    };
    if !meta.is_dir() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io("remove", path)(e)),
            _ => Ok(()),
        };
    }
    match fs::remove_dir_all(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() != io::ErrorKind::PermissionDenied => {
            return Err(StoreError::io("remove directory tree", path)(e))
        }
        Err(_) => {}
    }
    make_dirs_writable(path);
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io(
            "remove directory tree (after chmod u+rwx)",
            path,
        )(e)),
        _ => Ok(()),
    }
}

/// Adds u+rwx to every directory under `root` (symlinks are not followed),
/// parents first so their children become reachable.
fn make_dirs_writable(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if let Ok(meta) = fs::symlink_metadata(&dir) {
            if !meta.is_dir() {
                continue;
            }
            let mode = meta.permissions().mode();
            if mode & 0o700 != 0o700 {
                let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o700));
            }
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(entry.path());
                }
            }
        }
    }
}

/// Sets a path's mtime to now. gc treats items touched after a live lease
/// began as that lease's, so re-using an existing blob or layer renews it.
pub(crate) fn touch(path: &Path) -> Result<()> {
    let f = File::open(path).map_err(StoreError::io("open to renew", path))?;
    f.set_modified(std::time::SystemTime::now())
        .map_err(StoreError::io("renew mtime of", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_prefix() {
        assert_eq!(owner_pid("1234-blob-abc"), Some(1234));
        assert_eq!(owner_pid("names.json"), None);
        assert_eq!(owner_pid("x-1"), None);
    }

    #[test]
    fn this_process_is_alive_and_pid_zero_is_not() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(0));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }

    #[test]
    fn recycled_pids_do_not_own_old_entries() {
        let me = std::process::id();
        let name = format!("{me}-blob-x");
        assert!(owner_alive(&name, SystemTime::now()));
        // Made long before this process started: another process with the
        // same pid made it, and that one is gone.
        assert!(!owner_alive(
            &name,
            UNIX_EPOCH + Duration::from_secs(1_000_000)
        ));
        assert!(!owner_alive("junk", SystemTime::now()));
        let start = process_start(me as i32).unwrap();
        let now = SystemTime::now();
        assert!(start <= now && now.duration_since(start).unwrap() < Duration::from_secs(3600));
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.json");
        write_atomic(dir.path(), &dest, b"one").unwrap();
        write_atomic(dir.path(), &dest, b"two two").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two two");
        // Only the destination is left: no staging files.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn remove_tree_copes_with_read_only_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("t");
        fs::create_dir_all(top.join("a/b")).unwrap();
        fs::write(top.join("a/b/f"), b"x").unwrap();
        fs::set_permissions(top.join("a/b"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::set_permissions(top.join("a"), fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        remove_tree(&top).unwrap();
    }

    #[test]
    fn read_json_reports_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.json");
        fs::write(&p, b"{\n  oops").unwrap();
        let err = read_json::<serde_json::Value>(&p).unwrap_err().to_string();
        assert!(err.contains("bad.json") && err.contains("line 2"), "{err}");
        assert!(read_json::<serde_json::Value>(&dir.path().join("none"))
            .unwrap()
            .is_none());
    }
}
