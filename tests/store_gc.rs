//! gc, prune and fsck through the public store API: what is referenced or
//! leased survives, everything else goes, and fsck notices damage.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rbuild::digest::Digest;
use rbuild::store::{CacheEntry, ChainId, ImageRecord, Problem, Store};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("root")).unwrap();
    (dir, s)
}

/// A committed layer with one file, on top of `parent`.
fn layer(s: &Store, parent: Option<&ChainId>, content: &str) -> ChainId {
    let p = s.prepare_layer(parent).unwrap();
    fs::write(p.upper().join("file"), content).unwrap();
    s.commit_layer(p, Digest::of(content.as_bytes()), content.len() as u64)
        .unwrap()
}

/// An image whose manifest mentions its config, over `layers`.
fn image(s: &Store, tag: &str, layers: &[ChainId]) -> ImageRecord {
    let id = s.put_blob(format!("config of {tag}").as_bytes()).unwrap();
    let manifest = s
        .put_blob(format!(r#"{{"config":{{"digest":"{id}"}}}}"#).as_bytes())
        .unwrap();
    let rec = ImageRecord {
        id,
        names: if tag.is_empty() {
            vec![]
        } else {
            vec![tag.to_string()]
        },
        manifest,
        index: None,
        top_layer: layers.last().copied(),
        layers: layers.to_vec(),
        created: "2026-01-01T00:00:00Z".into(),
        size: 0,
    };
    s.put_image(&rec).unwrap();
    rec
}

/// Sets an object's mtime into the past so the lease recency rule does not
/// cover it: gc must then keep it for a reason other than its age.
fn age(path: &Path) {
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    fs::File::open(path).unwrap().set_modified(old).unwrap();
}

fn age_all(s: &Store) {
    for sub in ["blobs/sha256", "layers"] {
        for e in fs::read_dir(s.root().join(sub)).unwrap() {
            age(&e.unwrap().path());
        }
    }
}

#[test]
fn gc_keeps_referenced_and_removes_the_rest() {
    let (_t, s) = store();
    let base = layer(&s, None, "base");
    let top = layer(&s, Some(&base), "top");
    let img = image(&s, "localhost/app:latest", &[base, top]);
    let gz = s.put_blob(b"gzip of top").unwrap();
    s.record_compressed_blob(&top, "gzip", gz, 11).unwrap();

    let orphan_layer = layer(&s, None, "orphan");
    let orphan_child = layer(&s, Some(&orphan_layer), "orphan child");
    let orphan_blob = s.put_blob(b"nobody").unwrap();
    let cached_layer = layer(&s, None, "cached");
    // A JSON blob keeps the blobs it names.
    let named_by_json = s.put_blob(b"named from the cache blob").unwrap();
    let cache_blob = s
        .put_blob(format!(r#"{{"history":[],"config":{{"digest":"{named_by_json}"}}}}"#).as_bytes())
        .unwrap();
    s.cache_put(
        &Digest::of(b"key"),
        &CacheEntry {
            layer: Some(cached_layer),
            blob: Some(cache_blob),
            data: serde_json::Value::Null,
        },
    )
    .unwrap();
    let container_parent = layer(&s, None, "container base");
    s.create_container("c1", None, Some(&container_parent))
        .unwrap();

    let report = s.gc().unwrap();
    let mut removed = report.layers_removed.clone();
    removed.sort();
    let mut want = vec![orphan_layer, orphan_child];
    want.sort();
    assert_eq!(removed, want);
    assert_eq!(report.blobs_removed, vec![orphan_blob]);
    assert_eq!(report.blob_bytes_freed, 6);
    for l in [base, top, cached_layer, container_parent] {
        assert!(s.has_layer(&l), "{l} must survive");
    }
    for b in [img.id, img.manifest, gz, cache_blob, named_by_json] {
        assert!(s.has_blob(&b), "{b} must survive");
    }
    assert!(s.fsck().unwrap().is_empty());

    // Untagged, the image is dangling: prune removes it, then gc its parts.
    s.untag("localhost/app:latest").unwrap();
    let pruned = s.prune().unwrap();
    assert_eq!(pruned.images_removed, vec![img.id]);
    assert!(!s.has_layer(&top) && !s.has_layer(&base));
    assert!(!s.has_blob(&img.id) && !s.has_blob(&gz));
    assert!(s.has_layer(&cached_layer));
    assert!(s.fsck().unwrap().is_empty());
}

#[test]
fn leases_protect_named_and_fresh_objects() {
    let (_t, s) = store();
    let named = layer(&s, None, "named");
    let named_child = layer(&s, Some(&named), "named child");
    let loose_blob = s.put_blob(b"loose").unwrap();
    let unnamed = layer(&s, None, "unnamed");
    age_all(&s);

    let lease = s.lease().unwrap();
    lease.protect_layer(&named_child).unwrap();
    lease.protect_blob(&loose_blob).unwrap();
    // Made after the lease began, not named in it: still protected.
    let fresh = layer(&s, None, "fresh");
    let fresh_blob = s.put_blob(b"fresh").unwrap();

    let report = s.gc().unwrap();
    assert_eq!(report.layers_removed, vec![unnamed]);
    assert!(report.blobs_removed.is_empty());
    for l in [named, named_child, fresh] {
        assert!(s.has_layer(&l));
    }
    assert!(s.has_blob(&fresh_blob) && s.has_blob(&loose_blob));

    drop(lease);
    let report = s.gc().unwrap();
    assert_eq!(report.layers_removed.len(), 3);
    assert_eq!(report.blobs_removed.len(), 2);
    assert!(s.layers().unwrap().is_empty());
}

#[test]
fn reusing_an_old_object_renews_it_for_the_lease() {
    let (_t, s) = store();
    let old = layer(&s, None, "old");
    let old_blob = s.put_blob(b"old blob").unwrap();
    age_all(&s);
    let _lease = s.lease().unwrap();
    // A build that makes the same layer and blob again finds them present.
    assert_eq!(layer(&s, None, "old"), old);
    assert_eq!(s.put_blob(b"old blob").unwrap(), old_blob);
    let report = s.gc().unwrap();
    assert!(report.layers_removed.is_empty() && report.blobs_removed.is_empty());
}

#[test]
fn leased_dangling_image_survives_prune() {
    let (_t, s) = store();
    let l = layer(&s, None, "x");
    let img = image(&s, "", &[l]);
    age_all(&s);
    let lease = s.lease().unwrap();
    lease.protect_image(&img.id).unwrap();
    assert!(s.prune().unwrap().images_removed.is_empty());
    assert!(s.has_layer(&l));
    drop(lease);
    assert_eq!(s.prune().unwrap().images_removed, vec![img.id]);
    assert!(!s.has_layer(&l));
}

#[test]
fn gc_removes_staging_of_dead_processes_only() {
    let (_t, s) = store();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let tmp = s.root().join("tmp");
    let stale_dir = tmp.join(format!("{dead}-layer-abc"));
    fs::create_dir_all(stale_dir.join("diff/ro")).unwrap();
    fs::set_permissions(stale_dir.join("diff/ro"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::write(tmp.join(format!("{dead}-blob-xyz")), b"half").unwrap();
    fs::write(tmp.join("junk-without-pid"), b"?").unwrap();
    // This process's own writer is live and must be kept.
    let mut live = s.blob_writer().unwrap();
    live.write_all(b"in progress").unwrap();

    let report = s.gc().unwrap();
    assert_eq!(report.tmp_removed.len(), 3, "{:?}", report.tmp_removed);
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 1);
    let d = live.commit(None).unwrap();
    assert!(s.has_blob(&d));
}

#[test]
fn fsck_finds_damage() {
    let (_t, s) = store();
    let l = layer(&s, None, "l");
    let img = image(&s, "localhost/x:latest", &[l]);
    assert!(s.fsck().unwrap().is_empty());

    // A flipped byte in a blob.
    let path = s.blob_path(&img.manifest);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1;
    fs::write(&path, &bytes).unwrap();
    // A layer's diff removed behind the store's back, and a stray file.
    fs::remove_dir_all(s.layer_diff_path(&l)).unwrap();
    fs::write(s.root().join("blobs/sha256/not-a-digest"), b"").unwrap();

    let problems = s.fsck().unwrap();
    assert!(problems.iter().any(
        |p| matches!(p, Problem::BlobCorrupt { actual, .. } if *actual == Digest::of(&bytes))
    ));
    assert!(problems.contains(&Problem::LayerDiffMissing { layer: l }));
    assert!(problems.iter().any(|p| matches!(p, Problem::Stray { .. })));
    assert_eq!(problems.len(), 3, "{problems:#?}");
    for p in &problems {
        assert!(!p.to_string().is_empty());
    }
}

#[test]
fn gc_and_a_build_in_parallel_lose_nothing() {
    let (_t, s) = store();
    let builder = {
        let s = s.clone();
        std::thread::spawn(move || {
            let lease = s.lease().unwrap();
            let mut parent = None;
            for i in 0..30 {
                let l = layer(&s, parent.as_ref(), &format!("step {i}"));
                lease.protect_layer(&l).unwrap();
                parent = Some(l);
                if i % 5 == 4 {
                    let chain = s.layer_chain(&l).unwrap();
                    image(&s, &format!("localhost/img{i}:latest"), &chain);
                }
            }
        })
    };
    let collector = {
        let s = s.clone();
        std::thread::spawn(move || {
            for _ in 0..30 {
                s.gc().unwrap();
            }
        })
    };
    builder.join().unwrap();
    collector.join().unwrap();
    s.gc().unwrap();
    assert_eq!(s.images().unwrap().len(), 6);
    assert_eq!(s.layers().unwrap().len(), 30);
    assert_eq!(s.fsck().unwrap(), vec![]);
}
