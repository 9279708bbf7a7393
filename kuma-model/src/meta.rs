//! Resource identity and metadata: kind, mesh, name, creation time and where
//! the resource was read from.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Where a resource (or a violation) was read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Location {
    /// The file name as given to the loader.
    pub file: Arc<str>,
    /// 1-based line.
    pub line: usize,
}

impl fmt::Display for Location {
    /// `file:line`, or `file` for a whole file or folder (line 0).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 { write!(f, "{}", self.file) } else { write!(f, "{}:{}", self.file, self.line) }
    }
}

/// A point in time with nanosecond precision, from RFC 3339 text
/// (`2024-01-02T03:04:05.5Z`), used to order resources by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i128);

impl Timestamp {
    /// Nanoseconds since the Unix epoch (negative before it).
    pub fn unix_nanos(self) -> i128 {
        self.0
    }

    /// Parses RFC 3339 (`Z` or `±HH:MM` offsets, optional fraction).
    ///
    /// ```
    /// use kuma_model::Timestamp;
    /// let a = Timestamp::parse("2024-01-01T00:00:00Z").unwrap();
    /// let b = Timestamp::parse("2024-01-01T01:00:00.5+01:00").unwrap();
    /// assert!(a < b);
    /// ```
    pub fn parse(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let s = text.get(r)?;
            if s.bytes().all(|c| c.is_ascii_digit()) { s.parse().ok() } else { None }
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
            return None;
        }
        let mut i = 19;
        let mut nanos: i128 = 0;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = text.get(start..i)?;
            if digits.is_empty() {
                return None;
            }
            let mut padded = digits.chars().take(9).collect::<String>();
            while padded.len() < 9 {
                padded.push('0');
            }
            nanos = padded.parse().ok()?;
        }
        let offset_secs = match text.get(i..)? {
            "Z" | "z" => 0,
            rest if rest.len() == 6
                && (rest.starts_with('+') || rest.starts_with('-'))
                && rest.as_bytes()[3] == b':' =>
            {
                let h = num(i + 1..i + 3)?;
                let m = num(i + 4..i + 6)?;
                let sign = if rest.starts_with('-') { -1 } else { 1 };
                sign * (h * 3600 + m * 60)
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
        Some(Timestamp(i128::from(secs) * 1_000_000_000 + nanos))
    }
}

// Howard Hinnant's days-from-civil algorithm.
impl Timestamp {
    /// The time `nanos` nanoseconds after the Unix epoch (before it when
    /// negative).
    pub fn from_unix_nanos(nanos: i128) -> Timestamp {
        Timestamp(nanos)
    }

    /// A system time (before 1970 included).
    pub fn from_system_time(t: std::time::SystemTime) -> Timestamp {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp(d.as_nanos() as i128),
            Err(e) => Timestamp(-(e.duration().as_nanos() as i128)),
        }
    }

    /// As a system time.
    pub fn to_system_time(self) -> std::time::SystemTime {
        let magnitude = std::time::Duration::from_nanos(self.0.unsigned_abs().min(u64::MAX as u128) as u64);
        if self.0 >= 0 { std::time::UNIX_EPOCH + magnitude } else { std::time::UNIX_EPOCH - magnitude }
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC (`2024-01-02T03:04:05.5Z`), the fraction only as long
    /// as it needs to be: what [`Timestamp::parse`] reads back to the same time.
    ///
    /// ```
    /// use kuma_model::Timestamp;
    /// for text in ["2024-01-02T03:04:05Z", "1969-12-31T23:59:59.000000001Z", "2000-02-29T12:00:00.5Z"] {
    ///     assert_eq!(Timestamp::parse(text).unwrap().to_string(), text);
    /// }
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NANOS_PER_DAY: i128 = 86_400 * 1_000_000_000;
        let days = self.0.div_euclid(NANOS_PER_DAY);
        let of_day = self.0.rem_euclid(NANOS_PER_DAY);
        let (y, m, d) = civil_from_days(days as i64);
        let secs = of_day / 1_000_000_000;
        let nanos = of_day % 1_000_000_000;
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)?;
        if nanos != 0 {
            let digits = format!("{nanos:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

/// The civil date of a day count since 1970-01-01 (the inverse of
/// [`days_from_civil`], proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The metadata every resource carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// Resource name, unique per kind and mesh.
    pub name: String,
    /// Mesh the resource belongs to (empty for `Mesh` itself).
    pub mesh: String,
    /// `creationTime` (Universal) or `metadata.creationTimestamp` (Kubernetes).
    pub creation_time: Option<Timestamp>,
    /// Labels (Universal `labels`, Kubernetes `metadata.labels`).
    pub labels: BTreeMap<String, String>,
    /// The Kubernetes namespace of a namespaced resource read in the
    /// Kubernetes form (its name here is then `<name>.<namespace>`).
    pub namespace: Option<String>,
    /// Where the resource was read from (its document's first line).
    pub location: Location,
}

impl Meta {
    /// The key that orders resources from oldest to newest: creation time
    /// when given (resources without one count as newer than every dated
    /// resource), then the name, so the order never depends on the order
    /// resources were read in.
    pub fn creation_order(&self) -> (bool, Option<Timestamp>, &str) {
        (self.creation_time.is_none(), self.creation_time, &self.name)
    }
}

/// The loader's rules for a resource's identity, for resources built in
/// code: a name, a mesh exactly when the kind is inside one. Each problem
/// is (field, message).
pub(crate) fn check_identity(key: &crate::ResourceKey) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if key.name.is_empty() {
        out.push(("name", "cannot be empty".to_string()));
    }
    match (key.kind.is_mesh_scoped(), key.mesh.is_empty()) {
        (true, true) => out.push(("mesh", "cannot be empty".to_string())),
        (false, false) => out.push(("mesh", format!("a {} is not inside a mesh", key.kind))),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = |s| Timestamp::parse(s).unwrap().0;
        assert_eq!(t("1970-01-01T00:00:00Z"), 0);
        assert_eq!(t("1970-01-01T00:00:01.5Z"), 1_500_000_000);
        assert_eq!(t("1970-01-01T01:00:00+01:00"), 0);
        assert_eq!(t("2000-03-01T00:00:00Z"), 951_868_800_000_000_000);
        assert!(Timestamp::parse("2000-13-01T00:00:00Z").is_none());
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(Timestamp::parse("2000-01-01T00:00:00+0é:00").is_none(), "no panic on non-ASCII");
        assert!(Timestamp::parse("2000-01-01T00:00:00é").is_none());
    }
}
