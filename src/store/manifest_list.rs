//! Manifest lists (multi-platform images): `images/lists.json`, one record
//! per list name.
//!
//! A list is a named index blob plus the local images it stands for:
//!
//! ```text
//! images/lists.json   { "<name>": { "id": "sha256:…",        stable ID, made at creation
//!                                   "index": "sha256:…",     the OCI index / docker list blob
//!                                   "instances": [ { "manifest": "sha256:…",   digest listed in the index
//!                                                    "image": "sha256:…" } ],  its image record (image ID)
//!                                   "artifacts": [ { "manifest": "sha256:…",   an entry that is not an image
//!                                                    "blobs": ["sha256:…"] } ],   (an attestation), kept as blobs
//!                                   "created": "RFC 3339" } }
//! ```
//!
//! Every instance is an ordinary image record in `images/` (usually without
//! a name of its own); the index blob and each instance's `manifest` blob
//! are ordinary blobs. Entries that are not images (BuildKit's attestation
//! manifests, platform `unknown/unknown`) are kept as they came: the
//! manifest and every blob it names, as plain blobs the list holds, so the
//! list pushes back byte for byte. A list may have several names (`tag`):
//! they are records sharing one ID, and an edit through one name changes
//! every name of it, as with one image record holding several names. The store does not parse the index: the caller
//! (`registry::manifest_list`) edits it and hands over the bytes' digest
//! together with the instance map. Consistency rules, checked under the
//! store lock: a list's index blob, instance manifests and instance images
//! exist when it is written; an image a list names is never removed
//! (`remove_image` refuses, `prune` skips it, gc marks everything it
//! holds); a name names an image or a list, never both: an image taking a
//! name (`put_image`, `tag`) takes it from a list, and a list taking one
//! (`replace_list`, `tag_list`) from an image, each under the one lock;
//! `create_list` refuses a name an image holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::error::{Result, StoreError};
use crate::store::fsutil::{read_json, write_json};
use crate::store::Store;

/// One platform image of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListInstance {
    /// The manifest digest the index lists for this instance.
    pub manifest: Digest,
    /// The image record (image ID) it is in the store as.
    pub image: Digest,
}

/// An index entry that is not an image (an attestation): its manifest and
/// the blobs that manifest names, stored as they came from the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListArtifact {
    /// The manifest digest the index lists.
    pub manifest: Digest,
    /// The config and layer blobs the manifest names.
    pub blobs: Vec<Digest>,
}

/// A manifest list: a named index over images in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestList {
    /// The name (filled from the key on read).
    #[serde(skip)]
    pub name: String,
    /// A stable ID made when the list is created (the index digest changes
    /// with every edit; this does not).
    pub id: Digest,
    /// The index blob (OCI image index or docker manifest list).
    pub index: Digest,
    /// The instances, in no particular order (the index holds the order).
    pub instances: Vec<ListInstance>,
    /// Entries that are not images (attestations), kept as plain blobs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<ListArtifact>,
    /// RFC 3339 creation time.
    pub created: String,
}

impl ManifestList {
    /// The image behind the index entry with manifest digest `manifest`.
    pub fn image_for(&self, manifest: &Digest) -> Option<Digest> {
        self.instances
            .iter()
            .find(|i| i.manifest == *manifest)
            .map(|i| i.image)
    }

    /// The non-image entry with manifest digest `manifest`.
    pub fn artifact_for(&self, manifest: &Digest) -> Option<&ListArtifact> {
        self.artifacts.iter().find(|a| a.manifest == *manifest)
    }

    /// Every blob the list holds directly: its index, instance manifests,
    /// artifact manifests and their blobs (not the instance images).
    pub fn blobs(&self) -> impl Iterator<Item = Digest> + '_ {
        std::iter::once(self.index)
            .chain(self.instances.iter().map(|i| i.manifest))
            .chain(
                self.artifacts
                    .iter()
                    .flat_map(|a| std::iter::once(a.manifest).chain(a.blobs.iter().copied())),
            )
    }
}

type ListIndex = BTreeMap<String, ManifestList>;

impl Store {
    fn lists_path(&self) -> std::path::PathBuf {
        self.images_dir().join("lists.json")
    }

    fn load_lists(&self) -> Result<ListIndex> {
        let mut lists: ListIndex = read_json(&self.lists_path())?.unwrap_or_default();
        for (name, list) in lists.iter_mut() {
            list.name = name.clone();
        }
        Ok(lists)
    }

    fn save_lists(&self, lists: &ListIndex) -> Result<()> {
        write_json(&self.tmp_dir(), &self.lists_path(), lists)
    }

    fn check_list_references(&self, list: &ManifestList) -> Result<()> {
        let missing = |what, digest| StoreError::ListMissingReference {
            list: list.name.clone(),
            what,
            digest,
        };
        if !self.has_blob(&list.index) {
            return Err(missing("index blob", list.index));
        }
        for inst in &list.instances {
            if !self.has_blob(&inst.manifest) {
                return Err(missing("manifest blob", inst.manifest));
            }
            if !self.image_path(&inst.image).is_file() {
                return Err(missing("image", inst.image));
            }
        }
        for artifact in &list.artifacts {
            for blob in std::iter::once(&artifact.manifest).chain(&artifact.blobs) {
                if !self.has_blob(blob) {
                    return Err(missing("attestation blob", *blob));
                }
            }
        }
        Ok(())
    }

    /// Creates a list; fails when the name is taken by a list or an image.
    pub fn create_list(&self, list: &ManifestList) -> Result<()> {
        super::image::check_name(&list.name)?;
        let _guard = self.lock()?;
        let mut lists = self.load_lists()?;
        if lists.contains_key(&list.name) {
            return Err(StoreError::ListExists(list.name.clone()));
        }
        if let Some(id) = self.name_index()?.get(&list.name) {
            return Err(StoreError::NameInUse {
                name: list.name.clone(),
                image: *id,
            });
        }
        self.check_list_references(list)?;
        lists.insert(list.name.clone(), list.clone());
        self.save_lists(&lists)
    }

    /// Replaces the list of that name, which must exist with the same ID
    /// and still have index `previous` (the one the edit started from): an
    /// edit racing with another edit, or with `manifest rm` + `create`, is
    /// refused rather than losing the other's change.
    pub fn update_list(&self, list: &ManifestList, previous: &Digest) -> Result<()> {
        let _guard = self.lock()?;
        let mut lists = self.load_lists()?;
        match lists.get(&list.name) {
            Some(old) if old.id == list.id && old.index == *previous => {}
            Some(old) if old.id == list.id => {
                return Err(StoreError::ListChanged(list.name.clone()))
            }
            _ => return Err(StoreError::ListNotFound(list.name.clone())),
        }
        self.check_list_references(list)?;
        // Every other name of the same list follows the edit.
        for other in lists.values_mut().filter(|l| l.id == list.id) {
            let name = std::mem::take(&mut other.name);
            *other = list.clone();
            other.name = name;
        }
        self.save_lists(&lists)
    }

    /// Stores `list` under its name whatever was there (a pull replacing
    /// what an earlier pull stored): a list of that name keeps its ID and
    /// creation time when no other name shares it, other names of it keep
    /// the old list, and an image holding the name loses it.
    pub fn replace_list(&self, list: &ManifestList) -> Result<ManifestList> {
        super::image::check_name(&list.name)?;
        let _guard = self.lock()?;
        let mut lists = self.load_lists()?;
        self.check_list_references(list)?;
        let mut stored = list.clone();
        if let Some(old) = lists.get(&list.name) {
            if lists.values().filter(|l| l.id == old.id).count() == 1 {
                stored.id = old.id;
                stored.created = old.created.clone();
            }
        }
        // Under the same lock as the list write: nobody sees the name on
        // both, or on neither.
        self.untag_locked(&list.name)?;
        lists.insert(stored.name.clone(), stored.clone());
        self.save_lists(&lists)?;
        Ok(stored)
    }

    /// Gives list `name` the further name `new_name` (`rbuild tag LIST
    /// NEW`): a list of that name is replaced and an image holding it
    /// loses it, so one name keeps meaning one thing.
    pub fn tag_list(&self, name: &str, new_name: &str) -> Result<ManifestList> {
        super::image::check_name(new_name)?;
        let _guard = self.lock()?;
        let mut lists = self.load_lists()?;
        let mut list = lists
            .get(name)
            .cloned()
            .ok_or_else(|| StoreError::ListNotFound(name.to_string()))?;
        self.untag_locked(new_name)?;
        list.name = new_name.to_string();
        lists.insert(new_name.to_string(), list.clone());
        self.save_lists(&lists)?;
        Ok(list)
    }

    /// The list with exactly this name.
    pub fn list(&self, name: &str) -> Result<ManifestList> {
        self.load_lists()?
            .remove(name)
            .ok_or_else(|| StoreError::ListNotFound(name.to_string()))
    }

    /// Every list, by name.
    pub fn lists(&self) -> Result<Vec<ManifestList>> {
        Ok(self.load_lists()?.into_values().collect())
    }

    /// Removes a list; its images stay (unnamed ones go at the next prune).
    pub fn remove_list(&self, name: &str) -> Result<ManifestList> {
        let _guard = self.lock()?;
        let mut lists = self.load_lists()?;
        let list = lists
            .remove(name)
            .ok_or_else(|| StoreError::ListNotFound(name.to_string()))?;
        self.save_lists(&lists)?;
        Ok(list)
    }

    /// Names of the lists that hold image `id` (callers hold the lock).
    pub(crate) fn lists_holding_locked(&self, id: &Digest) -> Result<Vec<String>> {
        Ok(self
            .load_lists()?
            .into_values()
            .filter(|l| l.instances.iter().any(|i| i.image == *id))
            .map(|l| l.name)
            .collect())
    }

    /// Drops each of `names` that a list holds (callers hold the lock): an
    /// image taking a name takes it from a list, as from another image.
    pub(crate) fn drop_list_names_locked(&self, names: &[String]) -> Result<()> {
        let mut lists = self.load_lists()?;
        let before = lists.len();
        lists.retain(|name, _| !names.contains(name));
        if lists.len() != before {
            self.save_lists(&lists)?;
        }
        Ok(())
    }

    /// Every list as stored, for gc and fsck (callers hold the lock).
    pub(crate) fn lists_locked(&self) -> Result<Vec<ManifestList>> {
        Ok(self.load_lists()?.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ImageRecord;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    fn image(s: &Store, config: &[u8], names: &[&str]) -> ImageRecord {
        let id = s.put_blob(config).unwrap();
        let manifest = s.put_blob(format!("manifest of {id}").as_bytes()).unwrap();
        let layer = s
            .import_layer(None, |_d| Ok::<_, std::io::Error>((Digest::of(config), 1)))
            .unwrap();
        let rec = ImageRecord {
            id,
            names: names.iter().map(|n| n.to_string()).collect(),
            manifest,
            index: None,
            top_layer: Some(layer),
            layers: vec![layer],
            created: crate::store::now_rfc3339(),
            size: 1,
        };
        s.put_image(&rec).unwrap();
        rec
    }

    fn list_of(s: &Store, name: &str, images: &[&ImageRecord]) -> ManifestList {
        let index = s
            .put_blob(
                format!(
                    "{{\"manifests\":[{}]}}",
                    images
                        .iter()
                        .map(|i| format!("\"{}\"", i.manifest))
                        .collect::<Vec<_>>()
                        .join(",")
                )
                .as_bytes(),
            )
            .unwrap();
        ManifestList {
            name: name.to_string(),
            id: Digest::of(name.as_bytes()),
            index,
            instances: images
                .iter()
                .map(|i| ListInstance {
                    manifest: i.manifest,
                    image: i.id,
                })
                .collect(),
            artifacts: Vec::new(),
            created: crate::store::now_rfc3339(),
        }
    }

    #[test]
    fn create_read_update_remove() {
        let (_t, s) = store();
        let a = image(&s, b"cfg-a", &[]);
        let b = image(&s, b"cfg-b", &[]);
        let mut list = list_of(&s, "localhost/l:latest", &[&a]);
        s.create_list(&list).unwrap();
        assert_eq!(s.list("localhost/l:latest").unwrap(), list);
        assert!(matches!(
            s.create_list(&list),
            Err(StoreError::ListExists(_))
        ));
        list.instances.push(ListInstance {
            manifest: b.manifest,
            image: b.id,
        });
        let first_index = list.index;
        list.index = s.put_blob(b"{\"manifests\":[]}").unwrap();
        s.update_list(&list, &first_index).unwrap();
        assert_eq!(s.lists().unwrap(), vec![list.clone()]);
        // An edit that started from the old index lost a race: refused.
        assert!(matches!(
            s.update_list(&list, &first_index),
            Err(StoreError::ListChanged(_))
        ));
        let mut other = list.clone();
        other.id = Digest::of(b"another");
        assert!(s
            .update_list(&other, &list.index)
            .unwrap_err()
            .is_not_found());
        assert_eq!(s.remove_list("localhost/l:latest").unwrap(), list);
        assert!(s.list("localhost/l:latest").unwrap_err().is_not_found());
    }

    #[test]
    fn an_image_name_is_not_a_list_name() {
        let (_t, s) = store();
        let a = image(&s, b"cfg-a", &["localhost/a:latest"]);
        let list = list_of(&s, "localhost/a:latest", &[&a]);
        let err = s.create_list(&list).unwrap_err();
        assert!(matches!(err, StoreError::NameInUse { .. }), "{err}");
    }

    #[test]
    fn a_name_moves_between_an_image_and_a_list() {
        let (_t, s) = store();
        let a = image(&s, b"cfg-a", &[]);
        let list = list_of(&s, "localhost/n:latest", &[&a]);
        s.create_list(&list).unwrap();
        // An image stored under the list's name takes it from the list.
        let mut b = image(&s, b"cfg-b", &[]);
        b.names = vec!["localhost/n:latest".into()];
        s.put_image(&b).unwrap();
        assert!(s.list("localhost/n:latest").unwrap_err().is_not_found());
        assert_eq!(s.resolve_image("localhost/n:latest").unwrap().id, b.id);
        // A pulled list replacing the name takes it back from the image.
        s.replace_list(&list).unwrap();
        assert!(s.image(&b.id).unwrap().names.is_empty());
        // `tag` of an image moves it again; `tag_list` moves it back.
        s.tag(&b.id, "localhost/n:latest").unwrap();
        assert!(s.list("localhost/n:latest").unwrap_err().is_not_found());
        s.create_list(&ManifestList {
            name: "localhost/m:latest".into(),
            ..list.clone()
        })
        .unwrap();
        s.tag_list("localhost/m:latest", "localhost/n:latest")
            .unwrap();
        assert!(s.image(&b.id).unwrap().names.is_empty());
        assert!(s.list("localhost/n:latest").is_ok());
        assert!(s.fsck().unwrap().is_empty(), "{:?}", s.fsck().unwrap());
    }

    #[test]
    fn fsck_reports_a_name_on_an_image_and_a_list() {
        let (_t, s) = store();
        let a = image(&s, b"cfg-a", &["localhost/both:latest"]);
        let list = list_of(&s, "localhost/both:latest", &[&a]);
        // As an older rbuild left it: written past the name checks.
        let mut lists = s.load_lists().unwrap();
        lists.insert(list.name.clone(), list.clone());
        s.save_lists(&lists).unwrap();
        let problems = s.fsck().unwrap();
        assert!(
            problems.iter().any(|p| matches!(p,
                crate::store::Problem::NameOnImageAndList { name, image, list: l }
                    if name == "localhost/both:latest" && *image == a.id && *l == list.id)),
            "{problems:?}"
        );
    }

    #[test]
    fn missing_parts_are_refused() {
        let (_t, s) = store();
        let a = image(&s, b"cfg-a", &[]);
        let mut list = list_of(&s, "l", &[&a]);
        list.instances[0].image = Digest::of(b"no such image");
        let err = s.create_list(&list).unwrap_err().to_string();
        assert!(err.contains("image") && err.contains("\"l\""), "{err}");
        list.index = Digest::of(b"no such blob");
        let err = s.create_list(&list).unwrap_err().to_string();
        assert!(err.contains("index blob"), "{err}");
    }

    #[test]
    fn listed_images_survive_rmi_prune_and_gc() {
        let (_t, s) = store();
        let a = image(&s, b"cfg-a", &[]);
        let b = image(&s, b"cfg-b", &[]);
        let list = list_of(&s, "l", &[&a]);
        s.create_list(&list).unwrap();
        let err = s.remove_image(&a.id).unwrap_err();
        assert!(matches!(err, StoreError::ImageInList { .. }), "{err}");
        let report = s.prune().unwrap();
        assert_eq!(report.images_removed, vec![b.id], "only the unlisted one");
        assert!(s.image(&a.id).is_ok());
        assert!(s.has_blob(&list.index) && s.has_blob(&a.manifest) && s.has_blob(&a.id));
        assert!(s.has_layer(&a.layers[0]));
        assert!(s.fsck().unwrap().is_empty(), "{:?}", s.fsck().unwrap());
        s.remove_list("l").unwrap();
        let report = s.prune().unwrap();
        assert_eq!(report.images_removed, vec![a.id]);
        assert!(!s.has_blob(&list.index));
    }

    #[test]
    fn attestation_blobs_are_kept_by_gc_and_checked_by_fsck() {
        let (_t, s) = store();
        let a = image(&s, b"cfg-a", &[]);
        let statement = s.put_blob(b"{\"_type\":\"in-toto\"}").unwrap();
        // Not JSON: gc must keep it because the list names it, not by scanning.
        let opaque = s.put_blob(b"\x00binary attestation").unwrap();
        let manifest = s.put_blob(b"attestation manifest").unwrap();
        let mut list = list_of(&s, "l", &[&a]);
        list.artifacts.push(ListArtifact {
            manifest,
            blobs: vec![statement, opaque],
        });
        s.create_list(&list).unwrap();
        assert_eq!(
            s.list("l").unwrap().artifact_for(&manifest),
            list.artifacts.first()
        );
        s.prune().unwrap();
        for b in [manifest, statement, opaque] {
            assert!(s.has_blob(&b), "{b} kept");
        }
        assert!(s.fsck().unwrap().is_empty());
        std::fs::remove_file(s.blob_path(&opaque)).unwrap();
        let problems = s.fsck().unwrap();
        assert!(
            problems.iter().any(
                |p| matches!(p, crate::store::Problem::MissingBlob { blob, .. } if *blob == opaque)
            ),
            "{problems:?}"
        );
        // A list naming a missing attestation blob is refused.
        let mut other = list_of(&s, "m", &[&a]);
        other.artifacts.push(ListArtifact {
            manifest,
            blobs: vec![opaque],
        });
        let err = s.create_list(&other).unwrap_err().to_string();
        assert!(err.contains("attestation blob"), "{err}");
        s.remove_list("l").unwrap();
        s.gc().unwrap();
        assert!(!s.has_blob(&statement) && !s.has_blob(&manifest));
    }

    #[test]
    fn a_tagged_list_is_one_list_under_two_names() {
        let (_t, s) = store();
        let a = image(&s, b"cfg-a", &[]);
        let b = image(&s, b"cfg-b", &["localhost/b:latest"]);
        let list = list_of(&s, "l", &[&a]);
        s.create_list(&list).unwrap();
        let tagged = s.tag_list("l", "t").unwrap();
        assert_eq!(tagged.id, list.id);
        // An edit through one name is an edit of both.
        let mut edited = s.list("t").unwrap();
        edited.instances.push(ListInstance {
            manifest: b.manifest,
            image: b.id,
        });
        edited.index = s.put_blob(b"{\"manifests\":[\"edited\"]}").unwrap();
        s.update_list(&edited, &list.index).unwrap();
        assert_eq!(s.list("l").unwrap().index, edited.index);
        assert_eq!(s.list("l").unwrap().instances, edited.instances);
        // Tagging with an image's name takes the name from the image.
        s.tag_list("l", "localhost/b:latest").unwrap();
        assert!(!s.name_index().unwrap().contains_key("localhost/b:latest"));
        assert!(s.tag_list("nope", "x").unwrap_err().is_not_found());
        // Removing one name keeps the others.
        s.remove_list("t").unwrap();
        assert_eq!(s.list("l").unwrap().id, list.id);
    }

    #[test]
    fn a_replaced_list_leaves_its_other_names_alone() {
        let (_t, s) = store();
        let a = image(&s, b"cfg-a", &["localhost/img:latest"]);
        let b = image(&s, b"cfg-b", &[]);
        let first = list_of(&s, "l", &[&a]);
        // Replacing an absent list creates it; an image's name moves to it.
        let mut named = list_of(&s, "localhost/img:latest", &[&b]);
        named.id = Digest::of(b"named");
        s.replace_list(&named).unwrap();
        assert!(!s.name_index().unwrap().contains_key("localhost/img:latest"));
        s.create_list(&first).unwrap();
        let mut again = list_of(&s, "l", &[&b]);
        again.id = Digest::of(b"fresh");
        // Alone under its ID: the old ID and creation time stay.
        let stored = s.replace_list(&again).unwrap();
        assert_eq!((stored.id, stored.instances[0].image), (first.id, b.id));
        // Shared with a tag: the tag keeps the old list, the name gets a new ID.
        s.tag_list("l", "t").unwrap();
        let mut third = list_of(&s, "l", &[&a]);
        third.id = Digest::of(b"third");
        let stored = s.replace_list(&third).unwrap();
        assert_eq!(stored.id, third.id);
        assert_eq!(s.list("t").unwrap().instances[0].image, b.id);
        assert_eq!(s.list("l").unwrap().instances[0].image, a.id);
    }

    #[test]
    fn fsck_reports_a_list_whose_parts_are_gone() {
        let (_t, s) = store();
        let a = image(&s, b"cfg-a", &[]);
        let list = list_of(&s, "l", &[&a]);
        s.create_list(&list).unwrap();
        std::fs::remove_file(s.blob_path(&list.index)).unwrap();
        let problems = s.fsck().unwrap();
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, crate::store::Problem::MissingBlob { blob, .. } if *blob == list.index)),
            "{problems:?}"
        );
    }
}
