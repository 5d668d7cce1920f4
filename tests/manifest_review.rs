//! Manifest lists under the conditions a review found broken: parallel
//! `manifest add` and `bud --manifest` into one list (all land), a name
//! moving between an image and a list, a failed `manifest create` leaving
//! nothing, `manifest rm` leaving blobs for `prune`, the build lease
//! protecting an unnamed image, `manifest inspect` of a registry
//! reference, and `--policy missing` pulling when a local list lacks the
//! wanted platform.

mod common;
mod registry_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{shared_binary, Runner, Sandbox};
use registry_support::{Registry, RegistryConfig};

const INSECURE: &str = "--tls-verify=false";

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Starts `rbuild ARGS` on the sandbox's store without waiting for it.
fn spawn(sb: &Sandbox, args: &[&str]) -> Child {
    let mut cmd: Command = sb.command(shared_binary());
    cmd.arg("--root").arg(sb.store());
    cmd.arg("--runroot").arg(sb.path().join("run"));
    cmd.args(args);
    cmd.current_dir(sb.path());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// Waits for every child; asserts each succeeded.
fn all_succeed(children: Vec<(String, Child)>) {
    for (what, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The manifest digests of a local list's entries.
fn entries(sb: &Sandbox, list: &str) -> Vec<String> {
    json(&sb.ok(&["manifest", "inspect", list]))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect()
}

/// `img-0` … `img-{n-1}`: busybox with a label each, so each has its own
/// manifest.
fn labelled_images(sb: &Sandbox, n: usize) {
    sb.import_busybox();
    for i in 0..n {
        sb.build(
            &format!("img-{i}"),
            &format!("FROM busybox\nLABEL n={i}\n"),
            &[],
            &["-q"],
        );
    }
}

fn manifest_digest(sb: &Sandbox, image: &str) -> String {
    let filter = format!("reference={image}");
    sb.ok(&["images", "--filter", &filter, "--format", "{{.Digest}}"])
        .trim()
        .to_string()
}

const PARALLEL: usize = 6;

#[test]
fn parallel_manifest_adds_all_land() {
    let sb = Sandbox::new(Runner::Root);
    labelled_images(&sb, PARALLEL);
    sb.ok(&["manifest", "create", "together"]);
    let children = (0..PARALLEL)
        .map(|i| {
            let image = format!("img-{i}");
            let child = spawn(&sb, &["manifest", "add", "together", &image]);
            (format!("manifest add together {image}"), child)
        })
        .collect();
    all_succeed(children);
    let mut listed = entries(&sb, "together");
    listed.sort();
    let mut want: Vec<String> = (0..PARALLEL)
        .map(|i| manifest_digest(&sb, &format!("img-{i}")))
        .collect();
    want.sort();
    assert_eq!(listed, want);
}

#[test]
fn parallel_bud_manifest_into_a_new_list_all_land() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let contexts: Vec<String> = (0..PARALLEL)
        .map(|i| {
            let name = format!("ctx-{i}");
            let dir = sb.context(
                &name,
                &[("Containerfile", &format!("FROM busybox\nLABEL arch={i}\n"))],
            );
            dir.to_str().unwrap().to_string()
        })
        .collect();
    // Nobody has made the list: the first creates win and lose races.
    let children = contexts
        .iter()
        .map(|ctx| {
            let child = spawn(&sb, &["bud", "-q", "--manifest", "ci-list", ctx]);
            (format!("bud --manifest ci-list {ctx}"), child)
        })
        .collect();
    all_succeed(children);
    assert_eq!(entries(&sb, "ci-list").len(), PARALLEL);
    // Every built image is in the list, unnamed, and survives prune.
    sb.ok(&["prune"]);
    assert_eq!(
        sb.ok(&["images", "-q", "--filter", "manifest=false"])
            .lines()
            .count(),
        PARALLEL + 1,
        "busybox and the {PARALLEL} built images"
    );
}

#[test]
fn a_name_moves_from_a_list_to_an_image() {
    let sb = Sandbox::new(Runner::Root);
    labelled_images(&sb, 2);
    for how in ["tag", "bud", "commit", "import"] {
        let name = format!("moved-{how}");
        sb.ok(&["manifest", "create", &name, "img-0"]);
        match how {
            "tag" => {
                sb.ok(&["tag", "img-1", &name]);
            }
            "bud" => {
                sb.build(&name, "FROM busybox\nLABEL by=bud\n", &[], &["-q"]);
            }
            "commit" => {
                let ctr = sb.ok(&["from", "img-1"]);
                sb.ok(&["commit", ctr.trim(), &name]);
                sb.ok(&["rm", ctr.trim()]);
            }
            _ => {
                let tar = common::busybox_tarball();
                sb.ok(&["import", tar.to_str().unwrap(), &name]);
            }
        }
        // The list gave the name up: one row, `manifest exists` says no,
        // and rmi removes the image.
        let rows = sb.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert_eq!(
            rows.lines()
                .filter(|r| r.contains(&format!("/{name}:")))
                .count(),
            1,
            "{how}: {rows}"
        );
        let out = sb.rbuild(&["manifest", "exists", &name]);
        assert_eq!(out.status.code(), Some(1), "{how}");
        sb.ok(&["rmi", &name]);
        assert!(!sb.rbuild(&["inspect", &name]).status.success(), "{how}");
    }
}

#[test]
fn a_failed_create_leaves_no_list() {
    let sb = Sandbox::new(Runner::Root);
    labelled_images(&sb, 2);
    let out = sb.fails(&["manifest", "create", "half", "img-0", "no-such-image"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-image") && err.contains("localhost/half:latest"),
        "{err}"
    );
    assert_eq!(
        sb.rbuild(&["manifest", "exists", "half"]).status.code(),
        Some(1)
    );
    sb.ok(&["manifest", "create", "half", "img-0", "img-1"]);
    assert_eq!(entries(&sb, "half").len(), 2);
}

/// The index blob a list names, from the store's lists.json.
fn index_blob(store: &Path, name: &str) -> std::path::PathBuf {
    let lists = json(&std::fs::read_to_string(store.join("images/lists.json")).unwrap());
    let digest = lists[name]["index"].as_str().unwrap().to_string();
    store
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn manifest_rm_by_id_prefix_leaves_blobs_for_prune() {
    let sb = Sandbox::new(Runner::Root);
    labelled_images(&sb, 1);
    let id = sb.ok(&["manifest", "create", "gone", "img-0"]);
    let blob = index_blob(&sb.store(), "localhost/gone:latest");
    assert!(blob.is_file());
    // Every list command takes a list ID prefix.
    assert!(sb
        .ok(&["manifest", "inspect", &id[..10]])
        .contains("manifests"));
    let rm = sb.ok(&["manifest", "rm", &id[..10]]);
    assert_eq!(rm, format!("untagged: localhost/gone:latest\n{id}"));
    assert!(
        blob.is_file(),
        "buildah's manifest rm removes only the list"
    );
    sb.ok(&["prune"]);
    assert!(!blob.is_file(), "prune takes what only the list held");
}

#[test]
fn the_build_lease_protects_an_unnamed_image_from_prune() {
    use rbuild::build::write_image;
    use rbuild::image::manifest::ManifestFormat;
    let dir = tempfile::tempdir().unwrap();
    let store = rbuild::store::Store::open(dir.path()).unwrap();
    let lease = store.lease().unwrap();
    let rec = write_image(
        &store,
        &lease,
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        &[],
        ManifestFormat::Oci,
        &Default::default(),
        Vec::new(),
    )
    .unwrap();
    // A prune between the record's write and the list edit keeps it.
    store.prune().unwrap();
    assert!(store.image(&rec.id).is_ok(), "pruned while leased");
    drop(lease);
    assert_eq!(store.prune().unwrap().images_removed, vec![rec.id]);
}

#[test]
fn manifest_inspect_reads_a_registry_reference() {
    let reg = Registry::start(RegistryConfig::default());
    let host = reg.host();
    let sb = Sandbox::new(Runner::Root);
    labelled_images(&sb, 2);
    sb.ok(&["manifest", "create", "both", "img-0", "img-1"]);
    let remote = format!("{host}/review/both:1");
    sb.ok(&[
        "manifest",
        "push",
        INSECURE,
        "both",
        &format!("docker://{remote}"),
    ]);
    sb.ok(&[
        "push",
        INSECURE,
        "img-0",
        &format!("docker://{host}/review/one:1"),
    ]);
    // A local list of the same name, with one entry, is what a plain name reads.
    sb.ok(&["manifest", "create", &remote, "img-0"]);
    assert_eq!(entries(&sb, &remote).len(), 1);

    let other = Sandbox::new(Runner::Root);
    for reference in [remote.clone(), format!("docker://{remote}")] {
        let text = other.ok(&["manifest", "inspect", INSECURE, &reference]);
        assert!(text.starts_with("{\n    \"schemaVersion\": 2,"), "{text}");
        assert_eq!(json(&text)["manifests"].as_array().unwrap().len(), 2);
    }
    // docker:// always asks the registry, even with a local list.
    let text = sb.ok(&[
        "manifest",
        "inspect",
        INSECURE,
        &format!("docker://{remote}"),
    ]);
    assert_eq!(json(&text)["manifests"].as_array().unwrap().len(), 2);
    // A single image's manifest, indented as buildah prints it.
    let text = other.ok(&[
        "manifest",
        "inspect",
        INSECURE,
        &format!("{host}/review/one:1"),
    ]);
    assert!(text.starts_with("{\n    \"schemaVersion\": 2,"), "{text}");
    assert!(json(&text)["config"]["digest"].is_string(), "{text}");
    // Neither local nor in the registry: the hint says both.
    let out = other.fails(&[
        "manifest",
        "inspect",
        INSECURE,
        &format!("{host}/review/none:1"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("local storage")
            && err.contains("manifest create")
            && err.contains("registry"),
        "{err}"
    );
    // Without --tls-verify=false the plain-HTTP registry is refused.
    other.fails(&["manifest", "inspect", &format!("docker://{remote}")]);
}

#[test]
fn pull_missing_fetches_a_platform_a_local_list_lacks() {
    let reg = Registry::start(RegistryConfig::default());
    let host = reg.host();
    let sb = Sandbox::new(Runner::Root);
    labelled_images(&sb, 1);
    // img-0 (this host's platform) and img-arm (arm64) in the registry.
    let ctr = sb.ok(&["from", "img-0"]);
    sb.ok(&["config", "--arch", "arm64", ctr.trim()]);
    sb.ok(&["commit", ctr.trim(), "img-arm"]);
    sb.ok(&["rm", ctr.trim()]);
    let remote = format!("{host}/review/multi:1");
    sb.ok(&["manifest", "create", "full", "img-0", "img-arm"]);
    sb.ok(&[
        "manifest",
        "push",
        INSECURE,
        "full",
        &format!("docker://{remote}"),
    ]);
    let arm_id = sb.ok(&["inspect", "--format", "{{.FromImageID}}", "img-arm"]);

    let other = Sandbox::new(Runner::Root);
    other.ok(&["pull", INSECURE, "--all-platforms", &remote]);
    let index = json(&other.ok(&["manifest", "inspect", &remote]));
    let arm_entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    other.ok(&["manifest", "remove", &remote, &arm_entry]);
    // "never": the clear error naming what the list has.
    let out = other.fails(&[
        "pull",
        INSECURE,
        "--policy",
        "never",
        "--platform",
        "linux/arm64",
        &remote,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("linux/arm64") && err.contains("never"),
        "{err}"
    );
    // "missing": a list without the platform counts as missing, so it pulls.
    let pulled = other.ok(&[
        "pull",
        INSECURE,
        "-q",
        "--policy",
        "missing",
        "--platform",
        "linux/arm64",
        &remote,
    ]);
    assert_eq!(
        pulled.trim().trim_start_matches("sha256:"),
        arm_id.trim().trim_start_matches("sha256:")
    );
}

#[test]
fn rootless_parallel_manifest_adds_all_land() {
    if !common::rootless_available() {
        eprintln!("skipped: no rootless setup");
        return;
    }
    let sb = Sandbox::new(Runner::Rootless);
    labelled_images(&sb, 3);
    sb.ok(&["manifest", "create", "together"]);
    let children = (0..3)
        .map(|i| {
            let image = format!("img-{i}");
            let child = spawn(&sb, &["manifest", "add", "together", &image]);
            (format!("manifest add together {image}"), child)
        })
        .collect();
    all_succeed(children);
    assert_eq!(entries(&sb, "together").len(), 3);
    sb.ok(&["tag", "img-0", "together"]);
    assert_eq!(
        sb.rbuild(&["manifest", "exists", "together"]).status.code(),
        Some(1)
    );
}

#[test]
fn manifest_inspect_of_a_registry_reference_uses_the_credentials() {
    let reg = Registry::start(RegistryConfig {
        htpasswd: Some(("carol".into(), "pw".into())),
        ..RegistryConfig::default()
    });
    let host = reg.host();
    let sb = Sandbox::new(Runner::Root);
    labelled_images(&sb, 2);
    sb.ok(&["manifest", "create", "both", "img-0", "img-1"]);
    let remote = format!("docker://{host}/review/private:1");
    sb.ok(&[
        "manifest", "push", INSECURE, "--creds", "carol:pw", "both", &remote,
    ]);
    sb.fails(&["manifest", "inspect", INSECURE, &remote]);
    let authfile = sb.write(
        "auth.json",
        format!(
            r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
            "Y2Fyb2w6cHc=" // carol:pw
        ),
    );
    for creds in [
        vec!["--creds", "carol:pw"],
        vec!["--authfile", authfile.to_str().unwrap()],
    ] {
        let mut args = vec!["manifest", "inspect", INSECURE];
        args.extend(creds);
        args.push(&remote);
        let text = sb.ok(&args);
        assert_eq!(json(&text)["manifests"].as_array().unwrap().len(), 2);
    }
}
