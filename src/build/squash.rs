//! `--squash` (the stage's new layers become one, on top of the base
//! image's layers) and `--squash-all` (the whole rootfs becomes one layer).
//! History keeps every entry; entries whose layer was folded in are marked
//! `empty_layer`, so `rootfs.diff_ids` still lines up with history.

use std::fs;
use std::path::Path;

use crate::build::error::StepError;
use crate::build::step::View;
use crate::image::Image;
use crate::layer::copy::{copy_tree, CopyMode};
use crate::layer::xattrs::OPAQUE_XATTR;
use crate::layer::{diff_id, TarOptions};
use crate::store::{ChainId, Lease, Store};

/// Before applying a layer over others in one dir, empties the dirs the
/// layer marks opaque: what lower layers put there is hidden.
fn clear_opaque_dirs(layer: &Path, combined: &Path) -> Result<(), StepError> {
    for entry in walkdir::WalkDir::new(layer).min_depth(1) {
        let entry = entry.map_err(|e| StepError::Io(e.into()))?;
        if !entry.file_type().is_dir() {
            continue;
        }
        let opaque = xattr::get(entry.path(), OPAQUE_XATTR)
            .ok()
            .flatten()
            .is_some_and(|v| v == b"y");
        if opaque {
            let rel = entry.path().strip_prefix(layer).unwrap_or(entry.path());
            let target = combined.join(rel);
            if target.is_dir() && !target.is_symlink() {
                for child in fs::read_dir(&target)? {
                    let p = child?.path();
                    if p.is_dir() && !p.is_symlink() {
                        fs::remove_dir_all(&p)?;
                    } else {
                        fs::remove_file(&p)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Replaces `layers[keep..]` by one layer with the same content.
pub fn squash(
    store: &Store,
    lease: &Lease,
    mounts_dir: &Path,
    layers: &[ChainId],
    keep: usize,
    all: bool,
) -> Result<Vec<ChainId>, StepError> {
    let keep = if all { 0 } else { keep.min(layers.len()) };
    if layers.is_empty() || (layers.len() - keep <= 1 && !all) {
        return Ok(layers.to_vec());
    }
    let parent = keep.checked_sub(1).map(|i| layers[i]);
    let prepared = store.prepare_layer(parent.as_ref())?;
    let upper = prepared.upper();
    if all {
        // The merged view has no whiteouts: exactly the final rootfs.
        let view = View::mount(store, layers, mounts_dir)?;
        copy_tree(view.root(), &upper, CopyMode::Plain)?;
    } else {
        for chain in &layers[keep..] {
            let dir = store.layer_diff_path(chain);
            clear_opaque_dirs(&dir, &upper)?;
            copy_tree(&dir, &upper, CopyMode::Layer)?;
        }
    }
    let (digest, size) = diff_id(&upper, &TarOptions::default())?;
    let chain = store.commit_layer(prepared, digest, size)?;
    lease.protect_layer(&chain)?;
    let mut out = layers[..keep].to_vec();
    out.push(chain);
    Ok(out)
}

/// Rewrites history and diff IDs after [`squash`]: of the entries that made
/// the folded layers, only the last keeps a layer.
pub fn squash_config(image: &mut Image, kept_layers: usize, new_diff_id: crate::digest::Digest) {
    let mut seen = 0;
    let mut last_folded = None;
    for (i, h) in image.history.iter().enumerate() {
        if !h.empty_layer {
            if seen >= kept_layers {
                last_folded = Some(i);
            }
            seen += 1;
        }
    }
    let mut seen = 0;
    for (i, h) in image.history.iter_mut().enumerate() {
        if !h.empty_layer {
            if seen >= kept_layers && Some(i) != last_folded {
                h.empty_layer = true;
            }
            seen += 1;
        }
    }
    if last_folded.is_none() {
        image.history.push(crate::image::History {
            created: image.created,
            created_by: "/bin/sh -c #(nop) squashed layers".to_string(),
            ..Default::default()
        });
    }
    image.rootfs.diff_ids.truncate(kept_layers);
    image.rootfs.diff_ids.push(new_diff_id);
}
