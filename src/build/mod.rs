//! Build planning and execution: turns a parsed Containerfile into images.
//!
//! Owns the plan (stage order, `--target` pruning), the executor, the build
//! context and ignore files, and build cache keys. It never touches the
//! store's on-disk layout directly: it goes through `store`'s API.

pub mod request;

pub use request::BuildRequest;
