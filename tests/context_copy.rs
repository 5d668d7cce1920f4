//! COPY semantics through `copy_into`, on real directories: each case is a
//! rule of the Dockerfile reference or BuildKit's copy behaviour.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rbuild::build::context::SourceTree;
use rbuild::build::copy::{copy_inline, copy_into, CopyError, CopyOptions};
use rbuild::build::ignore::IgnoreMatcher;
use rbuild::layer::rootfs::Rootfs;

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: PathBuf,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        let root = dir.path().join("rootfs");
        fs::create_dir_all(&ctx).unwrap();
        fs::create_dir_all(&root).unwrap();
        Fixture {
            _dir: dir,
            ctx,
            root,
        }
    }

    fn file(&self, rel: &str, body: &str, mode: u32) -> PathBuf {
        let p = self.ctx.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn tree(&self) -> SourceTree {
        SourceTree::open_context(self.ctx.clone(), None).unwrap()
    }

    fn rootfs(&self) -> Rootfs {
        Rootfs::new(self.root.clone())
    }

    fn copy(&self, sources: &[&str], dest: &str, opts: &CopyOptions) -> Result<(), CopyError> {
        let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
        copy_into(&self.rootfs(), &self.tree(), &sources, dest, opts).map(|_| ())
    }

    fn img(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn read(&self, p: &str) -> String {
        fs::read_to_string(self.img(p)).unwrap()
    }

    fn listing(&self) -> Vec<String> {
        let mut out: Vec<String> = walkdir::WalkDir::new(&self.root)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let rel = e
                    .path()
                    .strip_prefix(&self.root)
                    .unwrap()
                    .display()
                    .to_string();
                if e.file_type().is_dir() {
                    format!("{rel}/")
                } else {
                    rel
                }
            })
            .collect();
        out.sort();
        out
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn opts() -> CopyOptions {
    CopyOptions::default()
}

#[test]
fn file_to_new_name_to_dir_and_into_existing_dir() {
    let f = Fixture::new();
    f.file("a.txt", "A", 0o644);
    f.copy(&["a.txt"], "/renamed", &opts()).unwrap();
    assert_eq!(f.read("/renamed"), "A");
    f.copy(&["a.txt"], "/newdir/", &opts()).unwrap();
    assert_eq!(f.read("/newdir/a.txt"), "A");
    // No trailing slash, but the destination exists as a directory.
    fs::create_dir(f.img("/existing")).unwrap();
    f.copy(&["a.txt"], "/existing", &opts()).unwrap();
    assert_eq!(f.read("/existing/a.txt"), "A");
}

#[test]
fn dest_is_relative_to_workdir() {
    let f = Fixture::new();
    f.file("a.txt", "A", 0o644);
    let o = CopyOptions {
        workdir: PathBuf::from("/app"),
        ..opts()
    };
    f.copy(&["a.txt"], ".", &o).unwrap();
    f.copy(&["a.txt"], "sub/b.txt", &o).unwrap();
    assert_eq!(f.read("/app/a.txt"), "A");
    assert_eq!(f.read("/app/sub/b.txt"), "A");
}

#[test]
fn directory_contents_not_the_directory() {
    let f = Fixture::new();
    f.file("dir/x", "x", 0o644);
    f.file("dir/sub/y", "y", 0o600);
    fs::set_permissions(f.ctx.join("dir"), fs::Permissions::from_mode(0o750)).unwrap();
    f.copy(&["dir"], "/dst", &opts()).unwrap();
    assert_eq!(f.listing(), ["dst/", "dst/sub/", "dst/sub/y", "dst/x"]);
    // A destination directory the copy creates is 0755 (BuildKit's
    // MkdirAll), not the source directory's mode.
    assert_eq!(fs::metadata(f.img("/dst")).unwrap().mode() & 0o7777, 0o755);
    // Below it, directories take the source's metadata.
    fs::set_permissions(f.ctx.join("dir/sub"), fs::Permissions::from_mode(0o700)).unwrap();
    f.copy(&["dir"], "/dst", &opts()).unwrap();
    assert_eq!(
        fs::metadata(f.img("/dst/sub")).unwrap().mode() & 0o7777,
        0o700
    );
    assert_eq!(
        fs::metadata(f.img("/dst/sub/y")).unwrap().mode() & 0o7777,
        0o600
    );
    // An existing destination keeps its own metadata.
    fs::create_dir(f.img("/keep")).unwrap();
    fs::set_permissions(f.img("/keep"), fs::Permissions::from_mode(0o711)).unwrap();
    f.copy(&["dir/"], "/keep/", &opts()).unwrap();
    assert_eq!(fs::metadata(f.img("/keep")).unwrap().mode() & 0o7777, 0o711);
    assert_eq!(f.read("/keep/sub/y"), "y");
}

#[test]
fn several_sources_need_a_slash() {
    let f = Fixture::new();
    f.file("a", "a", 0o644);
    f.file("b", "b", 0o644);
    let err = f.copy(&["a", "b"], "/dst", &opts()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "When using COPY with more than one source file, the destination must be a directory and end with a /: \"/dst\""
    );
    // A glob with several matches, too.
    assert!(matches!(
        f.copy(&["*"], "/dst", &opts()),
        Err(CopyError::DestNotDir { .. })
    ));
    f.copy(&["a", "b"], "/dst/", &opts()).unwrap();
    assert_eq!(f.listing(), ["dst/", "dst/a", "dst/b"]);
}

#[test]
fn globs_and_sources_matching_nothing() {
    let f = Fixture::new();
    f.file("one.txt", "1", 0o644);
    f.file("two.txt", "2", 0o644);
    f.file("three.md", "3", 0o644);
    f.copy(&["*.txt", "*.none"], "/out/", &opts()).unwrap();
    assert_eq!(f.listing(), ["out/", "out/one.txt", "out/two.txt"]);
    let err = f.copy(&["*.none"], "/out/", &opts()).unwrap_err();
    assert!(matches!(err, CopyError::NothingMatched { .. }), "{err}");
    let err = f
        .copy(&["missing.txt", "*.txt"], "/out/", &opts())
        .unwrap_err();
    assert!(
        err.to_string().contains("\"missing.txt\" not found"),
        "{err}"
    );
}

#[test]
fn ignored_files_are_not_copied() {
    let f = Fixture::new();
    f.file("app/main.rs", "m", 0o644);
    f.file("app/target/big", "b", 0o644);
    f.file("app/secret.env", "s", 0o644);
    f.file(".dockerignore", "app/target\n**/*.env\n", 0o644);
    f.copy(&["app"], "/src", &opts()).unwrap();
    assert_eq!(f.listing(), ["src/", "src/main.rs"]);
    assert!(f.copy(&["app/secret.env"], "/x", &opts()).is_err());
}

#[test]
fn mode_mtime_and_default_owner() {
    let f = Fixture::new();
    let p = f.file("bin/tool", "#!/bin/sh\n", 0o4755);
    let mtime = filetime_of(&p, 1_600_000_000, 123);
    if is_root() {
        std::os::unix::fs::lchown(&p, Some(1234), Some(5678)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o4755)).unwrap();
    }
    f.copy(&["bin/tool"], "/usr/local/bin/", &opts()).unwrap();
    let m = fs::metadata(f.img("/usr/local/bin/tool")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
    assert_eq!((m.mtime(), m.mtime_nsec()), mtime);
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (0, 0));
        let parent = fs::metadata(f.img("/usr/local")).unwrap();
        assert_eq!(
            (parent.uid(), parent.gid(), parent.mode() & 0o7777),
            (0, 0, 0o755)
        );
    }
}

#[test]
fn chown_and_chmod_apply_to_everything_copied_and_created() {
    if !is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let f = Fixture::new();
    f.file("d/f", "f", 0o600);
    f.file("d/s/g", "g", 0o600);
    let o = CopyOptions {
        chown: Some((1000, 1001)),
        chmod: Some(0o640),
        ..opts()
    };
    f.copy(&["d"], "/new/parent/dst", &o).unwrap();
    for p in [
        "/new",
        "/new/parent",
        "/new/parent/dst",
        "/new/parent/dst/s",
    ] {
        let m = fs::metadata(f.img(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1001), "{p}");
    }
    // Created parents are 0755; copied dirs and files take --chmod.
    assert_eq!(fs::metadata(f.img("/new")).unwrap().mode() & 0o7777, 0o755);
    assert_eq!(
        fs::metadata(f.img("/new/parent/dst/s")).unwrap().mode() & 0o7777,
        0o640
    );
    let m = fs::metadata(f.img("/new/parent/dst/s/g")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1001, 0o640));
}

#[test]
fn symlinks_as_symlinks_and_top_level_link_followed() {
    let f = Fixture::new();
    f.file("d/real", "r", 0o644);
    symlink("real", f.ctx.join("d/rel")).unwrap();
    symlink("/etc/passwd", f.ctx.join("d/abs")).unwrap();
    symlink("d/real", f.ctx.join("top")).unwrap();
    f.copy(&["d"], "/d", &opts()).unwrap();
    assert_eq!(fs::read_link(f.img("/d/rel")).unwrap(), Path::new("real"));
    assert_eq!(
        fs::read_link(f.img("/d/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    // The source itself is followed: COPY top copies the file's bytes.
    f.copy(&["top"], "/t", &opts()).unwrap();
    let m = fs::symlink_metadata(f.img("/t")).unwrap();
    assert!(m.is_file());
    assert_eq!(f.read("/t"), "r");
}

#[test]
fn hardlinks_among_copied_files_stay_hardlinks() {
    let f = Fixture::new();
    f.file("h/a", "shared", 0o644);
    fs::hard_link(f.ctx.join("h/a"), f.ctx.join("h/b")).unwrap();
    fs::create_dir(f.ctx.join("h/sub")).unwrap();
    fs::hard_link(f.ctx.join("h/a"), f.ctx.join("h/sub/c")).unwrap();
    f.copy(&["h"], "/h", &opts()).unwrap();
    let ino = |p: &str| fs::metadata(f.img(p)).unwrap().ino();
    assert_eq!(ino("/h/a"), ino("/h/b"));
    assert_eq!(ino("/h/a"), ino("/h/sub/c"));
    assert_eq!(fs::metadata(f.img("/h/a")).unwrap().nlink(), 3);
}

#[test]
fn parents_keeps_paths_and_honours_the_pivot() {
    let f = Fixture::new();
    f.file("x/y/file", "1", 0o644);
    f.file("x/z/file", "2", 0o644);
    f.file("p/q/r", "3", 0o644);
    let o = CopyOptions {
        parents: true,
        ..opts()
    };
    f.copy(&["x/*/file", "p/./q/r"], "/dst/", &o).unwrap();
    assert_eq!(
        f.listing(),
        [
            "dst/",
            "dst/q/",
            "dst/q/r",
            "dst/x/",
            "dst/x/y/",
            "dst/x/y/file",
            "dst/x/z/",
            "dst/x/z/file"
        ]
    );
}

#[test]
fn exclude_patterns_apply_inside_sources() {
    let f = Fixture::new();
    f.file("src/a.rs", "", 0o644);
    f.file("src/a_test.rs", "", 0o644);
    f.file("src/m/b_test.rs", "", 0o644);
    let o = CopyOptions {
        exclude: vec!["**/*_test.rs".to_string()],
        ..opts()
    };
    f.copy(&["src"], "/s", &o).unwrap();
    assert_eq!(f.listing(), ["s/", "s/a.rs", "s/m/"]);
}

#[test]
fn exclude_filters_wildcard_matches_but_not_named_sources() {
    let f = Fixture::new();
    f.file("home.txt", "", 0o644);
    f.file("homer.md", "", 0o644);
    f.file("notes.txt", "", 0o644);
    let o = CopyOptions {
        exclude: vec!["*.txt".to_string()],
        ..opts()
    };
    // The reference's example: `COPY --exclude=*.txt hom* /mydir/`.
    f.copy(&["hom*"], "/mydir/", &o).unwrap();
    assert_eq!(f.listing(), ["mydir/", "mydir/homer.md"]);
    // Named explicitly, a file is copied even if a pattern matches it.
    f.copy(&["notes.txt"], "/n/", &o).unwrap();
    assert!(f.img("/n/notes.txt").exists());
    // Everything a wildcard found was excluded: nothing to do, no error.
    f.copy(&["*.txt"], "/none/", &o).unwrap();
    assert!(!f.img("/none/home.txt").exists());
}

#[test]
fn copy_from_an_image_keeps_owners() {
    if !is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let f = Fixture::new();
    let other = tempfile::tempdir().unwrap();
    let bin = other.path().join("opt/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(bin.join("app"), "app").unwrap();
    std::os::unix::fs::lchown(bin.join("app"), Some(42), Some(43)).unwrap();
    let tree = SourceTree::image(other.path().to_path_buf(), "stage \"builder\"");
    copy_into(
        &f.rootfs(),
        &tree,
        &["/opt/bin".to_string()],
        "/usr/bin/",
        &opts(),
    )
    .unwrap();
    let m = fs::metadata(f.img("/usr/bin/app")).unwrap();
    assert_eq!((m.uid(), m.gid()), (42, 43));
    let err = copy_into(&f.rootfs(), &tree, &["/nope".to_string()], "/", &opts()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "source \"/nope\" not found in stage \"builder\""
    );
}

#[test]
fn hostile_destination_symlinks_stay_inside_the_rootfs() {
    let f = Fixture::new();
    f.file("payload", "p", 0o644);
    f.file("tree/etc/x", "x", 0o644);
    let outside = f._dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    symlink("/", f.img("/etc")).unwrap();
    symlink(&outside, f.img("/evil")).unwrap();
    symlink("../../../../..", f.img("/up")).unwrap();
    f.copy(&["payload"], "/etc/passwd", &opts()).unwrap();
    assert_eq!(f.read("/passwd"), "p");
    f.copy(&["payload"], "/up/up/p2", &opts()).unwrap();
    assert_eq!(f.read("/p2"), "p");
    f.copy(&["payload"], "/evil/", &opts()).unwrap();
    assert!(fs::read_dir(&outside).unwrap().next().is_none());
    // A directory on top of a symlinked directory writes through it (as
    // `/bin -> usr/bin` must keep working).
    f.copy(&["tree"], "/", &opts()).unwrap();
    assert!(fs::symlink_metadata(f.img("/etc"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(f.read("/x"), "x");
}

#[test]
fn a_file_cannot_replace_a_directory() {
    let f = Fixture::new();
    f.file("a", "a", 0o644);
    fs::create_dir_all(f.img("/target/a")).unwrap();
    let err = f.copy(&["a"], "/target/", &opts()).unwrap_err();
    assert!(matches!(err, CopyError::OverDirectory { .. }), "{err}");
    // Nor a directory a file.
    f.file("t/a/x", "x", 0o644);
    fs::remove_dir(f.img("/target/a")).unwrap();
    fs::write(f.img("/target/a"), b"file").unwrap();
    let err = f.copy(&["t"], "/target", &opts()).unwrap_err();
    assert!(matches!(err, CopyError::DirOverNonDir { .. }), "{err}");
}

#[test]
fn ignore_exception_reincludes_child_of_ignored_dir() {
    let f = Fixture::new();
    f.file("docs/a.md", "", 0o644);
    f.file("docs/README.md", "r", 0o644);
    f.file(".dockerignore", "docs\n!docs/README.md\n", 0o644);
    let ig = IgnoreMatcher::load_for_build(&f.ctx, None).unwrap();
    assert!(ig.has_exceptions());
    f.copy(&["."], "/all/", &opts()).unwrap();
    assert_eq!(
        f.listing(),
        [
            "all/",
            "all/.dockerignore",
            "all/docs/",
            "all/docs/README.md"
        ]
    );
}

#[test]
fn heredoc_documents() {
    let f = Fixture::new();
    let r = f.rootfs();
    copy_inline(&r, "EOF", &b"hello\n"[..], "/etc/motd", &opts()).unwrap();
    assert_eq!(f.read("/etc/motd"), "hello\n");
    assert_eq!(
        fs::metadata(f.img("/etc/motd")).unwrap().mode() & 0o7777,
        0o664
    );
    copy_inline(
        &r,
        "script.sh",
        &b"#!/bin/sh\n"[..],
        "/bin/",
        &CopyOptions {
            chmod: Some(0o755),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(
        fs::metadata(f.img("/bin/script.sh")).unwrap().mode() & 0o7777,
        0o755
    );
    // A hostile name cannot leave the destination directory.
    copy_inline(&r, "../../x", &b"x"[..], "/d/", &opts()).unwrap();
    assert_eq!(f.read("/d/x"), "x");
}

/// Sets a file's mtime and returns it as (secs, nanos).
fn filetime_of(p: &Path, secs: i64, nanos: i64) -> (i64, i64) {
    let ts = nix::sys::time::TimeSpec::new(secs, nanos);
    nix::sys::stat::utimensat(
        None,
        p,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    (secs, nanos)
}
