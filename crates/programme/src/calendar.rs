//! The programme calendar: civil dates in Vietnam (UTC+7), the working days
//! and public holidays of 2025, and the instants events carry.
//!
//! Nothing here reads a clock: every instant is computed from a date, so the
//! stream is the same whenever and wherever it is generated.

use std::fmt;

/// Vietnam keeps UTC+7 all year (no daylight saving).
pub(crate) const ICT_OFFSET_SECONDS: i64 = 7 * 3_600;

const SECONDS_PER_DAY: i64 = 86_400;

pub(crate) const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Public holidays of 2025 on which the agencies' offices are closed: New
/// Year, the Tết Ất Tỵ break (25 January to 2 February), the Hùng Kings'
/// festival, Reunification and Labour Day with the bridging day, National Day.
const HOLIDAYS_2025: [(u32, u32); 16] = [
    (1, 1),
    (1, 25),
    (1, 26),
    (1, 27),
    (1, 28),
    (1, 29),
    (1, 30),
    (1, 31),
    (2, 1),
    (2, 2),
    (4, 7),
    (4, 30),
    (5, 1),
    (5, 2),
    (9, 1),
    (9, 2),
];

/// A civil date in the proleptic Gregorian calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    pub(crate) const fn new(year: i32, month: u32, day: u32) -> Self {
        Date { year, month, day }
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub(crate) fn days_since_epoch(self) -> i64 {
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = i64::from(self.month);
        let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5
            + i64::from(self.day)
            - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    pub(crate) fn from_days_since_epoch(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Date {
            year: i32::try_from(year).expect("dates stay within i32 years"),
            month: u32::try_from(month).expect("month in 1..=12"),
            day: u32::try_from(day).expect("day in 1..=31"),
        }
    }

    /// The local date of an instant, in nanoseconds since the epoch.
    pub(crate) fn of_instant(nanos: i64) -> Self {
        let local_seconds = nanos.div_euclid(NANOS_PER_SECOND) + ICT_OFFSET_SECONDS;
        Date::from_days_since_epoch(local_seconds.div_euclid(SECONDS_PER_DAY))
    }

    pub(crate) fn next(self) -> Self {
        Date::from_days_since_epoch(self.days_since_epoch() + 1)
    }

    /// 0 for Monday through 6 for Sunday (1970-01-01 was a Thursday).
    pub(crate) fn weekday(self) -> u32 {
        u32::try_from((self.days_since_epoch() + 3).rem_euclid(7)).expect("0..7")
    }

    /// Offices record and hand over aid on weekdays that are not holidays.
    pub(crate) fn is_working_day(self) -> bool {
        self.weekday() < 5
            && !(self.year == 2025 && HOLIDAYS_2025.contains(&(self.month, self.day)))
    }

    /// The instant `hour:minute` local time on this date, in nanoseconds.
    pub(crate) fn at_local(self, hour: u32, minute: u32) -> i64 {
        let seconds = self.days_since_epoch() * SECONDS_PER_DAY
            + i64::from(hour) * 3_600
            + i64::from(minute) * 60
            - ICT_OFFSET_SECONDS;
        seconds * NANOS_PER_SECOND
    }

    /// SPEC §7 delivery: `period` is `YYYY-MM`.
    pub(crate) fn period(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

/// `YYYY-MM-DD`, the form of SPEC §7 `due_date`.
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip_and_known_weekdays() {
        assert_eq!(Date::new(1970, 1, 1).days_since_epoch(), 0);
        // 2025-01-01 00:00 UTC is 1_735_689_600 seconds after the epoch.
        assert_eq!(
            Date::new(2025, 1, 1).days_since_epoch() * 86_400,
            1_735_689_600
        );
        for days in 20_000..21_000 {
            assert_eq!(Date::from_days_since_epoch(days).days_since_epoch(), days);
        }
        // 2025-01-01 was a Wednesday, 2025-12-25 a Thursday.
        assert_eq!(Date::new(2025, 1, 1).weekday(), 2);
        assert_eq!(Date::new(2025, 12, 25).weekday(), 3);
        assert!(!Date::new(2025, 1, 29).is_working_day(), "Tết");
        assert!(Date::new(2025, 2, 3).is_working_day());
    }

    #[test]
    fn local_dates_follow_vietnam_time() {
        let morning = Date::new(2025, 3, 1).at_local(0, 30);
        assert_eq!(Date::of_instant(morning), Date::new(2025, 3, 1));
        assert_eq!(
            Date::of_instant(morning - 3_600 * NANOS_PER_SECOND).period(),
            "2025-02"
        );
    }
}
