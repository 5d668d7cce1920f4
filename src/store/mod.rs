//! The on-disk store: blobs by digest, extracted layers by chain ID, image
//! records and names, the build cache index, locking, leases and gc.
