//! `registries.conf` (containers-registries.conf(5)): unqualified-search
//! registries, short-name mode, `[[registry]]` entries with `location`,
//! `prefix`, `insecure`, `blocked` and their `[[registry.mirror]]`s, plus
//! the old v1 `[registries.search]`/`[registries.insecure]` tables.
//!
//! Read from `$CONTAINERS_REGISTRIES_CONF`, else
//! `~/.config/containers/registries.conf`, else
//! `/etc/containers/registries.conf`, so a podman user's setup applies.
//! Only the TOML this file uses is parsed: tables, arrays of tables, and
//! string, boolean and string-array values.

use std::path::{Path, PathBuf};

use super::error::{RegistryError, Result};
use crate::reference::Reference;

/// One mirror of a registry entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
}

/// One `[[registry]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryEntry {
    pub prefix: String,
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirrors: Vec<Mirror>,
}

/// The parsed configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    pub path: Option<PathBuf>,
    pub search: Vec<String>,
    pub short_name_mode: Option<String>,
    pub registries: Vec<RegistryEntry>,
}

/// Where an image is pulled from: a registry host and repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullSource {
    pub registry: String,
    pub repository: String,
    pub insecure: bool,
    pub mirror: bool,
}

impl RegistriesConf {
    /// The file in effect (see the module doc), or an empty configuration.
    pub fn load() -> Result<RegistriesConf> {
        let mut candidates = Vec::new();
        if let Some(p) = std::env::var_os("CONTAINERS_REGISTRIES_CONF").filter(|p| !p.is_empty()) {
            candidates.push(PathBuf::from(p));
        } else {
            if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                candidates.push(PathBuf::from(home).join(".config/containers/registries.conf"));
            }
            candidates.push(PathBuf::from("/etc/containers/registries.conf"));
        }
        for path in candidates {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let mut conf = RegistriesConf::parse(&text, &path)?;
                    conf.path = Some(path);
                    return Ok(conf);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(RegistryError::io("reading registries.conf", &path)(e)),
            }
        }
        Ok(RegistriesConf::default())
    }

    /// Parses the subset of TOML registries.conf uses.
    pub fn parse(text: &str, path: &Path) -> Result<RegistriesConf> {
        #[derive(PartialEq)]
        enum Table {
            Top,
            Registry,
            Mirror,
            V1Search,
            V1Insecure,
            V1Block,
            Other,
        }
        let mut conf = RegistriesConf::default();
        let mut table = Table::Top;
        let mut pending = String::new();
        let mut start_line = 0;
        for (n, raw) in text.lines().enumerate() {
            let line = strip_comment(raw);
            if pending.is_empty() {
                start_line = n + 1;
            }
            pending.push_str(line);
            pending.push(' ');
            // An array value may span lines: wait for its closing bracket.
            if bracket_depth(&pending) > 0 {
                continue;
            }
            let stmt = std::mem::take(&mut pending);
            let stmt = stmt.trim();
            if stmt.is_empty() {
                continue;
            }
            let bad = |why: String| {
                RegistryError::Config(format!("{}:{start_line}: {why}", path.display()))
            };
            if stmt.starts_with('[') {
                table = match stmt.replace(' ', "").as_str() {
                    "[[registry]]" => {
                        conf.registries.push(RegistryEntry::default());
                        Table::Registry
                    }
                    "[[registry.mirror]]" => {
                        let entry = conf.registries.last_mut().ok_or_else(|| {
                            bad("[[registry.mirror]] before any [[registry]]".into())
                        })?;
                        entry.mirrors.push(Mirror::default());
                        Table::Mirror
                    }
                    "[registries.search]" => Table::V1Search,
                    "[registries.insecure]" => Table::V1Insecure,
                    "[registries.block]" => Table::V1Block,
                    _ => Table::Other,
                };
                continue;
            }
            let (key, value) = stmt
                .split_once('=')
                .ok_or_else(|| bad(format!("expected KEY = VALUE, found {stmt:?}")))?;
            let key = key.trim().trim_matches('"');
            let value = Value::parse(value.trim()).map_err(|why| bad(format!("{key}: {why}")))?;
            match (&table, key) {
                (Table::Top, "unqualified-search-registries") => conf.search = value.list(),
                (Table::Top, "short-name-mode") => conf.short_name_mode = Some(value.string()),
                (Table::Registry, k) => {
                    if let Some(e) = conf.registries.last_mut() {
                        match k {
                            "prefix" => e.prefix = value.string(),
                            "location" => e.location = value.string(),
                            "insecure" => e.insecure = value.bool(),
                            "blocked" => e.blocked = value.bool(),
                            _ => {}
                        }
                    }
                }
                (Table::Mirror, k) => {
                    if let Some(m) = conf
                        .registries
                        .last_mut()
                        .and_then(|e| e.mirrors.last_mut())
                    {
                        match k {
                            "location" => m.location = value.string(),
                            "insecure" => m.insecure = value.bool(),
                            _ => {}
                        }
                    }
                }
                (Table::V1Search, "registries") => conf.search.extend(value.list()),
                (Table::V1Insecure, "registries") | (Table::V1Block, "registries") => {
                    let blocked = table == Table::V1Block;
                    for r in value.list() {
                        conf.registries.push(RegistryEntry {
                            prefix: r.clone(),
                            location: r,
                            insecure: !blocked,
                            blocked,
                            mirrors: Vec::new(),
                        });
                    }
                }
                _ => {}
            }
        }
        for e in &mut conf.registries {
            if e.prefix.is_empty() {
                e.prefix = e.location.clone();
            }
        }
        Ok(conf)
    }

    /// The entry whose prefix matches `name` (`host/repo`) longest.
    fn entry_for(&self, name: &str) -> Option<&RegistryEntry> {
        self.registries
            .iter()
            .filter(|e| {
                !e.prefix.is_empty()
                    && (name == e.prefix
                        || name.starts_with(&format!("{}/", e.prefix))
                        || name.starts_with(&format!("{}:", e.prefix)))
            })
            .max_by_key(|e| e.prefix.len())
    }

    /// Whether `registry` (host[:port]) is marked insecure.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.entry_for(registry).is_some_and(|e| e.insecure)
            || self.registries.iter().flat_map(|e| &e.mirrors).any(|m| {
                m.insecure
                    && (m.location == registry || m.location.starts_with(&format!("{registry}/")))
            })
    }

    /// Where to pull a fully qualified `reference` from: mirrors first, then
    /// the (possibly rewritten) location. Refuses a blocked registry.
    pub fn pull_sources(&self, reference: &Reference) -> Result<Vec<PullSource>> {
        let registry = reference.registry.clone().unwrap_or_default();
        let name = format!("{registry}/{}", reference.repository);
        let Some(entry) = self.entry_for(&name) else {
            return Ok(vec![PullSource {
                registry,
                repository: reference.repository.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        if entry.blocked {
            return Err(RegistryError::Config(format!(
                "{name} is blocked by {}",
                self.path
                    .as_deref()
                    .map_or("registries.conf".into(), |p| p.display().to_string())
            )));
        }
        let rest = &name[entry.prefix.len()..];
        let split = |location: &str, insecure: bool, mirror: bool| {
            let full = format!("{location}{rest}");
            let (reg, repo) = full.split_once('/').unwrap_or((&full, ""));
            PullSource {
                registry: reg.to_string(),
                repository: repo.trim_start_matches('/').to_string(),
                insecure,
                mirror,
            }
        };
        let mut out: Vec<PullSource> = entry
            .mirrors
            .iter()
            .filter(|m| !m.location.is_empty())
            .map(|m| split(&m.location, m.insecure, true))
            .collect();
        let location = if entry.location.is_empty() {
            &entry.prefix
        } else {
            &entry.location
        };
        out.push(split(location, entry.insecure, false));
        Ok(out)
    }
}

fn strip_comment(line: &str) -> &str {
    let mut in_str = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '#' if !in_str => return &line[..i],
            _ => {}
        }
    }
    line
}

fn bracket_depth(s: &str) -> i32 {
    let (mut depth, mut in_str) = (0, false);
    let trimmed = s.trim_start();
    // Table headers open and close on one line.
    if trimmed.starts_with('[') {
        return 0;
    }
    for c in s.chars() {
        match c {
            '"' => in_str = !in_str,
            '[' if !in_str => depth += 1,
            ']' if !in_str => depth -= 1,
            _ => {}
        }
    }
    depth
}

enum Value {
    Str(String),
    Bool(bool),
    List(Vec<String>),
}

impl Value {
    fn parse(s: &str) -> std::result::Result<Value, String> {
        if s == "true" || s == "false" {
            return Ok(Value::Bool(s == "true"));
        }
        if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            let items = inner
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(|i| {
                    unquote(i).ok_or_else(|| format!("array items must be strings, found {i}"))
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            return Ok(Value::List(items));
        }
        unquote(s)
            .map(Value::Str)
            .ok_or_else(|| format!("expected a string, boolean or array, found {s}"))
    }

    fn string(self) -> String {
        match self {
            Value::Str(s) => s,
            _ => String::new(),
        }
    }

    fn bool(self) -> bool {
        matches!(self, Value::Bool(true))
    }

    fn list(self) -> Vec<String> {
        match self {
            Value::List(l) => l,
            Value::Str(s) => vec![s],
            Value::Bool(_) => Vec::new(),
        }
    }
}

fn unquote(s: &str) -> Option<String> {
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
# comment
unqualified-search-registries = ["registry.fedoraproject.org",
   "quay.io", "docker.io"]   # trailing
short-name-mode = "enforcing"

[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar"
insecure = true

[[registry.mirror]]
location = "mirror.local:5000/cache"

[[registry]]
location = "bad.io"
blocked = true
"#;

    #[test]
    fn parses_v2_files() {
        let c = RegistriesConf::parse(CONF, Path::new("r.conf")).unwrap();
        assert_eq!(
            c.search,
            ["registry.fedoraproject.org", "quay.io", "docker.io"]
        );
        assert_eq!(c.short_name_mode.as_deref(), Some("enforcing"));
        assert_eq!(c.registries.len(), 2);
        assert!(c.is_insecure("example.com/foo"));
        assert!(!c.is_insecure("quay.io"));
        let r = Reference::parse("example.com/foo/app:1").unwrap();
        let sources = c.pull_sources(&r).unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(
            (sources[0].registry.as_str(), sources[0].repository.as_str()),
            ("mirror.local:5000", "cache/app")
        );
        assert_eq!(
            (sources[1].registry.as_str(), sources[1].repository.as_str()),
            ("internal.example.com", "bar/app")
        );
        assert!(sources[1].insecure && sources[0].mirror);
        let err = c
            .pull_sources(&Reference::parse("bad.io/x").unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("blocked"), "{err}");
        let plain = c
            .pull_sources(&Reference::parse("quay.io/a/b").unwrap())
            .unwrap();
        assert_eq!(plain[0].repository, "a/b");
    }

    #[test]
    fn parses_v1_and_reports_lines() {
        let c = RegistriesConf::parse(
            "[registries.search]\nregistries = ['docker.io']\n[registries.insecure]\nregistries = [\"localhost:5000\"]\n",
            Path::new("v1.conf"),
        )
        .unwrap();
        assert_eq!(c.search, ["docker.io"]);
        assert!(c.is_insecure("localhost:5000"));
        let err = RegistriesConf::parse("\n\nnonsense\n", Path::new("x.conf")).unwrap_err();
        assert!(err.to_string().contains("x.conf:3"), "{err}");
    }
}
