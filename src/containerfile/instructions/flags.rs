//! Instruction flags (`--from=build`, `--link`, `--mount=...`), declared
//! once per instruction and checked in one place, as BuildKit's `bflag.go`:
//! unknown flags, duplicates, missing values and non-boolean values are
//! errors here.

use std::collections::HashMap;

use super::suggest::suggest;
use crate::containerfile::error::ErrorKind;

/// The kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--link`, `--link=true`, `--link=false`.
    Bool,
    /// `--from=x`, once.
    String,
    /// `--exclude=x`, any number of times.
    Strings,
}

/// A flag's value after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Bool(bool),
    String(String),
    Strings(Vec<String>),
}

/// The flags an instruction was given, checked against what it declares.
#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<&'static str, Value>,
}

/// An error about one flag; `flag` is the text to point the caret at.
#[derive(Debug)]
pub struct FlagError {
    pub kind: ErrorKind,
    pub flag: String,
}

impl Flags {
    /// Checks `given` (`--name[=value]` words) against `declared`.
    pub fn parse(
        instruction: &str,
        given: &[String],
        declared: &[(&'static str, FlagKind)],
    ) -> Result<Flags, FlagError> {
        let mut values: HashMap<&'static str, Value> = HashMap::new();
        for word in given {
            let err = |kind: ErrorKind| FlagError {
                kind,
                flag: word.clone(),
            };
            if word == "--" {
                break;
            }
            let (flag_name, value) = match word.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (word.as_str(), None),
            };
            let name = flag_name.strip_prefix("--").unwrap_or(flag_name);
            let Some(&(key, kind)) = declared.iter().find(|(n, _)| *n == name) else {
                let suggestion =
                    suggest(name, declared.iter().map(|(n, _)| *n)).map(|s| format!("--{s}"));
                return Err(err(ErrorKind::UnknownFlag {
                    instruction: instruction.to_string(),
                    flag: flag_name.to_string(),
                    suggestion,
                }));
            };
            if values.contains_key(key) && kind != FlagKind::Strings {
                return Err(err(ErrorKind::DuplicateFlag {
                    flag: flag_name.to_string(),
                }));
            }
            let missing = || {
                err(ErrorKind::FlagMissingValue {
                    flag: flag_name.to_string(),
                })
            };
            match kind {
                FlagKind::Bool => {
                    let b = match value.map(str::to_lowercase).as_deref() {
                        None => true,
                        Some("") => return Err(missing()),
                        Some("true") => true,
                        Some("false") => false,
                        Some(_) => {
                            return Err(err(ErrorKind::FlagNotBool {
                                flag: flag_name.to_string(),
                                value: value.unwrap_or_default().to_string(),
                            }))
                        }
                    };
                    values.insert(key, Value::Bool(b));
                }
                FlagKind::String => {
                    let v = value.ok_or_else(missing)?;
                    values.insert(key, Value::String(v.to_string()));
                }
                FlagKind::Strings => {
                    let v = value.ok_or_else(missing)?;
                    match values
                        .entry(key)
                        .or_insert_with(|| Value::Strings(Vec::new()))
                    {
                        Value::Strings(list) => list.push(v.to_string()),
                        _ => unreachable!("a Strings flag only ever holds Strings"),
                    }
                }
            }
        }
        Ok(Flags { values })
    }

    /// A boolean flag: `None` when not given.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.values.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// A single-valued flag: `None` when not given.
    pub fn string(&self, name: &str) -> Option<String> {
        match self.values.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A repeatable flag's values, in order.
    pub fn strings(&self, name: &str) -> Vec<String> {
        match self.values.get(name) {
            Some(Value::Strings(v)) => v.clone(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPY: &[(&str, FlagKind)] = &[
        ("from", FlagKind::String),
        ("link", FlagKind::Bool),
        ("exclude", FlagKind::Strings),
    ];

    fn parse(words: &[&str]) -> Result<Flags, String> {
        let given: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        Flags::parse("COPY", &given, COPY).map_err(|e| e.kind.to_string())
    }

    #[test]
    fn values() {
        let f = parse(&["--from=a", "--link", "--exclude=x", "--exclude=y"]).unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.strings("exclude"), vec!["x", "y"]);
        assert_eq!(parse(&["--link=FALSE"]).unwrap().bool("link"), Some(false));
        assert_eq!(parse(&[]).unwrap().bool("link"), None);
        assert_eq!(
            parse(&["--from="]).unwrap().string("from").as_deref(),
            Some("")
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse(&["--form=a"]).unwrap_err(),
            "unknown flag --form for COPY (did you mean \"--from\"?)"
        );
        assert_eq!(
            parse(&["--zzz"]).unwrap_err(),
            "unknown flag --zzz for COPY"
        );
        assert_eq!(
            parse(&["--from=a", "--from=b"]).unwrap_err(),
            "duplicate flag specified: --from"
        );
        assert_eq!(
            parse(&["--from"]).unwrap_err(),
            "missing a value on flag: --from"
        );
        assert_eq!(
            parse(&["--link="]).unwrap_err(),
            "missing a value on flag: --link"
        );
        assert_eq!(
            parse(&["--link=maybe"]).unwrap_err(),
            "expecting boolean value for flag --link, not: maybe"
        );
    }
}
