//! Independent stages run at once (`--jobs`, default the core count), and
//! one at a time with `--jobs 1`: each stage records when its RUN started
//! and ended in a shared cache mount, and the final stage prints both.

mod common;

use common::{Runner, Sandbox};

/// (start, end) of stages a and b, in seconds of system uptime.
fn intervals(sb: &Sandbox, jobs: &str, id: &str) -> ((f64, f64), (f64, f64)) {
    let containerfile = format!(
        "FROM busybox AS a\n\
         RUN --mount=type=cache,id={id},target=/times s=$(cut -d' ' -f1 /proc/uptime); sleep 1; echo \"$s $(cut -d' ' -f1 /proc/uptime)\" > /times/a\n\
         FROM busybox AS b\n\
         RUN --mount=type=cache,id={id},target=/times s=$(cut -d' ' -f1 /proc/uptime); sleep 1; echo \"$s $(cut -d' ' -f1 /proc/uptime)\" > /times/b\n\
         FROM busybox\n\
         COPY --from=a /bin/true /a-done\n\
         COPY --from=b /bin/true /b-done\n\
         RUN --mount=type=cache,id={id},target=/times echo \"A $(cat /times/a)\"; echo \"B $(cat /times/b)\"\n"
    );
    let out = sb.build(&sb.fresh("par"), &containerfile, &[], &["--jobs", jobs]);
    let find = |tag: &str| -> (f64, f64) {
        let line = out
            .lines()
            // The STEP line echoes the command text too: skip it.
            .filter(|l| !l.contains("STEP"))
            .find_map(|l| {
                l.split_once(&format!("{tag} "))
                    .map(|(_, rest)| rest.to_string())
            })
            .unwrap_or_else(|| panic!("no {tag} line in:\n{out}"));
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        (v[0], v[1])
    };
    (find("A"), find("B"))
}

#[test]
fn independent_stages_overlap_and_jobs_1_serialises_them() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let (a, b) = intervals(&sb, "2", "times-parallel");
        assert!(
            a.0 < b.1 && b.0 < a.1,
            "{runner:?}: with --jobs 2 the stages should overlap: a={a:?} b={b:?}"
        );
        let (a, b) = intervals(&sb, "1", "times-serial");
        assert!(
            a.1 <= b.0 || b.1 <= a.0,
            "{runner:?}: with --jobs 1 the stages must not overlap: a={a:?} b={b:?}"
        );
    }
}
