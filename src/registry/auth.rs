//! Credentials: where they come from (`--creds`, auth files, docker's
//! `config.json` with its credential helpers) and how `login`/`logout` save
//! them, plus parsing of `WWW-Authenticate` challenges.
//!
//! Lookup order follows containers/image: `--creds`; then `--authfile` or
//! `$REGISTRY_AUTH_FILE` when given (only that file); otherwise
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`
//! and `~/.docker/config.json`. Inside a file, the most specific key wins
//! (`host/ns/repo` before `host/ns` before `host`); a `credHelpers` entry
//! for the host, or `credsStore`, runs `docker-credential-NAME get`.
//!
//! An entry with an `identitytoken` (what `docker login` stores when the
//! token server hands out an OAuth2 refresh token) yields credentials whose
//! [`Credentials::identity_token`] is set: the client then asks the realm
//! for a token with the refresh-token grant (see `client.rs`), as docker
//! and containers/image do, instead of sending it as a password.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::{RegistryError, Result};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token (`identitytoken` in an auth file).
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Never print a secret, even in debug logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// A user name and password.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
            identity_token: None,
        }
    }

    /// Parses `--creds USER[:PASS]`.
    pub fn parse(creds: &str) -> Result<Credentials> {
        match creds.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials::basic(u, p)),
            _ => Err(RegistryError::Config(
                "--creds must be USER:PASSWORD (the user name is empty or the colon is missing)"
                    .into(),
            )),
        }
    }

    /// The `Authorization: Basic` value.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", self.encoded())
    }

    /// base64(`user:pass`), as auth files store it.
    pub fn encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }

    fn decode(auth: &str, path: &Path) -> Result<Credentials> {
        let bad = |why: &str| RegistryError::AuthFile {
            path: path.to_path_buf(),
            why: why.to_string(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("an \"auth\" value is not base64"))?;
        let text = String::from_utf8(raw).map_err(|_| bad("an \"auth\" value is not UTF-8"))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| bad("an \"auth\" value is not base64(user:password)"))?;
        Ok(Credentials::basic(u, p))
    }
}

/// Where credentials are read from and written to.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// `--creds`: used for every request, files are not read.
    pub creds: Option<Credentials>,
    /// `--authfile` (or `$REGISTRY_AUTH_FILE`): the only file read and the one written.
    pub authfile: Option<PathBuf>,
}

impl AuthConfig {
    /// `--authfile` if given, else `$REGISTRY_AUTH_FILE`.
    pub fn new(creds: Option<Credentials>, authfile: Option<PathBuf>) -> AuthConfig {
        let authfile = authfile.or_else(|| {
            std::env::var_os("REGISTRY_AUTH_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        AuthConfig { creds, authfile }
    }

    /// The files searched, in order.
    pub fn search_path(&self) -> Vec<PathBuf> {
        if let Some(f) = &self.authfile {
            return vec![f.clone()];
        }
        let mut out = vec![default_auth_file()];
        if let Some(home) = home_dir() {
            out.push(home.join(".config/containers/auth.json"));
            out.push(home.join(".docker/config.json"));
        }
        out
    }

    /// The file `login` writes and `logout` edits.
    pub fn write_path(&self) -> PathBuf {
        self.authfile.clone().unwrap_or_else(default_auth_file)
    }

    /// Credentials for `registry` (host[:port]) and `repository`, if any.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Credentials>> {
        if let Some(c) = &self.creds {
            return Ok(Some(c.clone()));
        }
        for path in self.search_path() {
            if let Some(c) = lookup_in_file(&path, registry, repository)? {
                log::debug!("credentials for {registry} from {}", path.display());
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

/// `$XDG_RUNTIME_DIR/containers/auth.json`, or `/run/containers/UID/auth.json`
/// when `XDG_RUNTIME_DIR` is unset (as containers/image does).
pub fn default_auth_file() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("containers/auth.json"),
        None => {
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            PathBuf::from(format!("/run/containers/{uid}/auth.json"))
        }
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn read_file(path: &Path) -> Result<Option<Map<String, Value>>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RegistryError::io("reading auth file", path)(e)),
    };
    if text.trim().is_empty() {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(RegistryError::AuthFile {
            path: path.to_path_buf(),
            why: "the top level is not a JSON object".into(),
        }),
        Err(e) => Err(RegistryError::AuthFile {
            path: path.to_path_buf(),
            why: format!("line {} column {}: {e}", e.line(), e.column()),
        }),
    }
}

/// Keys an `auths` entry may have for this image, most specific first.
fn candidate_keys(registry: &str, repository: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let parts: Vec<&str> = repository.split('/').collect();
    for n in (1..=parts.len()).rev() {
        keys.push(format!("{registry}/{}", parts[..n].join("/")));
    }
    keys.push(registry.to_string());
    keys
}

/// Strips a scheme and a `/v1/`-style path from a legacy docker key.
fn normalize_key(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    if key.contains("://") {
        k.split('/').next().unwrap_or(k)
    } else {
        k
    }
}

fn lookup_in_file(path: &Path, registry: &str, repository: &str) -> Result<Option<Credentials>> {
    let Some(file) = read_file(path)? else {
        return Ok(None);
    };
    let registry_key = if registry == "docker.io" {
        "index.docker.io"
    } else {
        registry
    };
    if let Some(Value::Object(auths)) = file.get("auths") {
        let normalized: BTreeMap<&str, &Value> =
            auths.iter().map(|(k, v)| (normalize_key(k), v)).collect();
        for key in candidate_keys(registry, repository)
            .into_iter()
            .chain(std::iter::once(registry_key.to_string()))
        {
            if let Some(Value::Object(entry)) = normalized.get(key.as_str()) {
                let basic = match entry.get("auth") {
                    Some(Value::String(auth)) if !auth.is_empty() => {
                        Some(Credentials::decode(auth, path)?)
                    }
                    _ => None,
                };
                let token = match entry.get("identitytoken") {
                    Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
                    _ => None,
                };
                match (basic, token) {
                    (basic, Some(token)) => {
                        // docker keeps the user name (and an empty password)
                        // in "auth" next to the refresh token.
                        let mut c = basic.unwrap_or_else(|| Credentials::basic("", ""));
                        c.identity_token = Some(token);
                        return Ok(Some(c));
                    }
                    (Some(basic), None) => return Ok(Some(basic)),
                    (None, None) => {}
                }
            }
        }
    }
    let helper = file
        .get("credHelpers")
        .and_then(|h| h.get(registry).or_else(|| h.get(registry_key)))
        .or_else(|| file.get("credsStore"))
        .and_then(Value::as_str);
    match helper {
        Some(h) if !h.is_empty() => credential_helper(h, registry),
        _ => Ok(None),
    }
}

/// Runs `docker-credential-HELPER get` with the registry on stdin.
fn credential_helper(helper: &str, registry: &str) -> Result<Option<Credentials>> {
    let fail = |why: String| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        registry: registry.to_string(),
        why,
    };
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program} (is it on PATH?): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| fail(format!("writing to {program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for {program}: {e}")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        // The protocol's "not found" answer means: no credentials, go on anonymously.
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!(
            "{program} exited with {}: {}",
            out.status,
            text.trim()
        )));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let a: Answer = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("{program} printed invalid JSON: {e}")))?;
    // A helper answers "<token>" as the user name for an identity token.
    if a.username == "<token>" {
        return Ok(Some(Credentials {
            username: String::new(),
            password: String::new(),
            identity_token: Some(a.secret),
        }));
    }
    Ok(Some(Credentials::basic(a.username, a.secret)))
}

/// Saves `creds` for `key` (a registry, or registry/repo) in `path`, keeping
/// every other entry; the file is written atomically with mode 0600.
pub fn save(path: &Path, key: &str, creds: &Credentials) -> Result<()> {
    let mut file = read_file(path)?.unwrap_or_default();
    let auths = file
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        return Err(RegistryError::AuthFile {
            path: path.to_path_buf(),
            why: "\"auths\" is not an object".into(),
        });
    };
    let mut entry = Map::new();
    entry.insert("auth".into(), Value::String(creds.encoded()));
    auths.insert(key.to_string(), Value::Object(entry));
    write_file(path, &file)
}

/// Removes `key` (or every entry when `None`); returns whether anything was removed.
pub fn remove(path: &Path, key: Option<&str>) -> Result<bool> {
    let Some(mut file) = read_file(path)? else {
        return Ok(false);
    };
    let removed = match (file.get_mut("auths"), key) {
        (Some(Value::Object(auths)), Some(k)) => {
            let before = auths.len();
            auths.retain(|name, _| normalize_key(name) != k);
            auths.len() != before
        }
        (Some(Value::Object(auths)), None) => {
            let any = !auths.is_empty();
            auths.clear();
            any
        }
        _ => false,
    };
    if removed {
        write_file(path, &file)?;
    }
    Ok(removed)
}

fn write_file(path: &Path, file: &Map<String, Value>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(RegistryError::io("creating directory for", dir))?;
    let mut bytes = serde_json::to_vec_pretty(file).map_err(|e| RegistryError::AuthFile {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    bytes.push(b'\n');
    let tmp = dir.join(format!(".{}.tmp-{}", file_name(path), std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(RegistryError::io("creating", &tmp))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(RegistryError::io("setting mode 0600 on", &tmp))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(RegistryError::io("writing", &tmp))?;
    fs::rename(&tmp, path).map_err(RegistryError::io("renaming into place", path))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "auth.json".into())
}

/// One `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

/// `k="v", k2=v2` with quoted strings that may hold commas.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.insert(key, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.io/token",service="registry.io",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.io/token".into(),
                service: Some("registry.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn creds_parse_and_encode() {
        let c = Credentials::parse("u:p:q").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:q"));
        assert_eq!(c.encoded(), "dTpwOnE=");
        assert!(Credentials::parse("nocolon").is_err());
        assert!(Credentials::parse(":p").is_err());
        assert!(!format!("{c:?}").contains("p:q"));
    }

    #[test]
    fn save_lookup_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/auth.json");
        let cfg = AuthConfig {
            creds: None,
            authfile: Some(path.clone()),
        };
        assert_eq!(cfg.lookup("r.io", "a/b").unwrap(), None);
        let c = Credentials::parse("alice:s3cret").unwrap();
        save(&path, "r.io", &c).unwrap();
        save(&path, "r.io/team", &Credentials::parse("bob:x").unwrap()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(cfg.lookup("r.io", "a/b").unwrap(), Some(c.clone()));
        assert_eq!(
            cfg.lookup("r.io", "team/app").unwrap().unwrap().username,
            "bob"
        );
        assert!(remove(&path, Some("r.io")).unwrap());
        assert!(!remove(&path, Some("r.io")).unwrap());
        assert_eq!(cfg.lookup("r.io", "a/b").unwrap(), None);
        assert!(remove(&path, None).unwrap());
        assert_eq!(cfg.lookup("r.io", "team/app").unwrap(), None);
    }

    #[test]
    fn docker_config_legacy_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let cfg = AuthConfig {
            creds: None,
            authfile: Some(path.clone()),
        };
        assert_eq!(
            cfg.lookup("docker.io", "library/x")
                .unwrap()
                .unwrap()
                .username,
            "u"
        );
        fs::write(&path, "{not json").unwrap();
        let err = cfg.lookup("docker.io", "x").unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
    }

    #[test]
    fn identity_tokens_are_refresh_tokens_not_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        let cfg = AuthConfig {
            creds: None,
            authfile: Some(path.clone()),
        };
        fs::write(&path, r#"{"auths":{"r.io":{"identitytoken":"rt-1"}}}"#).unwrap();
        let c = cfg.lookup("r.io", "a").unwrap().unwrap();
        assert_eq!(c.identity_token.as_deref(), Some("rt-1"));
        assert_eq!((c.username.as_str(), c.password.as_str()), ("", ""));
        // docker's own shape: the user in "auth" with an empty password.
        let auth = base64::engine::general_purpose::STANDARD.encode("carol:");
        fs::write(
            &path,
            format!(r#"{{"auths":{{"r.io":{{"auth":"{auth}","identitytoken":"rt-2"}}}}}}"#),
        )
        .unwrap();
        let c = cfg.lookup("r.io", "a").unwrap().unwrap();
        assert_eq!(c.username, "carol");
        assert_eq!(c.identity_token.as_deref(), Some("rt-2"));
        assert!(!format!("{c:?}").contains("rt-2"), "never printed");
    }
}
