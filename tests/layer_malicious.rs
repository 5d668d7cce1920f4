//! A generated corpus of hostile layer tars: each is rejected or contained,
//! and nothing outside the destination is created, changed or removed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rbuild::layer::tar_writer::{Entry, EntryKind, TarWriter};
use rbuild::layer::{extract_layer, extract_plain, ExtractOptions, LayerError};

fn entry(path: &str, kind: EntryKind) -> Entry {
    Entry {
        path: path.as_bytes().to_vec(),
        kind,
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime: 1_000,
        xattrs: vec![],
    }
}

fn file(path: &str) -> (Entry, Vec<u8>) {
    (
        entry(path, EntryKind::Regular { size: 4 }),
        b"evil".to_vec(),
    )
}

fn dir(path: &str) -> (Entry, Vec<u8>) {
    (entry(path, EntryKind::Directory), vec![])
}

fn symlink(path: &str, target: &str) -> (Entry, Vec<u8>) {
    let kind = EntryKind::Symlink {
        target: target.as_bytes().to_vec(),
    };
    (entry(path, kind), vec![])
}

fn hardlink(path: &str, target: &str) -> (Entry, Vec<u8>) {
    let kind = EntryKind::Hardlink {
        target: target.as_bytes().to_vec(),
    };
    (entry(path, kind), vec![])
}

fn tar(entries: &[(Entry, Vec<u8>)]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (e, data) in entries {
        w.append_header(e).unwrap();
        if let EntryKind::Regular { size } = e.kind {
            w.write_data(&mut &data[..], size).unwrap();
        }
    }
    w.finish().unwrap()
}

/// Everything under `dir`: path → (mode, size, content, xattrs).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u64, Vec<u8>, Vec<String>)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let content = if m.is_file() {
            fs::read(e.path()).unwrap()
        } else {
            vec![]
        };
        let xattrs = xattr::list(e.path())
            .map(|l| l.map(|n| n.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        out.insert(e.path().to_path_buf(), (m.mode(), m.len(), content, xattrs));
    }
    out
}

struct Case {
    name: &'static str,
    entries: Vec<(Entry, Vec<u8>)>,
    /// Rejected with an error (true) or contained (false).
    rejected: bool,
    /// Writes through a symlink whose target does not exist inside dest:
    /// rejected as is, contained once the tar first makes that target.
    dangling: bool,
}

#[test]
fn hostile_layers_are_rejected_or_contained() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"keep me").unwrap();
    fs::create_dir(outside.join("sub")).unwrap();
    let out = outside.to_str().unwrap().to_string();
    let abs_secret = format!("{out}/secret");

    let cases = vec![
        Case {
            name: "dotdot file",
            entries: vec![file("../outside/evil")],
            rejected: true,
            dangling: false,
        },
        Case {
            name: "deep dotdot",
            entries: vec![file("a/b/../../../outside/evil")],
            rejected: true,
            dangling: false,
        },
        Case {
            name: "absolute path",
            entries: vec![file(&format!("{out}/evil"))],
            rejected: false,
            dangling: false,
        },
        Case {
            name: "absolute symlink then write through",
            entries: vec![symlink("s", &out), file("s/evil"), file("s/secret")],
            rejected: false,
            dangling: true,
        },
        Case {
            name: "relative symlink climbing out then write through",
            entries: vec![
                dir("a/"),
                symlink("a/up", "../../../../../../../.."),
                file(&format!("a/up{out}/evil")),
            ],
            rejected: false,
            dangling: false,
        },
        Case {
            name: "symlink chain",
            entries: vec![
                symlink("x", "y"),
                symlink("y", &out),
                dir("x/sub/"),
                file("x/sub/evil"),
            ],
            rejected: false,
            dangling: true,
        },
        Case {
            name: "hardlink with dotdot",
            entries: vec![hardlink("h", "../outside/secret")],
            rejected: true,
            dangling: false,
        },
        Case {
            name: "hardlink to absolute outside file",
            entries: vec![hardlink("h", &abs_secret)],
            rejected: true,
            dangling: false,
        },
        Case {
            name: "hardlink through symlinked parent",
            entries: vec![symlink("s", &out), hardlink("h", "s/secret")],
            rejected: true,
            dangling: false,
        },
        Case {
            name: "hardlink to missing target",
            entries: vec![hardlink("h", "nothing")],
            rejected: true,
            dangling: false,
        },
        Case {
            name: "hardlink then write through it",
            entries: vec![symlink("s", &abs_secret), hardlink("h", "s"), file("h")],
            rejected: false,
            dangling: false,
        },
        Case {
            name: "whiteout of dotdot",
            entries: vec![file(".wh...")],
            rejected: true,
            dangling: false,
        },
        Case {
            name: "whiteout of dot",
            entries: vec![file("a/.wh..")],
            rejected: true,
            dangling: false,
        },
        Case {
            name: "whiteout through symlinked parent",
            entries: vec![symlink("s", &out), file("s/.wh.secret")],
            rejected: false,
            dangling: true,
        },
        Case {
            name: "opaque marker through symlinked parent",
            entries: vec![symlink("s", &out), file("s/.wh..wh..opq")],
            rejected: false,
            dangling: true,
        },
        Case {
            name: "directory entry over a symlink",
            entries: vec![symlink("s", &out), dir("s/"), file("s/evil")],
            rejected: false,
            dangling: false,
        },
        Case {
            name: "file replacing a symlink to outside",
            entries: vec![symlink("f", &abs_secret), file("f")],
            rejected: false,
            dangling: false,
        },
        Case {
            name: "symlink to outside dir then dir entry under it",
            entries: vec![
                symlink("s", &format!("{out}/sub")),
                dir("s/x/"),
                file("s/x/evil"),
            ],
            rejected: false,
            dangling: true,
        },
    ];

    let before = snapshot(&outside);
    let mut variants = Vec::new();
    for case in &cases {
        if case.dangling {
            variants.push((case.name.to_string(), case.entries.clone(), true));
            // The same tar after creating the symlink targets inside dest.
            let mut mirrored = vec![dir(&format!("{out}/")), dir(&format!("{out}/sub/"))];
            mirrored.extend(case.entries.iter().cloned());
            variants.push((
                format!("{} (target inside dest)", case.name),
                mirrored,
                false,
            ));
        } else {
            variants.push((case.name.to_string(), case.entries.clone(), case.rejected));
        }
    }
    for (i, (name, entries, rejected)) in variants.into_iter().enumerate() {
        let bytes = tar(&entries);
        for plain in [false, true] {
            let dest = tmp.path().join(format!("dest-{i}-{plain}"));
            let result = if plain {
                extract_plain(&bytes[..], &dest, &ExtractOptions::default())
            } else {
                extract_layer(&bytes[..], &dest, &ExtractOptions::default())
            };
            // Plain extraction has no whiteouts: `.wh.` names are files there.
            let whiteout_name = name.starts_with("whiteout of");
            let want_rejected = rejected && !(plain && whiteout_name);
            match (&result, want_rejected) {
                (Err(LayerError::BadEntry { .. }), true) | (Ok(_), false) => {}
                (r, want_rejected) => panic!(
                    "{name} (plain={plain}): expected {}, got {r:?}",
                    if want_rejected {
                        "rejection"
                    } else {
                        "containment"
                    }
                ),
            }
            assert_eq!(
                snapshot(&outside),
                before,
                "{name} (plain={plain}) changed files outside"
            );
            // Nothing was created next to dest either.
            let siblings: Vec<_> = fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with("dest-") && n != "outside")
                .collect();
            assert!(siblings.is_empty(), "{name}: created {siblings:?}");
        }
    }
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"keep me");
}

#[test]
fn contained_writes_land_inside_dest() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let bytes = tar(&[symlink("etc", "/"), file("etc/passwd"), file("/abs/file")]);
    extract_layer(&bytes[..], &dest, &ExtractOptions::default()).unwrap();
    // `etc` → `/` resolves to dest itself.
    assert_eq!(fs::read(dest.join("passwd")).unwrap(), b"evil");
    assert_eq!(fs::read(dest.join("abs/file")).unwrap(), b"evil");
}

#[test]
fn garbage_and_truncated_streams_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tar(&[file("a"), file("b")]);
    let truncated = &good[..700];
    let err = extract_layer(truncated, &tmp.path().join("t"), &ExtractOptions::default());
    assert!(err.is_err(), "truncated tar accepted: {err:?}");
    let mut gz = good.clone();
    gz[0] = 0x1f;
    gz[1] = 0x8b;
    let err = extract_layer(&gz[..], &tmp.path().join("g"), &ExtractOptions::default());
    assert!(matches!(err, Err(LayerError::Read { .. })), "{err:?}");
}
