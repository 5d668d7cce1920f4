//! Options of the working-container commands: `run --user/--workingdir/
//! --env/--network none/--mount/--volume`, `copy --from` an image and a
//! container, `add` of an archive, `config` fields in the committed
//! image, `commit --timestamp` reproducibility and `--format docker`.

mod common;

use std::process::Command;

use common::{Runner, Sandbox};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn run_options(runner: Runner) {
    let s = Sandbox::new(runner);
    s.write("shared/input.txt", "from the host\n");
    s.import_busybox();
    let c = s.ok(&["from", "busybox"]).trim().to_string();
    s.ok(&[
        "config",
        "--env",
        "FROM_CONFIG=1",
        "--workingdir",
        "/work",
        &c,
    ]);
    let out = s.ok(&[
        "run",
        "--user",
        "app",
        "--env",
        "EXTRA=2",
        &c,
        "--",
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $FROM_CONFIG$EXTRA; echo $HOME",
    ]);
    assert_eq!(out, "1000\n1000\n/work\n12\n/home/app\n", "{runner:?}");
    assert_eq!(
        s.ok(&["run", "--workingdir", "/tmp", &c, "--", "pwd"]),
        "/tmp\n"
    );
    // /proc/net/dev lists the interfaces of the reader's network namespace.
    let dev = s.ok(&["run", "--network", "none", &c, "--", "cat", "/proc/net/dev"]);
    let links: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(links, vec!["lo"], "{runner:?}");
    let shared = s.path().join("shared");
    let mount = format!("type=bind,src={},dst=/mnt/shared,ro", shared.display());
    assert_eq!(
        s.ok(&[
            "run",
            "--mount",
            &mount,
            &c,
            "--",
            "cat",
            "/mnt/shared/input.txt"
        ]),
        "from the host\n"
    );
    let volume = format!("{}:/vol:ro", shared.display());
    let out = s.rbuild(&["run", "-v", &volume, &c, "--", "sh", "-c", "touch /vol/x"]);
    assert!(!out.status.success(), "a :ro volume is read-only");
    // The exit status is the command's.
    assert_eq!(
        s.rbuild(&["run", &c, "--", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    // Mount targets never reach the container's changes.
    s.ok(&["commit", &c, "opts"]);
    let c2 = s.ok(&["from", "opts"]).trim().to_string();
    assert_eq!(
        s.rbuild(&["run", &c2, "--", "test", "-e", "/mnt/shared/input.txt"])
            .status
            .code(),
        Some(1)
    );
    s.ok(&["rm", "--all"]);
}

#[test]
fn run_honours_user_workdir_env_network_and_mounts() {
    for runner in Runner::all() {
        run_options(runner);
    }
}

#[test]
fn copy_from_image_and_container_and_add_an_archive() {
    let s = Sandbox::new(Runner::Root);
    s.import_busybox();
    let src = s
        .ok(&["from", "--name", "src", "busybox"])
        .trim()
        .to_string();
    s.ok(&[
        "run",
        &src,
        "--",
        "sh",
        "-c",
        "mkdir /out && echo built > /out/artifact",
    ]);
    let dst = s.ok(&["from", "scratch"]).trim().to_string();
    s.ok(&["copy", "--from", &src, &dst, "/out/artifact", "/artifact"]);
    s.ok(&[
        "copy",
        "--from",
        "busybox",
        &dst,
        "/bin/busybox",
        "/bin/busybox",
    ]);
    let archive_dir = s.mkdir("archive");
    std::fs::write(archive_dir.join("inside.txt"), "unpacked\n").unwrap();
    let tar = s.path().join("a.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&tar)
        .arg("-C")
        .arg(&archive_dir)
        .arg("inside.txt")
        .status()
        .unwrap();
    assert!(st.success());
    s.ok(&["add", &dst, tar.to_str().unwrap(), "/extracted/"]);
    s.ok(&["copy", &dst, tar.to_str().unwrap(), "/copied/"]);
    let out = s.ok(&[
        "run",
        &dst,
        "--",
        "/bin/busybox",
        "cat",
        "/artifact",
        "/extracted/inside.txt",
    ]);
    assert_eq!(out, "built\nunpacked\n");
    assert_eq!(
        s.ok(&["run", &dst, "--", "/bin/busybox", "ls", "/copied"]),
        "a.tar.gz\n",
        "copy does not unpack"
    );
    let out = s.rbuild(&["copy", "--from", "nosuch", &dst, "/x", "/x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no container or image"));
    s.ok(&["rm", "--all"]);
}

#[test]
fn config_fields_reach_the_image_and_timestamps_reproduce() {
    let s = Sandbox::new(Runner::Root);
    s.import_busybox();
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let c = s
            .ok(&["from", "--name", name, "busybox"])
            .trim()
            .to_string();
        s.ok(&["run", &c, "--", "sh", "-c", "echo same > /same"]);
        s.ok(&[
            "config",
            "--entrypoint",
            "/bin/sh -c 'exec app'",
            "--user",
            "app",
            "--volume",
            "/data",
            "--stop-signal",
            "SIGTERM",
            "--healthcheck",
            "CMD-SHELL true",
            "--healthcheck-interval",
            "30s",
            "--onbuild",
            "RUN echo child",
            "--author",
            "someone",
            "--shell",
            "/bin/sh -eu -c",
            "--annotation",
            "org.example.a=b",
            &c,
        ]);
        ids.push(
            s.ok(&[
                "commit",
                "--timestamp",
                "1700000000",
                &c,
                &format!("ts-{name}"),
            ])
            .trim()
            .to_string(),
        );
    }
    assert_eq!(
        ids[0], ids[1],
        "same content and --timestamp give the same image ID"
    );
    let info = json(&s.ok(&["inspect", "ts-one"]));
    let oci = &info["OCIv1"];
    assert_eq!(oci["created"], "2023-11-14T22:13:20Z");
    assert_eq!(oci["author"], "someone");
    let cfg = &oci["config"];
    assert_eq!(
        cfg["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c", "/bin/sh -c 'exec app'"])
    );
    assert_eq!(cfg["User"], "app");
    assert!(cfg["Volumes"].get("/data").is_some());
    assert_eq!(cfg["StopSignal"], "SIGTERM");
    assert_eq!(
        cfg["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(cfg["Healthcheck"]["Interval"], 30_000_000_000i64);
    assert_eq!(cfg["OnBuild"], serde_json::json!(["RUN echo child"]));
    assert_eq!(cfg["Shell"], serde_json::json!(["/bin/sh", "-eu", "-c"]));
    let manifest = json(info["Manifest"].as_str().unwrap());
    assert_eq!(manifest["annotations"]["org.example.a"], "b");

    let c = s.ok(&["from", "busybox"]).trim().to_string();
    s.ok(&["run", &c, "--", "touch", "/x"]);
    s.ok(&[
        "config",
        "--created-by",
        "touch /x by hand",
        "--comment",
        "why",
        &c,
    ]);
    s.ok(&["commit", &c, "described"]);
    let history: serde_json::Value = json(&s.ok(&["history", "--json", "--no-trunc", "described"]));
    let text = history.to_string();
    assert!(
        text.contains("touch /x by hand") && text.contains("why"),
        "{text}"
    );
    s.ok(&["commit", "--format", "docker", &c, "dockerish"]);
    let manifest = json(
        json(&s.ok(&["inspect", "dockerish"]))["Manifest"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    s.ok(&["rm", "--all"]);
}
