//! Finding a stored image or manifest list by what a user typed: an ID, an
//! ID prefix, or a name matched the way buildah and podman match names
//! (`app` finds `localhost/app:latest`, `busybox` finds
//! `docker.io/library/busybox`).
//!
//! A name may be a manifest list. Commands that need one image (`from`,
//! `FROM` in `bud`, `inspect`, `history`, `push` of an image) get the list's
//! image for the wanted platform (the host's unless the command has
//! `--platform`), as libimage's `LookupImage` resolves a list to its
//! matching instance; commands that act on the name itself (`tag`, `rmi`,
//! `push`) use [`lookup`] and see the list. This is the one place that
//! resolution happens.

use crate::image::Platform;
use crate::reference::{normalize_docker, normalize_local, Reference};
use crate::registry::platform::{platform_string, Index};
use crate::store::{ImageRecord, ManifestList, Store, StoreError};

/// What a name names: an image, or a manifest list.
#[derive(Debug, Clone)]
pub enum Found {
    Image(ImageRecord),
    List(ManifestList),
}

/// The names a user's `name` may be stored under, most specific first.
fn candidates(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    if let Ok(r) = normalize_local(name) {
        out.push(r.to_string());
    }
    if let Ok(r) = normalize_docker(name) {
        out.push(r.to_string());
    }
    out
}

/// The image or list `name_or_id` names: an image name or ID first (as
/// before lists existed), then a list name, a list ID prefix, and last a
/// short name matched by repository suffix against both.
pub fn lookup(store: &Store, name_or_id: &str) -> Result<Found, StoreError> {
    let names = candidates(name_or_id);
    match store.resolve_image_with(name_or_id, &names[1..]) {
        Err(StoreError::ImageNotFound(_)) => {}
        other => return other.map(Found::Image),
    }
    let lists = store.lists()?;
    if let Some(l) = names
        .iter()
        .find_map(|c| lists.iter().find(|l| l.name == *c))
    {
        return Ok(Found::List(l.clone()));
    }
    if let Some(l) = list_by_id(&lists, name_or_id) {
        return Ok(Found::List(l.clone()));
    }
    // A short name may match a stored name by repository suffix.
    if let Ok(typed) = Reference::parse(name_or_id) {
        let images = store.images()?;
        let mut stored: Vec<(Reference, Found)> = Vec::new();
        for rec in &images {
            for n in &rec.names {
                if let Ok(r) = Reference::parse(n) {
                    stored.push((r, Found::Image(rec.clone())));
                }
            }
        }
        for l in &lists {
            if let Ok(r) = Reference::parse(&l.name) {
                stored.push((r, Found::List(l.clone())));
            }
        }
        let refs: Vec<&Reference> = stored.iter().map(|(r, _)| r).collect();
        if let Some((best, _)) = typed.best_match(refs) {
            if let Some((_, found)) = stored.iter().find(|(r, _)| r == best) {
                return Ok(found.clone());
            }
        }
    }
    Err(StoreError::ImageNotFound(name_or_id.to_string()))
}

/// The one list whose ID starts with `id` (at least 3 hex digits, with or
/// without `sha256:`).
fn list_by_id<'a>(lists: &'a [ManifestList], id: &str) -> Option<&'a ManifestList> {
    let bare = id.strip_prefix("sha256:").unwrap_or(id);
    if bare.len() < 3 || !bare.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut found = lists.iter().filter(|l| l.id.hex().starts_with(bare));
    match (found.next(), found.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// The stored image `name_or_id` names; a manifest list gives its image for
/// the host's platform.
pub fn lookup_image(store: &Store, name_or_id: &str) -> Result<ImageRecord, StoreError> {
    lookup_image_for(store, name_or_id, &Platform::host())
}

/// The stored image `name_or_id` names; a manifest list gives its image for
/// `platform`, or an error naming the platforms it has.
pub fn lookup_image_for(
    store: &Store,
    name_or_id: &str,
    platform: &Platform,
) -> Result<ImageRecord, StoreError> {
    match lookup(store, name_or_id)? {
        Found::Image(rec) => Ok(rec),
        Found::List(list) => list_image(store, &list, platform),
    }
}

/// The list a user names (never an image): by name, exact, then as buildah
/// normalises a local name (`list` → `localhost/list:latest`), then
/// docker's normalisation; else by a unique list ID prefix.
pub fn lookup_list(store: &Store, name_or_id: &str) -> Result<ManifestList, StoreError> {
    let lists = store.lists()?;
    candidates(name_or_id)
        .iter()
        .find_map(|c| lists.iter().find(|l| l.name == *c))
        .or_else(|| list_by_id(&lists, name_or_id))
        .cloned()
        .ok_or_else(|| StoreError::ListNotFound(name_or_id.to_string()))
}

/// The image of `list` for `platform`: the index entry matching it (same
/// OS and architecture; the variant when asked, an ARM default otherwise),
/// among the entries that are images (attestations never match).
pub fn list_image(
    store: &Store,
    list: &ManifestList,
    platform: &Platform,
) -> Result<ImageRecord, StoreError> {
    let path = store.blob_path(&list.index);
    let mut index: Index = serde_json::from_slice(&store.read_blob(&list.index)?).map_err(|e| {
        StoreError::Corrupt {
            path: path.clone(),
            reason: format!("the index of manifest list {:?}: {e}", list.name),
        }
    })?;
    index
        .manifests
        .retain(|e| list.image_for(&e.digest).is_some());
    let image = index
        .select(platform)
        .and_then(|e| list.image_for(&e.digest));
    match image {
        Some(id) => store.image(&id),
        None => Err(StoreError::ListNoInstance {
            list: list.name.clone(),
            wanted: platform_string(platform),
            available: index.platforms(),
        }),
    }
}

/// The name an image built or tagged as `name` is stored under
/// (`app` → `localhost/app:latest`, buildah's rule).
pub fn local_name(name: &str) -> Result<String, crate::reference::ReferenceError> {
    normalize_local(name).map(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::store::ListInstance;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    fn image(s: &Store, config: &[u8], names: &[&str]) -> ImageRecord {
        let id = s.put_blob(config).unwrap();
        let manifest = s.put_blob(format!("manifest of {id}").as_bytes()).unwrap();
        let rec = ImageRecord {
            id,
            names: names.iter().map(|n| n.to_string()).collect(),
            manifest,
            index: None,
            top_layer: None,
            layers: vec![],
            created: crate::store::now_rfc3339(),
            size: 1,
        };
        s.put_image(&rec).unwrap();
        rec
    }

    /// A list `name` whose index lists each image under `os/arch[/variant]`,
    /// plus an attestation entry (`unknown/unknown`) without an image.
    fn list(s: &Store, name: &str, images: &[(&ImageRecord, &str)]) -> ManifestList {
        let mut entries: Vec<String> = images
            .iter()
            .map(|(rec, platform)| {
                let p: Vec<&str> = platform.split('/').collect();
                let variant = p
                    .get(2)
                    .map(|v| format!(",\"variant\":\"{v}\""))
                    .unwrap_or_default();
                format!(
                    r#"{{"mediaType":"m","digest":"{}","size":1,"platform":{{"os":"{}","architecture":"{}"{variant}}}}}"#,
                    rec.manifest, p[0], p[1]
                )
            })
            .collect();
        let attestation = s.put_blob(b"attestation").unwrap();
        entries.push(format!(
            r#"{{"mediaType":"m","digest":"{attestation}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}}}}"#
        ));
        let index = s
            .put_blob(
                format!(
                    r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
                    entries.join(",")
                )
                .as_bytes(),
            )
            .unwrap();
        let l = ManifestList {
            name: name.to_string(),
            id: Digest::of(name.as_bytes()),
            index,
            instances: images
                .iter()
                .map(|(rec, _)| ListInstance {
                    manifest: rec.manifest,
                    image: rec.id,
                })
                .collect(),
            artifacts: vec![crate::store::ListArtifact {
                manifest: attestation,
                blobs: vec![],
            }],
            created: crate::store::now_rfc3339(),
        };
        s.create_list(&l).unwrap();
        l
    }

    fn platform(s: &str) -> Platform {
        crate::registry::parse_platform(s).unwrap()
    }

    #[test]
    fn a_list_name_gives_the_image_for_the_platform() {
        let (_t, s) = store();
        let amd = image(&s, b"amd", &[]);
        let arm = image(&s, b"arm", &[]);
        let arm7 = image(&s, b"arm7", &[]);
        list(
            &s,
            "localhost/multi:latest",
            &[
                (&amd, "linux/amd64"),
                (&arm, "linux/arm64/v8"),
                (&arm7, "linux/arm/v7"),
            ],
        );
        let id_for = |name: &str, p: &str| lookup_image_for(&s, name, &platform(p)).unwrap().id;
        assert_eq!(id_for("multi", "linux/amd64"), amd.id);
        assert_eq!(id_for("localhost/multi", "linux/arm64"), arm.id);
        assert_eq!(id_for("localhost/multi:latest", "linux/arm64/v8"), arm.id);
        assert_eq!(id_for("multi", "linux/arm"), arm7.id);
        // By list ID prefix, too.
        let hex = Digest::of(b"localhost/multi:latest").hex().to_string();
        assert_eq!(id_for(&hex[..8], "linux/amd64"), amd.id);
        assert!(
            matches!(lookup(&s, "multi").unwrap(), Found::List(l) if l.name == "localhost/multi:latest")
        );
    }

    #[test]
    fn no_matching_platform_names_the_ones_there() {
        let (_t, s) = store();
        let arm = image(&s, b"arm", &[]);
        list(&s, "localhost/only-arm:latest", &[(&arm, "linux/arm64")]);
        let err = lookup_image_for(&s, "only-arm", &platform("linux/amd64")).unwrap_err();
        assert!(!err.is_not_found(), "a clear error, not a pull");
        let text = err.to_string();
        assert!(
            text.contains("localhost/only-arm:latest")
                && text.contains("linux/amd64")
                && text.contains("linux/arm64")
                && !text.contains("unknown"),
            "{text}"
        );
        // The attestation entry never stands in for a platform.
        let err = lookup_image_for(&s, "only-arm", &platform("unknown/unknown")).unwrap_err();
        assert!(matches!(err, StoreError::ListNoInstance { .. }), "{err}");
    }

    #[test]
    fn image_names_come_first_and_short_names_find_lists() {
        let (_t, s) = store();
        let named = image(&s, b"named", &["localhost/app:latest"]);
        let amd = image(&s, b"amd", &[]);
        list(&s, "quay.io/team/tool:v1", &[(&amd, "linux/amd64")]);
        assert!(matches!(lookup(&s, "app").unwrap(), Found::Image(r) if r.id == named.id));
        assert_eq!(
            lookup_image_for(&s, "tool:v1", &platform("linux/amd64"))
                .unwrap()
                .id,
            amd.id
        );
        assert_eq!(
            lookup_list(&s, "quay.io/team/tool:v1").unwrap().name,
            "quay.io/team/tool:v1"
        );
        assert!(lookup_list(&s, "app").unwrap_err().is_not_found());
        let id = Digest::of(b"quay.io/team/tool:v1");
        assert_eq!(
            lookup_list(&s, &id.hex()[..6]).unwrap().name,
            "quay.io/team/tool:v1"
        );
        assert_eq!(
            lookup_list(&s, &id.to_string()).unwrap().name,
            "quay.io/team/tool:v1"
        );
        assert!(lookup_list(&s, &named.id.hex()[..12])
            .unwrap_err()
            .is_not_found());
        assert!(lookup(&s, "nothing").unwrap_err().is_not_found());
    }
}
