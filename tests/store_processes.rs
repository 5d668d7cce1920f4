//! The store across processes: racing commits, parallel builds, `kill -9`
//! in the middle of writes, and an unprivileged caller.
//!
//! Child processes are this test binary re-run with `--exact helper` and
//! `RBUILD_STORE_TEST_MODE` choosing what the helper does; without the
//! variable the `helper` test returns at once.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use rbuild::digest::Digest;
use rbuild::store::{CacheEntry, ChainId, ImageRecord, Store};

const MODE: &str = "RBUILD_STORE_TEST_MODE";
const ROOT: &str = "RBUILD_STORE_TEST_ROOT";
const ARG: &str = "RBUILD_STORE_TEST_ARG";

#[test]
fn helper() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let root = std::env::var(ROOT).map(PathBuf::from).unwrap_or_default();
    let arg = std::env::var(ARG).unwrap_or_default();
    match mode.as_str() {
        "commit-race" => helper_commit_race(&root, &arg),
        "blob-forever" => helper_blob_forever(&root),
        "index-churn" => helper_index_churn(&root),
        "gc-churn" => helper_gc_churn(&root),
        "build" => helper_build(&root, &arg),
        "rootless" => helper_rootless(),
        other => panic!("unknown helper mode {other}"),
    }
}

/// A helper process, killed on drop so a failing test leaves none behind.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Helper {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Helper {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn spawn(mode: &str, root: &Path, arg: &str) -> Helper {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper", "--nocapture", "--test-threads=1"])
        .env(MODE, mode)
        .env(ROOT, root)
        .env(ARG, arg)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    Helper(child)
}

/// Reads the child's stdout up to a line equal to `marker`; the rest of
/// what it said so far is returned.
fn wait_for(out: &mut BufReader<ChildStdout>, marker: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child exited before {marker}: {seen:?}"
        );
        let line = line.trim_end().to_string();
        // The harness prints "test helper ... " without a newline first.
        if line.ends_with(marker) {
            return seen;
        }
        seen.push(line);
    }
}

fn layer_with(s: &Store, parent: Option<&ChainId>, content: &str) -> ChainId {
    let p = s.prepare_layer(parent).unwrap();
    fs::create_dir_all(p.upper().join("etc")).unwrap();
    fs::write(p.upper().join("etc/content"), content).unwrap();
    s.commit_layer(p, Digest::of(content.as_bytes()), content.len() as u64)
        .unwrap()
}

fn put_image(s: &Store, names: Vec<String>, layers: &[ChainId], salt: &str) -> ImageRecord {
    let id = s.put_blob(format!("config {salt}").as_bytes()).unwrap();
    let manifest = s.put_blob(format!("manifest {id}").as_bytes()).unwrap();
    let rec = ImageRecord {
        id,
        names,
        manifest,
        index: None,
        top_layer: layers.last().copied(),
        layers: layers.to_vec(),
        created: "2026-01-01T00:00:00Z".into(),
        size: 1,
    };
    s.put_image(&rec).unwrap();
    rec
}

fn assert_clean(s: &Store) {
    let problems = s.fsck().unwrap();
    assert!(problems.is_empty(), "fsck: {problems:#?}");
    s.images().unwrap();
}

// --- commit_layer racing with itself ---------------------------------------

fn helper_commit_race(root: &Path, content: &str) {
    let s = Store::open(root).unwrap();
    let p = s.prepare_layer(None).unwrap();
    for i in 0..50 {
        fs::write(p.upper().join(format!("f{i}")), content).unwrap();
    }
    println!("PREPARED");
    let go = root.join(format!("go-{content}"));
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let chain = s
        .commit_layer(p, Digest::of(content.as_bytes()), 1)
        .unwrap();
    println!("CHAIN {chain}");
}

#[test]
fn commit_layer_races_between_processes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = Store::open(&root).unwrap();
    for round in 0..4 {
        let content = format!("round{round}");
        let mut children: Vec<_> = (0..2)
            .map(|_| spawn("commit-race", &root, &content))
            .collect();
        let mut outs: Vec<_> = children
            .iter_mut()
            .map(|c| BufReader::new(c.stdout.take().unwrap()))
            .collect();
        for out in &mut outs {
            wait_for(out, "PREPARED");
        }
        fs::write(root.join(format!("go-{content}")), b"").unwrap();
        let want = format!(
            "CHAIN {}",
            ChainId::new(None, &Digest::of(content.as_bytes()))
        );
        for (child, out) in children.iter_mut().zip(&mut outs) {
            let mut rest = String::new();
            std::io::Read::read_to_string(out, &mut rest).unwrap();
            assert!(child.wait().unwrap().success());
            assert!(rest.lines().any(|l| l.ends_with(&want)), "{rest}");
        }
    }
    assert_eq!(s.layers().unwrap().len(), 4);
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    assert_clean(&s);
}

#[test]
fn commit_layer_races_between_threads() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    for round in 0..10 {
        let barrier = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (s, barrier) = (s.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let p = s.prepare_layer(None).unwrap();
                    fs::write(p.upper().join("who"), format!("thread {t}")).unwrap();
                    barrier.wait();
                    s.commit_layer(p, Digest::of(format!("r{round}").as_bytes()), 8)
                        .unwrap()
                })
            })
            .collect();
        let chains: Vec<ChainId> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(chains.windows(2).all(|w| w[0] == w[1]));
        // Exactly one thread's content won, whole.
        let who = fs::read_to_string(s.layer_diff_path(&chains[0]).join("who")).unwrap();
        assert!(who.starts_with("thread "));
    }
    assert_eq!(s.layers().unwrap().len(), 10);
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    assert_clean(&s);
}

// --- two builds at once ------------------------------------------------------

fn helper_build(root: &Path, who: &str) {
    let s = Store::open(root).unwrap();
    let _lease = s.lease().unwrap();
    let mut parent = None;
    let mut chain = Vec::new();
    for step in 0..8 {
        // Steps 0-3 are the same in both builds (a shared base), the rest differ.
        let content = if step < 4 {
            format!("shared {step}")
        } else {
            format!("{who} {step}")
        };
        let l = layer_with(&s, parent.as_ref(), &content);
        chain.push(l);
        parent = Some(l);
        let key = Digest::of(format!("{who} key {step}").as_bytes());
        s.cache_put(
            &key,
            &CacheEntry {
                layer: Some(l),
                blob: None,
                data: serde_json::Value::Null,
            },
        )
        .unwrap();
    }
    put_image(
        &s,
        vec![
            format!("localhost/{who}:latest"),
            "localhost/shared:latest".into(),
        ],
        &chain,
        who,
    );
    s.gc().unwrap();
}

#[test]
fn two_builds_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = Store::open(&root).unwrap();
    let children: Vec<_> = ["alpha", "beta"]
        .iter()
        .map(|w| spawn("build", &root, w))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let images = s.images().unwrap();
    assert_eq!(images.len(), 2);
    let alpha = s.resolve_image("localhost/alpha:latest").unwrap();
    let beta = s.resolve_image("localhost/beta:latest").unwrap();
    assert_eq!(alpha.layers[..4], beta.layers[..4]);
    let shared = s.resolve_image("localhost/shared:latest").unwrap();
    assert!(shared.id == alpha.id || shared.id == beta.id);
    assert_eq!(s.layers().unwrap().len(), 4 + 4 + 4);
    assert_clean(&s);
}

// --- kill -9 -----------------------------------------------------------------

fn helper_blob_forever(root: &Path) {
    let s = Store::open(root).unwrap();
    let mut w = s.blob_writer().unwrap();
    let chunk = vec![0x5au8; 64 << 10];
    w.write_all(&chunk).unwrap();
    w.flush().unwrap();
    println!("READY");
    // Keep writing, slowly and boundedly (8 MiB), then stay uncommitted
    // until killed.
    for _ in 0..128 {
        w.write_all(&chunk).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    loop {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kill_during_blob_write_leaves_no_blob() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = Store::open(&root).unwrap();
    let kept = s.put_blob(b"committed before the crash").unwrap();
    let mut child = spawn("blob-forever", &root, "");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for(&mut out, "READY");
    std::thread::sleep(Duration::from_millis(30));
    child.kill().unwrap();
    child.wait().unwrap();

    let blobs: Vec<_> = fs::read_dir(root.join("blobs/sha256")).unwrap().collect();
    assert_eq!(blobs.len(), 1, "only the blob committed before the crash");
    assert!(s.has_blob(&kept));
    assert_clean(&s);
    let staged: Vec<_> = fs::read_dir(root.join("tmp")).unwrap().collect();
    assert_eq!(
        staged.len(),
        1,
        "the half-written staging file stays in tmp/"
    );
    let report = s.gc().unwrap();
    assert_eq!(report.tmp_removed.len(), 1);
    assert_eq!(report.blobs_removed, vec![kept]);
}

fn helper_index_churn(root: &Path) {
    let s = Store::open(root).unwrap();
    let base = layer_with(&s, None, "churn base");
    let mut first = true;
    for i in 0u64.. {
        let l = layer_with(
            &s,
            Some(&base),
            &format!("churn {} {i}", std::process::id()),
        );
        let rec = put_image(
            &s,
            vec![format!("localhost/n{}:latest", i % 3)],
            &[base, l],
            &format!("{} {i}", std::process::id()),
        );
        s.tag(&rec.id, "localhost/extra:latest").unwrap();
        if i % 2 == 0 {
            s.untag("localhost/extra:latest").unwrap();
        }
        let gz = s.put_blob(format!("gz {i}").as_bytes()).unwrap();
        s.record_compressed_blob(&l, "gzip", gz, s.blob_size(&gz).unwrap())
            .unwrap();
        s.cache_put(
            &Digest::of(format!("key {}", i % 5).as_bytes()),
            &CacheEntry {
                layer: Some(l),
                blob: Some(gz),
                data: serde_json::json!({ "i": i }),
            },
        )
        .unwrap();
        if i % 4 == 3 {
            s.remove_image(&rec.id).unwrap();
        }
        // Garbage three layers deep, so a gc killed midway is seen removing
        // a chain.
        let g1 = layer_with(&s, None, &format!("garbage {} {i}", std::process::id()));
        let g2 = layer_with(&s, Some(&g1), "g2");
        layer_with(&s, Some(&g2), "g3");
        if i % 7 == 6 {
            s.prune().unwrap();
        }
        if first {
            println!("READY");
            first = false;
        }
    }
}

#[test]
fn kill_during_index_updates_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = Store::open(&root).unwrap();
    for (round, delay_ms) in [5u64, 23, 41, 67, 97, 131].iter().enumerate() {
        let mut child = spawn("index-churn", &root, "");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        wait_for(&mut out, "READY");
        std::thread::sleep(Duration::from_millis(*delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let problems = s.fsck().unwrap();
        assert!(problems.is_empty(), "round {round}: {problems:#?}");
        for img in s.images().unwrap() {
            for name in &img.names {
                assert_eq!(s.resolve_image(name).unwrap().id, img.id);
            }
        }
    }
    // What crashed processes left in tmp/ is theirs alone; gc clears it.
    s.gc().unwrap();
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    assert_clean(&s);
}

fn helper_gc_churn(root: &Path) {
    let s = Store::open(root).unwrap();
    for i in 0u64.. {
        let mut parent = None;
        for depth in 0..6 {
            let content = format!("gc churn {} {i} {depth}", std::process::id());
            parent = Some(layer_with(&s, parent.as_ref(), &content));
        }
        if i == 0 {
            println!("READY");
        }
        s.gc().unwrap();
    }
}

#[test]
fn kill_during_gc_leaves_no_orphaned_layer() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = Store::open(&root).unwrap();
    for delay_ms in [3u64, 11, 19, 29, 37, 53] {
        let mut child = spawn("gc-churn", &root, "");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        wait_for(&mut out, "READY");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_clean(&s);
    }
}

// --- an unprivileged caller --------------------------------------------------

fn helper_rootless() {
    let root = rbuild::store::default_root().unwrap();
    println!("ROOT {}", root.display());
    println!("RUNROOT {}", rbuild::store::default_runroot().display());
    let s = Store::open(&root).unwrap();
    let p = s.prepare_layer(None).unwrap();
    let ro = p.upper().join("usr/share/ro");
    fs::create_dir_all(&ro).unwrap();
    fs::write(ro.join("f"), b"x").unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(p.upper().join("usr"), fs::Permissions::from_mode(0o555)).unwrap();
    let l = s.commit_layer(p, Digest::of(b"ro layer"), 2).unwrap();
    let report = s.gc().unwrap();
    assert_eq!(report.layers_removed, vec![l]);
    assert!(s.fsck().unwrap().is_empty());
    println!("OK");
}

/// Runs the helper as the unprivileged `rbtest` user: the default root is
/// under its HOME, and removing a layer with read-only directories works
/// without root's override of permissions.
#[test]
fn unprivileged_caller_uses_home_and_removes_read_only_layers() {
    if !nix::unistd::geteuid().is_root()
        || Command::new("id")
            .arg("rbtest")
            .output()
            .map_or(true, |o| !o.status.success())
    {
        eprintln!("skipped: needs root and the rbtest user");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("rbuild-store-test")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("store_processes");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let home = dir.path().join("home");
    fs::create_dir(&home).unwrap();
    nix::unistd::chown(&home, Some(rbtest_uid().into()), None).unwrap();

    let out = Command::new("runuser")
        .args(["-u", "rbtest", "--", "env", "-i"])
        .arg(format!("HOME={}", home.display()))
        .arg("XDG_RUNTIME_DIR=")
        .arg(format!("{MODE}=rootless"))
        .arg(&exe)
        .args(["--exact", "helper", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want_root = home.join(".local/share/rbuild");
    assert!(
        stdout.contains(&format!("ROOT {}", want_root.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("RUNROOT /tmp/rbuild-{}", rbtest_uid())),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.ends_with("OK")), "{stdout}");
    // As root (euid 0, as mapped root inside the rootless namespace is) but
    // with the variable the re-exec sets: the rootless defaults must win.
    let out = Command::new("env")
        .arg(format!("{MODE}=rootless"))
        .arg("RBUILD_ROOTLESS_UID=4242")
        .arg(format!("HOME={}", dir.path().join("root-home").display()))
        .arg("XDG_DATA_HOME=")
        .arg("XDG_RUNTIME_DIR=")
        .arg("TMPDIR=")
        .arg(&exe)
        .args(["--exact", "helper", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("RUNROOT /tmp/rbuild-4242"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "ROOT {}",
            dir.path().join("root-home/.local/share/rbuild").display()
        )),
        "{stdout}"
    );
}

fn rbtest_uid() -> u32 {
    nix::unistd::User::from_name("rbtest")
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}
