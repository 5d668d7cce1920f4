//! Dockerfile semantics that cross instructions, end to end: COPY through
//! symlinks in the image and relative to WORKDIR, mtimes, ARG/ENV scoping
//! and expansion, USER with a group, RUN bind/tmpfs mounts.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use common::{Runner, Sandbox};

#[test]
fn copy_through_image_symlinks_workdir_and_mtimes() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let ctx = sb.context(
            "ctx",
            &[
                ("a.txt", "A\n"),
                ("tree/one", "1\n"),
                ("tree/sub/two", "2\n"),
                ("tree/skip.log", "no\n"),
            ],
        );
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        fs::File::options()
            .write(true)
            .open(ctx.join("a.txt"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        sb.write(
            "ctx/Containerfile",
            "FROM busybox\n\
             RUN mkdir -p /opt/real && ln -s /opt/real /link && echo old > /opt/real/existing\n\
             COPY a.txt /link/\n\
             COPY a.txt /opt/real/existing\n\
             WORKDIR /w\n\
             COPY a.txt rel/\n\
             COPY --chmod=0700 tree /dirmode/\n\
             COPY --exclude=*.log tree /excluded/\n\
             COPY --parents tree/sub/two /parents/\n\
             ARG DEST=/from-arg\n\
             ENV SUB=env-sub\n\
             COPY a.txt $DEST/${SUB}/\n",
        );
        sb.ok(&["bud", "-t", "sem", ctx.to_str().unwrap()]);
        let root = sb.unpack("sem");
        // The image's symlink is followed: the file lands in its target.
        assert_eq!(
            fs::read_to_string(root.join("opt/real/a.txt")).unwrap(),
            "A\n"
        );
        assert!(
            fs::symlink_metadata(root.join("link"))
                .unwrap()
                .is_symlink(),
            "{runner:?}"
        );
        assert_eq!(
            fs::read_to_string(root.join("opt/real/existing")).unwrap(),
            "A\n"
        );
        assert_eq!(fs::read_to_string(root.join("w/rel/a.txt")).unwrap(), "A\n");
        // COPY keeps the source's mtime.
        let m = fs::metadata(root.join("w/rel/a.txt")).unwrap();
        assert_eq!(m.mtime(), 1_600_000_000, "{runner:?}");
        let mode = |p: &str| fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("dirmode/one"), 0o700);
        assert_eq!(mode("dirmode/sub"), 0o700);
        assert!(root.join("excluded/one").exists() && root.join("excluded/sub/two").exists());
        assert!(!root.join("excluded/skip.log").exists(), "{runner:?}");
        assert_eq!(
            fs::read_to_string(root.join("parents/tree/sub/two")).unwrap(),
            "2\n",
            "{runner:?}"
        );
        assert_eq!(
            fs::read_to_string(root.join("from-arg/env-sub/a.txt")).unwrap(),
            "A\n"
        );
    }
}

#[test]
fn args_env_and_user_scoping() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let out = sb.build(
            "scoped",
            "ARG BASE=busybox\n\
             ARG GLOBAL=global-value\n\
             FROM $BASE\n\
             ARG GLOBAL\n\
             ARG LOCAL=default\n\
             ENV FROM_ARG=$LOCAL\n\
             RUN echo \"seen global=$GLOBAL local=$LOCAL env=$FROM_ARG\"\n\
             USER app:staff\n\
             RUN echo \"ids $(id -u):$(id -g)\" && touch /tmp/owned\n",
            &[],
            &["--build-arg", "LOCAL=overridden"],
        );
        assert!(
            out.lines()
                .any(|l| l == "seen global=global-value local=overridden env=overridden"),
            "{runner:?}: {out}"
        );
        assert!(out.lines().any(|l| l == "ids 1000:50"), "{runner:?}: {out}");
        let config = sb.config("scoped");
        let env: Vec<String> = config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        // ENV persists; build args do not end up in the image's config.
        assert!(env.contains(&"FROM_ARG=overridden".to_string()), "{env:?}");
        assert!(!env
            .iter()
            .any(|e| e.starts_with("LOCAL=") || e.starts_with("GLOBAL=")));
        assert_eq!(config["config"]["User"], "app:staff");
        let root = sb.unpack("scoped");
        let owned = fs::metadata(root.join("tmp/owned")).unwrap();
        assert_eq!((owned.uid(), owned.gid()), (1000, 50), "{runner:?}");
    }
}

#[test]
fn run_bind_and_tmpfs_mounts_leave_nothing_behind() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let out = sb.build(
            "mounted",
            "FROM busybox\n\
             RUN --mount=type=bind,source=data,target=/data cat /data/in.txt > /copied \\\n\
                 && (touch /data/x 2>/dev/null && echo writable || echo read-only)\n\
             RUN --mount=type=bind,from=busybox,source=/etc,target=/imgetc grep -c app /imgetc/passwd > /count\n\
             RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && cat /scratch/t > /from-tmpfs\n",
            &[("data/in.txt", "from context\n")],
            &[],
        );
        assert!(out.lines().any(|l| l == "read-only"), "{runner:?}: {out}");
        let root = sb.unpack("mounted");
        assert_eq!(
            fs::read_to_string(root.join("copied")).unwrap(),
            "from context\n"
        );
        assert_eq!(fs::read_to_string(root.join("count")).unwrap(), "1\n");
        assert_eq!(fs::read_to_string(root.join("from-tmpfs")).unwrap(), "t\n");
        for gone in ["data/in.txt", "imgetc/passwd", "scratch/t"] {
            assert!(!root.join(gone).exists(), "{runner:?}: {gone} in the layer");
        }
    }
}
