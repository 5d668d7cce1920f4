//! Manifest lists as users edit them (`rbuild manifest create/add/remove`,
//! `bud --manifest`, `pull --all-platforms`): the index document and the
//! store's [`ManifestList`] record kept in step.
//!
//! The document is an OCI image index or a docker manifest list
//! ([`ListDocument`]). A list made locally starts as an empty OCI index whose
//! entries name each image's *local* manifest (layers = diff IDs), with the
//! platform from the image's config, as buildah's list shows local images;
//! a push rewrites the entries to the manifests it pushed. A list pulled with
//! `--all-platforms` keeps the registry's index bytes, each instance's
//! manifest bytes and its attestation entries (manifest and blobs, see
//! [`is_attestation`]), so an unchanged push sends them back byte for byte.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{RegistryError, Result};
use crate::digest::Digest;
use crate::image::gojson;
use crate::image::manifest::{
    Descriptor, DockerManifestList, ImageManifest, ManifestFormat, OciIndex, DOCKER_MANIFEST_LIST,
    OCI_INDEX,
};
use crate::image::{Image, Platform};
use crate::store::{
    ImageRecord, Lease, ListArtifact, ListInstance, ManifestList, Store, StoreError,
};

/// Which kind of list document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// `application/vnd.oci.image.index.v1+json`
    Oci,
    /// `application/vnd.docker.distribution.manifest.list.v2+json`
    Docker,
}

impl ListKind {
    pub fn media_type(self) -> &'static str {
        match self {
            ListKind::Oci => OCI_INDEX,
            ListKind::Docker => DOCKER_MANIFEST_LIST,
        }
    }

    /// The list kind that goes with manifests of `format`.
    pub fn for_format(format: ManifestFormat) -> ListKind {
        match format {
            ManifestFormat::Oci => ListKind::Oci,
            ManifestFormat::Docker => ListKind::Docker,
        }
    }
}

/// An index or manifest list, parsed: entries in order, each with its platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListDocument {
    pub kind: ListKind,
    pub entries: Vec<Descriptor>,
    /// Index annotations (OCI only; a docker list has none).
    pub annotations: BTreeMap<String, String>,
}

/// Both flavours parse with the OCI field names (a docker list entry is a
/// descriptor with a platform); only the media type tells them apart.
#[derive(Deserialize, Serialize)]
struct AnyIndex {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl ListDocument {
    pub fn new(kind: ListKind) -> ListDocument {
        ListDocument {
            kind,
            entries: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }

    /// Parses an OCI index or docker manifest list.
    pub fn parse(bytes: &[u8]) -> std::result::Result<ListDocument, String> {
        let any: AnyIndex = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let kind = match any.media_type.as_str() {
            DOCKER_MANIFEST_LIST => ListKind::Docker,
            OCI_INDEX | "" => ListKind::Oci,
            other => return Err(format!("media type {other:?} is not an image index")),
        };
        if any.schema_version != 2 {
            return Err(format!("schemaVersion {} (expected 2)", any.schema_version));
        }
        Ok(ListDocument {
            kind,
            entries: any.manifests,
            annotations: any.annotations,
        })
    }

    /// The document's bytes, as containers/image writes them.
    pub fn to_json(&self) -> Vec<u8> {
        match self.kind {
            ListKind::Oci => OciIndex {
                manifests: self.entries.clone(),
                annotations: self.annotations.clone(),
                ..OciIndex::default()
            }
            .to_json(),
            ListKind::Docker => {
                let entries: Vec<(Descriptor, Platform)> = self
                    .entries
                    .iter()
                    .map(|d| (d.clone(), d.platform.clone().unwrap_or_default()))
                    .collect();
                DockerManifestList::new(&entries).to_json()
            }
        }
    }

    /// The document indented with four spaces, as `buildah manifest inspect` prints it.
    pub fn to_pretty_json(&self) -> Vec<u8> {
        let result = match self.kind {
            ListKind::Oci => gojson::to_vec_indent(
                &OciIndex {
                    manifests: self.entries.clone(),
                    annotations: self.annotations.clone(),
                    ..OciIndex::default()
                },
                "    ",
            ),
            ListKind::Docker => {
                let entries: Vec<(Descriptor, Platform)> = self
                    .entries
                    .iter()
                    .map(|d| (d.clone(), d.platform.clone().unwrap_or_default()))
                    .collect();
                gojson::to_vec_indent(&DockerManifestList::new(&entries), "    ")
            }
        };
        result.expect("an index always serialises")
    }
}

/// Whether an index entry is an attestation rather than an image: BuildKit
/// marks them with platform `unknown/unknown` and the annotation
/// `vnd.docker.reference.type: attestation-manifest`.
pub fn is_attestation(entry: &Descriptor) -> bool {
    let unknown = entry
        .platform
        .as_ref()
        .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown");
    let annotated = entry
        .annotations
        .get("vnd.docker.reference.type")
        .is_some_and(|t| t == "attestation-manifest");
    unknown || annotated
}

/// How to describe one image in a list, beyond what its config says
/// (`manifest add --os --arch --variant --os-version --features --annotation`).
#[derive(Clone, Debug, Default)]
pub struct AddOptions {
    pub os: Option<String>,
    pub arch: Option<String>,
    pub variant: Option<String>,
    pub os_version: Option<String>,
    pub os_features: Vec<String>,
    pub annotations: BTreeMap<String, String>,
}

/// The stored list `name` names: exact, then as buildah normalises a local
/// name (`list` → `localhost/list:latest`), then docker's normalisation.
pub fn lookup_list(store: &Store, name: &str) -> std::result::Result<ManifestList, StoreError> {
    crate::image::lookup::lookup_list(store, name)
}

/// The list's document, read from its index blob.
pub fn read_document(store: &Store, list: &ManifestList) -> Result<ListDocument> {
    let bytes = store.read_blob(&list.index)?;
    ListDocument::parse(&bytes).map_err(|why| {
        RegistryError::Config(format!(
            "manifest list {:?}: its index blob {} ({}) cannot be read: {why}",
            list.name,
            list.index,
            store.blob_path(&list.index).display()
        ))
    })
}

/// A fresh list ID: lists are mutable, so unlike an image ID it is not a
/// content digest; it only has to be unique.
fn new_list_id(name: &str) -> Digest {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    Digest::of(format!("{name}\n{nanos}\n{}", std::process::id()).as_bytes())
}

/// Stores an index blob under a lease, so a concurrent gc cannot take it
/// before the list record names it.
fn put_index(store: &Store, bytes: &[u8]) -> Result<(Digest, Lease)> {
    let lease = store.lease()?;
    let digest = store.put_blob(bytes)?;
    lease.protect_blob(&digest)?;
    Ok((digest, lease))
}

/// Creates list `name` (already normalised) as an OCI index of `images`,
/// in one store write: a failure leaves no list behind.
pub fn create(store: &Store, name: &str, images: &[ImageRecord]) -> Result<ManifestList> {
    let mut doc = ListDocument::new(ListKind::Oci);
    let mut instances: Vec<ListInstance> = Vec::new();
    for image in images {
        let entry = entry_for(store, image, &AddOptions::default())?;
        instances.retain(|i| i.manifest != entry.digest);
        instances.push(ListInstance {
            manifest: entry.digest,
            image: image.id,
        });
        match doc.entries.iter_mut().find(|e| e.digest == entry.digest) {
            Some(old) => *old = entry,
            None => doc.entries.push(entry),
        }
    }
    let (index, _lease) = put_index(store, &doc.to_json())?;
    let list = ManifestList {
        name: name.to_string(),
        id: new_list_id(name),
        index,
        instances,
        artifacts: Vec::new(),
        created: now_rfc3339(),
    };
    store.create_list(&list)?;
    Ok(list)
}

/// How often an edit that lost a race with another edit is applied again
/// to the list as that one left it.
const EDIT_ATTEMPTS: u32 = 100;

/// Applies `edit` to the list's document and record and stores the result.
/// When another command changed the list meanwhile (`ListChanged`), the
/// list is read again and the edit applied again, so parallel `manifest
/// add` and `bud --manifest` runs all land; a list removed or recreated
/// meanwhile is an error.
fn edit_list<T>(
    store: &Store,
    list: &ManifestList,
    mut edit: impl FnMut(&mut ListDocument, &mut ManifestList) -> Result<T>,
) -> Result<(ManifestList, T)> {
    // Always from the list as stored: `list` only says which list (name
    // and ID), so an edit made from a stale copy still sees every entry.
    let stored = |store: &Store| -> Result<ManifestList> {
        match store.list(&list.name) {
            Ok(current) if current.id == list.id => Ok(current),
            Ok(_) => Err(StoreError::ListNotFound(list.name.clone()).into()),
            Err(e) => Err(e.into()),
        }
    };
    let mut current = stored(store)?;
    let mut attempt = 0;
    loop {
        let mut doc = read_document(store, &current)?;
        let mut updated = current.clone();
        let out = edit(&mut doc, &mut updated)?;
        let (index, _lease) = put_index(store, &doc.to_json())?;
        updated.index = index;
        match store.update_list(&updated, &current.index) {
            Ok(()) => return Ok((updated, out)),
            Err(StoreError::ListChanged(_)) if attempt + 1 < EDIT_ATTEMPTS => {
                attempt += 1;
                backoff(attempt);
                current = stored(store)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A short pause that grows with `attempt` and differs between processes,
/// so racing editors stop colliding.
fn backoff(attempt: u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let spread = u64::from(attempt.min(20)) * 2 + 1;
    let jitter = u64::from(nanos ^ std::process::id()) % spread;
    std::thread::sleep(std::time::Duration::from_millis(1 + jitter));
}

fn now_rfc3339() -> String {
    gojson::Timestamp::now().to_string()
}

/// The index entry for a stored image: its local manifest and the platform
/// from its config, overridden by `opts`.
fn entry_for(store: &Store, image: &ImageRecord, opts: &AddOptions) -> Result<Descriptor> {
    let manifest_bytes = store.read_blob(&image.manifest)?;
    let manifest = ImageManifest::from_json(&manifest_bytes).map_err(|e| {
        RegistryError::Config(format!(
            "image {}: its manifest {} cannot be read: {e}",
            image.id.short(),
            image.manifest
        ))
    })?;
    let config = Image::from_json(&store.read_blob(&image.id)?).map_err(|e| {
        RegistryError::Config(format!(
            "image {}: its config cannot be read: {e}",
            image.id.short()
        ))
    })?;
    let mut platform = config.platform();
    let set = |field: &mut String, value: &Option<String>| {
        if let Some(v) = value {
            *field = v.clone();
        }
    };
    set(&mut platform.os, &opts.os);
    set(&mut platform.architecture, &opts.arch);
    set(&mut platform.variant, &opts.variant);
    set(&mut platform.os_version, &opts.os_version);
    if !opts.os_features.is_empty() {
        platform.os_features = opts.os_features.clone();
    }
    if platform.os.is_empty() || platform.architecture.is_empty() {
        return Err(RegistryError::Config(format!(
            "image {} has no OS or architecture in its config; give them with --os and --arch",
            image.id.short()
        )));
    }
    let mut d = Descriptor::new(
        manifest.media_type(),
        image.manifest,
        manifest_bytes.len() as u64,
    );
    d.platform = Some(platform);
    d.annotations = opts.annotations.clone();
    Ok(d)
}

/// Adds `image` to `list` (replacing an entry for the same manifest, as
/// buildah does) and stores the new index, applying the edit again when
/// another command changed the list meanwhile. Returns the list and the
/// manifest digest the entry lists.
pub fn add(
    store: &Store,
    list: &ManifestList,
    image: &ImageRecord,
    opts: &AddOptions,
) -> Result<(ManifestList, Digest)> {
    let entry = entry_for(store, image, opts)?;
    let digest = entry.digest;
    edit_list(store, list, |doc, updated| {
        match doc.entries.iter_mut().find(|e| e.digest == digest) {
            Some(old) => *old = entry.clone(),
            None => doc.entries.push(entry.clone()),
        }
        updated.instances.retain(|i| i.manifest != digest);
        updated.instances.push(ListInstance {
            manifest: digest,
            image: image.id,
        });
        Ok(digest)
    })
}

/// Removes the entry with manifest digest `digest` from `list` (applied
/// again to the list as it is when another command changed it meanwhile).
pub fn remove(store: &Store, list: &ManifestList, digest: &Digest) -> Result<ManifestList> {
    let (updated, ()) = edit_list(store, list, |doc, updated| {
        let before = doc.entries.len();
        doc.entries.retain(|e| e.digest != *digest);
        if doc.entries.len() == before {
            return Err(RegistryError::Config(format!(
                "manifest list {:?} has no entry {digest}; `rbuild manifest inspect {}` shows its entries",
                updated.name, updated.name
            )));
        }
        updated.instances.retain(|i| i.manifest != *digest);
        updated.artifacts.retain(|a| a.manifest != *digest);
        Ok(())
    })?;
    Ok(updated)
}

/// Stores a pulled index as list `name`: the registry's index bytes,
/// instances (manifest digest → image ID, manifests already stored) and
/// attestation entries (their manifests and blobs already stored). An
/// existing list of that name is replaced; an image holding the name loses
/// it (one name means one thing).
pub fn store_pulled(
    store: &Store,
    name: &str,
    index_bytes: &[u8],
    instances: Vec<ListInstance>,
    artifacts: Vec<ListArtifact>,
) -> Result<ManifestList> {
    let (index, _lease) = put_index(store, index_bytes)?;
    let list = ManifestList {
        name: name.to_string(),
        id: new_list_id(name),
        index,
        instances,
        artifacts,
        created: now_rfc3339(),
    };
    // Another pull of the same name may replace it meanwhile: the last one
    // wins, as with image names. Other names of the old list (`tag`) keep
    // the old list; an image holding the name loses it.
    Ok(store.replace_list(&list)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_LIST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","platform":{"architecture":"arm","os":"linux","variant":"v7"}}]}"#;

    fn image(store: &Store, lease: &Lease, arch: &str) -> ImageRecord {
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        crate::build::write_image(
            store,
            lease,
            config.as_bytes(),
            &[],
            ManifestFormat::Oci,
            &Default::default(),
            Vec::new(),
        )
        .unwrap()
    }

    #[test]
    fn an_edit_from_a_stale_list_is_applied_to_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lease = store.lease().unwrap();
        let (amd, arm, s390) = (
            image(&store, &lease, "amd64"),
            image(&store, &lease, "arm64"),
            image(&store, &lease, "s390x"),
        );
        let list = create(&store, "localhost/l:latest", std::slice::from_ref(&amd)).unwrap();
        // Two editors that read the list before either wrote.
        add(&store, &list, &arm, &AddOptions::default()).unwrap();
        let (after, _) = add(&store, &list, &s390, &AddOptions::default()).unwrap();
        let doc = read_document(&store, &after).unwrap();
        assert_eq!(doc.entries.len(), 3);
        assert_eq!(after.instances.len(), 3);
        assert_eq!(store.list("localhost/l:latest").unwrap(), after);
        // A stale remove lands too, and removing what is gone is an error.
        remove(&store, &list, &arm.manifest).unwrap();
        assert_eq!(store.list("localhost/l:latest").unwrap().instances.len(), 2);
        let err = remove(&store, &list, &arm.manifest)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no entry"), "{err}");
        // A list removed and made again meanwhile is not edited.
        store.remove_list("localhost/l:latest").unwrap();
        create(&store, "localhost/l:latest", &[]).unwrap();
        let err = add(&store, &after, &arm, &AddOptions::default()).unwrap_err();
        assert!(err.to_string().contains("localhost/l:latest"), "{err}");
        assert!(store
            .list("localhost/l:latest")
            .unwrap()
            .instances
            .is_empty());
    }

    #[test]
    fn create_with_images_is_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lease = store.lease().unwrap();
        let amd = image(&store, &lease, "amd64");
        let mut broken = image(&store, &lease, "arm64");
        broken.manifest = Digest::of(b"no such manifest");
        assert!(create(&store, "localhost/c:latest", &[amd.clone(), broken]).is_err());
        assert!(store.list("localhost/c:latest").unwrap_err().is_not_found());
        let list = create(&store, "localhost/c:latest", &[amd.clone(), amd]).unwrap();
        assert_eq!(list.instances.len(), 1, "the same image twice is one entry");
    }

    #[test]
    fn a_docker_list_round_trips_byte_for_byte() {
        let doc = ListDocument::parse(DOCKER_LIST.as_bytes()).unwrap();
        assert_eq!(doc.kind, ListKind::Docker);
        assert_eq!(doc.entries.len(), 1);
        assert_eq!(
            doc.entries[0].platform.as_ref().unwrap().variant,
            "v7".to_string()
        );
        assert_eq!(String::from_utf8(doc.to_json()).unwrap(), DOCKER_LIST);
    }

    #[test]
    fn an_oci_index_round_trips_and_pretty_prints() {
        let mut doc = ListDocument::new(ListKind::Oci);
        let mut d = Descriptor::new(crate::image::manifest::OCI_MANIFEST, Digest::of(b"m"), 12);
        d.platform = Some(Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Platform::default()
        });
        doc.entries.push(d);
        let bytes = doc.to_json();
        assert_eq!(ListDocument::parse(&bytes).unwrap(), doc);
        let pretty = String::from_utf8(doc.to_pretty_json()).unwrap();
        assert!(
            pretty.starts_with("{\n    \"schemaVersion\": 2,\n    \"mediaType\": \"application/vnd.oci.image.index.v1+json\""),
            "{pretty}"
        );
        assert!(ListDocument::parse(b"{\"schemaVersion\":1,\"manifests\":[]}").is_err());
        assert!(ListDocument::parse(
            b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}"
        )
        .is_err());
    }
}
