//! File descriptor–relative operations confined to one directory tree, for
//! extraction.
//!
//! Parents are resolved by the kernel with `openat2(RESOLVE_IN_ROOT)`: a
//! symlink met on the way (absolute or full of `..`) is followed as if the
//! destination were `/`, so no parent can lie outside it, and nothing can
//! swap a component between our check and our use. The last component of
//! every operation is a single name acted on with `*at` calls that do not
//! follow it. This is the kernel-enforced counterpart of `rootfs.rs`'s
//! user-space resolver, used here because extraction needs fd-level calls
//! (`mknodat`, `fsetxattr`, `linkat`) on a tree nobody else touches.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// An open directory that every path is resolved inside.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A path's components as a C string joined by `/` (`.` when empty).
fn joined(components: &[&[u8]]) -> io::Result<CString> {
    let mut s = components.join(&b'/');
    if s.is_empty() {
        s.push(b'.');
    }
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a path"))
}

/// A single name as a C string.
pub fn cname(name: &[u8]) -> io::Result<CString> {
    CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a name"))
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a path"))?;
        // SAFETY: `c` is a valid C string; the returned fd is owned below.
        let fd = cvt(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` was just returned by open and is not owned elsewhere.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `components` (relative to the root) with symlinks resolved
    /// inside the root.
    pub fn resolve(&self, components: &[&[u8]], flags: libc::c_int) -> io::Result<OwnedFd> {
        let c = joined(components)?;
        // SAFETY: open_how is plain data; zero is a valid value for every field.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        // EAGAIN: a rename somewhere on the mount raced a `..` step; the
        // kernel asks to retry. Bounded, so a rename storm cannot spin us.
        for _ in 0..128 {
            // SAFETY: valid fd, C string and open_how of the size passed.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    self.fd.as_raw_fd(),
                    c.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            if ret >= 0 {
                // SAFETY: the kernel returned a new fd that nothing else owns.
                return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => continue,
                Some(libc::ENOSYS) => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "openat2(2) is unavailable (Linux < 5.6, or blocked by a seccomp \
                         profile): rbuild needs it to extract layers safely",
                    ))
                }
                _ => return Err(err),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "path resolution kept racing concurrent renames; try again",
        ))
    }

    /// The directory `components` as an `O_PATH` fd, creating missing
    /// directories (mode 0755) inside the root as `mkdir -p` would.
    pub fn make_parents(&self, components: &[&[u8]]) -> io::Result<OwnedFd> {
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        match self.resolve(components, flags) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            other => return other,
        }
        let mut cur = self.resolve(&[], flags)?;
        for i in 0..components.len() {
            match self.resolve(&components[..=i], flags) {
                Ok(fd) => cur = fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let name = cname(components[i])?;
                    match mkdirat(&cur, &name, 0o755) {
                        Ok(()) => {}
                        // A dangling symlink: resolving it again reports ENOENT.
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                    cur = self.resolve(&components[..=i], flags)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(cur)
    }
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub fn lstat_at(dir: &OwnedFd, name: &CStr) -> io::Result<Option<libc::stat>> {
    // SAFETY: stat is plain data, filled by the kernel on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, C string and out-pointer.
    let ret = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match cvt(ret) {
        Ok(_) => Ok(Some(st)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

pub fn mkdirat(dir: &OwnedFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd and C string.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(dir: &OwnedFd, name: &CStr, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: valid fd and C string.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &CStr, dir: &OwnedFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings and fd.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// Hardlinks `old_dir/old_name` (not following a symlink) as `dir/name`.
pub fn linkat(old_dir: &OwnedFd, old_name: &CStr, dir: &OwnedFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid fds and C strings; flags 0 = do not follow old_name.
    cvt(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old_name.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            0,
        )
    })
    .map(drop)
}

/// Opens `name` in `dir` with `flags | O_NOFOLLOW`.
pub fn openat(dir: &OwnedFd, name: &CStr, flags: libc::c_int, mode: u32) -> io::Result<File> {
    // SAFETY: valid fd and C string; the fd is owned by the File.
    let fd = cvt(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    })?;
    // SAFETY: fresh fd from openat.
    Ok(unsafe { File::from_raw_fd(fd) })
}

pub fn chown_at(dir: &OwnedFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid fd and C string.
    cvt(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// chmod of a non-symlink `name` in `dir`.
pub fn chmod_at(dir: &OwnedFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd and C string.
    cvt(unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode, 0) }).map(drop)
}

/// Sets atime and mtime of `name` in `dir` (not following it) to `secs`.
pub fn set_mtime_at(dir: &OwnedFd, name: &CStr, secs: i64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: valid fd, C string and a two-element timespec array.
    cvt(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// Removes `name` from `dir`, recursively when it is a directory, never
/// following symlinks.
pub fn remove_all_at(dir: &OwnedFd, name: &CStr) -> io::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if is_dir(&st) {
        let sub = openat(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let sub: OwnedFd = sub.into();
        let mut children = Vec::new();
        {
            let d = nix::dir::Dir::from_fd(dup(&sub)?.into_raw())?;
            let mut d = d;
            for ent in d.iter() {
                let ent = ent?;
                let n = ent.file_name();
                if n.to_bytes() != b"." && n.to_bytes() != b".." {
                    children.push(n.to_owned());
                }
            }
        }
        for child in children {
            remove_all_at(&sub, &child)?;
        }
        // SAFETY: valid fd and C string.
        cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })?;
    } else {
        // SAFETY: valid fd and C string.
        cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })?;
    }
    Ok(())
}

fn dup(fd: &OwnedFd) -> io::Result<DupFd> {
    Ok(DupFd(fd.try_clone()?))
}

struct DupFd(OwnedFd);

impl DupFd {
    fn into_raw(self) -> RawFd {
        std::os::fd::IntoRawFd::into_raw_fd(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolution_stays_inside_the_root() {
        let outer = tempfile::tempdir().unwrap();
        let root_dir = outer.path().join("root");
        std::fs::create_dir(&root_dir).unwrap();
        std::fs::create_dir(outer.path().join("victim")).unwrap();
        symlink("../victim", root_dir.join("up")).unwrap();
        symlink("/", root_dir.join("abs")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        // `up` → ../victim resolves to root/victim, which does not exist: mkdir
        // -p creates it *inside* the root.
        let _ = root.make_parents(&[b"abs", b"victim", b"x"]).unwrap();
        assert!(root_dir.join("victim/x").is_dir());
        let fd = root.make_parents(&[b"up"]).unwrap();
        drop(fd);
        assert!(std::fs::read_dir(outer.path().join("victim"))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn remove_all_does_not_follow_symlinks() {
        let outer = tempfile::tempdir().unwrap();
        let keep = outer.path().join("keep");
        std::fs::create_dir(&keep).unwrap();
        std::fs::write(keep.join("f"), b"x").unwrap();
        let d = outer.path().join("d");
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        symlink(&keep, d.join("a/link")).unwrap();
        let root = Root::open(outer.path()).unwrap();
        let top = root.resolve(&[], libc::O_PATH | libc::O_DIRECTORY).unwrap();
        remove_all_at(&top, &cname(b"d").unwrap()).unwrap();
        assert!(!d.exists());
        assert!(keep.join("f").exists());
    }
}
