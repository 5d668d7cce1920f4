//! The rootless user namespace, overlay layer mounts and the RUN sandbox.
//!
//! Knows nothing about images or what a layer means.
