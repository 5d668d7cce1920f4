//! COPY inside a user namespace that maps only id 0 (rootless without a
//! subuid range): owners 0:0 work, any other id fails with an error that
//! says what is missing and how to fix it. The test re-runs itself under
//! `unshare --user --map-root-user`, so the namespace is real.

use std::fs;
use std::process::Command;

use rbuild::build::context::SourceTree;
use rbuild::build::copy::{copy_into, CopyOptions};
use rbuild::build::ignore::IgnoreMatcher;
use rbuild::layer::rootfs::{Rootfs, RootfsError};

const CHILD_ENV: &str = "RBUILD_CONTEXT_TEST_IN_USERNS";
const SPECIALS_ENV: &str = "RBUILD_CONTEXT_TEST_SPECIALS";

fn in_child() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    let root = dir.path().join("root");
    fs::create_dir_all(ctx.join("d")).unwrap();
    fs::create_dir(&root).unwrap();
    fs::write(ctx.join("d/f"), b"x").unwrap();
    let tree = SourceTree::context(ctx, IgnoreMatcher::default());
    let rootfs = Rootfs::new(root);
    copy_into(
        &rootfs,
        &tree,
        &["d".to_string()],
        "/ok/",
        &CopyOptions::default(),
    )
    .unwrap();
    let opts = CopyOptions {
        chown: Some((1000, 1000)),
        ..CopyOptions::default()
    };
    let err = copy_into(&rootfs, &tree, &["d".to_string()], "/bad/", &opts).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("1000:1000"), "{msg}");
    assert!(msg.contains("not mapped in this user namespace"), "{msg}");
    assert!(msg.contains("/etc/subuid"), "{msg}");
    // A file into an existing directory: the file's own chown fails.
    let err = copy_into(&rootfs, &tree, &["d/f".to_string()], "/ok/", &opts).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"/ok/f\" to 1000:1000: the id is not mapped"),
        "{err}"
    );
    assert!(matches!(
        rootfs.set_owner("/ok/f", 5, 5),
        Err(RootfsError::UnmappedId { uid: 5, gid: 5, .. })
    ));
    // Specials made by the parent as real root: the fifo is copied, the
    // device skipped (mknod is refused in a user namespace), no error.
    if let Some(specials) = std::env::var_os(SPECIALS_ENV) {
        let tree = SourceTree::context(specials.into(), IgnoreMatcher::default());
        copy_into(
            &rootfs,
            &tree,
            &[".".to_string()],
            "/sp/",
            &CopyOptions::default(),
        )
        .unwrap();
        let root = rootfs.root();
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::symlink_metadata(root.join("sp/fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert!(fs::symlink_metadata(root.join("sp/null")).is_err());
    }
    println!("CHILD-OK");
}

#[test]
fn chown_to_an_unmapped_id_names_the_fix() {
    if std::env::var_os(CHILD_ENV).is_some() {
        in_child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let specials = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("unshare");
    nix::unistd::mkfifo(
        &specials.path().join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    if nix::unistd::geteuid().is_root() {
        nix::sys::stat::mknod(
            &specials.path().join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        cmd.env(SPECIALS_ENV, specials.path());
    }
    let out = cmd
        .args(["--user", "--map-root-user"])
        .arg(&exe)
        .args([
            "--exact",
            "chown_to_an_unmapped_id_names_the_fix",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unshare failed") {
        // Kernels with unprivileged user namespaces disabled: nothing to test.
        eprintln!("skipped: {stderr}");
        return;
    }
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("CHILD-OK"),
        "child did not run the checks:\n{stdout}\n{stderr}"
    );
}
