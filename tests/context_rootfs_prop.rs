//! Property: whatever symlinks a hostile image holds, every path resolved
//! or written through `Rootfs` stays inside the root, and nothing outside it
//! changes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use proptest::prelude::*;
use rbuild::layer::rootfs::{NewDir, Rootfs};

const NAMES: &[&str] = &["a", "b", "etc", "x"];
const TARGETS: &[&str] = &[
    "/",
    "..",
    "../..",
    "../../..",
    "/etc",
    "a",
    "b/..",
    "/a/b",
    ".",
    "x/../../..",
    "/..",
    "etc/../..",
];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(str::to_string)
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => name(),
        1 => Just("..".to_string()),
        1 => Just(".".to_string()),
    ]
}

fn image_path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(component(), 1..6))
        .prop_map(|(abs, parts)| format!("{}{}", if abs { "/" } else { "" }, parts.join("/")))
}

/// (directory path, link name, target): a symlink placed in the image.
fn link() -> impl Strategy<Value = (Vec<String>, String, String)> {
    (
        prop::collection::vec(name(), 0..3),
        name(),
        prop::sample::select(TARGETS).prop_map(str::to_string),
    )
}

fn outside_listing(outside: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(outside)
        .into_iter()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn nothing_escapes_the_root(
        links in prop::collection::vec(link(), 0..8),
        paths in prop::collection::vec(image_path(), 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        let root = dir.path().join("root");
        fs::create_dir_all(outside.join("a/b")).unwrap();
        fs::create_dir_all(&root).unwrap();
        // The outside has the same names, so an escape would land on them.
        fs::write(outside.join("a/b/x"), b"outside").unwrap();
        let before = outside_listing(&outside);
        let meta_before = fs::metadata(outside.join("a/b/x")).unwrap();
        for (parents, name, target) in &links {
            let mut d = root.clone();
            for p in parents {
                d.push(p);
            }
            if fs::create_dir_all(&d).is_ok() && fs::symlink_metadata(d.join(name)).is_err() {
                let _ = symlink(target, d.join(name));
            }
        }
        let rootfs = Rootfs::new(root.clone());
        for p in &paths {
            if let Ok(host) = rootfs.resolve(p) {
                prop_assert!(host.starts_with(&root), "{p:?} resolved to {host:?}");
            }
            if let Ok(host) = rootfs.resolve_nofollow(p) {
                prop_assert!(host.starts_with(&root), "{p:?} resolved to {host:?}");
            }
            // Writes may fail (a file in the way, a loop), never escape.
            let _ = rootfs.create_dir_all(Path::new(p).parent().unwrap_or(Path::new("/")), NewDir::default());
            if let Ok(mut f) = rootfs.create_file(p, 0o644) {
                let _ = f.write_all(b"inside");
            }
            let _ = rootfs.symlink(format!("{p}.l"), "/");
            let _ = rootfs.set_mode(p, 0o600);
            let _ = rootfs.set_mtime(p, 1, 0);
            let _ = rootfs.remove(format!("{p}.l"));
        }
        prop_assert_eq!(outside_listing(&outside), before);
        prop_assert_eq!(fs::read(outside.join("a/b/x")).unwrap(), b"outside".to_vec());
        let meta = fs::metadata(outside.join("a/b/x")).unwrap();
        prop_assert_eq!(meta.mode(), meta_before.mode());
        prop_assert_eq!(meta.mtime(), meta_before.mtime());
    }
}
