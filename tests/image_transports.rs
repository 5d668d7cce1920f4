//! Exports a real two-layer image (tars made with the `tar` crate, gzip and
//! zstd compressed for real) to every transport and reads it back with the
//! real peers: skopeo (inspect, copy) and umoci (unpack, as root).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rbuild::digest::{Digest, DigestWriter};
use rbuild::image::config::ImageConfigBuilder;
use rbuild::image::manifest::{OciIndex, ANNOTATION_REF_NAME, OCI_LAYER_GZIP, OCI_LAYER_ZSTD};
use rbuild::image::{
    created_by, export, BlobInfo, Compression, Destination, ExportError, ExportOptions,
    ExportSource, LayerBlob, LayerRef, ManifestFormat, Platform, SourceError, Timestamp,
};

/// An image held in memory: uncompressed layer tars, compressed on demand.
struct MemSource {
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
    /// Per layer: a finished blob on disk, offered as the source's cache.
    cache: Vec<Option<(Compression, BlobInfo, PathBuf)>>,
    /// Pretend layer 0's diff ID is something else (a layer changed on disk).
    wrong_diff_id: bool,
    /// Fail halfway through layer 1, as a dying disk or a killed compressor would.
    fail_midway: bool,
}

impl ExportSource for MemSource {
    fn config(&self) -> Result<Vec<u8>, SourceError> {
        Ok(self.config.clone())
    }

    fn layers(&self) -> Vec<LayerRef> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerRef {
                diff_id: if self.wrong_diff_id && i == 0 {
                    Digest::of(b"not this layer")
                } else {
                    Digest::of(l)
                },
            })
            .collect()
    }

    fn write_layer_blob(
        &self,
        index: usize,
        compression: Compression,
        out: &mut dyn Write,
    ) -> Result<LayerBlob, SourceError> {
        let tar = &self.layers[index];
        let mut w = DigestWriter::new(out);
        if self.fail_midway && index == 1 {
            w.write_all(&tar[..tar.len() / 2])?;
            return Err("the layer could not be read any further".into());
        }
        match compression {
            Compression::None => w.write_all(tar)?,
            Compression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(&mut w, flate2::Compression::fast());
                gz.write_all(tar)?;
                gz.finish()?;
            }
            Compression::Zstd => {
                let mut z = zstd::Encoder::new(&mut w, 3)?;
                z.write_all(tar)?;
                z.finish()?;
            }
        }
        let (_, digest, size) = w.finish();
        Ok(LayerBlob {
            diff_id: Digest::of(tar),
            blob: BlobInfo { digest, size },
        })
    }

    fn cached_layer_blob(
        &self,
        index: usize,
        compression: Compression,
    ) -> Option<(BlobInfo, PathBuf)> {
        match &self.cache[index] {
            Some((c, info, path)) if *c == compression => Some((*info, path.clone())),
            _ => None,
        }
    }
}

fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// Path, file content (None: a directory or symlink), mode, symlink target.
type Entry<'a> = (&'a str, Option<&'a [u8]>, u32, Option<&'a str>);

fn layer(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content, mode, link) in entries {
        match (content, link) {
            (_, Some(target)) => {
                let mut h = header(path, tar::EntryType::Symlink, *mode, 0);
                h.set_link_name(target).unwrap();
                h.set_cksum();
                b.append(&h, io::empty()).unwrap();
            }
            (Some(data), None) => {
                let mut h = header(path, tar::EntryType::Regular, *mode, data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            (None, None) => {
                let mut h = header(path, tar::EntryType::Directory, *mode, 0);
                h.set_cksum();
                b.append(&h, io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn test_image() -> MemSource {
    test_image_for(Platform::host())
}

fn test_image_for(platform: Platform) -> MemSource {
    let base = layer(&[
        ("bin/", None, 0o755, None),
        ("bin/hello", Some(b"#!/bin/sh\necho hello\n"), 0o755, None),
        ("etc/", None, 0o755, None),
        ("etc/motd", Some(b"old motd\n"), 0o644, None),
        ("etc/gone", Some(b"deleted by layer 2\n"), 0o600, None),
        ("etc/link", None, 0o777, Some("motd")),
    ]);
    let top = layer(&[
        ("etc/", None, 0o755, None),
        ("etc/motd", Some(b"new motd\n"), 0o640, None),
        ("etc/.wh.gone", Some(b""), 0o644, None),
    ]);
    let t = Timestamp::parse("2024-05-01T12:00:00Z").unwrap();
    let mut b = ImageConfigBuilder::scratch(platform);
    b.set_created(t);
    b.add_layer(
        Digest::of(&base),
        t,
        "/bin/sh -c #(nop) ADD file:base in / ",
    );
    b.set_env("PATH", "/bin");
    b.add_empty_history(t, &created_by::metadata("ENV PATH=/bin"));
    b.add_layer(
        Digest::of(&top),
        t,
        &created_by::run(&[], "echo new > /etc/motd"),
    );
    b.set_cmd(vec!["/bin/hello".into()]);
    b.set_label("org.example", "yes");
    b.add_empty_history(t, &created_by::metadata(r#"CMD ["/bin/hello"]"#));
    MemSource {
        config: b.build().to_oci_json(),
        cache: vec![None, None],
        layers: vec![base, top],
        wrong_diff_id: false,
        fail_midway: false,
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

fn skopeo(args: &[&str]) -> String {
    run(Command::new("skopeo").arg("--insecure-policy").args(args))
}

fn skopeo_inspect(target: &str) -> serde_json::Value {
    serde_json::from_str(&skopeo(&["inspect", target])).unwrap()
}

/// `umoci unpack` the layout's `reference` and check the rootfs file by file.
fn unpack_and_check(layout: &Path, reference: &str, work: &Path) {
    let bundle = work.join(format!("bundle-{}", reference.replace(':', "_")));
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{reference}", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read(rootfs.join("bin/hello")).unwrap(),
        b"#!/bin/sh\necho hello\n"
    );
    assert_eq!(
        fs::metadata(rootfs.join("bin/hello"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
    assert_eq!(fs::read(rootfs.join("etc/motd")).unwrap(), b"new motd\n");
    let motd = fs::metadata(rootfs.join("etc/motd")).unwrap();
    assert_eq!(motd.permissions().mode() & 0o7777, 0o640);
    assert_eq!((motd.uid(), motd.gid()), (0, 0));
    assert_eq!(
        fs::read_link(rootfs.join("etc/link")).unwrap(),
        Path::new("motd")
    );
    assert!(
        !rootfs.join("etc/gone").exists(),
        "the whiteout removed etc/gone"
    );
    assert!(!rootfs.join("etc/.wh.gone").exists());
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"][0], "/bin/hello");
}

fn index_refs(layout: &Path) -> Vec<String> {
    let index: OciIndex =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    index
        .manifests
        .iter()
        .map(|d| {
            d.annotations
                .get(ANNOTATION_REF_NAME)
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn dest(s: &str) -> Destination {
    s.parse().unwrap()
}

fn opts(compression: Compression) -> ExportOptions {
    ExportOptions {
        compression,
        ..ExportOptions::default()
    }
}

#[test]
fn oci_layout_is_read_by_skopeo_and_umoci_and_merges_refs() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let src = test_image();
    let spec = format!("oci:{}:v1", layout.display());
    let exported = export(&src, &dest(&spec), &opts(Compression::Gzip)).unwrap();
    assert_eq!(exported.config_digest, Digest::of(&src.config));

    let info = skopeo_inspect(&spec);
    assert_eq!(info["Digest"], exported.manifest_digest.to_string());
    assert_eq!(info["Labels"]["org.example"], "yes");
    assert_eq!(info["Env"][0], "PATH=/bin");
    let layers: Vec<String> = exported
        .manifest
        .layers
        .iter()
        .map(|l| l.digest.to_string())
        .collect();
    assert_eq!(info["Layers"], serde_json::json!(layers));
    assert!(exported
        .manifest
        .layers
        .iter()
        .all(|l| l.media_type == OCI_LAYER_GZIP));
    unpack_and_check(&layout, "v1", tmp.path());

    // A second ref with zstd layers goes beside the first; skopeo reads it.
    let spec2 = format!("oci:{}:v2", layout.display());
    let zst = export(&src, &dest(&spec2), &opts(Compression::Zstd)).unwrap();
    assert!(zst
        .manifest
        .layers
        .iter()
        .all(|l| l.media_type == OCI_LAYER_ZSTD));
    assert_eq!(
        skopeo_inspect(&spec2)["Digest"],
        zst.manifest_digest.to_string()
    );
    assert_eq!(index_refs(&layout), vec!["v1", "v2"]);

    // Re-exporting v1 replaces its entry and leaves existing blobs alone.
    let blob = layout
        .join("blobs/sha256")
        .join(exported.manifest.layers[0].digest.hex());
    let inode = fs::metadata(&blob).unwrap().ino();
    let again = export(&src, &dest(&spec), &opts(Compression::Gzip)).unwrap();
    assert_eq!(
        again.manifest_digest, exported.manifest_digest,
        "exports are reproducible"
    );
    assert_eq!(index_refs(&layout), vec!["v2", "v1"]);
    assert_eq!(
        fs::metadata(&blob).unwrap().ino(),
        inode,
        "an existing blob is not rewritten"
    );
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&layout),
        vec!["blobs", "index.json", "oci-layout"],
        "no temp files left"
    );
    assert!(names(&layout.join("blobs/sha256"))
        .iter()
        .all(|n| n.len() == 64));

    // skopeo copies the layout to a dir: image.
    let copied = tmp.path().join("copied");
    skopeo(&["copy", &spec, &format!("dir:{}", copied.display())]);
    assert!(copied.join("manifest.json").is_file());
}

#[test]
fn oci_archive_is_read_by_skopeo_and_umoci() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("image.tar");
    let src = test_image();
    let spec = format!("oci-archive:{}:latest", archive.display());
    let exported = export(&src, &dest(&spec), &opts(Compression::Gzip)).unwrap();
    assert_eq!(
        skopeo_inspect(&spec)["Digest"],
        exported.manifest_digest.to_string()
    );

    let layout = tmp.path().join("from-archive");
    skopeo(&["copy", &spec, &format!("oci:{}:x", layout.display())]);
    unpack_and_check(&layout, "x", tmp.path());

    // The archive is a plain tar with the layout at its root, no temp left.
    let mut names = Vec::new();
    for entry in tar::Archive::new(fs::File::open(&archive).unwrap())
        .entries()
        .unwrap()
    {
        names.push(entry.unwrap().path().unwrap().display().to_string());
    }
    assert_eq!(names[0], "oci-layout");
    assert_eq!(names.last().unwrap(), "index.json");
    assert_eq!(names.len(), 3 + 2 + 1 + 1 + 1, "{names:?}");
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        3,
        "only image.tar, the copy and the bundle"
    );
}

#[test]
fn docker_archive_is_read_by_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("docker.tar");
    let src = test_image();
    let spec = format!("docker-archive:{}:localhost/app:1.0", archive.display());
    let exported = export(&src, &dest(&spec), &opts(Compression::Zstd)).unwrap();
    // docker save layers are uncompressed, named by diff ID.
    let diff_ids: Vec<Digest> = src.layers().iter().map(|l| l.diff_id).collect();
    let digests: Vec<Digest> = exported.manifest.layers.iter().map(|l| l.digest).collect();
    assert_eq!(digests, diff_ids);

    let mut files = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(fs::File::open(&archive).unwrap())
        .entries()
        .unwrap()
    {
        let mut entry = entry.unwrap();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        files.insert(entry.path().unwrap().display().to_string(), body);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"][0], "localhost/app:1.0");
    assert_eq!(
        manifest[0]["Config"],
        format!("{}.json", Digest::of(&src.config).hex())
    );
    assert_eq!(files[&format!("{}.tar", diff_ids[0].hex())], src.layers[0]);
    let repositories: serde_json::Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert_eq!(repositories["localhost/app"]["1.0"], diff_ids[1].hex());

    let info = skopeo_inspect(&format!("docker-archive:{}", archive.display()));
    assert_eq!(info["Labels"]["org.example"], "yes");
    let layout = tmp.path().join("from-docker");
    skopeo(&[
        "copy",
        &format!("docker-archive:{}", archive.display()),
        &format!("oci:{}:d", layout.display()),
    ]);
    unpack_and_check(&layout, "d", tmp.path());
}

#[test]
fn dir_is_read_by_skopeo_and_replaced_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dir");
    let src = test_image();
    let spec = format!("dir:{}", dir.display());
    let gz = export(&src, &dest(&spec), &opts(Compression::Gzip)).unwrap();
    assert_eq!(
        fs::read(dir.join("version")).unwrap(),
        b"Directory Transport Version: 1.1\n"
    );
    assert_eq!(
        skopeo_inspect(&spec)["Digest"],
        gz.manifest_digest.to_string()
    );
    let layout = tmp.path().join("from-dir");
    skopeo(&["copy", &spec, &format!("oci:{}:d", layout.display())]);
    unpack_and_check(&layout, "d", tmp.path());

    // Docker format, uncompressed: old gzip blobs are removed.
    let docker = ExportOptions {
        format: ManifestFormat::Docker,
        compression: Compression::None,
        ..ExportOptions::default()
    };
    let plain = export(&src, &dest(&spec), &docker).unwrap();
    let info = skopeo_inspect(&spec);
    assert_eq!(info["Digest"], plain.manifest_digest.to_string());
    let count = fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        count,
        2 + 1 + 2,
        "version, manifest.json, config, two layers"
    );

    // A directory holding something else is refused, untouched.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("precious"), b"x").unwrap();
    let err = export(&src, &dest(&format!("dir:{}", other.display())), &docker).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(fs::read_dir(&other).unwrap().count(), 1);
}

#[test]
fn cached_blobs_are_copied_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut src = test_image();
    // Make the cache from the source itself, then offer it.
    let cached = tmp.path().join("cached.gz");
    let info = src
        .write_layer_blob(
            0,
            Compression::Gzip,
            &mut fs::File::create(&cached).unwrap(),
        )
        .unwrap()
        .blob;
    src.cache[0] = Some((Compression::Gzip, info, cached.clone()));
    let layout = tmp.path().join("layout");
    let exported = export(
        &src,
        &dest(&format!("oci:{}:c", layout.display())),
        &opts(Compression::Gzip),
    )
    .unwrap();
    assert_eq!(exported.manifest.layers[0].digest, info.digest);
    assert_eq!(
        fs::read(layout.join("blobs/sha256").join(info.digest.hex())).unwrap(),
        fs::read(&cached).unwrap()
    );

    // A cache file whose bytes changed is refused, not published.
    fs::write(&cached, b"corrupted").unwrap();
    let other = tmp.path().join("layout2");
    let err = export(
        &src,
        &dest(&format!("oci:{}:c", other.display())),
        &opts(Compression::Gzip),
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::BlobMismatch { .. }), "{err}");
    assert!(!other.join("blobs/sha256").join(info.digest.hex()).exists());
}

#[test]
fn a_changed_layer_is_refused_in_uncompressed_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let mut src = test_image();
    src.wrong_diff_id = true;
    let archive = tmp.path().join("x.tar");
    let err = export(
        &src,
        &dest(&format!("docker-archive:{}", archive.display())),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ExportError::DiffIdMismatch { index: 0, .. }),
        "{err}"
    );
    assert!(
        !archive.exists(),
        "no half-written archive under the final name"
    );
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the temp file is gone"
    );
}

#[test]
fn progress_events_and_annotations() {
    let tmp = tempfile::tempdir().unwrap();
    let src = test_image();
    let mut options = opts(Compression::Gzip);
    options
        .annotations
        .insert("org.opencontainers.image.title".into(), "demo".into());
    let mut events = Vec::new();
    let layout = tmp.path().join("layout");
    let exported = rbuild::image::export_with_progress(
        &src,
        &dest(&format!("oci:{}:a", layout.display())),
        &options,
        &mut |e| events.push(e),
    )
    .unwrap();
    use rbuild::image::ExportEvent;
    assert!(matches!(
        events[0],
        ExportEvent::Layer {
            index: 0,
            reused: false,
            ..
        }
    ));
    assert!(matches!(events[1], ExportEvent::Layer { index: 1, .. }));
    assert!(
        matches!(events[2], ExportEvent::Config { blob } if blob.digest == Digest::of(&src.config))
    );
    assert_eq!(
        events[3],
        ExportEvent::Manifest {
            digest: exported.manifest_digest
        }
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            layout
                .join("blobs/sha256")
                .join(exported.manifest_digest.hex()),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.title"],
        "demo"
    );

    // Docker schema2 has no annotations: they are dropped, not mis-written.
    options.format = ManifestFormat::Docker;
    let docker = export(
        &src,
        &dest(&format!("dir:{}", tmp.path().join("d").display())),
        &options,
    )
    .unwrap();
    assert!(docker.manifest.annotations.is_empty());
    // ... and zstd cannot be described in docker schema2.
    options.compression = Compression::Zstd;
    let err = export(
        &src,
        &dest(&format!("dir:{}", tmp.path().join("z").display())),
        &options,
    )
    .unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
}

#[test]
fn parallel_exports_into_one_layout_keep_every_ref() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    std::thread::scope(|scope| {
        for i in 0..4 {
            let layout = &layout;
            scope.spawn(move || {
                let src = test_image();
                export(
                    &src,
                    &dest(&format!("oci:{}:r{i}", layout.display())),
                    &opts(Compression::None),
                )
                .unwrap();
            });
        }
    });
    let mut refs = index_refs(&layout);
    refs.sort();
    assert_eq!(refs, vec!["r0", "r1", "r2", "r3"]);
}

#[test]
fn multi_platform_index_is_read_by_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let amd = test_image_for(Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Platform::default()
    });
    let arm = test_image_for(Platform {
        architecture: "arm64".into(),
        os: "linux".into(),
        variant: "v8".into(),
        ..Platform::default()
    });
    let images: Vec<(&dyn ExportSource, Platform)> = vec![
        (&amd, amd_platform()),
        (
            &arm,
            Platform {
                architecture: "arm64".into(),
                os: "linux".into(),
                variant: "v8".into(),
                ..Platform::default()
            },
        ),
    ];
    for (format, spec) in [
        (
            ManifestFormat::Oci,
            format!("oci:{}:multi", tmp.path().join("layout").display()),
        ),
        (
            ManifestFormat::Docker,
            format!(
                "oci-archive:{}:multi",
                tmp.path().join("list.tar").display()
            ),
        ),
    ] {
        let options = ExportOptions {
            format,
            ..ExportOptions::default()
        };
        let exported =
            rbuild::image::export_index(&images, &dest(&spec), &options, &mut |_| {}).unwrap();
        assert_eq!(exported.images.len(), 2);
        let raw: serde_json::Value =
            serde_json::from_str(&skopeo(&["inspect", "--raw", &spec])).unwrap();
        // An OCI layout holds OCI indexes whatever format was asked for.
        assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(
            raw["manifests"][0]["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(raw["manifests"][1]["platform"]["architecture"], "arm64");
        assert_eq!(raw["manifests"][1]["platform"]["variant"], "v8");
        // skopeo picks the instance for the platform asked for.
        let arm_info: serde_json::Value = serde_json::from_str(&skopeo(&[
            "--override-arch",
            "arm64",
            "--override-variant",
            "v8",
            "inspect",
            &spec,
        ]))
        .unwrap();
        // skopeo reports the digest of what the reference names: the index.
        assert_eq!(arm_info["Digest"], exported.digest.to_string());
        assert_eq!(arm_info["Architecture"], "arm64");
        // And copies every instance.
        let all = tmp
            .path()
            .join(format!("all-{}", format!("{format:?}").to_lowercase()));
        skopeo(&["copy", "--all", &spec, &format!("oci:{}:x", all.display())]);
    }
    // dir: and docker-archive: hold one image.
    let err = rbuild::image::export_index(
        &images,
        &dest(&format!("dir:{}", tmp.path().join("d").display())),
        &ExportOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("oci: and oci-archive: only"),
        "{err}"
    );
}

fn amd_platform() -> Platform {
    Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Platform::default()
    }
}

#[test]
fn oci_layouts_always_hold_oci_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let src = test_image();
    let spec = format!("oci:{}:d", tmp.path().join("layout").display());
    let options = ExportOptions {
        format: ManifestFormat::Docker,
        ..ExportOptions::default()
    };
    let exported = export(&src, &dest(&spec), &options).unwrap();
    assert_eq!(exported.manifest.format, ManifestFormat::Oci);
    let raw: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--raw", &spec])).unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
}

#[test]
fn a_failed_export_leaves_nothing_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let mut src = test_image();
    src.fail_midway = true;
    for (i, spec) in [
        format!("oci:{}:x", tmp.path().join("layout").display()),
        format!("oci-archive:{}", tmp.path().join("a.tar").display()),
        format!("docker-archive:{}", tmp.path().join("d.tar").display()),
        format!("dir:{}", tmp.path().join("dir").display()),
    ]
    .iter()
    .enumerate()
    {
        let options = opts(if i == 2 {
            Compression::None
        } else {
            Compression::Gzip
        });
        let err = export(&src, &dest(spec), &options).unwrap_err();
        assert!(
            err.to_string().contains("could not be read any further"),
            "{spec}: {err}"
        );
    }
    // The layout has the first layer's blob (complete, named by its
    // digest) and nothing else: no index entry, no temp file.
    let layout = tmp.path().join("layout");
    assert!(!layout.join("index.json").exists());
    let blobs: Vec<_> = fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(blobs.len(), 1);
    let bytes = fs::read(&blobs[0]).unwrap();
    assert_eq!(
        blobs[0].file_name().unwrap().to_string_lossy(),
        Digest::of(&bytes).hex()
    );
    assert!(!layout.read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".tmp")));
    // No archive appears, and no temp file stays beside where it would be.
    let mut left: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["dir", "layout"]);
    assert!(!tmp.path().join("dir/manifest.json").exists());
}
