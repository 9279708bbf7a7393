//! `google.protobuf.Duration` as Kuma reads it: Go duration text
//! (`300ms`, `1m30s`, `1.5s`, `-1s`), written back in proto JSON form.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A signed duration with nanosecond precision.
///
/// ```
/// use kuma_model::Duration;
/// let d: Duration = "1m30.5s".parse().unwrap();
/// assert_eq!(d.as_nanos(), 90_500_000_000);
/// assert_eq!(d.to_string(), "90.500s");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Duration(i64);

impl Duration {
    /// From nanoseconds.
    pub const fn from_nanos(nanos: i64) -> Self {
        Duration(nanos)
    }

    /// From whole seconds.
    pub const fn from_secs(secs: i64) -> Self {
        Duration(secs * 1_000_000_000)
    }

    /// From milliseconds.
    pub const fn from_millis(millis: i64) -> Self {
        Duration(millis * 1_000_000)
    }

    /// Nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds and the remaining nanoseconds, both carrying the sign,
    /// as `google.protobuf.Duration` holds them.
    pub const fn seconds_and_nanos(self) -> (i64, i32) {
        (self.0 / 1_000_000_000, (self.0 % 1_000_000_000) as i32)
    }

    /// True for zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True above zero (Envoy takes no negative durations).
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.text, *.out_of_range))]
pub struct DurationError {
    text: String,
    out_of_range: bool,
}

fn describe(text: &str, out_of_range: bool) -> String {
    if out_of_range {
        format!("duration {text:?} is out of range: at most 2562047h47m16.854775807s (about 292 years), as in Kuma")
    } else {
        format!(
            "invalid duration {text:?}: expected a number with a unit (ns, us, ms, s, m, h), for example \"1.5s\" or \"1m30s\""
        )
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;

    /// Go's `time.ParseDuration` grammar.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || DurationError { text: text.to_string(), out_of_range: false };
        let too_big = || DurationError { text: text.to_string(), out_of_range: true };
        let (negative, mut rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if rest == "0" {
            return Ok(Duration(0));
        }
        if rest.is_empty() {
            return Err(err());
        }
        let mut total: i128 = 0;
        while !rest.is_empty() {
            let digits_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(err)?;
            let (number, tail) = rest.split_at(digits_end);
            if number.is_empty() || number == "." || number.matches('.').count() > 1 {
                return Err(err());
            }
            let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_end);
            let scale: i128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(err()),
            };
            let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
            // Digits only here, so a failed parse is a number too large.
            let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_big())? };
            let mut value = whole.checked_mul(scale).ok_or_else(too_big)?;
            let mut place = scale;
            for digit in frac.bytes() {
                place /= 10;
                value += i128::from(digit - b'0') * place;
            }
            total = total.checked_add(value).ok_or_else(too_big)?;
            rest = tail;
        }
        let total = if negative { -total } else { total };
        i64::try_from(total).map(Duration).map_err(|_| too_big())
    }
}

impl fmt::Display for Duration {
    /// Proto JSON form: seconds with 0, 3, 6 or 9 fractional digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (secs, nanos) = (abs / 1_000_000_000, abs % 1_000_000_000);
        if nanos == 0 {
            write!(f, "{sign}{secs}s")
        } else if nanos % 1_000_000 == 0 {
            write!(f, "{sign}{secs}.{:03}s", nanos / 1_000_000)
        } else if nanos % 1_000 == 0 {
            write!(f, "{sign}{secs}.{:06}s", nanos / 1_000)
        } else {
            write!(f, "{sign}{secs}.{nanos:09}s")
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_durations_say_so() {
        let err = "999999999999s".parse::<Duration>().unwrap_err().to_string();
        assert!(err.starts_with("duration \"999999999999s\" is out of range"), "{err}");
        let err = "99999999999999999999999999999999999999999h".parse::<Duration>().unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
        assert!("2562047h".parse::<Duration>().is_ok());
        let err = "5 s".parse::<Duration>().unwrap_err().to_string();
        assert!(err.contains("expected a number with a unit"), "{err}");
    }

    #[test]
    fn parses_go_durations() {
        let p = |s: &str| s.parse::<Duration>().map(|d| d.as_nanos());
        assert_eq!(p("1s"), Ok(1_000_000_000));
        assert_eq!(p("1.5s"), Ok(1_500_000_000));
        assert_eq!(p("300ms"), Ok(300_000_000));
        assert_eq!(p("1m30s"), Ok(90_000_000_000));
        assert_eq!(p("1h"), Ok(3_600_000_000_000));
        assert_eq!(p("-1s"), Ok(-1_000_000_000));
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p(".5s"), Ok(500_000_000));
        assert!(p("").is_err());
        assert!(p("1").is_err());
        assert!(p("1x").is_err());
        assert!(p("s").is_err());
    }

    #[test]
    fn prints_proto_json() {
        assert_eq!(Duration::from_secs(15).to_string(), "15s");
        assert_eq!(Duration::from_millis(500).to_string(), "0.500s");
        assert_eq!(Duration::from_nanos(1_000).to_string(), "0.000001s");
        assert_eq!(Duration::from_nanos(-1_500_000_000).to_string(), "-1.500s");
    }
}
