//! The programme calendar: the working days and public holidays of 2025,
//! and the instants events carry, on the ledger crate's Vietnamese calendar
//! (`aidledger_ledger::calendar`, UTC+7).
//!
//! Nothing here reads a clock: every instant is computed from a date, so the
//! stream is the same whenever and wherever it is generated.

use std::fmt;

use aidledger_ledger::calendar::{self, Datelike as _, NaiveDate};

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

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

    fn naive(self) -> NaiveDate {
        calendar::date(self.year, self.month, self.day).expect("programme dates are real dates")
    }

    fn of_naive(date: NaiveDate) -> Self {
        Date::new(date.year(), date.month(), date.day())
    }

    /// Days since 1970-01-01.
    pub(crate) fn days_since_epoch(self) -> i64 {
        i64::from(self.naive().num_days_from_ce()) - EPOCH_DAYS_FROM_CE
    }

    /// The date `days` after 1970-01-01.
    pub(crate) fn from_days_since_epoch(days: i64) -> Self {
        let from_ce = i32::try_from(days + EPOCH_DAYS_FROM_CE).expect("dates stay within i32 days");
        Date::of_naive(NaiveDate::from_num_days_from_ce_opt(from_ce).expect("a representable date"))
    }

    /// The date in Vietnam of an instant, in nanoseconds since the epoch.
    pub(crate) fn of_instant(nanos: i64) -> Self {
        Date::of_naive(calendar::vn_date(nanos.div_euclid(NANOS_PER_SECOND)))
    }

    pub(crate) fn next(self) -> Self {
        Date::from_days_since_epoch(self.days_since_epoch() + 1)
    }

    /// 0 for Monday through 6 for Sunday.
    pub(crate) fn weekday(self) -> u32 {
        self.naive().weekday().num_days_from_monday()
    }

    /// Offices record and hand over aid on weekdays that are not holidays.
    pub(crate) fn is_working_day(self) -> bool {
        self.weekday() < 5
            && !(self.year == 2025 && HOLIDAYS_2025.contains(&(self.month, self.day)))
    }

    /// The instant `hour:minute` in Vietnam on this date, in nanoseconds.
    pub(crate) fn at_local(self, hour: u32, minute: u32) -> i64 {
        calendar::vn_time(self.naive(), hour, minute) * NANOS_PER_SECOND
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
