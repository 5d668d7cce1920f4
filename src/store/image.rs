//! Image records and names: `images/<id-hex>.json` per image and
//! `images/names.json` (name → image ID).
//!
//! The names index is the only place names are stored; a record file holds
//! everything else. Each update rewrites one file atomically under the store
//! lock, in an order where a crash between two writes leaves at worst an
//! image without names (dangling, which `prune` removes), never a name that
//! points nowhere or two images claiming one name. Name normalisation
//! (`busybox` → `localhost/busybox:latest`) is the `reference` module's job;
//! here names are opaque strings compared exactly.

use std::collections::BTreeMap;
use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::error::{Result, StoreError};
use crate::store::fsutil::{read_json, write_json};
use crate::store::layer::ChainId;
use crate::store::Store;

/// One image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image ID: the digest of its config blob (as docker and podman define it).
    pub id: Digest,
    /// Names pointing at this image; filled from the names index on read.
    #[serde(default)]
    pub names: Vec<String>,
    /// A local manifest blob whose layer digests are the diff IDs; its digest
    /// is what `images --format {{.Digest}}` shows.
    pub manifest: Digest,
    /// An index blob this image belongs to. Multi-platform images are
    /// manifest lists (`manifest_list.rs`), which name their instances;
    /// this field is kept for records that carry one, and gc keeps the blob.
    #[serde(default)]
    pub index: Option<Digest>,
    pub top_layer: Option<ChainId>,
    /// The layers, bottom to top.
    pub layers: Vec<ChainId>,
    /// RFC 3339 creation time.
    pub created: String,
    /// Sum of the layers' uncompressed sizes, as `images` shows it.
    pub size: u64,
}

type NameIndex = BTreeMap<String, Digest>;

pub(super) fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 4096
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(StoreError::InvalidName(name.to_string()));
    }
    Ok(())
}

impl Store {
    fn load_names(&self) -> Result<NameIndex> {
        Ok(read_json(&self.names_path())?.unwrap_or_default())
    }

    fn save_names(&self, names: &NameIndex) -> Result<()> {
        write_json(&self.tmp_dir(), &self.names_path(), names)
    }

    fn load_record(&self, id: &Digest, names: &NameIndex) -> Result<Option<ImageRecord>> {
        let Some(mut rec) = read_json::<ImageRecord>(&self.image_path(id))? else {
            return Ok(None);
        };
        if rec.id != *id {
            return Err(StoreError::Corrupt {
                path: self.image_path(id),
                reason: format!(
                    "record holds image ID {}, not the one in its file name",
                    rec.id
                ),
            });
        }
        rec.names = names
            .iter()
            .filter(|(_, d)| *d == id)
            .map(|(n, _)| n.clone())
            .collect();
        Ok(Some(rec))
    }

    /// Checks that everything the record refers to is in the store.
    fn check_references(&self, rec: &ImageRecord) -> Result<()> {
        let missing = |what, digest| StoreError::MissingReference {
            image: rec.id,
            what,
            digest,
        };
        for (what, blob) in [
            ("config blob", Some(rec.id)),
            ("manifest blob", Some(rec.manifest)),
            ("index blob", rec.index),
        ] {
            if let Some(b) = blob {
                if !self.has_blob(&b) {
                    return Err(missing(what, b));
                }
            }
        }
        for layer in rec.layers.iter().chain(rec.top_layer.iter()) {
            if !self.has_layer(layer) {
                return Err(missing("layer", *layer.digest()));
            }
        }
        Ok(())
    }

    /// Adds or replaces an image record and points each of its names at it,
    /// taking them from any other image (as tagging does). Names the image
    /// already had are kept; use [`Store::untag`] to drop one.
    pub fn put_image(&self, record: &ImageRecord) -> Result<()> {
        for n in &record.names {
            check_name(n)?;
        }
        // Checked under the lock so gc cannot remove a part in between.
        let _guard = self.lock()?;
        self.check_references(record)?;
        let mut stored = record.clone();
        stored.names.clear();
        write_json(&self.tmp_dir(), &self.image_path(&record.id), &stored)?;
        if !record.names.is_empty() {
            // A name moves, as in containers/storage: a list holding it
            // gives it up under the same lock, so no reader sees it twice.
            self.drop_list_names_locked(&record.names)?;
            let mut names = self.load_names()?;
            for n in &record.names {
                names.insert(n.clone(), record.id);
            }
            self.save_names(&names)?;
        }
        Ok(())
    }

    /// The image with this ID.
    pub fn image(&self, id: &Digest) -> Result<ImageRecord> {
        let names = self.load_names()?;
        self.load_record(id, &names)?
            .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))
    }

    fn image_ids(&self) -> Result<Vec<Digest>> {
        let dir = self.images_dir();
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let entry = entry.map_err(StoreError::io("list", &dir))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Ok(d) = Digest::from_hex(hex) {
                ids.push(d);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let names = self.load_names()?;
        let mut out = Vec::new();
        for id in self.image_ids()? {
            // Removed between listing and reading: not an error.
            if let Some(rec) = self.load_record(&id, &names)? {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Finds an image by full ID (with or without `sha256:`), exact stored
    /// name, or unique ID prefix of at least 3 hex characters, in that order.
    pub fn resolve_image(&self, name_or_id: &str) -> Result<ImageRecord> {
        self.resolve_image_with(name_or_id, &[])
    }

    /// As [`resolve_image`](Self::resolve_image), then tries each of
    /// `candidates` (normalised forms of the name, from `reference`) as an
    /// exact name before giving up.
    pub fn resolve_image_with(
        &self,
        name_or_id: &str,
        candidates: &[String],
    ) -> Result<ImageRecord> {
        let names = self.load_names()?;
        let bare = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        if let Ok(id) = Digest::from_hex(bare) {
            if let Some(rec) = self.load_record(&id, &names)? {
                return Ok(rec);
            }
        }
        if let Some(id) = names.get(name_or_id) {
            if let Some(rec) = self.load_record(id, &names)? {
                return Ok(rec);
            }
        }
        let is_hex = bare
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if bare.len() >= 3 && is_hex {
            let matches: Vec<Digest> = self
                .image_ids()?
                .into_iter()
                .filter(|d| d.hex().starts_with(bare))
                .collect();
            match matches.as_slice() {
                [] => {}
                [one] => {
                    if let Some(rec) = self.load_record(one, &names)? {
                        return Ok(rec);
                    }
                }
                _ => {
                    return Err(StoreError::AmbiguousId {
                        prefix: name_or_id.to_string(),
                        matches,
                    })
                }
            }
        }
        for candidate in candidates {
            if let Some(id) = names.get(candidate) {
                if let Some(rec) = self.load_record(id, &names)? {
                    return Ok(rec);
                }
            }
        }
        Err(StoreError::ImageNotFound(name_or_id.to_string()))
    }

    /// Images whose local manifest has this digest (`name@sha256:…`
    /// references and `images --digests` name images this way).
    pub fn images_by_manifest(&self, manifest: &Digest) -> Result<Vec<ImageRecord>> {
        Ok(self
            .images()?
            .into_iter()
            .filter(|r| r.manifest == *manifest)
            .collect())
    }

    /// Points `name` at image `id`, moving it from any other image or
    /// manifest list.
    pub fn tag(&self, id: &Digest, name: &str) -> Result<()> {
        check_name(name)?;
        let _guard = self.lock()?;
        if !self.image_path(id).is_file() {
            return Err(StoreError::ImageNotFound(id.to_string()));
        }
        self.drop_list_names_locked(&[name.to_string()])?;
        let mut names = self.load_names()?;
        if names.get(name) != Some(id) {
            names.insert(name.to_string(), *id);
            self.save_names(&names)?;
        }
        Ok(())
    }

    /// Removes a name; returns the image it pointed at (which stays).
    pub fn untag(&self, name: &str) -> Result<Digest> {
        let _guard = self.lock()?;
        self.untag_locked(name)?
            .ok_or_else(|| StoreError::NameNotFound(name.to_string()))
    }

    /// Removes a name if an image holds it (callers hold the lock).
    pub(crate) fn untag_locked(&self, name: &str) -> Result<Option<Digest>> {
        let mut names = self.load_names()?;
        let id = names.remove(name);
        if id.is_some() {
            self.save_names(&names)?;
        }
        Ok(id)
    }

    /// Removes an image record and its names. Blobs and layers stay until gc.
    pub fn remove_image(&self, id: &Digest) -> Result<ImageRecord> {
        let _guard = self.lock()?;
        self.remove_image_locked(id)
    }

    pub(crate) fn remove_image_locked(&self, id: &Digest) -> Result<ImageRecord> {
        let lists = self.lists_holding_locked(id)?;
        if !lists.is_empty() {
            return Err(StoreError::ImageInList { image: *id, lists });
        }
        let mut names = self.load_names()?;
        let rec = self
            .load_record(id, &names)?
            .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))?;
        if !rec.names.is_empty() {
            names.retain(|_, d| d != id);
            self.save_names(&names)?;
        }
        let path = self.image_path(id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::io("remove image record", path)(e))
            }
            _ => Ok(rec),
        }
    }

    /// The names index as stored (for fsck).
    pub(crate) fn name_index(&self) -> Result<BTreeMap<String, Digest>> {
        self.load_names()
    }

    pub(crate) fn stored_image_ids(&self) -> Result<Vec<Digest>> {
        self.image_ids()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(s: &Store, config: &[u8], names: &[&str]) -> ImageRecord {
        let id = s.put_blob(config).unwrap();
        let manifest = s.put_blob(format!("manifest of {id}").as_bytes()).unwrap();
        let layer = s
            .import_layer(None, |_d| Ok::<_, io::Error>((Digest::of(config), 1)))
            .unwrap();
        ImageRecord {
            id,
            names: names.iter().map(|n| n.to_string()).collect(),
            manifest,
            index: None,
            top_layer: Some(layer),
            layers: vec![layer],
            created: crate::store::now_rfc3339(),
            size: 1,
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn put_and_get_round_trip() {
        let (_t, s) = store();
        let rec = sample(&s, b"cfg-a", &["localhost/a:latest"]);
        s.put_image(&rec).unwrap();
        assert_eq!(s.image(&rec.id).unwrap(), rec);
        assert_eq!(s.images().unwrap(), vec![rec.clone()]);
        assert_eq!(s.resolve_image("localhost/a:latest").unwrap().id, rec.id);
        assert_eq!(s.resolve_image(&rec.id.to_string()).unwrap().id, rec.id);
        assert_eq!(s.resolve_image(&rec.id.hex()).unwrap().id, rec.id);
        assert_eq!(s.resolve_image(&rec.id.hex()[..3]).unwrap().id, rec.id);
        assert!(s
            .resolve_image(&rec.id.hex()[..2])
            .unwrap_err()
            .is_not_found());
        assert!(s.resolve_image("a").unwrap_err().is_not_found());
        assert_eq!(
            s.resolve_image_with("a", &["localhost/a:latest".into()])
                .unwrap()
                .id,
            rec.id
        );
        assert_eq!(
            s.images_by_manifest(&rec.manifest).unwrap(),
            vec![rec.clone()]
        );
        assert!(s.images_by_manifest(&rec.id).unwrap().is_empty());
    }

    #[test]
    fn names_move_between_images() {
        let (_t, s) = store();
        let a = sample(&s, b"cfg-a", &["app", "a"]);
        let b = sample(&s, b"cfg-b", &["app"]);
        s.put_image(&a).unwrap();
        s.put_image(&b).unwrap();
        assert_eq!(s.image(&a.id).unwrap().names, vec!["a".to_string()]);
        assert_eq!(s.image(&b.id).unwrap().names, vec!["app".to_string()]);
        s.tag(&a.id, "app").unwrap();
        assert!(s.image(&b.id).unwrap().names.is_empty());
        assert_eq!(s.untag("a").unwrap(), a.id);
        assert!(s.untag("a").unwrap_err().is_not_found());
        assert_eq!(s.image(&a.id).unwrap().names, vec!["app".to_string()]);
        assert!(matches!(
            s.tag(&a.id, "bad name"),
            Err(StoreError::InvalidName(_))
        ));
    }

    #[test]
    fn ambiguous_prefix_is_an_error() {
        let (_t, s) = store();
        // Find two configs whose IDs share a 3-character prefix.
        let mut seen = BTreeMap::new();
        let (x, y) = (0u32..)
            .find_map(|i| {
                let cfg = format!("cfg-{i}");
                let p = Digest::of(cfg.as_bytes()).hex()[..3].to_string();
                seen.insert(p.clone(), cfg.clone()).map(|prev| (prev, cfg))
            })
            .unwrap();
        let (a, b) = (sample(&s, x.as_bytes(), &[]), sample(&s, y.as_bytes(), &[]));
        s.put_image(&a).unwrap();
        s.put_image(&b).unwrap();
        let err = s.resolve_image(&a.id.hex()[..3]).unwrap_err();
        assert!(matches!(err, StoreError::AmbiguousId { .. }), "{err}");
        assert_eq!(s.resolve_image(&a.id.hex()[..12]).unwrap().id, a.id);
    }

    #[test]
    fn missing_references_are_refused() {
        let (_t, s) = store();
        let mut rec = sample(&s, b"cfg", &["x"]);
        rec.manifest = Digest::of(b"not stored");
        let err = s.put_image(&rec).unwrap_err();
        assert!(err.to_string().contains("manifest blob"), "{err}");
        assert!(s.images().unwrap().is_empty());
    }

    #[test]
    fn remove_image_drops_names_and_record() {
        let (_t, s) = store();
        let rec = sample(&s, b"cfg", &["x", "y"]);
        s.put_image(&rec).unwrap();
        assert_eq!(s.remove_image(&rec.id).unwrap().names.len(), 2);
        assert!(s.resolve_image("x").unwrap_err().is_not_found());
        assert!(s.images().unwrap().is_empty());
        assert!(s.has_blob(&rec.id), "blobs stay until gc");
    }
}
