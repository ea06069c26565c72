//! The steady state after the programme year, for benchmarks and load tests:
//! a cheap loop of returning donors' gifts, allocations, confirmations,
//! onward transfers and handovers that stays valid because every spend is
//! checked against the books.
//!
//! Each step writes exactly one event, so a caller gets exactly the number
//! it asked for. Events are spread evenly over January 2026 whatever their
//! number, so a ledger whose clock is past that month accepts them all
//! (SPEC §6: `occurred_at` at most 5 minutes in the future).

use rand::Rng;

use crate::calendar::{Date, NANOS_PER_SECOND};
use crate::catalogue::*;
use crate::generator::{Generator, Onward, Pace};

const WINDOW_START: Date = Date::new(2026, 1, 2);
const WINDOW_DAYS: i64 = 29;

/// At most this many transfers in transit: beyond it the oldest is confirmed
/// first, so the queue (and the generator's memory) stays bounded.
const FLIGHTS_MAX: usize = 256;

/// Smaller handovers than in the programme year keep the events small and
/// the benchmark about the ledger, not about hashing tokens.
const STEADY_CHILDREN_MAX: u32 = 40;

/// Tries to find a commune committee with something to hand out before
/// giving up on a delivery this step.
const DELIVERY_ATTEMPTS_MAX: usize = 3;

impl Generator {
    /// Switches the clock to the steady state's window, spread for `events`.
    pub(crate) fn begin_steady_state(&mut self, events: usize) {
        let window_nanos = WINDOW_DAYS * 86_400 * NANOS_PER_SECOND;
        let events = i64::try_from(events.max(1)).expect("event counts fit in i64");
        self.pace = Pace::Even {
            step_nanos: (window_nanos / events).max(1),
        };
        self.clock = self.clock.max(WINDOW_START.at_local(0, 0));
    }

    /// Writes exactly one event.
    pub(crate) fn steady_step(&mut self) {
        let written = self.out.len();
        self.write_one_steady_event();
        assert_eq!(
            self.out.len(),
            written + 1,
            "a steady step writes one event"
        );
    }

    fn write_one_steady_event(&mut self) {
        let roll = self.rng.random_range(0..100u32);
        if self.flights.len() >= FLIGHTS_MAX || (roll < 20 && !self.flights.is_empty()) {
            let flight = self.flights.pop_front().expect("non-empty");
            self.confirm(flight);
            return;
        }
        if roll < 35
            && let Some(onward) = self.onward.pop_front()
            && self.forward(onward, 0)
        {
            return;
        }
        if roll < 55 && self.steady_allocation() {
            return;
        }
        if roll < 75 && self.steady_delivery() {
            return;
        }
        self.steady_gift();
    }

    /// A returning individual donor gives again.
    fn steady_gift(&mut self) {
        let donor = self.individuals[self.rng.random_range(0..self.individuals.len())];
        let theme = CATEGORIES[self.rng.random_range(0..CATEGORIES.len())];
        let gift = self.individual_gift(donor, theme);
        self.receipt(&gift);
    }

    /// An agency sends one pool, or half of it, towards a commune.
    fn steady_allocation(&mut self) -> bool {
        let agency = self.cast.agencies[self.rng.random_range(0..AGENCIES.len())];
        let pools = self.books.pool_count(agency);
        if pools == 0 {
            return false;
        }
        let pick = self.rng.random_range(0..pools);
        let Some((asset, mark, balance)) = self.books.nth_pool(agency, pick) else {
            return false;
        };
        let quantity = if balance >= 2_000_000 && asset == Asset::Vnd {
            balance / 2 / 1_000 * 1_000
        } else {
            balance
        };
        let commune = mark.commune.unwrap_or_else(|| self.pick_commune());
        let district = COMMUNES[commune].district;
        let onward = Onward {
            holder: agency,
            to: self.cast.district_offices[district],
            asset,
            mark,
            quantity,
            commune,
        };
        let note = format!("Phân bổ thường xuyên cho xã {}", COMMUNES[commune].name);
        let flight = self.transfer(&onward, 0, note);
        self.flights.push_back(flight);
        true
    }

    /// A commune committee hands out part of one of its pools.
    fn steady_delivery(&mut self) -> bool {
        for _ in 0..DELIVERY_ATTEMPTS_MAX {
            let commune = self.rng.random_range(0..COMMUNES.len());
            let committee = self.cast.committees[commune];
            let pools = self.books.pool_count(committee);
            if pools == 0 {
                continue;
            }
            let pick = self.rng.random_range(0..pools);
            let pool = self
                .books
                .nth_pool(committee, pick)
                .expect("pick below the pool count");
            if let Some(plan) = self.plan_delivery(committee, pool, STEADY_CHILDREN_MAX) {
                let period = self.today().period();
                self.deliver(&plan, period);
                return true;
            }
        }
        false
    }
}
