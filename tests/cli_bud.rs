//! `rbuild bud` options end to end: Containerfile lookup, ignore-file
//! lookup, `-f -`, `-q`, `--iidfile`, several `-t`, `--layers=false`.

mod common;

use std::fs;
use std::io::Write;
use std::process::Stdio;

use common::{shared_binary, Runner, Sandbox};

#[test]
fn containerfile_and_ignore_file_lookup() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        // Only a Dockerfile and a .dockerignore: both are used.
        let ctx = sb.context(
            "docker",
            &[
                ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
                (".dockerignore", "skip.txt\n"),
                ("skip.txt", "no"),
                ("keep.txt", "yes"),
            ],
        );
        sb.ok(&["bud", "-t", "d", ctx.to_str().unwrap()]);
        let root = sb.unpack("d");
        assert!(root.join("ctx/keep.txt").exists(), "{runner:?}");
        assert!(!root.join("ctx/skip.txt").exists(), "{runner:?}");

        // Containerfile wins over Dockerfile; .containerignore over .dockerignore.
        sb.write("docker/Containerfile", "FROM busybox\nCOPY . /cf/\n");
        sb.write("docker/.containerignore", "keep.txt\n");
        sb.ok(&["bud", "-t", "c", ctx.to_str().unwrap()]);
        let root = sb.unpack("c");
        assert!(root.join("cf/skip.txt").exists(), "{runner:?}");
        assert!(!root.join("cf/keep.txt").exists(), "{runner:?}");

        // -f FILE uses FILE.dockerignore next to it.
        sb.write("files/app.Containerfile", "FROM busybox\nCOPY . /f/\n");
        sb.write(
            "files/app.Containerfile.dockerignore",
            "skip.txt\nkeep.txt\n",
        );
        let file = sb.path().join("files/app.Containerfile");
        sb.ok(&[
            "bud",
            "-t",
            "f",
            "-f",
            file.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ]);
        let root = sb.unpack("f");
        assert!(root.join("f/Dockerfile").exists(), "{runner:?}");
        assert!(!root.join("f/skip.txt").exists() && !root.join("f/keep.txt").exists());

        let empty = sb.mkdir("empty");
        let out = sb.fails(&["bud", empty.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Containerfile") && err.contains("empty"),
            "{err}"
        );
    }
}

#[test]
fn stdin_quiet_iidfile_and_tags() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let ctx = sb.mkdir("ctx");
        let iid = sb.path().join("iid");
        let mut cmd = sb.command(shared_binary());
        cmd.arg("--root").arg(sb.store());
        cmd.arg("--runroot").arg(sb.path().join("run"));
        cmd.args(["bud", "-q", "-t", "one", "-t", "two:v2", "--iidfile"]);
        cmd.arg(&iid).args(["-f", "-"]).arg(&ctx);
        cmd.current_dir(sb.path());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"FROM busybox\nRUN echo noisy\nLABEL via=stdin\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        common::assert_success(&out, &["bud", "-q", "-f", "-"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        // -q: no step or commit messages, the ID last; what a RUN prints
        // still shows, as with buildah.
        let id = stdout.lines().last().unwrap_or_default();
        assert_eq!(id.len(), 64, "{runner:?}: {stdout:?}");
        assert_eq!(stdout, format!("noisy\n{id}\n"), "{runner:?}");
        assert_eq!(fs::read_to_string(&iid).unwrap(), format!("sha256:{id}"));
        for name in ["one", "localhost/two:v2"] {
            let shown = sb.ok(&["inspect", "--format", "{{.FromImageID}}", name]);
            assert_eq!(shown.trim(), id, "{runner:?}: {name}");
        }
        let label = sb.ok(&[
            "inspect",
            "--format",
            "{{json .OCIv1.config.Labels}}",
            "one",
        ]);
        assert_eq!(label.trim(), r#"{"via":"stdin"}"#);
    }
}

#[test]
fn layers_false_and_no_cache_still_build_correctly() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let file = "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n";
        sb.build("l", file, &[], &[]);
        let out = sb.build("l2", file, &[], &["--layers=false"]);
        assert!(!out.contains("Using cache"), "{runner:?}: {out}");
        let root = sb.unpack("l2");
        assert_eq!(fs::read_to_string(root.join("a")).unwrap(), "a\n");
        assert_eq!(fs::read_to_string(root.join("b")).unwrap(), "b\n");
    }
}

#[test]
fn a_context_given_through_a_symlink_is_copied() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let ctx = sb.context(
            "real",
            &[
                ("Containerfile", "FROM busybox\nCOPY . /all/\n"),
                ("a.txt", "A\n"),
                ("sub/b.txt", "B\n"),
            ],
        );
        // Absolute and relative links, given by absolute and relative paths
        // (rbuild runs in the sandbox dir).
        std::os::unix::fs::symlink(&ctx, sb.path().join("abs-link")).unwrap();
        std::os::unix::fs::symlink("real", sb.path().join("rel-link")).unwrap();
        let abs = sb.path().join("abs-link").display().to_string();
        for (n, link) in [abs.as_str(), "rel-link", "abs-link"]
            .into_iter()
            .enumerate()
        {
            let tag = format!("linked{n}");
            sb.ok(&["bud", "-t", &tag, link]);
            let root = sb.unpack(&tag);
            let a = fs::read_to_string(root.join("all/a.txt"));
            assert_eq!(a.ok().as_deref(), Some("A\n"), "{runner:?}: context {link}");
            assert_eq!(
                fs::read_to_string(root.join("all/sub/b.txt")).unwrap(),
                "B\n"
            );
        }
    }
}
