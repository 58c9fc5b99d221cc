//! Wall-clock timestamps for container state, written as RFC 3339 UTC
//! (`2026-11-29T09:01:02.123456789Z`), and human ages ("5 minutes ago").

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(Duration);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
    }

    /// The UTC date, `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        let (y, m, d) = civil_from_days((self.0.as_secs() / 86_400) as i64);
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// How long ago, for `boxr ps`: "12 seconds ago", "3 minutes ago", "2 days ago".
    pub fn age(&self) -> String {
        let secs = Timestamp::now().0.saturating_sub(self.0).as_secs();
        let (n, unit) = match secs {
            0..60 => (secs, "second"),
            60..3600 => (secs / 60, "minute"),
            3600..86400 => (secs / 3600, "hour"),
            _ => (secs / 86400, "day"),
        };
        format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
    }
}

/// Days since 1970-01-01 → (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) → days since 1970-01-01, the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs() as i64;
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let s = secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
            s / 3600,
            s / 60 % 60,
            s % 60,
            self.0.subsec_nanos()
        )
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;
    fn from_str(s: &str) -> Result<Timestamp, String> {
        let bad = || format!("invalid timestamp {s:?}: expected YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ");
        let b = s.as_bytes();
        if b.len() != 30
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[19] != b'.'
            || b[29] != b'Z'
        {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().map_err(|_| bad());
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, m, sec, nanos) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..29)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 59 {
            return Err(bad());
        }
        let days = days_from_civil(i64::from(year), month, day);
        let secs =
            u64::try_from(days * 86_400 + i64::from(h * 3600 + m * 60 + sec)).map_err(|_| bad())?;
        Ok(Timestamp(Duration::new(secs, nanos)))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        let t = Timestamp(Duration::new(1_795_857_662, 123_456_789));
        assert_eq!(t.to_string(), "2026-11-28T09:21:02.123456789Z");
        assert_eq!("2026-11-28T09:21:02.123456789Z".parse(), Ok(t));
        assert_eq!(Timestamp(Duration::ZERO).to_string(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            "2000-02-29T23:59:59.000000000Z".parse::<Timestamp>().unwrap().to_string(),
            "2000-02-29T23:59:59.000000000Z"
        );
        assert!("2026-13-01T00:00:00.000000000Z".parse::<Timestamp>().is_err());
        assert!("yesterday".parse::<Timestamp>().is_err());
        assert_eq!(t.date(), "2026-11-28");
        assert_eq!(Timestamp(Duration::from_secs(11_016 * 86_400)).date(), "2000-02-29");
    }

    #[test]
    fn now_round_trips() {
        let now = Timestamp::now();
        assert_eq!(now.to_string().parse(), Ok(now));
        assert_eq!(now.age(), "0 seconds ago");
        assert_eq!(Timestamp(now.0 - Duration::from_secs(60)).age(), "1 minute ago");
        assert_eq!(Timestamp(now.0 - Duration::from_secs(7200)).age(), "2 hours ago");
    }
}
