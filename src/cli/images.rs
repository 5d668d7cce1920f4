//! `rbuild images`: list images as buildah does, with `--filter`,
//! `--format` (Go-template subset), `--json`, `-q` and `--no-trunc`.
//!
//! Manifest lists are listed too, as buildah and podman list them (a list
//! is an image record there): one row per name, the list's ID, the index
//! digest, the index size and the list's creation time. `--filter
//! manifest=true|false` keeps only lists or only images (libimage's
//! filter); `{{.IsManifestList}}` tells them apart in a template.

use std::io::Write;

use anyhow::{bail, Context};
use serde::Serialize;

use super::GlobalOptions;
use crate::image::format::Template;
use crate::image::inspect::{buildah_size, created_since};
use crate::image::{Image, Timestamp};
use crate::reference::Reference;
use crate::store::{ImageRecord, Store};

#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// `label=K[=V]`, `dangling=true|false`, `reference=PATTERN`,
    /// `manifest=true|false`.
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Go template, e.g. `{{.Repository}}:{{.Tag}} {{.ID}}`.
    #[arg(long)]
    pub format: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Print only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show all images, intermediate ones too (rbuild keeps none: a build's
    /// intermediate steps live in its cache, not as images).
    #[arg(short, long)]
    pub all: bool,
    /// No header line.
    #[arg(short = 'n', long)]
    pub noheading: bool,
    /// Add a DIGEST column (the manifest digest).
    #[arg(long)]
    pub digests: bool,
    /// List only this image (a name or ID), as `buildah images NAME` does.
    pub image: Option<String>,
}

/// One row, with the field names templates use: buildah's (`Name`, `Tag`,
/// `ID`, `Digest`, `Created`, `CreatedAt` as "2 hours ago", `CreatedAtRaw`,
/// `Size`, `ReadOnly`) plus podman's `Repository`, `CreatedSince`, `Names`,
/// `Labels` and `IsManifestList`.
#[derive(Debug, Serialize)]
pub struct ImageRow {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Repository")]
    pub repository: String,
    #[serde(rename = "Tag")]
    pub tag: String,
    #[serde(rename = "Digest")]
    pub digest: String,
    #[serde(rename = "Size")]
    pub size: String,
    #[serde(rename = "Created")]
    pub created: i64,
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "CreatedAtRaw")]
    pub created_at_raw: String,
    #[serde(rename = "ReadOnly")]
    pub read_only: bool,
    #[serde(rename = "CreatedSince")]
    pub created_since: String,
    #[serde(rename = "Names")]
    pub names: Vec<String>,
    #[serde(rename = "Labels")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(rename = "IsManifestList")]
    pub is_manifest_list: bool,
}

enum Filter {
    /// `label=K[=V]` (`negate`: `label!=K[=V]`).
    Label {
        key: String,
        value: Option<String>,
        negate: bool,
    },
    Dangling(bool),
    /// `reference=PATTERN`, with the image or list the pattern names when
    /// it is one (libimage also matches by lookup: a short name, an ID).
    Reference(String, Option<crate::digest::Digest>),
    /// `reference!=PATTERN`: images the pattern does not match.
    NotReference(String, Option<crate::digest::Digest>),
    Manifest(bool),
    /// `id=PREFIX` of the image ID.
    Id(String),
    /// `digest=DIGEST` of the manifest.
    Digest(String),
    /// `before=IMAGE` / `until=TIME`: created strictly before (unix ns).
    Before(i128),
    /// `since=IMAGE`: created strictly after (unix nanoseconds).
    Since(i128),
    /// `containers=true|false`: whether a working container uses it.
    Containers(bool),
    /// `readonly=` and `intermediate=`: rbuild has neither read-only
    /// stores nor intermediate images, so only `false` matches.
    AlwaysFalse(bool),
}

const FILTERS: &str = "label=K[=V], label!=K[=V], dangling=, reference=, reference!=, manifest=, id=, digest=, before=IMAGE, since=IMAGE, until=TIME, containers=, readonly=, intermediate=";

fn nanos(t: Timestamp) -> i128 {
    t.datetime().unix_timestamp_nanos()
}

fn parse_bool(f: &str, v: &str) -> anyhow::Result<bool> {
    v.parse()
        .with_context(|| format!("--filter {f}: expected true or false"))
}

/// The creation time (unix nanoseconds: images made within one second
/// still sort) of the image or list `name` names.
fn created_of(store: &Store, f: &str, name: &str) -> anyhow::Result<i128> {
    let created =
        match crate::image::lookup::lookup(store, name).with_context(|| format!("--filter {f}"))? {
            crate::image::lookup::Found::Image(rec) => {
                Image::from_json(&store.read_blob(&rec.id)?)?.created
            }
            crate::image::lookup::Found::List(list) => Timestamp::parse(&list.created).ok(),
        };
    created
        .map(nanos)
        .with_context(|| format!("--filter {f}: {name} has no creation time"))
}

/// `until=`: a Go duration back from now (`1h30m`, `10s`), a unix time or
/// an RFC 3339 time.
fn parse_until(f: &str, v: &str) -> anyhow::Result<i128> {
    const NS: i128 = 1_000_000_000;
    if let Ok(secs) = v.parse::<i64>() {
        return Ok(i128::from(secs) * NS);
    }
    if let Ok(t) = Timestamp::parse(v) {
        return Ok(nanos(t));
    }
    let re = regex::Regex::new(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$").expect("constant regex");
    match re.captures(v).filter(|_| !v.is_empty()) {
        Some(c) => {
            let part = |i: usize| {
                c.get(i)
                    .and_then(|m| m.as_str().parse::<i64>().ok())
                    .unwrap_or(0)
            };
            let back = part(1) * 3600 + part(2) * 60 + part(3);
            Ok(nanos(Timestamp::now()) - i128::from(back) * NS)
        }
        None => bail!("--filter {f}: expected a duration (1h30m), a unix time or an RFC 3339 time"),
    }
}

/// The image or list `pattern` names when it is one.
fn looked_up(store: &Store, pattern: &str) -> Option<crate::digest::Digest> {
    match crate::image::lookup::lookup(store, pattern) {
        Ok(crate::image::lookup::Found::Image(rec)) => Some(rec.id),
        Ok(crate::image::lookup::Found::List(list)) => Some(list.id),
        Err(_) => None,
    }
}

fn parse_filter(store: &Store, f: &str) -> anyhow::Result<Filter> {
    if let Some(p) = f.strip_prefix("reference!=") {
        return Ok(Filter::NotReference(p.to_string(), looked_up(store, p)));
    }
    if let Some(rest) = f.strip_prefix("label!=") {
        let (key, value) = match rest.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (rest.to_string(), None),
        };
        return Ok(Filter::Label {
            key,
            value,
            negate: true,
        });
    }
    match f.split_once('=') {
        Some(("label", rest)) => {
            let (key, value) = match rest.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (rest.to_string(), None),
            };
            Ok(Filter::Label {
                key,
                value,
                negate: false,
            })
        }
        Some(("dangling", v)) => Ok(Filter::Dangling(parse_bool(f, v)?)),
        Some(("reference", v)) => Ok(Filter::Reference(v.to_string(), looked_up(store, v))),
        Some(("manifest", v)) => Ok(Filter::Manifest(parse_bool(f, v)?)),
        Some(("id", v)) => Ok(Filter::Id(v.trim_start_matches("sha256:").to_string())),
        Some(("digest", v)) => Ok(Filter::Digest(v.to_string())),
        Some(("before", v)) => Ok(Filter::Before(created_of(store, f, v)?)),
        Some(("since", v)) => Ok(Filter::Since(created_of(store, f, v)?)),
        Some(("until", v)) => Ok(Filter::Before(parse_until(f, v)?)),
        Some(("containers", v)) => Ok(Filter::Containers(parse_bool(f, v)?)),
        Some(("readonly" | "intermediate", v)) => Ok(Filter::AlwaysFalse(parse_bool(f, v)?)),
        _ => bail!("--filter {f:?}: supported filters are {FILTERS}"),
    }
}

/// What the filters look at beyond the record and the config.
struct Facts {
    created: i128,
    /// Whether a working container stands on the image.
    in_use: bool,
}

/// Go's `path.Match`, which libimage's `reference=` filter uses: `*` and
/// `?` stay within one `/`-separated part; `[…]` classes as written.
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    re.push('^');
                }
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    if c == '\\' || c == '[' {
                        re.push('\\');
                    }
                    re.push(c);
                }
                re.push(']');
            }
            '\\' => match chars.next() {
                Some(c) => re.push_str(&regex::escape(&c.to_string())),
                None => return false,
            },
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(text))
}

fn matches(filter: &Filter, rec: &ImageRecord, image: &Image, facts: &Facts) -> bool {
    match filter {
        Filter::Label { key, value, negate } => {
            let has = image
                .config
                .labels
                .get(key)
                .is_some_and(|actual| value.as_ref().is_none_or(|v| v == actual));
            has != *negate
        }
        Filter::Dangling(d) => rec.names.is_empty() == *d,
        Filter::Reference(p, found) => {
            *found == Some(rec.id) || rec.names.iter().any(|n| reference_matches(p, n))
        }
        Filter::NotReference(p, found) => {
            *found != Some(rec.id) && !rec.names.iter().any(|n| reference_matches(p, n))
        }
        Filter::Manifest(m) => !*m,
        Filter::Id(prefix) => rec.id.hex().starts_with(prefix.as_str()),
        Filter::Digest(d) => rec.manifest.to_string() == *d,
        Filter::Before(t) => facts.created < *t,
        Filter::Since(t) => facts.created > *t,
        Filter::Containers(c) => facts.in_use == *c,
        Filter::AlwaysFalse(b) => !*b,
    }
}

/// A list has names and no config: no label matches it, it is never
/// dangling and no container stands on it.
fn list_matches(
    filter: &Filter,
    list: &crate::store::ManifestList,
    names: &[String],
    created: i128,
) -> bool {
    match filter {
        Filter::Label { negate, .. } => *negate,
        Filter::Dangling(d) => !*d,
        Filter::Reference(p, found) => {
            *found == Some(list.id) || names.iter().any(|n| reference_matches(p, n))
        }
        Filter::NotReference(p, found) => {
            *found != Some(list.id) && !names.iter().any(|n| reference_matches(p, n))
        }
        Filter::Manifest(m) => *m,
        Filter::Id(prefix) => list.id.hex().starts_with(prefix.as_str()),
        Filter::Digest(d) => list.index.to_string() == *d,
        Filter::Before(t) => created < *t,
        Filter::Since(t) => created > *t,
        Filter::Containers(c) => !*c,
        Filter::AlwaysFalse(b) => !*b,
    }
}

/// Whether the `reference=` pattern `p` matches the stored name `n` in
/// any of libimage's spellings of it: `reg/path/app:tag`, `path/app`,
/// `app:tag`, `reg/path/app`, `path/app:tag` and `app`.
fn reference_matches(p: &str, n: &str) -> bool {
    reference_candidates(n).iter().any(|c| glob_match(p, c))
}

fn reference_candidates(n: &str) -> Vec<String> {
    let Ok(r) = Reference::parse(n) else {
        return vec![n.to_string()];
    };
    let last = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let trimmed = r.name();
    let mut out = vec![n.to_string(), r.repository.clone(), last(n)];
    if let Some(tag_or_digest) = n.strip_prefix(trimmed.as_str()).filter(|t| !t.is_empty()) {
        out.push(trimmed.clone());
        out.push(format!("{}{tag_or_digest}", r.repository));
        out.push(last(&trimmed));
    }
    out
}

/// With exactly one `reference=` filter that is a fully qualified name
/// with a tag or digest (`localhost/app:v1`), only the names it names are
/// listed (libimage treats it as a query); otherwise every name.
fn names_shown<'a>(filters: &[Filter], names: &'a [String]) -> Vec<&'a String> {
    let mut references = filters.iter().filter_map(|f| match f {
        Filter::Reference(p, _) => Some(p),
        _ => None,
    });
    let unwanted = filters
        .iter()
        .any(|f| matches!(f, Filter::NotReference(..)));
    let query = match (references.next(), references.next(), unwanted) {
        (Some(p), None, false) => fully_qualified(p),
        _ => None,
    };
    match query {
        None => names.iter().collect(),
        Some(q) => names
            .iter()
            .filter(|n| match &q.digest {
                Some(_) => Reference::parse(n).is_ok_and(|r| r.name() == q.name()),
                None => n.as_str() == q.to_string(),
            })
            .collect(),
    }
}

/// `p` as a reference when it is written in full (a registry, and a tag
/// or digest), as Go's `reference.ParseNamed` accepts it.
fn fully_qualified(p: &str) -> Option<Reference> {
    let r = Reference::parse(p).ok()?;
    let registry = r.registry.as_deref()?;
    let docker_short = registry == "docker.io" && !r.repository.contains('/');
    (!docker_short && (r.tag.is_some() || r.digest.is_some())).then_some(r)
}

fn rows(store: &Store, filters: &[Filter], no_trunc: bool) -> anyhow::Result<Vec<ImageRow>> {
    let now = Timestamp::now();
    let mut out = Vec::new();
    let used: std::collections::BTreeSet<crate::digest::Digest> = store
        .containers()?
        .into_iter()
        .filter_map(|c| c.image)
        .collect();
    for rec in store.images()? {
        let image = Image::from_json(&store.read_blob(&rec.id)?)?;
        let created = image.created.unwrap_or(now);
        let facts = Facts {
            created: nanos(created),
            in_use: used.contains(&rec.id),
        };
        if !filters.iter().all(|f| matches(f, &rec, &image, &facts)) {
            continue;
        }
        let id = if no_trunc {
            rec.id.to_string()
        } else {
            rec.id.short()
        };
        let mut names: Vec<(String, String)> = names_shown(filters, &rec.names)
            .into_iter()
            .map(|n| match Reference::parse(n) {
                Ok(r) => (r.name(), r.tag.clone().unwrap_or_else(|| "<none>".into())),
                Err(_) => (n.clone(), "<none>".into()),
            })
            .collect();
        if rec.names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repository, tag) in names {
            out.push(ImageRow {
                id: id.clone(),
                name: repository.clone(),
                repository,
                tag,
                digest: rec.manifest.to_string(),
                size: buildah_size(rec.size),
                created: created.unix(),
                created_at: created_since(created, now),
                created_at_raw: created.to_string(),
                read_only: false,
                created_since: created_since(created, now),
                names: rec.names.clone(),
                labels: image.config.labels.clone(),
                is_manifest_list: false,
            });
        }
    }
    list_rows(store, filters, no_trunc, now, &mut out)?;
    // Newest first, lists among the images (stable: the store's order for ties).
    out.sort_by_key(|r| std::cmp::Reverse(r.created));
    Ok(out)
}

/// One row per list name; the names of one list (`tag`) share its ID.
fn list_rows(
    store: &Store,
    filters: &[Filter],
    no_trunc: bool,
    now: Timestamp,
    out: &mut Vec<ImageRow>,
) -> anyhow::Result<()> {
    let lists = store.lists()?;
    let mut by_id: std::collections::BTreeMap<_, Vec<&crate::store::ManifestList>> =
        Default::default();
    for l in &lists {
        by_id.entry(l.id).or_default().push(l);
    }
    for (id, group) in by_id {
        let all_names: Vec<String> = group.iter().map(|l| l.name.clone()).collect();
        let list = group[0];
        let created = Timestamp::parse(&list.created).unwrap_or(now);
        if !filters
            .iter()
            .all(|f| list_matches(f, list, &all_names, nanos(created)))
        {
            continue;
        }
        let size = store.blob_size(&list.index).unwrap_or(0);
        for n in names_shown(filters, &all_names) {
            let (repository, tag) = match Reference::parse(n) {
                Ok(r) => (r.name(), r.tag.clone().unwrap_or_else(|| "<none>".into())),
                Err(_) => (n.clone(), "<none>".into()),
            };
            out.push(ImageRow {
                id: if no_trunc { id.to_string() } else { id.short() },
                name: repository.clone(),
                repository,
                tag,
                digest: list.index.to_string(),
                size: buildah_size(size),
                created: created.unix(),
                created_at: created_since(created, now),
                created_at_raw: created.to_string(),
                read_only: false,
                created_since: created_since(created, now),
                names: all_names.clone(),
                labels: Default::default(),
                is_manifest_list: true,
            });
        }
    }
    Ok(())
}

/// One image (or list) in `--json`, with buildah's keys; `ismanifestlist`
/// is rbuild's addition.
#[derive(Debug, Serialize)]
struct JsonImage {
    id: String,
    names: Vec<String>,
    digest: String,
    createdat: String,
    size: String,
    created: i64,
    createdatraw: String,
    readonly: bool,
    history: Option<Vec<String>>,
    ismanifestlist: bool,
}

/// buildah's `--json`: one record per image, not per name.
fn json_images(rows: &[ImageRow]) -> Vec<JsonImage> {
    let mut seen = std::collections::BTreeSet::new();
    rows.iter()
        .filter(|r| seen.insert((r.id.clone(), r.is_manifest_list)))
        .map(|r| JsonImage {
            id: r.id.clone(),
            names: r.names.clone(),
            digest: r.digest.clone(),
            createdat: r.created_at.clone(),
            size: r.size.clone(),
            created: r.created,
            createdatraw: r.created_at_raw.clone(),
            readonly: r.read_only,
            history: None,
            ismanifestlist: r.is_manifest_list,
        })
        .collect()
}

/// The column titles of `--format "table …"` headers, as buildah names them.
fn header_of(field: &str) -> String {
    match field {
        "Name" | "Repository" => "REPOSITORY".into(),
        "ID" => "IMAGE ID".into(),
        "CreatedAt" | "CreatedSince" => "CREATED".into(),
        "ReadOnly" => "R/O".into(),
        other => other.to_uppercase(),
    }
}

pub fn run(global: &GlobalOptions, args: ImagesArgs) -> anyhow::Result<i32> {
    if args.all && args.image.is_some() {
        bail!("when using the --all switch, you may not pass any images names or IDs");
    }
    if args.quiet && args.format.is_some() {
        bail!("quiet and format are mutually exclusive");
    }
    let access = super::store_access::open(global)?;
    let filters: Vec<Filter> = args
        .filters
        .iter()
        .map(|f| parse_filter(&access.store, f))
        .collect::<Result<_, _>>()?;
    let mut rows = rows(&access.store, &filters, args.no_trunc)?;
    if let Some(name) = &args.image {
        let full = match crate::image::lookup::lookup(&access.store, name)? {
            crate::image::lookup::Found::Image(rec) => rec.id,
            crate::image::lookup::Found::List(list) => list.id,
        };
        let id = if args.no_trunc {
            full.to_string()
        } else {
            full.short()
        };
        rows.retain(|r| r.id == id);
    }
    // Written, not println!'d: a closed pipe is an error to report, not a panic.
    let mut out = std::io::stdout().lock();
    if args.json {
        // buildah's json.MarshalIndent with four spaces.
        let json = crate::image::gojson::to_vec_indent(&json_images(&rows), "    ")?;
        out.write_all(&json)?;
        writeln!(out)?;
        return Ok(0);
    }
    if args.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            if seen.insert(r.id.clone()) {
                writeln!(out, "{}", r.id)?;
            }
        }
        return Ok(0);
    }
    let default_format;
    let format = match &args.format {
        // buildah reads a typed `\t` as a tab.
        Some(f) => super::table::columns_of(&f.replace("\\t", "\t")),
        None => {
            default_format = format!(
                "table {{{{.Name}}}}\t{{{{.Tag}}}}\t{}{{{{.ID}}}}\t{{{{.CreatedAt}}}}\t{{{{.Size}}}}",
                if args.digests { "{{.Digest}}\t" } else { "" }
            );
            default_format.clone()
        }
    };
    let (body, header) = match format.strip_prefix("table") {
        Some(rest) => {
            let rest = rest.trim_start();
            (
                rest.to_string(),
                (!args.noheading).then(|| super::table::table_header(rest, header_of)),
            )
        }
        None => (format.clone(), None),
    };
    let template = Template::parse(&body).with_context(|| format!("--format {body:?}"))?;
    let mut lines: Vec<String> = header.into_iter().collect();
    for r in &rows {
        lines.push(template.render_serialize(r)?);
    }
    // Columns as wide as their widest cell, as buildah's tabwriter makes them.
    write!(out, "{}", super::table::tabulate(&lines))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_a_fully_qualified_reference_selects_names() {
        let all = names(&[
            "localhost/h:latest",
            "localhost/h:v1",
            "localhost/h:v2",
            "reg:5000/h:v1",
        ]);
        let shown = |p: &str| -> Vec<&String> {
            names_shown(&[Filter::Reference(p.to_string(), None)], &all)
        };
        assert_eq!(shown("localhost/h:v1"), [&all[1]]);
        assert_eq!(shown("reg:5000/h:v1"), [&all[3]]);
        // Short or glob patterns and bare repositories keep every name.
        assert_eq!(shown("h:v*").len(), 4);
        assert_eq!(shown("h:v1").len(), 4);
        assert_eq!(shown("reg:5000/h").len(), 4);
    }

    #[test]
    fn reference_patterns_match_as_libimage() {
        assert!(reference_matches("app", "quay.io/team/app:v1"));
        assert!(reference_matches("team/app", "quay.io/team/app:v1"));
        assert!(reference_matches("app:v*", "quay.io/team/app:v1"));
        assert!(reference_matches("*/app", "quay.io/team/app:v1"));
        assert!(reference_matches("localhost/*", "localhost/web:latest"));
        // `*` matches the last part alone (`app:v1`), never across `/`.
        assert!(reference_matches("*", "quay.io/team/app:v1"));
        assert!(!reference_matches("quay.io/*", "quay.io/team/app:v1"));
        assert!(reference_matches("quay.io/*/*", "quay.io/team/app:v1"));
        assert!(reference_matches("[a-b]pp", "localhost/app:latest"));
        assert!(!reference_matches("other", "localhost/app:latest"));
    }
}
