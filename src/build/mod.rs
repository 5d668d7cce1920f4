//! Build planning and execution: turns a parsed Containerfile into images.
//!
//! Owns the plan (stage order, `--target` pruning), the executor, the build
//! context and ignore files, and build cache keys. It never touches the
//! store's on-disk layout directly: it goes through `store`'s API.

pub mod request;

pub use request::BuildRequest;
pub mod add;
pub mod args;
pub mod context;
pub mod copy;
pub mod copy_digest;
mod dispatch;
mod dispatch_copy;
mod dispatch_run;
pub mod error;
pub mod executor;
pub mod glob;
pub mod ignore;
pub mod output;
pub mod plan;
pub mod process_spec;
pub mod squash;
pub mod stage;
pub mod step;
pub mod userdb;

pub use error::{BuildError, StepError};
pub use executor::{build, write_image, BuildOutcome};
