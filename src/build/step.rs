//! A step that changes the filesystem (RUN, COPY, ADD, WORKDIR): prepare a
//! layer on the stage's top, mount it as an overlay, let the step write
//! through the merged view, unmount, and commit the upper dir — which is
//! the diff — under its chain ID. An empty diff makes no layer.

use std::fs;
use std::path::{Path, PathBuf};

use crate::build::error::StepError;
use crate::build::stage::StageState;
use crate::digest::Digest;
use crate::image::Timestamp;
use crate::layer::TarOptions;
use crate::sandbox::{mount_overlay, OverlayMode};
use crate::store::{CacheEntry, ChainId, Lease, Store};

/// What every layer step needs from the build.
pub struct LayerContext<'a> {
    pub store: &'a Store,
    pub lease: &'a Lease,
    /// Where merged views are mounted (under the run root).
    pub mounts_dir: &'a Path,
    pub created: Timestamp,
    pub mtime_clamp: Option<i64>,
    pub use_cache: bool,
}

/// How the step ended up.
pub enum StepResult {
    /// Reused from the build cache: the layer (or none) and its ID for output.
    Cached(String),
    Built,
}

impl LayerContext<'_> {
    /// Runs `write` against a merged view of the stage, then records the
    /// layer and its history. `key` is the step's cache key.
    pub fn run_step(
        &self,
        stage: &mut StageState,
        key: Digest,
        created_by: &str,
        write: impl FnOnce(&Path) -> Result<(), StepError>,
    ) -> Result<StepResult, StepError> {
        // A layer written under one mtime clamp (`--timestamp`,
        // SOURCE_DATE_EPOCH) holds other bytes than the same step without
        // it or under another clamp: never reuse one for the other.
        let key = match self.mtime_clamp {
            Some(clamp) => Digest::of(format!("{key} mtime-clamp={clamp}").as_bytes()),
            None => key,
        };
        if self.use_cache {
            if let Some(hit) = self.cache_hit(stage, &key, created_by)? {
                return Ok(StepResult::Cached(hit));
            }
        }
        let prepared = self.store.prepare_layer(stage.top())?;
        let merged = self.new_mount_point()?;
        let written = {
            let guard = mount_overlay(
                prepared.lowers(),
                &prepared.upper(),
                &prepared.work(),
                &merged,
                OverlayMode::Auto,
            )?;
            let written = write(&merged);
            let unmounted = guard.unmount();
            written.and(unmounted.map_err(StepError::from))
        };
        let _ = fs::remove_dir(&merged);
        written?;

        let layer = if dir_is_empty(&prepared.upper())? {
            None
        } else {
            if let Some(clamp) = self.mtime_clamp {
                // Clamp on disk, so every later export of the layer makes
                // the same tar stream without knowing the clamp.
                clamp_mtimes(&prepared.upper(), clamp)?;
            }
            let opts = TarOptions {
                mtime_clamp: self.mtime_clamp,
            };
            let (diff_id, size) = crate::layer::diff_id(&prepared.upper(), &opts)?;
            let chain = self.store.commit_layer(prepared, diff_id, size)?;
            self.lease.protect_layer(&chain)?;
            Some((chain, diff_id))
        };
        self.record(stage, layer, created_by);
        if self.use_cache {
            let entry = CacheEntry {
                layer: stage.top().copied().filter(|_| layer.is_some()),
                blob: None,
                data: serde_json::json!({ "created_by": created_by }),
            };
            self.store.cache_put(&key, &entry)?;
        }
        Ok(StepResult::Built)
    }

    fn cache_hit(
        &self,
        stage: &mut StageState,
        key: &Digest,
        created_by: &str,
    ) -> Result<Option<String>, StepError> {
        let Some(entry) = self.store.cache_get(key)? else {
            return Ok(None);
        };
        match entry.layer {
            Some(chain) => {
                let meta = self.store.layer_meta(&chain)?;
                // The cached layer must sit on this stage's top.
                if meta.parent.as_ref() != stage.top() {
                    return Ok(None);
                }
                self.lease.protect_layer(&chain)?;
                self.record(stage, Some((chain, meta.diff_id)), created_by);
                Ok(Some(chain.digest().hex()))
            }
            None => {
                self.record(stage, None, created_by);
                Ok(Some(key.hex()))
            }
        }
    }

    fn record(&self, stage: &mut StageState, layer: Option<(ChainId, Digest)>, created_by: &str) {
        match layer {
            Some((chain, diff_id)) => {
                stage.layers.push(chain);
                stage.config.add_layer(diff_id, self.created, created_by);
            }
            None => stage.config.add_empty_history(self.created, created_by),
        }
    }

    fn new_mount_point(&self) -> Result<PathBuf, StepError> {
        fs::create_dir_all(self.mounts_dir)?;
        let dir = tempfile::Builder::new()
            .prefix("merged-")
            .tempdir_in(self.mounts_dir)?;
        Ok(dir.keep())
    }
}

/// Sets every mtime later than `clamp` to `clamp` (`SOURCE_DATE_EPOCH`).
pub(crate) fn clamp_mtimes(dir: &Path, clamp: i64) -> Result<(), StepError> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    use std::os::unix::fs::MetadataExt;
    for entry in walkdir::WalkDir::new(dir).contents_first(true) {
        let entry = entry.map_err(|e| StepError::Io(e.into()))?;
        let meta = entry.metadata().map_err(|e| StepError::Io(e.into()))?;
        if meta.mtime() > clamp {
            let atime = TimeSpec::new(meta.atime().min(clamp), 0);
            let mtime = TimeSpec::new(clamp, 0);
            utimensat(
                None,
                entry.path(),
                &atime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| StepError::Io(e.into()))?;
        }
    }
    Ok(())
}

fn dir_is_empty(dir: &Path) -> Result<bool, StepError> {
    Ok(fs::read_dir(dir)?.next().is_none())
}

/// A read-only view of an image's or stage's rootfs (`COPY --from`,
/// `RUN --mount=from=`): an overlay of its layers with a throwaway upper.
pub struct View {
    root: PathBuf,
    guard: Option<crate::sandbox::MountGuard>,
    _scratch: tempfile::TempDir,
}

impl View {
    pub fn mount(store: &Store, layers: &[ChainId], mounts_dir: &Path) -> Result<View, StepError> {
        fs::create_dir_all(mounts_dir)?;
        let scratch = tempfile::Builder::new()
            .prefix("view-")
            .tempdir_in(mounts_dir)?;
        let root = scratch.path().join("merged");
        fs::create_dir(&root)?;
        let guard = if layers.is_empty() {
            None
        } else {
            let upper = scratch.path().join("upper");
            let work = scratch.path().join("work");
            fs::create_dir(&upper)?;
            fs::create_dir(&work)?;
            let lowers: Vec<PathBuf> = layers
                .iter()
                .rev()
                .map(|c| store.layer_diff_path(c))
                .collect();
            Some(mount_overlay(
                &lowers,
                &upper,
                &work,
                &root,
                OverlayMode::Auto,
            )?)
        };
        Ok(View {
            root,
            guard,
            _scratch: scratch,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            if let Err(e) = guard.unmount() {
                log::warn!("unmounting {}: {e}", self.root.display());
            }
        }
    }
}
