//! Registry authentication and TLS against real `docker-registry`
//! instances: htpasswd basic auth with `--creds` and `login`/`logout`
//! (whose auth.json skopeo accepts), and TLS with a CA made by openssl.

mod common;
mod registry_support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::{Runner, Sandbox};
use registry_support::{run, Registry, RegistryConfig};

const INSECURE: &str = "--tls-verify=false";

fn login(
    sb: &Sandbox,
    authfile: &str,
    host: &str,
    user: &str,
    password: &str,
) -> std::process::Output {
    let mut child = Command::new(common::shared_binary())
        .args([
            "login",
            INSECURE,
            "--authfile",
            authfile,
            "-u",
            user,
            "--password-stdin",
            host,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir(sb.path())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn basic_auth_creds_login_and_logout() {
    let reg = Registry::start(RegistryConfig {
        htpasswd: Some(("alice".into(), "s3cret".into())),
        ..Default::default()
    });
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let host = reg.host();
    let dest = format!("docker://{host}/auth/busybox:1");
    let authfile = sb.path().join("auth.json");
    let authfile_s = authfile.to_str().unwrap();

    // Anonymous: refused, with the fix in the message.
    let out = sb.rbuild_env(
        &["push", INSECURE, "busybox", &dest],
        &[("REGISTRY_AUTH_FILE", authfile_s)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("authentication required") && err.contains("rbuild login"),
        "{err}"
    );

    // A wrong password does not log in and writes nothing.
    let out = login(&sb, authfile_s, &host, "alice", "wrong");
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!authfile.exists());

    // --creds works without any file.
    sb.ok(&[
        "push",
        INSECURE,
        "--creds",
        "alice:s3cret",
        "busybox",
        &dest,
    ]);

    // login writes an auth.json (0600) that skopeo and rbuild both use.
    let out = login(&sb, authfile_s, &host, "alice", "s3cret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::metadata(&authfile).unwrap().permissions().mode() & 0o777,
        0o600
    );
    run(Command::new("skopeo")
        .args(["inspect", INSECURE, "--authfile", authfile_s])
        .arg(&dest));
    sb.ok(&[
        "push",
        INSECURE,
        "--authfile",
        authfile_s,
        "busybox",
        &format!("docker://{host}/auth/busybox:2"),
    ]);
    let other = Sandbox::new(Runner::Root);
    other.rbuild_env(
        &["pull", INSECURE, &format!("{host}/auth/busybox:2")],
        &[("REGISTRY_AUTH_FILE", authfile_s)],
    );
    let images = other.ok(&["images"]);
    assert!(images.contains(&format!("{host}/auth/busybox")), "{images}");
    let who = sb.ok(&["login", "--get-login", "--authfile", authfile_s, &host]);
    assert_eq!(who.trim(), "alice");

    // logout removes the entry; then access is refused again.
    sb.ok(&["logout", "--authfile", authfile_s, &host]);
    let out = sb.rbuild(&["push", INSECURE, "--authfile", authfile_s, "busybox", &dest]);
    assert!(!out.status.success());
    let out = sb.rbuild(&["logout", "--authfile", authfile_s, &host]);
    assert!(
        !out.status.success(),
        "logging out twice says there was nothing"
    );
}

#[test]
fn docker_config_and_skopeo_written_auth_files_are_read() {
    let reg = Registry::start(RegistryConfig {
        htpasswd: Some(("bob".into(), "pw".into())),
        ..Default::default()
    });
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let host = reg.host();
    // An auth file written by skopeo login, found through HOME/.docker/config.json.
    let home = sb.mkdir("home");
    let docker_cfg = home.join(".docker/config.json");
    fs::create_dir_all(docker_cfg.parent().unwrap()).unwrap();
    run(Command::new("skopeo")
        .args(["login", INSECURE, "-u", "bob", "-p", "pw", "--authfile"])
        .arg(&docker_cfg)
        .arg(&host));
    let xdg = sb.mkdir("xdg");
    let out = sb.rbuild_env(
        &[
            "push",
            INSECURE,
            "busybox",
            &format!("docker://{host}/cfg/busybox:1"),
        ],
        &[
            ("HOME", home.to_str().unwrap()),
            ("XDG_RUNTIME_DIR", xdg.to_str().unwrap()),
        ],
    );
    common::assert_success(&out, &["push with ~/.docker/config.json"]);
}

#[test]
fn tls_with_a_test_ca() {
    let reg = Registry::start(RegistryConfig {
        tls: true,
        ..Default::default()
    });
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let host = reg.host();
    let ca_dir = reg.ca_dir.clone().unwrap();
    let dest = format!("docker://{host}/tls/busybox:1");

    // Unknown CA: refused, naming the certificate problem.
    let out = sb.rbuild(&["push", "busybox", &dest]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("issuer"),
        "{err}"
    );

    // Trusted through --cert-dir.
    sb.ok(&[
        "push",
        "--cert-dir",
        ca_dir.to_str().unwrap(),
        "busybox",
        &dest,
    ]);
    run(Command::new("skopeo")
        .args(["inspect", "--cert-dir"])
        .arg(&ca_dir)
        .arg(&dest));
    let other = Sandbox::new(Runner::Root);
    other.ok(&[
        "pull",
        "--cert-dir",
        ca_dir.to_str().unwrap(),
        &format!("{host}/tls/busybox:1"),
    ]);
    // --tls-verify=false skips verification (still over TLS).
    other.ok(&["pull", INSECURE, &format!("{host}/tls/busybox:1")]);
}

#[test]
fn credential_helpers_named_in_docker_config_are_run() {
    let reg = Registry::start(RegistryConfig {
        htpasswd: Some(("dave".into(), "helper-pw".into())),
        ..Default::default()
    });
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let host = reg.host();
    let bin = sb.mkdir("bin");
    let helper = bin.join("docker-credential-rbtest");
    // The helper protocol: `get` reads the server on stdin, prints JSON.
    fs::write(
        &helper,
        format!("#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = \"{host}\" ] || exit 1\necho '{{\"ServerURL\":\"{host}\",\"Username\":\"dave\",\"Secret\":\"helper-pw\"}}'\n"),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let home = sb.mkdir("home");
    fs::create_dir_all(home.join(".docker")).unwrap();
    fs::write(
        home.join(".docker/config.json"),
        format!(r#"{{"credHelpers":{{"{host}":"rbtest"}}}}"#),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let xdg = sb.mkdir("xdg");
    let out = sb.rbuild_env(
        &[
            "push",
            INSECURE,
            "busybox",
            &format!("docker://{host}/helper/busybox:1"),
        ],
        &[
            ("HOME", home.to_str().unwrap()),
            ("PATH", &path),
            ("XDG_RUNTIME_DIR", xdg.to_str().unwrap()),
        ],
    );
    common::assert_success(&out, &["push with a credential helper"]);
}
