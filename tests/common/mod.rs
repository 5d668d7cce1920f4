//! Shared helpers for integration tests: a temporary store, running the real
//! binary as root or as the unprivileged `rbtest` user, and a busybox base
//! rootfs generated from the host's `/bin/busybox`.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The unprivileged user the rootless tests run as (`.ci/run` creates it).
pub const TEST_USER: &str = "rbtest";

/// Who runs the binary in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    Root,
    Rootless,
}

impl Runner {
    /// Both runners when the rootless user exists; root only otherwise
    /// (with a message, so a missing user is visible in the test log).
    pub fn all() -> Vec<Runner> {
        if rootless_available() {
            vec![Runner::Root, Runner::Rootless]
        } else {
            eprintln!("note: user {TEST_USER} or its subuid range is missing; rootless runs skipped (run .ci/run to create it)");
            vec![Runner::Root]
        }
    }
}

pub fn rootless_available() -> bool {
    let is_root = unsafe { libc::geteuid() } == 0;
    is_root
        && Command::new("id")
            .arg(TEST_USER)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        && fs::read_to_string("/etc/subuid")
            .map(|s| s.lines().any(|l| l.starts_with(&format!("{TEST_USER}:"))))
            .unwrap_or(false)
}

/// A world-readable copy of the binary: the checkout may sit under a 0700 home.
pub fn shared_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = PathBuf::from(format!("/tmp/rbuild-test-bin-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let dest = dir.join("rbuild");
        let tmp = dir.join("rbuild.tmp");
        fs::copy(env!("CARGO_BIN_EXE_rbuild"), &tmp).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&tmp, &dest).unwrap();
        dest
    })
}

/// A scratch directory every runner can use (world-writable parent, owned by
/// the runner so rootless stores work in it).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub runner: Runner,
}

impl Sandbox {
    pub fn new(runner: Runner) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("rbuild-it-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        if runner == Runner::Rootless {
            chown_to_test_user(dir.path());
        }
        Sandbox { dir, runner }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> PathBuf {
        self.path().join("store")
    }

    /// Makes a subdirectory owned by the runner.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.path().join(name);
        fs::create_dir_all(&p).unwrap();
        if self.runner == Runner::Rootless {
            chown_to_test_user(&p);
        }
        p
    }

    /// Writes a file (parents created) owned by the runner.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, contents).unwrap();
        if self.runner == Runner::Rootless {
            chown_to_test_user(self.path());
        }
        p
    }

    /// Runs `rbuild ARGS` with this sandbox's store as the runner.
    pub fn rbuild(&self, args: &[&str]) -> Output {
        self.rbuild_env(args, &[])
    }

    pub fn rbuild_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(shared_binary());
        cmd.arg("--root").arg(self.store());
        cmd.arg("--runroot").arg(self.path().join("run"));
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.current_dir(self.path());
        cmd.output().unwrap()
    }

    /// A command for `program` run as this sandbox's runner.
    pub fn command(&self, program: &Path) -> Command {
        match self.runner {
            Runner::Root => Command::new(program),
            Runner::Rootless => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", TEST_USER, "--"]);
                cmd.arg("env");
                let home = format!("/home/{TEST_USER}");
                cmd.arg(format!("HOME={home}"));
                cmd.arg(format!(
                    "XDG_RUNTIME_DIR={}",
                    self.path().join("xdg-run").display()
                ));
                cmd.arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
                cmd.arg(program);
                cmd
            }
        }
    }

    /// Runs rbuild and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.rbuild(args);
        assert_success(&out, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports the busybox base as `localhost/busybox:latest`.
    pub fn import_busybox(&self) {
        let tar = busybox_tarball();
        self.ok(&["import", tar.to_str().unwrap(), "busybox"]);
    }
}

pub fn assert_success(out: &Output, what: &[&str]) {
    assert!(
        out.status.success(),
        "rbuild {:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        what,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chown_to_test_user(path: &Path) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{TEST_USER}:{TEST_USER}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A rootfs tarball with the host's static busybox and its applet links,
/// `/etc/passwd` and `/etc/group`; generated once per test process.
pub fn busybox_tarball() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let base = PathBuf::from(format!("/tmp/rbuild-busybox-{}", std::process::id()));
        let root = base.join("rootfs");
        let _ = fs::remove_dir_all(&base);
        make_busybox_rootfs(&root);
        let tar = base.join("busybox.tar");
        let status = Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&tar, fs::Permissions::from_mode(0o644)).unwrap();
        tar
    })
}

pub fn make_busybox_rootfs(root: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: install busybox-static (bash .ci/run does)"
    );
    for d in ["bin", "etc", "tmp", "root", "home", "usr/bin", "var"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = root.join("bin").join(applet);
        if applet != "busybox" && !link.exists() {
            symlink("busybox", link).unwrap();
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app\n",
    )
    .unwrap();
}
