//! A working container as the commands see it: the store's record plus the
//! image config being edited (kept inside the record as [`ContainerState`]),
//! and buildah's naming rule for `from`.

use serde::{Deserialize, Serialize};

use crate::container::error::{ContainerError, Result};
use crate::digest::Digest;
use crate::image::lookup::lookup_image_for;
use crate::image::{Image, ImageConfigBuilder, Platform};
use crate::store::{ChainId, Container, Store, StoreError};

/// What rbuild keeps per container beyond the store's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    /// A stable ID (hex), as `containers` shows it; survives `rename`.
    pub id: String,
    /// The config the next commit starts from.
    pub image: Image,
    /// `config --created-by`: the history text of the next committed layer.
    #[serde(default)]
    pub created_by: Option<String>,
    /// `config --comment`: the comment of the next committed layer.
    #[serde(default)]
    pub comment: Option<String>,
    /// `config --annotation`: manifest annotations of committed images.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// A container opened for a command.
#[derive(Debug, Clone)]
pub struct WorkingContainer {
    pub container: Container,
    pub state: ContainerState,
}

impl WorkingContainer {
    /// `rbuild from IMAGE|scratch [--name NAME]`: creates the container
    /// (named `IMAGE-working-container`, then `-1`, `-2`, … when taken).
    pub fn create(store: &Store, image: &str, name: Option<&str>) -> Result<WorkingContainer> {
        Self::create_for(store, image, name, &Platform::host())
    }

    /// [`WorkingContainer::create`] from `platform`'s image when `image`
    /// names a manifest list (`from --platform`).
    pub fn create_for(
        store: &Store,
        image: &str,
        name: Option<&str>,
        platform: &Platform,
    ) -> Result<WorkingContainer> {
        let (record, config) = if image.eq_ignore_ascii_case("scratch") {
            (None, Image::default())
        } else {
            let rec = lookup_image_for(store, image, platform).map_err(|e| match e {
                StoreError::ImageNotFound(_) => ContainerError::Invalid(format!(
                    "image {image:?} is not in the store; import it with `rbuild import ROOTFS.tar {image}` or pull it first"
                )),
                other => other.into(),
            })?;
            let bytes = store.read_blob(&rec.id)?;
            let config = Image::from_json(&bytes).map_err(|source| ContainerError::Config {
                container: image.to_string(),
                source,
            })?;
            (Some(rec), config)
        };
        let mut builder = match &record {
            Some(_) => ImageConfigBuilder::from_base(config),
            None => ImageConfigBuilder::scratch(platform.clone()),
        };
        // The history and diff IDs stay: the container's layers are the image's.
        builder.set_created(crate::image::Timestamp::now());
        // An image given by ID is named after its first name (buildah's
        // rule), not after the hex; a nameless one gives `working-container`.
        let by_id = record.as_ref().filter(|r| {
            let typed = image.trim_start_matches("sha256:");
            typed.len() >= 3 && r.id.hex().starts_with(typed)
        });
        let base = match by_id {
            Some(r) => r
                .names
                .first()
                .map_or_else(|| base_name("scratch"), |n| base_name(n)),
            None => base_name(image),
        };
        let container = match name {
            Some(n) => store.create_container(
                n,
                record.as_ref().map(|r| &r.id),
                record.as_ref().and_then(|r| r.top_layer.as_ref()),
            )?,
            None => create_numbered(
                store,
                &base,
                record.as_ref().map(|r| &r.id),
                record.as_ref().and_then(|r| r.top_layer.as_ref()),
            )?,
        };
        let id = Digest::of(
            format!(
                "{}\0{}\0{}\0{:?}",
                container.record.name,
                container.record.created,
                std::process::id(),
                std::time::SystemTime::now()
            )
            .as_bytes(),
        )
        .hex()
        .to_string();
        let mut wc = WorkingContainer {
            container,
            state: ContainerState {
                id,
                image: builder.build(),
                created_by: None,
                comment: None,
                annotations: Default::default(),
            },
        };
        // The name the user typed, as stored (buildah's FromImage): with
        // several names, the first one is not necessarily it.
        let typed = crate::reference::Reference::parse(image).ok();
        wc.container.record.image_name = record.as_ref().map(|r| {
            r.names
                .iter()
                .find(|n| {
                    let stored = crate::reference::Reference::parse(n).ok();
                    matches!((&typed, &stored), (Some(t), Some(s)) if t.match_stored(s).is_some())
                })
                .or(r.names.first())
                .cloned()
                .unwrap_or_else(|| image.to_string())
        });
        if let Err(e) = wc.save(store) {
            let _ = store.remove_container(wc.name());
            return Err(e);
        }
        Ok(wc)
    }

    /// The container called (or with an ID starting with) `name_or_id`.
    pub fn open(store: &Store, name_or_id: &str) -> Result<WorkingContainer> {
        let container = match store.container(name_or_id) {
            Ok(c) => c,
            Err(e) if e.is_not_found() || matches!(e, StoreError::InvalidContainerName(_)) => {
                let by_id: Vec<String> = store
                    .containers()?
                    .into_iter()
                    .filter(|r| {
                        name_or_id.len() >= 3
                            && state_of(r).is_some_and(|s| s.id.starts_with(name_or_id))
                    })
                    .map(|r| r.name)
                    .collect();
                match by_id.as_slice() {
                    [one] => store.container(one)?,
                    [] => return Err(e.into()),
                    _ => {
                        return Err(ContainerError::Invalid(format!(
                            "{name_or_id:?} matches several containers ({}); give more of the ID or the name",
                            by_id.join(", ")
                        )))
                    }
                }
            }
            Err(e) => return Err(e.into()),
        };
        let name = container.record.name.clone();
        let value = container
            .record
            .config
            .clone()
            .ok_or_else(|| ContainerError::State {
                container: name.clone(),
                reason: "no config".to_string(),
            })?;
        let state: ContainerState =
            serde_json::from_value(value).map_err(|e| ContainerError::State {
                container: name,
                reason: e.to_string(),
            })?;
        Ok(WorkingContainer { container, state })
    }

    /// Writes the state back into the store's record.
    pub fn save(&mut self, store: &Store) -> Result<()> {
        self.container.record.config =
            Some(
                serde_json::to_value(&self.state).map_err(|e| ContainerError::State {
                    container: self.name().to_string(),
                    reason: e.to_string(),
                })?,
            );
        store.update_container(&self.container.record)?;
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.container.record.name
    }

    /// The layers under the container's own changes, bottom to top.
    pub fn layers(&self, store: &Store) -> Result<Vec<ChainId>> {
        Ok(match &self.container.record.parent {
            Some(p) => store.layer_chain(p)?,
            None => Vec::new(),
        })
    }

    /// A builder over the container's config, for edits.
    pub fn builder(&self) -> ImageConfigBuilder {
        ImageConfigBuilder::from_base(self.state.image.clone())
    }
}

/// The state inside a record, if readable (for listings).
pub fn state_of(record: &crate::store::ContainerRecord) -> Option<ContainerState> {
    record
        .config
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// `docker.io/library/busybox:latest` → `busybox-working-container`;
/// `scratch` → `working-container` (buildah's rule).
pub fn base_name(image: &str) -> String {
    if image.eq_ignore_ascii_case("scratch") {
        return "working-container".to_string();
    }
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    let repo = last.split(':').next().unwrap_or(last);
    let clean: String = repo
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    if clean.is_empty() {
        "working-container".to_string()
    } else {
        format!("{clean}-working-container")
    }
}

fn create_numbered(
    store: &Store,
    base: &str,
    image: Option<&Digest>,
    parent: Option<&ChainId>,
) -> Result<Container> {
    for n in 0..10_000u32 {
        let name = if n == 0 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        };
        match store.create_container(&name, image, parent) {
            Ok(c) => return Ok(c),
            Err(StoreError::ContainerExists(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ContainerError::Invalid(format!(
        "no free name of the form {base}-N; remove containers or pass --name"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_follow_buildah() {
        assert_eq!(base_name("busybox"), "busybox-working-container");
        assert_eq!(
            base_name("docker.io/library/busybox:latest"),
            "busybox-working-container"
        );
        assert_eq!(
            base_name("localhost:5000/a/app@sha256:00"),
            "app-working-container"
        );
        assert_eq!(base_name("scratch"), "working-container");
    }

    #[test]
    fn from_scratch_numbers_names_and_reopens_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = WorkingContainer::create(&store, "scratch", None).unwrap();
        let b = WorkingContainer::create(&store, "scratch", None).unwrap();
        assert_eq!(a.name(), "working-container");
        assert_eq!(b.name(), "working-container-1");
        let again = WorkingContainer::open(&store, &b.state.id[..12]).unwrap();
        assert_eq!(again.name(), b.name());
        assert!(WorkingContainer::create(&store, "nosuchimage", None)
            .unwrap_err()
            .to_string()
            .contains("rbuild import"));
    }
}
