//! Helpers for the registry tests: real `docker-registry serve` instances on
//! free 127.0.0.1 ports (config written here, storage in a temp dir), an
//! HTTP relay that can corrupt or cut one blob, and certificates from
//! `openssl`.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a test registry is set up.
#[derive(Default)]
pub struct RegistryConfig {
    /// (user, password) for htpasswd basic auth.
    pub htpasswd: Option<(String, String)>,
    /// Serve TLS with a certificate signed by a CA made here.
    pub tls: bool,
}

/// A running `docker-registry`; killed on drop.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
    /// The CA certificate clients should trust (TLS registries).
    pub ca_dir: Option<PathBuf>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it; returns
/// (directory holding ca.crt, server cert, server key).
pub fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_dir = dir.join("ca");
    fs::create_dir_all(&ca_dir).unwrap();
    let ca_key = dir.join("ca.key");
    let ca_crt = ca_dir.join("ca.crt");
    run_ok(
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
                "/CN=rbuild test CA",
            ])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_crt),
    );
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let crt = dir.join("server.crt");
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    let ext = dir.join("ext.cnf");
    fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_crt)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-out")
            .arg(&crt)
            .arg("-extfile")
            .arg(&ext),
    );
    (ca_dir, crt, key)
}

impl Registry {
    pub fn start(config: RegistryConfig) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("rbuild-registry-")
            .tempdir_in("/tmp")
            .unwrap();
        let port = free_port();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        let mut ca_dir = None;
        if config.tls {
            let (ca, crt, key) = make_certs(dir.path());
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                crt.display(),
                key.display()
            ));
            ca_dir = Some(ca);
        }
        if let Some((user, pass)) = &config.htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .unwrap();
            assert!(out.status.success());
            let file = dir.path().join("htpasswd");
            fs::write(&file, out.stdout).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                file.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        fs::write(&cfg, yaml).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let reg = Registry {
            dir,
            port,
            child,
            ca_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start:\n{}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines for requests with this method whose URI contains `part`.
    pub fn count_requests(&self, method: &str, part: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(&format!("\"{method} ")) && l.contains(part))
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the relay does to the blob it watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mischief {
    /// Flip one byte in the middle of every response carrying the blob.
    Corrupt,
    /// Close the connection halfway through the first response carrying it.
    CutOnce,
    /// Answer the first request for it with 503 Service Unavailable.
    Unavailable503Once,
}

/// An HTTP/1.1 relay in front of a registry, watching one blob.
pub struct Relay {
    pub port: u16,
    /// Request heads seen for the watched blob.
    pub blob_requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    pub fn start(upstream: u16, blob_hex: &str, mischief: Mischief) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let blob_requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let cut_done = Arc::new(AtomicBool::new(false));
        let (requests, stop2, hex) = (blob_requests.clone(), stop.clone(), blob_hex.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (requests, hex, cut_done) = (requests.clone(), hex.clone(), cut_done.clone());
                std::thread::spawn(move || {
                    let _ =
                        relay_connection(client, upstream, &hex, mischief, &requests, &cut_done);
                });
            }
        });
        Relay {
            port,
            blob_requests,
            stop,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(if head.is_empty() { None } else { Some(head) });
        }
        head.push_str(&line);
        if line == "\r\n" {
            return Ok(Some(head));
        }
    }
}

fn content_length(head: &str) -> Option<u64> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn relay_connection(
    client: TcpStream,
    upstream: u16,
    hex: &str,
    mischief: Mischief,
    requests: &Mutex<Vec<String>>,
    cut_done: &AtomicBool,
) -> std::io::Result<()> {
    let server = TcpStream::connect(("127.0.0.1", upstream))?;
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let mut from_server = BufReader::new(server.try_clone()?);
    let mut to_server = server;
    while let Some(req) = read_head(&mut from_client)? {
        let method = req.split(' ').next().unwrap_or("").to_string();
        let watched = req.lines().next().unwrap_or("").contains(hex) && method == "GET";
        if watched {
            requests.lock().unwrap().push(req.clone());
            if mischief == Mischief::Unavailable503Once && !cut_done.swap(true, Ordering::SeqCst) {
                to_client.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n",
                )?;
                continue;
            }
        }
        to_server.write_all(req.as_bytes())?;
        if let Some(n) = content_length(&req) {
            std::io::copy(&mut (&mut from_client).take(n), &mut to_server)?;
        }
        let resp = read_head(&mut from_server)?.unwrap_or_default();
        to_client.write_all(resp.as_bytes())?;
        let status_has_body =
            !(resp.starts_with("HTTP/1.1 204") || resp.starts_with("HTTP/1.1 304"));
        let Some(len) = content_length(&resp) else {
            if method != "HEAD" && status_has_body {
                std::io::copy(&mut from_server, &mut to_client)?;
                return Ok(());
            }
            continue;
        };
        if method == "HEAD" {
            continue;
        }
        let mut body = Vec::new();
        (&mut from_server).take(len).read_to_end(&mut body)?;
        if watched && len > 16 {
            match mischief {
                Mischief::Corrupt => {
                    let mid = body.len() / 2;
                    body[mid] ^= 0xff;
                }
                Mischief::CutOnce if !cut_done.swap(true, Ordering::SeqCst) => {
                    to_client.write_all(&body[..body.len() / 2])?;
                    to_client.flush()?;
                    let _ = to_client.shutdown(Shutdown::Both);
                    let _ = to_server.shutdown(Shutdown::Both);
                    return Ok(());
                }
                Mischief::CutOnce | Mischief::Unavailable503Once => {}
            }
        }
        to_client.write_all(&body)?;
    }
    Ok(())
}

/// Runs a command and returns stdout, asserting success.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `skopeo inspect --raw` of an image on a plain-HTTP test registry.
pub fn raw_manifest(image: &str, extra: &[&str]) -> String {
    run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{image}")))
}
