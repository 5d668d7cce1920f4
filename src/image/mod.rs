//! OCI image types (config, manifest, index) and the transports that export
//! an image from the store: `oci:`, `oci-archive:`, `docker-archive:`, `dir:`.
