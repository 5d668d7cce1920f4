//! Fuzzes the reference parser: no input may panic, an accepted reference
//! must print back to its input, and normalising must be idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rbuild::reference::{normalize_docker, normalize_local, Reference};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = Reference::parse(text) {
        assert_eq!(reference.to_string(), text);
        assert_eq!(Reference::parse(text), Ok(reference.clone()));
        let _ = reference.match_stored(&reference);
    }
    if let Ok(local) = normalize_local(text) {
        assert_eq!(normalize_local(&local.to_string()), Ok(local.clone()));
        assert!(Reference::parse(text).is_ok_and(|typed| typed.match_stored(&local).is_some()));
    }
    if let Ok(docker) = normalize_docker(text) {
        assert_eq!(normalize_docker(&docker.to_string()), Ok(docker));
    }
});
