//! `oci-archive:FILE[:REF]`: an OCI image layout as one tar file, streamed
//! into a temp file beside FILE and renamed over it when complete.

use std::fs::File;
use std::path::Path;

use super::oci::{merge_index, oci_only, LAYOUT_CONTENT, LAYOUT_FILE};
use super::sink::{Naming, TarSink};
use super::{write_top, ExportError, ExportOptions, Exported, Progress, Top};
use crate::digest::Digest;
use crate::image::manifest::OciIndex;

pub(super) fn export(
    top: &Top<'_>,
    file: &Path,
    reference: Option<&str>,
    options: &ExportOptions,
    progress: Progress<'_>,
) -> Result<(Digest, Vec<Exported>), ExportError> {
    let (tmp, mut sink) = open_tar(file, Naming::OciBlobs)?;
    sink.put_named(LAYOUT_FILE, LAYOUT_CONTENT)?;
    sink.put_dir("blobs/")?;
    sink.put_dir("blobs/sha256/")?;
    let (descriptor, images) = write_top(top, &mut sink, &oci_only(options), progress)?;
    let digest = descriptor.digest;
    let index = merge_index(OciIndex::default(), descriptor, reference);
    sink.put_named("index.json", &index.to_json())?;
    close_tar(tmp, sink, file)?;
    Ok((digest, images))
}

/// A temp file beside `file` (so the final rename stays on one filesystem).
pub(super) fn open_tar(
    file: &Path,
    naming: Naming,
) -> Result<(tempfile::NamedTempFile, TarSink), ExportError> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let io = |what: &str| {
        let what = what.to_string();
        let path = file.to_path_buf();
        move |source| ExportError::Io { what, path, source }
    };
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-archive-")
        .tempfile_in(dir)
        .map_err(io("creating a temp file beside"))?;
    let handle: File = tmp.reopen().map_err(io("opening a temp file beside"))?;
    let sink = TarSink::new(handle, file, naming);
    Ok((tmp, sink))
}

/// Ends the tar and renames it over `file`.
pub(super) fn close_tar(
    tmp: tempfile::NamedTempFile,
    sink: TarSink,
    file: &Path,
) -> Result<(), ExportError> {
    use std::os::unix::fs::PermissionsExt;
    sink.finish()?;
    let io = |what: &str| {
        let what = what.to_string();
        let path = file.to_path_buf();
        move |source| ExportError::Io { what, path, source }
    };
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
        .map_err(io("setting permissions of"))?;
    tmp.persist(file)
        .map_err(|e| io("renaming the archive into place")(e.error))?;
    super::sink::sync_parent(file);
    Ok(())
}
