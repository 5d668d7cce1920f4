//! Heredoc detection: which words of an instruction line open a heredoc
//! (`<<EOF`, `<<-EOF`, `<<'EOF'`, `3<<EOF`), with its name, whether the body
//! is expanded later, and whether leading tabs are chomped.
//!
//! BuildKit finds heredoc words by running its shell lexer over the line in
//! a raw mode (quotes and escapes kept, variables never expanded because the
//! environment is empty and unset names are kept verbatim). This file holds
//! just that raw scan, not the word lexer of `shell/`: it expands nothing,
//! it only has to split the line into the same words BuildKit sees,
//! including its quirks (a `${x:-y}` modifier drops what came before it in
//! the same word, `<<` followed by blanks joins the next word).

use serde::Serialize;

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The terminator word, quotes removed (`<<'EOF'` → `EOF`).
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF` → 3), 0 when absent.
    pub fd: u32,
    /// Whether variables in the body are expanded (false when the name was quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are removed from every body line.
    pub chomp: bool,
    /// The body lines, exactly as in the file, newlines included.
    pub content: String,
}

impl Heredoc {
    /// The body as the build uses it: leading tabs removed from every line
    /// when the heredoc was opened with `<<-`.
    pub fn body(&self) -> String {
        if self.chomp {
            chomp_tabs(&self.content)
        } else {
            self.content.clone()
        }
    }
}

/// Removes leading tabs from every line (BuildKit's `ChompHeredocContent`).
pub fn chomp_tabs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

/// A heredoc word could not be lexed; BuildKit fails the whole file for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeredocWordError {
    /// The word after `<<`.
    pub word: String,
    /// Why it failed.
    pub reason: String,
}

/// The heredocs opened on `line`, in order, bodies empty.
pub fn heredocs_in_line(line: &str) -> Result<Vec<Heredoc>, HeredocWordError> {
    let words = RawLexer::new(line, true, true).words().unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc_word(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Reads one word as a heredoc marker (BuildKit's `ParseHeredoc`): `None`
/// when the word is not one.
pub fn parse_heredoc_word(word: &str) -> Result<Option<Heredoc>, HeredocWordError> {
    // ^(\d*)<<(-?)\s*([^<]*)$
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches([' ', '\t', '\n', '\x0c', '\r']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = word[..digits].parse::<u32>().unwrap_or(0);
    let fail = |reason: String| HeredocWordError {
        word: rest.to_string(),
        reason,
    };
    let words = RawLexer::new(rest, false, false).words().map_err(fail)?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = RawLexer::new(rest, true, false).words().map_err(fail)?;
    if raw.len() != words.len() {
        return Err(fail(
            "the word splits differently with and without quotes".into(),
        ));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = quotes(&words[0]) == quotes(&raw[0]);
    Ok(Some(Heredoc {
        name: words[0].clone(),
        fd,
        expand,
        chomp,
        content: String::new(),
    }))
}

/// BuildKit's shell lexer in the mode heredoc detection uses: escape `\`,
/// empty environment, unset variables kept verbatim.
struct RawLexer {
    chars: Vec<char>,
    pos: usize,
    raw_quotes: bool,
    raw_escapes: bool,
    /// Shared by nested scans, as in BuildKit (hence the prefix-dropping quirk).
    word_buf: String,
    /// Nesting of `${...}` scans; capped so hostile input cannot exhaust the stack.
    depth: usize,
}

/// Deeper `${` nesting than this is refused (BuildKit has no limit, but no
/// real heredoc word comes near it).
const MAX_NESTING: usize = 200;

struct Words {
    words: Vec<String>,
    in_word: bool,
}

const ESCAPE: char = '\\';

impl RawLexer {
    fn new(text: &str, raw_quotes: bool, raw_escapes: bool) -> Self {
        RawLexer {
            chars: text.chars().collect(),
            pos: 0,
            raw_quotes,
            raw_escapes,
            word_buf: String::new(),
            depth: 0,
        }
    }

    fn words(mut self) -> Result<Vec<String>, String> {
        let raw = self.raw_escapes;
        self.stop_on(None, raw).map(|(_, w)| w)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn add_char(&mut self, w: &mut Words, c: char) {
        if c.is_whitespace() {
            if w.in_word && !self.word_buf.is_empty() {
                w.words.push(std::mem::take(&mut self.word_buf));
                w.in_word = false;
            }
        } else {
            self.add_raw_char(w, c);
        }
    }

    fn add_raw_char(&mut self, w: &mut Words, c: char) {
        self.word_buf.push(c);
        w.in_word = true;
    }

    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "more than {MAX_NESTING} nested ${{...}} expressions"
            ));
        }
        self.depth += 1;
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        self.word_buf.clear();
        let mut w = Words {
            words: Vec::new(),
            in_word: false,
        };
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                let words = self.finish(w);
                return Ok((result, words));
            }
            match ch {
                '$' | '<' | '\'' | '"' => {
                    let tmp = match ch {
                        '$' => self.dollar()?,
                        '<' => self.possible_heredoc(),
                        '\'' => self.single_quote()?,
                        _ => self.double_quote()?,
                    };
                    result.push_str(&tmp);
                    if ch == '$' {
                        for c in tmp.chars() {
                            self.add_char(&mut w, c);
                        }
                    } else {
                        self.word_buf.push_str(&tmp);
                        w.in_word = true;
                    }
                }
                _ => {
                    self.pos += 1;
                    let mut ch = ch;
                    if ch == ESCAPE {
                        if self.raw_escapes {
                            self.add_raw_char(&mut w, ch);
                            result.push(ch);
                        }
                        match self.next() {
                            Some(c) => ch = c,
                            None => break,
                        }
                        self.add_raw_char(&mut w, ch);
                    } else {
                        self.add_char(&mut w, ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        let words = self.finish(w);
        Ok((result, words))
    }

    fn finish(&mut self, mut w: Words) -> Vec<String> {
        if !self.word_buf.is_empty() {
            w.words.push(std::mem::take(&mut self.word_buf));
        }
        w.words
    }

    fn single_quote(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let q = self.next().unwrap_or('\'');
        if self.raw_quotes {
            out.push(q);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let q = self.next().unwrap_or('"');
        if self.raw_quotes {
            out.push(q);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.pos += 1;
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(mut c) => {
                    self.pos += 1;
                    if c == ESCAPE {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n @ ('"' | '$' | ESCAPE)) => {
                                self.pos += 1;
                                c = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                name.push(c);
                return name;
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            self.pos += 1;
            name.push(c);
        }
        name
    }

    /// `$name` / `${...}` with every variable unset: the text comes back as written.
    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            return Ok(format!("${name}"));
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.name();
        let ch = self.next();
        let mut chs = ch.map(String::from).unwrap_or_else(|| "\u{FFFD}".into());
        match ch {
            Some('}') => Ok(format!("${{{name}}}")),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut op = ch;
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    op = self.next();
                    chs.push_str(&op.map(String::from).unwrap_or_else(|| "\u{FFFD}".into()));
                }
                let raw = matches!(op, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let (word, _) = self.stop_on(Some('}'), raw).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '}'".to_string()
                    } else {
                        e
                    }
                })?;
                Ok(format!("${{{name}{chs}{word}}}"))
            }
            Some('/') => {
                if self.peek() == Some('/') {
                    self.pos += 1;
                }
                let (pattern, _) = self.stop_on(Some('/'), true).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '/' in ${}".to_string()
                    } else {
                        e
                    }
                })?;
                let (replacement, _) = self.stop_on(Some('}'), true).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '}'".to_string()
                    } else {
                        e
                    }
                })?;
                Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn possible_heredoc(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.pos += 1;
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.pos += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, expand: bool, chomp: bool, fd: u32) -> Heredoc {
        Heredoc {
            name: name.into(),
            fd,
            expand,
            chomp,
            content: String::new(),
        }
    }

    #[test]
    fn finds_heredoc_words() {
        assert_eq!(
            heredocs_in_line("RUN <<EOF").unwrap(),
            vec![doc("EOF", true, false, 0)]
        );
        assert_eq!(
            heredocs_in_line("RUN 3<<EMPTY2").unwrap(),
            vec![doc("EMPTY2", true, false, 3)]
        );
        assert_eq!(
            heredocs_in_line("RUN <<-'NOEXPAND'").unwrap(),
            vec![doc("NOEXPAND", false, true, 0)]
        );
        assert_eq!(
            heredocs_in_line("COPY <<FILE1 <<FILE2 /dest").unwrap(),
            vec![doc("FILE1", true, false, 0), doc("FILE2", true, false, 0)]
        );
        assert_eq!(
            heredocs_in_line("RUN <<eo'f'").unwrap(),
            vec![doc("eof", false, false, 0)]
        );
        assert_eq!(
            heredocs_in_line(r"RUN <<eo\'f").unwrap(),
            vec![doc("eo'f", true, false, 0)]
        );
        assert_eq!(
            heredocs_in_line(r"RUN <<'e'o\'f").unwrap(),
            vec![doc("eo'f", false, false, 0)]
        );
        assert_eq!(
            heredocs_in_line("RUN <<'one two'").unwrap(),
            vec![doc("one two", false, false, 0)]
        );
        assert_eq!(
            heredocs_in_line("RUN <<$EOF").unwrap(),
            vec![doc("$EOF", true, false, 0)]
        );
        assert_eq!(
            heredocs_in_line("RUN <<  EOF  > foo").unwrap(),
            vec![doc("EOF", true, false, 0)]
        );
        assert_eq!(
            heredocs_in_line("RUN <<COMPLEX python3").unwrap(),
            vec![doc("COMPLEX", true, false, 0)]
        );
    }

    #[test]
    fn not_heredocs() {
        assert!(heredocs_in_line("RUN \"<<NOHEREDOC\"").unwrap().is_empty());
        assert!(heredocs_in_line("RUN echo a<<b").unwrap().is_empty());
        assert!(heredocs_in_line("RUN <<").unwrap().is_empty());
        assert!(heredocs_in_line("RUN cat <<<word").unwrap().is_empty());
        // An unterminated quote anywhere hides every heredoc, as in BuildKit.
        assert!(heredocs_in_line("RUN <<EOF 'x").unwrap().is_empty());
    }

    #[test]
    fn chomp_removes_leading_tabs_per_line() {
        assert_eq!(chomp_tabs("\tbaz\n\t\tquux\n  x\n"), "baz\nquux\n  x\n");
        let d = Heredoc {
            chomp: true,
            content: "\ta\n".into(),
            ..doc("E", true, true, 0)
        };
        assert_eq!(d.body(), "a\n");
    }

    #[test]
    fn dollar_forms_are_kept_verbatim() {
        let words = RawLexer::new("a ${x:-y z} $1 ${a/b/c}", true, true)
            .words()
            .unwrap();
        assert_eq!(words, vec!["a", "${x:-y", "z}", "$1", "${a/b/c}"]);
        assert!(RawLexer::new("${", true, true).words().is_err());
        assert!(RawLexer::new("${}", true, true).words().is_err());
        assert!(RawLexer::new("${a:#b}", true, true).words().is_err());
        let deep = format!("{}x{}", "${a:-".repeat(100_000), "}".repeat(100_000));
        assert!(RawLexer::new(&deep, true, true).words().is_err());
        let ok = format!("{}x{}", "${a:-".repeat(50), "}".repeat(50));
        assert!(RawLexer::new(&ok, true, true).words().is_ok());
    }
}
