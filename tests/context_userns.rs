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
    println!("CHILD-OK");
}

#[test]
fn chown_to_an_unmapped_id_names_the_fix() {
    if std::env::var_os(CHILD_ENV).is_some() {
        in_child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
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
