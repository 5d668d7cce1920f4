//! Cross-checks against the real tools: ADD of archives made by GNU tar
//! (pax and gnu formats, every compressor's CLI) must give the same tree as
//! `tar -xp`, and COPY --from a rootfs the same tree as `cp -a`, entry by
//! entry (type, mode, owner, size, bytes, symlink target, mtime, hard links).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rbuild::build::add::{add_into, AddOptions};
use rbuild::build::context::SourceTree;
use rbuild::build::copy::{copy_into, CopyOptions};
use rbuild::build::ignore::IgnoreMatcher;
use rbuild::digest::Digest;
use rbuild::layer::rootfs::Rootfs;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn set_mtime(p: &Path, secs: i64, nanos: i64) {
    let ts = nix::sys::time::TimeSpec::new(secs, nanos);
    nix::sys::stat::utimensat(
        None,
        p,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// A tree with the awkward cases: modes, owners, long and odd names,
/// symlinks (relative, absolute, dangling), hard links, an empty dir.
fn make_tree(dir: &Path) {
    let long = "l".repeat(120);
    let files: &[(&str, u32)] = &[
        ("a/plain.txt", 0o644),
        ("a/exec", 0o755),
        ("a/b/deep/file with spaces", 0o600),
        ("unicode/héllo-wörld.txt", 0o640),
    ];
    for (p, mode) in files {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("content of {p}")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).unwrap();
    }
    let long_dir = dir.join("a").join(&long);
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join(format!("{long}.dat")), vec![7u8; 70_000]).unwrap();
    fs::create_dir_all(dir.join("empty")).unwrap();
    fs::set_permissions(dir.join("a/b"), fs::Permissions::from_mode(0o2750)).unwrap();
    // tmpfs and ext4 both keep user.* xattrs; if this one cannot, no
    // entry has xattrs and the comparison still holds.
    let _ = xattr::set(dir.join("a/plain.txt"), "user.rbuild.test", b"kept");
    let _ = xattr::set(dir.join("a/b"), "user.rbuild.dir", b"d");
    symlink("plain.txt", dir.join("a/rel-link")).unwrap();
    symlink("/etc/os-release", dir.join("a/abs-link")).unwrap();
    symlink("../nowhere", dir.join("a/dangling")).unwrap();
    fs::hard_link(dir.join("a/exec"), dir.join("a/b/exec-hardlink")).unwrap();
    if is_root() {
        std::os::unix::fs::lchown(dir.join("a/exec"), Some(1000), Some(1000)).unwrap();
        std::os::unix::fs::lchown(dir.join("a/rel-link"), Some(2), Some(3)).unwrap();
        std::os::unix::fs::lchown(dir.join("unicode"), Some(65534), Some(65534)).unwrap();
        let suid = dir.join("a/suid");
        fs::write(&suid, b"s").unwrap();
        fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    }
    nix::unistd::mkfifo(
        &dir.join("a/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    if is_root() {
        // /dev/null's numbers: mknod works as real root.
        nix::sys::stat::mknod(
            &dir.join("a/null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
    }
    // A sparse file: holes around a few bytes of data.
    let sparse = fs::File::create(dir.join("a/sparse.img")).unwrap();
    sparse.set_len(6 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"middle", 2 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"end", (6 << 20) - 3).unwrap();
    drop(sparse);
    if is_root() {
        // Beyond ustar's 7 octal digits: pax records or base-256 fields.
        std::os::unix::fs::lchown(dir.join("a/sparse.img"), Some(3_000_000), Some(3_000_001))
            .unwrap();
    }
    for (i, e) in walkdir::WalkDir::new(dir)
        .contents_first(true)
        .into_iter()
        .enumerate()
    {
        let e = e.unwrap();
        set_mtime(e.path(), 1_600_000_000 + i as i64 * 17, 123_456_789);
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    owner: (u32, u32),
    size: u64,
    content: Option<Digest>,
    link: Option<PathBuf>,
    mtime: i64,
    mtime_ns: i64,
    /// The first path (sorted) sharing this inode, for files with nlink > 1.
    hardlink_of: Option<String>,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn snapshot(root: &Path, with_owner: bool) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut first_of_inode: HashMap<u64, String> = HashMap::new();
    let mut entries: Vec<_> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by(|a, b| a.path().cmp(b.path()));
    for e in entries {
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let ft = m.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_char_device() {
            "char"
        } else {
            "file"
        };
        let hardlink_of = if ft.is_file() && m.nlink() > 1 {
            let first = first_of_inode
                .entry(m.ino())
                .or_insert_with(|| rel.clone())
                .clone();
            (first != rel).then_some(first)
        } else {
            None
        };
        out.insert(
            rel,
            Entry {
                kind,
                mode: if ft.is_symlink() {
                    0
                } else {
                    m.mode() & 0o7777
                },
                owner: if with_owner {
                    (m.uid(), m.gid())
                } else {
                    (0, 0)
                },
                size: if ft.is_file() { m.size() } else { m.rdev() },
                content: ft
                    .is_file()
                    .then(|| Digest::of(&fs::read(e.path()).unwrap())),
                link: ft.is_symlink().then(|| fs::read_link(e.path()).unwrap()),
                mtime: m.mtime(),
                mtime_ns: m.mtime_nsec(),
                hardlink_of,
                xattrs: user_xattrs(e.path()),
            },
        );
    }
    out
}

fn xattr_args(format: &str) -> &'static [&'static str] {
    if format == "pax" {
        &["--xattrs", "--xattrs-include=user.*"]
    } else {
        &[]
    }
}

fn user_xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = xattr::list(p)
        .map(|names| {
            names
                .filter_map(|n| {
                    let n = n.to_string_lossy().into_owned();
                    n.starts_with("user.").then(|| {
                        (
                            n.clone(),
                            xattr::get(p, &n).ok().flatten().unwrap_or_default(),
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn assert_same(ours: &BTreeMap<String, Entry>, reference: &BTreeMap<String, Entry>, what: &str) {
    let ours_keys: Vec<_> = ours.keys().collect();
    let ref_keys: Vec<_> = reference.keys().collect();
    assert_eq!(ours_keys, ref_keys, "{what}: different entries");
    for (k, v) in reference {
        assert_eq!(&ours[k], v, "{what}: entry {k:?} differs");
    }
}

#[test]
fn add_matches_gnu_tar_extraction_for_every_format_and_compressor() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    make_tree(&src);
    for format in ["pax", "gnu"] {
        let tarball = work.path().join(format!("t-{format}.tar"));
        run(Command::new("tar")
            .arg(format!("--format={format}"))
            // xattrs need pax records: with them GNU tar would write pax
            // sparse members even in gnu format, and the old GNU sparse
            // type would go untested.
            .args(xattr_args(format))
            .arg("--sparse")
            .arg("-cf")
            .arg(&tarball)
            .arg("-C")
            .arg(&src)
            .arg("."));
        // The archive really exercises sparse members and pax times.
        let bytes = fs::read(&tarball).unwrap();
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        if format == "pax" {
            assert!(
                has(b"GNU.sparse.major=1"),
                "pax archive without a 1.0 sparse member"
            );
            assert!(has(b"mtime=16000"), "pax archive without pax mtimes");
        } else {
            let mut archive = tar::Archive::new(&bytes[..]);
            let sparse = archive
                .entries()
                .unwrap()
                .filter(|e| e.as_ref().unwrap().header().entry_type() == tar::EntryType::GNUSparse)
                .count();
            assert_eq!(sparse, 1, "gnu archive without a sparse member");
        }
        let reference = work.path().join(format!("ref-{format}"));
        fs::create_dir(&reference).unwrap();
        run(Command::new("tar")
            .args(xattr_args(format))
            .arg("-xpf")
            .arg(&tarball)
            .arg("-C")
            .arg(&reference));
        let want = snapshot(&reference, true);
        for (tool, args) in [
            ("cat", &[][..]),
            ("gzip", &["-c"][..]),
            ("bzip2", &["-c"][..]),
            ("xz", &["-c"][..]),
            ("zstd", &["-q", "-c"][..]),
        ] {
            let ctx = work.path().join(format!("ctx-{format}-{tool}"));
            fs::create_dir(&ctx).unwrap();
            let out = Command::new(tool)
                .args(args)
                .arg(&tarball)
                .output()
                .unwrap();
            assert!(out.status.success());
            // A name that says nothing: the content decides.
            fs::write(ctx.join("blob"), out.stdout).unwrap();
            let root = work.path().join(format!("root-{format}-{tool}"));
            fs::create_dir(&root).unwrap();
            let tree = SourceTree::context(ctx, IgnoreMatcher::default());
            add_into(
                &Rootfs::new(root.clone()),
                &tree,
                &["blob".to_string()],
                "/x",
                &AddOptions::default(),
            )
            .unwrap();
            assert_same(
                &snapshot(&root.join("x"), true),
                &want,
                &format!("{format} via {tool}"),
            );
        }
    }
}

#[test]
fn copy_from_a_rootfs_matches_cp_a() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    make_tree(&src);
    let reference = work.path().join("ref");
    run(Command::new("cp").arg("-a").arg(&src).arg(&reference));
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    let tree = SourceTree::image(src.clone(), "stage \"src\"");
    copy_into(
        &Rootfs::new(root.clone()),
        &tree,
        &["/".to_string()],
        "/copy/",
        &CopyOptions::default(),
    )
    .unwrap();
    // The top directory itself is created by the copy (0755, now) and is
    // not in either snapshot: everything below it must be identical.
    let want = snapshot(&reference, true);
    let got = snapshot(&root.join("copy"), true);
    assert_same(&got, &want, "COPY --from vs cp -a");

    // From the context, the same tree but every owner 0:0.
    let root2 = work.path().join("root2");
    fs::create_dir(&root2).unwrap();
    let ctx = SourceTree::context(src, IgnoreMatcher::default());
    copy_into(
        &Rootfs::new(root2.clone()),
        &ctx,
        &[".".to_string()],
        "/c",
        &CopyOptions::default(),
    )
    .unwrap();
    let got = snapshot(&root2.join("c"), true);
    if is_root() {
        assert!(got.values().all(|e| e.owner == (0, 0)));
    }
    assert_same(
        &snapshot(&root2.join("c"), false),
        &snapshot(&reference, false),
        "COPY context vs cp -a",
    );
}
