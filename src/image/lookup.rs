//! Finding a stored image by what a user typed: an ID, an ID prefix, or a
//! name matched the way buildah and podman match names (`app` finds
//! `localhost/app:latest`, `busybox` finds `docker.io/library/busybox`).

use crate::reference::{normalize_docker, normalize_local, Reference};
use crate::store::{ImageRecord, Store, StoreError};

/// The stored image `name_or_id` names.
pub fn lookup_image(store: &Store, name_or_id: &str) -> Result<ImageRecord, StoreError> {
    let mut candidates = Vec::new();
    if let Ok(r) = normalize_local(name_or_id) {
        candidates.push(r.to_string());
    }
    if let Ok(r) = normalize_docker(name_or_id) {
        candidates.push(r.to_string());
    }
    match store.resolve_image_with(name_or_id, &candidates) {
        Err(StoreError::ImageNotFound(_)) => {}
        other => return other,
    }
    // A short name may match a stored name by repository suffix.
    if let Ok(typed) = Reference::parse(name_or_id) {
        let images = store.images()?;
        let stored: Vec<(Reference, &ImageRecord)> = images
            .iter()
            .flat_map(|rec| {
                rec.names
                    .iter()
                    .filter_map(move |n| Reference::parse(n).ok().map(|r| (r, rec)))
            })
            .collect();
        let refs: Vec<&Reference> = stored.iter().map(|(r, _)| r).collect();
        if let Some((best, _)) = typed.best_match(refs) {
            if let Some((_, rec)) = stored.iter().find(|(r, _)| r == best) {
                return Ok((*rec).clone());
            }
        }
    }
    Err(StoreError::ImageNotFound(name_or_id.to_string()))
}

/// The name an image built or tagged as `name` is stored under
/// (`app` → `localhost/app:latest`, buildah's rule).
pub fn local_name(name: &str) -> Result<String, crate::reference::ReferenceError> {
    normalize_local(name).map(|r| r.to_string())
}
