//! Where COPY/ADD sources come from: the build context or another rootfs.
//!
//! A [`SourceTree`] is a directory read through a [`Rootfs`], so a source
//! can never leave it: `COPY ../x` is clamped to the tree's root (as
//! BuildKit does), and symlinks inside the tree — in parent components and
//! the source itself, which BuildKit follows — resolve inside the tree.
//! For the build context the ignore file applies: an ignored path does not
//! exist for the build, exactly as if it had never been sent to the daemon.
//!
//! [`SourceTree::expand`] turns one source as written into its matches:
//! each component with `*`, `?` or `[...]` is matched with Go's
//! `filepath.Match` against the directory's entries (sorted, as
//! `filepath.Glob`); [`SourceTree::walk`] lists what a matched directory
//! contributes, with ignore and `--exclude` rules applied.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::layer::rootfs::{Rootfs, RootfsError};

use super::glob;
use super::ignore::{IgnoreError, IgnoreMatcher};

/// Why a COPY/ADD source could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("source {source_path:?} not found in {tree}{hint}")]
    NotFound {
        source_path: String,
        tree: String,
        /// Why, when the cause is an ignore rule.
        hint: String,
    },
    #[error("source {source_path:?}: {err}")]
    BadPattern {
        source_path: String,
        #[source]
        err: glob::BadPattern,
    },
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    #[error("{op} {path:?} in {tree}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        tree: String,
        #[source]
        source: io::Error,
    },
}

/// What a tree is, which decides ownership on copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// The build context: files become 0:0 unless `--chown`.
    Context,
    /// Another image or stage (`COPY --from`): owners are kept.
    Image,
}

/// A directory COPY/ADD read from.
#[derive(Debug, Clone)]
pub struct SourceTree {
    root: Rootfs,
    ignore: IgnoreMatcher,
    kind: TreeKind,
    label: String,
}

/// One match of a source: a file, a directory or a special file.
#[derive(Debug, Clone)]
pub struct SourceMatch {
    /// The path as matched, relative to the tree root, symlinks not
    /// followed (`a/b.txt`; empty for the root itself). Names the copy.
    pub logical: PathBuf,
    /// With every symlink followed, relative to the tree root.
    pub resolved: PathBuf,
    /// Where to read it on the host.
    pub host: PathBuf,
    /// Metadata of what `host` is (symlinks followed).
    pub meta: fs::Metadata,
    /// Leading components of `logical` that `--parents` drops (the part
    /// before a `/./` pivot).
    pub parents_skip: usize,
}

/// One entry below a matched directory.
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// Relative to the matched directory.
    pub rel: PathBuf,
    pub host: PathBuf,
    /// `lstat` metadata: symlinks are entries of their own.
    pub meta: fs::Metadata,
}

impl SourceTree {
    /// The build context at `dir`, with the ignore file that applies to a
    /// build from `containerfile` (see [`IgnoreMatcher::load_for_build`]).
    pub fn open_context(
        dir: PathBuf,
        containerfile: Option<&Path>,
    ) -> Result<SourceTree, ContextError> {
        let ignore = IgnoreMatcher::load_for_build(&dir, containerfile)?;
        Ok(SourceTree::context(dir, ignore))
    }

    /// The build context at `dir` with an already parsed ignore matcher.
    pub fn context(dir: PathBuf, ignore: IgnoreMatcher) -> SourceTree {
        SourceTree {
            root: Rootfs::new(dir),
            ignore,
            kind: TreeKind::Context,
            label: "the build context".to_string(),
        }
    }

    /// Another rootfs (an image or stage); `label` names it in errors, e.g.
    /// `stage "builder"`.
    pub fn image(root: PathBuf, label: impl Into<String>) -> SourceTree {
        SourceTree {
            root: Rootfs::new(root),
            ignore: IgnoreMatcher::default(),
            kind: TreeKind::Image,
            label: label.into(),
        }
    }

    pub fn kind(&self) -> TreeKind {
        self.kind
    }

    pub fn rootfs(&self) -> &Rootfs {
        &self.root
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn ignore(&self) -> &IgnoreMatcher {
        &self.ignore
    }

    /// Whether the tree-relative path (no symlinks in it) is hidden by the ignore file.
    fn hidden(&self, rel: &Path, is_dir: bool) -> bool {
        if self.ignore.is_empty() || rel.as_os_str().is_empty() {
            return false;
        }
        let rel = rel.to_string_lossy();
        self.ignore.is_excluded(&rel, is_dir) && (!is_dir || self.ignore.can_skip_dir(&rel))
    }

    /// The matches of one source as written in COPY/ADD, sorted. A source
    /// without wildcards that does not exist is an error; a wildcard that
    /// matches nothing gives an empty list (the caller decides, as
    /// BuildKit does, whether any source matched at all).
    pub fn expand(&self, source: &str) -> Result<Vec<SourceMatch>, ContextError> {
        let parents_skip = pivot_components(source);
        let components = clean_components(source);
        let magic = components.iter().any(|c| glob::has_magic(c));
        for c in &components {
            glob::validate(c).map_err(|err| ContextError::BadPattern {
                source_path: source.to_string(),
                err,
            })?;
        }
        // (logical, unresolved tree path) pairs.
        let mut states: Vec<PathBuf> = vec![PathBuf::new()];
        for comp in &components {
            let mut next = Vec::new();
            for state in &states {
                if !glob::has_magic(comp) {
                    next.push(state.join(unescape(comp)));
                    continue;
                }
                let dir_host = self.root.resolve(state)?;
                let mut names: Vec<String> = match fs::read_dir(&dir_host) {
                    Ok(rd) => rd
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect(),
                    // A non-directory or missing parent matches nothing (Go's Glob).
                    Err(_) => continue,
                };
                names.sort();
                for name in names {
                    if glob::go_match(comp, &name).unwrap_or(false) {
                        next.push(state.join(name));
                    }
                }
            }
            states = next;
        }
        let mut matches = Vec::new();
        for logical in states {
            match self.resolve_match(&logical, parents_skip)? {
                Some(m) => matches.push(m),
                None if magic => {}
                None => {
                    let hint = if self.hidden(&logical, false) || self.hidden(&logical, true) {
                        format!(" (excluded by {})", self.ignore.source_name())
                    } else {
                        String::new()
                    };
                    return Err(ContextError::NotFound {
                        source_path: source.to_string(),
                        tree: self.label.clone(),
                        hint,
                    });
                }
            }
        }
        Ok(matches)
    }

    fn resolve_match(
        &self,
        logical: &Path,
        parents_skip: usize,
    ) -> Result<Option<SourceMatch>, ContextError> {
        // Every entry on the way (symlinks included) must be visible: check
        // each one where it really is, its parent's symlinks followed.
        let mut parent = PathBuf::new();
        for c in logical.components() {
            let parent_real = self.root.resolve_in_image(&parent)?;
            let entry = parent_real
                .strip_prefix("/")
                .unwrap_or(&parent_real)
                .join(c);
            let Some(meta) = self.root.symlink_metadata(&entry)? else {
                return Ok(None);
            };
            if self.hidden(&entry, meta.is_dir()) {
                return Ok(None);
            }
            parent.push(c);
        }
        let resolved_abs = self.root.resolve_in_image(logical)?;
        let resolved = resolved_abs
            .strip_prefix("/")
            .unwrap_or(&resolved_abs)
            .to_path_buf();
        let Some(meta) = self.root.symlink_metadata(&resolved)? else {
            return Ok(None);
        };
        if self.hidden(&resolved, meta.is_dir()) {
            return Ok(None);
        }
        let host = self.root.resolve_nofollow(&resolved)?;
        Ok(Some(SourceMatch {
            logical: logical.to_path_buf(),
            resolved,
            host,
            meta,
            parents_skip,
        }))
    }

    /// Everything below the directory `m`, depth first, parents before
    /// children, names sorted; symlinks are not followed. Entries hidden by
    /// the ignore file or matching `exclude` (relative to `m`) are left out,
    /// except directories that hold an entry an exception re-includes.
    pub fn walk(
        &self,
        m: &SourceMatch,
        exclude: &IgnoreMatcher,
    ) -> Result<Vec<WalkEntry>, ContextError> {
        let mut entries: Vec<(WalkEntry, bool)> = Vec::new();
        let mut it = walkdir::WalkDir::new(&m.host)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter();
        while let Some(next) = it.next() {
            let entry = next.map_err(|e| {
                let path = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| m.host.clone());
                ContextError::Io {
                    op: "reading",
                    path,
                    tree: self.label.clone(),
                    source: e.into(),
                }
            })?;
            let rel = entry
                .path()
                .strip_prefix(&m.host)
                .unwrap_or(entry.path())
                .to_path_buf();
            let meta = entry.metadata().map_err(|e| ContextError::Io {
                op: "reading metadata of",
                path: entry.path().to_path_buf(),
                tree: self.label.clone(),
                source: e.into(),
            })?;
            let is_dir = meta.is_dir();
            let tree_rel = m.resolved.join(&rel);
            let rel_str = rel.to_string_lossy();
            let ignored = !self.ignore.is_empty()
                && self.ignore.is_excluded(&tree_rel.to_string_lossy(), is_dir);
            let excluded = !exclude.is_empty() && exclude.is_excluded(&rel_str, is_dir);
            if ignored || excluded {
                let skippable = (!ignored || self.ignore.can_skip_dir(&tree_rel.to_string_lossy()))
                    && (!excluded || exclude.can_skip_dir(&rel_str));
                if !is_dir || skippable {
                    if is_dir {
                        it.skip_current_dir();
                    }
                    continue;
                }
            }
            let included = !(ignored || excluded);
            entries.push((
                WalkEntry {
                    rel,
                    host: entry.path().to_path_buf(),
                    meta,
                },
                included,
            ));
        }
        // An excluded directory stays only if something below it is included.
        let mut needed: HashSet<PathBuf> = HashSet::new();
        for (entry, included) in entries.iter_mut().rev() {
            if !*included && entry.meta.is_dir() && needed.contains(&entry.rel) {
                *included = true;
            }
            if *included {
                if let Some(parent) = entry.rel.parent() {
                    needed.insert(parent.to_path_buf());
                }
            }
        }
        Ok(entries
            .into_iter()
            .filter_map(|(e, included)| included.then_some(e))
            .collect())
    }
}

/// The components of a source after cleaning: no `.`, `..` clamped at the
/// root, no leading `/`.
fn clean_components(source: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p.to_string()),
        }
    }
    out
}

/// For `--parents`: how many cleaned components come before a `/./` pivot
/// (`a/./b/c` → 1); 0 when there is none. A leading `./` is not a pivot.
fn pivot_components(source: &str) -> usize {
    let parts: Vec<&str> = source.trim_start_matches('/').split('/').collect();
    let first_real = parts.iter().position(|p| *p != "." && !p.is_empty());
    let Some(start) = first_real else { return 0 };
    match parts[start..].iter().position(|p| *p == ".") {
        Some(pos) => clean_components(&parts[..start + pos].join("/")).len(),
        None => 0,
    }
}

/// A literal component may still hold `\` escapes of non-magic characters.
fn unescape(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    let mut chars = component.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn ctx(files: &[&str], ignore: &str) -> (tempfile::TempDir, SourceTree) {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            if f.ends_with('/') {
                fs::create_dir_all(&p).unwrap();
            } else {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, f.as_bytes()).unwrap();
            }
        }
        let ig = IgnoreMatcher::parse(ignore, ".dockerignore").unwrap();
        let tree = SourceTree::context(dir.path().to_path_buf(), ig);
        (dir, tree)
    }

    fn logical(ms: &[SourceMatch]) -> Vec<String> {
        ms.iter().map(|m| m.logical.display().to_string()).collect()
    }

    #[test]
    fn literal_and_clamped_sources() {
        let (_d, t) = ctx(&["a.txt", "dir/b.txt"], "");
        assert_eq!(logical(&t.expand("a.txt").unwrap()), ["a.txt"]);
        assert_eq!(logical(&t.expand("./a.txt").unwrap()), ["a.txt"]);
        assert_eq!(logical(&t.expand("../../a.txt").unwrap()), ["a.txt"]);
        assert_eq!(logical(&t.expand("/dir/b.txt").unwrap()), ["dir/b.txt"]);
        assert_eq!(logical(&t.expand(".").unwrap()), [""]);
        let err = t.expand("missing").unwrap_err();
        assert_eq!(
            err.to_string(),
            "source \"missing\" not found in the build context"
        );
    }

    #[test]
    fn globs_match_per_component_sorted() {
        let (_d, t) = ctx(
            &["b.txt", "a.txt", "c.md", "d1/x.txt", "d2/x.txt", "d2/y.go"],
            "",
        );
        assert_eq!(logical(&t.expand("*.txt").unwrap()), ["a.txt", "b.txt"]);
        assert_eq!(logical(&t.expand("?.md").unwrap()), ["c.md"]);
        assert_eq!(
            logical(&t.expand("d*/x.txt").unwrap()),
            ["d1/x.txt", "d2/x.txt"]
        );
        assert_eq!(
            logical(&t.expand("d[2]/*").unwrap()),
            ["d2/x.txt", "d2/y.go"]
        );
        // `*` does not cross `/`.
        assert!(t.expand("*x.txt").unwrap().is_empty());
        assert!(t.expand("nomatch*").unwrap().is_empty());
        assert!(matches!(
            t.expand("bad[").unwrap_err(),
            ContextError::BadPattern { .. }
        ));
    }

    #[test]
    fn ignored_files_do_not_exist() {
        let (_d, t) = ctx(
            &["keep.txt", "secret.key", "docs/a.md", "docs/README.md"],
            "*.key\ndocs\n!docs/README.md\n",
        );
        assert_eq!(logical(&t.expand("*").unwrap()), ["docs", "keep.txt"]);
        let err = t.expand("secret.key").unwrap_err().to_string();
        assert!(err.contains("excluded by .dockerignore"), "{err}");
        let docs = &t.expand("docs").unwrap()[0];
        let walked: Vec<_> = t
            .walk(docs, &IgnoreMatcher::default())
            .unwrap()
            .iter()
            .map(|e| e.rel.display().to_string())
            .collect();
        assert_eq!(walked, ["README.md"]);
    }

    #[test]
    fn symlinks_followed_inside_the_tree_only() {
        let (d, t) = ctx(&["real/f.txt"], "");
        symlink("/real", d.path().join("abs")).unwrap();
        symlink("../../../../etc", d.path().join("up")).unwrap();
        let m = &t.expand("abs/f.txt").unwrap()[0];
        assert_eq!(m.resolved, Path::new("real/f.txt"));
        assert_eq!(m.logical, Path::new("abs/f.txt"));
        // `up` resolves to <ctx>/etc, which does not exist: never the host's /etc.
        assert!(t.expand("up/passwd").is_err());
        let m = &t.expand("abs").unwrap()[0];
        assert!(m.meta.is_dir());
    }

    #[test]
    fn walk_applies_exclude_relative_to_the_match_and_keeps_needed_dirs() {
        let (_d, t) = ctx(
            &[
                "src/a.rs",
                "src/a.md",
                "src/sub/b.md",
                "src/sub/keep.rs",
                "src/only_md/x.md",
            ],
            "",
        );
        let m = &t.expand("src").unwrap()[0];
        let ex = IgnoreMatcher::from_patterns(&["**/*.md".to_string()], "--exclude").unwrap();
        let walked: Vec<_> = t
            .walk(m, &ex)
            .unwrap()
            .iter()
            .map(|e| e.rel.display().to_string())
            .collect();
        assert_eq!(walked, ["a.rs", "only_md", "sub", "sub/keep.rs"]);
        let ex = IgnoreMatcher::from_patterns(
            &["sub".to_string(), "!sub/keep.rs".to_string()],
            "--exclude",
        )
        .unwrap();
        let walked: Vec<_> = t
            .walk(m, &ex)
            .unwrap()
            .iter()
            .map(|e| e.rel.display().to_string())
            .collect();
        assert_eq!(
            walked,
            [
                "a.md",
                "a.rs",
                "only_md",
                "only_md/x.md",
                "sub",
                "sub/keep.rs"
            ]
        );
    }

    #[test]
    fn pivot_for_parents() {
        assert_eq!(pivot_components("a/./b/c"), 1);
        assert_eq!(pivot_components("./a/b"), 0);
        assert_eq!(pivot_components("x/y/./z"), 2);
        assert_eq!(pivot_components("a/b"), 0);
    }
}
