//! A pulled layer is keyed by the registry's diff ID (checked while
//! extracting, never recomputed from the extracted tree): its chain IDs are
//! the image's own, the store stays consistent, and the image still pushes
//! back its very blobs, also with layers another tool's tar writer made.

mod common;
mod registry_support;

use std::fs;
use std::process::Command;

use common::{Runner, Sandbox};
use rbuild::digest::Digest;
use rbuild::store::{ChainId, Store};
use registry_support::{raw_manifest, run, Registry, RegistryConfig};

const INSECURE: &str = "--tls-verify=false";

/// Pushes a two-layer image made by umoci (not rbuild's tar writer) to
/// `dest` on the registry.
fn push_umoci_image(sb: &Sandbox, dest: &str) {
    let layout = sb.path().join("umoci-layout");
    let image = format!("{}:x", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    for (i, name) in ["first", "second"].iter().enumerate() {
        let bundle = sb.path().join(format!("bundle{i}"));
        run(Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle));
        let dir = bundle.join("rootfs/data");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), format!("{name} layer\n").repeat(100)).unwrap();
        run(Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle));
    }
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{image}"))
        .arg(format!("docker://{dest}")));
}

#[test]
fn pulled_layers_are_keyed_by_the_registrys_diff_ids() {
    let reg = Registry::start(RegistryConfig::default());
    let host = reg.host();
    let sb = Sandbox::new(Runner::Root);
    let source = format!("{host}/keying/umoci:1");
    push_umoci_image(&sb, &source);

    let id = sb.ok(&["pull", INSECURE, &source]);
    let store = Store::open(&sb.store()).unwrap();
    let record = store.image(&Digest::from_hex(id.trim()).unwrap()).unwrap();
    let config = sb.config(&source);
    let diff_ids: Vec<Digest> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(record.layers.len(), diff_ids.len());
    let mut parent: Option<ChainId> = None;
    for (chain, diff_id) in record.layers.iter().zip(&diff_ids) {
        let meta = store.layer_meta(chain).unwrap();
        assert_eq!(meta.diff_id, *diff_id, "layer {chain}");
        // The OCI chain ID of the image itself.
        assert_eq!(*chain, ChainId::new(parent.as_ref(), diff_id));
        parent = Some(*chain);
    }
    let problems = store.fsck().unwrap();
    assert!(problems.is_empty(), "the store is consistent: {problems:?}");

    // The original blobs go back: config and layer descriptors are the
    // same bytes (umoci's manifest has no mediaType field; rbuild writes one).
    let again = format!("{host}/keying/again:1");
    sb.ok(&["push", INSECURE, &source, &format!("docker://{again}")]);
    let manifest = |image: &str| -> serde_json::Value {
        serde_json::from_str(&raw_manifest(image, &[])).unwrap()
    };
    let (before, after) = (manifest(&source), manifest(&again));
    assert_eq!(before["config"], after["config"]);
    assert_eq!(before["layers"], after["layers"]);

    // A second pull reuses every layer.
    let out = sb.rbuild(&["pull", INSECURE, "--policy", "always", &again]);
    common::assert_success(&out, &["pull again"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("skipped: already exists").count(), 2, "{err}");
    assert_eq!(store.layers().unwrap().len(), 2, "no layer made twice");
}
