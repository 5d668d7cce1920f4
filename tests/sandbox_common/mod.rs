//! Shared helpers of the sandbox integration tests: a busybox rootfs made
//! from the host's `/bin/busybox`, and running the real `rbuild` binary as
//! root or as the unprivileged `rbtest` user (from a world-readable copy).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const TEST_USER: &str = "rbtest";

/// Who runs rbuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    Root,
    Rootless,
}

pub fn rbtest_ids() -> Option<(u32, u32)> {
    let out = Command::new("id").arg(TEST_USER).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let uid = Command::new("id").args(["-u", TEST_USER]).output().ok()?;
    let gid = Command::new("id").args(["-g", TEST_USER]).output().ok()?;
    Some((
        String::from_utf8_lossy(&uid.stdout).trim().parse().ok()?,
        String::from_utf8_lossy(&gid.stdout).trim().parse().ok()?,
    ))
}

/// The modes to test: root always, rootless when `rbtest` exists (CI
/// creates it; a developer machine without it says so).
pub fn modes() -> Vec<As> {
    let mut v = vec![As::Root];
    if rbtest_ids().is_some() {
        v.push(As::Rootless);
    } else {
        eprintln!("user {TEST_USER} missing: skipping the rootless half");
    }
    v
}

/// A world-readable copy of the binary, so `rbtest` can run it. One shared
/// dir, one file per build of the binary (size + mtime in the name), made
/// by copy-then-rename so parallel test processes never see half a file;
/// older copies are removed.
pub fn rootless_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let src = Path::new(env!("CARGO_BIN_EXE_rbuild"));
        let meta = std::fs::metadata(src).unwrap();
        let dir = Path::new("/tmp/rbuild-sandbox-bin");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let name = format!(
            "rbuild-{}-{}.{}",
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        let bin = dir.join(&name);
        if !bin.exists() {
            let tmp = dir.join(format!(".{name}.{}", std::process::id()));
            std::fs::copy(src, &tmp).unwrap();
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&tmp, &bin).unwrap();
        }
        for old in std::fs::read_dir(dir).unwrap().flatten() {
            let n = old.file_name().to_string_lossy().to_string();
            if n != name && !n.starts_with('.') {
                let _ = std::fs::remove_file(old.path());
            }
        }
        bin
    })
}

/// A scratch dir that `who` owns (world-traversable parent in /tmp).
pub fn scratch(who: As) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rbuild-sandbox-test")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    give(who, dir.path());
    dir
}

/// Makes `who` own `path` and everything under it.
pub fn give(who: As, path: &Path) {
    if who == As::Rootless {
        let (uid, gid) = rbtest_ids().unwrap();
        let st = Command::new("chown")
            .args(["-hR", &format!("{uid}:{gid}")])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

/// Makes `dir` a busybox root: /bin/busybox plus one symlink per applet.
pub fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["etc", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
}

/// Runs `rbuild ARGS` as `who`, with HOME and XDG_RUNTIME_DIR set.
pub fn rbuild(who: As, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = match who {
        As::Root => Command::new(env!("CARGO_BIN_EXE_rbuild")),
        As::Rootless => {
            let mut c = Command::new("runuser");
            c.args([
                "-u",
                TEST_USER,
                "--",
                "env",
                "HOME=/tmp",
                "XDG_RUNTIME_DIR=/tmp",
            ]);
            for (k, v) in env {
                c.arg(format!("{k}={v}"));
            }
            c.arg(rootless_binary());
            c
        }
    };
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run rbuild")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A layer stack to mount: `low` (busybox), `up`, `work`, `m`.
pub struct Stack {
    pub dir: tempfile::TempDir,
}

impl Stack {
    pub fn new(who: As) -> Stack {
        let dir = scratch(who);
        for d in ["low", "up", "work", "m"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        busybox_rootfs(&dir.path().join("low"));
        give(who, dir.path());
        Stack { dir }
    }
    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn s(&self, rel: &str) -> String {
        self.p(rel).to_string_lossy().to_string()
    }
    /// `__sandbox-test run` args for this stack.
    pub fn run_args(&self) -> Vec<String> {
        vec![
            "__sandbox-test".into(),
            "run".into(),
            "--lower".into(),
            self.s("low"),
            "--upper".into(),
            self.s("up"),
            "--work".into(),
            self.s("work"),
            "--target".into(),
            self.s("m"),
        ]
    }
}

/// Runs `argv` in the sandbox over `stack` as `who` with extra flags.
pub fn run_step(
    who: As,
    stack: &Stack,
    flags: &[&str],
    argv: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut args = stack.run_args();
    args.extend(flags.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(argv.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    rbuild(who, &refs, env)
}

/// Whether any mount in this (host) mount namespace sits under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_string_lossy().to_string();
    text.lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&d)))
        .map(str::to_string)
        .collect()
}

/// Whether `who` can open /dev/fuse (hosts often leave it 0600).
pub fn fuse_usable(who: As) -> bool {
    let mut c = match who {
        As::Root => Command::new("test"),
        As::Rootless => {
            let mut c = Command::new("runuser");
            c.args(["-u", TEST_USER, "--", "test"]);
            c
        }
    };
    c.args(["-r", "/dev/fuse", "-a", "-w", "/dev/fuse"]);
    std::path::Path::new("/usr/bin/fuse-overlayfs").exists()
        && c.status().map(|s| s.success()).unwrap_or(false)
}
