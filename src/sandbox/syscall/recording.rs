//! A [`Syscall`] that records each call and can be told to fail one, for
//! unit tests of call order that need neither root nor namespaces.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::{OverlayCallError, OverlayStage, SysResult, Syscall};

/// One recorded kernel call with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount(PathBuf),
    ReadonlyRecursive(PathBuf),
    Overlay {
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
    },
    PivotRoot(PathBuf, PathBuf),
    Chdir(PathBuf),
    Unshare(CloneFlags),
    Sethostname(String),
    Mkdir(PathBuf),
    CreateFile(PathBuf),
    Symlink(PathBuf, PathBuf),
    Setgroups(Vec<u32>),
    Setgid(u32),
    Setuid(u32),
    NoNewPrivs,
    DropCap(u32),
    ClearAmbient,
    LoopbackUp,
}

/// Records calls instead of making them; `fail_when` makes the first call
/// matching a predicate return an errno.
#[derive(Default)]
pub struct RecordingSyscall {
    calls: RefCell<Vec<Call>>,
    #[allow(clippy::type_complexity)]
    fail: Option<(Box<dyn Fn(&Call) -> bool>, Errno)>,
}

impl RecordingSyscall {
    /// A recorder where every call succeeds.
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorder where calls matching `pred` fail with `errno`.
    pub fn failing(pred: impl Fn(&Call) -> bool + 'static, errno: Errno) -> Self {
        RecordingSyscall {
            calls: RefCell::new(Vec::new()),
            fail: Some((Box::new(pred), errno)),
        }
    }

    /// The calls made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    fn record(&self, call: Call) -> SysResult {
        let result = match &self.fail {
            Some((pred, errno)) if pred(&call) => Err(*errno),
            _ => Ok(()),
        };
        self.calls.borrow_mut().push(call);
        result
    }
}

impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult {
        self.record(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        })
    }
    fn umount(&self, target: &Path, _flags: MntFlags) -> SysResult {
        self.record(Call::Umount(target.to_path_buf()))
    }
    fn make_readonly_recursive(&self, target: &Path) -> SysResult {
        self.record(Call::ReadonlyRecursive(target.to_path_buf()))
    }
    fn mount_overlay(
        &self,
        lowers: &[&Path],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), OverlayCallError> {
        // A recorded failure acts as a kernel without `lowerdir+`.
        self.record(Call::Overlay {
            lowers: lowers.iter().map(|p| p.to_path_buf()).collect(),
            upper: upper.to_path_buf(),
            work: work.to_path_buf(),
            target: target.to_path_buf(),
        })
        .map_err(|errno| OverlayCallError {
            errno,
            stage: OverlayStage::LowerdirPlus,
            detail: "recorded failure".into(),
        })
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult {
        self.record(Call::PivotRoot(
            new_root.to_path_buf(),
            put_old.to_path_buf(),
        ))
    }
    fn chdir(&self, path: &Path) -> SysResult {
        self.record(Call::Chdir(path.to_path_buf()))
    }
    fn unshare(&self, flags: CloneFlags) -> SysResult {
        self.record(Call::Unshare(flags))
    }
    fn sethostname(&self, name: &str) -> SysResult {
        self.record(Call::Sethostname(name.to_string()))
    }
    fn mkdir(&self, path: &Path, _mode: u32) -> SysResult {
        self.record(Call::Mkdir(path.to_path_buf()))
    }
    fn create_file(&self, path: &Path, _mode: u32) -> SysResult {
        self.record(Call::CreateFile(path.to_path_buf()))
    }
    fn symlink(&self, target: &Path, link: &Path) -> SysResult {
        self.record(Call::Symlink(target.to_path_buf(), link.to_path_buf()))
    }
    fn setgroups(&self, gids: &[u32]) -> SysResult {
        self.record(Call::Setgroups(gids.to_vec()))
    }
    fn setgid(&self, gid: u32) -> SysResult {
        self.record(Call::Setgid(gid))
    }
    fn setuid(&self, uid: u32) -> SysResult {
        self.record(Call::Setuid(uid))
    }
    fn set_no_new_privs(&self) -> SysResult {
        self.record(Call::NoNewPrivs)
    }
    fn drop_bounding_cap(&self, cap: u32) -> SysResult {
        self.record(Call::DropCap(cap))
    }
    fn clear_ambient_caps(&self) -> SysResult {
        self.record(Call::ClearAmbient)
    }
    fn loopback_up(&self) -> SysResult {
        self.record(Call::LoopbackUp)
    }
}
