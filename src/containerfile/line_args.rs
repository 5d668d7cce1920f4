//! How one logical line becomes a keyword, flags and argument nodes:
//! BuildKit's `split_command.go` and `line_parsers.go`, one function per
//! argument style (JSON-or-shell, whitespace list, key=value pairs, ...).

use super::error::ErrorKind;
use super::json::{parse_string_array, JsonArray};

/// `[\t\v\f\r ]`: the separators BuildKit's `reWhitespace` splits on.
pub(crate) fn is_split_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits the keyword off the line and extracts the leading `--flags`.
/// Returns (keyword, flags, trimmed argument text).
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let t = line.trim();
    match t.find(is_split_space) {
        None => (t.to_string(), Vec::new(), String::new()),
        Some(i) => {
            let rest = t[i..].trim_start_matches(is_split_space);
            let (args, flags) = extract_flags(rest, escape);
            (t[..i].to_string(), flags, args.trim().to_string())
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Leading words starting with `--` are flags (quotes removed, escapes
/// honoured); a bare `--` ends them and is dropped. Returns the rest of the
/// line and the flags.
///
/// BuildKit reads this text byte by byte and counts bytes 0x85 and 0xA0 as
/// blanks, which can split a UTF-8 character; rbuild reads characters, so
/// the two differ only for flags holding such characters.
fn extract_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    // Most instructions have no flags: skip the character scan.
    if !line.trim_start().starts_with("--") {
        return (line.trim_start(), Vec::new());
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let n = chars.len();
    let at = |p: usize| if p < n { chars[p].0 } else { line.len() };
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= n {
        let ch = if pos < n { chars[pos].1 } else { '\0' };
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            if ch != '-' || pos + 1 == n || chars[pos + 1].1 != '-' {
                return (&line[at(pos)..], words);
            }
            phase = Phase::Word;
        }
        if pos == n {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (&line[at(pos)..], words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if ch == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = chars[pos].1;
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if ch == escape {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = chars[pos].1;
        }
        word.push(c);
        pos += 1;
    }
    ("", words)
}

/// Splits on blanks, keeping quotes and escapes inside each word
/// (BuildKit's `parseWords`, used by ARG, ENV and LABEL).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut pos = 0;
    while pos <= n {
        let mut ch = if pos < n { chars[pos] } else { '\0' };
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == n {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// The argument nodes of one instruction and whether they came from JSON.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub args: Vec<String>,
    pub json: bool,
}

fn plain(args: Vec<String>) -> Parsed {
    Parsed { args, json: false }
}

/// Whitespace list (FROM, EXPOSE, and ADD/COPY/VOLUME outside JSON).
pub(crate) fn whitespace_list(rest: &str) -> Parsed {
    plain(
        rest.split(is_split_space)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    )
}

/// One node holding the whole text (USER, WORKDIR, MAINTAINER, STOPSIGNAL).
pub(crate) fn single(rest: &str) -> Parsed {
    if rest.is_empty() {
        Parsed::default()
    } else {
        plain(vec![rest.to_string()])
    }
}

/// RUN, CMD, ENTRYPOINT, SHELL: JSON array, else one node with the text.
pub(crate) fn maybe_json(rest: &str) -> Result<Parsed, ErrorKind> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    match parse_string_array(rest) {
        JsonArray::Strings(args) => Ok(Parsed { args, json: true }),
        JsonArray::NotStrings => Err(ErrorKind::JsonNotStrings),
        JsonArray::NotJson => Ok(plain(vec![rest.to_string()])),
    }
}

/// ADD, COPY, VOLUME: JSON array, else a whitespace list.
pub(crate) fn maybe_json_list(rest: &str) -> Result<Parsed, ErrorKind> {
    match parse_string_array(rest) {
        JsonArray::Strings(args) => Ok(Parsed { args, json: true }),
        JsonArray::NotStrings => Err(ErrorKind::JsonNotStrings),
        JsonArray::NotJson => Ok(whitespace_list(rest)),
    }
}

/// ARG: each word as written.
pub(crate) fn name_or_name_val(rest: &str, escape: char) -> Parsed {
    plain(parse_words(rest, escape))
}

/// ENV and LABEL: `key value` (3 nodes: key, value, "") or `k=v ...`
/// (3 nodes per pair: k, v, "=").
pub(crate) fn name_val(rest: &str, instruction: &str, escape: char) -> Result<Parsed, ErrorKind> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Parsed::default());
    }
    if !words[0].contains('=') {
        let Some(i) = rest.find(is_split_space) else {
            return Err(ErrorKind::NameValueNeedsTwo {
                instruction: instruction.to_string(),
            });
        };
        let value = rest[i..].trim_start_matches(is_split_space);
        return Ok(plain(vec![
            rest[..i].to_string(),
            value.to_string(),
            String::new(),
        ]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(ErrorKind::NameValueMissingEquals { word });
        };
        args.push(k.to_string());
        args.push(v.to_string());
        args.push("=".to_string());
    }
    Ok(plain(args))
}

/// HEALTHCHECK: the type word, then the RUN/CMD rule for the rest.
pub(crate) fn health_config(rest: &str) -> Result<Parsed, ErrorKind> {
    let sep = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '\u{b}')
        .unwrap_or(rest.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let typ = &rest[..sep];
    let after = rest[sep..].trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\u{b}');
    let cmd = maybe_json(after)?;
    let mut args = vec![typ.to_string()];
    args.extend(cmd.args);
    Ok(Parsed {
        args,
        json: cmd.json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_are_extracted() {
        assert_eq!(
            split_command("COPY --user=me --doit=true foo /tmp/", '\\'),
            (
                "COPY".into(),
                s(&["--user=me", "--doit=true"]),
                "foo /tmp/".into()
            )
        );
        assert_eq!(
            split_command("COPY --doit=true -- foo /tmp/", '\\'),
            ("COPY".into(), s(&["--doit=true"]), "foo /tmp/".into())
        );
        assert_eq!(
            split_command("CMD --doit -- [ ]", '\\'),
            ("CMD".into(), s(&["--doit"]), "[ ]".into())
        );
        assert_eq!(
            split_command(r#"RUN --a="x y" --b='' --c=\"q -d"#, '\\'),
            (
                "RUN".into(),
                s(&["--a=x y", "--b=", "--c=\"q"]),
                "-d".into()
            )
        );
        assert_eq!(
            split_command("RUN", '\\'),
            ("RUN".into(), vec![], String::new())
        );
        assert_eq!(
            split_command("  run\t--x  ", '\\'),
            ("run".into(), s(&["--x"]), String::new())
        );
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"abc="123 456" def"#, '\\'),
            s(&[r#"abc="123 456""#, "def"])
        );
        assert_eq!(parse_words(r"a\ b c", '\\'), s(&[r"a\ b", "c"]));
        assert_eq!(parse_words("x=''", '\\'), s(&["x=''"]));
        assert_eq!(parse_words("a\\", '\\'), s(&["a"]));
    }

    #[test]
    fn words_match_buildkit_parse_words_test() {
        let cases: &[(&str, &[&str])] = &[
            ("foo", &["foo"]),
            ("foo bar", &["foo", "bar"]),
            ("foo\\ bar", &["foo\\ bar"]),
            ("foo=bar", &["foo=bar"]),
            ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
            ("foo bar \"abc xyz\"", &["foo", "bar", "\"abc xyz\""]),
            ("àöû", &["àöû"]),
            ("föo bàr \"âbc xÿz\"", &["föo", "bàr", "\"âbc xÿz\""]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_words(input, '\\'), s(want), "{input}");
        }
    }

    #[test]
    fn env_forms() {
        assert_eq!(
            name_val("name value", "ENV", '\\').unwrap().args,
            s(&["name", "value", ""])
        );
        assert_eq!(
            name_val("a=1 b=\"x y\"", "ENV", '\\').unwrap().args,
            s(&["a", "1", "=", "b", "\"x y\"", "="])
        );
        assert_eq!(
            name_val("PATH", "ENV", '\\'),
            Err(ErrorKind::NameValueNeedsTwo {
                instruction: "ENV".into()
            })
        );
        assert_eq!(
            name_val("a=1 b", "LABEL", '\\'),
            Err(ErrorKind::NameValueMissingEquals { word: "b".into() })
        );
    }

    #[test]
    fn json_or_not() {
        assert_eq!(
            maybe_json(r#"["a","b"]"#).unwrap(),
            Parsed {
                args: s(&["a", "b"]),
                json: true
            }
        );
        assert_eq!(
            maybe_json("['a']").unwrap(),
            Parsed {
                args: s(&["['a']"]),
                json: false
            }
        );
        assert_eq!(
            maybe_json(r#"["a", ["b"]]"#),
            Err(ErrorKind::JsonNotStrings)
        );
        assert_eq!(
            maybe_json_list("a  b\tc").unwrap().args,
            s(&["a", "b", "c"])
        );
        assert_eq!(
            health_config("CMD [\"foo\"]").unwrap(),
            Parsed {
                args: s(&["CMD", "foo"]),
                json: true
            }
        );
        assert_eq!(health_config("NONE").unwrap().args, s(&["NONE"]));
    }
}
