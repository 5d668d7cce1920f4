//! Copying a directory tree into another through this module's own tar
//! stream: owners, modes, links, xattrs and (optionally) whiteouts come
//! along exactly as a layer keeps them, with the same escape-proof
//! extraction. One writer thread, the caller's thread extracts.

use std::io;
use std::path::Path;

use super::diff::{write_diff_tar, TarOptions};
use super::error::{LayerError, Result};
use super::extract::{extract_layer, extract_plain, ExtractOptions};

/// How the copy treats OCI whiteouts met in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMode {
    /// Apply them in overlay form (stacking one layer's diff onto another).
    Layer,
    /// No whiteout mapping (a plain rootfs).
    Plain,
}

/// Copies the tree at `src` into `dest` (which must exist).
pub fn copy_tree(src: &Path, dest: &Path, mode: CopyMode) -> Result<()> {
    let (reader, writer) = io::pipe().map_err(LayerError::Write)?;
    let src = src.to_path_buf();
    let producer = std::thread::spawn(move || write_diff_tar(&src, &TarOptions::default(), writer));
    let opts = ExtractOptions::default();
    let extracted = match mode {
        CopyMode::Layer => extract_layer(reader, dest, &opts),
        CopyMode::Plain => extract_plain(reader, dest, &opts),
    };
    let produced = producer
        .join()
        .map_err(|_| LayerError::Write(io::Error::other("the tar writer thread panicked")))?;
    produced?;
    extracted?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_links_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("d")).unwrap();
        std::fs::write(src.path().join("d/f"), b"data").unwrap();
        std::fs::set_permissions(
            src.path().join("d/f"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        std::os::unix::fs::symlink("d/f", src.path().join("l")).unwrap();
        copy_tree(src.path(), dest.path(), CopyMode::Plain).unwrap();
        assert_eq!(std::fs::read(dest.path().join("d/f")).unwrap(), b"data");
        let mode = std::fs::metadata(dest.path().join("d/f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o751);
        assert_eq!(
            std::fs::read_link(dest.path().join("l")).unwrap(),
            std::path::Path::new("d/f")
        );
    }
}
