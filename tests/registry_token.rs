//! Bearer-token auth against a real `docker-registry` configured for token
//! auth, with a small token server in the test that signs JWTs with a key
//! made by openssl (the registry trusts its certificate): challenge →
//! token (basic credentials sent to the realm) → retry, and tokens reused
//! per scope rather than fetched for every request. The token server also
//! speaks the OAuth2 refresh-token grant (a form POST), as docker's
//! `identitytoken` needs; on its `/get-only` path the POST is a 404, so the
//! client falls back to GET with basic credentials.

mod common;
mod registry_support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{Runner, Sandbox};
use registry_support::free_port;

const USER: &str = "carol";
const PASSWORD: &str = "t0ken-pw";
const REFRESH_TOKEN: &str = "refresh-0f-carol";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JWT the registry accepts, granting what `scopes` ask for.
fn sign_token(dir: &Path, scopes: &[String]) -> String {
    let der = fs::read(dir.join("token.der")).unwrap();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(der)]});
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name,
                "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let claims = serde_json::json!({"iss": "rbuild-test-issuer", "sub": USER, "aud": "rbuild-test",
        "exp": now + 600, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", scopes.len()),
        "access": access});
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let input_file = dir.join(format!("input-{}", std::process::id()));
    fs::write(&input_file, &signing_input).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("token.key"))
        .arg(&input_file)
        .output()
        .unwrap();
    assert!(out.status.success());
    format!("{signing_input}.{}", b64url(&out.stdout))
}

struct TokenServer {
    port: u16,
    requests: Arc<AtomicUsize>,
    /// OAuth2 POSTs that carried the right refresh token and form fields.
    oauth_grants: Arc<AtomicUsize>,
}

fn form_fields(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn start_token_server(dir: PathBuf) -> TokenServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let oauth_grants = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let grants = oauth_grants.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let mut authorized = false;
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let expected =
                    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("authorization: basic ")
                    && line.trim_end().ends_with(&expected)
                {
                    authorized = true;
                }
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
                continue;
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let mut words = first.split(' ');
            let method = words.next().unwrap_or("");
            let target = words.next().unwrap_or("");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let (status, body) = if method == "POST" {
                let fields = form_fields(&String::from_utf8_lossy(&body));
                let field = |k: &str| {
                    fields
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.as_str())
                };
                let scopes: Vec<String> = field("scope")
                    .unwrap_or("")
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if path == "/get-only" {
                    ("404 Not Found", "{}".to_string())
                } else if field("grant_type") == Some("refresh_token")
                    && field("refresh_token") == Some(REFRESH_TOKEN)
                    && field("client_id") == Some("rbuild")
                    && field("service") == Some("rbuild-test")
                {
                    grants.fetch_add(1, Ordering::SeqCst);
                    let token = sign_token(&dir, &scopes);
                    (
                        "200 OK",
                        serde_json::json!({"access_token": token, "expires_in": 600, "scope": scopes.join(" ")})
                            .to_string(),
                    )
                } else {
                    (
                        "400 Bad Request",
                        "{\"error\":\"invalid_grant\",\"error_description\":\"unknown refresh token\"}"
                            .to_string(),
                    )
                }
            } else {
                let scopes: Vec<String> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .map(percent_decode)
                    .collect();
                if authorized {
                    let token = sign_token(&dir, &scopes);
                    (
                        "200 OK",
                        serde_json::json!({"token": token, "expires_in": 600}).to_string(),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        "{\"details\":\"bad credentials\"}".to_string(),
                    )
                }
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    TokenServer {
        port,
        requests,
        oauth_grants,
    }
}

/// The token signing key pair, made by openssl in `d`.
fn make_signing_key(d: &Path) {
    registry_support::run(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=token signer",
            ])
            .arg("-keyout")
            .arg(d.join("token.key"))
            .arg("-out")
            .arg(d.join("token.crt")),
    );
    registry_support::run(
        Command::new("openssl")
            .args(["x509", "-outform", "der", "-in"])
            .arg(d.join("token.crt"))
            .arg("-out")
            .arg(d.join("token.der")),
    );
}

/// A registry in `d/NAME` whose token realm is `http://127.0.0.1:TOKENS/REALM_PATH`.
fn start_token_registry(
    d: &Path,
    name: &str,
    tokens: &TokenServer,
    realm_path: &str,
) -> (std::process::Child, String) {
    let port = free_port();
    let config = format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  token:\n    realm: http://127.0.0.1:{}{realm_path}\n    service: rbuild-test\n    issuer: rbuild-test-issuer\n    rootcertbundle: {}\n",
        d.join(name).join("data").display(),
        tokens.port,
        d.join("token.crt").display()
    );
    fs::create_dir_all(d.join(name)).unwrap();
    fs::write(d.join(name).join("config.yml"), config).unwrap();
    let log = fs::File::create(d.join(name).join("registry.log")).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(d.join(name).join("config.yml"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "registry did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("127.0.0.1:{port}"))
}

#[test]
fn identity_tokens_use_the_oauth2_refresh_token_grant() {
    let dir = tempfile::Builder::new()
        .prefix("rbuild-oauth-")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path();
    make_signing_key(d);
    let tokens = start_token_server(d.to_path_buf());
    let (mut child, host) = start_token_registry(d, "oauth", &tokens, "/token");
    let (mut get_only, get_host) = start_token_registry(d, "getonly", &tokens, "/get-only");
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let authfile = sb.path().join("auth.json");
    let authfile_arg = authfile.to_str().unwrap();
    let write_auth = |host: &str, entry: serde_json::Value| {
        fs::write(
            &authfile,
            serde_json::json!({"auths": {host: entry}}).to_string(),
        )
        .unwrap();
    };

    // The refresh token alone (docker's shape: the user name, an empty password).
    let user_only = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:"));
    write_auth(
        &host,
        serde_json::json!({"auth": user_only, "identitytoken": REFRESH_TOKEN}),
    );
    sb.ok(&[
        "push",
        "--tls-verify=false",
        "--authfile",
        authfile_arg,
        "busybox",
        &format!("docker://{host}/oauth/busybox:1"),
    ]);
    assert!(tokens.oauth_grants.load(Ordering::SeqCst) >= 1);
    let other = Sandbox::new(Runner::Root);
    other.ok(&[
        "pull",
        "--tls-verify=false",
        "--authfile",
        authfile_arg,
        &format!("{host}/oauth/busybox:1"),
    ]);

    // A wrong refresh token: the token server's refusal, and what to do.
    write_auth(&host, serde_json::json!({"identitytoken": "stale-token"}));
    let out = other.rbuild(&[
        "pull",
        "--tls-verify=false",
        "--policy",
        "always",
        "--authfile",
        authfile_arg,
        &format!("{host}/oauth/busybox:1"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refresh token")
            && err.contains("400")
            && err.contains("invalid_grant")
            && err.contains("rbuild login"),
        "{err}"
    );
    assert!(
        !err.contains("stale-token"),
        "the token is never printed: {err}"
    );

    // A credential helper answering "<token>" hands over a refresh token.
    let bin = sb.mkdir("bin");
    let helper = bin.join("docker-credential-rbtestoauth");
    fs::write(
        &helper,
        format!("#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = \"{host}\" ] || exit 1\necho '{{\"ServerURL\":\"{host}\",\"Username\":\"<token>\",\"Secret\":\"{REFRESH_TOKEN}\"}}'\n"),
    )
    .unwrap();
    fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs::write(
        &authfile,
        serde_json::json!({"credHelpers": {&host: "rbtestoauth"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let grants_before = tokens.oauth_grants.load(Ordering::SeqCst);
    let out = sb.rbuild_env(
        &[
            "push",
            "--tls-verify=false",
            "--authfile",
            authfile_arg,
            "busybox",
            &format!("docker://{host}/oauth/helper:1"),
        ],
        &[("PATH", &path)],
    );
    common::assert_success(&out, &["push with a helper's refresh token"]);
    assert!(tokens.oauth_grants.load(Ordering::SeqCst) > grants_before);

    // No OAuth2 endpoint (POST → 404): GET with the basic credentials stored beside it.
    let grants_before = tokens.oauth_grants.load(Ordering::SeqCst);
    let full = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    write_auth(
        &get_host,
        serde_json::json!({"auth": full, "identitytoken": REFRESH_TOKEN}),
    );
    sb.ok(&[
        "push",
        "--tls-verify=false",
        "--authfile",
        authfile_arg,
        "busybox",
        &format!("docker://{get_host}/fallback/busybox:1"),
    ]);
    assert_eq!(tokens.oauth_grants.load(Ordering::SeqCst), grants_before);
    for c in [&mut child, &mut get_only] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn bearer_tokens_are_fetched_with_credentials_and_reused() {
    let dir = tempfile::Builder::new()
        .prefix("rbuild-token-")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path();
    make_signing_key(d);
    let tokens = start_token_server(d.to_path_buf());
    let (mut child, host) = start_token_registry(d, "basic", &tokens, "/token");

    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    let out = sb.rbuild(&[
        "push",
        "--tls-verify=false",
        "--creds",
        "carol:wrong",
        "busybox",
        &format!("docker://{host}/tok/busybox:1"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("getting a token") && err.contains("rbuild login"),
        "{err}"
    );

    let before = tokens.requests.load(Ordering::SeqCst);
    let creds = format!("{USER}:{PASSWORD}");
    sb.ok(&[
        "push",
        "--tls-verify=false",
        "--creds",
        &creds,
        "busybox",
        &format!("docker://{host}/tok/busybox:1"),
    ]);
    // One token for the push scope, reused for every HEAD, POST, PUT.
    let used = tokens.requests.load(Ordering::SeqCst) - before;
    assert!(used <= 2, "{used} token requests for one push");

    let other = Sandbox::new(Runner::Root);
    other.ok(&[
        "pull",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("{host}/tok/busybox:1"),
    ]);
    assert!(other
        .ok(&["images"])
        .contains(&format!("{host}/tok/busybox")));
    let _ = child.kill();
    let _ = child.wait();
}
