//! Output transports read by real peers (skopeo, umoci) and reproducible
//! builds: as root and rootless.

mod common;

use std::fs;
use std::path::Path;

use serde_json::Value;

use common::{busybox_tarball, tool, Runner, Sandbox};

const APP: &str = "FROM busybox\nCOPY app.txt /app/\nRUN echo ran > /app/ran && chown 1000:1000 /app/ran\nCMD [\"cat\", \"/app/app.txt\"]\n";

fn skopeo_json(args: &[&str]) -> Value {
    let out = tool("skopeo", args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("skopeo {args:?}: {e}: {out}"))
}

/// The config digest skopeo reads from `src`.
fn config_digest(src: &str) -> String {
    skopeo_json(&["inspect", "--raw", src])["config"]["digest"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            // docker-archive has no manifest of its own: skopeo makes one.
            skopeo_json(&["inspect", src])["Digest"].to_string()
        })
}

/// Copies `src` into a fresh OCI layout with skopeo and unpacks it with
/// umoci as root; returns the rootfs.
fn unpack_via_skopeo(sb: &Sandbox, src: &str) -> std::path::PathBuf {
    let layout = sb.path().join(sb.fresh("skopeo-oci"));
    tool(
        "skopeo",
        &["copy", "-q", src, &format!("oci:{}:x", layout.display())],
    );
    let bundle = sb.path().join(sb.fresh("skopeo-bundle"));
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    bundle.join("rootfs")
}

fn check_rootfs(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::read_to_string(root.join("app/app.txt")).unwrap(),
        "payload\n"
    );
    let ran = fs::metadata(root.join("app/ran")).unwrap();
    assert_eq!((ran.uid(), ran.gid()), (1000, 1000));
    assert!(root.join("bin/busybox").is_file());
}

#[test]
fn every_transport_is_read_by_skopeo_and_umoci() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build("app", APP, &[("app.txt", "payload\n")], &[]);
        let id = sb.ok(&["inspect", "--format", "{{.FromImageID}}", "app"]);
        let config = format!("sha256:{}", id.trim());
        let p = |name: &str| sb.path().join(name).display().to_string();

        // oci: read by skopeo, copied to dir:, unpacked by umoci directly.
        let oci = format!("oci:{}:v1", p("layout"));
        sb.ok(&["push", "-q", "app", &oci]);
        assert_eq!(config_digest(&oci), config, "{runner:?}");
        let copied = format!("dir:{}", p("copied-dir"));
        tool("skopeo", &["copy", "-q", &oci, &copied]);
        assert_eq!(config_digest(&copied), config);
        let bundle = p("bundle");
        tool(
            "umoci",
            &["unpack", "--image", &format!("{}:v1", p("layout")), &bundle],
        );
        check_rootfs(&Path::new(&bundle).join("rootfs"));

        // A second ref in the same layout keeps the first.
        sb.ok(&[
            "push",
            "-q",
            "busybox",
            &format!("oci:{}:base", p("layout")),
        ]);
        assert_eq!(config_digest(&oci), config);

        let archive = format!("oci-archive:{}:v1", p("app-oci.tar"));
        sb.ok(&["push", "-q", "app", &archive]);
        assert_eq!(config_digest(&archive), config, "{runner:?}");
        check_rootfs(&unpack_via_skopeo(&sb, &archive));

        let docker = format!("docker-archive:{}:app:v1", p("app-docker.tar"));
        sb.ok(&["push", "-q", "app", &docker]);
        let docker_src = format!("docker-archive:{}", p("app-docker.tar"));
        skopeo_json(&["inspect", &docker_src]);
        let listing = tool("tar", &["-xOf", &p("app-docker.tar"), "manifest.json"]);
        let listing: Value = serde_json::from_str(&listing).unwrap();
        assert_eq!(
            listing[0]["RepoTags"],
            serde_json::json!(["app:v1"]),
            "{runner:?}"
        );
        check_rootfs(&unpack_via_skopeo(&sb, &docker_src));

        let dir = format!("dir:{}", p("app-dir"));
        sb.ok(&["push", "-q", "app", &dir]);
        assert_eq!(config_digest(&dir), config, "{runner:?}");
        check_rootfs(&unpack_via_skopeo(&sb, &dir));

        // zstd: skopeo reads and verifies it (umoci 0.4.7 cannot).
        let zstd = format!("oci:{}:z", p("zstd-layout"));
        sb.ok(&["push", "-q", "--compression-format", "zstd", "app", &zstd]);
        let manifest = skopeo_json(&["inspect", "--raw", &zstd]);
        for layer in manifest["layers"].as_array().unwrap() {
            assert_eq!(
                layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
                "{runner:?}"
            );
        }
        assert_eq!(manifest["config"]["digest"], config.as_str());
        tool(
            "skopeo",
            &["copy", "-q", &zstd, &format!("dir:{}", p("zstd-copy"))],
        );

        let plain = format!("oci:{}:p", p("plain-layout"));
        sb.ok(&["push", "-q", "--compression-format", "none", "app", &plain]);
        let manifest = skopeo_json(&["inspect", "--raw", &plain]);
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar"
        );
        tool(
            "umoci",
            &[
                "unpack",
                "--image",
                &format!("{}:p", p("plain-layout")),
                &p("plain-bundle"),
            ],
        );
        check_rootfs(&Path::new(&p("plain-bundle")).join("rootfs"));
    }
}

/// Builds APP in a fresh store with `extra` args and env; returns the image
/// ID and the digest of its `oci:` manifest.
fn reproducible_build(runner: Runner, extra: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let sb = Sandbox::new(runner);
    let tar = busybox_tarball();
    sb.ok(&[
        "import",
        "--timestamp",
        "0",
        tar.to_str().unwrap(),
        "busybox",
    ]);
    let ctx = sb.context("ctx", &[("app.txt", "payload\n"), ("Containerfile", APP)]);
    let iid = sb.path().join("iid");
    let mut args = vec!["bud", "-t", "app", "--iidfile", iid.to_str().unwrap()];
    args.extend_from_slice(extra);
    let ctx = ctx.display().to_string();
    args.push(&ctx);
    let out = sb.rbuild_env(&args, env);
    common::assert_success(&out, &args);
    let digestfile = sb.path().join("digest");
    sb.ok(&[
        "push",
        "-q",
        "--digestfile",
        digestfile.to_str().unwrap(),
        "app",
        &format!("oci:{}:x", sb.path().join("out").display()),
    ]);
    (
        fs::read_to_string(iid).unwrap(),
        fs::read_to_string(digestfile).unwrap(),
    )
}

#[test]
fn timestamped_builds_are_reproducible() {
    for runner in Runner::all() {
        let a = reproducible_build(runner, &["--timestamp", "0"], &[]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = reproducible_build(runner, &["--timestamp", "0"], &[]);
        assert_eq!(a, b, "{runner:?}: --timestamp 0");
        let c = reproducible_build(runner, &[], &[("SOURCE_DATE_EPOCH", "1700000000")]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let d = reproducible_build(runner, &[], &[("SOURCE_DATE_EPOCH", "1700000000")]);
        assert_eq!(c, d, "{runner:?}: SOURCE_DATE_EPOCH");
        assert_ne!(a.0, c.0, "the timestamp is part of the image");
    }
}
