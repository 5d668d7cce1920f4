//! The content digest of COPY/ADD sources, for the build cache key.
//!
//! The digest covers what a copy would read — each match's path, type,
//! mode, owners (when they are kept), size, symlink target and bytes — and
//! not mtimes, as BuildKit's content checksums do, so a fresh checkout of
//! the same tree hits the cache. Hashing a large context on every build is
//! the slow part, so a [`StatCache`] remembers each file's digest by
//! (path, size, mtime, inode, ctime) in a file the caller owns: an
//! unchanged file is never re-read.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, DigestWriter, Hasher};

use super::context::{SourceTree, TreeKind};
use super::copy::{exclude_matcher, expand_source, CopyError, CopyOptions};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StatEntry {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    digest: Digest,
}

impl StatEntry {
    fn key_matches(&self, meta: &fs::Metadata) -> bool {
        self.size == meta.size()
            && self.mtime_ns == ns(meta.mtime(), meta.mtime_nsec())
            && self.ctime_ns == ns(meta.ctime(), meta.ctime_nsec())
            && self.ino == meta.ino()
    }
}

fn ns(secs: i64, nanos: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// File digests by host path, valid while size, mtime, ctime and inode match.
#[derive(Debug, Default)]
pub struct StatCache {
    path: Option<PathBuf>,
    entries: HashMap<PathBuf, StatEntry>,
    /// Files hashed (read) since load: lets tests and progress output see
    /// what the cache saved.
    hashed: u64,
    /// Paths looked up since load; others are checked for existence on save.
    seen: HashSet<PathBuf>,
    dirty: bool,
}

/// Why the stat cache could not be saved.
#[derive(Debug, thiserror::Error)]
#[error("saving the COPY stat cache {path:?}: {source}")]
pub struct StatCacheError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl StatCache {
    /// A cache kept only in memory.
    pub fn in_memory() -> StatCache {
        StatCache::default()
    }

    /// Loads the cache persisted at `path`. A missing file is an empty
    /// cache; an unreadable or corrupt one too (with a warning), since the
    /// cache only saves work.
    pub fn load(path: PathBuf) -> StatCache {
        let entries = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Vec<(PathBuf, StatEntry)>>(&bytes) {
                Ok(list) => list.into_iter().collect(),
                Err(e) => {
                    log::warn!("ignoring corrupt stat cache {path:?}: {e}");
                    HashMap::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                log::warn!("ignoring unreadable stat cache {path:?}: {e}");
                HashMap::new()
            }
        };
        StatCache {
            path: Some(path),
            entries,
            hashed: 0,
            seen: HashSet::new(),
            dirty: false,
        }
    }

    /// Writes the cache back (atomically: temp file, then rename) if it changed.
    pub fn save(&mut self) -> Result<(), StatCacheError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        // Forget files that are gone, so the cache does not grow forever
        // across contexts; files of other contexts that still exist stay.
        let before = self.entries.len();
        let seen = &self.seen;
        self.entries
            .retain(|p, _| seen.contains(p) || fs::symlink_metadata(p).is_ok());
        if !self.dirty && self.entries.len() == before {
            return Ok(());
        }
        let err = |source| StatCacheError {
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut list: Vec<(&PathBuf, &StatEntry)> = self.entries.iter().collect();
        list.sort_by(|a, b| a.0.cmp(b.0));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        serde_json::to_writer(io::BufWriter::new(tmp.as_file_mut()), &list)
            .map_err(|e| err(io::Error::other(e)))?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        self.dirty = false;
        Ok(())
    }

    /// How many files were read to hash them since this cache was loaded.
    pub fn files_hashed(&self) -> u64 {
        self.hashed
    }

    /// The sha256 of the file at `host` (whose `lstat` is `meta`), from the
    /// cache when its stat key still matches.
    pub fn file_digest(&mut self, host: &Path, meta: &fs::Metadata) -> io::Result<Digest> {
        if !self.seen.contains(host) {
            self.seen.insert(host.to_path_buf());
        }
        if let Some(e) = self.entries.get(host) {
            if e.key_matches(meta) {
                return Ok(e.digest);
            }
        }
        let mut f = File::open(host)?;
        let mut w = DigestWriter::new(io::sink());
        io::copy(&mut f, &mut w)?;
        let (_, digest, _) = w.finish();
        self.hashed += 1;
        self.entries.insert(
            host.to_path_buf(),
            StatEntry {
                size: meta.size(),
                mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
                ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
                ino: meta.ino(),
                digest,
            },
        );
        self.dirty = true;
        Ok(digest)
    }
}

/// The digest of everything `sources` (as written in COPY/ADD) would copy
/// from `tree` under `opts` (`--exclude`, `--parents`, `--chmod`,
/// `--chown` and ownership preservation change it; `dest` does not).
pub fn sources_digest(
    tree: &SourceTree,
    sources: &[String],
    opts: &CopyOptions,
    cache: &mut StatCache,
) -> Result<Digest, CopyError> {
    let exclude = exclude_matcher(opts)?;
    let keep_owners = opts.preserve_ownership_from_source || tree.kind() == TreeKind::Image;
    let mut h = Hasher::new();
    let field = |h: &mut Hasher, s: &[u8]| {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s);
    };
    field(
        &mut h,
        format!(
            "{:?}",
            (
                opts.chown,
                opts.chmod,
                opts.parents,
                &opts.exclude,
                keep_owners
            )
        )
        .as_bytes(),
    );
    for s in sources {
        field(&mut h, b"source");
        field(&mut h, s.as_bytes());
        for m in expand_source(tree, s, &exclude)?.matches {
            field(&mut h, b"match");
            field(&mut h, m.logical.as_os_str().as_encoded_bytes());
            let mut entries = vec![(PathBuf::new(), m.host.clone(), m.meta.clone())];
            if m.meta.is_dir() {
                for e in tree.walk(&m, &exclude)? {
                    entries.push((e.rel, e.host, e.meta));
                }
            }
            for (rel, host, meta) in entries {
                let mut line = Vec::new();
                let kind = meta.file_type();
                let owners = if keep_owners {
                    (meta.uid(), meta.gid())
                } else {
                    (0, 0)
                };
                // Directory sizes depend on the filesystem, not the content.
                let size = if kind.is_file() { meta.size() } else { 0 };
                write!(
                    line,
                    "{}\0{:o}\0{}:{}\0{}\0",
                    rel.display(),
                    meta.mode(),
                    owners.0,
                    owners.1,
                    size
                )
                .map_err(|source| io_err(&host, source))?;
                if kind.is_symlink() {
                    let target = fs::read_link(&host).map_err(|source| io_err(&host, source))?;
                    line.extend_from_slice(target.as_os_str().as_encoded_bytes());
                } else if kind.is_file() {
                    let d = cache
                        .file_digest(&host, &meta)
                        .map_err(|source| io_err(&host, source))?;
                    line.extend_from_slice(d.to_string().as_bytes());
                }
                field(&mut h, &line);
            }
        }
    }
    Ok(h.finish())
}

fn io_err(path: &Path, source: io::Error) -> CopyError {
    CopyError::Io {
        op: "hashing",
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::ignore::IgnoreMatcher;
    use std::os::unix::fs::PermissionsExt;

    fn digest(tree: &SourceTree, cache: &mut StatCache) -> Digest {
        sources_digest(tree, &[".".to_string()], &CopyOptions::default(), cache).unwrap()
    }

    #[test]
    fn changes_with_content_mode_and_names_not_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        fs::create_dir(ctx.join("d")).unwrap();
        fs::write(ctx.join("d/f"), b"one").unwrap();
        let tree = SourceTree::context(ctx.to_path_buf(), IgnoreMatcher::default());
        let mut cache = StatCache::in_memory();
        let a = digest(&tree, &mut cache);
        assert_eq!(a, digest(&tree, &mut cache));
        assert_eq!(cache.files_hashed(), 1);

        let ts = nix::sys::time::TimeSpec::new(12345, 0);
        nix::sys::stat::utimensat(
            None,
            &ctx.join("d/f"),
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        assert_eq!(
            digest(&tree, &mut cache),
            a,
            "mtime alone must not change the key"
        );

        fs::write(ctx.join("d/f"), b"two").unwrap();
        let b = digest(&tree, &mut cache);
        assert_ne!(a, b);
        fs::set_permissions(ctx.join("d/f"), fs::Permissions::from_mode(0o600)).unwrap();
        let c = digest(&tree, &mut cache);
        assert_ne!(b, c);
        fs::rename(ctx.join("d/f"), ctx.join("d/g")).unwrap();
        assert_ne!(c, digest(&tree, &mut cache));
        // Ignored files do not count.
        let ig = IgnoreMatcher::parse("d/h\n", ".dockerignore").unwrap();
        let tree = SourceTree::context(ctx.to_path_buf(), ig);
        let before = digest(&tree, &mut cache);
        fs::write(ctx.join("d/h"), b"noise").unwrap();
        assert_eq!(before, digest(&tree, &mut cache));
    }

    #[test]
    fn persisted_cache_avoids_rereading() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir(&ctx).unwrap();
        for i in 0..5 {
            fs::write(ctx.join(format!("f{i}")), format!("{i}")).unwrap();
        }
        let tree = SourceTree::context(ctx.clone(), IgnoreMatcher::default());
        let cache_file = dir.path().join("statcache.json");
        let mut cache = StatCache::load(cache_file.clone());
        let a = digest(&tree, &mut cache);
        assert_eq!(cache.files_hashed(), 5);
        cache.save().unwrap();

        let mut cache = StatCache::load(cache_file.clone());
        assert_eq!(digest(&tree, &mut cache), a);
        assert_eq!(cache.files_hashed(), 0);
        fs::write(ctx.join("f3"), b"changed").unwrap();
        assert_ne!(digest(&tree, &mut cache), a);
        assert_eq!(cache.files_hashed(), 1);

        // A deleted file leaves the persisted cache on the next save.
        cache.save().unwrap();
        fs::remove_file(ctx.join("f4")).unwrap();
        let mut cache = StatCache::load(cache_file.clone());
        cache.save().unwrap();
        let saved = fs::read_to_string(&cache_file).unwrap();
        assert!(!saved.contains("/f4\""), "{saved}");
        assert!(saved.contains("/f3\""), "{saved}");

        fs::write(&cache_file, b"{not json").unwrap();
        let mut cache = StatCache::load(cache_file);
        digest(&tree, &mut cache);
        assert_eq!(cache.files_hashed(), 4);
    }
}
