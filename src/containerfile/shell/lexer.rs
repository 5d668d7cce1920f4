//! The lexer proper: one pass over a word that removes quotes, applies
//! escapes, expands variables and (for [`Lexer::process_words`]) splits
//! on unquoted white space, with BuildKit's rules:
//!
//! - `'…'` keeps everything literally; `"…"` expands `$` and lets the escape
//!   character escape only `"`, `$` and itself; outside quotes the escape
//!   character makes the next character literal and is dropped at the end.
//! - `$NAME`, `${NAME}`, positional (`$1`, `$001`) and special (`$@ $* $# $?
//!   $- $$ $! $0`) parameters, which a Containerfile never sets.
//! - `${V:-w} ${V-w} ${V:+w} ${V+w} ${V:?m} ${V?m} ${V#p} ${V##p} ${V%p}
//!   ${V%%p} ${V/p/r} ${V//p/r}`; words nest, patterns keep their escapes.
//! - Splitting: text from unquoted `$` expansions splits on white space,
//!   quoted text and escaped characters never do.
//!
//! One deliberate difference: BuildKit shares one word buffer between nested
//! `${…}` words and the outer word, so `ProcessWords("a${X:-b}")` loses the
//! `a`; here every level has its own buffer (`["ab"]`). Two limits guard
//! against hostile input: `${…}` nests at most [`MAX_NESTING`] deep and a
//! pattern holds at most [`MAX_WILDCARDS`](super::MAX_WILDCARDS) wildcards.

use std::collections::BTreeSet;

use super::chars::{is_digit, is_letter, is_space};
use super::env::Env;
use super::error::{LexError, LexErrorKind};
use super::pattern;

/// How deeply `${…}` words may nest; deeper input is an error rather than
/// a stack overflow.
pub const MAX_NESTING: usize = 256;

/// A configured lexer. Cheap to build and copy; every call is independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset_env: bool,
}

/// The result of an expansion plus which variables it looked up: `matched`
/// were set, `unmatched` were not (the build warns about unset build args).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The single expanded word (quotes removed, no splitting).
    pub result: String,
    /// The same text split into words as [`Lexer::process_words`] does.
    pub words: Vec<String>,
    pub matched: BTreeSet<String>,
    pub unmatched: BTreeSet<String>,
}

impl Default for Lexer {
    /// The lexer for a Containerfile without an `# escape=` directive.
    fn default() -> Lexer {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer with `escape` (`\` or `` ` ``, from the `# escape=` directive)
    /// and the default options.
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Keep quote characters in the output (still honouring their meaning).
    pub fn raw_quotes(mut self, on: bool) -> Lexer {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (still honouring their meaning).
    pub fn raw_escapes(mut self, on: bool) -> Lexer {
        self.raw_escapes = on;
        self
    }

    /// Treat quotes as ordinary characters (heredoc bodies of COPY/ADD).
    pub fn skip_process_quotes(mut self, on: bool) -> Lexer {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written instead of expanding
    /// them to nothing.
    pub fn skip_unset_env(mut self, on: bool) -> Lexer {
        self.skip_unset_env = on;
        self
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` into one string: quotes removed, variables expanded,
    /// white space kept.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, LexError> {
        self.process(word, env, false).map(|e| e.result)
    }

    /// Expands `word` and splits it into words on unquoted white space.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, LexError> {
        self.process(word, env, true).map(|e| e.words)
    }

    /// [`Lexer::process_word`] that also reports which variables were used
    /// (BuildKit's `ProcessWordWithMatches`); `words` is filled too.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<Expansion, LexError> {
        self.process(word, env, true)
    }

    fn process(&self, word: &str, env: &dyn Env, split: bool) -> Result<Expansion, LexError> {
        // Go's text/scanner drops a byte-order mark at the very start.
        let source = word.strip_prefix('\u{feff}').unwrap_or(word);
        let mut scan = Scan {
            lexer: self,
            chars: source.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        match scan.stop_on(None, self.raw_escapes, split) {
            Ok((result, words)) => Ok(Expansion {
                result,
                words,
                matched: scan.matched,
                unmatched: scan.unmatched,
            }),
            Err((offset, kind)) => Err(LexError {
                word: word.to_string(),
                offset,
                kind,
            }),
        }
    }
}

type Failure = (usize, LexErrorKind);

/// Builds the split words: unquoted white space ends a word, `raw` text
/// never does.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if is_space(ch) {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|ch| self.add_char(ch));
    }

    fn add_raw_str(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

struct Scan<'a> {
    lexer: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    raw_escapes: bool,
    depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn fail<T>(&self, kind: LexErrorKind) -> Result<T, Failure> {
        Err((self.pos, kind))
    }

    /// Processes up to the end of input or `stop` (consumed), returning the
    /// expanded text and, when `split`, its words.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
        split: bool,
    ) -> Result<(String, Vec<String>), Failure> {
        if self.depth >= MAX_NESTING {
            return self.fail(LexErrorKind::TooDeep { limit: MAX_NESTING });
        }
        self.depth += 1;
        let saved_raw_escapes = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let outcome = self.stop_on_inner(stop, split);
        self.raw_escapes = saved_raw_escapes;
        self.depth -= 1;
        outcome
    }

    fn stop_on_inner(
        &mut self,
        stop: Option<char>,
        split: bool,
    ) -> Result<(String, Vec<String>), Failure> {
        let mut result = String::new();
        let mut words = Words::default();
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, if split { words.finish() } else { Vec::new() }));
            }
            let special = match ch {
                '$' => Some(self.dollar()?),
                '<' => Some(self.possible_heredoc()),
                '\'' if quotes => Some(self.single_quote()?),
                '"' if quotes => Some(self.double_quote()?),
                _ => None,
            };
            if let Some(text) = special {
                result.push_str(&text);
                if split {
                    if ch == '$' {
                        words.add_str(&text);
                    } else {
                        words.add_raw_str(&text);
                    }
                }
                continue;
            }
            self.pos += 1;
            if ch == self.lexer.escape {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                // An escape at the very end escapes nothing and disappears.
                let Some(escaped) = self.next() else {
                    break;
                };
                words.add_raw_char(escaped);
                result.push(escaped);
            } else {
                words.add_char(ch);
                result.push(ch);
            }
        }
        if let Some(stop) = stop {
            return self.fail(LexErrorKind::UnexpectedEnd(stop));
        }
        Ok((result, if split { words.finish() } else { Vec::new() }))
    }

    fn single_quote(&mut self) -> Result<String, Failure> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return self.fail(LexErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, Failure> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return self.fail(LexErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // Dropped; the missing quote is reported next round.
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                self.pos += 1;
                                ch = next;
                            }
                            // Any other escape stays literal.
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// `<<` plus following blanks stay together in one word, so the parser
    /// can find heredoc markers such as `<< EOF`.
    fn possible_heredoc(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.pos += 1;
        let mut result = "<<".to_string();
        while let Some(ch @ ('\t' | '\r' | ' ')) = self.peek() {
            result.push(ch);
            self.pos += 1;
        }
        result
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(value) => {
                if !self.matched.contains(name) {
                    self.matched.insert(name.to_string());
                }
                Some(value.to_string())
            }
            None => {
                if !self.unmatched.contains(name) {
                    self.unmatched.insert(name.to_string());
                }
                None
            }
        }
    }

    /// A name: letters, digits and `_`; or all leading digits (positional);
    /// or one special-parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(digit) = self.peek().filter(|&c| is_digit(c)) {
                    name.push(digit);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.pos += 1;
            name.push(ch);
        }
        name
    }

    /// Expands the `$…` at the current position.
    fn dollar(&mut self) -> Result<String, Failure> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => {
                return self.fail(LexErrorKind::MissingBrace {
                    name: String::new(),
                })
            }
            Some(found @ ('{' | '}' | ':')) => {
                return self.fail(LexErrorKind::BadSubstitution { found })
            }
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            None => self.fail(LexErrorKind::MissingBrace { name }),
            Some('}') => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => match self.next() {
                None => self.fail(LexErrorKind::MissingBrace { name }),
                Some(op) => self.modifier(name, op, true),
            },
            Some(op @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(name, op, false),
            Some('/') => self.substitute(name),
            Some(op) => self.fail(LexErrorKind::UnsupportedModifier {
                name,
                modifier: op.to_string(),
            }),
        }
    }

    /// `${name[:]op word}` after `op`; `colon` makes an empty value count as unset.
    fn modifier(&mut self, name: String, op: char, colon: bool) -> Result<String, Failure> {
        let modifier = if colon {
            format!(":{op}")
        } else {
            op.to_string()
        };
        let pattern_op = op == '#' || op == '%';
        if colon && pattern_op {
            return self.fail(LexErrorKind::UnsupportedModifier { name, modifier });
        }
        let missing_brace = LexErrorKind::MissingBrace { name: name.clone() };
        let word = self.nested('}', pattern_op, missing_brace)?;
        let value = self.lookup(&name);
        if self.lexer.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let unset = value.is_none() || (colon && value.as_deref() == Some(""));
        match op {
            '-' => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' => {
                let message = (!word.is_empty()).then_some(word);
                match value {
                    None => self.fail(LexErrorKind::Unset { name, message }),
                    Some(v) if colon && v.is_empty() => {
                        self.fail(LexErrorKind::Empty { name, message })
                    }
                    Some(v) => Ok(v),
                }
            }
            '#' | '%' => {
                let (greedy, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let value = value.unwrap_or_default();
                let trimmed = if op == '%' {
                    pattern::trim_suffix(pattern, &value, greedy)
                } else {
                    pattern::trim_prefix(pattern, &value, greedy)
                };
                trimmed.or_else(|reason| {
                    self.fail(LexErrorKind::InvalidPattern {
                        name,
                        pattern: pattern.to_string(),
                        reason,
                    })
                })
            }
            _ => self.fail(LexErrorKind::UnsupportedModifier { name, modifier }),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}` after the first `/`.
    fn substitute(&mut self, name: String) -> Result<String, Failure> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let missing_slash = LexErrorKind::MissingSlash { name: name.clone() };
        let pattern = self.nested('/', true, missing_slash)?;
        let missing_brace = LexErrorKind::MissingBrace { name: name.clone() };
        let replacement = self.nested('}', true, missing_brace)?;
        let value = self.lookup(&name);
        if self.lexer.skip_unset_env && value.is_none() {
            let slashes = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{slashes}{pattern}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        let re = match pattern::to_regex(&pattern, true, false) {
            Ok(re) => re,
            Err(reason) => {
                return self.fail(LexErrorKind::InvalidPattern {
                    name,
                    pattern,
                    reason,
                })
            }
        };
        Ok(if all {
            pattern::replace_all(&re, &value, &replacement)
        } else {
            pattern::replace_first(&re, &value, &replacement)
        })
    }

    /// A nested word up to `stop`; running out of input inside it (whatever
    /// the inner error) is reported as `at_end`, since the `${` was never closed.
    fn nested(
        &mut self,
        stop: char,
        raw_escapes: bool,
        at_end: LexErrorKind,
    ) -> Result<String, Failure> {
        match self.stop_on(Some(stop), raw_escapes, false) {
            Ok((word, _)) => Ok(word),
            Err(err @ (_, LexErrorKind::TooDeep { .. })) => Err(err),
            Err(_) if self.at_end() => self.fail(at_end),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
#[path = "lexer_tests.rs"]
mod tests;
