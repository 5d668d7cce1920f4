//! Overlay layer mounts through the real binary (`rbuild __sandbox-test
//! overlay`): a 60-lower chain in every mode, FROM scratch, whiteouts and
//! opaque dirs in lowers, as root and as `rbtest` inside its namespace.

mod sandbox_common;

use std::path::Path;

use sandbox_common::*;

const CHAIN: usize = 60;

/// 60 lowers: each has its own file, all share `common` (topmost wins),
/// lower 1 deletes `gone` (made by the lowest) with a whiteout, and lower 2
/// makes `dir` opaque over the lowest's `dir/hidden`.
fn chain(root: &Path) -> Vec<String> {
    use std::fs;
    let mut lowers = Vec::new();
    for i in 0..CHAIN {
        let l = root.join(format!("l{i:02}"));
        fs::create_dir_all(&l).unwrap();
        fs::write(l.join(format!("f{i:02}")), format!("{i}\n")).unwrap();
        fs::write(l.join("common"), format!("from {i}\n")).unwrap();
        lowers.push(l.to_string_lossy().to_string());
    }
    let last = root.join(format!("l{:02}", CHAIN - 1));
    fs::write(last.join("gone"), "x").unwrap();
    fs::create_dir(last.join("dir")).unwrap();
    fs::write(last.join("dir/hidden"), "x").unwrap();
    nix::sys::stat::mknod(
        &root.join("l01/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    fs::create_dir(root.join("l02/dir")).unwrap();
    xattr::set(root.join("l02/dir"), "user.overlay.opaque", b"y").unwrap();
    fs::write(root.join("l02/dir/shown"), "y").unwrap();
    lowers
}

fn overlay_args(root: &Path, lowers: &[String], mode: &str, script: &str) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "__sandbox-test".into(),
        "overlay".into(),
        "--mode".into(),
        mode.into(),
    ];
    for l in lowers {
        args.push("--lower".into());
        args.push(l.clone());
    }
    for (flag, d) in [("--upper", "up"), ("--work", "work"), ("--target", "m")] {
        std::fs::create_dir_all(root.join(d)).unwrap();
        args.push(flag.into());
        args.push(root.join(d).to_string_lossy().to_string());
    }
    args.extend(["--".into(), "sh".into(), "-c".into(), script.into()]);
    args
}

#[test]
fn a_60_lower_chain_mounts_and_reads_correctly_in_every_mode() {
    for who in modes() {
        for mode in ["kernel", "fuse", "copy"] {
            if mode == "fuse" && !fuse_usable(who) {
                eprintln!("/dev/fuse is not usable by {who:?}: skipping fuse");
                continue;
            }
            let dir = scratch(who);
            let lowers = chain(dir.path());
            let args = overlay_args(
                dir.path(),
                &lowers,
                mode,
                "cd {} && cat common f00 f59 && ls | wc -l && ls dir && \
                 test ! -e gone && echo new > new && rm f30",
            );
            give(who, dir.path());
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = rbuild(who, &refs, &[]);
            assert!(out.status.success(), "{who:?} {mode}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("mounted with {mode}")),
                "{}",
                stderr(&out)
            );
            // 60 own files + common + dir + the init layer's proc, sys, dev.
            assert_eq!(stdout(&out), "from 0\n0\n59\n65\nshown\n", "{who:?} {mode}");
            let up = dir.path().join("up");
            assert_eq!(std::fs::read_to_string(up.join("new")).unwrap(), "new\n");
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            let wh = up.join("f30").symlink_metadata().unwrap();
            assert!(
                wh.file_type().is_char_device() && wh.rdev() == 0,
                "{who:?} {mode}"
            );
            assert!(mounts_under(dir.path()).is_empty(), "{who:?} {mode}");
        }
    }
}

#[test]
fn from_scratch_mounts_without_lowers() {
    for who in modes() {
        for mode in ["kernel", "copy"] {
            let dir = scratch(who);
            let args = overlay_args(
                dir.path(),
                &[],
                mode,
                "ls -A {} | tr '\\n' ' '; echo x > {}/first",
            );
            give(who, dir.path());
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = rbuild(who, &refs, &[]);
            assert!(out.status.success(), "{who:?} {mode}: {}", stderr(&out));
            // Only the init layer's mount points.
            assert_eq!(stdout(&out).trim(), "dev proc sys", "{who:?} {mode}");
            assert!(dir.path().join("up/first").is_file(), "{who:?} {mode}");
        }
    }
}

#[test]
fn rbuild_overlay_env_knob_forces_a_mode_and_rejects_unknown_ones() {
    let dir = scratch(As::Root);
    let lowers = chain(dir.path());
    let args = overlay_args(dir.path(), &lowers[..2], "auto", "true");
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = rbuild(As::Root, &refs, &[("RBUILD_OVERLAY", "copy")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("mounted with copy"),
        "{}",
        stderr(&out)
    );
    let out = rbuild(As::Root, &refs, &[("RBUILD_OVERLAY", "tmpfs")]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("unknown RBUILD_OVERLAY value \"tmpfs\""),
        "{}",
        stderr(&out)
    );
}
