//! The library API of the RUN sandbox, called from this (multi-threaded)
//! test process the way `build` calls it: `unshare(2)` would fail here, so
//! this checks that the re-exec'd helper makes that irrelevant, that given
//! stdio fds are used, and that steps run in parallel. Root only: an
//! unprivileged caller must first be inside `enter_user_namespace`, which
//! the binary-level tests cover.

mod sandbox_common;

use std::io::Read;
use std::path::Path;

use rbuild::sandbox::{self, ExitKind, MountKind, Network, RunSpec, SandboxMount};
use sandbox_common::*;

fn helper() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rbuild"))
}

fn run_capturing(spec: &mut RunSpec) -> (sandbox::Result<sandbox::RunOutcome>, String) {
    let (r, w) = nix::unistd::pipe().unwrap();
    spec.stdio.stdout = Some(w);
    let outcome = sandbox::run_with_helper(spec, helper());
    spec.stdio.stdout = None;
    let mut text = String::new();
    std::fs::File::from(r).read_to_string(&mut text).unwrap();
    (outcome, text)
}

#[test]
fn steps_run_from_a_threaded_process_in_parallel_with_given_stdout() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let handles: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                let stack = Stack::new(As::Root);
                let guard = sandbox::mount_overlay(
                    &[stack.p("low")],
                    &stack.p("up"),
                    &stack.p("work"),
                    &stack.p("m"),
                    sandbox::OverlayMode::Kernel,
                )
                .unwrap();
                let mut spec = RunSpec::new(
                    guard.target(),
                    vec![
                        "sh".into(),
                        "-c".into(),
                        "echo step $N; hostname; exit $N".into(),
                    ],
                );
                spec.env.push(("N".into(), i.to_string()));
                spec.hostname = format!("step{i}");
                spec.network = Network::None;
                let (outcome, text) = run_capturing(&mut spec);
                guard.unmount().unwrap();
                (i, outcome.unwrap(), text)
            })
        })
        .collect();
    for h in handles {
        let (i, outcome, text) = h.join().unwrap();
        assert_eq!(outcome.exit, ExitKind::Exited(i));
        assert_eq!(text, format!("step {i}\nstep{i}\n"));
    }
}

#[test]
fn bind_mounts_can_be_written_and_mount_points_are_removed_after() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let stack = Stack::new(As::Root);
    let shared = scratch(As::Root);
    let mut spec = RunSpec::new(
        stack.p("low"),
        vec![
            "sh".into(),
            "-c".into(),
            "echo hi > /shared/out; exit 42".into(),
        ],
    );
    spec.mounts.push(SandboxMount {
        kind: MountKind::Bind {
            source: shared.path().to_path_buf(),
            readonly: false,
        },
        target: "/shared".into(),
    });
    let (outcome, _) = run_capturing(&mut spec);
    let outcome = outcome.unwrap();
    assert_eq!(outcome.exit, ExitKind::Exited(42));
    assert!(!outcome.success());
    assert_eq!(
        std::fs::read_to_string(shared.path().join("out")).unwrap(),
        "hi\n"
    );
    // Used as the rootfs directly: the mount point it needed is gone again.
    assert!(!stack.p("low/shared").exists());
    assert!(!stack.p("low/proc").exists());
}

#[test]
fn setup_errors_name_the_step() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let stack = Stack::new(As::Root);
    let mut spec = RunSpec::new(stack.p("low"), vec!["true".into()]);
    spec.cwd = "/does/not/exist".into();
    let err = sandbox::run_with_helper(&spec, helper())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("chdir /does/not/exist") && err.contains("ENOENT"),
        "{err}"
    );
}
