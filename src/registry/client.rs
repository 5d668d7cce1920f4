//! The distribution API client for one registry: scheme detection, auth
//! (anonymous, basic, bearer tokens cached per scope), retries with backoff
//! on 429/5xx/connection errors, manifests, blobs with resumable downloads,
//! uploads and cross-repository mounts.
//!
//! Bodies are never held in memory except manifests and configs (capped):
//! blobs stream from a reader into a writer, uploads from a file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::auth::{parse_challenge, AuthConfig, Challenge, Credentials};
use super::error::{RegistryError, Result};
use super::tls;
use crate::digest::Digest;

/// Manifests and configs larger than this are refused (they are JSON).
pub const MANIFEST_LIMIT: u64 = 8 << 20;

/// What every media type `Accept` lists when fetching a manifest.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// How to reach registries, shared by every client of one command.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// `Some(false)`: `--tls-verify=false`; `None`: verify unless
    /// `registries.conf` marks the registry insecure.
    pub tls_verify: Option<bool>,
    pub cert_dir: Option<PathBuf>,
    pub auth: AuthConfig,
    /// Blobs transferred at once.
    pub max_parallel: usize,
    /// Attempts after the first, on 429, 5xx and dropped connections.
    pub retries: u32,
    /// First backoff delay; doubled per attempt.
    pub backoff: Duration,
    /// Upload blobs larger than this in PATCH chunks of this size
    /// (`None`: one monolithic PUT).
    pub chunk_size: Option<u64>,
}

impl Default for RegistryOptions {
    fn default() -> RegistryOptions {
        RegistryOptions {
            tls_verify: None,
            cert_dir: None,
            auth: AuthConfig::default(),
            max_parallel: 4,
            retries: 5,
            backoff: Duration::from_millis(200),
            chunk_size: None,
        }
    }
}

/// The access a request needs, for bearer-token scopes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `GET /v2/` and friends: no repository scope.
    None,
    Pull(String),
    Push(String),
    /// Push to the first repository, pull from the second (mounts).
    PushMount(String, String),
}

impl Access {
    fn scopes(&self) -> Vec<String> {
        match self {
            Access::None => Vec::new(),
            Access::Pull(r) => vec![format!("repository:{r}:pull")],
            Access::Push(r) => vec![format!("repository:{r}:pull,push")],
            Access::PushMount(r, from) => vec![
                format!("repository:{r}:pull,push"),
                format!("repository:{from}:pull"),
            ],
        }
    }
}

/// A request body that can be sent again on a retry.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`; `sent` hears the file offset
    /// reached as the bytes go out.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        sent: &'a (dyn Fn(u64) + Sync),
    },
}

/// Reports the file offset reached after every read.
struct SentReader<'a, R> {
    inner: R,
    offset: u64,
    sent: &'a (dyn Fn(u64) + Sync),
}

impl<R: io::Read> io::Read for SentReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.offset += n as u64;
        (self.sent)(self.offset);
        Ok(n)
    }
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    /// Bearer tokens by the scopes they were issued for.
    tokens: HashMap<Vec<String>, String>,
    creds: HashMap<String, Option<Credentials>>,
}

/// A client for one registry host.
pub struct Client {
    /// As image names spell it (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// `https://host` or `http://host`.
    base: String,
    agent: ureq::Agent,
    auth_config: AuthConfig,
    state: Mutex<AuthState>,
    retries: u32,
    backoff: Duration,
    pub chunk_size: Option<u64>,
}

/// The host to talk to for a registry name (Docker Hub's API lives elsewhere).
fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        r => r,
    }
}

impl Client {
    /// Connects to `registry`: finds whether it speaks HTTPS (or, only when
    /// TLS verification is off, plain HTTP) and what auth it wants.
    pub fn connect(registry: &str, opts: &RegistryOptions) -> Result<Client> {
        let host = api_host(registry);
        let insecure_conf = super::conf::RegistriesConf::load()
            .map(|c| c.is_insecure(registry))
            .unwrap_or(false);
        let verify = opts.tls_verify.unwrap_or(!insecure_conf);
        let tls = tls::client_config(host, verify, opts.cert_dir.as_deref())?;
        let mut client = Client {
            registry: registry.to_string(),
            base: format!("https://{host}"),
            agent: build_agent(host, "https", tls.clone())?,
            auth_config: opts.auth.clone(),
            state: Mutex::new(AuthState::default()),
            retries: opts.retries,
            backoff: opts.backoff,
            chunk_size: opts.chunk_size,
        };
        match client.ping() {
            Ok(()) => Ok(client),
            Err(RegistryError::Transport { .. }) if !verify => {
                // containers/image's rule: an insecure registry may be plain HTTP.
                client.base = format!("http://{host}");
                client.agent = build_agent(host, "http", tls)?;
                client.ping()?;
                Ok(client)
            }
            Err(RegistryError::Transport { url, cause, .. }) if cause.to_string().contains("corrupt message") => {
                Err(RegistryError::Transport {
                    what: "connecting to the registry over TLS (if it serves plain HTTP, pass --tls-verify=false or mark it insecure in registries.conf)".into(),
                    url,
                    cause,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/`: records the auth challenge, if any.
    fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        match self.agent.get(&url).call() {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(401, resp)) => {
                let challenge = resp.header("www-authenticate").and_then(parse_challenge);
                self.lock().challenge = challenge;
                Ok(())
            }
            Err(ureq::Error::Status(status, resp)) => Err(RegistryError::Status {
                what: "checking the registry API".into(),
                url,
                status,
                detail: error_detail(resp),
            }),
            Err(ureq::Error::Transport(t)) => Err(RegistryError::Transport {
                what: "connecting to the registry".into(),
                url,
                cause: Box::new(t),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `https://host/v2/` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.base)
    }

    fn credentials(&self, repository: &str) -> Result<Option<Credentials>> {
        if let Some(c) = self.lock().creds.get(repository) {
            return Ok(c.clone());
        }
        let c = self.auth_config.lookup(&self.registry, repository)?;
        self.lock().creds.insert(repository.to_string(), c.clone());
        Ok(c)
    }

    fn repository_of(access: &Access) -> &str {
        match access {
            Access::None => "",
            Access::Pull(r) | Access::Push(r) | Access::PushMount(r, _) => r,
        }
    }

    /// The `Authorization` value for `access`, fetching a token if needed.
    fn authorization(&self, access: &Access, refresh: bool) -> Result<Option<String>> {
        let challenge = self.lock().challenge.clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .credentials(Self::repository_of(access))?
                .map(|c| c.basic_header())),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let scopes = access.scopes();
                if !refresh {
                    if let Some(t) = self.lock().tokens.get(&scopes) {
                        return Ok(Some(format!("Bearer {t}")));
                    }
                }
                let token = self.fetch_token(&realm, service.as_deref(), &scopes, access)?;
                self.lock().tokens.insert(scopes, token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        access: &Access,
    ) -> Result<String> {
        let creds = self.credentials(Self::repository_of(access))?;
        if let Some(refresh) = creds.as_ref().and_then(|c| c.identity_token.as_deref()) {
            match self.fetch_token_oauth2(realm, service, scopes, refresh)? {
                Some(token) => return Ok(token),
                // 404: the token server has no OAuth2 endpoint; docker then
                // falls back to the GET flow with basic credentials.
                None => log::debug!("{realm}: no OAuth2 token endpoint (404); using GET"),
            }
        }
        let mut req = self.agent.get(realm);
        if let Some(s) = service {
            req = req.query("service", s);
        }
        for s in scopes {
            req = req.query("scope", s);
        }
        if let Some(c) = creds.filter(|c| !(c.username.is_empty() && c.password.is_empty())) {
            req = req.set("Authorization", &c.basic_header());
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(401, resp)) | Err(ureq::Error::Status(403, resp)) => {
                return Err(RegistryError::Unauthorized {
                    what: "getting a token".into(),
                    url: realm.to_string(),
                    registry: self.registry.clone(),
                    detail: error_detail(resp),
                })
            }
            Err(e) => return Err(map_error(e, "getting a token", realm, &self.registry)),
        };
        token_from_answer(resp, realm)
    }

    /// The OAuth2 refresh-token grant (docker's `identitytoken`): a form
    /// POST to the realm. `None` when the realm answers 404 (no OAuth2 there).
    fn fetch_token_oauth2(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        refresh: &str,
    ) -> Result<Option<String>> {
        let scope = scopes.join(" ");
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "rbuild"),
        ];
        if let Some(s) = service {
            form.push(("service", s));
        }
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        let what = "getting a token with the OAuth2 refresh token (identitytoken)";
        match self.agent.post(realm).send_form(&form) {
            Ok(resp) => token_from_answer(resp, realm).map(Some),
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(ureq::Error::Status(status @ (400 | 401 | 403), resp)) => {
                Err(RegistryError::Status {
                    what: format!(
                        "{what}: the token server refused the refresh token stored for {} (expired or revoked? log in again with `rbuild login {}`)",
                        self.registry, self.registry
                    ),
                    url: realm.to_string(),
                    status,
                    detail: error_detail(resp),
                })
            }
            Err(e) => Err(map_error(e, what, realm, &self.registry)),
        }
    }

    /// Checks that the configured credentials are accepted (for `login`).
    pub fn verify_login(&self) -> Result<()> {
        let url = self.url("");
        let challenge = self.lock().challenge.clone();
        let header = match challenge {
            None => return Ok(()),
            Some(Challenge::Basic) => self.credentials("")?.map(|c| c.basic_header()),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self.fetch_token(&realm, service.as_deref(), &[], &Access::None)?;
                Some(format!("Bearer {token}"))
            }
        };
        let mut req = self.agent.get(&url);
        if let Some(h) = &header {
            req = req.set("Authorization", h);
        }
        match req.call() {
            Ok(_) => Ok(()),
            Err(e) => Err(map_error(e, "logging in", &url, &self.registry)),
        }
    }

    /// Sends a request with auth and retries; returns a 2xx response.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        access: &Access,
        headers: &[(&str, &str)],
        body: Body<'_>,
        what: &str,
    ) -> Result<ureq::Response> {
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            let mut req = self.agent.request(method, url);
            if let Some(a) = self.authorization(access, false)? {
                req = req.set("Authorization", &a);
            }
            for (k, v) in headers {
                req = req.set(k, v);
            }
            let result = match body {
                Body::Empty => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
                Body::File {
                    path,
                    offset,
                    len,
                    sent,
                } => {
                    let mut f = File::open(path).map_err(RegistryError::io("opening", path))?;
                    f.seek(SeekFrom::Start(offset))
                        .map_err(RegistryError::io("seeking in", path))?;
                    let reader = SentReader {
                        inner: io::BufReader::with_capacity(1 << 20, f.take(len)),
                        offset,
                        sent,
                    };
                    req.set("Content-Length", &len.to_string()).send(reader)
                }
            };
            let err = match result {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            match &err {
                ureq::Error::Status(401, resp) if !refreshed => {
                    refreshed = true;
                    if let Some(c) = resp.header("www-authenticate").and_then(parse_challenge) {
                        self.lock().challenge = Some(c);
                    }
                    // A token may have expired: get a fresh one and try once more.
                    self.authorization(access, true)?;
                    continue;
                }
                ureq::Error::Status(code, resp)
                    if retryable_status(*code) && attempt < self.retries =>
                {
                    let wait = retry_after(resp).unwrap_or_else(|| self.delay(attempt));
                    log::info!("{what}: {url} answered {code}; retrying in {wait:?}");
                    std::thread::sleep(wait);
                }
                ureq::Error::Transport(t) if attempt < self.retries && retryable_transport(t) => {
                    let wait = self.delay(attempt);
                    log::info!("{what}: {url}: {t}; retrying in {wait:?}");
                    std::thread::sleep(wait);
                }
                _ => return Err(map_error(err, what, url, &self.registry)),
            }
            attempt += 1;
        }
    }

    /// The backoff before retry number `attempt` (0-based), capped at 10 s.
    pub fn delay(&self, attempt: u32) -> Duration {
        (self.backoff * 2u32.saturating_pow(attempt.min(16))).min(Duration::from_secs(10))
    }

    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Fetches a manifest by tag or digest: (bytes, media type, digest of the bytes).
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, String, Digest)> {
        let (url, bytes, media_type) = self.get_small(
            repository,
            &format!("manifests/{reference}"),
            &[("Accept", MANIFEST_ACCEPT)],
            "fetching the manifest",
        )?;
        let digest = Digest::of(&bytes);
        if let Ok(want) = reference.parse::<Digest>() {
            check_digest(url, &want, digest, &bytes)?;
        }
        Ok((bytes, media_type, digest))
    }

    /// GETs `repository/path` (a manifest, tag list or config: at most
    /// `MANIFEST_LIMIT` bytes) into memory: (URL, bytes, content type).
    fn get_small(
        &self,
        repository: &str,
        path: &str,
        headers: &[(&str, &str)],
        what: &str,
    ) -> Result<(String, Vec<u8>, String)> {
        let url = self.url(&format!("{repository}/{path}"));
        let resp = self.send(
            "GET",
            &url,
            &Access::Pull(repository.to_string()),
            headers,
            Body::Empty,
            what,
        )?;
        let content_type = resp.content_type().to_string();
        let bytes = read_limited(resp, MANIFEST_LIMIT, &url)?;
        Ok((url, bytes, content_type))
    }

    /// The tags of a repository.
    pub fn list_tags(&self, repository: &str) -> Result<Vec<String>> {
        let (url, bytes, _) = self.get_small(repository, "tags/list", &[], "listing tags")?;
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let tags: Tags = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
            url,
            why: format!("the tag list is not JSON: {e}"),
        })?;
        Ok(tags.tags.unwrap_or_default())
    }

    /// A small blob (a config) into memory, verified.
    pub fn get_small_blob(&self, repository: &str, digest: &Digest) -> Result<Vec<u8>> {
        let (url, bytes, _) = self.get_small(
            repository,
            &format!("blobs/{digest}"),
            &[],
            "fetching a blob",
        )?;
        check_digest(url, digest, Digest::of(&bytes), &bytes)?;
        Ok(bytes)
    }

    /// Streams blob `digest` of `size` bytes into `out`. A dropped connection
    /// resumes with a `Range` request from the last byte received (a server
    /// that ignores Range has the part already held skipped), up to the
    /// retry limit. The caller verifies the digest of what it received.
    pub fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        let access = Access::Pull(repository.to_string());
        let mut written = 0u64;
        let mut failures = 0u32;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let range = format!("bytes={written}-");
            let headers: Vec<(&str, &str)> = if written > 0 {
                vec![("Range", range.as_str())]
            } else {
                Vec::new()
            };
            let resp = self.send(
                "GET",
                &url,
                &access,
                &headers,
                Body::Empty,
                "fetching a blob",
            )?;
            let mut skip = if resp.status() == 206 { 0 } else { written };
            let mut reader = resp.into_reader();
            let outcome: io::Result<()> = loop {
                match reader.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        let mut chunk = &buf[..n];
                        if skip > 0 {
                            let s = skip.min(n as u64) as usize;
                            skip -= s as u64;
                            chunk = &chunk[s..];
                        }
                        if written + chunk.len() as u64 > size {
                            return Err(RegistryError::Protocol {
                                url,
                                why: format!(
                                    "the blob is longer than the {size} bytes the manifest says"
                                ),
                            });
                        }
                        out.write_all(chunk).map_err(|e| RegistryError::Body {
                            url: url.clone(),
                            source: e,
                        })?;
                        written += chunk.len() as u64;
                        progress(written);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            if written == size {
                return Ok(written);
            }
            failures += 1;
            let why = match outcome {
                Ok(()) => format!("the connection ended after {written} of {size} bytes"),
                Err(e) => format!("after {written} of {size} bytes: {e}"),
            };
            if failures > self.retries {
                return Err(RegistryError::Protocol {
                    url,
                    why: format!("giving up: {why}"),
                });
            }
            let wait = self.delay(failures - 1);
            log::info!("blob {digest}: {why}; resuming in {wait:?}");
            std::thread::sleep(wait);
        }
    }

    /// The size of a blob in the repository, or `None` when it is not there.
    pub fn head_blob(
        &self,
        repository: &str,
        digest: &Digest,
        access: &Access,
    ) -> Result<Option<u64>> {
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        match self.send(
            "HEAD",
            &url,
            access,
            &[],
            Body::Empty,
            "checking for a blob",
        ) {
            Ok(resp) => Ok(Some(
                resp.header("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0),
            )),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Tries a cross-repository mount of `digest` from `from`; true when the
    /// registry mounted it (201), false when it started an upload instead.
    pub fn mount_blob(&self, repository: &str, digest: &Digest, from: &str) -> Result<bool> {
        let url = format!(
            "{}?mount={digest}&from={from}",
            self.url(&format!("{repository}/blobs/uploads/"))
        );
        let access = Access::PushMount(repository.to_string(), from.to_string());
        let resp = self.send(
            "POST",
            &url,
            &access,
            &[("Content-Length", "0")],
            Body::Empty,
            "mounting a blob",
        )?;
        if resp.status() == 201 {
            return Ok(true);
        }
        // An upload session was opened instead: cancel it so it does not linger.
        if let Some(loc) = resp.header("location").map(str::to_string) {
            if let Ok(u) = self.resolve(&url, &loc) {
                let _ = self.send(
                    "DELETE",
                    &u,
                    &Access::Push(repository.to_string()),
                    &[],
                    Body::Empty,
                    "cancelling an upload",
                );
            }
        }
        Ok(false)
    }

    fn resolve(&self, base: &str, location: &str) -> Result<String> {
        let base = url::Url::parse(base).map_err(|e| RegistryError::Protocol {
            url: base.to_string(),
            why: e.to_string(),
        })?;
        base.join(location)
            .map(|u| u.to_string())
            .map_err(|e| RegistryError::Protocol {
                url: location.to_string(),
                why: format!("bad upload location: {e}"),
            })
    }

    fn upload_location(&self, url: &str, resp: &ureq::Response) -> Result<String> {
        let loc = resp
            .header("location")
            .ok_or_else(|| RegistryError::Protocol {
                url: url.to_string(),
                why: "the upload answer has no Location header".into(),
            })?;
        self.resolve(url, loc)
    }

    /// Uploads `size` bytes of `path` as blob `digest`: one PUT, or PATCH
    /// chunks when the client's chunk size is smaller than the blob.
    /// `sent` hears how many bytes went out so far.
    pub fn upload_blob_file(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
        sent: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let access = Access::Push(repository.to_string());
        let start = self.url(&format!("{repository}/blobs/uploads/"));
        let resp = self.send(
            "POST",
            &start,
            &access,
            &[("Content-Length", "0")],
            Body::Empty,
            "starting an upload",
        )?;
        let mut location = self.upload_location(&start, &resp)?;
        let mut offset = 0u64;
        if let Some(chunk) = self.chunk_size.filter(|c| *c > 0 && *c < size) {
            while offset < size {
                let len = chunk.min(size - offset);
                let range = format!("{}-{}", offset, offset + len - 1);
                let resp = self.send(
                    "PATCH",
                    &location,
                    &access,
                    &[
                        ("Content-Type", "application/octet-stream"),
                        ("Content-Range", &range),
                    ],
                    Body::File {
                        path,
                        offset,
                        len,
                        sent,
                    },
                    "uploading a blob chunk",
                )?;
                location = self.upload_location(&location, &resp)?;
                offset += len;
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        self.send(
            "PUT",
            &put,
            &access,
            &[("Content-Type", "application/octet-stream")],
            Body::File {
                path,
                offset,
                len: size - offset,
                sent,
            },
            "finishing an upload",
        )?;
        Ok(())
    }

    /// Uploads a small blob from memory.
    pub fn upload_blob_bytes(&self, repository: &str, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let access = Access::Push(repository.to_string());
        let start = self.url(&format!("{repository}/blobs/uploads/"));
        let resp = self.send(
            "POST",
            &start,
            &access,
            &[("Content-Length", "0")],
            Body::Empty,
            "starting an upload",
        )?;
        let location = self.upload_location(&start, &resp)?;
        let sep = if location.contains('?') { '&' } else { '?' };
        self.send(
            "PUT",
            &format!("{location}{sep}digest={digest}"),
            &access,
            &[("Content-Type", "application/octet-stream")],
            Body::Bytes(bytes),
            "uploading a blob",
        )?;
        Ok(digest)
    }

    /// Puts a manifest under a tag or digest.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let url = self.url(&format!("{repository}/manifests/{reference}"));
        self.send(
            "PUT",
            &url,
            &Access::Push(repository.to_string()),
            &[("Content-Type", media_type)],
            Body::Bytes(bytes),
            "writing the manifest",
        )?;
        Ok(Digest::of(bytes))
    }
}

/// The token in a token server's JSON answer (`token`, else the OAuth2
/// `access_token`).
fn token_from_answer(resp: ureq::Response, realm: &str) -> Result<String> {
    let body = read_limited(resp, 1 << 20, realm)?;
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        #[serde(default)]
        token: String,
        #[serde(default)]
        access_token: String,
    }
    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
            url: realm.to_string(),
            why: format!("the token answer is not JSON: {e}"),
        })?;
    let token = if answer.token.is_empty() {
        answer.access_token
    } else {
        answer.token
    };
    if token.is_empty() {
        return Err(RegistryError::Protocol {
            url: realm.to_string(),
            why: "the token answer holds no token".into(),
        });
    }
    Ok(token)
}

/// An agent for `host` over `scheme`, through the proxy the environment
/// names for it (see [`proxy_for`]).
fn build_agent(
    host: &str,
    scheme: &str,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Result<ureq::Agent> {
    let mut builder = ureq::AgentBuilder::new()
        .tls_config(tls)
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120))
        .timeout_write(Duration::from_secs(120))
        .redirects(8)
        .user_agent(concat!("rbuild/", env!("CARGO_PKG_VERSION")));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(proxy) = proxy_for(host, scheme, &env) {
        let p = ureq::Proxy::new(&proxy).map_err(|e| {
            RegistryError::Config(format!("proxy {proxy:?} from the environment: {e}"))
        })?;
        builder = builder.proxy(p);
    }
    Ok(builder.build())
}

/// The proxy for `host` over `scheme`, as Go's `ProxyFromEnvironment` picks
/// it (so rbuild agrees with podman and skopeo): `HTTPS_PROXY` or
/// `HTTP_PROXY` by scheme, none for loopback hosts or hosts matched by
/// `NO_PROXY` (`*`, a host, `.domain` / `domain` suffixes, `host:port`).
fn proxy_for(host: &str, scheme: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let pick = |upper: &str| env(upper).or_else(|| env(&upper.to_ascii_lowercase()));
    let proxy = if scheme == "https" {
        pick("HTTPS_PROXY")
    } else {
        pick("HTTP_PROXY")
    }?;
    let (name, port) = match host.rsplit_once(':') {
        Some((h, p))
            if p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(']') || h.starts_with('[') =>
        {
            (h, Some(p))
        }
        _ => (host, None),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    {
        return None;
    }
    let no_proxy = pick("NO_PROXY").unwrap_or_default();
    for entry in no_proxy.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" {
            return None;
        }
        let (e_host, e_port) = match entry.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
            _ => (entry, None),
        };
        if e_port.is_some() && e_port != port {
            continue;
        }
        let suffix = e_host.trim_start_matches('.');
        if name == suffix || name.ends_with(&format!(".{suffix}")) {
            return None;
        }
    }
    Some(proxy)
}

fn retryable_status(code: u16) -> bool {
    code == 429 || code == 408 || (500..600).contains(&code) && code != 501
}

fn retryable_transport(t: &ureq::Transport) -> bool {
    !matches!(
        t.kind(),
        ureq::ErrorKind::InvalidUrl
            | ureq::ErrorKind::UnknownScheme
            | ureq::ErrorKind::InvalidProxyUrl
            | ureq::ErrorKind::ProxyUnauthorized
    )
}

fn retry_after(resp: &ureq::Response) -> Option<Duration> {
    resp.header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(30)))
}

/// The registry's error message from a JSON `{"errors":[…]}` body, or the start of the body.
fn error_detail(resp: ureq::Response) -> String {
    let mut body = Vec::new();
    let _ = resp.into_reader().take(16 << 10).read_to_end(&mut body);
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(&body) {
        return e
            .errors
            .iter()
            .map(|x| format!("{} {}", x.code, x.message).trim().to_string())
            .collect::<Vec<_>>()
            .join("; ");
    }
    String::from_utf8_lossy(&body)
        .trim()
        .chars()
        .take(300)
        .collect()
}

fn map_error(err: ureq::Error, what: &str, url: &str, registry: &str) -> RegistryError {
    match err {
        ureq::Error::Status(401, resp) | ureq::Error::Status(403, resp) => {
            RegistryError::Unauthorized {
                what: what.to_string(),
                url: url.to_string(),
                registry: registry.to_string(),
                detail: error_detail(resp),
            }
        }
        ureq::Error::Status(404, resp) => RegistryError::NotFound {
            what: what.to_string(),
            url: url.to_string(),
            detail: error_detail(resp),
        },
        ureq::Error::Status(status, resp) => RegistryError::Status {
            what: what.to_string(),
            url: url.to_string(),
            status,
            detail: error_detail(resp),
        },
        ureq::Error::Transport(t) => RegistryError::Transport {
            what: what.to_string(),
            url: url.to_string(),
            cause: Box::new(t),
        },
    }
}

/// Refuses `bytes` fetched from `url` unless they hash to `expected`.
fn check_digest(url: String, expected: &Digest, actual: Digest, bytes: &[u8]) -> Result<()> {
    if actual == *expected {
        return Ok(());
    }
    Err(RegistryError::DigestMismatch {
        url,
        expected: *expected,
        actual,
        size: bytes.len() as u64,
    })
}

/// Reads a whole body of at most `limit` bytes.
pub fn read_limited(resp: ureq::Response, limit: u64, url: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Body {
            url: url.to_string(),
            source: e,
        })?;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::Protocol {
            url: url.to_string(),
            why: format!("the answer is larger than {limit} bytes"),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_retry_policy() {
        assert_eq!(
            Access::Pull("a/b".into()).scopes(),
            vec!["repository:a/b:pull"]
        );
        assert_eq!(
            Access::PushMount("a".into(), "b".into()).scopes(),
            vec!["repository:a:pull,push", "repository:b:pull"]
        );
        assert!(retryable_status(429) && retryable_status(503) && !retryable_status(501));
        assert!(!retryable_status(404) && !retryable_status(401));
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn proxies_follow_gos_rules() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let e = env(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("no_proxy", ".corp.example,quay.io:8443"),
        ]);
        assert_eq!(
            proxy_for("quay.io", "https", &e).as_deref(),
            Some("http://proxy:3128")
        );
        assert_eq!(proxy_for("quay.io", "http", &e), None);
        assert_eq!(proxy_for("127.0.0.1:5000", "https", &e), None);
        assert_eq!(proxy_for("localhost:5000", "https", &e), None);
        assert_eq!(proxy_for("reg.corp.example", "https", &e), None);
        assert_eq!(proxy_for("corp.example", "https", &e), None);
        assert_eq!(proxy_for("quay.io:8443", "https", &e), None);
        let all = env(&[("http_proxy", "http://p:1"), ("NO_PROXY", "*")]);
        assert_eq!(proxy_for("docker.io", "http", &all), None);
    }
}
