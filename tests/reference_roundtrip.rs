//! Property tests: every valid reference prints as a string that parses back
//! to the same value, and normalising is idempotent.

use proptest::prelude::*;
use rbuild::digest::Digest;
use rbuild::reference::{normalize_docker, normalize_local, Reference};

fn registry() -> impl Strategy<Value = String> {
    let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?";
    let dns = prop::collection::vec(label, 2..4).prop_map(|labels| labels.join("."));
    let port =
        prop::option::of(1u32..65536).prop_map(|p| p.map(|p| format!(":{p}")).unwrap_or_default());
    prop_oneof![
        (dns, port.clone()).prop_map(|(host, port)| format!("{host}{port}")),
        port.clone().prop_map(|port| format!("localhost{port}")),
        ("[0-9a-f]{0,4}:[0-9a-f:]{0,8}", port).prop_map(|(ip, port)| format!("[{ip}]{port}")),
    ]
}

fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}"
}

fn reference() -> impl Strategy<Value = Reference> {
    (
        prop::option::of(registry()),
        prop::collection::vec(component(), 1..4),
        prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
        prop::option::of(any::<[u8; 32]>().prop_map(Digest::from_bytes)),
    )
        .prop_map(|(registry, path, tag, digest)| Reference {
            registry,
            repository: path.join("/"),
            tag,
            digest,
        })
        // Without a registry, a first component that looks like a host is one.
        .prop_filter("short name must not look like a registry", |r| {
            r.registry.is_some()
                || r.repository.split('/').count() == 1
                || !r
                    .repository
                    .split('/')
                    .next()
                    .is_some_and(|first| first.contains('.') || first == "localhost")
        })
        .prop_filter("name at most 255 characters", |r| r.name().len() <= 255)
}

proptest! {
    #[test]
    fn display_then_parse_round_trips(r in reference()) {
        let printed = r.to_string();
        let parsed = Reference::parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&r), "printed as {}", printed);
    }

    #[test]
    fn parse_of_anything_is_stable(s in "[a-zA-Z0-9._:/@-]{0,40}") {
        if let Ok(r) = Reference::parse(&s) {
            prop_assert_eq!(r.to_string(), s.clone());
            prop_assert_eq!(Reference::parse(&r.to_string()), Ok(r));
        }
    }

    #[test]
    fn normalising_is_idempotent(r in reference()) {
        let printed = r.to_string();
        if let Ok(local) = normalize_local(&printed) {
            prop_assert_eq!(normalize_local(&local.to_string()), Ok(local.clone()));
            prop_assert!(local.registry.is_some());
            prop_assert!(local.tag.is_some() != local.digest.is_some());
        }
        if let Ok(docker) = normalize_docker(&printed) {
            prop_assert_eq!(normalize_docker(&docker.to_string()), Ok(docker));
        }
    }
}
