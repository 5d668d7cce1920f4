//! ARG semantics as docker has them: global ARGs (before the first FROM)
//! are visible only to FROM lines unless a stage declares them again;
//! `--build-arg` overrides defaults; proxy args work undeclared and then
//! stay out of history (an ARG line opts them in); platform args are
//! predefined.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::image::Platform;

/// Args docker accepts without an ARG line (and then keeps out of history).
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
}

/// The `--build-arg` values of a build, and which of them a stage used.
#[derive(Debug, Default)]
pub struct BuildArgs {
    values: BTreeMap<String, String>,
    used: Mutex<BTreeSet<String>>,
}

impl BuildArgs {
    pub fn new(values: BTreeMap<String, String>) -> BuildArgs {
        BuildArgs {
            values,
            used: Mutex::default(),
        }
    }

    /// The value given for `name`, marking it used.
    pub fn take(&self, name: &str) -> Option<String> {
        let v = self.values.get(name).cloned();
        if v.is_some() {
            self.used
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string());
        }
        v
    }

    /// Proxy args given on the command line (usable without an ARG line).
    pub fn proxies(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for name in PROXY_ARGS {
            if let Some(v) = self.take(name) {
                out.push((name.to_string(), v));
            }
        }
        out
    }

    /// Args given with `--build-arg` that no stage declared.
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        self.values
            .keys()
            .filter(|k| !used.contains(*k) && !is_proxy_arg(k))
            .cloned()
            .collect()
    }
}

/// The automatic platform args (`TARGETPLATFORM`, `BUILDARCH`, …).
pub fn platform_args(target: &Platform, build: &Platform) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (prefix, p) in [("TARGET", target), ("BUILD", build)] {
        let mut platform = format!("{}/{}", p.os, p.architecture);
        if !p.variant.is_empty() {
            platform.push('/');
            platform.push_str(&p.variant);
        }
        out.push((format!("{prefix}PLATFORM"), platform));
        out.push((format!("{prefix}OS"), p.os.clone()));
        out.push((format!("{prefix}ARCH"), p.architecture.clone()));
        out.push((format!("{prefix}VARIANT"), p.variant.clone()));
    }
    out
}

/// Declared args in declaration order; a later declaration of a name
/// replaces the earlier one.
#[derive(Debug, Clone, Default)]
pub struct ArgScope {
    vars: Vec<(String, Option<String>)>,
}

impl ArgScope {
    pub fn declare(&mut self, name: &str, value: Option<String>) {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.to_string(), value));
    }

    /// `Some(None)`: declared without a value; `None`: not declared.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    /// The declared args that have a value, in declaration order.
    pub fn values(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), v.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_declaration_replaces_earlier() {
        let mut s = ArgScope::default();
        s.declare("A", Some("1".into()));
        s.declare("B", None);
        s.declare("A", Some("2".into()));
        assert_eq!(s.get("A"), Some(Some("2")));
        assert_eq!(s.get("B"), Some(None));
        assert_eq!(s.get("C"), None);
        assert_eq!(s.values(), vec![("A".to_string(), "2".to_string())]);
    }

    #[test]
    fn unused_build_args_are_reported_but_proxies_are_not() {
        let mut v = BTreeMap::new();
        v.insert("USED".to_string(), "1".to_string());
        v.insert("UNUSED".to_string(), "2".to_string());
        v.insert("HTTP_PROXY".to_string(), "http://p".to_string());
        let args = BuildArgs::new(v);
        assert_eq!(args.take("USED").as_deref(), Some("1"));
        assert_eq!(args.unused(), vec!["UNUSED".to_string()]);
    }

    #[test]
    fn platform_args_name_os_arch_and_variant() {
        let p = Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: "v7".into(),
            ..Platform::host()
        };
        let args = platform_args(&p, &p);
        assert!(args.contains(&("TARGETPLATFORM".into(), "linux/arm/v7".into())));
        assert!(args.contains(&("BUILDVARIANT".into(), "v7".into())));
    }
}
