//! Working containers end to end, as root and as the unprivileged user:
//! buildah's step-by-step flow checked with umoci, skopeo and `rbuild
//! inspect`; `commit --change -m` in the history; layers added by repeated
//! commits; `mount` inside `unshare`; `containers`, `rename`, `rm`, and
//! `rmi` refusing an image a container uses.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{Runner, Sandbox};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn inspect(s: &Sandbox, image: &str) -> serde_json::Value {
    json(&s.ok(&["inspect", image]))
}

fn layer_count(s: &Sandbox, image: &str) -> usize {
    inspect(s, image)["OCIv1"]["rootfs"]["diff_ids"]
        .as_array()
        .map_or(0, |a| a.len())
}

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `rbuild push IMAGE oci:DIR:latest`, then `umoci unpack` (as root, so
/// owners are kept) into `bundle`; returns the rootfs.
fn unpack(s: &Sandbox, image: &str, tag: &str) -> std::path::PathBuf {
    let layout = s.path().join(format!("layout-{tag}"));
    s.ok(&["push", image, &format!("oci:{}:{tag}", layout.display())]);
    let bundle = s.path().join(format!("bundle-{tag}"));
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{tag}", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    bundle.join("rootfs")
}

fn step_by_step(runner: Runner) {
    let s = Sandbox::new(runner);
    // Sandbox::write re-owns the whole sandbox for the rootless user: write
    // before the store holds files of other owners.
    s.write("ctx/app.sh", "#!/bin/sh\necho app\n");
    s.import_busybox();
    let c = s.ok(&["from", "busybox"]).trim().to_string();
    assert_eq!(c, "busybox-working-container");
    s.ok(&[
        "run",
        &c,
        "--",
        "sh",
        "-c",
        "mkdir -p /srv && echo from-run > /srv/run.txt && chown 1000:1000 /srv/run.txt",
    ]);
    // Changes accumulate: a second run sees the first one's file.
    assert_eq!(
        s.ok(&["run", &c, "--", "cat", "/srv/run.txt"]),
        "from-run\n"
    );
    s.ok(&[
        "copy",
        "--chmod",
        "0755",
        &c,
        "ctx/app.sh",
        "/usr/local/bin/app",
    ]);
    s.ok(&[
        "config",
        "--cmd",
        r#"["/usr/local/bin/app"]"#,
        "--env",
        "MODE=prod",
        "--label",
        "org.example.flow=steps",
        "--port",
        "8080",
        "--workingdir",
        "/srv",
        &c,
    ]);
    let id = s.ok(&["commit", &c, "flow"]).trim().to_string();
    assert_eq!(id.len(), 64, "commit prints the image ID: {id}");

    let info = inspect(&s, "flow");
    let config = &info["OCIv1"]["config"];
    assert_eq!(config["Cmd"], serde_json::json!(["/usr/local/bin/app"]));
    assert!(config["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("MODE=prod")));
    assert_eq!(config["Labels"]["org.example.flow"], "steps");
    assert!(config["ExposedPorts"].get("8080/tcp").is_some());
    assert_eq!(config["WorkingDir"], "/srv");
    assert_eq!(
        layer_count(&s, "flow"),
        2,
        "busybox + the container's changes"
    );

    let rootfs = unpack(&s, "flow", "flow");
    assert_eq!(
        fs::read_to_string(rootfs.join("srv/run.txt")).unwrap(),
        "from-run\n"
    );
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(rootfs.join("srv/run.txt")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000), "{runner:?}");
    let app = fs::metadata(rootfs.join("usr/local/bin/app")).unwrap();
    assert_eq!(app.mode() & 0o7777, 0o755);
    assert!(rootfs.join("bin/busybox").is_file());

    let layout = s.path().join("layout-flow");
    let sk = json(&tool(
        "skopeo",
        &["inspect", &format!("oci:{}:flow", layout.display())],
    ));
    assert_eq!(sk["Labels"]["org.example.flow"], "steps");
    assert_eq!(sk["Layers"].as_array().unwrap().len(), 2);

    // The image runs what was configured.
    let c2 = s.ok(&["from", "flow"]).trim().to_string();
    assert_eq!(c2, "flow-working-container");
    assert_eq!(s.ok(&["run", &c2, "--", "/usr/local/bin/app"]), "app\n");
    s.ok(&["rm", &c, &c2]);
}

#[test]
fn step_by_step_flow_as_root_and_rootless() {
    for runner in Runner::all() {
        step_by_step(runner);
    }
}

fn change_message_and_layers(runner: Runner) {
    let s = Sandbox::new(runner);
    s.import_busybox();
    let c = s
        .ok(&["from", "--name", "hand", "busybox"])
        .trim()
        .to_string();
    assert_eq!(c, "hand");
    s.ok(&["run", &c, "--", "sh", "-c", "echo one > /one"]);
    s.ok(&[
        "commit",
        "-c",
        r#"CMD ["/bin/app"]"#,
        "-c",
        "ENV FIXED=yes",
        "-m",
        "hand fix",
        &c,
        "fixed",
    ]);
    let info = inspect(&s, "fixed");
    assert_eq!(
        info["OCIv1"]["config"]["Cmd"],
        serde_json::json!(["/bin/app"])
    );
    assert!(info["OCIv1"]["config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("FIXED=yes")));
    let history = json(&s.ok(&["history", "--json", "fixed"]));
    assert!(
        history.to_string().contains("hand fix"),
        "the message is in the history: {history}"
    );
    assert_eq!(layer_count(&s, "fixed"), 2);

    // A second commit adds only the new change as one more layer.
    s.ok(&["run", &c, "--", "sh", "-c", "echo two > /two"]);
    s.ok(&["commit", &c, "second"]);
    assert_eq!(layer_count(&s, "second"), 3);
    let rootfs = unpack(&s, "second", "second");
    assert!(rootfs.join("one").is_file() && rootfs.join("two").is_file());
    // The --change of the first commit applied to that image only.
    assert!(inspect(&s, "second")["OCIv1"]["config"]["Cmd"] != serde_json::json!(["/bin/app"]));
    // Nothing changed: the image has no new layer.
    s.ok(&["commit", &c, "third"]);
    assert_eq!(layer_count(&s, "third"), 3);
    // --squash: one layer with everything.
    s.ok(&["commit", "--squash", &c, "flat"]);
    assert_eq!(layer_count(&s, "flat"), 1);
    let flat = unpack(&s, "flat", "flat");
    assert!(
        flat.join("one").is_file()
            && flat.join("two").is_file()
            && flat.join("bin/busybox").is_file()
    );

    // A deletion commits as a whiteout: gone from the unpacked image.
    s.ok(&["run", &c, "--", "rm", "/one"]);
    s.ok(&["commit", &c, "deleted"]);
    assert_eq!(layer_count(&s, "deleted"), 4);
    let deleted = unpack(&s, "deleted", "deleted");
    assert!(!deleted.join("one").exists() && deleted.join("two").is_file());
    // --change refuses what cannot apply at commit.
    let out = s.rbuild(&["commit", "-c", "RUN true", &c, "bad"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be applied at commit"));
    s.ok(&["rm", &c]);
}

#[test]
fn commit_change_message_and_layer_counts() {
    for runner in Runner::all() {
        change_message_and_layers(runner);
    }
}

fn mount_under_unshare(runner: Runner) {
    let s = Sandbox::new(runner);
    let host_file = s.write("payload.txt", "by hand\n");
    s.import_busybox();
    let c = s.ok(&["from", "busybox"]).trim().to_string();
    let bin = common::shared_binary().display().to_string();
    let store = s.store().display().to_string();
    let run = s.path().join("run").display().to_string();
    let script = format!(
        "set -e; m=$({bin} --root {store} --runroot {run} mount {c}); cp {} \"$m/hand.txt\"; ls \"$m/bin/busybox\"",
        host_file.display()
    );
    let out = s.rbuild(&["unshare", "--", "sh", "-c", &script]);
    common::assert_success(&out, &["unshare", "sh", "-c", &script]);
    if runner == Runner::Root {
        // As root the mount is in the caller's namespace and outlives rbuild.
        let listed = s.ok(&["mount"]);
        assert!(listed.contains(&c), "mount lists {c}: {listed}");
        // run goes through the existing mount and sees the file.
        assert_eq!(s.ok(&["run", &c, "--", "cat", "/hand.txt"]), "by hand\n");
        // umount takes it down; mount makes it again on demand.
        assert_eq!(s.ok(&["umount", &c]).trim().len(), 64);
        assert_eq!(s.ok(&["mount"]), "");
        let path = s.ok(&["mount", &c]);
        assert!(Path::new(path.trim()).join("hand.txt").is_file());
    } else {
        // Rootless, a mount outside `unshare` would vanish: refused with the fix.
        let out = s.rbuild(&["mount", &c]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("rbuild unshare"));
    }
    s.ok(&["commit", &c, "handmade"]);
    let rootfs = unpack(&s, "handmade", "hand");
    assert_eq!(
        fs::read_to_string(rootfs.join("hand.txt")).unwrap(),
        "by hand\n"
    );
    s.ok(&["rm", &c]);
    if runner == Runner::Root {
        assert_eq!(s.ok(&["mount"]), "", "rm unmounted the container");
    }
}

#[test]
fn mount_under_unshare_then_commit() {
    for runner in Runner::all() {
        mount_under_unshare(runner);
    }
}

fn listing_and_removal(runner: Runner) {
    let s = Sandbox::new(runner);
    s.import_busybox();
    let a = s.ok(&["from", "busybox"]).trim().to_string();
    let b = s.ok(&["from", "busybox"]).trim().to_string();
    let scratch = s.ok(&["from", "scratch"]).trim().to_string();
    assert_eq!(b, "busybox-working-container-1");
    assert_eq!(scratch, "working-container");

    let table = s.ok(&["containers"]);
    let mut lines = table.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("CONTAINER ID  BUILDER  IMAGE ID     IMAGE NAME"));
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.contains("localhost/busybox:latest"));

    let list = json(&s.ok(&["containers", "--json"]));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["containername"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![a.as_str(), b.as_str(), scratch.as_str()]);
    assert!(list[0]["builder"].as_bool().unwrap());
    assert_eq!(list[0]["id"].as_str().unwrap().len(), 64);

    let formatted = s.ok(&[
        "containers",
        "--format",
        "{{.ContainerName}}:{{.ImageName}}",
        "--filter",
        "name=-1",
    ]);
    assert_eq!(formatted, format!("{b}:localhost/busybox:latest\n"));

    let inspected = json(&s.ok(&["inspect", "--type", "container", &a]));
    assert_eq!(inspected["Container"], a.as_str());
    assert_eq!(inspected["FromImage"], "localhost/busybox:latest");

    s.ok(&["rename", &b, "renamed"]);
    assert!(
        s.ok(&["containers", "-q", "--filter", "name=renamed"])
            .trim()
            .len()
            == 64,
        "buildah's containers -q prints whole IDs"
    );

    // rmi refuses an image a container uses, unless --force.
    let out = s.rbuild(&["rmi", "busybox"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by container"));
    assert!(s.ok(&["images", "-q"]).trim().len() >= 12);

    let removed = s.ok(&["rm", &scratch]);
    assert_eq!(removed.trim().len(), 64);
    let out = s.rbuild(&["rm", &scratch]);
    assert!(!out.status.success(), "removing twice fails");

    s.ok(&["rmi", "--force", "busybox"]);
    assert_eq!(
        s.ok(&["containers", "--noheading"]),
        "",
        "--force removed the containers using it"
    );
    assert_eq!(s.ok(&["images", "-q"]).trim(), "");
}

#[test]
fn containers_listing_rename_rm_and_rmi() {
    for runner in Runner::all() {
        listing_and_removal(runner);
    }
}

#[test]
fn containers_survive_across_commands_with_state_in_the_store() {
    let s = Sandbox::new(Runner::Root);
    s.import_busybox();
    let c = s.ok(&["from", "busybox"]).trim().to_string();
    s.ok(&["run", &c, "--", "touch", "/kept"]);
    // A "reboot": the run root disappears; the container is still usable.
    let _ = fs::remove_dir_all(s.path().join("run"));
    assert!(!Path::new(&s.path().join("run")).exists());
    s.ok(&["run", &c, "--", "test", "-f", "/kept"]);
    s.ok(&["rm", &c]);
}

#[test]
fn a_commit_waits_for_a_running_command_of_the_same_container() {
    let s = Sandbox::new(Runner::Root);
    s.import_busybox();
    let c = s.ok(&["from", "busybox"]).trim().to_string();
    let mut running = Command::new(common::shared_binary())
        .arg("--root")
        .arg(s.store())
        .arg("--runroot")
        .arg(s.path().join("run"))
        .args([
            "run",
            &c,
            "--",
            "sh",
            "-c",
            "touch /started; sleep 2; touch /finished",
        ])
        .spawn()
        .unwrap();
    let started = s.store().join("containers").join(&c).join("diff/started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = s.rbuild(&["commit", &c, "after-run"]);
    common::assert_success(&out, &["commit"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("waiting for container"));
    assert!(running.wait().unwrap().success());
    // The commit ran after the command: both files are in the image.
    let rootfs = unpack(&s, "after-run", "after");
    assert!(rootfs.join("started").is_file() && rootfs.join("finished").is_file());
    s.ok(&["rm", &c]);
    assert!(
        fs::read_dir(s.path().join("run/containers"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true),
        "rm leaves nothing of the container in the run root"
    );
}

#[test]
fn prune_keeps_what_a_container_stands_on() {
    let s = Sandbox::new(Runner::Root);
    s.import_busybox();
    let c = s.ok(&["from", "busybox"]).trim().to_string();
    s.ok(&["run", &c, "--", "touch", "/committed"]);
    // An unnamed commit: a dangling image, but the container now sits on its layer.
    s.ok(&["commit", &c]);
    s.ok(&["prune", "--all"]);
    s.ok(&["run", &c, "--", "test", "-f", "/committed"]);
    s.ok(&["run", &c, "--", "test", "-x", "/bin/busybox"]);
    s.ok(&["rm", &c]);
}
