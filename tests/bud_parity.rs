//! Differences found by building the same Containerfiles with rbuild and
//! buildah 1.45 (and checking BuildKit's source for who is right): one test
//! per difference, each failing before its fix. Runs as root only: the
//! owners and paths checked here do not depend on the runner.

mod common;
mod registry_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::{Runner, Sandbox};

fn owner(path: &std::path::Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.uid(), m.gid())
}

/// BuildKit and buildah create a missing WORKDIR (and its missing parents)
/// owned by the current USER; a name the image does not know means root.
#[test]
fn workdir_is_created_owned_by_user() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.build(
        "wd",
        "FROM busybox
USER app
WORKDIR /w1/w2
USER 1000:50
WORKDIR /w3
USER 7
WORKDIR /w1/w2/w4
USER ghost
WORKDIR /w5
USER root
WORKDIR /w6
",
        &[],
        &[],
    );
    let root = sb.unpack("wd");
    assert_eq!(owner(&root.join("w1")), (1000, 1000));
    assert_eq!(owner(&root.join("w1/w2")), (1000, 1000));
    assert_eq!(owner(&root.join("w3")), (1000, 50));
    assert_eq!(owner(&root.join("w1/w2/w4")), (7, 7));
    assert_eq!(owner(&root.join("w5")), (0, 0));
    assert_eq!(owner(&root.join("w6")), (0, 0));
}

/// Docker's classic builder (which buildah's history imitates) names a COPY
/// whose sources matched more than one file or directory `multi:`, also
/// when a single glob did the matching.
#[test]
fn copy_history_counts_glob_matches() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.build(
        "globs",
        "FROM busybox
COPY *.txt /g/
COPY one.* /one/
COPY d* /dirs/
",
        &[
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("one.md", "1"),
            ("d1/f", "f"),
        ],
        &[],
    );
    let history = sb.config("globs")["history"].clone();
    let created: Vec<String> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect();
    let of = |dest: &str| {
        created
            .iter()
            .find(|c| c.ends_with(&format!(" in {dest} ")))
            .unwrap_or_else(|| panic!("no COPY to {dest} in {created:?}"))
            .clone()
    };
    assert!(of("/g/").contains(" COPY multi:"), "{}", of("/g/"));
    assert!(of("/one/").contains(" COPY file:"), "{}", of("/one/"));
    assert!(of("/dirs/").contains(" COPY dir:"), "{}", of("/dirs/"));
}

/// buildah exits with the status of the RUN command that failed (125 stays
/// for rbuild's own errors), also when the failing RUN is in an earlier
/// stage built in parallel with others.
#[test]
fn failed_run_sets_the_exit_status() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    for (file, status) in [
        ("FROM busybox\nRUN exit 3\n", 3),
        (
            "FROM busybox AS a\nRUN exit 7\nFROM busybox\nRUN true\nCOPY --from=a /etc/passwd /x\n",
            7,
        ),
        ("FROM busybox\nCOPY missing /\n", 125),
    ] {
        let ctx = sb.context(&sb.fresh("ctx"), &[("Containerfile", file)]);
        let out = sb.fails(&["bud", ctx.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{file}: {stderr}");
        assert!(stderr.contains("Containerfile:2"), "{stderr}");
    }
}

/// buildah's STEP line for FROM shows the image and platform with build
/// args expanded (`FROM base AS first`, not `FROM ${V} AS first`).
#[test]
fn from_step_line_shows_expanded_args() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let out = sb.build(
        "fromline",
        "ARG V=nothing\nARG P=linux/amd64\nFROM --platform=$P ${V} AS first\nFROM busybox\nCOPY --from=first /etc/passwd /p\n",
        &[],
        &["--build-arg", "V=busybox"],
    );
    assert!(
        out.contains("STEP 1/1: FROM --platform=linux/amd64 busybox AS first\n"),
        "{out}"
    );
    assert!(out.contains("STEP 1/2: FROM busybox\n"), "{out}");
}

/// Docker keeps proxy build args out of history unless the Containerfile
/// declares them with ARG ("to opt in, add an ARG statement"); buildah
/// agrees. Undeclared, they still reach RUN but not history.
#[test]
fn declared_proxy_args_reach_run_history() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let run_history = |tag: &str, file: &str| {
        sb.build(tag, file, &[], &["--build-arg", "HTTP_PROXY=http://p:3128"]);
        let history = sb.config(tag)["history"].clone();
        history
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["created_by"].as_str())
            .find(|c| c.ends_with("echo $HTTP_PROXY > /p"))
            .unwrap_or_else(|| panic!("no RUN in {history}"))
            .to_string()
    };
    let declared = run_history(
        "declared",
        "FROM busybox\nARG HTTP_PROXY\nRUN echo $HTTP_PROXY > /p\n",
    );
    assert_eq!(
        declared,
        "|1 HTTP_PROXY=http://p:3128 /bin/sh -c echo $HTTP_PROXY > /p"
    );
    let undeclared = run_history("undeclared", "FROM busybox\nRUN echo $HTTP_PROXY > /p\n");
    assert_eq!(undeclared, "/bin/sh -c echo $HTTP_PROXY > /p");
    let root = sb.unpack("undeclared");
    assert_eq!(
        std::fs::read_to_string(root.join("p")).unwrap(),
        "http://p:3128\n"
    );
}

/// The base image's ONBUILD triggers are numbered as steps after FROM (as
/// buildah numbers them), not each as `STEP 1/1`.
#[test]
fn onbuild_triggers_are_numbered_steps() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.build(
        "parent",
        "FROM busybox\nONBUILD RUN touch /t1\nONBUILD COPY f /f\n",
        &[],
        &["--format", "docker"],
    );
    let out = sb.build("child", "FROM parent\nRUN ls /t1 /f\n", &[("f", "x")], &[]);
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("STEP ")).collect();
    assert_eq!(
        steps,
        [
            "STEP 1/2: FROM parent",
            "STEP 2/4: ONBUILD RUN touch /t1",
            "STEP 3/4: ONBUILD COPY f /f",
            "STEP 4/4: RUN ls /t1 /f",
        ],
        "{out}"
    );
}

/// BuildKit names a `RUN <<EOF` step with a preview of the script, its first
/// line and `...` when there are more (buildah prints the same); other RUN
/// lines show as written.
#[test]
fn heredoc_run_step_line_previews_the_script() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let out = sb.build(
        "heredoc",
        "FROM busybox\nRUN <<EOT\n  echo a > /a\necho b > /b\nEOT\nRUN <<'ONE'\necho one\nONE\nRUN cat <<EOT > /c\nx\nEOT\n",
        &[],
        &[],
    );
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("STEP ")).collect();
    assert_eq!(
        steps,
        [
            "STEP 1/4: FROM busybox",
            "STEP 2/4: RUN <<EOT (echo a > /a...)",
            "STEP 3/4: RUN <<'ONE' (echo one)",
            "STEP 4/4: RUN cat <<EOT > /c",
        ],
        "{out}"
    );
}

/// A `--timestamp` build must not reuse a layer cached by a build without
/// it (its files keep their real mtimes): the result would depend on what
/// was built before, not on the input.
#[test]
fn timestamp_builds_do_not_reuse_unclamped_cache() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let ctx = sb.context(
        "ctx",
        &[
            ("f", "x"),
            ("Containerfile", "FROM busybox\nCOPY f /f\nRUN touch /r\n"),
        ],
    );
    let ctx = ctx.to_str().unwrap();
    sb.ok(&["bud", "-q", "-t", "plain", ctx]);
    let clamped = |tag: &str, extra: &[&str]| {
        let mut args = vec!["bud", "-q", "-t", tag, "--timestamp", "1000000000"];
        args.extend_from_slice(extra);
        args.push(ctx);
        sb.ok(&args);
        let root = sb.unpack(tag);
        let mtime = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().mtime();
        (mtime("f"), mtime("r"))
    };
    assert_eq!(clamped("cached", &[]), (1_000_000_000, 1_000_000_000));
    let id = |tag: &str| sb.ok(&["inspect", "--format", "{{.FromImageID}}", tag]);
    clamped("fresh", &["--no-cache"]);
    assert_eq!(id("cached"), id("fresh"));
}

/// A missing context is reported as missing (buildah: "stat /x: no such
/// file or directory"), not as a context without a Containerfile.
#[test]
fn missing_context_is_named_as_such() {
    let sb = Sandbox::new(Runner::Root);
    let missing = sb.path().join("no-such-dir");
    let out = sb.fails(&["bud", missing.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the build context {} is not a usable directory",
            missing.display()
        )) && stderr.contains("No such file or directory"),
        "{stderr}"
    );
}

/// `COPY --from=$ARG` naming a stage through a stage-local ARG, and
/// `--chmod=$ARG`, are expanded as buildah and BuildKit expand them; the
/// stage named that way is built, not skipped as unused.
#[test]
fn copy_flags_expand_stage_args() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.build(
        "flags",
        "FROM busybox AS s1
RUN echo s1 > /s1
FROM busybox
ARG SRC=s1
ARG MODE=640
COPY --chmod=${MODE} a.txt /a
COPY --from=${SRC} /s1 /s1
",
        &[("a.txt", "a")],
        &[],
    );
    let root = sb.unpack("flags");
    let mode = std::fs::metadata(root.join("a")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o640);
    assert_eq!(std::fs::read_to_string(root.join("s1")).unwrap(), "s1\n");
}

/// A secret mount is a private copy, mode 0400 owned by root unless
/// `mode=`/`uid=`/`gid=` say otherwise (BuildKit's defaults; buildah also
/// shows 0400), whatever the mode of the file given with `--secret`.
#[test]
fn secret_mounts_have_buildkit_mode_and_owner() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let secret = sb.write("secret.txt", "topsecret");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let spec = format!("id=s,src={}", secret.display());
        let out = sb.build(
            "secrets",
            "FROM busybox
RUN --mount=type=secret,id=s stat -c '%a %u %g' /run/secrets/s
RUN --mount=type=secret,id=s,mode=0440,uid=1000,gid=50,target=/x stat -c '%a %u %g' /x && cat /x
",
            &[],
            &["--secret", &spec],
        );
        assert!(out.contains("\n400 0 0\n"), "{runner:?}: {out}");
        assert!(
            out.contains("\n440 1000 50\ntopsecret"),
            "{runner:?}: {out}"
        );
    }
}

/// ARG history is the ARG as the file declares it (`ARG A=default`, `ARG
/// B` without a value), as docker commits it; a `--build-arg` value shows
/// only in the `|N` prefix of RUN.
#[test]
fn arg_history_shows_the_declaration() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.build(
        "args",
        "FROM busybox\nARG A=dflt B\nARG C\nRUN echo $A $B\n",
        &[],
        &["--build-arg", "A=secret-value", "--build-arg", "B=b"],
    );
    let history = sb.config("args")["history"].clone();
    let created: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["created_by"].as_str())
        .collect();
    assert_eq!(
        created[1..],
        [
            "/bin/sh -c #(nop) ARG A=dflt B",
            "/bin/sh -c #(nop) ARG C",
            "|2 A=secret-value B=b /bin/sh -c echo $A $B",
        ],
        "{created:?}"
    );
}

/// docker rejects a STOPSIGNAL that names no signal ("Invalid signal");
/// buildah too. Names without SIG, any case and numbers are fine.
#[test]
fn stopsignal_must_name_a_signal() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let ctx = sb.context(
        "bad",
        &[("Containerfile", "FROM busybox\nSTOPSIGNAL SIGFOO\n")],
    );
    let out = sb.fails(&["bud", ctx.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Containerfile:2") && stderr.contains("invalid signal \"SIGFOO\""),
        "{stderr}"
    );
    sb.build("ok", "FROM busybox\nARG S=quit\nSTOPSIGNAL $S\n", &[], &[]);
    assert_eq!(sb.config("ok")["config"]["StopSignal"], "quit");
}

/// docker pulls an image that `COPY --from` or `RUN --mount=from=` names
/// when it is not local, as it pulls FROM's; rbuild looked only in its store.
#[test]
fn from_images_are_pulled_like_from() {
    let reg = registry_support::Registry::start(registry_support::RegistryConfig::default());
    let host = reg.host();
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let remote = format!("{host}/lib/bb:1");
    sb.ok(&[
        "push",
        "--tls-verify=false",
        "busybox",
        &format!("docker://{remote}"),
    ]);
    let file = format!(
        "FROM busybox\nCOPY --from={remote} /etc/passwd /pw\nRUN --mount=type=bind,from={remote},target=/m cp /m/etc/group /g\n"
    );
    sb.build("pulled", &file, &[], &["--tls-verify=false"]);
    let root = sb.unpack("pulled");
    assert!(root.join("pw").is_file() && root.join("g").is_file());
    let never = sb.context("never", &[("Containerfile", &file)]);
    sb.ok(&["rmi", &remote]);
    let out = sb.fails(&["bud", "--pull=never", never.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("--from={remote}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// RUN history is the command as docker records it, the argv joined by
/// spaces: through SHELL for the shell form, as given for the exec form
/// (buildah writes `/bin/sh -c` and the JSON text instead).
#[test]
fn run_history_is_the_command_as_run() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.build(
        "runs",
        "FROM busybox\nARG A=1\nRUN [\"/bin/sh\", \"-c\", \"echo exec > /e\"]\nSHELL [\"/bin/sh\", \"-ec\"]\nRUN echo shell > /s\n",
        &[],
        &[],
    );
    let history = sb.config("runs")["history"].clone();
    let created: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["created_by"].as_str())
        .filter(|c| c.starts_with('|'))
        .collect();
    assert_eq!(
        created,
        [
            "|1 A=1 /bin/sh -c echo exec > /e",
            "|1 A=1 /bin/sh -ec echo shell > /s",
        ]
    );
}

/// With `-f PATH`, errors name the file by that path: the context may hold
/// another Containerfile, and `Containerfile:3` would point at the wrong one.
#[test]
fn errors_name_the_file_given_with_f() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let ctx = sb.context("ctx", &[("Containerfile", "FROM busybox\n")]);
    let file = sb.write(
        "elsewhere/Containerfile",
        "FROM busybox\n\nCOPY missing /x\n",
    );
    let out = sb.fails(&["bud", "-f", file.to_str().unwrap(), ctx.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3: error building at STEP \"COPY missing /x\"",
            file.display()
        )),
        "{stderr}"
    );
}

/// `RUN --security=insecure` was accepted and silently run unprivileged;
/// BuildKit refuses it without the security.insecure entitlement and
/// buildah refuses the flag, so rbuild says it does not support it.
#[test]
fn run_security_insecure_is_refused() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let ctx = sb.context(
        "ctx",
        &[(
            "Containerfile",
            "FROM busybox\nRUN --security=insecure true\n",
        )],
    );
    let out = sb.fails(&["bud", ctx.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Containerfile:2")
            && stderr.contains("--security=insecure is not supported"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(125));
}

/// A bind mount of the build context shows it as docker sends it, without
/// what `.containerignore` excludes (buildah shows everything); writes to
/// an rw mount stay private.
#[test]
fn context_bind_mount_honours_the_ignore_file() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let ctx = sb.context(
        "ctx",
        &[
            ("Containerfile", "FROM busybox\nRUN --mount=type=bind,target=/m ls -A /m > /seen\nRUN --mount=type=bind,target=/m,source=d,rw ls -A /m > /seen-d && touch /m/new\n"),
            (".containerignore", "*.log\nd/skip\n"),
            ("keep.txt", "k"),
            ("drop.log", "d"),
            ("d/skip", "s"),
            ("d/kept", "k"),
        ],
    );
    sb.ok(&["bud", "-t", "bind", ctx.to_str().unwrap()]);
    let root = sb.unpack("bind");
    let seen = std::fs::read_to_string(root.join("seen")).unwrap();
    assert_eq!(seen, ".containerignore\nContainerfile\nd\nkeep.txt\n");
    assert_eq!(
        std::fs::read_to_string(root.join("seen-d")).unwrap(),
        "kept\n"
    );
    assert!(!ctx.join("d/new").exists());
}
