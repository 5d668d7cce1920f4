//! A manifest list's name wherever a buildah user types an image name:
//! `images` lists lists (`--filter manifest=`, `{{.IsManifestList}}`,
//! `-q`, `--json`, `reference=`, `dangling=`); `from`, `FROM` in `bud`,
//! `inspect` and `history` resolve a list to its image for the host's
//! platform (and say which platforms it has when none matches); `inspect
//! --type manifest` prints the list; `tag LIST NEW` tags the list, and the
//! names of one list stay one list; a rootless run of the same.

mod common;

use common::{Runner, Sandbox};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The host's architecture in Go's names (the tests run on amd64 or arm64).
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

fn other_arch() -> &'static str {
    if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    }
}

/// `img-amd64` and `img-arm64` made from busybox with `config --arch`, each
/// labelled with its architecture.
fn two_platform_images(sb: &Sandbox) {
    sb.import_busybox();
    for arch in ["amd64", "arm64"] {
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
        sb.ok(&["commit", &ctr, &format!("img-{arch}")]);
        sb.ok(&["rm", &ctr]);
    }
}

fn image_id(sb: &Sandbox, name: &str) -> String {
    sb.ok(&["inspect", "--format", "{{.FromImageID}}", name])
        .trim()
        .to_string()
}

#[test]
fn images_lists_manifest_lists() {
    let sb = Sandbox::new(Runner::Root);
    two_platform_images(&sb);
    let list_id = sb.ok(&["manifest", "create", "multi", "img-amd64", "img-arm64"]);
    let list_id = list_id.trim();

    let table = sb.ok(&["images"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("localhost/multi "))
        .unwrap_or_else(|| panic!("no list row:\n{table}"));
    assert!(
        row.contains(&list_id[..12]) && row.contains("latest"),
        "{row}"
    );

    let kinds = sb.ok(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.IsManifestList}}",
    ]);
    // buildah aligns a template's space-separated fields in columns.
    let kinds: String = kinds
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    assert!(kinds.contains("localhost/multi:latest true"), "{kinds}");
    assert!(
        kinds.contains("localhost/img-amd64:latest false"),
        "{kinds}"
    );

    assert_eq!(
        sb.ok(&["images", "-q", "--no-trunc", "--filter", "manifest=true"])
            .trim(),
        format!("sha256:{list_id}")
    );
    let images_only = sb.ok(&["images", "-q", "--filter", "manifest=false"]);
    assert!(!images_only.contains(&list_id[..12]), "{images_only}");
    assert_eq!(images_only.lines().count(), 3, "busybox and two images");
    let all = sb.ok(&["images", "-q"]);
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(all.contains(&list_id[..12]), "{all}");

    let by_ref = sb.ok(&[
        "images",
        "--format",
        "{{.Repository}}",
        "--filter",
        "reference=multi",
    ]);
    assert_eq!(by_ref.trim(), "localhost/multi");
    let dangling = sb.ok(&["images", "-q", "--filter", "dangling=true"]);
    assert!(!dangling.contains(&list_id[..12]), "{dangling}");
    let labelled = sb.ok(&["images", "-q", "--filter", "label=arch"]);
    assert_eq!(labelled.lines().count(), 2, "lists have no labels");

    // --json: the list's row carries the index digest.
    let rows = json(&sb.ok(&["images", "--json", "--filter", "manifest=true"]));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["ismanifestlist"], true);
    assert_eq!(
        rows[0]["names"],
        serde_json::json!(["localhost/multi:latest"])
    );
    // The digest is the index blob's, whose bytes `manifest inspect` shows.
    let digest = rows[0]["digest"].as_str().unwrap();
    let blob = sb
        .store()
        .join("blobs/sha256")
        .join(&digest["sha256:".len()..]);
    let stored = std::fs::read(&blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    assert_eq!(
        json(&String::from_utf8(stored).unwrap()),
        json(&sb.ok(&["manifest", "inspect", "multi"]))
    );
    let bad = sb.fails(&["images", "--filter", "manifest=maybe"]);
    assert!(common::text(&bad).contains("true or false"));
}

#[test]
fn a_list_name_resolves_to_the_hosts_image() {
    let sb = Sandbox::new(Runner::Root);
    two_platform_images(&sb);
    sb.ok(&["manifest", "create", "multi", "img-amd64", "img-arm64"]);
    let host_image = format!("img-{}", host_arch());
    let host_id = image_id(&sb, &host_image);

    // inspect: the host's image; --type manifest: the list.
    assert_eq!(image_id(&sb, "multi"), host_id);
    let labels = sb.ok(&["inspect", "--format", "{{.OCIv1.Config.Labels}}", "multi"]);
    assert!(labels.contains(host_arch()), "{labels}");
    let listed = json(&sb.ok(&["inspect", "--type", "manifest", "multi"]));
    assert_eq!(listed, json(&sb.ok(&["manifest", "inspect", "multi"])));
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 2);
    let not_a_list = sb.fails(&["inspect", "--type", "manifest", &host_image]);
    assert!(common::text(&not_a_list).contains("manifest list"));

    // history: the host image's history.
    assert_eq!(
        sb.ok(&["history", "--no-trunc", "-q", "multi"]),
        sb.ok(&["history", "--no-trunc", "-q", &host_image])
    );

    // from: a working container of the host's image, named after the list.
    let ctr = sb.ok(&["from", "--pull=never", "multi"]);
    assert_eq!(ctr.trim(), "multi-working-container");
    let c = json(&sb.ok(&["inspect", "--type", "container", ctr.trim()]));
    assert_eq!(c["FromImageID"].as_str().unwrap(), host_id);

    // FROM in bud.
    sb.build(
        "built",
        "FROM multi\nRUN echo built > /built\n",
        &[],
        &["-q", "--pull=never"],
    );
    let built = sb.config("built");
    assert_eq!(built["config"]["Labels"]["arch"], host_arch(), "{built}");
}

#[test]
fn a_list_without_the_hosts_platform_says_what_it_has() {
    let sb = Sandbox::new(Runner::Root);
    two_platform_images(&sb);
    let foreign = format!("img-{}", other_arch());
    sb.ok(&["manifest", "create", "foreign", &foreign]);

    let out = sb.fails(&["from", "--pull=never", "foreign"]);
    let err = common::text(&out);
    assert!(
        err.contains("localhost/foreign:latest")
            && err.contains(&format!("linux/{}", host_arch()))
            && err.contains(&format!("linux/{}", other_arch())),
        "{err}"
    );
    let ctx = sb.context("ctx-foreign", &[("Containerfile", "FROM foreign\n")]);
    let out = sb.fails(&["bud", "--pull=never", "-t", "x", ctx.to_str().unwrap()]);
    let err = common::text(&out);
    assert!(err.contains(&format!("linux/{}", other_arch())), "{err}");
    let out = sb.fails(&["history", "foreign"]);
    assert!(common::text(&out).contains("has no image for platform"));
    let out = sb.fails(&["inspect", "--type", "image", "foreign"]);
    assert!(common::text(&out).contains("has no image for platform"));
    // from --platform takes the image the list has for that platform.
    let platform = format!("linux/{}", other_arch());
    let ctr = sb.ok(&["from", "--pull=never", "--platform", &platform, "foreign"]);
    let c = json(&sb.ok(&["inspect", "--type", "container", ctr.trim()]));
    assert_eq!(c["FromImageID"].as_str().unwrap(), image_id(&sb, &foreign));
    // Without --type, inspect falls back to the list itself, as buildah does.
    let shown = json(&sb.ok(&["inspect", "foreign"]));
    assert_eq!(
        shown["manifests"][0]["platform"]["architecture"],
        other_arch()
    );
}

#[test]
fn tag_names_the_list_and_its_names_stay_one_list() {
    let sb = Sandbox::new(Runner::Root);
    two_platform_images(&sb);
    let id = sb.ok(&["manifest", "create", "multi", "img-amd64", "img-arm64"]);
    sb.ok(&["tag", "multi", "multi2", "registry.example/team/multi:v1"]);

    let rows = sb.ok(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
        "--filter",
        "manifest=true",
    ]);
    // buildah aligns a template's space-separated fields in columns.
    let mut rows: Vec<String> = rows
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    rows.sort();
    let short = &id.trim()[..12];
    assert_eq!(
        rows,
        [
            format!("localhost/multi2:latest {short}"),
            format!("localhost/multi:latest {short}"),
            format!("registry.example/team/multi:v1 {short}"),
        ]
    );
    assert_eq!(
        sb.ok(&["manifest", "inspect", "multi2"]),
        sb.ok(&["manifest", "inspect", "multi"])
    );
    // An edit through one name is seen through every name.
    let index = json(&sb.ok(&["manifest", "inspect", "multi"]));
    let first = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    sb.ok(&["manifest", "remove", "multi2", &first]);
    let after = json(&sb.ok(&["manifest", "inspect", "multi"]));
    assert_eq!(after["manifests"].as_array().unwrap().len(), 1, "{after}");
    // Removing one name leaves the others.
    sb.ok(&["rmi", "multi2"]);
    assert!(sb.rbuild(&["manifest", "exists", "multi"]).status.success());
    assert_eq!(
        sb.rbuild(&["manifest", "exists", "multi2"]).status.code(),
        Some(1)
    );
    // Tagging an image with a list's name moves the name to the image.
    sb.ok(&["tag", "img-amd64", "registry.example/team/multi:v1"]);
    assert_eq!(
        sb.rbuild(&["manifest", "exists", "registry.example/team/multi:v1"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        image_id(&sb, "registry.example/team/multi:v1"),
        image_id(&sb, "img-amd64")
    );
    // And tagging the list with an image's name moves it to the list.
    sb.ok(&["tag", "multi", "img-arm64"]);
    assert!(sb
        .rbuild(&["manifest", "exists", "img-arm64"])
        .status
        .success());
}

#[test]
fn rootless_list_names_resolve() {
    if !common::rootless_available() {
        eprintln!("note: rootless user missing; rootless list-name test skipped");
        return;
    }
    let user = Sandbox::new(Runner::Rootless);
    two_platform_images(&user);
    user.ok(&["manifest", "create", "multi", "img-amd64", "img-arm64"]);
    let host_id = image_id(&user, &format!("img-{}", host_arch()));
    assert_eq!(image_id(&user, "multi"), host_id);
    let ctr = user.ok(&["from", "--pull=never", "multi"]);
    user.ok(&["run", ctr.trim(), "--", "true"]);
    user.ok(&["tag", "multi", "again"]);
    let lists = user.ok(&["images", "-q", "--filter", "manifest=true"]);
    assert_eq!(lists.lines().count(), 1, "{lists}");
    user.build("from-list", "FROM again\nRUN true\n", &[], &["-q"]);
    assert_eq!(
        user.config("from-list")["config"]["Labels"]["arch"],
        host_arch()
    );
}
