//! `rbuild commit`: the container's upper dir becomes a layer on top of its
//! parent (moved, not copied, then hashed once for its diff ID), the
//! container moves onto that layer with an empty upper — so a second
//! commit adds only what changed since — and an image is written from the
//! container's config plus the commit's `--change`s, message and author.

use std::fs;
use std::path::Path;

use crate::container::edit::apply_changes;
use crate::container::error::{ContainerError, Result};
use crate::container::mounts;
use crate::container::state::WorkingContainer;
use crate::digest::Digest;
use crate::image::{Image, ImageConfigBuilder, ManifestFormat, Timestamp};
use crate::layer::TarOptions;
use crate::store::{ChainId, ImageRecord, Lease, Store};

/// What `commit` was asked for.
#[derive(Debug, Default, Clone)]
pub struct CommitOptions {
    /// Dockerfile instructions (`--change`), applied to the image only.
    pub changes: Vec<String>,
    /// `-m`: the comment of this commit's history entry.
    pub message: Option<String>,
    pub author: Option<String>,
    /// One layer holding the whole rootfs.
    pub squash: bool,
    pub format: ManifestFormat,
    /// `--timestamp` (seconds since the epoch): created times and file mtimes.
    pub timestamp: Option<i64>,
    /// Names for the image, already normalised (`localhost/app:latest`).
    pub names: Vec<String>,
}

const DEFAULT_CREATED_BY: &str = "/bin/sh -c #(nop) rbuild commit";

fn entries(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(ContainerError::io("list", dir))? {
        out.push(e.map_err(ContainerError::io("list", dir))?.file_name());
    }
    out.sort();
    Ok(out)
}

fn move_entries(from: &Path, to: &Path, names: &[std::ffi::OsString]) -> Result<()> {
    for n in names {
        fs::rename(from.join(n), to.join(n))
            .map_err(ContainerError::io("move into the new layer", from.join(n)))?;
    }
    Ok(())
}

/// Moves the upper dir's content into a new layer on `parent`.
fn commit_upper(
    store: &Store,
    lease: &Lease,
    wc: &WorkingContainer,
    clamp: Option<i64>,
) -> Result<Option<(ChainId, Digest)>> {
    let upper = wc.container.upper();
    let names = entries(&upper)?;
    if names.is_empty() {
        return Ok(None);
    }
    let prepared = store.prepare_layer(wc.container.record.parent.as_ref())?;
    let target = prepared.upper();
    if let Err(e) = move_entries(&upper, &target, &names) {
        let back: Vec<_> = entries(&target).unwrap_or_default();
        let _ = move_entries(&target, &upper, &back);
        return Err(e);
    }
    let hashed = (|| {
        if let Some(t) = clamp {
            crate::build::step::clamp_mtimes(&target, t)?;
        }
        Ok::<_, ContainerError>(crate::layer::diff_id(
            &target,
            &TarOptions { mtime_clamp: clamp },
        )?)
    })();
    let (diff_id, size) = match hashed {
        Ok(v) => v,
        Err(e) => {
            // Nothing is lost: the changes go back where they were.
            let back: Vec<_> = entries(&target).unwrap_or_default();
            let _ = move_entries(&target, &upper, &back);
            return Err(e);
        }
    };
    let chain = store.commit_layer(prepared, diff_id, size)?;
    lease.protect_layer(&chain)?;
    Ok(Some((chain, diff_id)))
}

/// One layer with the whole merged rootfs of `layers`.
fn squash(
    store: &Store,
    lease: &Lease,
    runroot: &Path,
    layers: &[ChainId],
    clamp: Option<i64>,
) -> Result<Option<(ChainId, Digest)>> {
    if layers.is_empty() {
        return Ok(None);
    }
    let view = crate::build::step::View::mount(store, layers, &runroot.join("mounts"))?;
    let prepared = store.prepare_layer(None)?;
    let tree = crate::build::context::SourceTree::image(view.root().to_path_buf(), "the container");
    let rootfs = crate::layer::rootfs::Rootfs::new(prepared.upper());
    let opts = crate::build::copy::CopyOptions {
        preserve_ownership_from_source: true,
        ..Default::default()
    };
    crate::build::copy::copy_into(&rootfs, &tree, &["/".to_string()], "/", &opts)?;
    drop(view);
    if let Some(t) = clamp {
        crate::build::step::clamp_mtimes(&prepared.upper(), t)?;
    }
    let (diff_id, size) =
        crate::layer::diff_id(&prepared.upper(), &TarOptions { mtime_clamp: clamp })?;
    let chain = store.commit_layer(prepared, diff_id, size)?;
    lease.protect_layer(&chain)?;
    Ok(Some((chain, diff_id)))
}

fn set_last_comment(image: &mut Image, comment: Option<&str>, author: Option<&str>) {
    if let Some(h) = image.history.last_mut() {
        if let Some(c) = comment {
            h.comment = c.to_string();
        }
        if let Some(a) = author {
            h.author = a.to_string();
        }
    }
}

/// Commits the container and writes the image; `wc` is reloaded onto its
/// new top layer. A container that `rbuild mount` had mounted here is
/// mounted again at the same path afterwards.
pub fn commit(
    store: &Store,
    lease: &Lease,
    runroot: &Path,
    wc: &mut WorkingContainer,
    opts: &CommitOptions,
) -> Result<ImageRecord> {
    let created = match opts.timestamp {
        Some(t) => Timestamp::from(
            time::OffsetDateTime::from_unix_timestamp(t)
                .map_err(|e| ContainerError::Invalid(format!("--timestamp {t}: {e}")))?,
        ),
        None => Timestamp::now(),
    };
    let was_mounted = mounts::umount(runroot, wc)?;
    let result = commit_mounted_off(store, lease, runroot, wc, opts, created);
    if was_mounted {
        let name = wc.name().to_string();
        match WorkingContainer::open(store, &name) {
            Ok(fresh) => {
                *wc = fresh;
                if let Err(e) = mounts::mount(store, runroot, wc) {
                    log::warn!("container {name} committed but not mounted again: {e}");
                }
            }
            Err(e) => log::warn!("container {name}: {e}"),
        }
    }
    result
}

fn commit_mounted_off(
    store: &Store,
    lease: &Lease,
    runroot: &Path,
    wc: &mut WorkingContainer,
    opts: &CommitOptions,
    created: Timestamp,
) -> Result<ImageRecord> {
    let created_by = wc
        .state
        .created_by
        .clone()
        .unwrap_or_else(|| DEFAULT_CREATED_BY.to_string());
    let comment = opts.message.clone().or_else(|| wc.state.comment.clone());
    let added = commit_upper(store, lease, wc, opts.timestamp)?;
    let mut persisted = ImageConfigBuilder::from_base(wc.state.image.clone());
    let mut image_history_empty = false;
    if let Some((chain, diff_id)) = &added {
        persisted.add_layer(*diff_id, created, &created_by);
        let mut img = persisted.build();
        set_last_comment(&mut img, comment.as_deref(), opts.author.as_deref());
        wc.state.image = img;
        wc.state.created_by = None;
        wc.state.comment = None;
        wc.container.record.parent = Some(*chain);
        wc.save(store)?;
        let name = wc.name().to_string();
        *wc = WorkingContainer::open(store, &name)?;
    } else {
        image_history_empty = true;
    }

    let mut builder = ImageConfigBuilder::from_base(wc.state.image.clone());
    if image_history_empty {
        builder.add_empty_history(created, &created_by);
        let mut img = builder.build();
        set_last_comment(&mut img, comment.as_deref(), opts.author.as_deref());
        builder = ImageConfigBuilder::from_base(img);
    }
    apply_changes(&mut builder, &opts.changes)?;
    if let Some(a) = &opts.author {
        builder.set_author(a);
    }
    builder.set_created(created);
    if opts.timestamp.is_some() {
        builder.clamp_timestamps(created);
    }
    let mut layers = wc.layers(store)?;
    let mut image = builder.build();
    if opts.squash {
        let squashed = squash(store, lease, runroot, &layers, opts.timestamp)?;
        for h in &mut image.history {
            h.empty_layer = true;
        }
        image.rootfs.diff_ids.clear();
        layers.clear();
        if let Some((chain, diff_id)) = squashed {
            image.rootfs.diff_ids.push(diff_id);
            image.history.push(crate::image::History {
                created: Some(created),
                created_by: format!("{created_by} --squash"),
                author: opts.author.clone().unwrap_or_default(),
                comment: comment.clone().unwrap_or_default(),
                empty_layer: false,
            });
            layers.push(chain);
        }
    }
    if image.rootfs.kind.is_empty() {
        image.rootfs.kind = "layers".to_string();
    }
    let bytes = match opts.format {
        ManifestFormat::Oci => image.to_oci_json(),
        ManifestFormat::Docker => image.to_docker_json(),
    };
    let record = crate::build::write_image(
        store,
        lease,
        &bytes,
        &layers,
        opts.format,
        &wc.state.annotations,
        opts.names.clone(),
    )?;
    Ok(record)
}
