//! What `inspect` and `history` print about an image: buildah's
//! `inspect --type image` JSON shape, and history rows as podman prints
//! them (buildah has no `history` command), with docker's human sizes and
//! "2 hours ago" durations.

use std::collections::BTreeMap;

use serde::Serialize;

use super::config::{DockerImage, History, Image};
use super::gojson::{self, Timestamp};
use crate::digest::Digest;

/// `buildah inspect --type image`: the fields that describe an image (the
/// working-container fields of buildah's `BuilderInfo` are left out).
#[derive(Serialize)]
pub struct ImageInspect<'a> {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    #[serde(rename = "FromImage")]
    pub from_image: String,
    /// The image ID without `sha256:`, as buildah prints it.
    #[serde(rename = "FromImageID")]
    pub from_image_id: String,
    #[serde(rename = "FromImageDigest")]
    pub from_image_digest: String,
    /// The config blob, verbatim.
    #[serde(rename = "Config")]
    pub config: String,
    /// The manifest blob, verbatim.
    #[serde(rename = "Manifest")]
    pub manifest: String,
    #[serde(rename = "Container")]
    pub container: &'static str,
    #[serde(rename = "ContainerID")]
    pub container_id: &'static str,
    #[serde(rename = "MountPoint")]
    pub mount_point: &'static str,
    #[serde(rename = "ImageAnnotations")]
    pub image_annotations: Option<&'a BTreeMap<String, String>>,
    #[serde(rename = "ImageCreatedBy")]
    pub image_created_by: &'static str,
    #[serde(rename = "OCIv1")]
    pub oci: &'a Image,
    #[serde(rename = "Docker")]
    pub docker: DockerImage<'a>,
    #[serde(rename = "History")]
    pub history: &'a [History],
}

/// buildah's container type string.
pub const INSPECT_TYPE: &str = "rbuild 0.0.1";

impl<'a> ImageInspect<'a> {
    /// `name` as the user asked for it (or the first name), the image
    /// `config` parsed and raw, the manifest bytes and their digest.
    pub fn new(
        name: &str,
        image: &'a Image,
        config_bytes: &[u8],
        manifest_bytes: &[u8],
        annotations: &'a BTreeMap<String, String>,
    ) -> ImageInspect<'a> {
        ImageInspect {
            kind: INSPECT_TYPE,
            from_image: name.to_string(),
            from_image_id: Digest::of(config_bytes).hex(),
            from_image_digest: Digest::of(manifest_bytes).to_string(),
            config: String::from_utf8_lossy(config_bytes).into_owned(),
            manifest: String::from_utf8_lossy(manifest_bytes).into_owned(),
            container: "",
            container_id: "",
            mount_point: "",
            image_annotations: (!annotations.is_empty()).then_some(annotations),
            image_created_by: "",
            oci: image,
            docker: image.docker_view(),
            history: &image.history,
        }
    }

    /// The JSON buildah prints: 4-space indent, Go escaping, newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out =
            gojson::to_vec_indent(self, "    ").expect("inspect output always serialises");
        out.push(b'\n');
        out
    }
}

/// One row of `history`, newest first; serialises as podman's
/// `history --format json` entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    /// The image ID for the newest entry, `<missing>` for the rest (as
    /// podman shows images whose intermediate layers are not images).
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "created", skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    #[serde(skip)]
    pub created_since: String,
    #[serde(rename = "CreatedBy", skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// Uncompressed size of the entry's layer; 0 for metadata steps.
    #[serde(rename = "size")]
    pub size: u64,
    #[serde(rename = "comment", skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

impl HistoryRow {
    /// The value `history --format` templates see: podman's names
    /// (`.ID .Created .CreatedBy .Size .Comment`) and docker's
    /// (`.CreatedSince .CreatedAt`). `human` picks "2 hours ago" and "1.5kB"
    /// over timestamps and byte counts; `no_trunc` keeps full IDs and commands.
    pub fn template_value(&self, human: bool, no_trunc: bool) -> serde_json::Value {
        let created_at = self.created.map(|c| c.to_string()).unwrap_or_default();
        let created = if human {
            self.created_since.clone()
        } else {
            created_at.clone()
        };
        serde_json::json!({
            "ID": self.display_id(no_trunc),
            "Created": created,
            "CreatedSince": created,
            "CreatedAt": created_at,
            "CreatedBy": self.display_created_by(no_trunc),
            "Size": if human { human_size(self.size) } else { self.size.to_string() },
            "Comment": self.comment,
        })
    }

    fn display_id(&self, no_trunc: bool) -> String {
        if no_trunc || self.id.len() <= 12 {
            self.id.clone()
        } else {
            self.id[..12].to_string()
        }
    }

    fn display_created_by(&self, no_trunc: bool) -> String {
        if no_trunc {
            self.created_by.clone()
        } else {
            truncate_created_by(&self.created_by)
        }
    }
}

/// The history rows of `image`; `layer_sizes[i]` is the uncompressed size
/// of `rootfs.diff_ids[i]` (missing sizes count as 0).
pub fn history_rows(
    image_id: &Digest,
    image: &Image,
    layer_sizes: &[u64],
    now: Timestamp,
) -> Vec<HistoryRow> {
    let mut layer = 0;
    let mut rows: Vec<HistoryRow> = image
        .history
        .iter()
        .map(|h| {
            let size = if h.empty_layer {
                0
            } else {
                layer += 1;
                layer_sizes.get(layer - 1).copied().unwrap_or(0)
            };
            HistoryRow {
                id: "<missing>".to_string(),
                created: h.created,
                created_since: h.created.map(|c| created_since(c, now)).unwrap_or_default(),
                created_by: h.created_by.clone(),
                size,
                comment: h.comment.clone(),
            }
        })
        .collect();
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = image_id.hex();
    }
    rows
}

/// The `history` table: `no_trunc` keeps full IDs and commands; `human`
/// prints "2 hours ago" and `1.02kB`, else timestamps and bytes.
pub fn history_table(rows: &[HistoryRow], no_trunc: bool, human: bool) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let v = r.template_value(human, no_trunc);
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            [
                text("ID"),
                text("Created"),
                text("CreatedBy"),
                text("Size"),
                text("Comment"),
            ]
        })
        .collect();
    let header = ["ID", "CREATED", "CREATED BY", "SIZE", "COMMENT"];
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for row in &cells {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

/// podman: whitespace collapsed, at most 45 characters.
fn truncate_created_by(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() > 45 {
        format!("{}...", collapsed.chars().take(42).collect::<String>())
    } else {
        collapsed
    }
}

/// docker's `units.HumanDuration(now - then) + " ago"`.
pub fn created_since(then: Timestamp, now: Timestamp) -> String {
    format!("{} ago", human_duration(now.unix() - then.unix()))
}

/// docker's `units.HumanDuration`, for whole seconds.
pub fn human_duration(seconds: i64) -> String {
    let minutes = seconds / 60;
    // Hours are rounded, as docker does.
    let hours = (seconds as f64 / 3600.0 + 0.5) as i64;
    if seconds < 1 {
        "Less than a second".to_string()
    } else if seconds == 1 {
        "1 second".to_string()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".to_string()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", seconds / 3600 / 24 / 365)
    }
}

/// docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units, `%.3g`.
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_g3(value), UNITS[unit])
}

/// buildah's own size format for `images` (`formattedSize`): `%.3g`, a
/// space, and upper-case `KB` — not docker's `2.13MB`.
pub fn buildah_size(size: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{} {}", format_g3(value), UNITS[unit])
}

/// Go's `%.3g` for non-negative values.
fn format_g3(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    // The exponent after rounding to 3 significant digits.
    let sci = format!("{value:.2e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if !(-4..3).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa.to_string()), exp.abs())
    } else {
        let decimals = (2 - exp).max(0) as usize;
        trim(format!("{value:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::config::{ImageConfigBuilder, Platform};

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn human_sizes_match_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1024), "1.02kB");
        assert_eq!(human_size(1500), "1.5kB");
        assert_eq!(human_size(4_400_000), "4.4MB");
        assert_eq!(human_size(999_999), "1e+03kB");
        assert_eq!(human_size(12_345_678_901), "12.3GB");
    }

    #[test]
    fn buildah_sizes_match_buildah_images() {
        assert_eq!(buildah_size(0), "0 B");
        assert_eq!(buildah_size(2_125_312), "2.13 MB");
        assert_eq!(buildah_size(1500), "1.5 KB");
        assert_eq!(buildah_size(7_000_000_000_000_000), "7e+03 TB");
    }

    #[test]
    fn human_durations_match_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(30 * 60), "30 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(100 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
        let now = ts("2024-01-01T02:00:00Z");
        assert_eq!(
            created_since(ts("2024-01-01T00:00:00Z"), now),
            "2 hours ago"
        );
    }

    fn image() -> Image {
        let t = ts("2024-01-01T00:00:00Z");
        let mut b = ImageConfigBuilder::scratch(Platform::host());
        b.add_layer(
            Digest::of(b"l1"),
            t,
            "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in / ",
        );
        b.add_empty_history(t, "/bin/sh -c #(nop) CMD [\"sh\"]");
        b.add_layer(Digest::of(b"l2"), t, "/bin/sh -c echo hi");
        b.build()
    }

    #[test]
    fn history_rows_newest_first_with_sizes() {
        let id = Digest::of(b"config");
        let rows = history_rows(&id, &image(), &[1500, 7], ts("2024-01-01T00:00:30Z"));
        let summary: Vec<_> = rows.iter().map(|r| (r.id.as_str(), r.size)).collect();
        assert_eq!(
            summary,
            vec![
                (id.hex().as_str(), 7),
                ("<missing>", 0),
                ("<missing>", 1500)
            ]
        );
        assert_eq!(rows[0].created_since, "30 seconds ago");
        let table = history_table(&rows, false, true);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0].starts_with("ID            CREATED         CREATED BY"),
            "{table}"
        );
        assert!(lines[1].starts_with(&id.short()), "{table}");
        assert!(
            lines[3].contains("/bin/sh -c #(nop) ADD file:0123456789abcde..."),
            "{table}"
        );
        assert!(lines[3].contains("1.5kB"), "{table}");
        let full = history_table(&rows, true, false);
        assert!(
            full.contains(&id.hex()) && full.contains("0123456789abcdef in /"),
            "{full}"
        );
    }

    #[test]
    fn inspect_shape() {
        let img = image();
        let config = img.to_oci_json();
        let manifest = b"{\"schemaVersion\":2}".to_vec();
        let annotations = BTreeMap::new();
        let inspect = ImageInspect::new(
            "localhost/app:latest",
            &img,
            &config,
            &manifest,
            &annotations,
        );
        let text = String::from_utf8(inspect.to_json()).unwrap();
        assert!(text.starts_with(
            "{\n    \"Type\": \"rbuild 0.0.1\",\n    \"FromImage\": \"localhost/app:latest\",\n"
        ));
        assert!(text.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["FromImageID"], Digest::of(&config).hex());
        assert_eq!(v["FromImageDigest"], Digest::of(&manifest).to_string());
        assert_eq!(v["Config"], String::from_utf8(config).unwrap());
        assert_eq!(
            v["OCIv1"]["rootfs"]["diff_ids"][1],
            Digest::of(b"l2").to_string()
        );
        assert_eq!(v["Docker"]["config"]["Cmd"], serde_json::Value::Null);
        assert_eq!(v["History"].as_array().unwrap().len(), 3);
        assert_eq!(v["ImageAnnotations"], serde_json::Value::Null);
        // --format works on the same value.
        let t = crate::image::format::Template::parse("{{.FromImage}} {{len .History}}").unwrap();
        assert_eq!(
            t.render_serialize(&inspect).unwrap(),
            "localhost/app:latest 3"
        );
    }
}
