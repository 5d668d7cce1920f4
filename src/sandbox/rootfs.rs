//! The RUN step's root: paths resolved inside it, mount points created for
//! the step and removed after, and the mounts made in the step's own mount
//! namespace (`/proc`, `/sys`, `/dev`, `/etc/hosts`…, the step's mounts)
//! before `pivot_root`.
//!
//! Mount points and synthetic files: `/etc/hosts`, `/etc/resolv.conf` and
//! `/etc/hostname` are generated outside the rootfs and bind-mounted over
//! the image's files, so their contents never reach the upper dir. On an
//! overlay from [`super::mount_overlay`] the init layer already provides
//! the fixed mount points the image lacks, so nothing is written. What is
//! still missing (a `RUN --mount` target, `/etc/hosts` in an image without
//! `/etc`, or a plain-dir rootfs) [`MountStubs`] creates before the step
//! and removes exactly after it, restoring the parent's times (BuildKit's
//! approach); the only trace that can leave in the upper is a copied-up
//! parent dir with its original metadata.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sys::time::TimeSpec;
use serde::{Deserialize, Serialize};

use super::error::{Result, SandboxError};
use super::syscall::Syscall;

/// The most symlinks followed while resolving one path, as the kernel.
const MAX_LINKS: usize = 40;

/// Resolves `path` (absolute inside the rootfs) to a host path inside
/// `root`, following symlinks as if `root` were `/`: `..` and absolute link
/// targets never leave it. Missing components are kept as written.
pub fn scoped_join(root: &Path, path: &str) -> Result<PathBuf> {
    let escape = |detail: &str| SandboxError::Escape {
        root: root.to_path_buf(),
        path: path.to_string(),
        detail: detail.to_string(),
    };
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(comp) = pending.pop() {
        if comp == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&comp);
        match candidate.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(escape("too many levels of symbolic links"));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(SandboxError::io("readlink", &candidate))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved.push(&comp),
        }
    }
    Ok(root.join(resolved))
}

/// What a mount point must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StubKind {
    Dir,
    File,
}

/// A dir and its atime and mtime, to put back.
type ParentTimes = (PathBuf, TimeSpec, TimeSpec);

/// Mount points created for one step, removed by [`MountStubs::remove`].
#[derive(Debug, Default)]
pub struct MountStubs {
    // Deepest last; each with its parent's times before the stub was made.
    created: Vec<(PathBuf, Option<ParentTimes>)>,
}

impl MountStubs {
    /// Makes sure each `(path inside root, kind)` exists, creating what is missing.
    pub fn create(root: &Path, wanted: &[(String, StubKind)]) -> Result<MountStubs> {
        let mut stubs = MountStubs::default();
        match stubs.create_all(root, wanted) {
            Ok(()) => Ok(stubs),
            Err(e) => {
                // Leave the rootfs as it was found.
                if let Err(cleanup) = stubs.remove() {
                    log::warn!("removing mount points after a failure: {cleanup}");
                }
                Err(e)
            }
        }
    }

    fn create_all(&mut self, root: &Path, wanted: &[(String, StubKind)]) -> Result<()> {
        let stubs = self;
        for (path, kind) in wanted {
            let host = scoped_join(root, path)?;
            if host.symlink_metadata().is_ok() {
                continue;
            }
            let mut missing = Vec::new();
            let mut cur = host.as_path();
            while cur.symlink_metadata().is_err() && cur != root {
                missing.push(cur.to_path_buf());
                match cur.parent() {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            for (i, p) in missing.iter().rev().enumerate() {
                let parent_times = p.parent().and_then(|parent| {
                    let m = parent.symlink_metadata().ok()?;
                    Some((
                        parent.to_path_buf(),
                        TimeSpec::new(m.atime(), m.atime_nsec()),
                        TimeSpec::new(m.mtime(), m.mtime_nsec()),
                    ))
                });
                let last = i + 1 == missing.len();
                if last && *kind == StubKind::File {
                    std::fs::File::create(p).map_err(SandboxError::io("create mount point", p))?;
                } else {
                    std::fs::create_dir(p).map_err(SandboxError::io("create mount point", p))?;
                }
                stubs.created.push((p.clone(), parent_times));
            }
        }
        Ok(())
    }

    /// The stubs made, outermost first.
    pub fn paths(&self) -> Vec<&Path> {
        self.created.iter().map(|(p, _)| p.as_path()).collect()
    }

    /// Removes the stubs that are still empty, deepest first, and puts the
    /// parents' times back. A stub the step filled is left and logged.
    pub fn remove(self) -> Result<()> {
        for (path, parent) in self.created.into_iter().rev() {
            let meta = match path.symlink_metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            let removed = if meta.is_dir() {
                std::fs::remove_dir(&path)
            } else if meta.is_file() && meta.len() == 0 {
                std::fs::remove_file(&path)
            } else {
                Err(std::io::Error::other("no longer an empty stub"))
            };
            if let Err(e) = removed {
                log::warn!("leaving mount point {}: {e}", path.display());
                continue;
            }
            if let Some((parent, atime, mtime)) = parent {
                nix::sys::stat::utimensat(
                    None,
                    &parent,
                    &atime,
                    &mtime,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(SandboxError::sys("utimensat", Some(&parent)))?;
            }
        }
        Ok(())
    }
}

/// One extra mount of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A host path bound in (recursively).
    Bind { source: PathBuf, readonly: bool },
    /// A fresh tmpfs; `size` in bytes, unlimited (half of RAM) when `None`.
    Tmpfs { size: Option<u64> },
}

/// A mount of a step at `target` (absolute, inside the rootfs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxMount {
    pub kind: MountKind,
    pub target: String,
}

impl SandboxMount {
    /// What the mount point must be.
    pub fn stub_kind(&self) -> StubKind {
        match &self.kind {
            MountKind::Bind { source, .. } if !source.is_dir() => StubKind::File,
            _ => StubKind::Dir,
        }
    }
}

/// Files generated for the step, outside the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname: PathBuf,
}

/// Everything [`setup`] mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsPlan {
    pub rootfs: PathBuf,
    pub etc: EtcFiles,
    pub mounts: Vec<SandboxMount>,
    pub hostname: String,
    pub private_network: bool,
}

/// The host devices bound into the step's `/dev` (mknod is refused in a
/// user namespace).
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The mount points a plan needs inside the rootfs.
pub fn mount_points(mounts: &[SandboxMount]) -> Vec<(String, StubKind)> {
    let mut v: Vec<(String, StubKind)> = ["/proc", "/sys", "/dev"]
        .iter()
        .map(|p| (p.to_string(), StubKind::Dir))
        .collect();
    for f in ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"] {
        v.push((f.to_string(), StubKind::File));
    }
    v.extend(mounts.iter().map(|m| (m.target.clone(), m.stub_kind())));
    v
}

fn step(name: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> SandboxError {
    let name = name.into();
    move |errno| SandboxError::Setup {
        step: name,
        detail: format!("{errno} ({})", errno.desc()),
    }
}

/// Mounts everything of `plan` and pivots into the rootfs. Runs as pid 1 of
/// the step's pid namespace, in the step's private mount namespace.
pub fn setup(sys: &dyn Syscall, plan: &RootfsPlan) -> Result<()> {
    let root = plan.rootfs.as_path();
    let at = |p: &str| scoped_join(root, p);
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;

    // pivot_root needs the new root to be a mount point.
    sys.mount(
        Some(root),
        root,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(step(format!("bind {} onto itself", root.display())))?;

    let proc_dir = at("/proc")?;
    sys.mount(
        Some(Path::new("proc")),
        &proc_dir,
        Some("proc"),
        nosuid_nodev_noexec,
        None,
    )
    .map_err(step("mount /proc"))?;

    let sys_dir = at("/sys")?;
    sys.mount(
        Some(Path::new("/sys")),
        &sys_dir,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(step("bind /sys"))?;
    sys.make_readonly_recursive(&sys_dir)
        .map_err(step("make /sys read-only"))?;
    mask_kernel_files(sys, root)?;

    mount_dev(sys, &at("/dev")?)?;

    for (host, inside) in [
        (&plan.etc.hosts, "/etc/hosts"),
        (&plan.etc.resolv_conf, "/etc/resolv.conf"),
        (&plan.etc.hostname, "/etc/hostname"),
    ] {
        sys.mount(Some(host), &at(inside)?, None, MsFlags::MS_BIND, None)
            .map_err(step(format!("bind {inside}")))?;
    }

    for m in &plan.mounts {
        let target = at(&m.target)?;
        match &m.kind {
            MountKind::Bind { source, readonly } => {
                sys.mount(
                    Some(source),
                    &target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )
                .map_err(step(format!(
                    "bind {} on {}",
                    source.display(),
                    m.target
                )))?;
                if *readonly {
                    sys.make_readonly_recursive(&target)
                        .map_err(step(format!("make {} read-only", m.target)))?;
                }
            }
            MountKind::Tmpfs { size } => {
                let data = match size {
                    Some(bytes) => format!("mode=1777,size={bytes}"),
                    None => "mode=1777".to_string(),
                };
                sys.mount(
                    Some(Path::new("tmpfs")),
                    &target,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some(&data),
                )
                .map_err(step(format!("tmpfs on {}", m.target)))?;
            }
        }
    }

    sys.sethostname(&plan.hostname)
        .map_err(step("sethostname"))?;
    if plan.private_network {
        sys.loopback_up().map_err(step("bring up lo"))?;
    }

    // pivot_root(".", "."), then detach the old root stacked under it.
    sys.chdir(root).map_err(step("chdir into the rootfs"))?;
    sys.pivot_root(Path::new("."), Path::new("."))
        .map_err(step("pivot_root"))?;
    sys.umount(Path::new("."), MntFlags::MNT_DETACH)
        .map_err(step("detach the old root"))?;
    sys.chdir(Path::new("/")).map_err(step("chdir /"))?;
    Ok(())
}

/// Kernel interfaces a step must not write: bound read-only over themselves.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Kernel interfaces a step must not read: hidden under /dev/null (files)
/// or an empty read-only tmpfs (dirs), as docker and buildah do.
pub const MASKED_PATHS: [&str; 8] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/sys/firmware",
];

/// Applies [`READONLY_PATHS`] and [`MASKED_PATHS`] to those that exist on
/// this kernel (checked under the fresh /proc and the bound /sys).
fn mask_kernel_files(sys: &dyn Syscall, root: &Path) -> Result<()> {
    for p in READONLY_PATHS {
        let path = root.join(&p[1..]);
        if path.symlink_metadata().is_err() {
            continue;
        }
        sys.mount(
            Some(&path),
            &path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .map_err(step(format!("bind {p}")))?;
        sys.make_readonly_recursive(&path)
            .map_err(step(format!("make {p} read-only")))?;
    }
    for p in MASKED_PATHS {
        let path = root.join(&p[1..]);
        match path.symlink_metadata() {
            Ok(m) if m.is_dir() => sys.mount(
                Some(Path::new("tmpfs")),
                &path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0"),
            ),
            Ok(_) => sys.mount(
                Some(Path::new("/dev/null")),
                &path,
                None,
                MsFlags::MS_BIND,
                None,
            ),
            Err(_) => continue,
        }
        .map_err(step(format!("mask {p}")))?;
    }
    Ok(())
}

fn mount_dev(sys: &dyn Syscall, dev: &Path) -> Result<()> {
    sys.mount(
        Some(Path::new("tmpfs")),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(step("tmpfs on /dev"))?;
    for name in DEVICES {
        let node = dev.join(name);
        sys.create_file(&node, 0o666)
            .map_err(step(format!("create /dev/{name}")))?;
        let host = Path::new("/dev").join(name);
        sys.mount(Some(&host), &node, None, MsFlags::MS_BIND, None)
            .map_err(step(format!("bind /dev/{name}")))?;
    }
    let pts = dev.join("pts");
    sys.mkdir(&pts, 0o755).map_err(step("mkdir /dev/pts"))?;
    sys.mount(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(step("mount devpts"))?;
    sys.symlink(Path::new("pts/ptmx"), &dev.join("ptmx"))
        .map_err(step("link /dev/ptmx"))?;
    let shm = dev.join("shm");
    sys.mkdir(&shm, 0o1777).map_err(step("mkdir /dev/shm"))?;
    sys.mount(
        Some(Path::new("shm")),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(step("tmpfs on /dev/shm"))?;
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        sys.symlink(Path::new(to), &dev.join(link))
            .map_err(step(format!("link /dev/{link}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::syscall::{Call, RecordingSyscall};
    use super::*;
    use std::fs;

    #[test]
    fn scoped_join_keeps_symlinks_and_dotdot_inside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::create_dir_all(r.join("run/x")).unwrap();
        std::os::unix::fs::symlink("/run/x/resolv", r.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("../../../../../../", r.join("etc/up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            scoped_join(r, "/etc/resolv.conf").unwrap(),
            r.join("run/x/resolv")
        );
        assert_eq!(
            scoped_join(r, "/../../etc/hosts").unwrap(),
            r.join("etc/hosts")
        );
        assert_eq!(
            scoped_join(r, "/etc/up/etc/passwd").unwrap(),
            r.join("etc/passwd")
        );
        assert!(scoped_join(r, "/loop/x").is_err());
    }

    #[test]
    fn stubs_are_created_then_removed_with_parent_mtime_restored() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir(r.join("etc")).unwrap();
        fs::write(r.join("etc/hosts"), "image's").unwrap();
        let old = TimeSpec::new(1_000_000, 0);
        nix::sys::stat::utimensat(
            None,
            &r.join("etc"),
            &old,
            &old,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        let wanted = vec![
            ("/etc/hosts".to_string(), StubKind::File),
            ("/etc/hostname".to_string(), StubKind::File),
            ("/cache/a/b".to_string(), StubKind::Dir),
        ];
        let stubs = MountStubs::create(r, &wanted).unwrap();
        assert_eq!(
            stubs.paths(),
            vec![
                r.join("etc/hostname"),
                r.join("cache"),
                r.join("cache/a"),
                r.join("cache/a/b")
            ]
        );
        assert!(r.join("etc/hostname").is_file());
        stubs.remove().unwrap();
        assert!(!r.join("etc/hostname").exists());
        assert!(!r.join("cache").exists());
        assert_eq!(fs::read_to_string(r.join("etc/hosts")).unwrap(), "image's");
        assert_eq!(fs::metadata(r.join("etc")).unwrap().mtime(), 1_000_000);
    }

    fn plan(root: &Path, mounts: Vec<SandboxMount>, private_network: bool) -> RootfsPlan {
        RootfsPlan {
            rootfs: root.to_path_buf(),
            etc: EtcFiles {
                hosts: "/gen/hosts".into(),
                resolv_conf: "/gen/resolv.conf".into(),
                hostname: "/gen/hostname".into(),
            },
            mounts,
            hostname: "box".into(),
            private_network,
        }
    }

    #[test]
    fn setup_mounts_in_order_and_pivots_last() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let mounts = vec![
            SandboxMount {
                kind: MountKind::Bind {
                    source: "/src".into(),
                    readonly: true,
                },
                target: "/ctx".into(),
            },
            SandboxMount {
                kind: MountKind::Tmpfs {
                    size: Some(1 << 20),
                },
                target: "/tmp".into(),
            },
        ];
        let sys = RecordingSyscall::new();
        setup(&sys, &plan(r, mounts, true)).unwrap();
        let calls = sys.calls();
        let targets: Vec<String> = calls
            .iter()
            .filter_map(|c| match c {
                Call::Mount { target, .. } => Some(
                    target
                        .strip_prefix(r)
                        .map(|p| format!("/{}", p.display()))
                        .unwrap_or_default(),
                ),
                _ => None,
            })
            .collect();
        let expected: Vec<String> = [
            "/",
            "/proc",
            "/sys",
            "/dev",
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
            "/dev/pts",
            "/dev/shm",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/ctx",
            "/tmp",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(targets, expected);
        assert!(calls.contains(&Call::ReadonlyRecursive(r.join("sys"))));
        assert!(calls.contains(&Call::ReadonlyRecursive(r.join("ctx"))));
        assert!(calls.contains(&Call::Symlink("pts/ptmx".into(), r.join("dev/ptmx"))));
        let n = calls.len();
        assert_eq!(
            calls[n - 6..],
            [
                Call::Sethostname("box".into()),
                Call::LoopbackUp,
                Call::Chdir(r.to_path_buf()),
                Call::PivotRoot(".".into(), ".".into()),
                Call::Umount(".".into()),
                Call::Chdir("/".into()),
            ]
        );
        match &calls[1] {
            Call::Mount { fstype, flags, .. } => {
                assert_eq!(fstype.as_deref(), Some("proc"));
                assert!(flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failing_mount_names_its_step_and_stops() {
        let t = tempfile::tempdir().unwrap();
        let sys = RecordingSyscall::failing(
            |c| matches!(c, Call::Mount { fstype: Some(f), .. } if f == "devpts"),
            nix::errno::Errno::EPERM,
        );
        let err = setup(&sys, &plan(t.path(), vec![], false))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mount devpts") && err.contains("EPERM"),
            "{err}"
        );
        assert!(!sys.calls().iter().any(|c| matches!(c, Call::PivotRoot(..))));
        assert!(!sys.calls().contains(&Call::LoopbackUp));
    }
}
