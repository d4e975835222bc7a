//! Time: one type for every instant the project records, RFC 3339 (UTC) on the wire.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::DrError;

/// An instant, UTC. Serialised as RFC 3339 (`2026-11-23T15:04:05.123Z`).
pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now()
}

/// RFC 3339 with as many fraction digits as needed: how times are shown and tagged.
pub fn rfc3339(at: Timestamp) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses an RFC 3339 time (any offset), e.g. from a tag or an S3 object.
pub fn parse(text: &str) -> Result<Timestamp, DrError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| DrError::InvalidInput { message: format!("{text:?} is not an RFC 3339 time: {e}") })
}

/// `20261123T150405Z`: a time usable in execution names and resource identifiers.
pub fn compact(at: Timestamp) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Seconds from `from` to `to`; negative when `to` is earlier.
pub fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// `at` minus a duration (saturating at the epoch).
pub fn before(at: Timestamp, by: Duration) -> Timestamp {
    chrono::Duration::from_std(by).ok().and_then(|by| at.checked_sub_signed(by)).unwrap_or(DateTime::UNIX_EPOCH)
}

/// `at` plus a duration (saturating at the latest representable time).
pub fn after(at: Timestamp, by: Duration) -> Timestamp {
    chrono::Duration::from_std(by).ok().and_then(|by| at.checked_add_signed(by)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The time elapsed from `from` to `to`, zero when `to` is earlier.
pub fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

/// The SDK's time type, for request fields.
pub fn to_smithy(at: Timestamp) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from(SystemTime::from(at))
}

/// From the SDK's time type; `None` outside chrono's range.
pub fn from_smithy(at: &aws_smithy_types::DateTime) -> Option<Timestamp> {
    DateTime::from_timestamp(at.secs(), at.subsec_nanos())
}

/// Seconds since the Unix epoch, for minute arithmetic on metric datapoints.
pub fn epoch_seconds(at: Timestamp) -> i64 {
    at.timestamp()
}

/// The instant `seconds` after the Unix epoch.
pub fn from_epoch_seconds(seconds: i64) -> Timestamp {
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_rfc3339_and_the_sdk_type() {
        let at = parse("2026-11-23T15:04:05.123+01:00").expect("parses");
        assert_eq!(rfc3339(at), "2026-11-23T14:04:05.123Z");
        assert_eq!(compact(at), "20261123T140405Z");
        assert_eq!(from_smithy(&to_smithy(at)), Some(at));
        assert_eq!(serde_json::to_string(&at).expect("json"), "\"2026-11-23T14:04:05.123Z\"");
        assert!(parse("yesterday").is_err());
        assert_eq!(seconds_between(at, after(at, Duration::from_millis(1500))), 1.5);
        assert_eq!(elapsed(at, before(at, Duration::from_secs(5))), Duration::ZERO);
    }
}
