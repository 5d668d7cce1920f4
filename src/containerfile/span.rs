//! Source locations: which file, which line and column an AST node or an
//! instruction came from. Lines and columns are 1-based and count Unicode
//! characters, so editors can jump straight to them.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// A point in the source text: 1-based line, 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in Unicode characters.
    pub column: usize,
}

impl Position {
    /// A position at `line`, `column` (both 1-based).
    pub fn new(line: usize, column: usize) -> Self {
        Position { line, column }
    }
}

/// Where a node lives: the file name and the range it covers.
///
/// `start` is the first character of the instruction (after leading
/// whitespace); `end` is one column past the last character of the last line
/// the instruction used, including skipped comment lines inside a
/// continuation and heredoc bodies up to their terminator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    /// The file name as given to the parser (`Containerfile`, `-` for stdin, ...).
    #[serde(serialize_with = "serialize_arc_str")]
    pub file: Arc<str>,
    /// First character of the node.
    pub start: Position,
    /// One past the last character of the node.
    pub end: Position,
}

impl Span {
    /// The location of the node's first character, as `file:line:column`.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file, self.start.line, self.start.column)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}-{}:{}",
            self.file, self.start.line, self.start.column, self.end.line, self.end.column
        )
    }
}

fn serialize_arc_str<S: serde::Serializer>(value: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_the_whole_range() {
        let span = Span {
            file: Arc::from("Containerfile"),
            start: Position::new(3, 1),
            end: Position::new(5, 7),
        };
        assert_eq!(span.to_string(), "Containerfile:3:1-5:7");
        assert_eq!(span.location(), "Containerfile:3:1");
    }
}
