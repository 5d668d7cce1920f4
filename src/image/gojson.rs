//! JSON bytes exactly as Go's `encoding/json` writes them, and Go's
//! RFC 3339 timestamps.
//!
//! Image configs and manifests are content-addressed: the same image must
//! give the same digest whether docker, buildah or rbuild wrote it. serde
//! already keeps struct field order and `BTreeMap` sorts keys as Go sorts map
//! keys; what differs is string escaping (Go escapes `<`, `>`, `&`, U+2028 and
//! U+2029) and the time format (RFC 3339 with trailing zeros of the fraction
//! cut), both fixed here.

use std::fmt;
use std::io;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::ser::{Formatter, PrettyFormatter};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Writes `fragment` with Go's extra HTML-safe escapes.
fn write_go_fragment<W: ?Sized + io::Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    let mut start = 0;
    for (i, ch) in fragment.char_indices() {
        let escape = match ch {
            '<' => "\\u003c",
            '>' => "\\u003e",
            '&' => "\\u0026",
            '\u{2028}' => "\\u2028",
            '\u{2029}' => "\\u2029",
            _ => continue,
        };
        writer.write_all(&fragment.as_bytes()[start..i])?;
        writer.write_all(escape.as_bytes())?;
        start = i + ch.len_utf8();
    }
    writer.write_all(&fragment.as_bytes()[start..])
}

/// Compact output, as `json.Marshal`.
struct GoCompact;

impl Formatter for GoCompact {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_go_fragment(writer, fragment)
    }
}

/// Indented output, as a `json.Encoder` with `SetIndent("", indent)`.
struct GoPretty<'a>(PrettyFormatter<'a>);

impl Formatter for GoPretty<'_> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_go_fragment(writer, fragment)
    }
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// `json.Marshal(value)`: the bytes that get digested.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, GoCompact,
    ))?;
    Ok(out)
}

/// `json.MarshalIndent(value, "", indent)`, without a trailing newline.
pub fn to_vec_indent<T: Serialize + ?Sized>(
    value: &T,
    indent: &str,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    let formatter = GoPretty(PrettyFormatter::with_indent(indent.as_bytes()));
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, formatter,
    ))?;
    Ok(out)
}

/// A point in time, always UTC, written as Go writes a `time.Time`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::from(OffsetDateTime::now_utc())
    }

    /// Whole seconds since the Unix epoch, as `SOURCE_DATE_EPOCH` gives them.
    pub fn from_unix(seconds: i64) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .map(Timestamp)
    }

    pub fn unix(&self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn datetime(&self) -> OffsetDateTime {
        self.0
    }

    /// Parses RFC 3339 (any offset; kept as UTC).
    pub fn parse(text: &str) -> Result<Timestamp, time::error::Parse> {
        OffsetDateTime::parse(text, &Rfc3339).map(Timestamp::from)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(t: OffsetDateTime) -> Timestamp {
        Timestamp(t.to_offset(UtcOffset::UTC))
    }
}

impl fmt::Display for Timestamp {
    /// Go's `time.RFC3339Nano`: fraction only when non-zero, trailing zeros cut.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        let nanos = t.nanosecond();
        if nanos != 0 {
            let digits = format!("{nanos:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(deserializer)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Go's `struct{}`: the value type of `ExposedPorts` and `Volumes` sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn escapes_like_go() {
        let v = serde_json::json!({"b": "<a&b>\u{2028}", "a": "é\n\"x\""});
        let out = String::from_utf8(to_vec(&v).unwrap()).unwrap();
        assert_eq!(out, r#"{"a":"é\n\"x\"","b":"\u003ca\u0026b\u003e\u2028"}"#);
    }

    #[test]
    fn indents_like_go_encoder() {
        let mut m = BTreeMap::new();
        m.insert("k", vec!["<v>"]);
        m.insert("e", vec![]);
        let out = String::from_utf8(to_vec_indent(&m, "    ").unwrap()).unwrap();
        assert_eq!(
            out,
            "{\n    \"e\": [],\n    \"k\": [\n        \"\\u003cv\\u003e\"\n    ]\n}"
        );
    }

    #[test]
    fn timestamps_print_as_rfc3339nano() {
        let t = Timestamp::from_unix(0).unwrap();
        assert_eq!(t.to_string(), "1970-01-01T00:00:00Z");
        let t = Timestamp::parse("2024-03-05T10:11:12.120000000+02:00").unwrap();
        assert_eq!(t.to_string(), "2024-03-05T08:11:12.12Z");
        let json = to_vec(&t).unwrap();
        assert_eq!(json, br#""2024-03-05T08:11:12.12Z""#);
        let back: Timestamp = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, t);
        assert!(Timestamp::parse("yesterday").is_err());
    }
}
