//! The contract between `layer` and `image`: an [`ExportSource`] whose
//! layers are real directories, exported with `layer::export_layer` (one
//! pass, parallel gzip / zstd), written by every transport and unpacked by
//! umoci; the rootfs matches the directory file by file (content, modes,
//! owners, symlinks, hardlinks).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rbuild::image::config::ImageConfigBuilder;
use rbuild::image::{
    export, Compression, Destination, ExportOptions, ExportSource, LayerBlob, LayerRef, Platform,
    SourceError, Timestamp,
};
use rbuild::layer::{diff_id, export_layer, TarOptions};

/// Layers as directories, the way the store keeps them extracted.
struct DirSource {
    config: Vec<u8>,
    dirs: Vec<PathBuf>,
    diff_ids: Vec<rbuild::digest::Digest>,
}

const EPOCH: i64 = 1_700_000_000;

fn tar_options() -> TarOptions {
    TarOptions {
        mtime_clamp: Some(EPOCH),
    }
}

impl DirSource {
    fn new(dirs: Vec<PathBuf>) -> DirSource {
        let t = Timestamp::from_unix(EPOCH).unwrap();
        let mut b = ImageConfigBuilder::scratch(Platform::host());
        b.set_created(t);
        let mut diff_ids = Vec::new();
        for dir in &dirs {
            let (id, _) = diff_id(dir, &tar_options()).unwrap();
            diff_ids.push(id);
            b.add_layer(id, t, &format!("/bin/sh -c #(nop) COPY dir:x in {} ", "/"));
        }
        b.set_cmd(vec!["/bin/sh".into()]);
        DirSource {
            config: b.build().to_oci_json(),
            dirs,
            diff_ids,
        }
    }
}

impl ExportSource for DirSource {
    fn config(&self) -> Result<Vec<u8>, SourceError> {
        Ok(self.config.clone())
    }

    fn layers(&self) -> Vec<LayerRef> {
        self.diff_ids
            .iter()
            .map(|d| LayerRef { diff_id: *d })
            .collect()
    }

    fn write_layer_blob(
        &self,
        index: usize,
        compression: Compression,
        out: &mut dyn Write,
    ) -> Result<LayerBlob, SourceError> {
        Ok(export_layer(&self.dirs[index], &tar_options(), compression, out)?.into())
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

/// A tree with the kinds of entries a layer must keep.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("app/data")).unwrap();
    fs::write(root.join("app/run.sh"), b"#!/bin/sh\necho run\n").unwrap();
    fs::set_permissions(root.join("app/run.sh"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(root.join("app/data/big"), vec![7u8; 3 << 20]).unwrap();
    fs::hard_link(root.join("app/run.sh"), root.join("app/run-again.sh")).unwrap();
    symlink("run.sh", root.join("app/latest")).unwrap();
    fs::set_permissions(root.join("app/data"), fs::Permissions::from_mode(0o1777)).unwrap();
    // Owned by a non-root id, kept in the layer (we run as root).
    std::os::unix::fs::chown(root.join("app/data/big"), Some(1000), Some(1001)).unwrap();
}

fn check_tree(rootfs: &Path) {
    assert_eq!(
        fs::read(rootfs.join("app/run.sh")).unwrap(),
        b"#!/bin/sh\necho run\n"
    );
    let run = fs::metadata(rootfs.join("app/run.sh")).unwrap();
    assert_eq!(run.permissions().mode() & 0o7777, 0o750);
    let again = fs::metadata(rootfs.join("app/run-again.sh")).unwrap();
    assert_eq!(run.ino(), again.ino(), "the hardlink is kept");
    assert_eq!(
        fs::read_link(rootfs.join("app/latest")).unwrap(),
        Path::new("run.sh")
    );
    let data = fs::metadata(rootfs.join("app/data")).unwrap();
    assert_eq!(data.permissions().mode() & 0o7777, 0o1777);
    let big = fs::metadata(rootfs.join("app/data/big")).unwrap();
    assert_eq!((big.uid(), big.gid(), big.len()), (1000, 1001, 3 << 20));
    assert_eq!(big.mtime(), EPOCH, "mtimes clamped to the epoch");
}

#[test]
fn layer_dirs_export_and_unpack_file_by_file() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    make_tree(&layer);
    let src = DirSource::new(vec![layer]);

    let layout = tmp.path().join("layout");
    let gz: Destination = format!("oci:{}:gz", layout.display()).parse().unwrap();
    let first = export(&src, &gz, &ExportOptions::default()).unwrap();
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:gz", layout.display()))
        .arg(&bundle));
    check_tree(&bundle.join("rootfs"));

    // Reproducible: the same directory gives the same blob and manifest.
    let second = export(&src, &gz, &ExportOptions::default()).unwrap();
    assert_eq!(first.manifest_digest, second.manifest_digest);

    // zstd: checked with skopeo (umoci 0.4.7 cannot read zstd).
    let zst: Destination = format!("oci-archive:{}:z", tmp.path().join("z.tar").display())
        .parse()
        .unwrap();
    let options = ExportOptions {
        compression: Compression::Zstd,
        ..ExportOptions::default()
    };
    let z = export(&src, &zst, &options).unwrap();
    let copied = tmp.path().join("copied");
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        &zst.to_string(),
        &format!("dir:{}", copied.display()),
    ]));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(copied.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["layers"][0]["digest"],
        z.manifest.layers[0].digest.to_string()
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    // docker-archive holds the uncompressed tar, whose digest is the diff ID.
    let archive = tmp.path().join("d.tar");
    let docker: Destination = format!("docker-archive:{}:localhost/app", archive.display())
        .parse()
        .unwrap();
    let d = export(&src, &docker, &ExportOptions::default()).unwrap();
    assert_eq!(d.manifest.layers[0].digest, src.diff_ids[0]);
    let back = tmp.path().join("back");
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        &format!("docker-archive:{}", archive.display()),
        &format!("oci:{}:d", back.display()),
    ]));
    let bundle2 = tmp.path().join("bundle2");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:d", back.display()))
        .arg(&bundle2));
    check_tree(&bundle2.join("rootfs"));
}

#[test]
fn a_layer_changed_after_commit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    make_tree(&layer);
    let src = DirSource::new(vec![layer.clone()]);
    fs::write(
        layer.join("app/extra"),
        b"added after the diff ID was taken",
    )
    .unwrap();
    let dest: Destination = format!("oci:{}:x", tmp.path().join("layout").display())
        .parse()
        .unwrap();
    let err = export(&src, &dest, &ExportOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("the layer changed on disk"),
        "{err}"
    );
}
