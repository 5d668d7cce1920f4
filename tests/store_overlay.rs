//! A prepared layer really works as an overlay: its lowers are the parent
//! chain, topmost first, and what is written through the mount lands in
//! the upper dir, which becomes the committed layer. Needs root (or it is
//! skipped with a message): the sandbox does the rootless mount.

use std::fs;

use nix::mount::{mount, umount, MsFlags};
use rbuild::digest::Digest;
use rbuild::store::{PreparedLayer, Store};

fn mount_overlay(p: &PreparedLayer, target: &std::path::Path) -> nix::Result<()> {
    let lowers: Vec<String> = p.lowers().iter().map(|l| l.display().to_string()).collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        p.upper().display(),
        p.work().display()
    );
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
}

#[test]
fn prepared_layers_stack_as_overlay_mounts() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting overlay here needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("root")).unwrap();
    let merged = dir.path().join("merged");
    fs::create_dir(&merged).unwrap();

    let p = s.prepare_layer(None).unwrap();
    fs::write(p.upper().join("a"), "base a").unwrap();
    fs::write(p.upper().join("b"), "base b").unwrap();
    let base = s.commit_layer(p, Digest::of(b"base"), 1).unwrap();

    // Overlay needs at least one lower or it refuses: the second layer has one.
    let p = s.prepare_layer(Some(&base)).unwrap();
    if let Err(e) = mount_overlay(&p, &merged) {
        eprintln!("skipped: the kernel refused an overlay mount here: {e}");
        return;
    }
    let written = (|| {
        assert_eq!(fs::read_to_string(merged.join("a"))?, "base a");
        fs::write(merged.join("a"), "mid a")?;
        fs::write(merged.join("c"), "mid c")
    })();
    umount(&merged).unwrap();
    written.unwrap();
    assert_eq!(fs::read_to_string(p.upper().join("a")).unwrap(), "mid a");
    assert!(
        !p.upper().join("b").exists(),
        "unchanged files stay in the lower"
    );
    let mid = s.commit_layer(p, Digest::of(b"mid"), 1).unwrap();
    assert!(!dir
        .path()
        .join("root/layers")
        .join(mid.digest().hex())
        .join("work")
        .exists());

    let p = s.prepare_layer(Some(&mid)).unwrap();
    assert_eq!(
        p.lowers(),
        &[s.layer_diff_path(&mid), s.layer_diff_path(&base)]
    );
    mount_overlay(&p, &merged).unwrap();
    let seen = (|| {
        Ok::<_, std::io::Error>((
            fs::read_to_string(merged.join("a"))?,
            fs::read_to_string(merged.join("b"))?,
            fs::read_to_string(merged.join("c"))?,
        ))
    })();
    umount(&merged).unwrap();
    assert_eq!(
        seen.unwrap(),
        (
            "mid a".to_string(),
            "base b".to_string(),
            "mid c".to_string()
        )
    );
    // The kernel made work/work (mode 000); commit must still clean it up.
    let top = s.commit_layer(p, Digest::of(b"top"), 0).unwrap();
    assert_eq!(s.layer_chain(&top).unwrap(), vec![base, mid, top]);
    assert_eq!(
        fs::read_dir(dir.path().join("root/tmp")).unwrap().count(),
        0
    );
    assert!(s.fsck().unwrap().is_empty());
}
