//! The text being parsed, split into physical lines once, so errors can
//! quote the line they point at and find the column of a word.

use std::sync::Arc;

use super::error::{ErrorKind, ParseError};
use super::span::Span;

/// BuildKit's scanner refuses lines of this many bytes or more.
pub(crate) const MAX_LINE: usize = 65536;

/// Physical lines of a file, newlines kept, BOM removed from the first.
pub(crate) struct Source<'a> {
    pub file: Arc<str>,
    pub lines: Vec<&'a str>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str, file: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Source {
            file: Arc::from(file),
            lines: text.split_inclusive('\n').collect(),
        }
    }

    /// Line `n` (1-based) without its line ending, or "" past the end.
    pub fn line_text(&self, n: usize) -> &'a str {
        n.checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .map(|l| l.trim_end_matches(['\r', '\n']))
            .unwrap_or("")
    }

    /// An error at `line:column`, quoting that line.
    pub fn error(&self, kind: ErrorKind, line: usize, column: usize) -> ParseError {
        let text = self.line_text(line);
        let shown = if line >= 1 && line <= self.lines.len() {
            Some(text.to_string())
        } else {
            None
        };
        ParseError::new(kind, self.file.clone(), line.max(1), column.max(1), shown)
    }

    /// An error pointing at the first occurrence of `needle` within the
    /// span's lines, else at the start of the span.
    pub fn error_near(&self, kind: ErrorKind, span: &Span, needle: &str) -> ParseError {
        if !needle.is_empty() {
            for line in span.start.line..=span.end.line {
                let text = self.line_text(line);
                let from = if line == span.start.line {
                    byte_of_column(text, span.start.column)
                } else {
                    0
                };
                if let Some(i) = text.get(from..).and_then(|t| t.find(needle)) {
                    let column = text[..from + i].chars().count() + 1;
                    return self.error(kind, line, column);
                }
            }
        }
        self.error(kind, span.start.line, span.start.column)
    }
}

fn byte_of_column(text: &str, column: usize) -> usize {
    text.char_indices()
        .nth(column.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerfile::span::Position;

    #[test]
    fn finds_the_column_of_a_word() {
        let src = Source::new("\u{feff}FROM a\n  COPY --bad \\\n   x y\n", "F");
        let span = Span {
            file: src.file.clone(),
            start: Position::new(2, 3),
            end: Position::new(3, 7),
        };
        let e = src.error_near(ErrorKind::EmptyVolume, &span, "--bad");
        assert_eq!((e.line(), e.column()), (2, 8));
        let e = src.error_near(ErrorKind::EmptyVolume, &span, "y");
        assert_eq!((e.line(), e.column()), (3, 6));
        let e = src.error_near(ErrorKind::EmptyVolume, &span, "zzz");
        assert_eq!((e.line(), e.column()), (2, 3));
        assert_eq!(src.line_text(1), "FROM a");
    }
}
