//! The two routes to one image: `Containerfiles/step-by-step/Containerfile`
//! built with `rbuild bud`, and `examples/step-by-step.sh` with `from`,
//! `run`, `copy`, `config` and `commit`. Both are unpacked with umoci and
//! must have the same files (type, mode, owner, content, link target) and
//! the same runtime config.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Runner, Sandbox};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// path → (kind, mode, uid, gid, content or link target); mtimes differ by design.
fn tree(root: &Path) -> BTreeMap<String, (char, u32, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .display()
            .to_string();
        let (kind, data) = if meta.file_type().is_symlink() {
            (
                'l',
                fs::read_link(entry.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else if meta.is_dir() {
            ('d', Vec::new())
        } else {
            ('f', fs::read(entry.path()).unwrap())
        };
        out.insert(
            rel,
            (kind, meta.mode() & 0o7777, meta.uid(), meta.gid(), data),
        );
    }
    out
}

fn unpack(s: &Sandbox, image: &str) -> PathBuf {
    let layout = s.path().join("layout");
    s.ok(&["push", image, &format!("oci:{}:{image}", layout.display())]);
    let bundle = s.path().join(format!("bundle-{image}"));
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{image}", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bundle.join("rootfs")
}

fn runtime_config(s: &Sandbox, image: &str) -> serde_json::Value {
    let info: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", image])).unwrap();
    info["OCIv1"]["config"].clone()
}

fn both_routes(runner: Runner) {
    let s = Sandbox::new(runner);
    // The sandbox must be readable by the rootless user: copy the inputs in.
    let context = s.mkdir("Containerfiles/step-by-step");
    for f in ["Containerfile", "hello.sh"] {
        fs::copy(
            repo().join("Containerfiles/step-by-step").join(f),
            context.join(f),
        )
        .unwrap();
    }
    s.mkdir("examples");
    let script = s.path().join("examples/step-by-step.sh");
    fs::copy(repo().join("examples/step-by-step.sh"), &script).unwrap();
    // Sandbox::write re-owns the whole sandbox (the copies too) for the runner.
    s.write("examples/.keep", "");
    s.import_busybox();

    s.ok(&["bud", "-t", "by-file", context.to_str().unwrap()]);
    let rbuild = format!(
        "{} --root {} --runroot {}",
        common::shared_binary().display(),
        s.store().display(),
        s.path().join("run").display()
    );
    let out = s
        .command(Path::new("/usr/bin/env"))
        .arg(format!("RBUILD={rbuild}"))
        .arg("sh")
        .arg(&script)
        .arg("by-steps")
        .current_dir(s.path())
        .output()
        .unwrap();
    common::assert_success(&out, &["examples/step-by-step.sh"]);
    assert_eq!(
        s.ok(&["containers", "--noheading"]),
        "",
        "commit --rm removed the container"
    );

    let (a, b) = (unpack(&s, "by-file"), unpack(&s, "by-steps"));
    let (ta, tb) = (tree(&a), tree(&b));
    assert!(ta.contains_key("srv/app/hello.sh") && ta.contains_key("srv/app/latest"));
    for (path, entry) in &ta {
        assert_eq!(
            Some(entry),
            tb.get(path),
            "{runner:?}: {path} differs between the routes"
        );
    }
    assert_eq!(
        ta.keys().collect::<Vec<_>>(),
        tb.keys().collect::<Vec<_>>(),
        "{runner:?}: file lists differ"
    );

    let (ca, cb) = (
        runtime_config(&s, "by-file"),
        runtime_config(&s, "by-steps"),
    );
    assert_eq!(ca, cb, "{runner:?}: configs differ");
    assert_eq!(ca["User"], "app");
    assert_eq!(ca["Entrypoint"], serde_json::json!(["/srv/app/hello.sh"]));

    // And the image works: the entrypoint runs with the CMD as argument.
    let c = s.ok(&["from", "by-steps"]).trim().to_string();
    assert_eq!(
        s.ok(&["run", &c, "--", "/srv/app/hello.sh", "there"]),
        "hello, there\n"
    );
    s.ok(&["rm", &c]);
}

#[test]
fn script_and_containerfile_give_the_same_rootfs_and_config() {
    for runner in Runner::all() {
        both_routes(runner);
    }
}
