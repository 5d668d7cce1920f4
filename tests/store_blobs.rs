//! The content store's behaviour suite through the public API, containerd
//! style: plain writes, existing blobs, wrong digest or size, and many
//! writers of one blob at once.

use std::fs;
use std::io::{Read, Write};
use std::sync::{Arc, Barrier};

use rbuild::digest::Digest;
use rbuild::store::{Store, StoreError};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("root")).unwrap();
    (dir, s)
}

fn tmp_is_empty(s: &Store) -> bool {
    fs::read_dir(s.root().join("tmp")).unwrap().next().is_none()
}

/// 8 MiB of non-repeating bytes, written in odd-sized pieces.
fn payload() -> Vec<u8> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..8 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn streamed_write_then_read_back() {
    let (_t, s) = store();
    let data = payload();
    let mut w = s.blob_writer().unwrap();
    for piece in data.chunks(12_345) {
        w.write_all(piece).unwrap();
    }
    let d = w
        .commit(Some((Digest::of(&data), data.len() as u64)))
        .unwrap();
    let mut back = Vec::new();
    s.open_blob(&d).unwrap().read_to_end(&mut back).unwrap();
    assert!(back == data);
    assert_eq!(s.blob_size(&d).unwrap(), data.len() as u64);
    assert!(tmp_is_empty(&s));
    assert!(s.fsck().unwrap().is_empty());
}

#[test]
fn mismatches_are_refused_and_leave_nothing() {
    let (_t, s) = store();
    let data = payload();
    let right = Digest::of(&data);
    let wrong = Digest::of(b"something else");
    for (expected, size) in [(wrong, data.len() as u64), (right, data.len() as u64 - 1)] {
        let mut w = s.blob_writer().unwrap();
        w.write_all(&data).unwrap();
        let err = w.commit(Some((expected, size))).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(&right.to_string()), "{err}");
        assert!(!s.has_blob(&right) && !s.has_blob(&wrong));
        assert!(tmp_is_empty(&s));
    }
}

#[test]
fn many_writers_of_one_blob_all_succeed() {
    let (_t, s) = store();
    let data = Arc::new(payload());
    let barrier = Arc::new(Barrier::new(6));
    let writers: Vec<_> = (0..6)
        .map(|_| {
            let (s, data, barrier) = (s.clone(), data.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut w = s.blob_writer().unwrap();
                w.write_all(&data).unwrap();
                barrier.wait();
                w.commit(Some((Digest::of(&data), data.len() as u64)))
                    .unwrap()
            })
        })
        .collect();
    let digests: Vec<Digest> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(digests.iter().all(|d| *d == digests[0]));
    assert_eq!(
        fs::read_dir(s.root().join("blobs/sha256")).unwrap().count(),
        1
    );
    assert!(tmp_is_empty(&s));
    assert!(s.fsck().unwrap().is_empty());
}

#[test]
fn small_json_round_trips_and_missing_is_not_found() {
    let (_t, s) = store();
    let d = s.put_blob(br#"{"architecture":"amd64"}"#).unwrap();
    assert_eq!(s.read_blob(&d).unwrap(), br#"{"architecture":"amd64"}"#);
    let missing = Digest::of(b"missing");
    assert!(matches!(s.read_blob(&missing), Err(StoreError::BlobNotFound(d)) if d == missing));
}
