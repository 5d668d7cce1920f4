//! rbuild: a daemonless, rootless OCI image builder.
//!
//! The library holds every module named in `DESIGN.md`; `main.rs` only calls
//! [`cli::main`]. Data moves one way: `containerfile` → `build` → `store` →
//! `image`, with `sandbox` and `layer` as services `build` and `store` use.

pub mod build;
pub mod cli;
pub mod container;
pub mod containerfile;
pub mod digest;
pub mod image;
pub mod layer;
pub mod reference;
pub mod registry;
pub mod sandbox;
pub mod store;
