//! The word lexer: quote removal, `$VAR` / `${VAR…}` expansion and word
//! splitting, with the semantics of BuildKit's `frontend/dockerfile/shell`.
//!
//! The parser keeps instruction arguments as written; the build executor
//! calls [`Lexer`] at run time with the stage's live ARG/ENV (an [`Env`]),
//! so base-image ENV applies at the right moment and parsing stays pure.
//! [`policy()`] says which instructions (and which of their flags) expand at
//! all and which of them split the result into several words.
//!
//! Pure: no I/O.

mod chars;
mod env;
mod error;
mod lexer;
mod pattern;
pub mod policy;

pub use env::{Env, EnvList, NoEnv};
pub use error::{LexError, LexErrorKind};
pub use lexer::{Expansion, Lexer, MAX_NESTING};
pub use pattern::MAX_WILDCARDS;
pub use policy::{expands, flag_expands, policy, ExpansionPolicy};
