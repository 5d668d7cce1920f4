//! The `created_by` text of each history entry, as buildah writes it
//! (imagebuildah `getCreatedBy`, itself an imitation of docker's classic
//! builder): metadata steps are `/bin/sh -c #(nop) ` + the instruction as
//! written, RUN is the shell command prefixed by `|N K=V …` when build args
//! were used, COPY/ADD name a content summary and the destination.

/// Metadata-only instructions (ENV, LABEL, CMD, EXPOSE, WORKDIR, …):
/// `original` is the instruction's source text, e.g. `ENV A=b` or
/// `CMD ["x"]`.
pub fn metadata(original: &str) -> String {
    format!("/bin/sh -c #(nop) {original}")
}

/// `ARG` entries: each declared name as `K=V` when it has a value, as `K`
/// alone when not (docker's `ARG H` for an arg without default or value).
pub fn arg(declared: &[(String, Option<String>)]) -> String {
    let words: Vec<String> = declared
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    format!("/bin/sh -c #(nop) ARG {}", words.join(" "))
}

/// `RUN`: `command_line` is the command as docker's classic builder
/// records it, its argv joined by spaces (`/bin/sh -c cmd` for the shell
/// form under the default SHELL, `echo hi` for `RUN ["echo", "hi"]`);
/// `build_args` are the args the command sees, sorted.
/// With args: `|2 A=1 B=2 /bin/sh -c cmd`.
pub fn run(build_args: &[(String, String)], command_line: &str) -> String {
    if build_args.is_empty() {
        command_line.to_string()
    } else {
        format!(
            "|{} {} {command_line}",
            build_args.len(),
            join_args(build_args)
        )
    }
}

/// What COPY/ADD added: `file:<hex>` for one file, `dir:<hex>` for a
/// directory, `multi:<hex>` for several sources; the hex is a digest of the
/// content, which the executor computes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentSummary {
    File(crate::digest::Digest),
    Dir(crate::digest::Digest),
    Multi(crate::digest::Digest),
}

impl std::fmt::Display for ContentSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContentSummary::File(d) => write!(f, "file:{}", d.hex()),
            ContentSummary::Dir(d) => write!(f, "dir:{}", d.hex()),
            ContentSummary::Multi(d) => write!(f, "multi:{}", d.hex()),
        }
    }
}

/// `COPY`/`ADD` (`instruction` is either word; `link` for `--link`):
/// `/bin/sh -c #(nop) COPY file:… in /dest ` (buildah keeps the trailing
/// space).
pub fn copy(instruction: &str, link: bool, summary: &ContentSummary, destination: &str) -> String {
    let link = if link { " --link" } else { "" };
    format!(
        "/bin/sh -c #(nop) {}{link} {summary} in {destination} ",
        instruction.to_ascii_uppercase()
    )
}

fn join_args(args: &[(String, String)]) -> String {
    args.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn args(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn metadata_lines() {
        assert_eq!(metadata("ENV A=b"), "/bin/sh -c #(nop) ENV A=b");
        assert_eq!(metadata(r#"CMD ["x"]"#), r#"/bin/sh -c #(nop) CMD ["x"]"#);
        let declared = [
            ("A".to_string(), Some("1".to_string())),
            ("B".to_string(), None),
        ];
        assert_eq!(arg(&declared), "/bin/sh -c #(nop) ARG A=1 B");
    }

    #[test]
    fn run_lines() {
        assert_eq!(run(&[], "/bin/sh -c echo hi"), "/bin/sh -c echo hi");
        assert_eq!(
            run(&args(&[("A", "1"), ("B", "2")]), "/bin/sh -c cmd"),
            "|2 A=1 B=2 /bin/sh -c cmd"
        );
        assert_eq!(run(&args(&[("A", "1")]), "echo hi"), "|1 A=1 echo hi");
    }

    #[test]
    fn copy_lines() {
        let d = Digest::of(b"x");
        assert_eq!(
            copy("copy", false, &ContentSummary::File(d), "/app"),
            format!("/bin/sh -c #(nop) COPY file:{} in /app ", d.hex())
        );
        assert_eq!(
            copy("ADD", true, &ContentSummary::Dir(d), "/"),
            format!("/bin/sh -c #(nop) ADD --link dir:{} in / ", d.hex())
        );
    }
}
