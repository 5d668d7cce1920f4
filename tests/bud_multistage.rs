//! Multi-stage builds and the build cache, end to end: `--target` skips
//! what it does not need, a builder stage's output is all the final image
//! gets, and rebuilds hit or miss the cache exactly when they should.

mod common;

use std::fs;
use std::time::{Duration, SystemTime};

use common::{Runner, Sandbox};

const STAGES: &str = "FROM busybox AS builder
COPY prog.sh.in /src/
RUN echo marker-builder-ran && sed 's/@NAME@/world/' /src/prog.sh.in > /prog && chmod 755 /prog

FROM busybox AS unused
RUN echo marker-unused-ran

FROM busybox AS final
COPY --from=builder /prog /usr/local/bin/prog
RUN prog > /out

FROM final AS after
RUN echo marker-after-ran
";

#[test]
fn target_builds_only_what_it_needs() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let out = sb.build(
            "prog",
            STAGES,
            &[("prog.sh.in", "#!/bin/sh\necho hello @NAME@\n")],
            &["--target", "final"],
        );
        assert!(printed(&out, "marker-builder-ran"), "{runner:?}: {out}");
        assert!(
            !out.contains("marker-unused-ran"),
            "{runner:?}: skipped stage ran: {out}"
        );
        assert!(
            !out.contains("marker-after-ran"),
            "{runner:?}: stage after target ran: {out}"
        );
        let root = sb.unpack("prog");
        assert_eq!(
            fs::read_to_string(root.join("out")).unwrap(),
            "hello world\n"
        );
        assert!(root.join("usr/local/bin/prog").is_file());
        assert!(
            !root.join("src").exists(),
            "{runner:?}: builder files leaked"
        );
        assert!(!root.join("prog").exists());

        // Without --target the last stage is built, on top of `final`.
        let out = sb.build(
            "all",
            STAGES,
            &[("prog.sh.in", "#!/bin/sh\necho hello @NAME@\n")],
            &[],
        );
        assert!(printed(&out, "marker-after-ran"), "{out}");
        assert!(!out.contains("marker-unused-ran"), "{runner:?}: {out}");
        let root = sb.unpack("all");
        assert_eq!(
            fs::read_to_string(root.join("out")).unwrap(),
            "hello world\n"
        );

        let out = sb.fails(&[
            "bud",
            "--target",
            "nosuch",
            sb.path().join("ctx-0").to_str().unwrap(),
        ]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
    }
}

/// Whether a RUN printed `line`: exactly, or after the `[stage] ` prefix a
/// multi-stage build puts on RUN output.
fn printed(out: &str, line: &str) -> bool {
    out.lines().any(|l| {
        l == line
            || (l.starts_with('[') && l.split_once("] ").is_some_and(|(_, rest)| rest == line))
    })
}

const CACHED: &str = "FROM busybox
COPY . /ctx/
ARG V=1
RUN echo \"run-marker V=$V\" && cat /ctx/a.txt > /copy
ENV DONE=1
";

/// Whether the RUN step ran (its output line, not the STEP line, is there).
fn ran(out: &str) -> Option<&str> {
    out.lines()
        .find(|l| l.starts_with("run-marker V="))
        .map(|l| l.trim_start_matches("run-marker V="))
}

/// The image ID `bud` prints last.
fn image_id(out: &str) -> &str {
    out.lines().last().unwrap_or_default()
}

fn hits(out: &str) -> usize {
    out.matches("--> Using cache").count()
}

#[test]
fn cache_hits_and_misses() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let ctx = sb.context(
            "ctx",
            &[
                ("Containerfile", CACHED),
                ("a.txt", "one\n"),
                ("ignored.txt", "ignored\n"),
                (".containerignore", "ignored.txt\n"),
            ],
        );
        let c = ctx.to_str().unwrap();
        let bud = |extra: &[&str]| {
            let mut args = vec!["bud", "-t", "cached"];
            args.extend_from_slice(extra);
            args.push(c);
            sb.ok(&args)
        };

        let first = bud(&[]);
        assert_eq!(hits(&first), 0, "{runner:?}: {first}");
        assert_eq!(ran(&first), Some("1"));

        let again = bud(&[]);
        assert_eq!(hits(&again), 2, "{runner:?}: COPY and RUN hit: {again}");
        assert_eq!(ran(&again), None, "{runner:?}: {again}");
        // A rebuild that hits everywhere gives the same image, as docker does.
        assert_eq!(image_id(&again), image_id(&first), "{runner:?}");

        // A new mtime without new content is still a hit.
        let later = SystemTime::now() + Duration::from_secs(5);
        fs::File::options()
            .write(true)
            .open(ctx.join("a.txt"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let touched = bud(&[]);
        assert_eq!(
            hits(&touched),
            2,
            "{runner:?}: touch without change: {touched}"
        );
        assert_eq!(ran(&touched), None);

        // An ignored file is not part of the context.
        sb.write("ctx/ignored.txt", "changed\n");
        let ignored = bud(&[]);
        assert_eq!(
            hits(&ignored),
            2,
            "{runner:?}: ignored file edited: {ignored}"
        );
        assert_eq!(ran(&ignored), None);
        assert_eq!(image_id(&ignored), image_id(&first));

        // A changed build arg misses from the step that uses it.
        let arg = bud(&["--build-arg", "V=2"]);
        assert_eq!(hits(&arg), 1, "{runner:?}: COPY hits, RUN misses: {arg}");
        assert_eq!(ran(&arg), Some("2"));
        let arg_again = bud(&["--build-arg", "V=2"]);
        assert_eq!(hits(&arg_again), 2, "{arg_again}");
        assert_ne!(image_id(&arg), image_id(&first));
        assert_eq!(image_id(&arg_again), image_id(&arg));

        // Editing a context file misses from the COPY on.
        sb.write("ctx/a.txt", "two\n");
        let edited = bud(&[]);
        assert_eq!(hits(&edited), 0, "{runner:?}: {edited}");
        assert_eq!(ran(&edited), Some("1"));
        let root = sb.unpack("cached");
        assert_eq!(fs::read_to_string(root.join("copy")).unwrap(), "two\n");

        // --no-cache runs everything.
        let nocache = bud(&["--no-cache"]);
        assert_eq!(hits(&nocache), 0);
        assert_eq!(ran(&nocache), Some("1"));
    }
}

#[test]
fn stages_by_index_image_id_and_independent_builders() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let base = sb.ok(&["inspect", "--format", "{{.FromImageID}}", "busybox"]);
        let short = &base.trim()[..12];
        let out = sb.build(
            "joined",
            &format!(
                "FROM busybox AS first\n\
                 ENV FROM_FIRST=yes\n\
                 WORKDIR /w1\n\
                 RUN echo one > /w1/out\n\
                 FROM {short} AS second\n\
                 RUN echo two > /out2\n\
                 FROM first\n\
                 RUN echo \"inherited $FROM_FIRST $(pwd)\"\n\
                 COPY --from=0 /w1/out /joined/one\n\
                 COPY --from=second /out2 /joined/two\n"
            ),
            &[],
            &["--jobs", "2"],
        );
        assert!(printed(&out, "inherited yes /w1"), "{runner:?}: {out}");
        let root = sb.unpack("joined");
        assert_eq!(
            fs::read_to_string(root.join("joined/one")).unwrap(),
            "one\n"
        );
        assert_eq!(
            fs::read_to_string(root.join("joined/two")).unwrap(),
            "two\n"
        );
        assert!(!root.join("out2").exists(), "{runner:?}");
        assert!(root.join("w1/out").exists(), "FROM first keeps its files");
    }
}

#[test]
fn cache_misses_on_mode_change_new_base_and_changed_instruction() {
    use std::os::unix::fs::PermissionsExt;
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let ctx = sb.context(
            "ctx",
            &[
                (
                    "Containerfile",
                    "FROM busybox\nCOPY tool /tool\nRUN echo ran-step\n",
                ),
                ("tool", "#!/bin/sh\n"),
            ],
        );
        let c = ctx.to_str().unwrap();
        let ran = |out: &str| out.lines().any(|l| l == "ran-step");
        assert!(ran(&sb.ok(&["bud", "-t", "m", c])));
        assert!(!ran(&sb.ok(&["bud", "-t", "m", c])));

        // A mode change is a content change for COPY.
        fs::set_permissions(ctx.join("tool"), fs::Permissions::from_mode(0o755)).unwrap();
        let out = sb.ok(&["bud", "-t", "m", c]);
        assert_eq!(hits(&out), 0, "{runner:?}: chmod must miss: {out}");
        let root = sb.unpack("m");
        assert_eq!(
            fs::metadata(root.join("tool"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );

        // A changed instruction misses from there on.
        sb.write(
            "ctx/Containerfile",
            "FROM busybox\nCOPY --chown=1000:1000 tool /tool\nRUN echo ran-step\n",
        );
        let out = sb.ok(&["bud", "-t", "m", c]);
        assert!(ran(&out) && hits(&out) == 0, "{runner:?}: {out}");

        // A new base image under the same name misses everything.
        let base = sb.path().join("base2");
        common::make_busybox_rootfs(&base);
        fs::write(base.join("etc/extra"), "new base\n").unwrap();
        sb.ok(&["import", base.to_str().unwrap(), "busybox"]);
        let out = sb.ok(&["bud", "-t", "m", c]);
        assert!(ran(&out) && hits(&out) == 0, "{runner:?}: {out}");
        let root = sb.unpack("m");
        assert!(root.join("etc/extra").exists());
    }
}
