//! The registry client (the OCI distribution API): auth, pull, push,
//! mounts, retries, TLS and `registries.conf`.
//!
//! - [`client`]: one registry host: scheme, auth, retries, manifests, blobs.
//! - [`auth`]: credentials from `--creds`, auth files and credential
//!   helpers; `login`/`logout` storage; `WWW-Authenticate` parsing.
//! - [`tls`]: system roots, `certs.d`, client certificates, `--tls-verify`.
//! - [`conf`]: `registries.conf` (search registries, mirrors, insecure).
//! - [`platform`]: choosing an image out of an index.
//! - [`pull`]: registry → store; [`push`]: any export source → registry;
//!   [`push_list`]: a manifest list and its images → registry.
//! - [`manifest_list`]: index documents and the store's list records.
//! - [`progress`]: per-blob progress bars, or skopeo's plain lines.
//!
//! Uses the store through its API only; knows nothing of its layout.

pub mod auth;
pub mod client;
pub mod conf;
pub mod error;
pub mod manifest_list;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod push;
pub mod push_list;
pub mod tls;

pub use auth::{AuthConfig, Credentials};
pub use client::{Client, RegistryOptions};
pub use error::RegistryError;
pub use platform::parse_platform;
pub use pull::{
    pull, pull_all_platforms, pull_with_policy, PullEvent, PullOptions, PullPolicy, Pulled,
    PulledAll,
};
pub use push::{push, PushEvent, PushOptions, Pushed};
