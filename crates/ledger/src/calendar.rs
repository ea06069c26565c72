//! The Vietnamese calendar, the one place dates are computed: Vietnam keeps
//! UTC+7 all year (no daylight saving), so a date means that day in
//! Vietnam. Built on `chrono`'s proleptic Gregorian dates; no clock is read
//! here (the crate has none: its `chrono` has no `clock` feature).

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone as _, Utc};
pub use chrono::{Datelike, NaiveDate};

/// Vietnam's offset from UTC, in seconds.
pub const VN_OFFSET_SECONDS: i32 = 7 * 3_600;

fn vn_offset() -> FixedOffset {
    FixedOffset::east_opt(VN_OFFSET_SECONDS).expect("UTC+7 is a valid offset")
}

/// The instant `seconds` after the Unix epoch, clamped a day inside what
/// `chrono` can represent (±262,000 years; no event the rules accept comes
/// near), so shifting it to Vietnam's time cannot overflow.
fn instant(seconds: i64) -> DateTime<Utc> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp() + 86_400;
    let max = DateTime::<Utc>::MAX_UTC.timestamp() - 86_400;
    DateTime::from_timestamp(seconds.clamp(min, max), 0).expect("clamped into chrono's range")
}

/// The date in Vietnam at `seconds` after the Unix epoch.
pub fn vn_date(seconds: i64) -> NaiveDate {
    instant(seconds).with_timezone(&vn_offset()).date_naive()
}

/// `YYYY-MM-DD` of [`vn_date`]: the form of SPEC §7 dates.
pub fn vn_date_string(seconds: i64) -> String {
    vn_date(seconds).format("%Y-%m-%d").to_string()
}

/// The Unix time of `hour:minute` in Vietnam on `date`.
pub fn vn_time(date: NaiveDate, hour: u32, minute: u32) -> i64 {
    let local = date
        .and_hms_opt(hour, minute, 0)
        .expect("an hour under 24 and a minute under 60");
    vn_offset()
        .from_local_datetime(&local)
        .single()
        .expect("a fixed offset maps every local time once")
        .timestamp()
}

/// The Unix time of midnight in Vietnam on `date` (17:00 UTC the day
/// before).
pub fn vn_midnight(date: NaiveDate) -> i64 {
    vn_time(date, 0, 0)
}

/// `date` if `year-month-day` is a real date.
pub fn date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

/// RFC 3339 in UTC at whole seconds (`2025-01-01T00:00:00Z`), as Atom and
/// IATI want it.
pub fn rfc3339_utc(seconds: i64) -> String {
    instant(seconds).to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_dates_are_seven_hours_ahead_of_utc() {
        // 2024-12-31T17:00:00Z is 2025-01-01 00:00 in Hà Nội.
        assert_eq!(vn_date(1_735_664_400), date(2025, 1, 1).unwrap());
        assert_eq!(vn_date(1_735_664_399), date(2024, 12, 31).unwrap());
        assert_eq!(vn_date_string(0), "1970-01-01");
        // A leap day.
        assert_eq!(vn_date_string(1_709_164_800), "2024-02-29");
        assert_eq!(vn_midnight(date(2025, 1, 1).unwrap()), 1_735_664_400);
        // 2025-03-01 00:30 in Vietnam is 2025-02-28T17:30:00Z.
        assert_eq!(vn_time(date(2025, 3, 1).unwrap(), 0, 30), 1_740_763_800);
    }

    #[test]
    fn instants_print_in_utc_and_out_of_range_ones_clamp() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_735_664_399), "2024-12-31T16:59:59Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert!(vn_date(i64::MAX) > date(200_000, 1, 1).unwrap());
        assert!(vn_date(i64::MIN) < date(-200_000, 1, 1).unwrap());
        assert!(date(2025, 2, 29).is_none());
        assert!(date(2024, 2, 29).is_some());
    }
}
