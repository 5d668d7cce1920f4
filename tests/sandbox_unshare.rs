//! `rbuild unshare` and the rootless namespace it enters.

mod sandbox_common;

use sandbox_common::*;

#[test]
fn unshare_as_root_runs_the_command_unchanged() {
    let out = rbuild(
        As::Root,
        &[
            "unshare",
            "sh",
            "-c",
            "cat /proc/self/uid_map; echo $RBUILD_UNSHARE",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295", "1"],
        "{text}"
    );
}

#[test]
fn unshare_rootless_maps_caller_to_root_and_the_subid_range_after() {
    let Some((uid, gid)) = rbtest_ids() else {
        eprintln!("user {TEST_USER} missing: skipping");
        return;
    };
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap();
    let start = subuid
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{TEST_USER}:")))
        .and_then(|r| r.split(':').next())
        .expect("rbtest has a subuid range")
        .to_string();
    let out = rbuild(
        As::Rootless,
        &[
            "unshare",
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map /proc/self/gid_map; \
             echo $RBUILD_UNSHARE $RBUILD_ROOTLESS_UID $RBUILD_ROOTLESS_GID; exit 5",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let lines: Vec<Vec<String>> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(lines[0], ["0"]);
    assert_eq!(lines[1], ["0".to_string(), uid.to_string(), "1".into()]);
    assert_eq!(lines[2], ["1".to_string(), start.clone(), "65536".into()]);
    assert_eq!(lines[3], ["0".to_string(), gid.to_string(), "1".into()]);
    assert_eq!(
        lines[5],
        ["1".to_string(), uid.to_string(), gid.to_string()]
    );
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn rootless_store_work_can_chown_to_sub_ids_and_mounts_stay_private() {
    if rbtest_ids().is_none() {
        return;
    }
    let dir = scratch(As::Rootless);
    let d = dir.path().to_string_lossy().to_string();
    let script = format!(
        "touch {d}/f && chown 1000:1000 {d}/f && stat -c %u:%g {d}/f && \
         mkdir {d}/mnt && mount -t tmpfs tmpfs {d}/mnt && echo mounted"
    );
    let out = rbuild(As::Rootless, &["unshare", "sh", "-c", &script], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1000:1000\nmounted\n");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir.path().join("f")).unwrap();
    // Inside uid 1000 is sub-id start + 999 outside.
    assert!(meta.uid() >= 100_000, "owner {}", meta.uid());
    // The tmpfs lived in the namespace only.
    assert!(mounts_under(dir.path()).is_empty());
}

/// `nobody` has no sub-id range: single-id map, a warning naming the fix,
/// uid 0 steps work, and a step needing uid 1000 fails saying why.
#[test]
fn without_a_subid_range_rbuild_warns_and_runs_single_id() {
    let has_nobody = std::process::Command::new("id")
        .arg("nobody")
        .output()
        .is_ok_and(|o| o.status.success());
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    if !has_nobody || subuid.lines().any(|l| l.starts_with("nobody:")) {
        eprintln!("no range-less user `nobody`: skipping");
        return;
    }
    let stack = Stack::new(As::Root);
    std::process::Command::new("chown")
        .args(["-hR", "nobody:"])
        .arg(stack.dir.path())
        .status()
        .unwrap();
    let run = |uid: &str| {
        let mut args = vec![
            "-u".to_string(),
            "nobody".into(),
            "--".into(),
            "env".into(),
            "HOME=/tmp".into(),
        ];
        args.push(rootless_binary().to_string_lossy().to_string());
        args.extend(stack.run_args());
        args.extend([
            "--uid".into(),
            uid.into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
        ]);
        args.push("cat /proc/self/uid_map; echo made > /made".into());
        std::process::Command::new("runuser")
            .args(&args)
            .output()
            .unwrap()
    };
    let out = run("0");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["0", "65534", "1"]
    );
    let err = stderr(&out);
    assert_eq!(
        err.matches("warning: no sub-id range for nobody").count(),
        1,
        "{err}"
    );
    assert!(err.contains("usermod --add-subuids"), "{err}");
    assert!(stack.p("up/made").is_file());
    let out = run("1000");
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("this step needs uid 1000"),
        "{}",
        stderr(&out)
    );
}
