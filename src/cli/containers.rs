//! `rbuild containers`: the working containers, as buildah lists them.

use anyhow::{bail, Context};
use serde::Serialize;

use super::GlobalOptions;
use crate::container::state::state_of;
use crate::image::format::Template;

#[derive(Debug, clap::Args)]
pub struct ContainersArgs {
    /// Also list containers of other tools (rbuild only has its own).
    #[arg(short, long)]
    pub all: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Go template per container (.ContainerID .Builder .ImageID .ImageName .ContainerName).
    #[arg(long)]
    pub format: Option<String>,
    /// Filter: name=, id= or ancestor= (repeatable, all must match).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// No header line.
    #[arg(short, long)]
    pub noheading: bool,
    /// Full IDs.
    #[arg(long)]
    pub notruncate: bool,
    /// Print only container IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// One row; the JSON keys are buildah's.
#[derive(Debug, Serialize)]
struct Row {
    id: String,
    builder: bool,
    imageid: String,
    imagename: String,
    containername: String,
}

enum Filter {
    Name(String),
    Id(String),
    Ancestor(String),
}

fn parse_filter(f: &str) -> anyhow::Result<Filter> {
    Ok(match f.split_once('=') {
        Some(("name", v)) => Filter::Name(v.to_string()),
        Some(("id", v)) => Filter::Id(v.to_string()),
        Some(("ancestor", v)) => Filter::Ancestor(v.to_string()),
        _ => bail!("--filter {f:?}: expected name=, id= or ancestor="),
    })
}

/// Column titles of a `table` template, as buildah names them.
fn title_of(field: &str) -> String {
    match field {
        "ContainerID" => "CONTAINER ID".into(),
        "ImageID" => "IMAGE ID".into(),
        "ImageName" => "IMAGE NAME".into(),
        "ContainerName" => "CONTAINER NAME".into(),
        other => other.to_uppercase(),
    }
}

pub fn run(global: &GlobalOptions, args: ContainersArgs) -> anyhow::Result<i32> {
    if args.quiet && args.format.is_some() {
        bail!("quiet and format are mutually exclusive");
    }
    let filters = args
        .filter
        .iter()
        .map(|f| parse_filter(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let access = super::store_access::open(global)?;
    let store = &access.store;
    let mut rows = Vec::new();
    let mut records = store.containers()?;
    // Oldest first, as buildah lists them (the store keeps them by name).
    records.sort_by_key(|r| {
        crate::image::Timestamp::parse(&r.created)
            .map(|t| t.datetime().unix_timestamp_nanos())
            .unwrap_or(i128::MAX)
    });
    for rec in records {
        let Some(state) = state_of(&rec) else {
            log::warn!("container {}: unreadable state, skipped", rec.name);
            continue;
        };
        let row = Row {
            id: state.id.clone(),
            builder: true,
            imageid: rec.image.map(|d| d.hex().to_string()).unwrap_or_default(),
            imagename: rec.image_name.clone().unwrap_or_default(),
            containername: rec.name.clone(),
        };
        let keep = filters.iter().all(|f| match f {
            Filter::Name(n) => row.containername.contains(n.as_str()),
            Filter::Id(i) => row.id.starts_with(i.as_str()),
            Filter::Ancestor(a) => {
                row.imagename == *a
                    || (!row.imageid.is_empty()
                        && row.imageid.starts_with(a.trim_start_matches("sha256:")))
                    || crate::image::lookup::lookup_image(store, a)
                        .is_ok_and(|img| rec.image == Some(img.id))
            }
        });
        if keep {
            rows.push(row);
        }
    }
    // Written, not println!'d: `rbuild containers | head` must not panic.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let short = |s: &str| {
        if args.notruncate {
            s.to_string()
        } else {
            s.chars().take(12).collect()
        }
    };
    if args.json {
        // buildah's json.MarshalIndent with four spaces.
        out.write_all(&crate::image::gojson::to_vec_indent(&rows, "    ")?)?;
        writeln!(out)?;
    } else if args.quiet {
        // buildah prints whole IDs here, --notruncate or not.
        for r in &rows {
            writeln!(out, "{}", r.id)?;
        }
    } else if let Some(fmt) = &args.format {
        let fmt = super::table::columns_of(&fmt.replace("\\t", "\t"));
        let (body, header) = match fmt.strip_prefix("table") {
            Some(rest) => {
                let rest = rest.trim_start();
                let header = (!args.noheading).then(|| super::table::table_header(rest, title_of));
                (rest.to_string(), header)
            }
            None => (fmt.clone(), None),
        };
        let template = Template::parse(&body).with_context(|| format!("--format {body:?}"))?;
        let mut lines: Vec<String> = header.into_iter().collect();
        for r in &rows {
            let value = serde_json::json!({
                "ContainerID": short(&r.id),
                "Builder": if r.builder { "   *" } else { "" },
                "ImageID": short(&r.imageid),
                "ImageName": r.imagename,
                "ContainerName": r.containername,
            });
            lines.push(template.render(&value)?);
        }
        write!(out, "{}", super::table::tabulate(&lines))?;
    } else {
        // buildah's fixed-width printf lines: 12-character IDs and an image
        // name cut to 32 ("…" as "..."), or whole IDs in 64 columns.
        let (id_w, sep) = if args.notruncate {
            (64, " ")
        } else {
            (12, "  ")
        };
        if !args.noheading {
            writeln!(
                out,
                "{:<id_w$}{sep}{:<8} {:<id_w$} {:<32} CONTAINER NAME",
                "CONTAINER ID", "BUILDER", "IMAGE ID", "IMAGE NAME"
            )?;
        }
        for r in &rows {
            let image_name = if args.notruncate || r.imagename.len() <= 32 {
                r.imagename.clone()
            } else {
                let cut = (0..=29)
                    .rev()
                    .find(|&i| r.imagename.is_char_boundary(i))
                    .unwrap_or(0);
                format!("{}...", &r.imagename[..cut])
            };
            writeln!(
                out,
                "{:<id_w$}{sep}{:<8} {:<id_w$} {:<32} {}",
                short(&r.id),
                "   *",
                short(&r.imageid),
                image_name,
                r.containername
            )?;
        }
    }
    Ok(0)
}
