//! The Containerfile front end: directives, the line parser, heredocs, the
//! AST with spans, the word lexer for variable expansion, and the typed
//! instruction layer the build executor reads. Pure: no I/O.

pub mod shell;
