//! Working containers (`rbuild from`): `containers/<name>/` holding
//! `container.json`, and `diff/` + `work/` for the overlay upper and workdir
//! on top of the image's layers.
//!
//! Minimal on purpose: create, get, list, remove. The lead's `from`/`run`/
//! `commit` commands build on this; committing a container means hashing
//! its `diff/` and importing it as a layer.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::error::{Result, StoreError};
use crate::store::fsutil::{
    create_tmp_dir, ensure_dir, fsync_dir, read_json, remove_tree, write_json,
};
use crate::store::layer::ChainId;
use crate::store::Store;

/// A container name checked to be one safe path component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerName(String);

impl ContainerName {
    pub(crate) fn parse(name: &str) -> Result<ContainerName> {
        let mut chars = name.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            && name.len() <= 255;
        if ok {
            Ok(ContainerName(name.to_string()))
        } else {
            Err(StoreError::InvalidContainerName(name.to_string()))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// `containers/<name>/container.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The container's name (a single safe path component).
    pub name: String,
    /// The image it was made from (`None` for `scratch`).
    pub image: Option<Digest>,
    /// The top layer under the container's own changes.
    pub parent: Option<ChainId>,
    /// RFC 3339 creation time.
    pub created: String,
    /// The image name the container was made from, as typed (for listings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// The image config being edited (opaque to the store: the `container`
    /// module owns its shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

/// A working container: its record and the overlay directories.
#[derive(Debug, Clone)]
pub struct Container {
    /// What `container.json` holds.
    pub record: ContainerRecord,
    dir: PathBuf,
    lowers: Vec<PathBuf>,
}

impl Container {
    /// The overlay upper dir: the container's changes.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("diff")
    }

    /// The overlay workdir.
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// The parent chain's diff dirs, topmost first.
    pub fn lowers(&self) -> &[PathBuf] {
        &self.lowers
    }

    /// `containers/<name>/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Store {
    fn lowers_of(&self, parent: Option<&ChainId>) -> Result<Vec<PathBuf>> {
        Ok(match parent {
            Some(p) => self
                .layer_chain(p)?
                .iter()
                .rev()
                .map(|c| self.layer_diff_path(c))
                .collect(),
            None => Vec::new(),
        })
    }

    /// Creates a working container; the name must be free.
    pub fn create_container(
        &self,
        name: &str,
        image: Option<&Digest>,
        parent: Option<&ChainId>,
    ) -> Result<Container> {
        let cname = ContainerName::parse(name)?;
        if let Some(id) = image {
            self.image(id)?;
        }
        let lowers = self.lowers_of(parent)?;
        let record = ContainerRecord {
            name: name.to_string(),
            image: image.copied(),
            parent: parent.copied(),
            created: super::now_rfc3339(),
            image_name: None,
            config: None,
        };
        let staging = create_tmp_dir(&self.tmp_dir(), "container")?;
        let built = (|| {
            ensure_dir(&staging.join("diff"))?;
            ensure_dir(&staging.join("work"))?;
            write_json(&self.tmp_dir(), &staging.join("container.json"), &record)
        })();
        if let Err(e) = built {
            let _ = remove_tree(&staging);
            return Err(e);
        }
        let target = self.container_dir(&cname);
        // rename(2) fails on an existing non-empty directory, so two
        // creators of one name cannot both win.
        if let Err(e) = fs::rename(&staging, &target) {
            let _ = remove_tree(&staging);
            return Err(if target.exists() {
                StoreError::ContainerExists(name.to_string())
            } else {
                StoreError::io("create container", target)(e)
            });
        }
        if let Err(e) = fsync_dir(&self.containers_dir()) {
            log::warn!("container {name} created, but: {e}");
        }
        Ok(Container {
            record,
            dir: target,
            lowers,
        })
    }

    /// The working container called `name`.
    pub fn container(&self, name: &str) -> Result<Container> {
        let cname = ContainerName::parse(name)?;
        let dir = self.container_dir(&cname);
        let record: ContainerRecord = read_json(&dir.join("container.json"))?
            .ok_or_else(|| StoreError::ContainerNotFound(name.to_string()))?;
        let lowers = self.lowers_of(record.parent.as_ref())?;
        Ok(Container {
            record,
            dir,
            lowers,
        })
    }

    /// Every working container's record, by name.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        let dir = self.containers_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let entry = entry.map_err(StoreError::io("list", &dir))?;
            if let Some(rec) = read_json::<ContainerRecord>(&entry.path().join("container.json"))? {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Replaces `container.json` of an existing container (atomically); the
    /// record's name says which.
    pub fn update_container(&self, record: &ContainerRecord) -> Result<()> {
        let cname = ContainerName::parse(&record.name)?;
        let dir = self.container_dir(&cname);
        if !dir.join("container.json").is_file() {
            return Err(StoreError::ContainerNotFound(record.name.clone()));
        }
        if let Some(p) = &record.parent {
            if !self.has_layer(p) {
                return Err(StoreError::LayerNotFound(*p));
            }
        }
        write_json(&self.tmp_dir(), &dir.join("container.json"), record)
    }

    /// Renames a working container; the new name must be free.
    pub fn rename_container(&self, old: &str, new: &str) -> Result<()> {
        let from = self.container_dir(&ContainerName::parse(old)?);
        let to_name = ContainerName::parse(new)?;
        let to = self.container_dir(&to_name);
        let mut record = self.container(old)?.record;
        if to.exists() {
            return Err(StoreError::ContainerExists(new.to_string()));
        }
        fs::rename(&from, &to).map_err(StoreError::io("rename container", from.clone()))?;
        record.name = new.to_string();
        write_json(&self.tmp_dir(), &to.join("container.json"), &record)
    }

    /// Removes a working container and its changes.
    pub fn remove_container(&self, name: &str) -> Result<()> {
        let cname = ContainerName::parse(name)?;
        let dir = self.container_dir(&cname);
        let doomed = create_tmp_dir(&self.tmp_dir(), "rm")?;
        match fs::rename(&dir, &doomed) {
            Ok(()) => remove_tree(&doomed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = remove_tree(&doomed);
                Err(StoreError::ContainerNotFound(name.to_string()))
            }
            Err(e) => {
                let _ = remove_tree(&doomed);
                Err(StoreError::io("remove container", dir)(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_safe_components() {
        for bad in ["", "..", ".x", "a/b", "-x", "a b", "/abs"] {
            assert!(ContainerName::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "busybox-working-container", "x_1.2"] {
            ContainerName::parse(good).unwrap();
        }
    }

    #[test]
    fn create_get_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let base = s
            .import_layer(None, |_| Ok::<_, io::Error>((Digest::of(b"b"), 1)))
            .unwrap();
        let c = s.create_container("work", None, Some(&base)).unwrap();
        assert!(c.upper().is_dir() && c.work().is_dir());
        assert_eq!(c.lowers(), &[s.layer_diff_path(&base)]);
        assert!(matches!(
            s.create_container("work", None, None),
            Err(StoreError::ContainerExists(_))
        ));
        assert_eq!(s.container("work").unwrap().record, c.record);
        assert_eq!(s.containers().unwrap(), vec![c.record.clone()]);
        s.remove_container("work").unwrap();
        assert!(s.container("work").unwrap_err().is_not_found());
        assert!(s.remove_container("work").unwrap_err().is_not_found());
        let mut c = s.create_container("a", None, Some(&base)).unwrap();
        c.record.config = Some(serde_json::json!({"x": 1}));
        s.update_container(&c.record).unwrap();
        s.rename_container("a", "b").unwrap();
        let b = s.container("b").unwrap();
        assert_eq!(b.record.name, "b");
        assert_eq!(b.record.config, c.record.config);
        assert!(s.container("a").unwrap_err().is_not_found());
        s.create_container("a", None, None).unwrap();
        assert!(matches!(
            s.rename_container("a", "b"),
            Err(StoreError::ContainerExists(_))
        ));
        s.remove_container("a").unwrap();
        s.remove_container("b").unwrap();
        assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
    }
}
