//! The raw syntax tree: one [`Node`] per instruction, as BuildKit's parser
//! builds it, before any instruction-specific checks. Flags and arguments
//! are raw words (quotes and variables untouched); the typed layer in
//! `instructions/` turns nodes into [`super::Instruction`]s.

use serde::Serialize;

use super::heredoc::Heredoc;
use super::span::Span;

/// A parser directive from the top of the file (`# syntax=...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// Which directive.
    pub name: DirectiveName,
    /// Its value, trimmed.
    pub value: String,
    /// 1-based line it was on.
    pub line: usize,
}

/// The directives BuildKit recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectiveName {
    /// `# syntax=` (recorded, not acted on: rbuild has one frontend).
    Syntax,
    /// `# escape=` (changes the escape character).
    Escape,
    /// `# check=` (lint configuration, recorded).
    Check,
}

impl DirectiveName {
    /// The directive's name as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectiveName::Syntax => "syntax",
            DirectiveName::Escape => "escape",
            DirectiveName::Check => "check",
        }
    }
}

/// One instruction as parsed from the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword as written (`RUN`, `run`, `Copy`, or an unknown word).
    pub keyword: String,
    /// Leading `--flag[=value]` words, quotes and escapes removed.
    pub flags: Vec<String>,
    /// The argument nodes, split per instruction as BuildKit does. An
    /// unknown keyword has exactly one empty argument (BuildKit's quirk).
    pub args: Vec<String>,
    /// ONBUILD's trigger instruction (then `args` is empty).
    pub trigger: Option<Box<Node>>,
    /// The arguments came from a JSON array (exec form).
    pub json: bool,
    /// Heredocs opened on this line, in order, with their bodies.
    pub heredocs: Vec<Heredoc>,
    /// The logical line: continuations joined, comments inside removed.
    pub original: String,
    /// Where the instruction is, heredoc bodies included.
    pub span: Span,
}

impl Node {
    /// The keyword in lower case, as used for dispatch.
    pub fn keyword_lower(&self) -> String {
        self.keyword.to_lowercase()
    }
}

/// A problem that does not stop parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// One-line description.
    pub message: String,
    /// Where, as in the instruction's span.
    pub span: Span,
}

/// The raw parse result: directives, instructions and warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    /// Parser directives found at the top.
    pub directives: Vec<Directive>,
    /// The escape character in effect (`\` or `` ` ``).
    pub escape: char,
    /// The instructions, in file order.
    pub nodes: Vec<Node>,
    /// Non-fatal findings (empty continuation lines).
    pub warnings: Vec<Warning>,
}
