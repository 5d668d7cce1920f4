//! Which instructions expand variables, and how: the table BuildKit encodes
//! by which commands implement `Expand` (`instructions/commands.go`) and
//! which dispatcher calls `ProcessWords` (`dockerfile2llb/convert_expose.go`).
//!
//! The parser has already split arguments into words (or `key=value` pairs);
//! the policy says what the executor does with each one at run time.

/// What the executor does with an instruction's argument words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpansionPolicy {
    /// Arguments are used as written: the shell (RUN, CMD, ENTRYPOINT) or a
    /// later build (ONBUILD triggers) expands them, or nothing does.
    Verbatim,
    /// Each parsed word (key and value of each pair) becomes exactly one
    /// word: [`Lexer::process_word`](super::Lexer::process_word).
    EachWord,
    /// Each parsed word may become several:
    /// [`Lexer::process_words`](super::Lexer::process_words) (EXPOSE only).
    SplitWords,
    /// FROM: the image name and `--platform` expand with the global ARGs
    /// (those declared before the first FROM) only, not the stage's.
    GlobalArgsOnly,
}

/// The policy for an instruction name (any case). Unknown names are verbatim.
pub fn policy(instruction: &str) -> ExpansionPolicy {
    match instruction.to_ascii_uppercase().as_str() {
        "ADD" | "ARG" | "COPY" | "ENV" | "LABEL" | "STOPSIGNAL" | "USER" | "VOLUME" | "WORKDIR" => {
            ExpansionPolicy::EachWord
        }
        "EXPOSE" => ExpansionPolicy::SplitWords,
        "FROM" => ExpansionPolicy::GlobalArgsOnly,
        // RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER, ONBUILD, …
        _ => ExpansionPolicy::Verbatim,
    }
}

/// Whether the instruction's arguments expand at all.
pub fn expands(instruction: &str) -> bool {
    policy(instruction) != ExpansionPolicy::Verbatim
}

/// Whether the value of `--flag` (name without dashes, any case) on
/// `instruction` expands. `COPY --from` never does: BuildKit rejects a
/// variable there ("variable expansion is not supported for --from").
/// `RUN --mount` options expand although RUN's command does not.
pub fn flag_expands(instruction: &str, flag: &str) -> bool {
    let flag = flag.to_ascii_lowercase();
    match instruction.to_ascii_uppercase().as_str() {
        "ADD" => matches!(flag.as_str(), "chown" | "chmod" | "checksum"),
        "COPY" => matches!(flag.as_str(), "chown" | "chmod"),
        "FROM" => flag == "platform",
        "RUN" => flag == "mount",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_buildkit() {
        for name in [
            "ADD",
            "ARG",
            "COPY",
            "ENV",
            "LABEL",
            "STOPSIGNAL",
            "USER",
            "VOLUME",
            "WORKDIR",
        ] {
            assert_eq!(policy(name), ExpansionPolicy::EachWord, "{name}");
            assert!(expands(&name.to_lowercase()), "{name}");
        }
        assert_eq!(policy("expose"), ExpansionPolicy::SplitWords);
        assert_eq!(policy("From"), ExpansionPolicy::GlobalArgsOnly);
        for name in [
            "RUN",
            "CMD",
            "ENTRYPOINT",
            "SHELL",
            "HEALTHCHECK",
            "MAINTAINER",
            "ONBUILD",
            "BOGUS",
        ] {
            assert_eq!(policy(name), ExpansionPolicy::Verbatim, "{name}");
            assert!(!expands(name), "{name}");
        }
    }

    #[test]
    fn flags() {
        assert!(flag_expands("ADD", "checksum"));
        assert!(flag_expands("copy", "CHOWN"));
        assert!(!flag_expands("COPY", "from"));
        assert!(!flag_expands("COPY", "exclude"));
        assert!(flag_expands("FROM", "platform"));
        assert!(flag_expands("RUN", "mount"));
        assert!(!flag_expands("RUN", "network"));
    }
}
