//! The commands around images, run as the real binary on a real store:
//! `images` (formats and filters), `tag`, `rmi`, `history`, `inspect`.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use serde_json::Value;

use common::{shared_binary, tool, Runner, Sandbox};

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn names(sb: &Sandbox, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
    args.extend_from_slice(extra);
    lines(&sb.ok(&args))
}

fn id_of(sb: &Sandbox, image: &str) -> String {
    sb.ok(&["inspect", "--format", "{{.FromImageID}}", image])
        .trim()
        .to_string()
}

#[test]
fn images_formats_and_filters() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "web",
            "FROM busybox\nLABEL tier=web\nRUN echo 1 > /v\n",
            &[],
            &[],
        );
        let old_web = id_of(&sb, "web");
        sb.build("db", "FROM busybox\nLABEL tier=db\n", &[], &[]);
        // Rebuilding `web` differently leaves the old image without a name.
        sb.build(
            "web",
            "FROM busybox\nLABEL tier=web\nRUN echo 2 > /v\n",
            &[],
            &[],
        );
        let web = id_of(&sb, "web");
        assert_ne!(web, old_web);

        assert_eq!(
            names(&sb, &[]),
            [
                "<none>:<none>",
                "localhost/busybox:latest",
                "localhost/db:latest",
                "localhost/web:latest"
            ],
            "{runner:?}"
        );
        // The old, now nameless `web` keeps its label.
        assert_eq!(
            names(&sb, &["--filter", "label=tier=web"]),
            ["<none>:<none>", "localhost/web:latest"]
        );
        assert_eq!(
            names(&sb, &["--filter", "label=tier"]),
            [
                "<none>:<none>",
                "localhost/db:latest",
                "localhost/web:latest"
            ]
        );
        assert_eq!(
            names(&sb, &["--filter", "label=tier=db"]),
            ["localhost/db:latest"]
        );
        assert_eq!(
            names(&sb, &["--filter", "reference=db"]),
            ["localhost/db:latest"]
        );
        assert_eq!(
            names(&sb, &["--filter", "reference=localhost/*"]),
            [
                "localhost/busybox:latest",
                "localhost/db:latest",
                "localhost/web:latest"
            ]
        );
        let dangling = sb.ok(&["images", "--no-trunc", "--filter", "dangling=true", "-q"]);
        assert_eq!(
            dangling.trim().trim_start_matches("sha256:"),
            old_web,
            "{runner:?}"
        );
        assert_eq!(
            names(&sb, &["--filter", "dangling=false"]).len(),
            3,
            "{runner:?}"
        );
        // Filters combine with AND.
        assert_eq!(
            names(
                &sb,
                &["--filter", "label=tier=web", "--filter", "dangling=false"]
            ),
            ["localhost/web:latest"]
        );
        assert!(names(
            &sb,
            &["--filter", "label=tier=db", "--filter", "dangling=true"]
        )
        .is_empty());

        let quiet = sb.ok(&["images", "-q"]);
        assert_eq!(quiet.lines().count(), 4);
        assert!(quiet.lines().all(|l| l.len() == 12), "{quiet}");
        assert!(quiet.contains(&web[..12]));

        // buildah's --json: one record per image, lower-case keys.
        let json: Value = serde_json::from_str(&sb.ok(&["images", "--json"])).unwrap();
        let rows = json.as_array().unwrap();
        assert_eq!(rows.len(), 4);
        let row = rows
            .iter()
            .find(|r| r["names"] == serde_json::json!(["localhost/web:latest"]))
            .unwrap();
        assert!(row["digest"].as_str().unwrap().starts_with("sha256:"));
        let one: Value = serde_json::from_str(
            sb.ok(&[
                "images",
                "--filter",
                "reference=web",
                "--format",
                "{{json .}}",
            ])
            .trim(),
        )
        .unwrap();
        assert_eq!(one["Tag"], "latest");

        let table = sb.ok(&["images"]);
        let header = table.lines().next().unwrap();
        for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
            assert!(header.contains(col), "{header}");
        }
        assert!(sb.ok(&["images", "--no-trunc"]).contains(&web));
    }
}

#[test]
fn tag_and_rmi_untag_before_deleting() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build("app", "FROM busybox\nRUN echo app > /app\n", &[], &[]);
        sb.build("sibling", "FROM busybox\nRUN echo s > /s\n", &[], &[]);
        let id = id_of(&sb, "app");
        sb.ok(&[
            "tag",
            "app",
            "app:v2",
            "registry.example.com:5000/team/app:1.0",
        ]);
        for name in [
            "app:v2",
            "localhost/app:v2",
            "registry.example.com:5000/team/app:1.0",
            &id[..12],
        ] {
            assert_eq!(id_of(&sb, name), id, "{runner:?}: {name}");
        }
        assert!(!sb.rbuild(&["tag", "nosuch", "x"]).status.success());
        // Only a fully qualified reference lists just the names it names
        // (libimage's query rule); a short or glob one lists every name.
        assert_eq!(
            names(&sb, &["--filter", "reference=localhost/app:v2"]),
            ["localhost/app:v2"]
        );
        assert_eq!(
            names(&sb, &["--filter", "reference=app:v*"]).len(),
            3,
            "buildah lists every name of a matching image"
        );
        assert_eq!(
            names(&sb, &["--filter", "reference=app"]),
            [
                "localhost/app:latest",
                "localhost/app:v2",
                "registry.example.com:5000/team/app:1.0"
            ]
        );

        // Several names: rmi NAME only untags.
        let out = sb.ok(&["rmi", "app:v2"]);
        assert_eq!(out.trim(), "untagged: localhost/app:v2");
        assert_eq!(id_of(&sb, "app"), id);
        // By ID while it has names: refused without --force.
        assert!(!sb.rbuild(&["rmi", &id]).status.success());
        sb.ok(&["rmi", "app"]);
        let out = sb.ok(&["rmi", "registry.example.com:5000/team/app:1.0"]);
        assert!(
            out.contains("untagged: registry.example.com:5000/team/app:1.0"),
            "{out}"
        );
        assert!(
            out.contains(&id),
            "{runner:?}: the last name deletes the image: {out}"
        );
        assert!(!sb.rbuild(&["inspect", &id]).status.success());
        assert!(!sb.rbuild(&["rmi", "app"]).status.success());

        // The base layers the deleted image shared still export.
        let oci = sb.push_oci("sibling");
        tool(
            "skopeo",
            &["inspect", &format!("oci:{}:latest", oci.display())],
        );
        sb.unpack("sibling");

        // --force removes an image with several names by ID.
        sb.ok(&["tag", "sibling", "sib2"]);
        let sib = id_of(&sb, "sibling");
        sb.ok(&["rmi", "--force", &sib]);
        assert!(
            names(&sb, &[]) == ["localhost/busybox:latest"],
            "{runner:?}"
        );

        // --prune removes dangling images; --all everything.
        sb.build("p", "FROM busybox\nRUN echo 1 > /p\n", &[], &[]);
        sb.build("p", "FROM busybox\nRUN echo 2 > /p\n", &[], &[]);
        assert_eq!(names(&sb, &["--filter", "dangling=true"]).len(), 1);
        sb.ok(&["rmi", "--prune"]);
        assert!(
            names(&sb, &["--filter", "dangling=true"]).is_empty(),
            "{runner:?}"
        );
        assert_eq!(names(&sb, &[]).len(), 2);
        let p = id_of(&sb, "p");
        sb.ok(&["rmi", "--all"]);
        assert!(names(&sb, &[]).is_empty(), "{runner:?}");
        assert!(!sb.rbuild(&["inspect", &p]).status.success());
        // What the build cache still names (layers, cached commits) may stay,
        // and whatever stays is intact.
        let problems = rbuild::store::Store::open(&sb.store())
            .unwrap()
            .fsck()
            .unwrap();
        assert!(problems.is_empty(), "{runner:?}: {problems:?}");
    }
}

#[test]
fn history_and_inspect_formats() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "h",
            "FROM busybox\nENV A=1\nRUN echo hi > /hi\nCMD [\"sh\"]\n",
            &[],
            &[],
        );
        let id = id_of(&sb, "h");
        let table = sb.ok(&["history", "h"]);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 5, "{runner:?}: header + 4 entries: {table}");
        assert!(rows[0].starts_with("ID"));
        assert!(rows[1].starts_with(&id[..12]), "{table}");
        assert!(rows[1].contains("CMD [\"sh\"]"));
        // Newest first; only the top entry has an image ID.
        assert!(
            rows[2].contains("<missing>") && rows[2].contains("echo hi > /hi"),
            "{table}"
        );
        assert!(
            rows[3].contains("ENV A=1") && rows[4].contains("ADD file:"),
            "{table}"
        );
        let json: Value = serde_json::from_str(&sb.ok(&["history", "--json", "h"])).unwrap();
        // podman's JSON keys: id, created, CreatedBy, size, comment.
        let entries = json.as_array().unwrap();
        assert_eq!(entries[0]["id"], id);
        assert_eq!(entries[1]["CreatedBy"], "/bin/sh -c echo hi > /hi");
        assert!(entries[1]["size"].as_u64().unwrap() > 0);
        assert_eq!(entries[2]["size"], 0);
        let by = sb.ok(&["history", "--format", "{{.CreatedBy}}", "h"]);
        assert_eq!(by.lines().nth(1), Some("/bin/sh -c echo hi > /hi"));
        assert_eq!(sb.ok(&["history", "-q", "h"]).lines().count(), 4);
        assert!(sb.ok(&["history", "--no-trunc", "h"]).contains(&id));

        let inspect: Value = serde_json::from_str(&sb.ok(&["inspect", "h"])).unwrap();
        assert_eq!(inspect["FromImageID"], id);
        assert_eq!(inspect["OCIv1"]["config"]["Cmd"], serde_json::json!(["sh"]));
        let digest = sb.ok(&["inspect", "--format", "{{.FromImageDigest}}", "h"]);
        let listed = sb.ok(&[
            "images",
            "--filter",
            "reference=h",
            "--format",
            "{{.Digest}}",
        ]);
        assert_eq!(digest.trim(), listed.trim(), "{runner:?}");
        // A missing field renders as Go's map lookup does; a broken template fails.
        let missing = sb.ok(&["inspect", "--format", "{{.NoSuchField}}", "h"]);
        assert_eq!(missing.trim(), "<no value>");
        assert!(!sb
            .rbuild(&["inspect", "--format", "{{.FromImageID", "h"])
            .status
            .success());
        let out = sb.rbuild(&["inspect", "nosuch"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
    }
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    for i in 0..40 {
        sb.ok(&[
            "tag",
            "busybox",
            &format!("name-with-a-long-repository-path-{i}"),
        ]);
    }
    for args in [
        &["images"][..],
        &["images", "--json"],
        &["inspect", "busybox"],
        &["history", "busybox"],
    ] {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // The read end is closed before rbuild writes: every write is EPIPE.
        drop(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        let write = unsafe { OwnedFd::from_raw_fd(fds[1]) };
        let out = std::process::Command::new(shared_binary())
            .arg("--root")
            .arg(sb.store())
            .arg("--runroot")
            .arg(sb.path().join("run"))
            .args(args)
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
