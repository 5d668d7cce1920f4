//! `dir:DIR`: containers/image's directory format — `manifest.json`, every
//! blob named by its hex digest, and a `version` file. A directory that
//! already holds a `dir:` image is replaced (blobs it shares are kept);
//! any other non-empty directory is refused.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use super::oci::write_atomic;
use super::sink::{BlobKind, DirSink, Naming};
use super::{write_image_blobs, ExportError, ExportOptions, Exported, Progress};
use crate::image::source::ExportSource;

const VERSION_FILE: &str = "version";
const VERSION: &[u8] = b"Directory Transport Version: 1.1\n";

pub(super) fn export(
    source: &dyn ExportSource,
    dir: &Path,
    options: &ExportOptions,
    progress: Progress<'_>,
) -> Result<Exported, ExportError> {
    let io = |what: &str, path: &Path| {
        let what = what.to_string();
        let path = path.to_path_buf();
        move |source| ExportError::Io { what, path, source }
    };
    fs::create_dir_all(dir).map_err(io("creating the directory", dir))?;
    let mut old = Vec::new();
    for entry in fs::read_dir(dir).map_err(io("listing", dir))? {
        old.push(entry.map_err(io("listing", dir))?.file_name());
    }
    if !old.is_empty() && !dir.join(VERSION_FILE).is_file() {
        return Err(ExportError::Corrupt {
            what: "dir: destination",
            path: dir.to_path_buf(),
            why: "the directory is not empty and holds no dir: image (no version file); pick an empty or new directory".into(),
        });
    }
    write_atomic(&dir.join(VERSION_FILE), VERSION)?;
    let mut sink = DirSink::new(dir, Naming::Flat)?;
    let manifest = write_image_blobs(
        source,
        &mut sink,
        options.format,
        options.compression,
        &options.annotations,
        progress,
    )?;
    let manifest_bytes = manifest.to_json();
    write_atomic(&dir.join("manifest.json"), &manifest_bytes)?;

    // Drop what the previous image left and this one does not use.
    let mut keep: HashSet<String> = [VERSION_FILE, "manifest.json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    keep.insert(Naming::Flat.name(BlobKind::Config, &manifest.config.digest));
    keep.extend(
        manifest
            .layers
            .iter()
            .map(|l| Naming::Flat.name(BlobKind::Layer, &l.digest)),
    );
    for name in old {
        if !keep.contains(&*name.to_string_lossy()) {
            let path = dir.join(&name);
            // A symlink is removed itself, never followed.
            let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            let removed = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(io("removing a stale file", &path))?;
        }
    }
    Ok(Exported {
        config_digest: manifest.config.digest,
        manifest_digest: crate::digest::Digest::of(&manifest_bytes),
        manifest,
    })
}
