//! `RUN --mount=type=...,key=value,...`: the CSV option string turned into a
//! typed [`RunMount`], with BuildKit's rules (which keys each type takes,
//! read-only defaults, secret constraints).
//!
//! Values may hold build variables (`target=$HOME/.cache`). Parsing is pure,
//! so such a mount is checked as far as it can be and marked
//! [`RunMount::needs_expansion`]; the executor re-parses its `raw` text with
//! [`RunMount::parse_expanded`] once the stage's ARG/ENV values are known.

use serde::Serialize;

use super::suggest::suggest;

/// What a mount's specification got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("cannot read {spec:?} as comma-separated values: {reason}")]
    Csv { spec: String, reason: String },
    #[error("invalid field '{field}' must be a key=value pair")]
    NotKeyValue { field: String },
    #[error("unsupported mount type {value:?}{}", did_you_mean(suggestion))]
    UnknownType {
        value: String,
        suggestion: Option<String>,
    },
    #[error("unexpected key '{key}' for mount type '{kind}'")]
    KeyNotForType { key: String, kind: MountType },
    #[error("unexpected key '{key}' in '{field}'{}", did_you_mean(suggestion))]
    UnknownKey {
        key: String,
        field: String,
        suggestion: Option<String>,
    },
    #[error("invalid value for {key}: {value}")]
    InvalidValue { key: String, value: String },
    #[error("invalid value {value} for {key}")]
    InvalidNumber { key: String, value: String },
    #[error("unsupported sharing value {value:?}{}", did_you_mean(suggestion))]
    UnknownSharing {
        value: String,
        suggestion: Option<String>,
    },
    #[error("{key} not allowed for {kind:?} type mounts")]
    FileInfoNotAllowed { key: String, kind: String },
    #[error("secret mount should not have a from")]
    SecretFrom,
    #[error("secret mount should not define sharing")]
    SecretSharing,
    #[error("invalid secret mount. one of source, target required")]
    SecretTarget,
    #[error("both source and id can't be set")]
    SecretSourceAndId,
    #[error("invalid cache sharing set for {kind} mount")]
    SharingNotCache { kind: MountType },
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    #[error("expanding {value:?}: {reason}")]
    Expansion { value: String, reason: String },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {s:?}?)"),
        None => String::new(),
    }
}

impl MountError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        use MountError::*;
        match self {
            Csv { .. } => "quote a whole field (\"target=a,b\") and double quotes inside it".into(),
            NotKeyValue { .. } => "only ro, rw and required stand alone; write key=value".into(),
            UnknownType { .. } => "type is one of bind, cache, tmpfs, secret, ssh".into(),
            KeyNotForType { .. } => "put type= first; size is for tmpfs, required for secret and ssh".into(),
            UnknownKey { .. } => "keys are type, from, source, target, readonly, id, sharing, required, size, mode, uid, gid, env".into(),
            InvalidValue { .. } => "use true or false".into(),
            InvalidNumber { key, .. } if key == "mode" => "mode is octal, e.g. mode=0600".into(),
            InvalidNumber { .. } => "use a whole number".into(),
            UnknownSharing { .. } => "sharing is one of shared, private, locked".into(),
            FileInfoNotAllowed { .. } => "mode, uid and gid apply to cache, secret and ssh mounts".into(),
            SecretFrom | SecretSharing => "remove the option from the secret mount".into(),
            SecretTarget => "give the secret an id= or a target=".into(),
            SecretSourceAndId => "give either source= or id=".into(),
            SharingNotCache { .. } => "sharing applies to type=cache only".into(),
            FromVariable => "add a stage `FROM $VAR AS name` and mount from=name".into(),
            Expansion { .. } => "check the variables used in the mount".into(),
        }
    }
}

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A directory from the context or another stage (the default).
    #[default]
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A fresh tmpfs.
    Tmpfs,
    /// A build secret, as a file or an environment variable.
    Secret,
    /// The SSH agent socket.
    Ssh,
}

impl std::fmt::Display for MountType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        })
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSharing {
    /// Everyone writes at once (the default).
    Shared,
    /// Each writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// One `--mount` of a RUN, typed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RunMount {
    /// `type=` (bind when absent).
    #[serde(rename = "type")]
    pub kind: MountType,
    /// `from=`: a stage or image to take `source` from.
    pub from: Option<String>,
    /// `source=` / `src=`.
    pub source: Option<String>,
    /// `target=` / `dst=` / `destination=`.
    pub target: Option<String>,
    /// Read-only: explicit `ro`/`rw`, else true for bind, secret and ssh.
    pub readonly: bool,
    /// `id=`: the cache or secret id.
    pub id: Option<String>,
    /// `sharing=` for cache mounts.
    pub sharing: Option<CacheSharing>,
    /// `required` for secret and ssh mounts.
    pub required: bool,
    /// `size=` for tmpfs, in bytes.
    pub size: Option<u64>,
    /// `mode=` (octal) for cache, secret and ssh.
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `env=`: expose a secret as this environment variable.
    pub env: Option<String>,
    /// Some value holds `$`: re-parse `raw` with [`RunMount::parse_expanded`].
    pub needs_expansion: bool,
    /// The option string as written after `--mount=`.
    pub raw: String,
}

const ALL_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

impl RunMount {
    /// Parses a mount at Containerfile-parse time: values holding `$` are
    /// left for [`RunMount::parse_expanded`].
    pub fn parse(spec: &str) -> Result<RunMount, MountError> {
        parse_mount(spec, None)
    }

    /// Parses a mount after expanding each value with `expand` (the build
    /// executor passes the shell lexer bound to the stage's variables).
    pub fn parse_expanded(
        spec: &str,
        expand: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<RunMount, MountError> {
        parse_mount(spec, Some(expand))
    }
}

type Expander<'a> = Option<&'a dyn Fn(&str) -> Result<String, String>>;

fn parse_mount(spec: &str, expand: Expander<'_>) -> Result<RunMount, MountError> {
    let fields = csv_fields(spec).map_err(|reason| MountError::Csv {
        spec: spec.to_string(),
        reason,
    })?;
    let mut m = RunMount {
        raw: spec.to_string(),
        ..RunMount::default()
    };
    let mut ro_auto = true;
    for field in fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), v.to_string()),
            None => {
                match field.to_lowercase().as_str() {
                    "readonly" | "ro" => {
                        m.readonly = true;
                        ro_auto = false;
                    }
                    "readwrite" | "rw" => {
                        m.readonly = false;
                        ro_auto = false;
                    }
                    "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                        m.required = true
                    }
                    "required" => {
                        return Err(MountError::KeyNotForType {
                            key: "required".into(),
                            kind: m.kind,
                        });
                    }
                    _ => return Err(MountError::NotKeyValue { field }),
                }
                continue;
            }
        };
        let value = match expand {
            Some(f) => f(&value).map_err(|reason| MountError::Expansion {
                value: value.clone(),
                reason,
            })?,
            None => {
                if key == "from" {
                    if let Some(i) = value.find('$') {
                        if i != value.len() - 1 {
                            return Err(MountError::FromVariable);
                        }
                    }
                }
                if value.contains('$') && key != "from" {
                    // Checked again, typed, once the variables are known.
                    m.needs_expansion = true;
                    if !ALL_KEYS.contains(&key.as_str()) {
                        return Err(unknown_key(&key, &field));
                    }
                    continue;
                }
                value
            }
        };
        apply(&mut m, &key, value, &field, &mut ro_auto)?;
    }
    finish(m, ro_auto)
}

fn unknown_key(key: &str, field: &str) -> MountError {
    MountError::UnknownKey {
        key: key.to_string(),
        field: field.to_string(),
        suggestion: suggest(key, ALL_KEYS.iter().copied()),
    }
}

fn apply(
    m: &mut RunMount,
    key: &str,
    value: String,
    field: &str,
    ro_auto: &mut bool,
) -> Result<(), MountError> {
    let bad_bool = || MountError::InvalidValue {
        key: key.to_string(),
        value: value.clone(),
    };
    match key {
        "type" => {
            m.kind = match value.to_lowercase().as_str() {
                "bind" => MountType::Bind,
                "cache" => MountType::Cache,
                "tmpfs" => MountType::Tmpfs,
                "secret" => MountType::Secret,
                "ssh" => MountType::Ssh,
                _ => {
                    let suggestion = suggest(&value, ["bind", "cache", "tmpfs", "secret", "ssh"]);
                    return Err(MountError::UnknownType { value, suggestion });
                }
            }
        }
        "from" => m.from = Some(value),
        "source" | "src" => m.source = Some(value),
        "target" | "dst" | "destination" => m.target = Some(value),
        "readonly" | "ro" => {
            m.readonly = go_parse_bool(&value).ok_or_else(bad_bool)?;
            *ro_auto = false;
        }
        "readwrite" | "rw" => {
            m.readonly = !go_parse_bool(&value).ok_or_else(bad_bool)?;
            *ro_auto = false;
        }
        "required" => {
            if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                return Err(MountError::KeyNotForType {
                    key: key.into(),
                    kind: m.kind,
                });
            }
            m.required = go_parse_bool(&value).ok_or_else(bad_bool)?;
        }
        "size" => {
            if m.kind != MountType::Tmpfs {
                return Err(MountError::KeyNotForType {
                    key: key.into(),
                    kind: m.kind,
                });
            }
            m.size = Some(ram_in_bytes(&value).ok_or_else(bad_bool)?);
        }
        "id" => m.id = Some(value),
        "sharing" => {
            m.sharing = Some(match value.to_lowercase().as_str() {
                "shared" => CacheSharing::Shared,
                "private" => CacheSharing::Private,
                "locked" => CacheSharing::Locked,
                _ => {
                    let suggestion = suggest(&value, ["shared", "private", "locked"]);
                    return Err(MountError::UnknownSharing { value, suggestion });
                }
            })
        }
        "mode" | "uid" | "gid" => {
            let radix = if key == "mode" { 8 } else { 10 };
            let n = u32::from_str_radix(value.strip_prefix('+').unwrap_or(&value), radix)
                .ok()
                .filter(|_| !value.starts_with('+'))
                .ok_or_else(|| MountError::InvalidNumber {
                    key: key.into(),
                    value: value.clone(),
                })?;
            match key {
                "mode" => m.mode = Some(n),
                "uid" => m.uid = Some(n),
                _ => m.gid = Some(n),
            }
        }
        "env" => m.env = Some(value),
        _ => return Err(unknown_key(key, field)),
    }
    Ok(())
}

fn finish(mut m: RunMount, ro_auto: bool) -> Result<RunMount, MountError> {
    let file_info_allowed = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_allowed {
        let kind = m.kind.to_string();
        if m.mode.is_some() {
            return Err(MountError::FileInfoNotAllowed {
                key: "mode".into(),
                kind,
            });
        }
        if m.uid.is_some() {
            return Err(MountError::FileInfoNotAllowed {
                key: "uid".into(),
                kind,
            });
        }
        if m.gid.is_some() {
            return Err(MountError::FileInfoNotAllowed {
                key: "gid".into(),
                kind,
            });
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err(MountError::SecretFrom);
        }
        if m.sharing.is_some() {
            return Err(MountError::SecretSharing);
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() && !m.needs_expansion {
            return Err(MountError::SecretTarget);
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(MountError::SecretSourceAndId);
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(MountError::SharingNotCache { kind: m.kind });
    }
    Ok(m)
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// docker/go-units `RAMInBytes`: `64m`, `1.5g`, `512kb`, `100` (bytes), binary units.
fn ram_in_bytes(s: &str) -> Option<u64> {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let (prefix, suffix) = match unit.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => (Some(c), &unit[1..]),
        _ => (None, unit.as_str()),
    };
    if !matches!(suffix, "" | "b" | "i" | "ib") {
        return None;
    }
    let mult: f64 = match prefix {
        None => 1.0,
        Some('k') => 1024.0,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        _ => 1024f64.powi(5),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes >= 9.2e18 {
        return None;
    }
    Some(bytes as u64)
}

/// One CSV record (Go `encoding/csv` rules): quoted fields may hold commas
/// and doubled quotes; a bare quote inside an unquoted field is an error.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') => match chars.peek() {
                        Some('"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some(',') | None => break,
                        Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
                    },
                    Some(c) => field.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err("bare \" in non-quoted-field".into());
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        match chars.next() {
            Some(',') => continue,
            _ => return Ok(fields),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_per_type() {
        let m = RunMount::parse("target=/src").unwrap();
        assert_eq!(
            (m.kind, m.readonly, m.target.as_deref()),
            (MountType::Bind, true, Some("/src"))
        );
        let m =
            RunMount::parse("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1")
                .unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert!(!m.readonly);
        assert_eq!(
            (m.sharing, m.mode, m.uid),
            (Some(CacheSharing::Locked), Some(0o755), Some(1))
        );
        let m = RunMount::parse("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
        let m = RunMount::parse("type=secret,id=tok,required,env=TOKEN").unwrap();
        assert!(m.required && m.readonly);
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        let m = RunMount::parse("type=ssh").unwrap();
        assert_eq!(m.kind, MountType::Ssh);
        let m = RunMount::parse("type=bind,from=build,source=/out,target=/in,rw").unwrap();
        assert!(!m.readonly);
        assert_eq!(m.from.as_deref(), Some("build"));
        let m = RunMount::parse("\"target=/a,b\",ro=false").unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
        assert!(!m.readonly);
    }

    #[test]
    fn variables_are_deferred() {
        let m = RunMount::parse("type=cache,target=$HOME/.cache,uid=${UID}").unwrap();
        assert!(m.needs_expansion);
        assert_eq!(m.uid, None);
        let env = |s: &str| Ok::<_, String>(s.replace("$HOME", "/root").replace("${UID}", "7"));
        let m = RunMount::parse_expanded(&m.raw, &env).unwrap();
        assert_eq!(
            (m.target.as_deref(), m.uid),
            (Some("/root/.cache"), Some(7))
        );
        assert_eq!(
            RunMount::parse("from=$x,target=/a"),
            Err(MountError::FromVariable)
        );
    }

    #[test]
    fn error_messages() {
        let e = |s: &str| RunMount::parse(s).unwrap_err().to_string();
        assert_eq!(
            e("type=cahce"),
            "unsupported mount type \"cahce\" (did you mean \"cache\"?)"
        );
        assert_eq!(
            e("target"),
            "invalid field 'target' must be a key=value pair"
        );
        assert_eq!(e("size=1m"), "unexpected key 'size' for mount type 'bind'");
        assert_eq!(
            e("required"),
            "unexpected key 'required' for mount type 'bind'"
        );
        assert_eq!(
            e("type=cache,trget=/a"),
            "unexpected key 'trget' in 'trget=/a' (did you mean \"target\"?)"
        );
        assert_eq!(e("ro=maybe"), "invalid value for ro: maybe");
        assert_eq!(e("type=cache,mode=9"), "invalid value 9 for mode");
        assert_eq!(
            e("type=cache,sharing=lockd"),
            "unsupported sharing value \"lockd\" (did you mean \"locked\"?)"
        );
        assert_eq!(e("uid=1"), "uid not allowed for \"bind\" type mounts");
        assert_eq!(
            e("type=secret,id=a,from=b"),
            "secret mount should not have a from"
        );
        assert_eq!(
            e("type=secret,id=a,sharing=shared"),
            "secret mount should not define sharing"
        );
        assert_eq!(
            e("type=secret"),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            e("type=secret,id=a,source=b"),
            "both source and id can't be set"
        );
        assert_eq!(
            e("sharing=shared"),
            "invalid cache sharing set for bind mount"
        );
        assert_eq!(
            e("target=a\"b"),
            "cannot read \"target=a\\\"b\" as comma-separated values: bare \" in non-quoted-field"
        );
        assert_eq!(
            e("from=${x}y"),
            "'from' doesn't support variable expansion, define alias stage instead"
        );
        let failing = |_: &str| Err::<String, String>("boom".into());
        assert_eq!(
            RunMount::parse_expanded("target=$X", &failing)
                .unwrap_err()
                .to_string(),
            "expanding \"$X\": boom"
        );
    }

    #[test]
    fn ram_units() {
        assert_eq!(ram_in_bytes("100"), Some(100));
        assert_eq!(ram_in_bytes("1k"), Some(1024));
        assert_eq!(ram_in_bytes("1.5GiB"), Some(3 << 29));
        assert_eq!(ram_in_bytes("2 mb"), Some(2 << 20));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("1x"), None);
    }
}
