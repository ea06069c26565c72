//! A seeded generator of realistic, signed aidledger event streams: the
//! programme year `aidledger-demo` submits to show a newcomer the whole
//! system, and, with a size, large signed data sets for benchmarks and load
//! tests.
//!
//! The stream is a year (2025) of a Ninh Thuận programme for the children of
//! its fifteen zone III communes: the authority's set-up, published needs and
//! the annual plan, gifts and pledges from businesses, banks, organisations
//! and hundreds of individuals, transfers down to communes, confirmations,
//! handovers to children in all six categories, and the mistakes a real year
//! has (a receipt entered twice, a transfer to the wrong office, rice that
//! fails inspection, a cancelled pledge, a key rotated after a staff change),
//! each corrected the way SPEC §7 allows. Optionally a steady state follows.
//! Every event is valid in order under the ledger's rules.
//!
//! Boundary: a pure library. No I/O, no network, no clock: `occurred_at`
//! comes from the programme's own calendar and everything else from the
//! seed, so a seed names one stream, byte for byte.

mod books;
mod calendar;
mod catalogue;
mod derive;
mod generator;
mod steady;
mod year;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use aidledger_ledger::privacy::{BeneficiaryKey, RefKey};
use aidledger_ledger::sign_event;
use aidledger_tlog::ed25519::SecretKey;
use aidledger_wire::{Message, pb};
use rayon::prelude::*;

use generator::{Generator, Unsigned};

/// Events signed per batch by [`Programme::events`]: enough to keep every
/// core busy, small enough that a million-event stream never sits in memory.
pub const SIGN_BATCH_EVENTS: usize = 8_192;

/// What stream to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoConfig {
    /// Names the stream: the same seed gives the same bytes.
    pub seed: u64,
    /// SPEC §2: the ledger's origin, bound into every signature and named by
    /// the genesis.
    pub origin: String,
    /// The ledger's checkpoint verifier key, named by the genesis.
    pub log_vkey: String,
    /// Extra steady-state events after the programme year, for load: 0 for
    /// the demo.
    pub extra_events: usize,
}

/// A donation a donor could look up: the bank reference is what the donor
/// holds; the ledger has only its keyed hash (SPEC §7.5, [`Programme::ref_key`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleReference {
    /// The receipt the reference leads to.
    pub receipt_id: String,
    /// The bank transfer reference, as on the donor's statement.
    pub reference: String,
    /// Who gave.
    pub donor_org_id: String,
    /// The donor's name; not for publication when `public_name` is false.
    pub donor_name: String,
    /// Whether the donor agreed to have their name published.
    pub public_name: bool,
    /// The agency that received the gift.
    pub recipient_org_id: String,
    /// The amount in đồng.
    pub amount_vnd: u64,
}

/// One seeded programme: its organisations and keys, the programme year
/// (planned when it is built, signed as it is read) and the steady state
/// that follows it.
#[derive(Debug)]
pub struct Programme {
    generator: Generator,
    /// The programme year's events not yet handed out.
    year: VecDeque<Unsigned>,
    year_events: usize,
    extra_events: usize,
    extra_written: usize,
}

impl Programme {
    /// Plans the programme year (a few thousand events, unsigned until read).
    pub fn new(config: DemoConfig) -> Self {
        let mut generator = Generator::new(&config);
        generator.write_year();
        let year: VecDeque<Unsigned> = std::mem::take(&mut generator.out).into();
        if config.extra_events > 0 {
            generator.begin_steady_state(config.extra_events);
        }
        Programme {
            year_events: year.len(),
            year,
            generator,
            extra_events: config.extra_events,
            extra_written: 0,
        }
    }

    /// The key that signs the genesis: configure the ledger with it.
    pub fn authority_public_key(&self) -> [u8; 32] {
        self.generator.authority_key().public_key()
    }

    /// The events of the programme year.
    pub fn year_events(&self) -> usize {
        self.year_events
    }

    /// The whole stream: the programme year plus the extra events.
    pub fn total_events(&self) -> usize {
        self.year_events + self.extra_events
    }

    /// The events not yet handed out.
    pub fn remaining_events(&self) -> usize {
        self.year.len() + (self.extra_events - self.extra_written)
    }

    /// The next at most `events_max` events in order, signed in parallel on
    /// rayon's pool; empty once the stream is exhausted.
    pub fn next_batch(&mut self, events_max: usize) -> Vec<pb::SignedEvent> {
        let from_year = events_max.min(self.year.len());
        let mut unsigned: Vec<Unsigned> = self.year.drain(..from_year).collect();
        let extra = (events_max - unsigned.len()).min(self.extra_events - self.extra_written);
        for _ in 0..extra {
            self.generator.steady_step();
        }
        self.extra_written += extra;
        unsigned.append(&mut self.generator.out);
        let keys = &self.generator.keys;
        let origin = self.generator.origin.as_str();
        unsigned
            .into_par_iter()
            .map(|u| sign_event(&keys[u.key], origin, u.event.encode_to_vec()))
            .collect()
    }

    /// The signed events, in order, signed a batch at a time.
    pub fn events(&mut self) -> impl Iterator<Item = pb::SignedEvent> + '_ {
        let mut batch = Vec::new().into_iter();
        std::iter::from_fn(move || {
            if let Some(event) = batch.next() {
                return Some(event);
            }
            batch = self.next_batch(SIGN_BATCH_EVENTS).into_iter();
            batch.next()
        })
    }

    /// A few donations to show "verify your donation" with: a named and an
    /// anonymous individual's gift, the largest individual gift, a company's
    /// payment against its pledge, and a gift first entered twice.
    pub fn sample_references(&self) -> Vec<SampleReference> {
        let records = &self.generator.references;
        let mut picks = Vec::new();
        let mut pick = |found: Option<&generator::ReferenceRecord>| {
            if let Some(record) = found
                && !picks.contains(&record.sample)
            {
                picks.push(record.sample.clone());
            }
        };
        pick(
            records
                .iter()
                .find(|r| r.individual && r.sample.public_name),
        );
        pick(
            records
                .iter()
                .find(|r| r.individual && !r.sample.public_name),
        );
        pick(records.iter().filter(|r| r.individual).max_by_key(|r| {
            (
                r.sample.amount_vnd,
                std::cmp::Reverse(r.sample.receipt_id.clone()),
            )
        }));
        pick(records.iter().find(|r| r.against_pledge));
        pick(records.iter().find(|r| r.entered_twice));
        picks
    }

    /// SPEC §7.5 `K_ref` of the programme: receipts carry their references
    /// keyed with it; a feed needs it to offer look-ups by reference.
    pub fn ref_key(&self) -> RefKey {
        self.generator.ref_key.clone()
    }

    /// SPEC §7.5 `K_ben` of the province: the beneficiary tokens of every
    /// delivery are keyed with it.
    pub fn beneficiary_key(&self) -> BeneficiaryKey {
        derive::beneficiary_key(self.generator.seed)
    }

    /// The names of every donor who asked not to be named: what no byte the
    /// system serves may contain.
    pub fn hidden_donor_names(&self) -> Vec<String> {
        self.generator
            .orgs
            .iter()
            .filter(|org| !org.public_name)
            .map(|org| org.name.clone())
            .collect()
    }

    /// Every bank and goods-note reference of the programme year's receipts
    /// (complete once the events have been drawn).
    pub fn every_reference(&self) -> &[String] {
        &self.generator.every_reference
    }

    /// The key `org_id` signs with at the end of the programme year, e.g. to
    /// show the ledger refusing an overspend; `None` for unknown
    /// organisations and donors without keys.
    pub fn signing_key(&self, org_id: &str) -> Option<&SecretKey> {
        let org = self.generator.org_by_id(org_id)?;
        let key = self.generator.orgs[org].key?;
        Some(&self.generator.keys[key])
    }
}
