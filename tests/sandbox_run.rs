//! The RUN sandbox through the real binary (`rbuild __sandbox-test run`),
//! as root and as the unprivileged `rbtest` user, on a busybox rootfs.

mod sandbox_common;

use sandbox_common::*;

#[test]
fn step_runs_with_requested_ids_and_returns_its_exit_status() {
    for who in modes() {
        let stack = Stack::new(who);
        let out = run_step(
            who,
            &stack,
            &["--uid", "1000", "--gid", "1001", "--group", "2000"],
            &["sh", "-c", "id -u; id -g; id -G; exit 3"],
            &[],
        );
        assert_eq!(out.status.code(), Some(3), "{who:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "1000\n1001\n1001 2000\n", "{who:?}");
        assert!(
            mounts_under(stack.dir.path()).is_empty(),
            "{who:?}: mounts left"
        );
    }
}

#[test]
fn only_stdin_stdout_stderr_cross_into_the_step() {
    for who in modes() {
        let stack = Stack::new(who);
        let out = run_step(who, &stack, &[], &["ls", "/proc/self/fd"], &[]);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        // 3 is the directory ls itself opened.
        assert_eq!(stdout(&out), "0\n1\n2\n3\n", "{who:?}");
    }
}

#[test]
fn ps_sees_only_the_steps_processes() {
    for who in modes() {
        let marker = 2_000_000 + std::process::id() * 2 + (who == As::Rootless) as u32;
        let stack = Stack::new(who);
        let out = run_step(
            who,
            &stack,
            &[],
            &[
                "sh",
                "-c",
                &format!("sleep {marker} & ps -o pid,args; true"),
            ],
            &[],
        );
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines.len(), 3, "{who:?}: sh, sleep, ps only:\n{text}");
        assert!(
            lines[0].trim_start().starts_with("1 sh -c"),
            "{who:?}:\n{text}"
        );
        assert!(!text.contains("rbuild"), "{who:?}:\n{text}");
        // The background sleep died with the step's pid 1.
        let ps = std::process::Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&ps.stdout).contains(&format!("sleep {marker}")),
            "{who:?}"
        );
    }
}

#[test]
fn network_none_has_only_loopback_and_it_is_up() {
    for who in modes() {
        let stack = Stack::new(who);
        let out = run_step(
            who,
            &stack,
            &["--network", "none"],
            &["sh", "-c", "cat /proc/net/dev"],
            &[],
        );
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        let text = stdout(&out);
        let ifaces: Vec<&str> = text
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next().map(str::trim))
            .collect();
        assert_eq!(ifaces, vec!["lo"], "{who:?}:\n{text}");
        let link = run_step(who, &stack, &["--network", "none"], &["ip", "link"], &[]);
        let link = stdout(&link);
        assert!(link.contains("lo: <LOOPBACK,UP"), "{who:?}:\n{link}");
        assert_eq!(
            link.lines().filter(|l| !l.starts_with(' ')).count(),
            1,
            "{link}"
        );
        // Host network: more than lo (the test machine has at least one NIC).
        let host = run_step(who, &stack, &[], &["cat", "/proc/net/dev"], &[]);
        assert!(
            stdout(&host).lines().count() > 3,
            "{who:?}: {}",
            stdout(&host)
        );
    }
}

#[test]
fn a_host_file_the_caller_cannot_read_stays_unreadable() {
    let secret_dir = tempfile::Builder::new()
        .prefix("rbuild-secret")
        .tempdir_in("/tmp")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(secret_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = secret_dir.path().join("secret");
    std::fs::write(&secret, "TOPSECRET\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bind = format!("{}:/host:ro", secret_dir.path().display());
    for who in modes() {
        let stack = Stack::new(who);
        // As root the step runs as uid 1000; rootless even the step's root
        // is only rbtest on the host.
        let uid = if who == As::Root { "1000" } else { "0" };
        let out = run_step(
            who,
            &stack,
            &["--bind", &bind, "--uid", uid],
            &["sh", "-c", "cat /host/secret; echo x > /host/new"],
            &[],
        );
        assert!(!out.status.success(), "{who:?}");
        assert!(!stdout(&out).contains("TOPSECRET"), "{who:?}");
        assert!(
            stderr(&out).contains("Permission denied"),
            "{who:?}: {}",
            stderr(&out)
        );
        assert!(!secret_dir.path().join("new").exists());
    }
}

#[test]
fn writes_land_in_the_upper_but_etc_files_and_mount_points_do_not() {
    for who in modes() {
        for mode in ["kernel", "fuse", "copy"] {
            if mode == "fuse" && !fuse_usable(who) {
                eprintln!("/dev/fuse is not usable by {who:?}: skipping fuse");
                continue;
            }
            let stack = Stack::new(who);
            let out = run_step(
                who,
                &stack,
                &["--hostname", "buildbox", "--tmpfs", "/scratch"],
                &[
                    "sh",
                    "-c",
                    "echo data > /newfile && rm /bin/vi && cat /etc/hostname && \
                     grep -q buildbox /etc/hosts && echo more >> /etc/hosts && \
                     echo gone > /scratch/x && hostname",
                ],
                &[("RBUILD_OVERLAY", mode)],
            );
            assert!(out.status.success(), "{who:?} {mode}: {}", stderr(&out));
            assert_eq!(stdout(&out), "buildbox\nbuildbox\n", "{who:?} {mode}");
            let up = stack.p("up");
            assert_eq!(
                std::fs::read_to_string(up.join("newfile")).unwrap(),
                "data\n"
            );
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            let wh = up.join("bin/vi").symlink_metadata().unwrap();
            assert!(
                wh.file_type().is_char_device() && wh.rdev() == 0,
                "{who:?} {mode}"
            );
            // Exactly the step's changes: no stub, no synthetic file, and no
            // copied-up /etc either (the init layer holds the mount points).
            let mut entries: Vec<String> = walkdir::WalkDir::new(&up)
                .min_depth(1)
                .into_iter()
                .map(|e| {
                    e.unwrap()
                        .path()
                        .strip_prefix(&up)
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect();
            entries.sort();
            assert_eq!(entries, ["bin", "bin/vi", "newfile"], "{who:?} {mode}");
            assert!(stack.p("low/proc").symlink_metadata().is_err());
            assert!(mounts_under(stack.dir.path()).is_empty(), "{who:?} {mode}");
            assert_eq!(
                std::fs::read_dir(stack.p("m")).unwrap().count(),
                0,
                "{who:?} {mode}"
            );
        }
    }
}

#[test]
fn env_cwd_and_devices_are_set_up() {
    for who in modes() {
        let stack = Stack::new(who);
        let out = run_step(
            who,
            &stack,
            &["--env", "GREETING=hello world", "--cwd", "/tmp"],
            &[
                "sh",
                "-c",
                "echo \"$GREETING\"; pwd; echo $PATH; head -c 4 /dev/zero | wc -c; \
                 echo x > /dev/null && ls /dev/pts/ptmx /dev/shm /dev/fd/ >/dev/null && \
                 test -L /dev/ptmx && echo devok; env | sort | cut -d= -f1 | tr '\\n' ' '",
            ],
            &[("LEAKY_HOST_VAR", "1")],
        );
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "hello world");
        assert_eq!(lines[1], "/tmp");
        assert_eq!(
            lines[2],
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        );
        assert_eq!(lines[3].trim(), "4");
        assert_eq!(lines[4], "devok");
        assert!(!text.contains("LEAKY_HOST_VAR"), "{who:?}: {text}");
    }
}

#[test]
fn a_missing_command_is_a_clear_error() {
    for who in modes() {
        let stack = Stack::new(who);
        let out = run_step(who, &stack, &[], &["no-such-command"], &[]);
        assert_eq!(out.status.code(), Some(125), "{who:?}");
        let err = stderr(&out);
        assert!(
            err.contains("\"no-such-command\" not found in PATH"),
            "{who:?}: {err}"
        );
    }
}

/// The first process whose parent is `parent`.
fn child_of(parent: u32) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, ...
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        if after.split_whitespace().nth(1) == Some(&parent.to_string()) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn sigterm_tears_the_step_down_with_no_processes_or_mounts_left() {
    for who in modes() {
        let stack = Stack::new(who);
        let out_dir = scratch(who);
        let bind = format!("{}:/out", out_dir.path().display());
        // Unique per test process, so parallel runs elsewhere cannot match.
        let marker = 1_000_000 + std::process::id() * 2 + (who == As::Rootless) as u32;
        let mut args = stack.run_args();
        args.extend(["--bind".into(), bind, "--".into(), "sh".into(), "-c".into()]);
        args.push(format!(
            "sleep {marker} & touch /out/started; sleep {marker}1"
        ));
        let mut cmd = match who {
            As::Root => std::process::Command::new(env!("CARGO_BIN_EXE_rbuild")),
            As::Rootless => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", TEST_USER, "--", "env", "HOME=/tmp"]);
                c.arg(rootless_binary());
                c
            }
        };
        let child = cmd
            .args(&args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = out_dir.path().join("started");
        for _ in 0..200 {
            if started.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(started.exists(), "{who:?}: step never started");
        // Rootless: signal rbuild itself (runuser's child), as a user's
        // `kill` or a CI runner would.
        let target = match who {
            As::Root => child.id(),
            As::Rootless => child_of(child.id()).expect("rbuild under runuser"),
        };
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(target as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{who:?}");
        assert!(
            stderr(&out).contains("interrupted by signal 15"),
            "{who:?}: {}",
            stderr(&out)
        );
        let ps = std::process::Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap();
        let ps = String::from_utf8_lossy(&ps.stdout);
        assert!(!ps.contains(&format!("sleep {marker}")), "{who:?}: {ps}");
        assert!(mounts_under(stack.dir.path()).is_empty(), "{who:?}");
        assert!(stack.p("up/proc").symlink_metadata().is_err(), "{who:?}");
        assert_eq!(
            std::fs::read_dir(stack.p("m")).unwrap().count(),
            0,
            "{who:?}"
        );
    }
}

#[test]
fn a_root_step_keeps_only_default_caps_and_cannot_mount_or_write_proc_sys() {
    for who in modes() {
        let stack = Stack::new(who);
        let out = run_step(
            who,
            &stack,
            &[],
            &[
                "sh",
                "-c",
                "grep -E '^(Cap(Eff|Bnd)|NoNewPrivs)' /proc/self/status; \
                 mount -t tmpfs t /tmp 2>/dev/null && echo MOUNTED; \
                 (echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null && echo WROTE; \
                 ls /sys/firmware | wc -l; true",
            ],
            &[],
        );
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        assert_eq!(
            stdout(&out).split_whitespace().collect::<Vec<_>>(),
            [
                "CapEff:",
                "00000000800405fb",
                "CapBnd:",
                "00000000800405fb",
                "NoNewPrivs:",
                "1",
                "0"
            ],
            "{who:?}"
        );
    }
}

#[test]
fn ownership_set_in_a_step_lands_in_the_upper_as_mapped_ids() {
    for who in modes() {
        let stack = Stack::new(who);
        let out = run_step(
            who,
            &stack,
            &[],
            &[
                "sh",
                "-c",
                "touch /owned && chown 1000:1001 /owned && stat -c %u:%g /owned",
            ],
            &[],
        );
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "1000:1001\n");
        use std::os::unix::fs::MetadataExt;
        let meta = stack.p("up/owned").symlink_metadata().unwrap();
        // Root: ids are themselves. Rootless: in-namespace id n >= 1 is
        // the sub-id range start + n - 1 on the host.
        let (ubase, gbase) = match who {
            As::Root => (0, 0),
            As::Rootless => (
                subid_start("/etc/subuid") - 1,
                subid_start("/etc/subgid") - 1,
            ),
        };
        assert_eq!(
            (meta.uid(), meta.gid()),
            (ubase + 1000, gbase + 1001),
            "{who:?}"
        );
    }
}

fn subid_start(file: &str) -> u32 {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{TEST_USER}:")))
        .and_then(|r| r.split(':').next())
        .and_then(|s| s.parse().ok())
        .unwrap()
}

#[test]
fn symlinked_mount_points_in_the_image_cannot_reach_the_host() {
    for who in modes() {
        let stack = Stack::new(who);
        let host_dir = scratch(who);
        let escape = format!("/../../../..{}/evil", host_dir.path().display());
        let hosts = stack.p("low/etc/hosts");
        std::os::unix::fs::symlink(&escape, &hosts).unwrap();
        std::os::unix::fs::symlink(
            format!("{}/mnt", host_dir.path().display()),
            stack.p("low/cache"),
        )
        .unwrap();
        give(who, stack.dir.path());
        let out = run_step(
            who,
            &stack,
            &["--tmpfs", "/cache", "--hostname", "jail"],
            &[
                "sh",
                "-c",
                "grep -c jail /etc/hosts; echo in-tmpfs > /cache/x",
            ],
            &[],
        );
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "1\n", "{who:?}");
        assert!(
            !host_dir.path().join("evil").exists(),
            "{who:?}: wrote through a symlink"
        );
        assert!(
            !host_dir.path().join("mnt").exists(),
            "{who:?}: wrote through a symlink"
        );
        assert!(mounts_under(host_dir.path()).is_empty(), "{who:?}");
    }
}
