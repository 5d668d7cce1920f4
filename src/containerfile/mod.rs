//! The Containerfile front end: directives, the line parser, heredocs, the
//! AST with spans, the word lexer for variable expansion, and the typed
//! instruction layer the build executor reads. Pure: no I/O.
//!
//! Two entry points:
//! - [`parse`]: text → [`Containerfile`] (stages of typed [`Instruction`]s),
//!   with every check; what builds and `rbuild parse --format json` use.
//! - [`parse_ast`]: text → raw [`Ast`] as BuildKit's parser builds it (no
//!   check of instruction names or flags); [`dump`] prints it in BuildKit's
//!   test format (`rbuild parse --format ast`).
//!
//! Words are kept as written (`$VAR`, quotes): the executor expands them
//! with the stage's ARG/ENV using the word lexer.

pub mod ast;
pub mod dump;
pub mod error;
pub mod heredoc;
pub mod instructions;
mod json;
mod line_args;
mod parser;
pub mod printer;
pub mod shell;
mod source;
pub mod span;

pub use ast::{Ast, Directive, DirectiveName, Node, Warning};
pub use dump::dump;
pub use error::{ErrorKind, ParseError};
pub use heredoc::Heredoc;
pub use instructions::*;
pub use parser::parse_ast;
pub use printer::print;
pub use span::{Position, Span};

/// Parses a Containerfile into stages of checked, typed instructions.
///
/// `file_name` labels spans and errors (`Containerfile:12:1: ...`); no file
/// is opened.
///
/// ```
/// let cf = rbuild::containerfile::parse("FROM alpine AS base\nRUN echo hi\n", "Containerfile").unwrap();
/// assert_eq!(cf.stages[0].name.as_deref(), Some("base"));
/// assert_eq!(cf.stages[0].instructions[0].name(), "RUN");
/// ```
pub fn parse(text: &str, file_name: &str) -> Result<Containerfile, ParseError> {
    let src = source::Source::new(text, file_name);
    let ast = parser::parse_source(&src)?;
    instructions::parse_stages(ast, &src)
}
