//! `rbuild push` to every local transport, as root and as the unprivileged
//! test user: a busybox-based image with a `--chown`ed and a `--chmod`ed
//! file is read back by skopeo and unpacked by umoci (as root, so owners are
//! real), and `history` / `inspect --format` show what the build did.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{Runner, Sandbox};

const CONTAINERFILE: &str = "FROM busybox
COPY --chown=1000:1000 app.txt /app/app.txt
COPY --chmod=0750 run.sh /app/run.sh
ENV GREETING=hi
LABEL org.example=yes
CMD [\"/app/run.sh\"]
";

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn skopeo_inspect(target: &str) -> serde_json::Value {
    serde_json::from_str(&run(Command::new("skopeo").args(["inspect", target]))).unwrap()
}

/// umoci unpacks `layout:tag`; the rootfs has busybox and the app files with
/// the owners and modes the Containerfile asked for.
fn check_unpacked(layout: &Path, tag: &str, work: &Path) {
    let name = layout.file_name().unwrap().to_string_lossy();
    let bundle = work.join(format!("bundle-{name}-{tag}"));
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("bin/busybox").is_file());
    let app = fs::metadata(rootfs.join("app/app.txt")).unwrap();
    assert_eq!((app.uid(), app.gid()), (1000, 1000), "--chown kept");
    assert_eq!(fs::read(rootfs.join("app/app.txt")).unwrap(), b"data\n");
    let run_sh = fs::metadata(rootfs.join("app/run.sh")).unwrap();
    assert_eq!(run_sh.permissions().mode() & 0o7777, 0o750, "--chmod kept");
    assert_eq!((run_sh.uid(), run_sh.gid()), (0, 0));
}

#[test]
fn push_to_every_transport_as_root_and_rootless() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.write("ctx/Containerfile", CONTAINERFILE);
        sb.write("ctx/app.txt", "data\n");
        sb.write("ctx/run.sh", "#!/bin/sh\necho $GREETING\n");
        let ctx = sb.path().join("ctx");
        let id = sb.ok(&[
            "bud",
            "-q",
            "--annotation",
            "org.opencontainers.image.title=demo",
            "-t",
            "app",
            ctx.to_str().unwrap(),
        ]);
        let id = id.trim();
        let out = sb.mkdir("out");

        // oci: gzip, then zstd beside it in the same layout.
        let layout = out.join("layout");
        let oci = format!("oci:{}:app", layout.display());
        // Progress goes to stderr, as buildah's does.
        let pushed = sb.rbuild(&["push", "app", &oci]);
        common::assert_success(&pushed, &["push"]);
        let pushed = String::from_utf8_lossy(&pushed.stderr);
        assert!(
            pushed.contains("Getting image source signatures")
                && pushed.contains("Writing manifest to image destination"),
            "{pushed}"
        );
        let info = skopeo_inspect(&oci);
        assert_eq!(info["Labels"]["org.example"], "yes", "{runner:?}");
        assert!(info["Env"].to_string().contains("GREETING=hi"));
        check_unpacked(&layout, "app", sb.path());
        let zst = format!("oci:{}:zst", layout.display());
        sb.ok(&["push", "--compression-format", "zstd", "app", &zst]);
        let raw: serde_json::Value =
            serde_json::from_str(&run(Command::new("skopeo").args(["inspect", "--raw", &zst])))
                .unwrap();
        assert_eq!(
            raw["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        assert_eq!(
            raw["annotations"]["org.opencontainers.image.title"], "demo",
            "bud --annotation reaches the pushed manifest"
        );

        // A second gzip push reuses the blobs the first one cached.
        let again = sb.rbuild(&["push", "app", &format!("oci:{}:again", layout.display())]);
        let again = common::text(&again);
        assert!(again.contains("skipped: already exists"), "{again}");

        // oci-archive:, docker-archive:, dir:, each copied to a layout by
        // skopeo and unpacked.
        for (i, spec) in [
            format!("oci-archive:{}:app", out.join("app.tar").display()),
            format!(
                "docker-archive:{}:localhost/app:latest",
                out.join("docker.tar").display()
            ),
            format!("dir:{}", out.join("dir").display()),
        ]
        .iter()
        .enumerate()
        {
            sb.ok(&["push", "app", spec]);
            let source = match spec.strip_prefix("docker-archive:") {
                Some(rest) => format!("docker-archive:{}", rest.split(':').next().unwrap()),
                None => spec.clone(),
            };
            assert_eq!(
                skopeo_inspect(&source)["Labels"]["org.example"],
                "yes",
                "{spec}"
            );
            let copy = sb.path().join(format!("copy{i}"));
            run(Command::new("skopeo").args([
                "--insecure-policy",
                "copy",
                &source,
                &format!("oci:{}:c", copy.display()),
            ]));
            check_unpacked(&copy, "c", sb.path());
        }

        // The config skopeo sees is the one `inspect` prints: same image ID.
        let config = run(Command::new("skopeo").args(["inspect", "--config", "--raw", &oci]));
        assert_eq!(rbuild::digest::Digest::of(config.as_bytes()).hex(), id);

        let history = sb.ok(&["history", "--format", "{{.CreatedBy}}", "app"]);
        let lines: Vec<&str> = history.lines().collect();
        assert!(lines[0].contains("CMD"), "{history}");
        assert!(lines.iter().any(|l| l.contains("COPY")), "{history}");
        let inspect = sb.ok(&[
            "inspect",
            "--format",
            "{{.FromImageID}} {{index .OCIv1.config.Labels \"org.example\"}} {{.Docker.config.Cmd}}",
            "app",
        ]);
        assert_eq!(inspect.trim(), format!("{id} yes [/app/run.sh]"));
    }
}

#[test]
fn unknown_and_unsupported_destinations_are_explained() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    for (dest, expect) in [
        // Nothing listens on port 9 of loopback: the error says so.
        ("docker://127.0.0.1:9/app", "connecting to the registry"),
        ("ftp:/x", "oci-archive:FILE"),
        ("oci:", "the path is empty"),
    ] {
        let out = sb.rbuild(&["push", "busybox", dest]);
        assert!(!out.status.success(), "{dest} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{dest}: {stderr}");
    }
    let out = sb.rbuild(&[
        "push",
        "--compression-format",
        "lz4",
        "busybox",
        "oci:/tmp/x",
    ]);
    // clap refuses an unknown compression before anything runs.
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values: gzip, zstd"));
}
