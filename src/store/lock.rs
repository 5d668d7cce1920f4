//! Cross-process coordination: the store lock and leases.
//!
//! [`LockGuard`] is an exclusive `flock(2)` on `<root>/lock`, held around
//! every index read-modify-write (names, image records, cache, layer meta)
//! and for the whole of gc. It is per open file, so threads of one process
//! exclude each other too, and the kernel drops it when a process dies.
//!
//! A [`Lease`] is how a running build keeps gc away from what it uses:
//! a JSON file `leases/<pid>-<n>.json` naming blobs, layers and images,
//! removed on drop. gc also keeps every blob and layer *written or renewed
//! since the oldest live lease began* (committing an existing blob or layer
//! renews its mtime), so a build's fresh objects are safe between their
//! commit and the image record that references them without naming each one.
//! Leases of dead pids are ignored and removed.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::error::{Result, StoreError};
use crate::store::fsutil::{self, write_atomic_volatile, write_json};
use crate::store::layer::ChainId;
use crate::store::Store;

/// The exclusive store lock; released on drop.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

impl Store {
    /// Takes the exclusive store lock, waiting for other holders.
    ///
    /// Not re-entrant: a thread holding it must not call a store method
    /// that takes it again (those are the index writers and gc).
    pub fn lock(&self) -> Result<LockGuard> {
        let path = self.lock_path();
        let file = fsutil::open_or_create(&path)?;
        loop {
            // SAFETY: flock on a valid fd we own; no memory is passed.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(LockGuard { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(StoreError::io("lock", path)(err));
            }
        }
    }

    /// Starts a lease for this process.
    pub fn lease(&self) -> Result<Lease> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id() as i32;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = now_nanos();
        let path = self.leases_dir().join(format!("{pid}-{nanos}-{n}.json"));
        let record = LeaseRecord {
            pid,
            started_unix_nanos: nanos,
            blobs: BTreeSet::new(),
            layers: BTreeSet::new(),
            images: BTreeSet::new(),
        };
        write_json(&self.tmp_dir(), &path, &record)?;
        Ok(Lease {
            inner: Arc::new(LeaseInner {
                tmp_dir: self.tmp_dir(),
                path,
                record: Mutex::new(record),
            }),
        })
    }

    /// The leases of live processes (leases of dead ones are removed).
    pub(crate) fn live_leases(&self) -> Result<Vec<LeaseRecord>> {
        let dir = self.leases_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let entry = entry.map_err(StoreError::io("list", &dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let rec = match fsutil::read_json::<LeaseRecord>(&path) {
                Ok(Some(rec)) => rec,
                Ok(None) => continue,
                Err(e) => {
                    // Leases are written atomically, so this is damage, not a
                    // crash; a dead owner's is dropped, a live one's reported.
                    if fsutil::owner_pid(&name).is_some_and(fsutil::pid_alive) {
                        log::warn!("ignoring unreadable lease: {e}");
                    } else {
                        let _ = fs::remove_file(&path);
                    }
                    continue;
                }
            };
            let started = UNIX_EPOCH + Duration::from_nanos(rec.started_unix_nanos);
            if fsutil::owner_alive(&name, started) {
                out.push(rec);
            } else {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(out)
    }
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The on-disk form of a lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LeaseRecord {
    pub pid: i32,
    pub started_unix_nanos: u64,
    pub blobs: BTreeSet<Digest>,
    pub layers: BTreeSet<ChainId>,
    pub images: BTreeSet<Digest>,
}

/// Protection from gc and prune for a running build; cheap to clone, the
/// file is removed when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Lease {
    inner: Arc<LeaseInner>,
}

#[derive(Debug)]
struct LeaseInner {
    tmp_dir: PathBuf,
    path: PathBuf,
    record: Mutex<LeaseRecord>,
}

impl Lease {
    /// Protects a blob (it need not exist yet).
    pub fn protect_blob(&self, digest: &Digest) -> Result<()> {
        self.update(|r| r.blobs.insert(*digest))
    }

    /// Protects a layer and, through it, its parents (it need not exist yet).
    pub fn protect_layer(&self, chain: &ChainId) -> Result<()> {
        self.update(|r| r.layers.insert(*chain))
    }

    /// Protects an image from prune (`rmi` of it by name still works).
    pub fn protect_image(&self, id: &Digest) -> Result<()> {
        self.update(|r| r.images.insert(*id))
    }

    /// The lease file (for diagnostics).
    pub fn path(&self) -> &std::path::Path {
        &self.inner.path
    }

    fn update(&self, change: impl FnOnce(&mut LeaseRecord) -> bool) -> Result<()> {
        let mut record = self
            .inner
            .record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if change(&mut record) {
            // A lease only means something while its process lives, so it
            // needs no fsync: a crash makes it stale anyway.
            let bytes = serde_json::to_vec(&*record).map_err(|e| StoreError::Corrupt {
                path: self.inner.path.clone(),
                reason: format!("cannot serialise: {e}"),
            })?;
            write_atomic_volatile(&self.inner.tmp_dir, &self.inner.path, &bytes)?;
        }
        Ok(())
    }
}

impl Drop for LeaseInner {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_file_lives_as_long_as_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let lease = s.lease().unwrap();
        let path = lease.path().to_path_buf();
        let d = Digest::of(b"x");
        lease.protect_blob(&d).unwrap();
        let live = s.live_leases().unwrap();
        assert_eq!(live.len(), 1);
        assert!(live[0].blobs.contains(&d));
        let clone = lease.clone();
        drop(lease);
        assert!(path.exists());
        drop(clone);
        assert!(!path.exists());
    }

    #[test]
    fn dead_pid_leases_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let stale = s.leases_dir().join(format!("{pid}-1-0.json"));
        fs::write(
            &stale,
            br#"{"pid":1,"started_unix_nanos":0,"blobs":[],"layers":[],"images":[]}"#,
        )
        .unwrap();
        assert!(s.live_leases().unwrap().is_empty());
        assert!(!stale.exists());
    }

    #[test]
    fn lock_excludes_other_threads() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let counter = Arc::new(Mutex::new((0u32, 0u32))); // (inside, max inside)
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (s, counter) = (s.clone(), counter.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _g = s.lock().unwrap();
                        {
                            let mut c = counter.lock().unwrap();
                            c.0 += 1;
                            c.1 = c.1.max(c.0);
                        }
                        std::thread::yield_now();
                        counter.lock().unwrap().0 -= 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.lock().unwrap().1, 1);
    }
}
