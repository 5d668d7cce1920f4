//! BuildKit's AST dump (`parser/dumper`, the `result` files of its parser
//! tests): one `(keyword ["flags"] "arg" ...)` line per instruction, strings
//! quoted like Go's `strconv.Quote`.

use std::fmt::Write;
use std::sync::OnceLock;

use regex::Regex;

use super::ast::{Ast, Node};

/// The whole dump, ending in exactly one newline.
pub fn dump(ast: &Ast) -> String {
    let mut out = String::new();
    for (i, node) in ast.nodes.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push('(');
        dump_node(node, &mut out);
        out.push(')');
    }
    let mut out = out.trim().to_string();
    out.push('\n');
    out
}

fn dump_node(node: &Node, out: &mut String) {
    let mut s = go_to_lower(&node.keyword);
    if !node.flags.is_empty() {
        s.push_str(" [");
        for (i, flag) in node.flags.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&go_quote(&latin1_bytes(flag)));
        }
        s.push(']');
    }
    for arg in &node.args {
        s.push(' ');
        s.push_str(&go_quote(arg));
    }
    if let Some(trigger) = &node.trigger {
        s.push_str(" (");
        dump_node(trigger, &mut s);
        s.push(')');
    }
    out.push_str(s.trim());
}

/// BuildKit reads flag text byte by byte and writes each byte back as a
/// code point, so a non-ASCII flag dumps as its Latin-1 reading.
fn latin1_bytes(s: &str) -> String {
    s.bytes().map(char::from).collect()
}

/// Go's `strings.ToLower`: one code point to one code point.
fn go_to_lower(s: &str) -> String {
    s.chars()
        // Only U+0130 lowers to two code points; Go's simple mapping is the first.
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

fn printable() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$").expect("static regex"))
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut buf = [0u8; 4];
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if printable().is_match(c.encode_utf8(&mut buf)) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("\t\n\r\u{7}\u{8}\u{c}\u{b}"),
            r#""\t\n\r\a\b\f\v""#
        );
        assert_eq!(go_quote("\u{0}\u{1f}\u{7f}"), r#""\x00\x1f\x7f""#);
        assert_eq!(go_quote("♥☃ü"), "\"♥☃ü\"");
        assert_eq!(
            go_quote("\u{a0}\u{85}\u{2028}\u{ad}"),
            r#""\u00a0\u0085\u2028\u00ad""#
        );
        assert_eq!(go_quote("\u{e0001}"), r#""\U000e0001""#);
        assert_eq!(go_quote("😀"), "\"😀\"");
    }

    #[test]
    fn flags_dump_as_latin1() {
        assert_eq!(go_quote(&latin1_bytes("--x=ü")), "\"--x=Ã¼\"");
    }

    #[test]
    fn lowercases_one_to_one() {
        assert_eq!(go_to_lower("FROM"), "from");
        assert_eq!(go_to_lower("İX"), "ix");
    }
}
