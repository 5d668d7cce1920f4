//! Store robustness under real builds: two `bud`s at once on one store, and
//! `kill -9` in the middle of a build — as root and rootless.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest as _;

use common::{assert_success, shared_binary, Runner, Sandbox};

/// Every blob's bytes hash to its file name, and the store's own fsck finds
/// no problem.
fn assert_store_clean(store: &Path) {
    let blobs = store.join("blobs/sha256");
    if let Ok(entries) = fs::read_dir(&blobs) {
        for entry in entries {
            let entry = entry.unwrap();
            let bytes = fs::read(entry.path()).unwrap();
            let actual = hex::encode(sha2::Sha256::digest(&bytes));
            assert_eq!(
                entry.file_name().to_string_lossy(),
                actual,
                "blob {} does not match its name",
                entry.path().display()
            );
        }
    }
    let problems = rbuild::store::Store::open(store).unwrap().fsck().unwrap();
    assert!(problems.is_empty(), "fsck: {problems:?}");
}

fn spawn_bud(sb: &Sandbox, args: &[&str]) -> Child {
    let mut cmd = sb.command(shared_binary());
    cmd.arg("--root").arg(sb.store());
    cmd.arg("--runroot").arg(sb.path().join("run"));
    cmd.arg("bud").args(args);
    cmd.current_dir(sb.path());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

#[test]
fn two_builds_at_once_both_succeed() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let big = "x".repeat(1 << 20);
        // Both make the same COPY layer, then different RUN layers.
        let a = sb.context(
            "a",
            &[
                ("big.txt", &big),
                (
                    "Containerfile",
                    "FROM busybox\nCOPY big.txt /\nRUN echo a > /who\n",
                ),
            ],
        );
        let b = sb.context(
            "b",
            &[
                ("big.txt", &big),
                (
                    "Containerfile",
                    "FROM busybox\nCOPY big.txt /\nRUN echo b > /who\n",
                ),
            ],
        );
        let first = spawn_bud(&sb, &["-t", "a", a.to_str().unwrap()]);
        let second = spawn_bud(&sb, &["-t", "b", b.to_str().unwrap()]);
        for (child, what) in [(first, "a"), (second, "b")] {
            let out = child.wait_with_output().unwrap();
            assert_success(&out, &["bud", what]);
        }
        let names = sb.ok(&["images", "--format", "{{.Repository}}"]);
        let names: BTreeSet<&str> = names.lines().collect();
        assert!(
            names.contains("localhost/a") && names.contains("localhost/b"),
            "{names:?}"
        );
        for (image, who) in [("a", "a\n"), ("b", "b\n")] {
            let root = sb.unpack(image);
            assert_eq!(
                fs::read_to_string(root.join("who")).unwrap(),
                who,
                "{runner:?}"
            );
            assert_eq!(fs::read(root.join("big.txt")).unwrap().len(), 1 << 20);
        }
        assert_store_clean(&sb.store());
    }
}

/// The pids of `pid` and all its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // The ppid is the second field after the parenthesised command.
        let Some(after) = stat.rsplit_once(')').map(|(_, r)| r.to_string()) else {
            continue;
        };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            parents.push((p, ppid));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let cur = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    tree
}

#[test]
fn kill_9_mid_build_leaves_a_clean_store() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let big: String = (0..400_000).map(|i| format!("{i}\n")).collect();
        let ctx = sb.context(
            "ctx",
            &[
                ("big.txt", &big),
                (
                    "Containerfile",
                    "FROM busybox\nCOPY big.txt /\n\
                     RUN dd if=/dev/urandom of=/r bs=1M count=8 2>/dev/null; echo wrote; sleep 30\n",
                ),
            ],
        );
        // Kill at several moments: while copying/committing, and in the RUN.
        for delay in [Duration::from_millis(60), Duration::from_millis(250)] {
            let child = spawn_bud(&sb, &["-t", "killed", ctx.to_str().unwrap()]);
            std::thread::sleep(delay);
            kill_tree(child);
        }
        let mut child = spawn_bud(&sb, &["-t", "killed", "--no-cache", ctx.to_str().unwrap()]);
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let started = Instant::now();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("wrote") => break,
                Some(_) => {}
                None => panic!("{runner:?}: the build ended before its RUN slept"),
            }
            assert!(started.elapsed() < Duration::from_secs(60));
        }
        kill_tree(child);

        let images = sb.ok(&["images", "--format", "{{.Repository}}"]);
        assert_eq!(
            images.trim(),
            "localhost/busybox",
            "{runner:?}: nothing tagged"
        );
        assert_store_clean(&sb.store());
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(sb.path().to_str().unwrap()),
            "{runner:?}: a mount under the sandbox survived"
        );
        // The store still works: the same build now succeeds.
        sb.write(
            "ctx/Containerfile",
            "FROM busybox\nCOPY big.txt /\nRUN echo done > /done\n",
        );
        sb.ok(&["bud", "-t", "after", ctx.to_str().unwrap()]);
        let root = sb.unpack("after");
        assert_eq!(fs::read_to_string(root.join("big.txt")).unwrap(), big);
        assert_store_clean(&sb.store());
    }
}

/// SIGKILL to the spawned process and everything under it (a rootless run
/// goes through runuser and env), then reap.
fn kill_tree(mut child: Child) {
    let mut tree = process_tree(child.id());
    // Leaves first, so no parent reacts to a child's death.
    tree.reverse();
    for pid in tree {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let _ = child.wait();
}

/// The topmost rbuild process in the tree under `pid`.
fn rbuild_in_tree(pid: u32) -> Option<u32> {
    let bin = shared_binary().canonicalize().unwrap();
    process_tree(pid).into_iter().find(|p| {
        fs::read_link(format!("/proc/{p}/exe"))
            .map(|exe| exe == bin)
            .unwrap_or(false)
    })
}

#[test]
fn sigterm_stops_the_build_and_tags_nothing() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let ctx = sb.context(
            "ctx",
            &[(
                "Containerfile",
                "FROM busybox\nRUN echo started; sleep 30\nRUN touch /never\n",
            )],
        );
        let mut child = spawn_bud(&sb, &["-t", "stopped", ctx.to_str().unwrap()]);
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        while let Some(Ok(l)) = lines.next() {
            if l == "started" {
                break;
            }
        }
        let pid = rbuild_in_tree(child.id()).expect("the rbuild process");
        let before = process_tree(child.id());
        assert!(
            before.len() >= 3,
            "rbuild, the step's helper and sleep: {before:?}"
        );
        let started = Instant::now();
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{runner:?}: SIGTERM did not stop the step"
        );
        assert!(!status.success(), "{runner:?}");
        let images = sb.ok(&["images", "--format", "{{.Repository}}"]);
        assert_eq!(images.trim(), "localhost/busybox", "{runner:?}");
        // Nothing of the build is left running (zombies are gone too). The
        // kernel reaps the step's pid namespace asynchronously: on a loaded
        // machine that takes a moment, so wait for it (bounded).
        let alive = |p: &u32| Path::new(&format!("/proc/{p}")).exists();
        let deadline = Instant::now() + Duration::from_secs(5);
        while before.iter().any(alive) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let leftovers: Vec<u32> = before.into_iter().filter(alive).collect();
        assert!(
            leftovers.is_empty(),
            "{runner:?}: processes left: {leftovers:?}"
        );
        assert_store_clean(&sb.store());
    }
}

#[test]
fn kill_9_mid_push_leaves_store_and_layout_usable() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "big",
            "FROM busybox\nRUN dd if=/dev/urandom of=/r bs=1M count=24 2>/dev/null\n",
            &[],
            &[],
        );
        let layout = sb.path().join("layout");
        let dest = format!("oci:{}:big", layout.display());
        for delay in [Duration::from_millis(100), Duration::from_millis(400)] {
            let mut cmd = sb.command(shared_binary());
            cmd.arg("--root").arg(sb.store());
            cmd.arg("--runroot").arg(sb.path().join("run"));
            cmd.args(["push", "-q", "big", &dest]);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let child = cmd.spawn().unwrap();
            std::thread::sleep(delay);
            kill_tree(child);
            assert_store_clean(&sb.store());
        }
        sb.ok(&["push", "-q", "big", &dest]);
        assert_store_clean(&sb.store());
        // skopeo verifies every blob's digest while copying.
        common::tool(
            "skopeo",
            &[
                "copy",
                "-q",
                &dest,
                &format!("dir:{}", sb.path().join("copy").display()),
            ],
        );
        let root = sb.unpack("big");
        assert_eq!(
            fs::metadata(root.join("r")).unwrap().len(),
            24 << 20,
            "{runner:?}"
        );
    }
}
