//! The exec-form check: is an argument text a JSON array of strings?
//!
//! BuildKit hands the text to Go's `encoding/json`; the outcome decides
//! between exec form, shell form (any invalid JSON) and an error (a valid
//! array holding a non-string). This validator reproduces Go's decisions,
//! including its quirks: lone surrogates decode to U+FFFD, nesting deeper
//! than 10000 is invalid, and a number too large for an f64 makes the whole
//! text invalid (so it falls back to shell form). Iterative, so hostile
//! input cannot exhaust the stack.

/// What a candidate exec-form text turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonArray {
    /// Not a JSON array: use shell form.
    NotJson,
    /// A valid JSON array with a non-string element: an error.
    NotStrings,
    /// A JSON array of strings, decoded.
    Strings(Vec<String>),
}

/// Go's `encoding/json` maximum nesting depth.
const MAX_DEPTH: usize = 10_000;

/// Classifies `text` (leading Unicode whitespace is ignored, as BuildKit does).
pub fn parse_string_array(text: &str) -> JsonArray {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return JsonArray::NotJson;
    }
    let mut p = Cursor {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    match p.top_array() {
        Some(result) => result,
        None => JsonArray::NotJson,
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Frame {
    Array,
    Object,
}

impl Cursor<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `[` elements `]` then only whitespace. `None` = not valid JSON.
    fn top_array(&mut self) -> Option<JsonArray> {
        self.eat(b'[');
        self.ws();
        let mut strings = Vec::new();
        let mut all_strings = true;
        if !self.eat(b']') {
            loop {
                self.ws();
                if self.peek() == Some(b'"') {
                    let s = self.string()?;
                    strings.push(s);
                } else {
                    all_strings = false;
                    self.value()?;
                }
                self.ws();
                if self.eat(b',') {
                    continue;
                }
                if self.eat(b']') {
                    break;
                }
                return None;
            }
        }
        self.ws();
        if self.i != self.s.len() {
            return None;
        }
        Some(if all_strings {
            JsonArray::Strings(strings)
        } else {
            JsonArray::NotStrings
        })
    }

    /// Validates one value of any kind, with an explicit stack.
    fn value(&mut self) -> Option<()> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            // Expect a value here.
            self.ws();
            match self.peek()? {
                b'[' => {
                    self.i += 1;
                    self.ws();
                    if self.eat(b']') {
                        // empty array is a complete value
                    } else {
                        stack.push(Frame::Array);
                        if stack.len() + 1 > MAX_DEPTH {
                            return None;
                        }
                        continue;
                    }
                }
                b'{' => {
                    self.i += 1;
                    self.ws();
                    if self.eat(b'}') {
                        // empty object
                    } else {
                        stack.push(Frame::Object);
                        if stack.len() + 1 > MAX_DEPTH {
                            return None;
                        }
                        self.key()?;
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // A value is complete; close containers as needed.
            loop {
                let Some(top) = stack.last().copied() else {
                    return Some(());
                };
                self.ws();
                if self.eat(b',') {
                    if top == Frame::Object {
                        self.ws();
                        self.key()?;
                    }
                    break;
                }
                let close = if top == Frame::Array { b']' } else { b'}' };
                if self.eat(close) {
                    stack.pop();
                    continue;
                }
                return None;
            }
        }
    }

    fn key(&mut self) -> Option<()> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.string()?;
        self.ws();
        if !self.eat(b':') {
            return None;
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    fn number(&mut self) -> Option<()> {
        let start = self.i;
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return None,
        }
        if self.eat(b'.') {
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        // Go decodes numbers into float64 and fails the whole document when one overflows.
        let n: f64 = self.text[start..self.i].parse().ok()?;
        if n.is_infinite() {
            return None;
        }
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.text.get(self.i..self.i + 4)?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }

    /// A string starting at `"`, decoded as Go does.
    fn string(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.i..];
            let c = rest.chars().next()?;
            match c {
                '"' => {
                    self.i += 1;
                    return Some(out);
                }
                '\\' => {
                    self.i += 1;
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi) {
                                // A high surrogate pairs only with a following \uDC00-\uDFFF.
                                let save = self.i;
                                if self.s[self.i..].starts_with(b"\\u") {
                                    self.i += 2;
                                    if let Some(lo) = self.hex4() {
                                        if (0xDC00..0xE000).contains(&lo) {
                                            let cp =
                                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                            out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                                            continue;
                                        }
                                    }
                                }
                                self.i = save;
                                out.push('\u{FFFD}');
                            } else {
                                out.push(char::from_u32(hi).unwrap_or('\u{FFFD}'));
                            }
                        }
                        _ => return None,
                    }
                }
                c if (c as u32) < 0x20 => return None,
                c => {
                    out.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> JsonArray {
        JsonArray::Strings(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn arrays_of_strings_decode() {
        assert_eq!(parse_string_array(r#"["a", "b"]"#), strings(&["a", "b"]));
        assert_eq!(
            parse_string_array("\t[\t\"a\",\t\"b\"\t]\t".trim_end()),
            strings(&["a", "b"])
        );
        assert_eq!(parse_string_array("[]"), strings(&[]));
        assert_eq!(parse_string_array("[ ]"), strings(&[]));
        assert_eq!(
            parse_string_array(r#"["\" \\ \/ \b \f \n \r \t \u0000"]"#),
            strings(&["\" \\ / \u{8} \u{c} \n \r \t \u{0}"])
        );
        assert_eq!(
            parse_string_array(r#"["\ud83d\ude00", "\ud800x"]"#),
            strings(&["😀", "\u{FFFD}x"])
        );
    }

    #[test]
    fn invalid_json_is_shell_form() {
        for text in [
            "['a']",
            "[\"a\"",
            "[\"a\",]",
            "[\"a\"] x",
            "echo [\"a\"]",
            "[\"a\tb\"]",
            "[\"\\x\"]",
            "[1e400]",
            "[[1e999], \"a\"]",
            "[01]",
            "[\u{b}\"a\"]",
        ] {
            assert_eq!(parse_string_array(text), JsonArray::NotJson, "{text}");
        }
    }

    #[test]
    fn non_strings_are_an_error() {
        for text in [
            "[1]",
            r#"["a", ["b"]]"#,
            "[null]",
            r#"[{"a": [1, {}]}]"#,
            "[true, false]",
            "[-0.5e+3]",
        ] {
            assert_eq!(parse_string_array(text), JsonArray::NotStrings, "{text}");
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = format!("[{}{}]", "[".repeat(200_000), "]".repeat(200_000));
        assert_eq!(parse_string_array(&deep), JsonArray::NotJson);
        let ok = format!("[{}{}]", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse_string_array(&ok), JsonArray::NotStrings);
    }
}
