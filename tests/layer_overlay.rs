//! Layer tests that need real mounts (root only): changes made through a
//! kernel overlay mount → the upper dir's diff tar → extracted as a new
//! lowerdir → mounted again gives the same merged view; and a file that
//! changes while it is exported is an error.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rbuild::layer::{extract_layer, write_diff_tar, ExtractOptions, TarOptions};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn mount_overlay(options: &str, target: &Path) -> bool {
    fs::create_dir_all(target).unwrap();
    Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", options])
        .arg(target)
        .status()
        .is_ok_and(|s| s.success())
}

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// path → (kind, content or link target, nlink > 1)
fn view(root: &Path) -> BTreeMap<String, (char, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let v = if m.is_dir() {
            ('d', vec![])
        } else if m.file_type().is_symlink() {
            (
                'l',
                fs::read_link(e.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else {
            ('f', fs::read(e.path()).unwrap())
        };
        out.insert(rel, v);
    }
    out
}

#[test]
fn kernel_overlay_diff_round_trips_through_a_layer() {
    if !is_root() {
        eprintln!("skipped: mounting overlayfs needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s);
    let lower = p("lower");
    fs::create_dir_all(lower.join("d/sub")).unwrap();
    fs::create_dir_all(lower.join("e")).unwrap();
    for f in ["a", "b", "d/x", "d/sub/y", "e/z", "e/keep"] {
        fs::write(lower.join(f), f.as_bytes()).unwrap();
    }
    for d in ["upper", "work"] {
        fs::create_dir(p(d)).unwrap();
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lower.display(),
        p("upper").display(),
        p("work").display()
    );
    let merged = p("merged");
    if !mount_overlay(&opts, &merged) {
        eprintln!("skipped: this kernel refused an overlay mount with userxattr");
        return;
    }
    {
        let _m = Mounted(merged.clone());
        fs::remove_file(merged.join("a")).unwrap();
        fs::remove_dir_all(merged.join("d")).unwrap();
        fs::create_dir(merged.join("d")).unwrap(); // opaque now
        fs::write(merged.join("d/new"), b"new").unwrap();
        fs::write(merged.join("b"), b"changed").unwrap();
        fs::hard_link(merged.join("b"), merged.join("b2")).unwrap();
        fs::remove_file(merged.join("e/z")).unwrap();
        fs::create_dir_all(merged.join("f/g")).unwrap();
        std::os::unix::fs::symlink("../b", merged.join("f/link")).unwrap();
    }
    let expected = {
        let ro = format!(
            "lowerdir={}:{},userxattr",
            p("upper").display(),
            lower.display()
        );
        let target = p("expected");
        assert!(mount_overlay(&ro, &target));
        let _m = Mounted(target.clone());
        view(&target)
    };

    let mut tar = Vec::new();
    let stats = write_diff_tar(&p("upper"), &TarOptions::default(), &mut tar).unwrap();
    assert_eq!(
        (stats.whiteouts, stats.opaque_dirs, stats.hardlinks),
        (2, 1, 1)
    );
    let layer = p("layer");
    extract_layer(&tar[..], &layer, &ExtractOptions::default()).unwrap();

    let ro = format!("lowerdir={}:{},userxattr", layer.display(), lower.display());
    let target = p("rebuilt");
    assert!(mount_overlay(&ro, &target));
    let _m = Mounted(target.clone());
    let rebuilt = view(&target);
    assert_eq!(rebuilt, expected);
    assert!(
        !rebuilt.contains_key("a") && !rebuilt.contains_key("d/x") && !rebuilt.contains_key("e/z")
    );
    assert_eq!(rebuilt["d/new"].1, b"new");
    assert_eq!(
        fs::metadata(target.join("b")).unwrap().ino(),
        fs::metadata(target.join("b2")).unwrap().ino()
    );
}

/// A file whose content changes while it is archived (here /proc/version
/// bind-mounted into the layer: size 0 at lstat, bytes when read) stops
/// the export with an error naming it, rather than a corrupt or wrong tar.
#[test]
fn a_file_changing_during_export_is_an_error() {
    if !is_root() {
        eprintln!("skipped: bind mounts need root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layer");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("a"), b"fine").unwrap();
    let victim = dir.join("status");
    fs::write(&victim, b"").unwrap();
    let bound = Command::new("mount")
        .args(["--bind", "/proc/version"])
        .arg(&victim)
        .status()
        .unwrap();
    assert!(bound.success());
    let _m = Mounted(victim.clone());
    let err = write_diff_tar(&dir, &TarOptions::default(), std::io::sink()).unwrap_err();
    assert!(
        matches!(err, rbuild::layer::LayerError::FileChanged { ref path, .. } if *path == victim),
        "{err}"
    );
    assert!(
        err.to_string().contains("changed while it was archived"),
        "{err}"
    );
}
