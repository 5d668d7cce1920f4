//! Go's `time.ParseDuration`, for HEALTHCHECK's `--interval`, `--timeout`,
//! `--start-period` and `--start-interval` (`30s`, `1m30s`, `1.5h`, `500ms`).

use std::time::Duration;

/// Parses a Go duration. Negative durations are returned as `Err` with the
/// magnitude, since a health-check interval can never be negative.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac = &r[..n];
            rest = &r[n..];
        }
        if int.is_empty() && frac.is_empty() {
            return Err("expected a number".into());
        }
        let unit_len = rest
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("missing unit".into()),
            other => return Err(format!("unknown unit {other:?}")),
        };
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| "number too large".to_string())?
        };
        let mut value = whole.checked_mul(nanos).ok_or("number too large")?;
        if !frac.is_empty() {
            let digits = &frac[..frac.len().min(30)];
            let f: u128 = digits.parse().map_err(|_| "bad fraction".to_string())?;
            value += f * nanos / 10u128.pow(digits.len() as u32);
        }
        total = total.checked_add(value).ok_or("number too large")?;
        if total > i64::MAX as u128 {
            return Err("number too large".into());
        }
    }
    let d = Duration::from_nanos(total as u64);
    if neg && !d.is_zero() {
        return Err("negative duration".into());
    }
    Ok(d)
}

/// Formats a duration as Go does (`1m30s`, `500ms`, `0s`), for the printer.
pub fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        // Sub-second: pick the largest exact unit.
        return if ns.is_multiple_of(1_000_000) {
            format!("{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            format!("{}us", ns / 1_000)
        } else {
            format!("{ns}ns")
        };
    }
    let h = ns / 3_600_000_000_000;
    let m = (ns / 60_000_000_000) % 60;
    let s_ns = ns % 60_000_000_000;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    let secs = s_ns / 1_000_000_000;
    let frac = s_ns % 1_000_000_000;
    if frac == 0 {
        out.push_str(&format!("{secs}s"));
    } else {
        let f = format!("{frac:09}");
        out.push_str(&format!("{secs}.{}s", f.trim_end_matches('0')));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("2µs"), Ok(Duration::from_micros(2)));
        assert_eq!(parse_go_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), Err("missing unit".into()));
        assert_eq!(parse_go_duration("10x"), Err("unknown unit \"x\"".into()));
        assert_eq!(parse_go_duration("-1s"), Err("negative duration".into()));
        assert_eq!(parse_go_duration(""), Err("empty duration".into()));
        assert_eq!(parse_go_duration("s"), Err("expected a number".into()));
        assert_eq!(
            parse_go_duration("99999999999h"),
            Err("number too large".into())
        );
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "30s",
            "1m30s",
            "1h0m0s",
            "500ms",
            "1.5s",
            "2us",
            "7ns",
            "0s",
            "1h2m3.004s",
        ] {
            let d = parse_go_duration(s).unwrap();
            assert_eq!(parse_go_duration(&format_go_duration(d)), Ok(d), "{s}");
        }
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
    }
}
