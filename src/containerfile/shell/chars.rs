//! Character classes as Go's `unicode` package defines them, which decide
//! where a variable name ends: a letter is general category L, a digit is
//! Nd, a space is the White_Space property. Rust's `is_alphabetic` and
//! `is_numeric` are wider, so the categories come from `regex`'s tables.

use std::sync::OnceLock;

use regex::Regex;

fn class(cell: &'static OnceLock<Regex>, pattern: &str, ch: char) -> bool {
    let re = cell.get_or_init(|| Regex::new(pattern).expect("a fixed, valid class regex"));
    let mut buf = [0u8; 4];
    re.is_match(ch.encode_utf8(&mut buf))
}

/// Go's `unicode.IsLetter`: general category L.
pub(super) fn is_letter(ch: char) -> bool {
    static LETTER: OnceLock<Regex> = OnceLock::new();
    if ch.is_ascii() {
        return ch.is_ascii_alphabetic();
    }
    class(&LETTER, r"^\p{L}$", ch)
}

/// Go's `unicode.IsDigit`: general category Nd.
pub(super) fn is_digit(ch: char) -> bool {
    static DIGIT: OnceLock<Regex> = OnceLock::new();
    if ch.is_ascii() {
        return ch.is_ascii_digit();
    }
    class(&DIGIT, r"^\p{Nd}$", ch)
}

/// Go's `unicode.IsSpace`, which is Rust's `char::is_whitespace`.
pub(super) fn is_space(ch: char) -> bool {
    ch.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_go_unicode() {
        assert!(is_letter('a') && is_letter('Z') && is_letter('한') && is_letter('é'));
        assert!(!is_letter('_') && !is_letter('1') && !is_letter('Ⅻ'));
        assert!(is_digit('7') && is_digit('٣'));
        // Superscript two is category No: numeric for Rust, not a digit for Go.
        assert!(!is_digit('²') && '²'.is_numeric());
        assert!(is_space(' ') && is_space('\u{85}') && is_space('\u{a0}') && !is_space('x'));
    }
}
