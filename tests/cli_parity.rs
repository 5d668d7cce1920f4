//! Differences from buildah 1.45 found by running the same commands through
//! both (see the qacli report): each test pins buildah's behaviour — output
//! shape, flags a buildah user types, exit codes scripts test.

mod common;
mod registry_support;

use serde_json::Value;

use common::{Runner, Sandbox};

fn code(sb: &Sandbox, args: &[&str]) -> Option<i32> {
    sb.rbuild(args).status.code()
}

fn stderr(sb: &Sandbox, args: &[&str]) -> String {
    String::from_utf8_lossy(&sb.fails(args).stderr).into_owned()
}

#[test]
fn images_table_is_buildahs() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["tag", "busybox", "foo:1"]);
    let table = sb.ok(&["images"]);
    let mut lines = table.lines();
    // tabwriter padding 3; "2.13 MB" with a space (buildah's formattedSize).
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("REPOSITORY          TAG      IMAGE ID       CREATED"),
        "{table}"
    );
    let row = lines.find(|l| l.starts_with("localhost/busybox")).unwrap();
    assert!(row.starts_with("localhost/busybox   latest   "), "{row}");
    assert!(row.ends_with(" MB"), "{row}");

    let no_heading = sb.ok(&["images", "-n"]);
    assert_eq!(no_heading.lines().count(), 2, "{no_heading}");
    assert!(!no_heading.contains("REPOSITORY"));
    let digests = sb.ok(&["images", "--digests"]);
    assert!(digests.lines().next().unwrap().contains("   DIGEST   "));
    assert!(digests.contains("sha256:"), "{digests}");
    let tabbed = sb.ok(&["images", "--format", "table {{.ID}}\\t{{.Name}}"]);
    assert!(
        tabbed.starts_with("IMAGE ID       REPOSITORY\n"),
        "{tabbed}"
    );
    assert!(sb.ok(&["images", "-a"]).contains("localhost/foo"));
}

#[test]
fn images_template_fields_and_json_are_buildahs() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["tag", "busybox", "foo:1"]);
    // `{{.Name}}` is buildah's field; CreatedAt is the "… ago" text.
    let names = sb.ok(&["images", "--format", "{{.Name}}:{{.Tag}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["localhost/busybox:latest", "localhost/foo:1"]);
    let at = sb.ok(&[
        "images",
        "--format",
        "{{.CreatedAt}}|{{.ReadOnly}}|{{.Size}}",
    ]);
    let first = at.lines().next().unwrap();
    assert!(
        first.contains(" ago|false|") && first.ends_with(" MB"),
        "{first}"
    );
    let raw = sb.ok(&["images", "--format", "{{.CreatedAtRaw}}"]);
    assert!(raw.trim().lines().all(|l| l.ends_with('Z')), "{raw}");

    let json: Value = serde_json::from_str(&sb.ok(&["images", "--json"])).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 1, "one record per image, not per name: {json}");
    let row = &rows[0];
    for key in [
        "id",
        "names",
        "digest",
        "createdat",
        "size",
        "created",
        "createdatraw",
        "readonly",
    ] {
        assert!(row.get(key).is_some(), "no {key}: {row}");
    }
    assert_eq!(row["names"].as_array().unwrap().len(), 2);
    // json.MarshalIndent with four spaces, as buildah prints it.
    let text = sb.ok(&["images", "--json"]);
    assert!(text.starts_with("[\n    {\n        \"id\": "), "{text}");
    assert!(row["created"].is_i64() && row["readonly"] == false);
}

#[test]
fn images_takes_an_image_argument() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&[
        "import",
        common::busybox_tarball().to_str().unwrap(),
        "other",
    ]);
    let one = sb.ok(&["images", "--format", "{{.Name}}", "other"]);
    assert_eq!(one.trim(), "localhost/other");
    assert_eq!(code(&sb, &["images", "nosuch"]), Some(125));
    assert!(stderr(&sb, &["images", "-a", "other"]).contains("--all"));
    assert!(stderr(&sb, &["images", "-q", "--format", "{{.ID}}"]).contains("mutually exclusive"));
}

#[test]
fn usage_errors_exit_125_as_buildahs_do() {
    let sb = Sandbox::new(Runner::Root);
    assert_eq!(code(&sb, &["tag"]), Some(125));
    assert_eq!(code(&sb, &["images", "--no-such-flag"]), Some(125));
    assert_eq!(code(&sb, &["no-such-command"]), Some(125));
    // buildah's global --storage-driver: overlay is what rbuild is.
    sb.ok(&["--storage-driver", "overlay", "images", "-q"]);
    assert_eq!(code(&sb, &["--storage-driver", "vfs", "images"]), Some(125));
    let help = sb.rbuild(&["images", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--filter"));
}

#[test]
fn rmi_and_rm_failures_exit_125() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["tag", "busybox", "a:1"]);
    assert_eq!(code(&sb, &["rmi", "nosuch"]), Some(125));
    // An ID with several names needs --force.
    let id = sb.ok(&["images", "-q"]);
    assert_eq!(code(&sb, &["rmi", id.trim()]), Some(125));
    assert!(stderr(&sb, &["rmi", "-p", "a:1"]).contains("--prune"));
    assert!(stderr(&sb, &["rmi", "-a", "a:1"]).contains("--all"));
    sb.ok(&["images", "a:1"]);
    assert_eq!(code(&sb, &["rm", "nosuch"]), Some(125));
}

#[test]
fn rm_all_with_a_name_removes_nothing() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["from", "--name", "keep", "busybox"]);
    let err = stderr(&sb, &["rm", "-a", "typo"]);
    assert!(err.contains("--all"), "{err}");
    assert!(sb.ok(&["containers", "-q"]).lines().count() == 1);
}

#[test]
fn format_spaces_are_columns_and_containers_q_is_whole_ids() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["tag", "busybox", "a-much-longer-name:1"]);
    let out = sb.ok(&["images", "--format", "{{.Name}} {{.Tag}}"]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "localhost/a-much-longer-name   1",
            "localhost/busybox              latest"
        ]
    );
    sb.ok(&["from", "--name", "c1", "busybox"]);
    let ids = sb.ok(&["containers", "-q"]);
    assert_eq!(ids.trim().len(), 64, "{ids}");
    let named = sb.ok(&[
        "containers",
        "--format",
        "{{.ContainerName}} {{.ImageName}}",
    ]);
    assert_eq!(named, "c1   localhost/busybox:latest\n");
    let table = sb.ok(&[
        "containers",
        "--format",
        "table {{.ContainerName}} {{.ImageName}}",
    ]);
    assert_eq!(
        table,
        "CONTAINER NAME   IMAGE NAME\nc1               localhost/busybox:latest\n"
    );
    assert!(
        stderr(&sb, &["containers", "-q", "--format", "{{.ID}}"]).contains("mutually exclusive")
    );
}

#[test]
fn commit_to_a_transport_writes_there_not_into_the_store() {
    for runner in Runner::all() {
        commit_to_a_transport(runner);
    }
}

fn commit_to_a_transport(runner: Runner) {
    let sb = Sandbox::new(runner);
    sb.import_busybox();
    sb.ok(&["from", "--name", "c", "busybox"]);
    sb.ok(&[
        "run",
        "--isolation",
        "chroot",
        "c",
        "--",
        "sh",
        "-c",
        "echo hi > /hello",
    ]);
    let before = sb.ok(&["images", "-q"]);
    let archive = sb.path().join("c.tar");
    let dest = format!("oci-archive:{}", archive.display());
    let out = sb.rbuild(&["commit", "c", &dest]);
    common::assert_success(&out, &["commit", "c", &dest]);
    // stdout is the ID alone (a script captures it); progress is on stderr.
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("Writing manifest to image destination"),
        "{progress}"
    );
    assert_eq!(sb.ok(&["images", "-q"]), before, "the store gets no image");
    let info: Value =
        serde_json::from_str(&common::tool("skopeo", &["inspect", "--config", &dest])).unwrap();
    assert_eq!(info["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    // The container goes on from its committed state.
    assert_eq!(sb.ok(&["run", "c", "cat", "/hello"]).trim(), "hi");
    sb.ok(&["commit", "c", "stored"]);
    assert_eq!(
        sb.ok(&["images", "--format", "{{.Name}}", "stored"]).trim(),
        "localhost/stored"
    );
}

#[test]
fn push_progress_goes_to_stderr() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let dest = format!("oci:{}", sb.path().join("layout").display());
    let out = sb.rbuild(&["push", "busybox", &dest]);
    common::assert_success(&out, &["push"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Getting image source signatures\n"),
        "{err}"
    );
    // A fresh layout gets every blob ("done") even when the store had the
    // compressed blob cached; only a layout that had it says "skipped".
    let fresh = format!("oci:{}", sb.path().join("fresh").display());
    let out = sb.rbuild(&["push", "busybox", &fresh]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(" done") && !err.contains("skipped"), "{err}");
    let out = sb.rbuild(&["push", "busybox", &format!("{fresh}:again")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Copying blob sha256:") && err.contains("skipped: already exists"),
        "{err}"
    );
}

#[test]
fn container_inspect_has_buildahs_base_image_fields() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["from", "--name", "c", "busybox"]);
    let digest = sb.ok(&["images", "--format", "{{.Digest}}", "busybox"]);
    let v: Value = serde_json::from_str(&sb.ok(&["inspect", "--type", "container", "c"])).unwrap();
    assert_eq!(v["FromImageDigest"], digest.trim());
    // Config and Manifest are the base image's documents, as JSON text.
    let config: Value = serde_json::from_str(v["Config"].as_str().unwrap()).unwrap();
    assert_eq!(config["rootfs"]["type"], "layers");
    let manifest: Value = serde_json::from_str(v["Manifest"].as_str().unwrap()).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    let err = stderr(&sb, &["inspect", "--format", ".FromImageID", "busybox"]);
    assert!(err.contains("invalid format provided"), "{err}");
}

#[test]
fn login_with_a_wrong_password_says_so() {
    let reg = registry_support::Registry::start(registry_support::RegistryConfig {
        htpasswd: Some(("alice".into(), "s3cret".into())),
        ..Default::default()
    });
    let sb = Sandbox::new(Runner::Root);
    let authfile = sb.path().join("auth.json");
    let authfile = authfile.to_str().unwrap();
    let host = reg.host();
    let args = |pw: &'static str| {
        [
            "login",
            "--tls-verify=false",
            "--authfile",
            authfile,
            "-u",
            "alice",
            "-p",
            pw,
            host.as_str(),
        ]
    };
    let out = sb.rbuild(&args("wrong"));
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid username/password"), "{err}");
    assert_eq!(sb.ok(&args("s3cret")), "Login Succeeded!\n");
    // No user given: the stored credentials are checked and kept.
    let again = sb.ok(&[
        "login",
        "--tls-verify=false",
        "--authfile",
        authfile,
        host.as_str(),
    ]);
    assert_eq!(
        again,
        format!(
            "Authenticating with existing credentials for {host}\nExisting credentials are valid. Already logged in to {host}\n"
        )
    );
    let logout = ["logout", "--authfile", authfile, host.as_str()];
    sb.ok(&logout);
    assert_eq!(
        code(&sb, &logout),
        Some(125),
        "a second logout: not logged in"
    );
}

#[test]
fn manifest_annotate_edits_an_entry_and_keeps_the_rest() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["manifest", "create", "ml", "busybox"]);
    sb.ok(&["manifest", "add", "--variant", "v7", "ml", "busybox"]);
    let index: Value = serde_json::from_str(&sb.ok(&["manifest", "inspect", "ml"])).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = sb.ok(&[
        "manifest",
        "annotate",
        "--arch",
        "arm",
        "--annotation",
        "a=b",
        "ml",
        &digest,
    ]);
    assert!(out.trim().ends_with(&format!(": {digest}")), "{out}");
    // By image name too; annotations add up.
    sb.ok(&[
        "manifest",
        "annotate",
        "--annotation",
        "c=d",
        "ml",
        "busybox",
    ]);
    let index: Value = serde_json::from_str(&sb.ok(&["manifest", "inspect", "ml"])).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(entry["platform"]["architecture"], "arm");
    assert_eq!(entry["platform"]["variant"], "v7", "kept from add");
    assert_eq!(
        entry["annotations"],
        serde_json::json!({"a": "b", "c": "d"})
    );
    let zero = format!("sha256:{}", "0".repeat(64));
    assert_eq!(code(&sb, &["manifest", "annotate", "ml", &zero]), Some(125));
    assert_eq!(code(&sb, &["manifest", "rm", "nosuch"]), Some(125));
}

#[test]
fn from_an_image_id_names_the_container_after_the_image() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let id = sb.ok(&["images", "-q", "--no-trunc", "busybox"]);
    let id = id.trim();
    assert_eq!(
        sb.ok(&["from", &id[7..19]]).trim(),
        "busybox-working-container"
    );
    assert_eq!(sb.ok(&["from", id]).trim(), "busybox-working-container-1");
    // A container from a tagged image records the name it was asked for.
    sb.ok(&["tag", "busybox", "aaa:1"]);
    sb.ok(&["from", "--name", "c", "busybox"]);
    let name = sb.ok(&["inspect", "--format", "{{.FromImage}}", "c"]);
    assert_eq!(name.trim(), "localhost/busybox:latest");
}

#[test]
fn images_filters_buildah_users_type() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let tar = common::busybox_tarball().to_str().unwrap().to_string();
    // `import` stamps the time now: each image is newer than the last.
    sb.ok(&["import", &tar, "second"]);
    sb.ok(&["from", "--name", "w", "second"]);
    sb.ok(&["config", "--label", "tier=web", "w"]);
    sb.ok(&["commit", "--rm", "w", "third"]);
    let ids = |f: &str| -> Vec<String> {
        let out = sb.ok(&["images", "--format", "{{.Name}}", "--filter", f]);
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(ids("before=second"), ["localhost/busybox"]);
    assert_eq!(ids("since=second"), ["localhost/third"]);
    assert_eq!(
        ids("label!=tier"),
        ["localhost/busybox", "localhost/second"]
    );
    let third = sb.ok(&["images", "-q", "--no-trunc", "third"]);
    let third = third.trim().trim_start_matches("sha256:");
    assert_eq!(ids(&format!("id={}", &third[..8])), ["localhost/third"]);
    let digest = sb.ok(&["images", "--format", "{{.Digest}}", "second"]);
    assert_eq!(
        ids(&format!("digest={}", digest.trim())),
        ["localhost/second"]
    );
    sb.ok(&["from", "second"]);
    assert_eq!(ids("containers=true"), ["localhost/second"]);
    assert_eq!(ids("containers=false").len(), 2);
    assert_eq!(ids("until=1h"), Vec::<String>::new());
    assert_eq!(ids("readonly=false").len(), 3);
    assert_eq!(ids("intermediate=true"), Vec::<String>::new());
    assert!(stderr(&sb, &["images", "--filter", "until=soon"]).contains("duration"));
    assert!(stderr(&sb, &["images", "--filter", "before=nosuch"]).contains("nosuch"));
}

#[test]
fn umount_prints_only_what_it_unmounted_and_goes_on_after_a_failure() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["from", "--name", "a", "busybox"]);
    sb.ok(&["from", "--name", "b", "busybox"]);
    assert_eq!(sb.ok(&["umount", "a"]), "", "a was not mounted");
    sb.ok(&["mount", "b"]);
    let out = sb.rbuild(&["umount", "nosuch", "b"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().len(), 64, "b");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
    assert_eq!(sb.ok(&["mount"]), "");
    assert!(stderr(&sb, &["umount", "-a", "b"]).contains("--all"));
}

/// The layer media types of the single image in an OCI archive.
fn archive_layer_types(sb: &Sandbox, archive: &std::path::Path) -> Vec<String> {
    let dir = sb.mkdir(&sb.fresh("unpacked"));
    common::tool(
        "tar",
        &[
            "-xf",
            archive.to_str().unwrap(),
            "-C",
            dir.to_str().unwrap(),
        ],
    );
    common::oci_manifest(&dir)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn commit_iidfile_manifest_and_transport_compression() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["from", "--name", "c", "busybox"]);
    let iid = sb.path().join("iid");
    let id = sb.ok(&[
        "commit",
        "--iidfile",
        iid.to_str().unwrap(),
        "--manifest",
        "ml",
        "c",
        "img",
    ]);
    assert_eq!(
        std::fs::read_to_string(&iid).unwrap(),
        format!("sha256:{}", id.trim())
    );
    let index: Value = serde_json::from_str(&sb.ok(&["manifest", "inspect", "ml"])).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    sb.ok(&["commit", "--manifest", "ml", "c", "img2"]);
    let index: Value = serde_json::from_str(&sb.ok(&["manifest", "inspect", "ml"])).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);

    // To a transport: uncompressed unless -D=false, as buildah commits.
    let plain = sb.path().join("plain.tar");
    sb.ok(&[
        "commit",
        "-q",
        "c",
        &format!("oci-archive:{}", plain.display()),
    ]);
    let types = archive_layer_types(&sb, &plain);
    assert!(
        types
            .iter()
            .all(|t| t == "application/vnd.oci.image.layer.v1.tar"),
        "{types:?}"
    );
    let zstd = sb.path().join("zstd.tar");
    sb.ok(&[
        "commit",
        "-q",
        "-D=false",
        "--compression-format",
        "zstd",
        "c",
        &format!("oci-archive:{}", zstd.display()),
    ]);
    let types = archive_layer_types(&sb, &zstd);
    assert!(types.iter().all(|t| t.ends_with("+zstd")), "{types:?}");
}

#[test]
fn containers_are_listed_oldest_first() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    for name in ["zeta", "alpha", "mid"] {
        sb.ok(&["from", "--name", name, "busybox"]);
    }
    let names = sb.ok(&["containers", "--format", "{{.ContainerName}}"]);
    assert_eq!(names, "zeta\nalpha\nmid\n");
}

#[test]
fn containers_table_is_buildahs_printf() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&[
        "tag",
        "busybox",
        "a-very-long-repository-name/with-a-path:tag1",
    ]);
    sb.ok(&[
        "from",
        "--name",
        "long",
        "a-very-long-repository-name/with-a-path:tag1",
    ]);
    let table = sb.ok(&["containers"]);
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.ends_with(" localhost/a-very-long-reposit... long"),
        "{table}"
    );
    let full = sb.ok(&["containers", "--notruncate"]);
    let mut lines = full.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "{:<64} BUILDER  {:<64} IMAGE NAME                       CONTAINER NAME",
            "CONTAINER ID", "IMAGE ID"
        )
    );
    let row = lines.next().unwrap();
    assert_eq!(&row[64..74], "    *     ", "{row}");
    assert!(row.ends_with(" localhost/a-very-long-repository-name/with-a-path:tag1 long"));
}

#[test]
fn push_refuses_a_docker_archive_name_docker_cannot_load() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let bad = format!(
        "docker-archive:{}:bad:ref:x",
        sb.path().join("a.tar").display()
    );
    let err = stderr(&sb, &["push", "busybox", &bad]);
    assert!(err.contains("not an image name"), "{err}");
    assert!(!sb.path().join("a.tar").exists());
    let good = format!(
        "docker-archive:{}:good/name:v1",
        sb.path().join("b.tar").display()
    );
    sb.ok(&["push", "-q", "busybox", &good]);
}

#[test]
fn push_takes_buildahs_d_rm_and_remove_signatures() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let archive = sb.path().join("plain.tar");
    sb.ok(&[
        "push",
        "-q",
        "-D",
        "--remove-signatures",
        "busybox",
        &format!("oci-archive:{}", archive.display()),
    ]);
    let types = archive_layer_types(&sb, &archive);
    assert!(
        types
            .iter()
            .all(|t| t == "application/vnd.oci.image.layer.v1.tar"),
        "{types:?}"
    );
    sb.ok(&["manifest", "create", "ml", "busybox"]);
    let layout = format!("oci:{}", sb.path().join("layout").display());
    sb.ok(&["push", "-q", "--rm", "ml", &layout]);
    assert_eq!(
        code(&sb, &["manifest", "exists", "ml"]),
        Some(1),
        "--rm removed the list"
    );
}

#[test]
fn rmi_all_reports_names_then_ids() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["tag", "busybox", "two:1"]);
    sb.ok(&["manifest", "create", "l1", "busybox"]);
    let out = sb.ok(&["rmi", "-a"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "untagged: localhost/l1:latest",
            "untagged: localhost/busybox:latest",
            "untagged: localhost/two:1"
        ]
    );
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[3..].iter().all(|l| l.len() == 64), "{out}");
    assert_eq!(sb.ok(&["images", "-q"]), "");
}

#[test]
fn rmi_of_several_reports_all_names_before_ids() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let tar = common::busybox_tarball().to_str().unwrap().to_string();
    sb.ok(&["import", &tar, "other"]);
    sb.ok(&["tag", "busybox", "keep:1"]);
    let out = sb.ok(&["rmi", "other", "keep:1", "busybox"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "untagged: localhost/other:latest",
            "untagged: localhost/keep:1",
            "untagged: localhost/busybox:latest"
        ],
        "{out}"
    );
    assert_eq!(lines.len(), 5, "{out}");
    // A failure among them does not hide what was done.
    sb.import_busybox();
    let out = sb.rbuild(&["rmi", "busybox", "nosuch"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("untagged: localhost/busybox:latest\n")
    );
}

#[test]
fn manifest_rm_reports_names_then_ids() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let a = sb.ok(&["manifest", "create", "la", "busybox"]);
    let b = sb.ok(&["manifest", "create", "lb", "busybox"]);
    let out = sb.rbuild(&["manifest", "rm", "la", "nosuch", "lb"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "untagged: localhost/la:latest\nuntagged: localhost/lb:latest\n{}\n{}\n",
            a.trim(),
            b.trim()
        )
    );
}

#[test]
fn reference_filter_matches_as_libimage() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["tag", "busybox", "quay.io/team/app:v1", "reg:5000/x/app:v2"]);
    let tar = common::busybox_tarball().to_str().unwrap().to_string();
    sb.ok(&["import", &tar, "other"]);
    let shown = |p: &str| -> Vec<String> {
        let out = sb.ok(&[
            "images",
            "--format",
            "{{.Name}}:{{.Tag}}",
            "--filter",
            &format!("reference={p}"),
        ]);
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let all_three = [
        "localhost/busybox:latest",
        "quay.io/team/app:v1",
        "reg:5000/x/app:v2",
    ];
    for p in ["app", "team/app", "app:v*", "busybox:latest", "quay.io/*/*"] {
        assert_eq!(shown(p), all_three, "{p}");
    }
    assert_eq!(shown("quay.io/team/app:v1"), ["quay.io/team/app:v1"]);
    assert!(shown("quay.io/*").is_empty(), "* stays within one part");
    let id = sb.ok(&["images", "-q", "other"]);
    assert_eq!(shown(id.trim()), ["localhost/other:latest"], "by ID lookup");
    let out = sb.ok(&[
        "images",
        "--format",
        "{{.Name}}",
        "--filter",
        "reference!=app",
    ]);
    assert_eq!(out, "localhost/other\n");
}
