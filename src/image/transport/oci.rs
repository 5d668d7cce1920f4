//! `oci:DIR[:REF]`: an OCI image layout directory. Blobs are added once
//! (an existing blob is kept), `index.json` is merged with what the layout
//! already lists (an entry with the same `org.opencontainers.image.ref.name`
//! is replaced) and replaced atomically.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::sink::{DirSink, Naming};
use super::{write_top, ExportError, ExportOptions, Exported, Progress, Top};
use crate::digest::Digest;
use crate::image::manifest::{Descriptor, OciIndex, ANNOTATION_REF_NAME};

pub(super) const LAYOUT_FILE: &str = "oci-layout";
pub(super) const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes `top` into the layout at `dir`; returns the digest listed in
/// `index.json` and the images written.
pub(super) fn export(
    top: &Top<'_>,
    dir: &Path,
    reference: Option<&str>,
    options: &ExportOptions,
    progress: Progress<'_>,
) -> Result<(Digest, Vec<Exported>), ExportError> {
    let io = |what: &str, path: &Path| {
        let what = what.to_string();
        let path = path.to_path_buf();
        move |source| ExportError::Io { what, path, source }
    };
    fs::create_dir_all(dir).map_err(io("creating the layout directory", dir))?;
    {
        // Under the lock, so parallel exports into a new directory agree on
        // who creates the layout.
        let _lock = lock_dir(dir)?;
        let layout = dir.join(LAYOUT_FILE);
        match fs::read(&layout) {
            Ok(bytes) => check_layout(&bytes, &layout)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if fs::read_dir(dir)
                    .map_err(io("listing", dir))?
                    .next()
                    .is_some()
                {
                    return Err(ExportError::Corrupt {
                        what: "OCI layout",
                        path: dir.to_path_buf(),
                        why: "the directory is not empty and has no oci-layout file; pick an empty or new directory".into(),
                    });
                }
                write_atomic(&layout, LAYOUT_CONTENT)?;
            }
            Err(e) => return Err(io("reading", &layout)(e)),
        }
    }

    let mut sink = DirSink::new(dir, Naming::OciBlobs)?;
    let (descriptor, images) = write_top(top, &mut sink, &oci_only(options), progress)?;

    // Two exports into one layout must not lose each other's entry: the
    // read-merge-write of index.json runs under a lock on the directory.
    let _lock = lock_dir(dir)?;
    let index_path = dir.join("index.json");
    let existing =
        match fs::read(&index_path) {
            Ok(bytes) => Some(serde_json::from_slice::<OciIndex>(&bytes).map_err(|e| {
                ExportError::Corrupt {
                    what: "OCI index",
                    path: index_path.clone(),
                    why: e.to_string(),
                }
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("reading", &index_path)(e)),
        };
    let digest = descriptor.digest;
    let index = merge_index(existing.unwrap_or_default(), descriptor, reference);
    write_atomic(&index_path, &index.to_json())?;
    Ok((digest, images))
}

/// `options` with OCI manifests: an OCI layout holds nothing else.
pub(super) fn oci_only(options: &ExportOptions) -> ExportOptions {
    ExportOptions {
        format: crate::image::manifest::ManifestFormat::Oci,
        ..options.clone()
    }
}

/// An exclusive `flock` on the directory itself (no lock file is left in
/// the layout), released when dropped.
fn lock_dir(dir: &Path) -> Result<nix::fcntl::Flock<fs::File>, ExportError> {
    let io = |what: &str| {
        let what = what.to_string();
        let path = dir.to_path_buf();
        move |source| ExportError::Io { what, path, source }
    };
    let handle = fs::File::open(dir).map_err(io("opening the layout directory to lock it"))?;
    nix::fcntl::Flock::lock(handle, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| io("locking the layout directory")(errno.into()))
}

pub(super) fn check_layout(bytes: &[u8], path: &Path) -> Result<(), ExportError> {
    #[derive(serde::Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let layout: Layout = serde_json::from_slice(bytes).map_err(|e| ExportError::Corrupt {
        what: "oci-layout file",
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    if layout.version != "1.0.0" {
        return Err(ExportError::Corrupt {
            what: "oci-layout file",
            path: path.to_path_buf(),
            why: format!("layout version {:?}, rbuild writes 1.0.0", layout.version),
        });
    }
    Ok(())
}

/// Adds `descriptor` under `reference`, dropping any entry it replaces: the
/// same ref name, or (unnamed) the same digest without a name.
pub(super) fn merge_index(
    mut index: OciIndex,
    mut descriptor: Descriptor,
    reference: Option<&str>,
) -> OciIndex {
    let name_of = |d: &Descriptor| d.annotations.get(ANNOTATION_REF_NAME).cloned();
    match reference {
        Some(r) => {
            index.manifests.retain(|d| name_of(d).as_deref() != Some(r));
            descriptor
                .annotations
                .insert(ANNOTATION_REF_NAME.to_string(), r.to_string());
        }
        None => index
            .manifests
            .retain(|d| !(name_of(d).is_none() && d.digest == descriptor.digest)),
    }
    index.manifests.push(descriptor);
    index
}

/// Writes `path` through a temp file in the same directory and a rename.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |what: &'static str| {
        let path = path.to_path_buf();
        move |source| ExportError::Io {
            what: what.to_string(),
            path,
            source,
        }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io("creating a temp file for"))?;
    tmp.write_all(bytes).map_err(io("writing"))?;
    tmp.as_file().sync_all().map_err(io("syncing"))?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
        .map_err(io("setting permissions of"))?;
    tmp.persist(path)
        .map_err(|e| io("renaming into place")(e.error))?;
    super::sink::sync_parent(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::image::manifest::OCI_MANIFEST;

    #[test]
    fn merge_replaces_same_ref_only() {
        let d1 = Descriptor::new(OCI_MANIFEST, Digest::of(b"1"), 1);
        let d2 = Descriptor::new(OCI_MANIFEST, Digest::of(b"2"), 2);
        let d3 = Descriptor::new(OCI_MANIFEST, Digest::of(b"3"), 3);
        let index = merge_index(OciIndex::default(), d1, Some("a"));
        let index = merge_index(index, d2.clone(), Some("b"));
        let index = merge_index(index, d3, Some("a"));
        let names: Vec<_> = index
            .manifests
            .iter()
            .map(|d| (d.annotations[ANNOTATION_REF_NAME].clone(), d.size))
            .collect();
        assert_eq!(names, vec![("b".to_string(), 2), ("a".to_string(), 3)]);
        let index = merge_index(index, d2.clone(), None);
        let index = merge_index(index, d2, None);
        assert_eq!(index.manifests.len(), 3);
    }

    #[test]
    fn layout_file_is_checked() {
        let p = Path::new("/x/oci-layout");
        assert!(check_layout(LAYOUT_CONTENT, p).is_ok());
        assert!(check_layout(br#"{"imageLayoutVersion":"2.0.0"}"#, p).is_err());
        assert!(check_layout(b"nope", p).is_err());
    }
}
