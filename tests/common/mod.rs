//! Shared helpers for integration tests: a temporary store, running the real
//! binary as root or as the unprivileged `rbtest` user, and a busybox base
//! rootfs generated from the host's `/bin/busybox`.
#![allow(dead_code)]

use std::cell::Cell;
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

/// A world-readable copy of the binary: the checkout may sit under a 0700
/// home. One copy per build of the binary (named by its size and mtime) is
/// shared by every test process; copies unused for a day are removed.
pub fn shared_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let src = Path::new(env!("CARGO_BIN_EXE_rbuild"));
        let meta = fs::metadata(src).unwrap();
        let name = format!(
            "rbuild-{}-{}.{}",
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        let dest = shared_file(&name, |tmp| {
            fs::copy(src, tmp).unwrap();
        });
        remove_stale(&dest);
        dest
    })
}

/// Where test processes share generated files.
const SHARED_DIR: &str = "/tmp/rbuild-it-shared";

/// `SHARED_DIR/name`, made once by `make` (into a temp name, then renamed,
/// so concurrent test processes never see half a file), world-readable.
fn shared_file(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let dir = Path::new(SHARED_DIR);
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let dest = dir.join(name);
    if !dest.exists() {
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        make(&tmp);
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&tmp, &dest).unwrap();
    }
    dest
}

/// Removes other shared files not modified for a day: old binaries would
/// otherwise pile up, and a day is far longer than any test run using one.
fn remove_stale(keep: &Path) {
    let day = std::time::Duration::from_secs(24 * 3600);
    for entry in fs::read_dir(SHARED_DIR).into_iter().flatten().flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default() > day)
            .unwrap_or(false);
        if old && entry.path() != keep {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A scratch directory every runner can use (world-writable parent, owned by
/// the runner so rootless stores work in it).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub runner: Runner,
    counter: Cell<usize>,
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
        Sandbox {
            dir,
            runner,
            counter: Cell::new(0),
        }
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

    /// Writes a file (parents created) owned by the runner. Only the file and
    /// its parents inside the sandbox are chowned: a recursive chown of the
    /// sandbox would rewrite the owners of the store's sub-id-owned layers.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, contents).unwrap();
        if self.runner == Runner::Rootless {
            let mut cur = p.as_path();
            while cur.starts_with(self.path()) {
                chown_one_to_test_user(cur);
                match cur.parent() {
                    Some(parent) => cur = parent,
                    None => break,
                }
            }
        }
        p
    }

    /// Writes a build context `name/` holding `files` (path, contents).
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.mkdir(name);
        for (rel, body) in files {
            self.write(&format!("{name}/{rel}"), body);
        }
        dir
    }

    /// Builds `containerfile` in a fresh context with `files`, tagged `tag`,
    /// with `extra` bud arguments; returns stdout.
    pub fn build(
        &self,
        tag: &str,
        containerfile: &str,
        files: &[(&str, &str)],
        extra: &[&str],
    ) -> String {
        let name = self.fresh("ctx");
        let mut all: Vec<(&str, &str)> = files.to_vec();
        all.push(("Containerfile", containerfile));
        let ctx = self.context(&name, &all);
        let mut args = vec!["bud", "-t", tag];
        args.extend_from_slice(extra);
        let ctx = ctx.to_str().unwrap().to_string();
        args.push(&ctx);
        self.ok(&args)
    }

    /// A new unique name with `prefix` inside this sandbox.
    pub fn fresh(&self, prefix: &str) -> String {
        let n = self.counter.get();
        self.counter.set(n + 1);
        format!("{prefix}-{n}")
    }

    /// Runs rbuild and asserts it fails; returns the output.
    pub fn fails(&self, args: &[&str]) -> Output {
        let out = self.rbuild(args);
        assert!(
            !out.status.success(),
            "rbuild {:?} unexpectedly succeeded:\nstdout:\n{}\nstderr:\n{}",
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The image's OCI config as rbuild's inspect shows it.
    pub fn config(&self, image: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", "--format", "{{json .OCIv1}}", image]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("inspect output is not JSON ({e}): {out}"))
    }

    /// Pushes `image` to a fresh `oci:` layout (ref `latest`); returns its dir.
    pub fn push_oci(&self, image: &str) -> PathBuf {
        let dir = self.path().join(self.fresh("oci"));
        let dest = format!("oci:{}:latest", dir.display());
        self.ok(&["push", "-q", image, &dest]);
        dir
    }

    /// Exports `image` as `oci:` and unpacks it with umoci as root (not
    /// `--rootless`, so owners are the image's); returns the rootfs.
    pub fn unpack(&self, image: &str) -> PathBuf {
        let oci = self.push_oci(image);
        let bundle = self.path().join(self.fresh("bundle"));
        tool(
            "umoci",
            &[
                "unpack",
                "--image",
                &format!("{}:latest", oci.display()),
                bundle.to_str().unwrap(),
            ],
        );
        bundle.join("rootfs")
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

/// Runs a host tool and asserts success; returns stdout.
pub fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stdout and stderr of a finished command, for messages and greps.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn chown_one_to_test_user(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let (uid, gid) = test_user_ids();
    // lchown: never follow a symlink out of the sandbox.
    let rc = unsafe { libc::lchown(c.as_ptr(), uid, gid) };
    assert_eq!(
        rc,
        0,
        "lchown {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// The uid and gid of the rootless test user.
pub fn test_user_ids() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, TEST_USER]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        (id("-u"), id("-g"))
    })
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
/// `/etc/passwd` and `/etc/group`; generated once and shared by every test
/// process (named by busybox's size and mtime and the layout's version).
pub fn busybox_tarball() -> &'static Path {
    /// Bump when `make_busybox_rootfs` changes what it writes.
    const LAYOUT: u32 = 1;
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata("/bin/busybox").unwrap_or_else(|e| {
            panic!("/bin/busybox: {e}: install busybox-static (bash .ci/run does)")
        });
        let name = format!("busybox-v{LAYOUT}-{}-{}.tar", meta.size(), meta.mtime());
        shared_file(&name, |tmp| {
            let work = tempfile::tempdir().unwrap();
            let root = work.path().join("rootfs");
            make_busybox_rootfs(&root);
            let status = Command::new("tar")
                .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
                .arg(&root)
                .arg("-cf")
                .arg(tmp)
                .arg(".")
                .status()
                .unwrap();
            assert!(status.success());
        })
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

/// The manifest `ref` (default: the only one) of an OCI layout.
pub fn oci_manifest(layout: &Path) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_slice(&fs::read(oci_blob_path(layout, &digest)).unwrap()).unwrap()
}

pub fn oci_blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(alg).join(hex)
}

/// A blob's bytes, decompressed when it is gzip or zstd.
pub fn decompressed(bytes: Vec<u8>) -> Vec<u8> {
    use std::io::Read;
    // A file that merely starts like a compressed stream is kept as is.
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        match flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut out) {
            Ok(_) => out,
            Err(_) => bytes,
        }
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::decode_all(&bytes[..]).unwrap_or(bytes)
    } else {
        bytes
    }
}

/// The entry names of each layer of the first image in an OCI layout.
pub fn oci_layer_entries(layout: &Path) -> Vec<Vec<String>> {
    let manifest = oci_manifest(layout);
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let data = decompressed(
                fs::read(oci_blob_path(layout, l["digest"].as_str().unwrap())).unwrap(),
            );
            let mut archive = tar::Archive::new(&data[..]);
            archive
                .entries()
                .unwrap()
                .map(|e| {
                    e.unwrap()
                        .path()
                        .unwrap()
                        .to_string_lossy()
                        .trim_start_matches("./")
                        .to_string()
                })
                .collect()
        })
        .collect()
}

/// Every regular file under `dir` whose bytes (decompressed when gzip or
/// zstd) contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir) {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(bytes) = fs::read(entry.path()) else {
            continue;
        };
        let hit = |b: &[u8]| b.windows(needle.len()).any(|w| w == needle);
        if hit(&bytes) || hit(&decompressed(bytes)) {
            found.push(entry.path().to_path_buf());
        }
    }
    found
}
