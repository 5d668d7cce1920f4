//! `push` from a real store: layers committed with the store and layer
//! modules, exported through [`StoreSource`], read back by umoci and skopeo;
//! the first export caches the compressed blob, the next one copies it, and a
//! pulled layer keeps its diff ID through transcoding.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use rbuild::digest::Digest;
use rbuild::image::config::ImageConfigBuilder;
use rbuild::image::manifest::{Descriptor, ImageManifest, OCI_CONFIG, OCI_LAYER};
use rbuild::image::store_source::StoreSource;
use rbuild::image::{
    export_with_progress, Compression, Destination, ExportEvent, ExportOptions, ManifestFormat,
    Platform, Timestamp,
};
use rbuild::layer::{diff_id, extract_layer, ExtractOptions, TarOptions};
use rbuild::store::{ChainId, ImageRecord, Store};

const EPOCH: i64 = 1_700_000_000;

fn tar_options() -> TarOptions {
    TarOptions {
        mtime_clamp: Some(EPOCH),
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Stores config, local manifest (layers uncompressed, digest = diff ID)
/// and the image record for `chains`.
fn put_image(store: &Store, chains: &[ChainId], name: &str) -> ImageRecord {
    let t = Timestamp::from_unix(EPOCH).unwrap();
    let mut b = ImageConfigBuilder::scratch(Platform::host());
    b.set_created(t);
    let mut layers = Vec::new();
    let mut size = 0;
    for chain in chains {
        let meta = store.layer_meta(chain).unwrap();
        b.add_layer(meta.diff_id, t, "/bin/sh -c #(nop) COPY dir:x in / ");
        layers.push(Descriptor::new(OCI_LAYER, meta.diff_id, meta.size));
        size += meta.size;
    }
    let config = b.build().to_oci_json();
    let id = store.put_blob(&config).unwrap();
    let manifest = ImageManifest {
        format: ManifestFormat::Oci,
        config: Descriptor::new(OCI_CONFIG, id, config.len() as u64),
        layers,
        annotations: Default::default(),
    };
    let manifest = store.put_blob(&manifest.to_json()).unwrap();
    let record = ImageRecord {
        id,
        names: vec![name.to_string()],
        manifest,
        index: None,
        top_layer: chains.last().copied(),
        layers: chains.to_vec(),
        created: t.to_string(),
        size,
    };
    store.put_image(&record).unwrap();
    record
}

fn built_layer(store: &Store) -> ChainId {
    let prepared = store.prepare_layer(None).unwrap();
    let upper = prepared.upper();
    fs::create_dir_all(upper.join("srv")).unwrap();
    fs::write(upper.join("srv/index.html"), b"<h1>hi</h1>\n").unwrap();
    fs::write(upper.join("srv/big"), vec![1u8; 1 << 20]).unwrap();
    std::os::unix::fs::symlink("index.html", upper.join("srv/home")).unwrap();
    let (id, size) = diff_id(&upper, &tar_options()).unwrap();
    store.commit_layer(prepared, id, size).unwrap()
}

fn export(src: &StoreSource<'_>, dest: &str, compression: Compression) -> (Digest, Vec<bool>) {
    let dest: Destination = dest.parse().unwrap();
    let options = ExportOptions {
        compression,
        ..ExportOptions::default()
    };
    let mut reused = Vec::new();
    let exported = export_with_progress(src, &dest, &options, &mut |e| {
        if let ExportEvent::Layer { reused: r, .. } = e {
            reused.push(r);
        }
    })
    .unwrap();
    (exported.manifest_digest, reused)
}

#[test]
fn push_from_the_store_caches_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let chain = built_layer(&store);
    let record = put_image(&store, &[chain], "localhost/web:latest");
    let src = StoreSource::new(&store, &record, tar_options()).unwrap();

    let layout = tmp.path().join("layout");
    let (first, reused) = export(
        &src,
        &format!("oci:{}:web", layout.display()),
        Compression::Gzip,
    );
    assert_eq!(reused, vec![false], "the first push compresses");
    let (cached, size) = store
        .compressed_blob(&chain, "gzip")
        .unwrap()
        .expect("blob cached");
    assert_eq!(store.blob_size(&cached).unwrap(), size);
    assert!(layout.join("blobs/sha256").join(cached.hex()).is_file());

    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:web", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read(rootfs.join("srv/index.html")).unwrap(),
        b"<h1>hi</h1>\n"
    );
    assert_eq!(
        fs::read_link(rootfs.join("srv/home")).unwrap(),
        Path::new("index.html")
    );

    // The second push copies the cached blob: same manifest.
    let (second, reused) = export(
        &src,
        &format!("oci:{}:web", tmp.path().join("l2").display()),
        Compression::Gzip,
    );
    assert_eq!(reused, vec![true]);
    assert_eq!(first, second);

    // zstd is made from the gzip blob (transcoded) and cached in turn.
    let archive = format!("oci-archive:{}:web", tmp.path().join("z.tar").display());
    let (zstd, reused) = export(&src, &archive, Compression::Zstd);
    assert_eq!(reused, vec![false]);
    let inspect: serde_json::Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &archive]))).unwrap();
    assert_eq!(inspect["Digest"], zstd.to_string());
    assert!(store.compressed_blob(&chain, "zstd").unwrap().is_some());
}

#[test]
fn a_pulled_layer_keeps_its_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    // A layer as another tool wrote it: GNU headers, its own mtimes.
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("etc/os-release").unwrap();
    h.set_size(12);
    h.set_mode(0o644);
    h.set_mtime(1_234_567_890);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    builder.append(&h, &b"ID=elsewhere"[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();

    let blob = store.put_blob(&gz).unwrap();
    let chain = store
        .import_layer(None, |dir| {
            extract_layer(&tar[..], dir, &ExtractOptions::default())?;
            Ok::<_, rbuild::layer::LayerError>((Digest::of(&tar), tar.len() as u64))
        })
        .unwrap();
    store
        .record_compressed_blob(&chain, "gzip", blob, gz.len() as u64)
        .unwrap();
    let (retarred, _) = diff_id(&store.layer_diff_path(&chain), &tar_options()).unwrap();
    assert_ne!(
        retarred,
        Digest::of(&tar),
        "re-tarring would change the diff ID"
    );

    let record = put_image(&store, &[chain], "localhost/pulled:latest");
    let src = StoreSource::new(&store, &record, tar_options()).unwrap();
    // The original gzip blob is pushed as is.
    let (_, reused) = export(
        &src,
        &format!("dir:{}", tmp.path().join("gz").display()),
        Compression::Gzip,
    );
    assert_eq!(reused, vec![true]);
    assert!(tmp.path().join("gz").join(blob.hex()).is_file());
    // Uncompressed and zstd are transcoded from it, diff ID intact.
    let archive = tmp.path().join("docker.tar");
    export(
        &src,
        &format!("docker-archive:{}:localhost/pulled", archive.display()),
        Compression::None,
    );
    run(Command::new("skopeo").args(["inspect", &format!("docker-archive:{}", archive.display())]));
    export(
        &src,
        &format!("oci:{}:z", tmp.path().join("z").display()),
        Compression::Zstd,
    );
}

#[test]
fn a_damaged_record_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let chain = built_layer(&store);
    let mut record = put_image(&store, &[chain], "localhost/x:latest");
    record.layers.clear();
    let err = StoreSource::new(&store, &record, tar_options())
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("lists 0 layers but its config has 1"),
        "{err}"
    );
}
