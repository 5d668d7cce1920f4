//! The reference grammar of distribution/reference, checked by hand so each
//! error can say which part is wrong:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ registry "/" ] path
//! registry   := host [ ":" port ]      host := dns-name | "[" ipv6 "]"
//! path       := component ( "/" component )*
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! ```
//! The whole name (registry and path) is at most 255 characters.

use super::{Reference, ReferenceError};

/// The longest name (registry and path) distribution accepts.
pub(super) const NAME_MAX: usize = 255;
/// The longest tag.
pub(super) const TAG_MAX: usize = 128;

pub(super) fn parse(s: &str) -> Result<Reference, ReferenceError> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => {
            let parsed = digest.parse().map_err(|source| ReferenceError::Digest {
                reference: s.to_string(),
                digest: digest.to_string(),
                source,
            })?;
            (rest, Some(parsed))
        }
        None => (s, None),
    };
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&rest[..colon], Some(&rest[colon + 1..]))
        }
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(s, tag)?;
    }
    let (registry, path) = split_registry(name);
    if path.is_empty() {
        return Err(ReferenceError::Empty {
            reference: s.to_string(),
        });
    }
    if let Some(registry) = registry {
        check_registry(s, registry)?;
    }
    for component in path.split('/') {
        check_component(s, path, component)?;
    }
    check_length(name)?;
    Ok(Reference {
        registry: registry.map(str::to_string),
        repository: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

/// Docker's rule: the first component is a registry when there is a `/`
/// after it and it has a `.` or `:`, is `localhost`, or has upper case.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, path))
            if first.contains(['.', ':'])
                || first == super::LOCAL_REGISTRY
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), path)
        }
        _ => (None, name),
    }
}

pub(super) fn check_length(name: &str) -> Result<(), ReferenceError> {
    let len = name.chars().count();
    if len > NAME_MAX {
        return Err(ReferenceError::TooLong {
            name: name.to_string(),
            len,
        });
    }
    Ok(())
}

fn check_tag(reference: &str, tag: &str) -> Result<(), ReferenceError> {
    let fail = |reason: String| ReferenceError::Tag {
        reference: reference.to_string(),
        tag: tag.to_string(),
        reason,
    };
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    match chars.next() {
        None => return Err(fail("a tag must not be empty (remove the ':')".to_string())),
        Some(first) if !word(first) => {
            return Err(fail(format!(
                "a tag must start with a letter, digit or '_', not {first:?}"
            )))
        }
        Some(_) => {}
    }
    if let Some(bad) = chars.find(|&c| !word(c) && c != '.' && c != '-') {
        return Err(fail(format!(
            "character {bad:?} is not allowed in a tag (use A-Z, a-z, 0-9, '_', '.' and '-')"
        )));
    }
    let len = tag.chars().count();
    if len > TAG_MAX {
        return Err(fail(format!(
            "a tag is at most {TAG_MAX} characters, this one has {len}"
        )));
    }
    Ok(())
}

fn check_registry(reference: &str, registry: &str) -> Result<(), ReferenceError> {
    let fail = |reason: String| ReferenceError::Registry {
        reference: reference.to_string(),
        registry: registry.to_string(),
        reason,
    };
    let (host, port) = if let Some(bracketed) = registry.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return Err(fail("an IPv6 address needs a closing ']'".to_string()));
        };
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(fail(format!(
                "{address:?} is not an IPv6 address (hex digits and ':' only)"
            )));
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(fail(format!("unexpected {after:?} after the IPv6 address"))),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(format!("port {port:?} must be a number")));
        }
    }
    if let Some(host) = host {
        for label in host.split('.') {
            if label.is_empty() {
                return Err(fail(
                    "a host name has an empty label (\"..\" or a leading or trailing '.')"
                        .to_string(),
                ));
            }
            if let Some(bad) = label
                .chars()
                .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
            {
                return Err(fail(format!(
                    "character {bad:?} is not allowed in a host name (use letters, digits, '-' and '.')"
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(fail(format!(
                    "host name label {label:?} must not start or end with '-'"
                )));
            }
        }
    }
    Ok(())
}

fn check_component(reference: &str, path: &str, component: &str) -> Result<(), ReferenceError> {
    let fail = |reason: &str| ReferenceError::PathComponent {
        reference: reference.to_string(),
        component: component.to_string(),
        reason: reason.to_string(),
    };
    if component.is_empty() {
        return Err(fail("empty path component (a doubled or trailing '/')"));
    }
    if component.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase {
            name: path.to_string(),
        });
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if let Some(bad) = component
        .chars()
        .find(|&c| !alnum(c) && !matches!(c, '.' | '_' | '-'))
    {
        return Err(ReferenceError::PathComponent {
            reference: reference.to_string(),
            component: component.to_string(),
            reason: format!(
                "character {bad:?} is not allowed (use a-z, 0-9 and the separators '.', '_', '__', '-')"
            ),
        });
    }
    let starts_ok = component.starts_with(alnum);
    let ends_ok = component.ends_with(alnum);
    if !starts_ok || !ends_ok {
        return Err(fail("must start and end with a lowercase letter or digit"));
    }
    // Separators between alphanumeric runs: ".", "_", "__" or any run of "-".
    for separator in component.split(alnum).filter(|s| !s.is_empty()) {
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return Err(ReferenceError::PathComponent {
                reference: reference.to_string(),
                component: component.to_string(),
                reason: format!(
                    "separator {separator:?} is not allowed (use one '.', one '_', two '_' or dashes)"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parts(s: &str) -> (Option<String>, String, Option<String>, Option<Digest>) {
        let r = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (r.registry, r.repository, r.tag, r.digest)
    }

    #[test]
    fn valid_references_split_into_parts() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(parts("alpine"), (None, "alpine".into(), None, None));
        assert_eq!(
            parts("alpine:3.20"),
            (None, "alpine".into(), some("3.20"), None)
        );
        assert_eq!(
            parts("library/alpine"),
            (None, "library/alpine".into(), None, None)
        );
        assert_eq!(
            parts("localhost/app:1"),
            (some("localhost"), "app".into(), some("1"), None)
        );
        assert_eq!(
            parts("localhost:5000/a/b:c"),
            (some("localhost:5000"), "a/b".into(), some("c"), None)
        );
        assert_eq!(
            parts("quay.io/x/y"),
            (some("quay.io"), "x/y".into(), None, None)
        );
        assert_eq!(parts("Foo/bar"), (some("Foo"), "bar".into(), None, None));
        assert_eq!(parts("[::1]/a"), (some("[::1]"), "a".into(), None, None));
        assert_eq!(
            parts("[fe80::1]:5000/a:t"),
            (some("[fe80::1]:5000"), "a".into(), some("t"), None)
        );
        assert_eq!(
            parts("localhost:5000"),
            (None, "localhost".into(), some("5000"), None)
        );
        assert_eq!(
            parts("x/a__b.c-d---e/f_g"),
            (None, "x/a__b.c-d---e/f_g".into(), None, None)
        );
        let digest: Digest = format!("sha256:{HEX}").parse().unwrap();
        assert_eq!(
            parts(&format!("a@sha256:{HEX}")),
            (None, "a".into(), None, Some(digest))
        );
        assert_eq!(
            parts(&format!("r.io/a:t@sha256:{HEX}")),
            (some("r.io"), "a".into(), some("t"), Some(digest))
        );
        let tag = "a".repeat(128);
        assert_eq!(parts(&format!("a:{tag}")).2, Some(tag));
    }

    fn error(s: &str) -> String {
        parse(s).expect_err(s).to_string()
    }

    #[test]
    fn errors_say_which_part_and_why() {
        let cases = [
            ("", "invalid reference format: \"\" has no repository name (expected [host[:port]/]path[:tag][@digest])"),
            (":tag", "invalid reference format: \":tag\" has no repository name (expected [host[:port]/]path[:tag][@digest])"),
            ("quay.io/", "invalid reference format: \"quay.io/\" has no repository name (expected [host[:port]/]path[:tag][@digest])"),
            ("App", "invalid reference format: repository name \"App\" must be lowercase"),
            ("quay.io/Org/app", "invalid reference format: repository name \"Org/app\" must be lowercase"),
            ("a:", "invalid reference format: tag \"\" in \"a:\": a tag must not be empty (remove the ':')"),
            ("a:.x", "invalid reference format: tag \".x\" in \"a:.x\": a tag must start with a letter, digit or '_', not '.'"),
            ("a:x+y", "invalid reference format: tag \"x+y\" in \"a:x+y\": character '+' is not allowed in a tag (use A-Z, a-z, 0-9, '_', '.' and '-')"),
            ("a//b", "invalid reference format: path component \"\" in \"a//b\": empty path component (a doubled or trailing '/')"),
            ("a/b/", "invalid reference format: path component \"\" in \"a/b/\": empty path component (a doubled or trailing '/')"),
            ("-a", "invalid reference format: path component \"-a\" in \"-a\": must start and end with a lowercase letter or digit"),
            ("a.", "invalid reference format: path component \"a.\" in \"a.\": must start and end with a lowercase letter or digit"),
            ("a..b", "invalid reference format: path component \"a..b\" in \"a..b\": separator \"..\" is not allowed (use one '.', one '_', two '_' or dashes)"),
            ("a___b", "invalid reference format: path component \"a___b\" in \"a___b\": separator \"___\" is not allowed (use one '.', one '_', two '_' or dashes)"),
            ("a.-b", "invalid reference format: path component \"a.-b\" in \"a.-b\": separator \".-\" is not allowed (use one '.', one '_', two '_' or dashes)"),
            ("a b", "invalid reference format: path component \"a b\" in \"a b\": character ' ' is not allowed (use a-z, 0-9 and the separators '.', '_', '__', '-')"),
            ("quay.io:x/a", "invalid reference format: registry \"quay.io:x\" in \"quay.io:x/a\": port \"x\" must be a number"),
            ("quay.io:/a", "invalid reference format: registry \"quay.io:\" in \"quay.io:/a\": port \"\" must be a number"),
            ("-q.io/a", "invalid reference format: registry \"-q.io\" in \"-q.io/a\": host name label \"-q\" must not start or end with '-'"),
            ("q..io/a", "invalid reference format: registry \"q..io\" in \"q..io/a\": a host name has an empty label (\"..\" or a leading or trailing '.')"),
            ("q_x.io/a", "invalid reference format: registry \"q_x.io\" in \"q_x.io/a\": character '_' is not allowed in a host name (use letters, digits, '-' and '.')"),
            ("[::1/a", "invalid reference format: registry \"[::1\" in \"[::1/a\": an IPv6 address needs a closing ']'"),
            ("[xyz]:1/a", "invalid reference format: registry \"[xyz]:1\" in \"[xyz]:1/a\": \"xyz\" is not an IPv6 address (hex digits and ':' only)"),
            ("[::1]x/a", "invalid reference format: registry \"[::1]x\" in \"[::1]x/a\": unexpected \"x\" after the IPv6 address"),
            ("a@sha256:abc", "invalid reference format: digest \"sha256:abc\" in \"a@sha256:abc\": invalid digest \"sha256:abc\": expected \"sha256:\" followed by 64 lowercase hex characters"),
        ];
        for (input, message) in cases {
            assert_eq!(error(input), message, "{input}");
        }
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(error(&long_tag).ends_with("a tag is at most 128 characters, this one has 129"));
        let long_name = format!("{}/{}", "a".repeat(200), "b".repeat(55));
        assert!(error(&long_name).contains("is 256 characters; it must not be more than 255"));
        assert!(parse(&format!("{}/{}", "a".repeat(200), "b".repeat(54))).is_ok());
        let at_twice = format!("a@sha256:{HEX}@x");
        assert!(error(&at_twice).contains("invalid digest"));
    }
}
