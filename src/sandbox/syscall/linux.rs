//! The real [`Syscall`]: thin wrappers over nix and raw `libc::syscall` for
//! the calls nix 0.29 lacks (the new mount API, `mount_setattr`).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::{OverlayCallError, OverlayStage, SysResult, Syscall};

// From <linux/mount.h>; libc 0.2 has the syscall numbers but not these.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The kernel itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

fn cpath(path: &Path) -> Result<CString, Errno> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn cstr(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

fn other(errno: Errno, detail: impl Into<String>) -> OverlayCallError {
    OverlayCallError {
        errno,
        stage: OverlayStage::Other,
        detail: detail.into(),
    }
}

fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Reads what the kernel logged on an fs context fd (`e overlay: ...`
/// lines), which says much more than the errno alone.
fn fs_context_log(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    // Each read returns one message; ENODATA ends the log.
    for _ in 0..16 {
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.push(
            String::from_utf8_lossy(&buf[..n as usize])
                .trim()
                .to_string(),
        );
    }
    out.join("; ")
}

impl LinuxSyscall {
    fn fsconfig(
        fd: &OwnedFd,
        cmd: libc::c_uint,
        key: Option<&str>,
        value: Option<&CString>,
    ) -> Result<(), OverlayCallError> {
        let stage = match key {
            Some("lowerdir+") => OverlayStage::LowerdirPlus,
            _ => OverlayStage::Other,
        };
        let key_c = key.map(cstr).transpose().map_err(|e| other(e, "key"))?;
        let key_ptr = key_c.as_ref().map_or(std::ptr::null(), |k| k.as_ptr());
        let val_ptr = value.map_or(std::ptr::null(), |v| v.as_ptr());
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fd.as_raw_fd(),
                cmd,
                key_ptr,
                val_ptr,
                0 as libc::c_int,
            )
        };
        check(ret).map(|_| ()).map_err(|e| {
            let log = fs_context_log(fd);
            let what = match (key, value) {
                (Some(k), Some(v)) => format!("fsconfig {k}={}", v.to_string_lossy()),
                (Some(k), None) => format!("fsconfig {k}"),
                _ => "fsconfig create".to_string(),
            };
            OverlayCallError {
                errno: e,
                stage,
                detail: if log.is_empty() {
                    what
                } else {
                    format!("{what}: {log}")
                },
            }
        })
    }
}

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> SysResult {
        nix::mount::umount2(target, flags)
    }

    fn make_readonly_recursive(&self, target: &Path) -> SysResult {
        let path = cpath(target)?;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let ret = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                path.as_ptr(),
                AT_RECURSIVE,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        check(ret).map(|_| ())
    }

    fn mount_overlay(
        &self,
        lowers: &[&Path],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), OverlayCallError> {
        let fstype = cstr("overlay").map_err(|e| other(e, "fstype"))?;
        let ret = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
        let fs_fd = check(ret).map_err(|errno| OverlayCallError {
            errno,
            stage: OverlayStage::Open,
            detail: "fsopen(overlay)".into(),
        })?;
        // SAFETY: fsopen returned a new fd that nothing else owns.
        let fs_fd = unsafe { OwnedFd::from_raw_fd(fs_fd as libc::c_int) };
        let as_c = |p: &Path| cpath(p).map_err(|e| other(e, format!("path {}", p.display())));
        for lower in lowers {
            Self::fsconfig(
                &fs_fd,
                FSCONFIG_SET_STRING,
                Some("lowerdir+"),
                Some(&as_c(lower)?),
            )?;
        }
        Self::fsconfig(
            &fs_fd,
            FSCONFIG_SET_STRING,
            Some("upperdir"),
            Some(&as_c(upper)?),
        )?;
        Self::fsconfig(
            &fs_fd,
            FSCONFIG_SET_STRING,
            Some("workdir"),
            Some(&as_c(work)?),
        )?;
        Self::fsconfig(&fs_fd, FSCONFIG_SET_FLAG, Some("userxattr"), None)?;
        Self::fsconfig(&fs_fd, FSCONFIG_CMD_CREATE, None, None)?;
        let ret =
            unsafe { libc::syscall(libc::SYS_fsmount, fs_fd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
        let mnt_fd =
            check(ret).map_err(|e| other(e, format!("fsmount: {}", fs_context_log(&fs_fd))))?;
        // SAFETY: fsmount returned a new fd that nothing else owns.
        let mnt_fd = unsafe { OwnedFd::from_raw_fd(mnt_fd as libc::c_int) };
        let target_c = as_c(target)?;
        let empty = cstr("").map_err(|e| other(e, "empty path"))?;
        let ret = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                mnt_fd.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                target_c.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        check(ret).map(|_| ()).map_err(|e| other(e, "move_mount"))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn chdir(&self, path: &Path) -> SysResult {
        nix::unistd::chdir(path)
    }

    fn unshare(&self, flags: CloneFlags) -> SysResult {
        nix::sched::unshare(flags)
    }

    fn sethostname(&self, name: &str) -> SysResult {
        nix::unistd::sethostname(name)
    }

    fn mkdir(&self, path: &Path, mode: u32) -> SysResult {
        nix::unistd::mkdir(path, Mode::from_bits_truncate(mode))
    }

    fn create_file(&self, path: &Path, mode: u32) -> SysResult {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_CREAT
                | nix::fcntl::OFlag::O_EXCL
                | nix::fcntl::OFlag::O_WRONLY
                | nix::fcntl::OFlag::O_CLOEXEC
                | nix::fcntl::OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(mode),
        )?;
        nix::unistd::close(fd)
    }

    fn symlink(&self, target: &Path, link: &Path) -> SysResult {
        nix::unistd::symlinkat(target, None, link)
    }

    fn setgroups(&self, gids: &[u32]) -> SysResult {
        let gids: Vec<Gid> = gids.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&gids)
    }

    fn setgid(&self, gid: u32) -> SysResult {
        let gid = Gid::from_raw(gid);
        nix::unistd::setresgid(gid, gid, gid)
    }

    fn setuid(&self, uid: u32) -> SysResult {
        let uid = Uid::from_raw(uid);
        nix::unistd::setresuid(uid, uid, uid)
    }

    fn set_no_new_privs(&self) -> SysResult {
        let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        check(ret as libc::c_long).map(|_| ())
    }

    fn drop_bounding_cap(&self, cap: u32) -> SysResult {
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        check(ret as libc::c_long).map(|_| ())
    }

    fn clear_ambient_caps(&self) -> SysResult {
        let ret = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        check(ret as libc::c_long).map(|_| ())
    }

    fn loopback_up(&self) -> SysResult {
        let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        let sock = check(sock as libc::c_long)? as libc::c_int;
        // SAFETY: socket returned a new fd that nothing else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(sock) };
        // SAFETY: ifreq is plain data; zero is a valid initial value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
        check(ret as libc::c_long)?;
        unsafe {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        }
        let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
        check(ret as libc::c_long).map(|_| ())
    }
}
