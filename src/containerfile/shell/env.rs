//! Where the lexer looks variables up: the [`Env`] trait and the two
//! environments rbuild builds by hand (an ordered `KEY=value` list with
//! last-one-wins lookup, as a stage's ARG/ENV state is, and the empty one).

use std::collections::{BTreeMap, HashMap};

/// A read-only variable lookup. `None` means unset; `Some("")` is set and empty,
/// which `${V:-w}` and `${V-w}` tell apart.
pub trait Env {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// No variables at all (what the parser uses to recognise heredoc words).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// An environment built from `KEY=value` entries, as an image config's `Env`
/// or a stage's accumulated ARG/ENV: a later entry for a key replaces an
/// earlier one, and an entry without `=` sets the key to the empty string
/// (BuildKit's `EnvsFromSlice`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList {
    values: HashMap<String, String>,
    keys: Vec<String>,
}

impl EnvList {
    pub fn new() -> EnvList {
        EnvList::default()
    }

    /// Parses `KEY=value` entries; see the type's documentation.
    pub fn from_entries<I, S>(entries: I) -> EnvList
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut env = EnvList::new();
        for entry in entries {
            let entry = entry.as_ref();
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            env.set(key, value);
        }
        env
    }

    /// Sets `key`, replacing an earlier value but keeping its first position.
    pub fn set(&mut self, key: &str, value: &str) {
        if self
            .values
            .insert(key.to_string(), value.to_string())
            .is_none()
        {
            self.keys.push(key.to_string());
        }
    }

    /// The keys in the order they were first set.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

impl Env for EnvList {
    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_last_one_wins_and_missing_equals_is_empty() {
        let env = EnvList::from_entries(["foo=bar", "car=hat", "car=bike", "bare", "eq=a=b"]);
        assert_eq!(env.get("foo"), Some("bar"));
        assert_eq!(env.get("car"), Some("bike"));
        assert_eq!(env.get("bare"), Some(""));
        assert_eq!(env.get("eq"), Some("a=b"));
        assert_eq!(env.get("nope"), None);
        assert_eq!(env.keys(), ["foo", "car", "bare", "eq"]);
    }

    #[test]
    fn maps_and_no_env() {
        let mut map = HashMap::new();
        map.insert("A".to_string(), "1".to_string());
        assert_eq!(Env::get(&map, "A"), Some("1"));
        assert_eq!(NoEnv.get("A"), None);
        let tree: BTreeMap<String, String> = map.into_iter().collect();
        assert_eq!(Env::get(&tree, "A"), Some("1"));
    }
}
