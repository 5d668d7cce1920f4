//! RUN end to end: what a step changes becomes its layer (whiteouts
//! included), the step sees the image's user, workdir and env, and the
//! sandbox shows only the step — as root and rootless.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::{files_containing, oci_layer_entries, text, Runner, Sandbox};

#[test]
fn run_changes_become_layers_with_whiteouts() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "changed",
            "FROM busybox\n\
             RUN mkdir -p /d/sub /gone /opq && echo a > /d/f && echo x > /gone/x \\\n\
                 && echo del > /delme && echo keep > /keep && echo old > /opq/old\n\
             RUN echo changed > /d/f && rm /delme && rm -rf /gone && rmdir /d/sub \\\n\
                 && mkdir /newdir && chown 1000:1000 /keep /newdir \\\n\
                 && rm -rf /opq && mkdir /opq && echo new > /opq/new\n\
             RUN test ! -e /delme && test ! -e /gone && test ! -e /opq/old \\\n\
                 && test \"$(cat /d/f)\" = changed && touch /verified\n",
            &[],
            &[],
        );
        let root = sb.unpack("changed");
        assert!(root.join("verified").exists(), "{runner:?}");
        assert_eq!(fs::read_to_string(root.join("d/f")).unwrap(), "changed\n");
        for gone in ["delme", "gone", "d/sub", "opq/old"] {
            assert!(
                !root.join(gone).exists(),
                "{runner:?}: /{gone} should be deleted"
            );
        }
        assert_eq!(fs::read_to_string(root.join("opq/new")).unwrap(), "new\n");
        let keep = fs::metadata(root.join("keep")).unwrap();
        assert_eq!((keep.uid(), keep.gid()), (1000, 1000), "{runner:?}");
        let newdir = fs::metadata(root.join("newdir")).unwrap();
        assert_eq!((newdir.uid(), newdir.gid()), (1000, 1000), "{runner:?}");

        // The second RUN's layer holds exactly the change, as OCI whiteouts.
        let oci = sb.push_oci("changed");
        let layers = oci_layer_entries(&oci);
        assert_eq!(
            layers.len(),
            4,
            "{runner:?}: base + 3 RUN layers: {layers:?}"
        );
        let second = &layers[2];
        for wh in ["d/sub/", ".wh.delme", ".wh.gone", "opq/.wh..wh..opq"] {
            let wanted = wh.trim_end_matches('/');
            let ok = if wh == "d/sub/" {
                second.iter().any(|e| e == "d/.wh.sub")
            } else {
                second.iter().any(|e| e == wanted)
            };
            assert!(ok, "{runner:?}: whiteout for {wh} missing in {second:?}");
        }
        assert!(second.iter().any(|e| e == "keep"), "{second:?}");
        assert!(
            !second
                .iter()
                .any(|e| e.starts_with("bin/") || e.starts_with("etc/hosts")),
            "{runner:?}: the layer holds only the change: {second:?}"
        );
        // The last RUN wrote only /verified.
        let third: Vec<&str> = layers[3]
            .iter()
            .map(|s| s.trim_end_matches('/'))
            .filter(|e| !e.is_empty() && *e != ".")
            .collect();
        assert_eq!(third, ["verified"], "{runner:?}");
    }
}

#[test]
fn run_sees_user_workdir_env_and_heredoc() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let out = sb.build(
            "usered",
            "FROM busybox\n\
             ENV GREETING=hello\n\
             ARG FROMARG=argval\n\
             WORKDIR /work/dir\n\
             RUN echo \"pwd=$(pwd) greeting=$GREETING arg=$FROMARG\"\n\
             RUN <<EOF\n\
             echo one > /h1\n\
             echo two >> /h1\n\
             EOF\n\
             USER 1000\n\
             RUN id && id -u > /tmp/uid\n",
            &[],
            &[],
        );
        assert!(
            out.contains("pwd=/work/dir greeting=hello arg=argval"),
            "{runner:?}: {out}"
        );
        assert!(
            out.contains("uid=1000(app) gid=1000(app)"),
            "{runner:?}: {out}"
        );
        let root = sb.unpack("usered");
        assert_eq!(fs::read_to_string(root.join("h1")).unwrap(), "one\ntwo\n");
        assert!(root.join("work/dir").is_dir());
        let uid = fs::metadata(root.join("tmp/uid")).unwrap();
        assert_eq!((uid.uid(), uid.gid()), (1000, 1000), "{runner:?}");
        assert_eq!(fs::read_to_string(root.join("tmp/uid")).unwrap(), "1000\n");
    }
}

#[test]
fn failing_run_reports_the_step_and_tags_nothing() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let ctx = sb.context(
            "ctx",
            &[(
                "Containerfile",
                "FROM busybox\n# a comment\nRUN echo before && exit 3\nRUN touch /never\n",
            )],
        );
        let out = sb.fails(&["bud", "-t", "broken", ctx.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("error building at STEP \"RUN echo before && exit 3\": exit status 3"),
            "{runner:?}: {stderr}"
        );
        assert!(stderr.contains("Containerfile:3"), "{runner:?}: {stderr}");
        assert_eq!(stderr.matches("exit status 3").count(), 1, "{stderr}");
        assert!(text(&out).contains("before"));
        assert!(!sb.rbuild(&["inspect", "broken"]).status.success());
        let images = sb.ok(&["images", "--format", "{{.Repository}}"]);
        assert_eq!(images.trim(), "localhost/busybox", "{runner:?}");
    }
}

#[test]
fn sandbox_shows_only_the_step() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let out = sb.build(
            "isolated",
            "FROM busybox\n\
             RUN echo FDS $(ls /proc/self/fd) END\n\
             RUN ps -o pid,args | sed 's/^/PS /'\n\
             RUN --network=none sed 's/^/NET /' /proc/net/dev\n",
            &[],
            &["--no-cache"],
        );
        // `ls` opens one fd of its own to read the directory.
        let fds: Vec<&str> = out
            .lines()
            .find_map(|l| l.strip_prefix("FDS "))
            .and_then(|l| l.strip_suffix(" END"))
            .unwrap_or_else(|| panic!("{out}"))
            .split(' ')
            .collect();
        assert!(
            fds.starts_with(&["0", "1", "2"]) && fds.len() <= 4,
            "{runner:?}: {fds:?}"
        );
        let ps: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("PS "))
            .skip(1)
            .collect();
        assert!(
            ps.len() <= 3,
            "{runner:?}: only the step's processes: {ps:?}"
        );
        assert!(
            // `[exe]`: busybox sh starts applets by re-executing
            // /proc/self/exe, so `sed` can be caught mid-exec under that name.
            ps.iter().all(|p| p.contains("ps -o pid,args")
                || p.contains("sed")
                || p.trim_start().ends_with("[exe]")),
            "{ps:?}"
        );
        let ifaces: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("NET "))
            .skip(2)
            .map(|l| l.split(':').next().unwrap().trim())
            .collect();
        assert_eq!(ifaces, ["lo"], "{runner:?}: {out}");

        // `bud --network none` is the default for every RUN.
        let out = sb.build(
            "isolated2",
            "FROM busybox\nRUN sed 's/^/NET /' /proc/net/dev\n",
            &[],
            &["--network", "none"],
        );
        let n = out.lines().filter(|l| l.starts_with("NET ")).count();
        assert_eq!(n, 3, "{runner:?}: header lines + lo only: {out}");
    }
}

#[test]
fn cache_mount_persists_and_stays_out_of_the_layer() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let file = "FROM busybox\n\
                    ARG N\n\
                    RUN --mount=type=cache,target=/cache echo $N >> /cache/log && cp /cache/log /out\n";
        sb.build("cached", file, &[], &["--build-arg", "N=first"]);
        sb.build("cached", file, &[], &["--build-arg", "N=second"]);
        let root = sb.unpack("cached");
        assert_eq!(
            fs::read_to_string(root.join("out")).unwrap(),
            "first\nsecond\n",
            "{runner:?}"
        );
        assert!(!root.join("cache/log").exists(), "{runner:?}");
    }
}

#[test]
fn secret_bytes_reach_no_blob() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let secret = format!("s3cr3t-{}-{:?}", std::process::id(), runner);
        let src = sb.write("secret.txt", &secret);
        let out = sb.build(
            "secreted",
            "FROM busybox\n\
             RUN --mount=type=secret,id=s cat /run/secrets/s && wc -c < /run/secrets/s > /len\n",
            &[],
            &["--secret", &format!("id=s,src={}", src.display())],
        );
        assert!(
            out.contains(&secret),
            "{runner:?}: the step read the secret: {out}"
        );
        let root = sb.unpack("secreted");
        assert_eq!(
            fs::read_to_string(root.join("len")).unwrap().trim(),
            secret.len().to_string()
        );
        assert!(!root.join("run/secrets/s").exists());
        let oci = sb.path().join("oci-export");
        sb.ok(&[
            "push",
            "-q",
            "secreted",
            &format!("oci:{}:x", oci.display()),
        ]);
        let leaks = files_containing(&sb.store(), secret.as_bytes());
        assert!(
            leaks.is_empty(),
            "{runner:?}: secret in the store: {leaks:?}"
        );
        let leaks = files_containing(&oci, secret.as_bytes());
        assert!(
            leaks.is_empty(),
            "{runner:?}: secret in the export: {leaks:?}"
        );
        // A secret from the environment: the step reads it at the mount, and
        // the variable itself is not in the step's environment.
        let out = sb.rbuild_env(
            &[
                "bud",
                "-t",
                "envsecret",
                "--secret",
                "id=e,env=RB_TEST_SECRET",
                sb.context(
                    "envctx",
                    &[(
                        "Containerfile",
                        "FROM busybox\n\
                         RUN --mount=type=secret,id=e echo \"got=$(cat /run/secrets/e) env=${RB_TEST_SECRET:-unset}\"\n",
                    )],
                )
                .to_str()
                .unwrap(),
            ],
            &[("RB_TEST_SECRET", &secret)],
        );
        common::assert_success(&out, &["bud", "--secret", "id=e,env=..."]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout
                .lines()
                .any(|l| l == format!("got={secret} env=unset")),
            "{runner:?}: {stdout}"
        );
        let leaks = files_containing(&sb.store(), secret.as_bytes());
        assert!(
            leaks.is_empty(),
            "{runner:?}: env secret in the store: {leaks:?}"
        );

        // A secret written into the image on purpose is found: the scan works.
        sb.build(
            "leaky",
            "FROM busybox\nRUN --mount=type=secret,id=s cp /run/secrets/s /leaked\n",
            &[],
            &["--secret", &format!("id=s,src={}", src.display())],
        );
        let leaky = sb.push_oci("leaky");
        assert!(!files_containing(&leaky, secret.as_bytes()).is_empty());
    }
}

#[test]
fn run_layers_keep_links_fifos_modes_and_renames() {
    use std::os::unix::fs::FileTypeExt;
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "special",
            "FROM busybox\n\
             RUN mkdir -p /lower/dir && echo l > /lower/dir/f && echo m > /lower/mode\n\
             RUN echo h > /h1 && ln /h1 /h2 && ln -s /nowhere /dangling && mkfifo /fifo \\\n\
                 && chmod 4755 /lower/mode && mv /lower/dir /lower/moved && chmod 0600 /etc/group\n\
             RUN test \"$(stat -c %h /h1)\" = 2 && test -p /fifo && test ! -e /lower/dir \\\n\
                 && test \"$(cat /lower/moved/f)\" = l && touch /checked\n",
            &[],
            &[],
        );
        let root = sb.unpack("special");
        assert!(root.join("checked").exists(), "{runner:?}");
        let h1 = fs::metadata(root.join("h1")).unwrap();
        let h2 = fs::metadata(root.join("h2")).unwrap();
        assert_eq!(h1.ino(), h2.ino(), "{runner:?}: hardlink made in RUN kept");
        assert_eq!(
            fs::read_link(root.join("dangling")).unwrap().to_str(),
            Some("/nowhere")
        );
        assert!(fs::symlink_metadata(root.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(
            fs::metadata(root.join("lower/mode")).unwrap().mode() & 0o7777,
            0o4755
        );
        assert_eq!(
            fs::metadata(root.join("etc/group")).unwrap().mode() & 0o7777,
            0o600
        );
        assert!(
            !root.join("lower/dir").exists(),
            "{runner:?}: renamed dir still there"
        );
        assert_eq!(
            fs::read_to_string(root.join("lower/moved/f")).unwrap(),
            "l\n"
        );
        // A mode change alone copies the file up: it is in the layer, whole.
        let oci = sb.push_oci("special");
        let layers = oci_layer_entries(&oci);
        let second = &layers[2];
        for want in [
            "lower/mode",
            "etc/group",
            "h1",
            "h2",
            "fifo",
            "lower/.wh.dir",
            "lower/moved/f",
        ] {
            assert!(
                second.iter().any(|e| e == want),
                "{runner:?}: {want} not in {second:?}"
            );
        }
        assert!(!second.iter().any(|e| e == "etc/passwd"), "{second:?}");
    }
}

#[test]
fn cache_mount_id_owner_and_mode() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "cacheids",
            "FROM busybox\n\
             RUN --mount=type=cache,id=shared,target=/a,uid=1000,gid=1000,mode=0750 \\\n\
                 stat -c '%u:%g:%a' /a > /stat-a && echo x > /a/f\n\
             RUN --mount=type=cache,id=shared,target=/b cat /b/f > /from-b\n\
             RUN --mount=type=cache,target=/c ls -A /c > /c-listing\n",
            &[],
            &[],
        );
        let root = sb.unpack("cacheids");
        assert_eq!(
            fs::read_to_string(root.join("stat-a")).unwrap(),
            "1000:1000:750\n",
            "{runner:?}"
        );
        // The same id is the same cache, whatever the target.
        assert_eq!(
            fs::read_to_string(root.join("from-b")).unwrap(),
            "x\n",
            "{runner:?}"
        );
        // Another target without an id is another cache.
        assert_eq!(
            fs::read_to_string(root.join("c-listing")).unwrap(),
            "",
            "{runner:?}"
        );
    }
}

#[test]
fn long_and_unicode_names_survive_the_layer_tar() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let seg = "x".repeat(200);
        let deep = format!("/deep/{seg}/{seg}/{seg}/{seg}");
        sb.build(
            "names",
            &format!(
                "FROM busybox\n\
                 RUN mkdir -p \"$(dirname {deep})\" && echo long > \"{deep}\" \\\n\
                     && echo sp > \"/with space é 日本\" && ln -s \"{deep}\" /longlink \\\n\
                     && ln \"/with space é 日本\" /hl-uni\n"
            ),
            &[],
            &[],
        );
        let root = sb.unpack("names");
        let deep_rel = deep.trim_start_matches('/');
        assert_eq!(
            fs::read_to_string(root.join(deep_rel)).unwrap(),
            "long\n",
            "{runner:?}"
        );
        assert_eq!(
            fs::read_to_string(root.join("with space é 日本")).unwrap(),
            "sp\n"
        );
        assert_eq!(
            fs::read_link(root.join("longlink")).unwrap().to_str(),
            Some(deep.as_str())
        );
        let a = fs::metadata(root.join("with space é 日本")).unwrap();
        let b = fs::metadata(root.join("hl-uni")).unwrap();
        assert_eq!(a.ino(), b.ino(), "{runner:?}");
    }
}

#[test]
fn from_scratch_run_leaves_no_mount_point_stubs() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        let busybox = fs::read("/bin/busybox").unwrap();
        let ctx = sb.context(
            "ctx",
            &[(
                "Containerfile",
                "FROM scratch\n\
                 COPY busybox /bin/busybox\n\
                 COPY busybox /bin/sh\n\
                 RUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/made/by/run\"]\n\
                 RUN /bin/busybox touch /made/shell\n",
            )],
        );
        sb.write("ctx/busybox", &busybox);
        std::process::Command::new("chmod")
            .args(["0755", ctx.join("busybox").to_str().unwrap()])
            .status()
            .unwrap();
        sb.ok(&["bud", "-t", "scratchy", ctx.to_str().unwrap()]);
        let root = sb.unpack("scratchy");
        let mut all: Vec<String> = walkdir::WalkDir::new(&root)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                e.unwrap()
                    .path()
                    .strip_prefix(&root)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        all.sort();
        assert_eq!(
            all,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "made",
                "made/by",
                "made/by/run",
                "made/shell"
            ],
            "{runner:?}: only what the steps made"
        );
    }
}
