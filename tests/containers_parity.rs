//! Working-container behaviour compared with buildah 1.45 (see the qacli
//! report): what `run` sets up that a buildah user relies on.

mod common;

use common::{Runner, Sandbox};

#[test]
fn run_hostname_is_the_short_container_id_or_hostname_flag() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["from", "--name", "c", "busybox"]);
    let id = sb.ok(&["containers", "-q"]);
    let short = &id.trim()[..12];
    assert_eq!(sb.ok(&["run", "c", "hostname"]).trim(), short);
    let both = sb.ok(&[
        "run",
        "--hostname",
        "builder",
        "--isolation",
        "chroot",
        "c",
        "--",
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    ]);
    assert_eq!(both, "builder\nbuilder\n");
    let bad = sb.fails(&["run", "--hostname", &"x".repeat(65), "c", "true"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--hostname"));
}

#[test]
fn mount_json_and_a_failure_among_several() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["from", "--name", "a", "busybox"]);
    let one: serde_json::Value = serde_json::from_str(&sb.ok(&["mount", "--json", "a"])).unwrap();
    let path = one[0]["mountPoint"].as_str().unwrap().to_string();
    assert!(one[0].get("container").is_none(), "{one}");
    assert!(std::path::Path::new(&path).join("bin/busybox").exists());
    let all: serde_json::Value = serde_json::from_str(&sb.ok(&["mount", "--json"])).unwrap();
    assert_eq!(all[0]["container"], "a");
    sb.ok(&["from", "--name", "b", "busybox"]);
    let out = sb.rbuild(&["mount", "nosuch", "b"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("b /"));
    sb.ok(&["umount", "--all"]);
}

#[test]
fn config_platform_and_unset_flags_and_go_field_names() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["from", "--name", "c", "busybox"]);
    sb.ok(&[
        "config",
        "--label",
        "a=1",
        "--label",
        "b=2",
        "--annotation",
        "n=1",
        "c",
    ]);
    sb.ok(&[
        "config",
        "--unsetlabel",
        "a",
        "--unsetannotation",
        "n",
        "--variant",
        "v8",
        "--os-version",
        "10.0",
        "--os-feature",
        "f1",
        "--arch",
        "arm64",
        "c",
    ]);
    // Go field names reach OCI keys spelt `os.version`, `diff_ids`, `created_by`.
    let shown = sb.ok(&[
        "inspect",
        "--format",
        "{{.OCIv1.Config.Labels}} {{.OCIv1.Variant}} {{.OCIv1.OSVersion}} {{.OCIv1.OSFeatures}} {{.OCIv1.Architecture}} {{len .OCIv1.RootFS.DiffIDs}} {{.ImageAnnotations}}",
        "c",
    ]);
    assert_eq!(shown.trim(), "map[b:2] v8 10.0 [f1] arm64 1 map[]");
    sb.ok(&["config", "--os-feature", "f1-", "c"]);
    let features = sb.ok(&["inspect", "--format", "{{.OCIv1.OSFeatures}}", "c"]);
    assert_eq!(features.trim(), "[]", "Go prints an empty slice as []");
    let history = sb.ok(&[
        "inspect",
        "--format",
        "{{range .OCIv1.History}}{{.CreatedBy}}{{end}}",
        "busybox",
    ]);
    assert!(
        !history.trim().is_empty() && !history.contains("<no value>"),
        "{history}"
    );
}

#[test]
fn empty_config_fields_print_go_zero_values() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["from", "--name", "c", "busybox"]);
    let fmt = "{{.OCIv1.Config.Entrypoint}}|{{.OCIv1.Config.Labels}}|{{.OCIv1.Config.User}}|{{.Docker.Config.OnBuild}}|{{.NoSuchField}}";
    for target in ["busybox", "c"] {
        let shown = sb.ok(&["inspect", "--format", fmt, target]);
        assert_eq!(shown.trim(), "[]|map[]||[]|<no value>", "{target}");
    }
    // json still shows the document as it is: no invented empty fields.
    let json = sb.ok(&["inspect", "--format", "{{json .OCIv1.Config}}", "busybox"]);
    assert!(!json.contains("Entrypoint"), "{json}");
    // `with` keeps the zero values of the part it selects.
    let labels = sb.ok(&[
        "inspect",
        "--format",
        "{{with .OCIv1}}{{.Variant}}{{end}}",
        "busybox",
    ]);
    assert_eq!(labels.trim(), "");
}

#[test]
fn from_cidfile_and_isolation() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let cid = sb.path().join("cid");
    let name = sb.ok(&[
        "from",
        "--isolation",
        "chroot",
        "--cidfile",
        cid.to_str().unwrap(),
        "busybox",
    ]);
    assert_eq!(name.trim(), "busybox-working-container");
    let id = std::fs::read_to_string(&cid).unwrap();
    assert_eq!(id, sb.ok(&["containers", "-q"]).trim());
}

#[test]
fn rename_to_the_same_name_says_so() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["from", "--name", "c", "busybox"]);
    let out = sb.fails(&["rename", "c", "c"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("same name"));
    sb.ok(&["rename", "c", "d"]);
    assert_eq!(
        sb.ok(&["containers", "--format", "{{.ContainerName}}"]),
        "d\n"
    );
}
