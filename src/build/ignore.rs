//! `.containerignore` / `.dockerignore`: which context paths a build never sees.
//!
//! The rules are moby's `patternmatcher` and `ignorefile`, restated:
//! - a line starting with `#` is a comment; lines are trimmed; empty lines skipped;
//! - `!` makes an exception (re-include); `!` alone is an error;
//! - each pattern is cleaned like Go's `filepath.Clean` (`./a` → `a`,
//!   `a/` → `a`, `a//b/../c` → `a/c`) and a leading `/` dropped, so a
//!   trailing slash does *not* restrict a pattern to directories;
//! - `*` and `?` never cross `/`, `[...]` is a class, `\` escapes, `**`
//!   spans any number of components (also none), `**/x` matches `x`;
//! - a path is excluded when the *last* pattern matching it or one of its
//!   parents is not an exception, so `dir` + `!dir/keep` keeps `dir/keep`.
//!
//! Which file is read follows buildah: `FILE.containerignore` or
//! `FILE.dockerignore` next to `-f FILE` first, then the context's
//! `.containerignore`, then `.dockerignore`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::glob;

/// Why an ignore file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("{source_name}:{line}: bad pattern {pattern:?}: {reason}")]
    BadPattern {
        source_name: String,
        line: usize,
        pattern: String,
        reason: String,
    },
    #[error("reading ignore file {path:?}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    /// `prefix**`: any path starting with the prefix.
    Prefix(String),
    /// `**suffix` with no other magic.
    Suffix(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct Pattern {
    cleaned: String,
    /// Components of `cleaned`, for deciding whether a dir can be skipped.
    dirs: Vec<String>,
    exclusion: bool,
    kind: Kind,
}

/// A parsed ignore file: the ordered patterns of `.dockerignore` semantics.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
    source_name: String,
}

impl IgnoreMatcher {
    /// Parses ignore-file text; `source_name` names it in errors
    /// (`.dockerignore:3: bad pattern ...`).
    pub fn parse(text: &str, source_name: &str) -> Result<IgnoreMatcher, IgnoreError> {
        let mut patterns = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.lines().enumerate() {
            // A comment only when `#` is the very first character (moby's rule).
            if raw.starts_with('#') {
                continue;
            }
            patterns.extend(parse_pattern(raw, source_name, index + 1)?);
        }
        Ok(IgnoreMatcher {
            patterns,
            source_name: source_name.to_string(),
        })
    }

    /// Patterns given one by one, as `COPY --exclude` does: no comments;
    /// errors name the pattern's position (1-based) as the line.
    pub fn from_patterns(
        patterns: &[String],
        source_name: &str,
    ) -> Result<IgnoreMatcher, IgnoreError> {
        let mut all = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            all.extend(parse_pattern(p, source_name, i + 1)?);
        }
        Ok(IgnoreMatcher {
            patterns: all,
            source_name: source_name.to_string(),
        })
    }

    /// Reads the ignore file that applies to a build (see the module docs);
    /// an empty matcher when there is none.
    pub fn load_for_build(
        context_dir: &Path,
        containerfile: Option<&Path>,
    ) -> Result<IgnoreMatcher, IgnoreError> {
        let mut candidates = Vec::new();
        if let Some(file) = containerfile {
            for ext in ["containerignore", "dockerignore"] {
                let mut name = file.as_os_str().to_os_string();
                name.push(".");
                name.push(ext);
                candidates.push(PathBuf::from(name));
            }
        }
        candidates.push(context_dir.join(".containerignore"));
        candidates.push(context_dir.join(".dockerignore"));
        for path in candidates {
            match fs::read(&path) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    return IgnoreMatcher::parse(&text, &path.display().to_string());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(IgnoreError::Read { path, source }),
            }
        }
        Ok(IgnoreMatcher::default())
    }

    /// The file (or label) the patterns came from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exception (`!`).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is
    /// excluded, counting matches of its parent directories as patternmatcher's
    /// `MatchesOrParentMatches` does. `is_dir` does not change the result
    /// (docker ignores trailing slashes) but is kept for callers' clarity.
    pub fn is_excluded(&self, rel_path: &str, _is_dir: bool) -> bool {
        let file = go_clean(rel_path.trim_start_matches('/'));
        let parent = match file.rfind('/') {
            Some(i) => &file[..i],
            None => ".",
        };
        // Every ancestor ("a", "a/b", ...) once, not once per pattern.
        let ancestors: Vec<&str> = if parent == "." {
            Vec::new()
        } else {
            parent
                .match_indices('/')
                .map(|(i, _)| &parent[..i])
                .chain(std::iter::once(parent))
                .collect()
        };
        let mut matched = false;
        for pattern in &self.patterns {
            // An inclusion pattern cannot change an excluded path, nor an
            // exception a path nothing has excluded.
            if pattern.exclusion != matched {
                continue;
            }
            let hit = pattern.matches(&file) || ancestors.iter().any(|a| pattern.matches(a));
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether a walk can skip the excluded directory `rel_dir` entirely:
    /// true when no exception could re-include anything below it.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        let dir = go_clean(rel_dir.trim_start_matches('/'));
        let dir_parts: Vec<&str> = dir.split('/').collect();
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .all(|p| !p.could_match_below(&dir_parts))
    }
}

/// One pattern line; `None` for a blank one.
fn parse_pattern(
    raw: &str,
    source_name: &str,
    line: usize,
) -> Result<Option<Pattern>, IgnoreError> {
    let mut p = raw.trim();
    if p.is_empty() {
        return Ok(None);
    }
    let bad = |reason: &str| IgnoreError::BadPattern {
        source_name: source_name.to_string(),
        line,
        pattern: raw.to_string(),
        reason: reason.to_string(),
    };
    let exclusion = p.starts_with('!');
    if exclusion {
        p = p[1..].trim();
        if p.is_empty() {
            return Err(bad("\"!\" alone excludes nothing: give a pattern after it"));
        }
    }
    let mut cleaned = go_clean(p);
    if cleaned.len() > 1 && cleaned.starts_with('/') {
        cleaned.remove(0);
    }
    glob::validate(&cleaned).map_err(|e| bad(&e.to_string()))?;
    let kind = compile(&cleaned).map_err(|e| bad(&e))?;
    Ok(Some(Pattern {
        dirs: cleaned.split('/').map(str::to_string).collect(),
        cleaned,
        exclusion,
        kind,
    }))
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }

    /// Conservative: false only when some component of the pattern can
    /// never match the corresponding component of `dir`.
    fn could_match_below(&self, dir: &[&str]) -> bool {
        for (pat, name) in self.dirs.iter().zip(dir) {
            if pat.contains("**") {
                return true;
            }
            if !glob::go_match(pat, name).unwrap_or(true) {
                return false;
            }
        }
        true
    }
}

/// Turns a cleaned pattern into its match kind, as patternmatcher's `compile`.
fn compile(pattern: &str) -> Result<Kind, String> {
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut kind = T::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == T::Exact {
                        kind = T::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = T::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = T::Regex;
                }
                if first {
                    kind = T::Suffix;
                }
            } else {
                re.push_str("[^/]*");
                kind = T::Regex;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            kind = T::Regex;
        } else if ".+()|{}$".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    re.push_str(&regex::escape(&next.to_string()));
                    kind = T::Regex;
                }
                None => re.push_str("\\\\"),
            }
        } else if ch == '[' || ch == ']' {
            re.push(ch);
            kind = T::Regex;
        } else {
            // Raw, as patternmatcher does: `^` after `[` negates a class.
            re.push(ch);
        }
        first = false;
    }
    Ok(match kind {
        T::Exact => Kind::Exact,
        T::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        T::Suffix => Kind::Suffix(pattern[2..].to_string()),
        T::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&re).map_err(|e| e.to_string())?)
        }
    })
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> IgnoreMatcher {
        IgnoreMatcher::parse(text, ".dockerignore").unwrap()
    }

    #[test]
    fn clean_like_go() {
        assert_eq!(go_clean("./a/"), "a");
        assert_eq!(go_clean("a//b/../c"), "a/c");
        assert_eq!(go_clean("/../x"), "/x");
        assert_eq!(go_clean("../x"), "../x");
        assert_eq!(go_clean(""), ".");
        assert_eq!(go_clean("a/.."), ".");
    }

    // Cases from moby/patternmatcher's TestMatches, restated.
    #[test]
    fn patternmatcher_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
        ];
        for (pattern, path, want) in cases {
            let got = m(pattern).is_excluded(path, false);
            assert_eq!(got, *want, "pattern {pattern:?} path {path:?}");
        }
    }

    #[test]
    fn comments_cleaning_and_leading_slash() {
        let ig = m("# comment\n  \n/build/\n./tmp\n  spaced  \n#!notexception\n");
        assert!(ig.is_excluded("build", true));
        assert!(ig.is_excluded("build/x/y", false));
        // A trailing slash does not limit to dirs in docker.
        assert!(ig.is_excluded("build", false));
        assert!(ig.is_excluded("tmp/a", false));
        assert!(ig.is_excluded("spaced", false));
        assert!(!ig.is_excluded("# comment", false));
        assert!(!ig.is_excluded("notexception", false));
        assert!(!ig.is_excluded("src/build", false));
    }

    #[test]
    fn exceptions_reinclude_children_of_excluded_dirs() {
        let ig = m("docs\n!docs/README.md\n");
        assert!(ig.is_excluded("docs", true));
        assert!(ig.is_excluded("docs/other.md", false));
        assert!(!ig.is_excluded("docs/README.md", false));
        assert!(!ig.can_skip_dir("docs"));
        assert!(ig.can_skip_dir("other"));

        // Order matters: the last match wins.
        let ig = m("!keep.txt\n*.txt\n");
        assert!(ig.is_excluded("keep.txt", false));
        let ig = m("*.txt\n!keep*.txt\nkeep-not.txt\n");
        assert!(!ig.is_excluded("keep.txt", false));
        assert!(ig.is_excluded("keep-not.txt", false));
        assert!(ig.is_excluded("a.txt", false));
    }

    #[test]
    fn everything_but() {
        let ig = m("*\n!src\n!Cargo.toml\n");
        assert!(ig.is_excluded("target", true));
        assert!(ig.can_skip_dir("target"));
        assert!(!ig.is_excluded("src", true));
        assert!(!ig.is_excluded("src/main.rs", false));
        assert!(!ig.is_excluded("Cargo.toml", false));
        assert!(ig.is_excluded("README.md", false));
    }

    #[test]
    fn double_star_exception_prevents_skipping() {
        let ig = m("vendor\n!**/keep\n");
        assert!(!ig.can_skip_dir("vendor"));
        assert!(!ig.is_excluded("vendor/a/keep", false));
        assert!(ig.is_excluded("vendor/a/drop", false));
    }

    #[test]
    fn bad_patterns_name_file_and_line() {
        let err = IgnoreMatcher::parse("ok\n\n[unclosed\n", "ctx/.dockerignore").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("ctx/.dockerignore:3: bad pattern \"[unclosed\""),
            "{msg}"
        );
        let err = IgnoreMatcher::parse("a\n  !  \n", "x.containerignore").unwrap_err();
        assert!(err.to_string().starts_with("x.containerignore:2:"), "{err}");
    }

    #[test]
    fn exclude_flags_have_no_comments() {
        let ex =
            IgnoreMatcher::from_patterns(&["#keep".to_string(), "*.o".to_string()], "--exclude")
                .unwrap();
        assert!(ex.is_excluded("#keep", false));
        assert!(ex.is_excluded("a.o", false));
        let err = IgnoreMatcher::from_patterns(&["ok".to_string(), "[".to_string()], "--exclude")
            .unwrap_err();
        assert!(err.to_string().starts_with("--exclude:2:"), "{err}");
    }

    #[test]
    fn load_prefers_containerfile_specific_then_containerignore() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        fs::write(ctx.join(".dockerignore"), "from-docker\n").unwrap();
        let ig = IgnoreMatcher::load_for_build(ctx, None).unwrap();
        assert!(ig.is_excluded("from-docker", false));
        fs::write(ctx.join(".containerignore"), "from-container\n").unwrap();
        let ig = IgnoreMatcher::load_for_build(ctx, None).unwrap();
        assert!(ig.is_excluded("from-container", false));
        assert!(!ig.is_excluded("from-docker", false));
        let cf = ctx.join("build/app.Containerfile");
        fs::create_dir_all(cf.parent().unwrap()).unwrap();
        fs::write(
            ctx.join("build/app.Containerfile.dockerignore"),
            "specific\n",
        )
        .unwrap();
        let ig = IgnoreMatcher::load_for_build(ctx, Some(&cf)).unwrap();
        assert!(ig.is_excluded("specific", false));
        assert!(!ig.is_excluded("from-container", false));
        let empty = tempfile::tempdir().unwrap();
        assert!(IgnoreMatcher::load_for_build(empty.path(), None)
            .unwrap()
            .is_empty());
    }
}
