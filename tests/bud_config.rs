//! Image config and history end to end: what `bud` writes for each
//! configuration instruction, read back by skopeo from the exported image,
//! as root and rootless.

mod common;

use serde_json::{json, Value};

use common::{tool, Runner, Sandbox};

const CONFIGURED: &str = "FROM busybox
ENV A=1 B=\"two words\"
LABEL l1=v1 \"l 2\"=\"v 2\"
EXPOSE 80 53/udp
VOLUME [\"/data\", \"/logs\"]
USER app
WORKDIR /srv/app
CMD [\"run\"]
SHELL [\"/bin/sh\", \"-ec\"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD wget -q localhost || exit 1
ONBUILD RUN touch /tmp/onbuild-ran
MAINTAINER me@example.com
";

fn skopeo_json(args: &[&str]) -> Value {
    let out = tool("skopeo", args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("skopeo {args:?}: {e}: {out}"))
}

#[test]
fn config_and_history_as_docker_writes_them() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "cfg",
            CONFIGURED,
            &[],
            &["--format", "docker", "--label", "cli=1"],
        );
        let archive = sb.path().join("cfg.tar");
        sb.ok(&[
            "push",
            "-q",
            "cfg",
            &format!("docker-archive:{}:cfg:latest", archive.display()),
        ]);
        let raw = skopeo_json(&[
            "inspect",
            "--config",
            "--raw",
            &format!("docker-archive:{}", archive.display()),
        ]);
        let c = &raw["config"];
        assert_eq!(
            c["Env"],
            json!([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "A=1",
                "B=two words"
            ]),
            "{runner:?}"
        );
        assert_eq!(c["Labels"]["l1"], "v1");
        assert_eq!(c["Labels"]["l 2"], "v 2");
        assert_eq!(c["Labels"]["cli"], "1");
        assert_eq!(c["ExposedPorts"], json!({"53/udp": {}, "80/tcp": {}}));
        assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}}));
        assert_eq!(c["User"], "app");
        assert_eq!(c["WorkingDir"], "/srv/app");
        assert_eq!(c["Cmd"], json!(["run"]));
        assert_eq!(c["Shell"], json!(["/bin/sh", "-ec"]));
        assert_eq!(c["StopSignal"], "SIGTERM");
        assert_eq!(
            c["Healthcheck"],
            json!({
                "Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                "Interval": 5_000_000_000u64,
                "Timeout": 2_000_000_000u64,
                "Retries": 3
            })
        );
        assert_eq!(c["OnBuild"], json!(["RUN touch /tmp/onbuild-ran"]));
        assert_eq!(raw["author"], "me@example.com");

        // History: the base's entry, then one per instruction; only WORKDIR
        // (it creates /srv/app) makes a layer.
        let history = raw["history"].as_array().unwrap();
        assert_eq!(history.len(), 13, "{runner:?}: {history:?}");
        let layered: Vec<&str> = history
            .iter()
            .filter(|h| h["empty_layer"] != json!(true))
            .map(|h| h["created_by"].as_str().unwrap())
            .collect();
        assert_eq!(
            layered.len(),
            raw["rootfs"]["diff_ids"].as_array().unwrap().len()
        );
        assert_eq!(layered[1], "/bin/sh -c #(nop) WORKDIR /srv/app");
        for (h, word) in history[1..].iter().zip([
            "ENV",
            "LABEL",
            "EXPOSE",
            "VOLUME",
            "USER",
            "WORKDIR",
            "CMD",
            "SHELL",
            "STOPSIGNAL",
            "HEALTHCHECK",
            "ONBUILD",
            "MAINTAINER",
        ]) {
            let by = h["created_by"].as_str().unwrap();
            assert!(
                by.starts_with(&format!("/bin/sh -c #(nop) {word} ")),
                "{by}"
            );
        }

        // A child: ENTRYPOINT resets the inherited CMD, the ONBUILD trigger
        // runs and is not inherited.
        sb.build(
            "child",
            "FROM cfg\nUSER root\nENTRYPOINT [\"/bin/echo\"]\n",
            &[],
            &[],
        );
        let child = sb.config("child");
        assert_eq!(child["config"]["Entrypoint"], json!(["/bin/echo"]));
        assert!(child["config"]["Cmd"].is_null(), "{runner:?}: {child}");
        let onbuild = child["config"]
            .get("OnBuild")
            .cloned()
            .unwrap_or(Value::Null);
        assert!(
            onbuild.is_null() || onbuild == json!([]),
            "{runner:?}: {onbuild}"
        );
        assert_eq!(child["config"]["Env"], c["Env"]);
        let root = sb.unpack("child");
        assert!(
            root.join("tmp/onbuild-ran").exists(),
            "{runner:?}: ONBUILD trigger ran"
        );
    }
}

#[test]
fn oci_format_keeps_labels_and_annotations_through_push() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "ann",
            "FROM busybox\nLABEL from=file\nCMD [\"sh\"]\n",
            &[],
            &[
                "--label",
                "cli=yes",
                "--annotation",
                "org.example.note=hello",
            ],
        );
        let shown = sb.ok(&["inspect", "--format", "{{json .ImageAnnotations}}", "ann"]);
        assert_eq!(shown.trim(), r#"{"org.example.note":"hello"}"#);
        let oci = sb.push_oci("ann");
        let src = format!("oci:{}:latest", oci.display());
        let manifest = skopeo_json(&["inspect", "--raw", &src]);
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            manifest["annotations"]["org.example.note"], "hello",
            "{runner:?}"
        );
        let inspected = skopeo_json(&["inspect", &src]);
        assert_eq!(inspected["Labels"]["cli"], "yes");
        assert_eq!(inspected["Labels"]["from"], "file");
        let config = skopeo_json(&["inspect", "--config", "--raw", &src]);
        assert_eq!(config["config"]["Cmd"], json!(["sh"]));
        assert_eq!(
            config["history"].as_array().unwrap().last().unwrap()["empty_layer"],
            json!(true)
        );
    }
}

#[test]
fn docker_format_image_pushed_to_an_oci_layout_gets_an_oci_manifest() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.build(
        "dock",
        "FROM busybox\nENV X=1\n",
        &[],
        &["--format", "docker"],
    );
    let id = sb.ok(&["inspect", "--format", "{{.FromImageID}}", "dock"]);
    let oci = sb.push_oci("dock");
    let src = format!("oci:{}:latest", oci.display());
    let manifest = skopeo_json(&["inspect", "--raw", &src]);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    // The config bytes are unchanged, so the image ID is too.
    assert_eq!(
        manifest["config"]["digest"],
        format!("sha256:{}", id.trim())
    );
    let out = sb.fails(&[
        "push",
        "--format",
        "docker",
        "dock",
        &format!("oci:{}:x", sb.path().join("o2").display()),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("OCI"));
}

#[test]
fn shell_forms_and_the_shell_instruction() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "forms",
            "FROM busybox\n\
             CMD echo \"$HOME\"\n\
             ENTRYPOINT exec top -b\n\
             SHELL [\"/bin/sh\", \"-ec\"]\n\
             RUN echo shell-form > /sf\n\
             HEALTHCHECK NONE\n",
            &[],
            &[],
        );
        let c = sb.config("forms");
        assert_eq!(
            c["config"]["Cmd"],
            json!(["/bin/sh", "-c", "echo \"$HOME\""])
        );
        assert_eq!(
            c["config"]["Entrypoint"],
            json!(["/bin/sh", "-c", "exec top -b"])
        );
        assert_eq!(
            c["config"]["Healthcheck"]["Test"],
            json!(["NONE"]),
            "{runner:?}"
        );
        let history = c["history"].as_array().unwrap();
        let run = history
            .iter()
            .find(|h| h["created_by"].as_str().unwrap().contains("shell-form"))
            .unwrap();
        // Docker (classic and BuildKit) records the command as run, through
        // SHELL; buildah writes `/bin/sh -c` whatever SHELL says.
        assert_eq!(run["created_by"], "/bin/sh -ec echo shell-form > /sf");

        // -e from SHELL stops at the first failing command.
        let ctx = sb.context(
            "e",
            &[(
                "Containerfile",
                "FROM busybox\nSHELL [\"/bin/sh\", \"-ec\"]\nRUN false; echo not-reached\n",
            )],
        );
        let out = sb.fails(&["bud", "-t", "e", ctx.to_str().unwrap()]);
        let all = String::from_utf8_lossy(&out.stdout);
        assert!(
            !all.lines().any(|l| l == "not-reached"),
            "{runner:?}: {all}"
        );
    }
}
