//! Every kernel call the sandbox makes while it sets up namespaces, mounts
//! and credentials goes through [`Syscall`], so the order of those calls can
//! be checked in unit tests without root ([`RecordingSyscall`]).
//!
//! The implementation is always passed in explicitly: [`LinuxSyscall`] in
//! production, [`RecordingSyscall`] in tests.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

mod linux;
mod recording;

pub use linux::LinuxSyscall;
pub use recording::{Call, RecordingSyscall};

/// Result of one kernel call.
pub type SysResult<T = ()> = Result<T, Errno>;

/// Which part of the new-mount-API overlay sequence failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayStage {
    /// `fsopen("overlay")`: no overlay or no new mount API.
    Open,
    /// `lowerdir+` refused: a kernel before 6.8.
    LowerdirPlus,
    /// Any other step (other keys, create, fsmount, move_mount).
    Other,
}

/// A failed overlay mount: errno, stage and the kernel's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayCallError {
    pub errno: Errno,
    pub stage: OverlayStage,
    pub detail: String,
}

/// The kernel calls of the sandbox, one method per call.
pub trait Syscall {
    /// `mount(2)`.
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult;
    /// `umount2(2)`.
    fn umount(&self, target: &Path, flags: MntFlags) -> SysResult;
    /// `mount_setattr(2)` with `AT_RECURSIVE` and `MOUNT_ATTR_RDONLY`: makes a
    /// whole mount tree read-only, which a bind remount cannot do.
    fn make_readonly_recursive(&self, target: &Path) -> SysResult;
    /// Mounts a kernel overlay through the new mount API (`fsopen`,
    /// `fsconfig(lowerdir+)` per lower, `fsmount`, `move_mount`), so the number
    /// of lowers is not limited by a page-sized option string. Errors carry
    /// the kernel's own message when it gave one.
    fn mount_overlay(
        &self,
        lowers: &[&Path],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), OverlayCallError>;
    /// `pivot_root(2)`.
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult;
    /// `chdir(2)`.
    fn chdir(&self, path: &Path) -> SysResult;
    /// `unshare(2)`.
    fn unshare(&self, flags: CloneFlags) -> SysResult;
    /// `sethostname(2)`.
    fn sethostname(&self, name: &str) -> SysResult;
    /// `mkdir(2)` (not recursive).
    fn mkdir(&self, path: &Path, mode: u32) -> SysResult;
    /// Creates an empty regular file (`O_CREAT|O_EXCL`), for bind targets.
    fn create_file(&self, path: &Path, mode: u32) -> SysResult;
    /// `symlink(2)`.
    fn symlink(&self, target: &Path, link: &Path) -> SysResult;
    /// `setgroups(2)`.
    fn setgroups(&self, gids: &[u32]) -> SysResult;
    /// `setresgid(2)` with all three ids equal.
    fn setgid(&self, gid: u32) -> SysResult;
    /// `setresuid(2)` with all three ids equal.
    fn setuid(&self, uid: u32) -> SysResult;
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    fn set_no_new_privs(&self) -> SysResult;
    /// `prctl(PR_CAPBSET_DROP, cap)`: removes a capability from the bounding set.
    fn drop_bounding_cap(&self, cap: u32) -> SysResult;
    /// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)`.
    fn clear_ambient_caps(&self) -> SysResult;
    /// Sets `IFF_UP` on the loopback interface of the current net namespace.
    fn loopback_up(&self) -> SysResult;
}
