//! Manifest lists end to end: two images with different platforms in one
//! list (`manifest create` + `add`), pushed to a real `docker-registry`
//! (read back with `skopeo inspect --raw` and `skopeo copy --all`), to OCI
//! layouts, as a docker manifest list, pulled back with `--all-platforms`
//! and pushed again with the same index digest; `bud --manifest`; the
//! store keeping listed images through prune and rmi; a rootless round trip.

mod common;
mod registry_support;

use std::fs;
use std::process::Command;

use common::{Runner, Sandbox};
use registry_support::{raw_manifest, run, Registry, RegistryConfig};

const INSECURE: &str = "--tls-verify=false";

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `img-amd` (amd64) and `img-arm` (arm64/v8) made from busybox with `config --arch`.
fn two_platform_images(sb: &Sandbox) {
    sb.import_busybox();
    for (name, arch) in [("img-amd", "amd64"), ("img-arm", "arm64")] {
        let ctr = format!("c-{arch}");
        sb.ok(&["from", "--name", &ctr, "busybox"]);
        sb.ok(&[
            "config",
            "--arch",
            arch,
            "--label",
            &format!("arch={arch}"),
            &ctr,
        ]);
        sb.ok(&["commit", &ctr, name]);
        sb.ok(&["rm", &ctr]);
    }
}

/// (os, architecture) of every entry of an index, in order.
fn platforms(index: &serde_json::Value) -> Vec<(String, String)> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["os"].as_str().unwrap().to_string(),
                m["platform"]["architecture"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn amd_and_arm() -> Vec<(String, String)> {
    vec![
        ("linux".to_string(), "amd64".to_string()),
        ("linux".to_string(), "arm64".to_string()),
    ]
}

#[test]
fn create_add_inspect_push_and_round_trip_through_a_registry() {
    let reg = Registry::start(RegistryConfig::default());
    let host = reg.host();
    let sb = Sandbox::new(Runner::Root);
    two_platform_images(&sb);

    let id = sb.ok(&["manifest", "create", "multi", "img-amd"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let added = sb.ok(&["manifest", "add", "multi", "img-arm"]);
    assert!(
        added.starts_with(id.trim()) && added.contains(": sha256:"),
        "{added}"
    );
    let inspected = json(&sb.ok(&["manifest", "inspect", "multi"]));
    assert_eq!(
        inspected["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(platforms(&inspected), amd_and_arm());
    // A second `create` of the name is refused; --amend reuses the list.
    let out = sb.rbuild(&["manifest", "create", "multi"]);
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("already exists"),
        "{}",
        common::text(&out)
    );
    assert_eq!(sb.ok(&["manifest", "create", "--amend", "multi"]), id);
    // An image name is not a list name.
    let out = sb.rbuild(&["manifest", "create", "img-amd"]);
    assert!(!out.status.success());

    let digestfile = sb.path().join("digest");
    let out = sb.rbuild(&[
        "manifest",
        "push",
        INSECURE,
        "--digestfile",
        digestfile.to_str().unwrap(),
        "multi",
        &format!("docker://{host}/ml/multi:1"),
    ]);
    common::assert_success(&out, &["manifest push"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("Copying 2 images generated from 2 images in list")
            && log.contains("Writing manifest list to image destination"),
        "{log}"
    );
    let raw = raw_manifest(&format!("{host}/ml/multi:1"), &[]);
    let digest = fs::read_to_string(&digestfile).unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
    let index = json(&raw);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(platforms(&index), amd_and_arm());
    // Each entry is a pushed image whose config says the entry's platform;
    // the layer blob both share went up once.
    for m in index["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        let config = json(&run(Command::new("skopeo")
            .args(["inspect", "--config", "--raw", INSECURE])
            .arg(format!("docker://{host}/ml/multi@{d}"))));
        assert_eq!(config["architecture"], m["platform"]["architecture"]);
    }
    assert!(log.contains("skipped: already exists"), "{log}");

    // skopeo copies every platform out of it.
    let layout = sb.path().join("copied");
    run(Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/ml/multi:1"))
        .arg(format!("oci:{}:multi", layout.display())));
    let top = json(&fs::read_to_string(layout.join("index.json")).unwrap());
    let copied = top["manifests"][0]["digest"].as_str().unwrap().to_string();
    assert_eq!(copied, digest, "skopeo copy --all keeps the index as it is");

    // `rbuild push LIST` to an OCI layout: an index with both platforms.
    let ours = sb.path().join("ours");
    sb.ok(&["push", "multi", &format!("oci:{}:m", ours.display())]);
    let ours_index = json(&run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:m", ours.display()))));
    assert_eq!(platforms(&ours_index), amd_and_arm());

    // --format docker: a docker manifest list of docker manifests.
    sb.ok(&[
        "manifest",
        "push",
        INSECURE,
        "--format",
        "docker",
        "multi",
        &format!("docker://{host}/ml/docker:1"),
    ]);
    let docker = json(&raw_manifest(&format!("{host}/ml/docker:1"), &[]));
    assert_eq!(
        docker["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(platforms(&docker), amd_and_arm());
    for m in docker["manifests"].as_array().unwrap() {
        assert_eq!(
            m["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
    }

    // pull --all-platforms stores it as a list; pushing that elsewhere
    // gives the same index digest (the same bytes).
    let other = Sandbox::new(Runner::Root);
    let out = other.rbuild(&[
        "pull",
        INSECURE,
        "--all-platforms",
        &format!("{host}/ml/multi:1"),
    ]);
    common::assert_success(&out, &["pull --all-platforms"]);
    let pulled = String::from_utf8_lossy(&out.stdout);
    assert_eq!(pulled.trim().len(), 64, "{pulled}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("Copying 2 images generated from 2 images in list") && log.contains("(2/2)"),
        "{log}"
    );
    let again = other.path().join("again");
    other.ok(&[
        "push",
        INSECURE,
        "--digestfile",
        again.to_str().unwrap(),
        &format!("{host}/ml/multi:1"),
        &format!("docker://{host}/ml/copy:2"),
    ]);
    assert_eq!(fs::read_to_string(&again).unwrap(), digest);
    assert_eq!(raw_manifest(&format!("{host}/ml/copy:2"), &[]), raw);
    let pulled_inspect = json(&other.ok(&["manifest", "inspect", &format!("{host}/ml/multi:1")]));
    assert_eq!(pulled_inspect, index);

    // --all=false pushes only the index: fine where its images already are.
    other.ok(&[
        "manifest",
        "push",
        INSECURE,
        "--all=false",
        &format!("{host}/ml/multi:1"),
        &format!("docker://{host}/ml/copy:index-only"),
    ]);
    assert_eq!(
        raw_manifest(&format!("{host}/ml/copy:index-only"), &[]),
        raw
    );
    let out = other.rbuild(&[
        "manifest",
        "push",
        INSECURE,
        "--all=false",
        &format!("{host}/ml/multi:1"),
        &format!("docker://{host}/ml/empty-repo:1"),
    ]);
    assert!(
        !out.status.success(),
        "the images are not in that repository"
    );

    // Listed images have no names but survive prune; rmi refuses them;
    // removing the list lets prune take them.
    let listed = other.ok(&["images", "-q", "--filter", "manifest=false"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    other.ok(&["prune"]);
    assert_eq!(
        other
            .ok(&["images", "-q", "--filter", "manifest=false"])
            .lines()
            .count(),
        2
    );
    let first = listed.lines().next().unwrap().trim();
    let out = other.rbuild(&["rmi", first]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("manifest list") && err.contains("ml/multi"),
        "{err}"
    );
    let rm = other.ok(&["manifest", "rm", &format!("{host}/ml/multi:1")]);
    assert!(rm.contains(&format!("untagged: {host}/ml/multi:1")), "{rm}");
    other.ok(&["prune"]);
    assert_eq!(other.ok(&["images", "-q"]).trim(), "");
    let out = other.rbuild(&["manifest", "inspect", &format!("{host}/ml/multi:1")]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("manifest create"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn add_overrides_the_platform_and_remove_drops_an_entry() {
    let sb = Sandbox::new(Runner::Root);
    two_platform_images(&sb);
    sb.ok(&["manifest", "create", "l"]);
    let added = sb.ok(&[
        "manifest",
        "add",
        "--os",
        "linux",
        "--arch",
        "arm",
        "--variant",
        "v7",
        "--annotation",
        "org.example=yes",
        "l",
        "img-arm",
    ]);
    let digest = added.trim().rsplit(' ').next().unwrap().to_string();
    let index = json(&sb.ok(&["manifest", "inspect", "l"]));
    let entry = &index["manifests"][0];
    assert_eq!(entry["platform"]["architecture"], "arm");
    assert_eq!(entry["platform"]["variant"], "v7");
    assert_eq!(entry["annotations"]["org.example"], "yes");
    assert_eq!(entry["digest"], digest.as_str());
    // Adding the same image again replaces its entry.
    sb.ok(&["manifest", "add", "l", "img-arm"]);
    let index = json(&sb.ok(&["manifest", "inspect", "l"]));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "arm64");
    sb.ok(&["manifest", "remove", "l", &digest]);
    let index = json(&sb.ok(&["manifest", "inspect", "l"]));
    assert!(index["manifests"].as_array().unwrap().is_empty());
    let out = sb.rbuild(&["manifest", "remove", "l", &digest]);
    assert!(!out.status.success());
}

#[test]
fn bud_manifest_adds_each_build_to_the_list() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    for label in ["one", "two"] {
        let ctx = sb.context(
            &format!("ctx-{label}"),
            &[(
                "Containerfile",
                &format!("FROM busybox\nLABEL which={label}\n"),
            )],
        );
        sb.ok(&[
            "bud",
            "-q",
            "--manifest",
            "built",
            "-t",
            &format!("app-{label}"),
            ctx.to_str().unwrap(),
        ]);
    }
    let index = json(&sb.ok(&["manifest", "inspect", "built"]));
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    // Each entry is the built image's manifest.
    for label in ["one", "two"] {
        let inspect = json(&sb.ok(&["inspect", &format!("app-{label}")]));
        let d = inspect["FromImageDigest"].as_str().unwrap();
        assert!(
            entries.iter().any(|e| e["digest"] == d),
            "{d} not in {index}"
        );
    }
}

#[test]
fn rootless_list_round_trip() {
    if !common::rootless_available() {
        eprintln!("note: rootless user missing; rootless manifest test skipped");
        return;
    }
    let reg = Registry::start(RegistryConfig::default());
    let host = reg.host();
    let user = Sandbox::new(Runner::Rootless);
    two_platform_images(&user);
    user.ok(&["manifest", "create", "multi", "img-amd", "img-arm"]);
    let digestfile = user.path().join("digest");
    user.ok(&[
        "manifest",
        "push",
        INSECURE,
        "--digestfile",
        digestfile.to_str().unwrap(),
        "multi",
        &format!("docker://{host}/rl/multi:1"),
    ]);
    let raw = raw_manifest(&format!("{host}/rl/multi:1"), &[]);
    assert_eq!(platforms(&json(&raw)), amd_and_arm());
    let other = Sandbox::new(Runner::Rootless);
    other.ok(&[
        "pull",
        INSECURE,
        "--all-platforms",
        &format!("{host}/rl/multi:1"),
    ]);
    other.ok(&[
        "manifest",
        "push",
        INSECURE,
        &format!("{host}/rl/multi:1"),
        &format!("docker://{host}/rl/copy:1"),
    ]);
    assert_eq!(raw_manifest(&format!("{host}/rl/copy:1"), &[]), raw);
}

#[test]
fn rmi_removes_lists_and_refuses_images_they_hold() {
    let sb = Sandbox::new(Runner::Root);
    two_platform_images(&sb);
    sb.ok(&["manifest", "create", "multi", "img-amd", "img-arm"]);
    sb.ok(&["manifest", "create", "other", "img-amd"]);
    assert!(sb.rbuild(&["manifest", "exists", "multi"]).status.success());
    assert_eq!(
        sb.rbuild(&["manifest", "exists", "nothing"]).status.code(),
        Some(1)
    );
    let out = sb.rbuild(&["rmi", "img-amd"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("localhost/multi:latest") && err.contains("localhost/other:latest"),
        "{err}"
    );
    assert!(sb.ok(&["images"]).contains("img-amd"), "still there");
    // A list's name removes the list; then the image can go.
    let out = sb.ok(&["rmi", "other"]);
    assert!(out.contains("untagged: localhost/other:latest"), "{out}");
    assert_eq!(
        sb.rbuild(&["manifest", "exists", "other"]).status.code(),
        Some(1)
    );
    sb.ok(&["rmi", "--all"]);
    assert_eq!(sb.ok(&["images", "-q"]).trim(), "");
    assert_eq!(
        sb.rbuild(&["manifest", "exists", "multi"]).status.code(),
        Some(1)
    );
}
