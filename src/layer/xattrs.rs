//! Which extended attributes travel in a layer, and how overlay marks
//! opaque directories.
//!
//! The allow-list is the same in both directions (export and extraction):
//! `security.capability` (file capabilities, e.g. `ping`) and `user.*`,
//! but never overlay's own bookkeeping (`*.overlay.*`) nor fuse-overlayfs'
//! (`user.fuseoverlayfs.*`): those describe the upper dir, not the image.

use std::path::Path;

use super::error::{LayerError, Result};
use super::tar_writer::Xattrs;

/// The xattr rbuild writes to mark an extracted directory opaque: overlay
/// mounts use `userxattr` everywhere, root or not (DESIGN.md).
pub const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// xattrs whose value `y` marks a directory opaque in an upper dir.
const OPAQUE_MARKERS: [&str; 3] = [
    "user.overlay.opaque",
    "trusted.overlay.opaque",
    "user.fuseoverlayfs.opaque",
];

/// True when `name` may be stored in, or restored from, a layer.
pub fn allowed(name: &[u8]) -> bool {
    if name == b"security.capability" {
        return true;
    }
    let Some(rest) = name.strip_prefix(b"user.") else {
        return false;
    };
    !rest.starts_with(b"overlay.") && !rest.starts_with(b"fuseoverlayfs.")
}

/// The allowed xattrs of `path` (not following a final symlink), sorted
/// by name, and whether an opaque marker is set on it. Fails when the
/// upper dir relies on overlay redirects or metacopy, which a tar diff
/// cannot express.
pub fn read(path: &Path) -> Result<(Xattrs, bool)> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        // A filesystem without xattr support has none to copy.
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok((Vec::new(), false)),
        Err(e) => return Err(LayerError::io("listing xattrs of", path, e)),
    };
    let mut kept = Vec::new();
    let mut opaque = false;
    for name in names {
        let bytes = name.as_encoded_bytes();
        let text = String::from_utf8_lossy(bytes);
        if text.ends_with(".overlay.redirect") {
            return Err(overlay_feature(path, &text, "redirect_dir"));
        }
        if text.ends_with(".overlay.metacopy") {
            return Err(overlay_feature(path, &text, "metacopy"));
        }
        let is_marker = OPAQUE_MARKERS.contains(&text.as_ref());
        if !is_marker && !allowed(bytes) {
            continue;
        }
        let value = match xattr::get(path, &name) {
            Ok(Some(v)) => v,
            // Removed between list and get, or unreadable to us (trusted.*).
            Ok(None) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && is_marker => continue,
            Err(e) => return Err(LayerError::io("reading xattrs of", path, e)),
        };
        if is_marker {
            opaque |= value == b"y";
        } else {
            kept.push((bytes.to_vec(), value));
        }
    }
    kept.sort();
    Ok((kept, opaque))
}

fn overlay_feature(path: &Path, xattr: &str, feature: &'static str) -> LayerError {
    LayerError::OverlayFeature {
        path: path.to_path_buf(),
        xattr: xattr.to_string(),
        feature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        assert!(allowed(b"security.capability"));
        assert!(allowed(b"user.mime_type"));
        assert!(!allowed(b"user.overlay.opaque"));
        assert!(!allowed(b"user.overlay.origin"));
        assert!(!allowed(b"user.fuseoverlayfs.opaque"));
        assert!(!allowed(b"trusted.overlay.opaque"));
        assert!(!allowed(b"security.selinux"));
        assert!(!allowed(b"system.posix_acl_access"));
    }

    #[test]
    fn reads_sorted_allowed_and_detects_opaque() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        xattr::set(p, "user.zz", b"2").unwrap();
        xattr::set(p, "user.aa", b"1").unwrap();
        xattr::set(p, "user.overlay.opaque", b"y").unwrap();
        xattr::set(p, "user.overlay.origin", b"x").unwrap();
        let (kept, opaque) = read(p).unwrap();
        assert!(opaque);
        assert_eq!(
            kept,
            vec![
                (b"user.aa".to_vec(), b"1".to_vec()),
                (b"user.zz".to_vec(), b"2".to_vec())
            ]
        );
        xattr::set(p, "user.overlay.redirect", b"/x").unwrap();
        assert!(matches!(read(p), Err(LayerError::OverlayFeature { .. })));
    }
}
