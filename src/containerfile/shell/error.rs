//! Why a word could not be expanded. Each message starts with BuildKit's
//! wording (scripts and users grep for it) and adds which variable and which
//! word were involved.

use std::fmt;

/// A failed expansion: the whole word, where in it (0-based character
/// offset at which the lexer gave up) and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub word: String,
    pub offset: usize,
    pub kind: LexErrorKind,
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to process {:?}: {}", self.word, self.kind)
    }
}

impl std::error::Error for LexError {}

/// What went wrong, one variant per BuildKit error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexErrorKind {
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected end of statement while looking for matching {0}")]
    UnexpectedEnd(char),
    #[error("syntax error: missing '}}' (the expansion of ${{{name}… is never closed)")]
    MissingBrace { name: String },
    #[error(
        "syntax error: missing '/' in ${{}} (${{{name}/pattern/replacement}} needs a second '/')"
    )]
    MissingSlash { name: String },
    #[error(
        "syntax error: bad substitution (a variable name must follow \"${{\", found {found:?})"
    )]
    BadSubstitution { found: char },
    #[error("unsupported modifier ({modifier}) in substitution of ${{{name}}}: use one of - + ? # ## % %% / // with or without ':' (':' not before # or %)")]
    UnsupportedModifier { name: String, modifier: String },
    #[error("{name}: {}", message.as_deref().unwrap_or("is not allowed to be unset"))]
    Unset {
        name: String,
        message: Option<String>,
    },
    #[error("{name}: {}", message.as_deref().unwrap_or("is not allowed to be empty"))]
    Empty {
        name: String,
        message: Option<String>,
    },
    #[error("invalid pattern ({pattern}) in substitution of ${{{name}}}: {reason}")]
    InvalidPattern {
        name: String,
        pattern: String,
        reason: String,
    },
    #[error("expansions nested more than {limit} deep")]
    TooDeep { limit: usize },
}
