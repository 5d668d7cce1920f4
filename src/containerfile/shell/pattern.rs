//! Shell patterns in `${V#p}`, `${V%p}` and `${V/p/r}`: `*` (any run),
//! `?` (one character) and `\` escapes, without bracket expressions — as
//! BuildKit, which compiles them to a regular expression. Matching uses the
//! same leftmost-first semantics as Go's `regexp`, so the shortest (`#`, `%`)
//! and longest (`##`, `%%`) matches come out the same.

use regex::{Regex, RegexBuilder};

use super::chars::{is_digit, is_letter};

/// The most `*` and `?` one pattern may hold. Matching costs pattern size
/// times value size, so a hostile 64 KiB pattern of stars would take minutes
/// (in BuildKit too); real patterns use a handful.
pub const MAX_WILDCARDS: usize = 128;

/// Compiles `pattern`; `greedy` makes `*` match the longest run, `anchored`
/// matches at the start only. The error says why the pattern is invalid.
pub(super) fn to_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let wildcards = pattern.chars().filter(|c| matches!(c, '*' | '?')).count();
    if wildcards > MAX_WILDCARDS {
        return Err(format!(
            "the pattern has {wildcards} wildcards ('*' and '?'); at most {MAX_WILDCARDS} are allowed"
        ));
    }
    let mut chars = pattern.chars().peekable();
    while let Some(tok) = chars.next() {
        match tok {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => {
                // `\}` and `\/` keep `}` and `/` from ending the `${…}`; the
                // backslash is not part of the pattern.
                if matches!(chars.peek(), Some('}') | Some('/')) {
                    continue;
                }
                match chars.next() {
                    Some(esc @ ('*' | '?' | '\\')) => {
                        out.push_str(&regex::escape(&esc.to_string()))
                    }
                    Some(other) => return Err(format!("invalid escape '\\{other}'")),
                    None => return Err("invalid escape '\\' at the end of the pattern".to_string()),
                }
            }
            literal => {
                let mut buf = [0u8; 4];
                out.push_str(&regex::escape(literal.encode_utf8(&mut buf)));
            }
        }
    }
    RegexBuilder::new(&out)
        .size_limit(64 << 20)
        .build()
        .map_err(|err| err.to_string())
}

/// `${V#p}` / `${V##p}`: `value` without its shortest / longest prefix matching `pattern`.
pub(super) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let re = to_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// `${V%p}` / `${V%%p}`: a regex finds leftmost matches only, so the shortest
/// rightmost match is the shortest leftmost one of the reversed pattern in the
/// reversed value.
pub(super) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let reversed = trim_prefix(&reverse_pattern(pattern), &reverse(value), greedy)?;
    Ok(reverse(&reversed))
}

fn reverse(s: &str) -> String {
    s.chars().rev().collect()
}

/// Reverses `pattern` character by character but keeps each `\x` pair in order.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec!['\0'; chars.len()];
    let last = chars.len().saturating_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let out_idx = last - i;
        if chars[i] == '\\' && i != last {
            out[out_idx - 1] = '\\';
            out[out_idx] = chars[i + 1];
            i += 2;
        } else {
            out[out_idx] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// `${V/p/r}`: the first match replaced by `replacement`, taken literally.
pub(super) fn replace_first(re: &Regex, value: &str, replacement: &str) -> String {
    match re.find(value) {
        Some(m) => format!(
            "{}{}{}",
            &value[..m.start()],
            replacement,
            &value[m.end()..]
        ),
        None => value.to_string(),
    }
}

/// `${V//p/r}`: every match replaced, as Go's `ReplaceAllString` does it: an
/// empty match right after a match is not replaced, and `replacement` is a
/// template where `$0` / `${0}` is the match, `$$` a dollar, and any other
/// group reference (there are no groups) empty.
pub(super) fn replace_all(re: &Regex, value: &str, replacement: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= value.len() {
        let Some(m) = re.find_at(value, search) else {
            break;
        };
        out.push_str(&value[last_end..m.start()]);
        if m.end() > last_end || m.start() == 0 {
            expand_template(&mut out, replacement, m.as_str());
        }
        last_end = m.end();
        let width = value[search..].chars().next().map_or(0, char::len_utf8);
        if search + width > m.end() {
            search += width;
        } else if search + 1 > m.end() {
            search += 1;
        } else {
            search = m.end();
        }
    }
    out.push_str(&value[last_end..]);
    out
}

/// Go's `Regexp.Expand` for a regex whose only group is the whole match.
fn expand_template(out: &mut String, template: &str, whole: &str) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match group_reference(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(whole);
                }
                rest = after;
            }
            // Malformed: the dollar is literal text.
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// `name` or `{name}` at the start of `s` (name: letters, digits, `_`), and what follows.
fn group_reference(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|&c| is_letter(c) || is_digit(c) || c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let after = &body[len..];
    if braced {
        return after.strip_prefix('}').map(|after| (name, after));
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_like_buildkit() {
        assert_eq!(to_regex("*", true, true).unwrap().as_str(), "^.*");
        assert_eq!(to_regex("?", true, true).unwrap().as_str(), "^.");
        assert_eq!(to_regex("\\*", true, true).unwrap().as_str(), "^\\*");
        let special = to_regex("(()[]{\\}^$.\\*\\?|\\\\", true, true).unwrap();
        assert!(special.is_match("(()[]{}^$.*?|\\"));
        assert_eq!(to_regex("*", false, false).unwrap().as_str(), ".*?");
    }

    #[test]
    fn rejects_bad_escapes() {
        for bad in ["\\", "\\x", "\\\\\\"] {
            let err = to_regex(bad, true, true).unwrap_err();
            assert!(err.starts_with("invalid escape"), "{bad}: {err}");
        }
    }

    #[test]
    fn limits_wildcards() {
        assert!(to_regex(&"*a".repeat(MAX_WILDCARDS), true, false).is_ok());
        let err = to_regex(&"?".repeat(MAX_WILDCARDS + 1), true, false).unwrap_err();
        assert_eq!(
            err,
            "the pattern has 129 wildcards ('*' and '?'); at most 128 are allowed"
        );
    }

    #[test]
    fn reverses_keeping_escape_pairs() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
        assert_eq!(reverse_pattern(""), "");
        assert_eq!(reverse("🖖🚀👽"), "👽🚀🖖");
    }

    #[test]
    fn trims_shortest_and_longest() {
        assert_eq!(trim_prefix("*x", "axbxc", false).unwrap(), "bxc");
        assert_eq!(trim_prefix("*x", "axbxc", true).unwrap(), "c");
        assert_eq!(trim_suffix("x*", "axbxc", false).unwrap(), "axb");
        assert_eq!(trim_suffix("x*", "axbxc", true).unwrap(), "a");
        assert_eq!(trim_suffix("nomatch", "value", true).unwrap(), "value");
    }

    #[test]
    fn replace_all_follows_go() {
        let star = to_regex("*", true, false).unwrap();
        // The empty match at the end abuts the first match: one replacement.
        assert_eq!(replace_all(&star, "abc", "x"), "x");
        let empty = to_regex("", true, false).unwrap();
        assert_eq!(replace_all(&empty, "ab", "-"), "-a-b-");
        let a = to_regex("a", true, false).unwrap();
        assert_eq!(replace_all(&a, "banana", "[$0]"), "b[a]n[a]n[a]");
        assert_eq!(replace_all(&a, "aa", "${0}$$$1$x${"), "a$${a$${");
        assert_eq!(replace_first(&a, "banana", "$0"), "b$0nana");
    }
}
