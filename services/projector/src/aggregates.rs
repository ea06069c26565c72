//! Totals and groups kept as events arrive, for the answers that would
//! otherwise sum over the whole log each time it changes: donor standings,
//! a donor's gifts, commune totals per year, the overview, and the groups
//! overlap findings come from.
//!
//! A page answered from these costs what it shows, not what the log holds,
//! so it stays cheap to recompute after every batch while entries arrive.
//!
//! Like the indexes of [`Model`], they are derived: never stored, rebuilt
//! at load ([`Model::aggregates_from_records`]) from the records by the same
//! functions the fold calls, so a reloaded model and a folded one cannot
//! disagree (a test compares them). Sums are kept per asset, in units, and
//! valued when asked: the value of a sum is the sum of the values.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;

use aidledger_ledger::Category;
use aidledger_ledger::calendar::{Datelike as _, vn_date};
use hashbrown::Equivalent;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use crate::id::Id;
use crate::model::{DeliveryRecord, FlowKind, Model, ReceiptRecord, TransferRecord};
use crate::positions::position_u32;
use crate::table::Table;

/// Units per asset, in the order of the assets' ids.
///
/// A sum names a few assets at most, so a short sorted list: the fold finds
/// an asset by its one shared [`Id`] without reading any id's string
/// (each a pointer away, likely out of cache), where a `BTreeMap<String, _>`
/// compared strings at every step of every search. Most sums name one
/// asset, kept inline: the fold changes it in the line its map's entry
/// brought into cache, where a `Vec`'s was one more miss per change.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Quantities(SmallVec<[(Id, u128); 1]>);

// As the map it stands for, so a failed test reads as before.
impl std::fmt::Debug for Quantities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Quantities {
    pub fn get(&self, asset_id: &str) -> Option<&u128> {
        self.search(asset_id).ok().map(|at| &self.0[at].1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Each asset's units, in the order of the assets' ids.
    pub fn iter(&self) -> <&Quantities as IntoIterator>::IntoIter {
        self.into_iter()
    }

    fn search(&self, asset_id: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(id, _)| id.as_str().cmp(asset_id))
    }

    /// Where `asset_id` is, or would be inserted.
    fn place(&self, asset_id: &Id) -> Result<usize, usize> {
        match self.0.iter().position(|(id, _)| id.is_same_copy(asset_id)) {
            Some(at) => Ok(at),
            None => self.search(asset_id),
        }
    }
}

impl<'q> IntoIterator for &'q Quantities {
    type Item = (&'q Id, &'q u128);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'q, (Id, u128)>, fn(&(Id, u128)) -> (&Id, &u128)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(asset_id, units)| (asset_id, units))
    }
}

/// The aggregates' hash maps: hashbrown's, whose `entry_ref` finds or
/// creates a row with one lookup of a borrowed key (std's `entry` wants an
/// owned one: an allocation per event for a `String` key, a reference
/// count for an [`Id`]).
pub type Map<K, V> = hashbrown::HashMap<K, V, FxBuildHasher>;

/// What one donor gave in one year (by the receipts' dates), over its
/// receipts not reversed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DonorYear {
    pub receipts: u64,
    pub received: Quantities,
    /// Units of those receipts that live deliveries handed out.
    pub delivered: Quantities,
}

/// Live deliveries in one commune, year (of the period) and category.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommuneCell {
    pub deliveries: u64,
    pub children_reached: u64,
    pub delivered: Quantities,
    /// Children reached, by the asset delivered: what an annual plan's
    /// targets (one asset each) are measured against.
    pub children_by_asset: Quantities,
}

/// Receipts not reversed in one year, by the category they were earmarked
/// for (`None`: general funds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaisedCell {
    pub receipts: u64,
    pub received: Quantities,
}

/// The deliveries of one commune, category and month.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonthScope {
    /// Every delivery, reversed ones too, by seq in log order.
    pub seqs: Vec<u64>,
    /// The organisations of the live ones, sorted, each once.
    pub orgs: Vec<Id>,
    /// How many of them are live.
    pub live: u64,
}

/// The organisations that delivered to one beneficiary token in one year
/// and category, live deliveries only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenGroup {
    /// Sorted, each once. Mostly one or two, inline: the fold reads them
    /// for every token of every delivery, and a `Vec`'s were a pointer
    /// away.
    pub orgs: SmallVec<[Id; 2]>,
    /// How many live deliveries named the token in this year and category:
    /// a finding's count, without reading the token's list.
    pub live: u64,
    /// The seqs of the first and the last of them: they bound the stretch of
    /// the token's list (which grows with the log, every year and category
    /// in it) that a finding's events are read from.
    pub first_seq: u64,
    pub last_seq: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sign {
    Add,
    Remove,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Aggregates {
    /// By donor org id, then receipt year.
    pub donors: Map<Id, BTreeMap<u32, DonorYear>>,
    /// Receipts by donor, as positions in [`Model::receipts`] (four bytes
    /// where a shared id took sixteen), in log order, reversed ones too.
    pub receipts_by_donor: Map<Id, Vec<u32>>,
    /// Pledge ids by donor, in log order.
    pub pledges_by_donor: Map<String, Vec<String>>,
    /// By receipt year and earmarked category.
    pub raised: BTreeMap<(i32, Option<Category>), RaisedCell>,
    /// By commune code, then (delivery year, category).
    pub communes: Map<Id, BTreeMap<(u32, Category), CommuneCell>>,
    /// By commune code, delivery year and donor: the units of that donor's
    /// receipts that live deliveries handed out there, as the commune page
    /// credits them (whether or not the receipt was reversed since).
    /// (The donors are hashed, not sorted: a commune's year has thousands
    /// of them, and a sorted map compared names at every step of a search.)
    pub commune_donors: Map<Id, BTreeMap<u32, Map<Id, Quantities>>>,
    /// Units in transit, by the commune their transfer is earmarked for.
    pub in_transit_by_commune: Map<String, Quantities>,
    /// By commune code, then period (`YYYY-MM`), then category.
    pub months: Map<Id, BTreeMap<Id, BTreeMap<Category, MonthScope>>>,
    /// By beneficiary token, year and category: the fold finds the group
    /// of each token of a delivery with one lookup, where a token's list of
    /// groups was one more miss, then a search.
    pub tokens: Map<TokenKey, TokenGroup>,
    /// Every token delivered to in a commune: where a reversed delivery's
    /// tokens are looked for, since its record does not keep them.
    pub tokens_by_commune: Map<Id, FxHashSet<[u8; 32]>>,
    /// The token groups with two organisations or more, by (year, the
    /// token's [`finding_tag`], category), with their token.
    pub overlapping: BTreeMap<(u32, FindingTag, Category), [u8; 32]>,
    /// The month scopes with two organisations or more, by (year,
    /// commune, category, period): the order of their findings' ids, so a
    /// page of them is read from its cursor on.
    pub flagged_months: BTreeSet<MonthKey>,
}

impl TokenGroup {
    /// An empty group whose first delivery is entry `seq`'s, to count it in.
    fn starting_at(seq: u64) -> TokenGroup {
        TokenGroup {
            first_seq: seq,
            last_seq: seq,
            ..TokenGroup::default()
        }
    }
}

/// A token group's key in [`Aggregates::tokens`]: the token, the year and
/// the category.
pub type TokenKey = ([u8; 32], u32, Category);

/// A month scope's place in [`Aggregates::flagged_months`].
pub type MonthKey = (u32, Id, Category, Id);

fn month_key(delivery: &DeliveryRecord) -> MonthKey {
    (
        delivery.year(),
        delivery.commune_code.clone(),
        delivery.category,
        delivery.period.clone(),
    )
}

/// What names a group of deliveries to one beneficiary token, in one year
/// and category, in a finding's id, which the feed publishes: public pages
/// show no token (the log alone carries them), and this one-way tag gives
/// none back. It covers the year and category too, so that two findings
/// about one child do not show the same tag. 128 bits: no two groups of a
/// province share one.
pub type FindingTag = [u8; 16];

pub fn finding_tag(year: u32, category: Category, token: &[u8; 32]) -> FindingTag {
    let digest = Sha256::new()
        .chain_update(b"aidledger/v1/overlap-finding\n")
        .chain_update(year.to_be_bytes())
        .chain_update([category as u8])
        .chain_update(token)
        .finalize();
    let mut tag = [0; 16];
    tag.copy_from_slice(&digest[..16]);
    tag
}

/// The Vietnamese calendar year of a receipt.
pub fn receipt_year(receipt: &ReceiptRecord) -> u32 {
    u32::try_from(vn_date(receipt.occurred_at.seconds).year()).unwrap_or(0)
}

fn change(quantities: &mut Quantities, asset_id: &Id, quantity: u64, sign: Sign) {
    let quantity = u128::from(quantity);
    match quantities.place(asset_id) {
        Ok(at) => {
            let slot = &mut quantities.0[at].1;
            match sign {
                Sign::Add => *slot += quantity,
                Sign::Remove => *slot = slot.saturating_sub(quantity),
            }
            // Emptied sums go, so a fold and a rebuild hold the same keys.
            if *slot == 0 {
                quantities.0.remove(at);
            }
        }
        Err(at) if sign == Sign::Add && quantity > 0 => {
            quantities.0.insert(at, (asset_id.clone(), quantity));
        }
        Err(_) => {}
    }
}

fn count(counter: &mut u64, sign: Sign) {
    match sign {
        Sign::Add => *counter += 1,
        Sign::Remove => *counter = counter.saturating_sub(1),
    }
}

/// `map[key]`, created empty if missing, looked up once and without
/// allocating (or, for an [`Id`], counting a reference) when present. A
/// map keyed by shared ids, looked up by the shared copy, finds its row
/// without comparing strings.
fn slot<'m, K, Q, V>(map: &'m mut Map<K, V>, key: &Q) -> &'m mut V
where
    K: Hash + Eq,
    Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
    V: Default,
{
    map.entry_ref(key).or_default()
}

/// Counts the live delivery of entry `seq` by `org_id` in the group of
/// `key` in `tokens`, creating the group if needed; called once per
/// delivery and token named. Returns the group's number of organisations
/// when `org_id` was new to it.
fn add_to_group(
    tokens: &mut Map<TokenKey, TokenGroup>,
    key: &TokenKey,
    org_id: &Id,
    seq: u64,
) -> Option<usize> {
    let group = tokens
        .entry(*key)
        .or_insert_with(|| TokenGroup::starting_at(seq));
    count_in(group, org_id, seq)
}

/// Counts the live delivery of entry `seq` by `org_id` in `group`; returns
/// the group's number of organisations when `org_id` was new to it.
fn count_in(group: &mut TokenGroup, org_id: &Id, seq: u64) -> Option<usize> {
    group.live += 1;
    group.first_seq = group.first_seq.min(seq);
    group.last_seq = group.last_seq.max(seq);
    let orgs = &mut group.orgs;
    // Mostly one or two organisations, and mostly one seen before: the
    // shared copy is recognised without reading any of their strings,
    // which are likely out of cache.
    if orgs.iter().any(|org| org.is_same_copy(org_id)) {
        return None;
    }
    let Err(place) = orgs.binary_search(org_id) else {
        return None;
    };
    orgs.insert(place, org_id.clone());
    Some(orgs.len())
}

fn tidy_donor(donors: &mut Map<Id, BTreeMap<u32, DonorYear>>, donor: &str, year: u32) {
    if let Some(years) = donors.get_mut(donor) {
        if years.get(&year).is_some_and(|y| *y == DonorYear::default()) {
            years.remove(&year);
        }
        if years.is_empty() {
            donors.remove(donor);
        }
    }
}

impl Aggregates {
    /// A receipt counted in (or, reversed, out of) its donor's year and the
    /// raised totals. Its units already delivered are moved by
    /// [`Aggregates::receipt_delivered`].
    pub(crate) fn receipt(&mut self, receipt: &ReceiptRecord, sign: Sign) {
        let year = receipt_year(receipt);
        let donor_year = slot(&mut self.donors, &receipt.donor_org_id)
            .entry(year)
            .or_default();
        count(&mut donor_year.receipts, sign);
        change(
            &mut donor_year.received,
            &receipt.asset_id,
            receipt.quantity,
            sign,
        );
        let cell = (i32::try_from(year).unwrap_or(0), receipt.earmark.category);
        let raised = self.raised.entry(cell).or_default();
        count(&mut raised.receipts, sign);
        change(
            &mut raised.received,
            &receipt.asset_id,
            receipt.quantity,
            sign,
        );
        if sign == Sign::Remove {
            if *raised == RaisedCell::default() {
                self.raised.remove(&cell);
            }
            tidy_donor(&mut self.donors, &receipt.donor_org_id, year);
        }
    }

    /// Units of a live receipt handed out by a live delivery (or taken
    /// back, when either is reversed).
    pub(crate) fn receipt_delivered(&mut self, receipt: &ReceiptRecord, quantity: u64, sign: Sign) {
        Self::donor_delivered(&mut self.donors, receipt, quantity, sign);
    }

    /// [`Aggregates::receipt_delivered`] on the donors' map alone, for a
    /// caller that holds another of the aggregates' maps meanwhile.
    fn donor_delivered(
        donors: &mut Map<Id, BTreeMap<u32, DonorYear>>,
        receipt: &ReceiptRecord,
        quantity: u64,
        sign: Sign,
    ) {
        let year = receipt_year(receipt);
        let donor_year = slot(donors, &receipt.donor_org_id).entry(year).or_default();
        change(&mut donor_year.delivered, &receipt.asset_id, quantity, sign);
        // Only a removal can leave the donor's year empty.
        if sign == Sign::Remove {
            tidy_donor(donors, &receipt.donor_org_id, year);
        }
    }

    /// A receipt, at `position` in [`Model::receipts`], in its donor's list.
    pub(crate) fn index_receipt(&mut self, position: usize, receipt: &ReceiptRecord) {
        slot(&mut self.receipts_by_donor, &receipt.donor_org_id).push(position_u32(position));
    }

    pub(crate) fn index_pledge(&mut self, pledge_id: &str, donor_org_id: &str) {
        slot(&mut self.pledges_by_donor, donor_org_id).push(pledge_id.to_owned());
    }

    /// A live delivery counted in (or, reversed, out of) its commune's
    /// totals, its donors' and its receipts' donors' standings.
    pub(crate) fn delivery(
        &mut self,
        receipts: &Table<Id, ReceiptRecord>,
        delivery: &DeliveryRecord,
        sign: Sign,
    ) {
        let year = delivery.year();
        let cells = slot(&mut self.communes, &delivery.commune_code);
        let cell = cells.entry((year, delivery.category)).or_default();
        count(&mut cell.deliveries, sign);
        match sign {
            Sign::Add => cell.children_reached += u64::from(delivery.children_reached),
            Sign::Remove => {
                cell.children_reached = cell
                    .children_reached
                    .saturating_sub(u64::from(delivery.children_reached));
            }
        }
        change(
            &mut cell.delivered,
            &delivery.asset_id,
            delivery.quantity,
            sign,
        );
        change(
            &mut cell.children_by_asset,
            &delivery.asset_id,
            u64::from(delivery.children_reached),
            sign,
        );
        // Emptied maps go, so a fold and a rebuild hold the same keys.
        if sign == Sign::Remove {
            if *cell == CommuneCell::default() {
                cells.remove(&(year, delivery.category));
            }
            if cells.is_empty() {
                self.communes.remove(&delivery.commune_code);
            }
        }
        // One commune and year for all the delivery's lots: found once.
        let by_year = slot(&mut self.commune_donors, &delivery.commune_code);
        let by_donor = by_year.entry(year).or_default();
        for lot in &delivery.funding {
            // By the shared copy, which the row's key is: found without
            // comparing strings.
            let Some(receipt) = receipts.get(&lot.receipt_id) else {
                continue;
            };
            if !receipt.reversed {
                Self::donor_delivered(&mut self.donors, receipt, lot.quantity, sign);
            }
            let units = slot(by_donor, &receipt.donor_org_id);
            change(units, &delivery.asset_id, lot.quantity, sign);
            if units.is_empty() {
                by_donor.remove(&receipt.donor_org_id);
            }
        }
        if by_donor.is_empty() {
            by_year.remove(&year);
        }
        if by_year.is_empty() {
            self.commune_donors.remove(&delivery.commune_code);
        }
    }

    /// A transfer earmarked for a commune entering (or leaving) transit.
    pub(crate) fn in_transit(&mut self, transfer: &TransferRecord, sign: Sign) {
        let Some(commune) = transfer.earmark.commune_code.as_deref() else {
            return;
        };
        let units = slot(&mut self.in_transit_by_commune, commune);
        change(units, &transfer.asset_id, transfer.quantity, sign);
        if units.is_empty() {
            self.in_transit_by_commune.remove(commune);
        }
    }

    /// A new delivery in its month's scope and its tokens' groups.
    pub(crate) fn index_delivery(
        &mut self,
        delivery: &DeliveryRecord,
        tokens: impl IntoIterator<Item = [u8; 32]>,
    ) {
        let scope = self.month_scope(delivery);
        scope.seqs.push(delivery.seq);
        if !delivery.reversed {
            scope.live += 1;
            // The shared copy first, as in a token's group: no string read.
            let known = scope
                .orgs
                .iter()
                .any(|org| org.is_same_copy(&delivery.org_id));
            if !known && let Err(at) = scope.orgs.binary_search(&delivery.org_id) {
                scope.orgs.insert(at, delivery.org_id.clone());
                // Flagged once, when a second organisation comes.
                if scope.orgs.len() == 2 {
                    self.flagged_months.insert(month_key(delivery));
                }
            }
        }
        let seen = slot(&mut self.tokens_by_commune, &delivery.commune_code);
        let year = delivery.year();
        for token in tokens {
            seen.insert(token);
            if delivery.reversed {
                continue;
            }
            let key = (token, year, delivery.category);
            if add_to_group(&mut self.tokens, &key, &delivery.org_id, delivery.seq) == Some(2) {
                let tag = finding_tag(year, delivery.category, &token);
                self.overlapping
                    .insert((year, tag, delivery.category), token);
            }
        }
    }

    fn month_scope(&mut self, delivery: &DeliveryRecord) -> &mut MonthScope {
        slot(&mut self.months, &delivery.commune_code)
            .entry(delivery.period.clone())
            .or_default()
            .entry(delivery.category)
            .or_default()
    }
}

impl Model {
    /// The value in đồng of per-asset sums, each at its asset's unit value
    /// (saturating, as [`Model::value_vnd`]): the value of a sum is the sum
    /// of the values.
    pub fn value_of(&self, quantities: &Quantities) -> u64 {
        quantities
            .iter()
            .map(|(asset_id, q)| self.value_vnd(asset_id, u64::try_from(*q).unwrap_or(u64::MAX)))
            .fold(0, u64::saturating_add)
    }

    /// Rebuilds [`Model::aggregates`] from the records.
    #[cfg(test)]
    pub(crate) fn rebuild_aggregates(&mut self) {
        self.aggregates = self.aggregates_from_records();
    }

    /// The aggregates of the records, as after a load, with the functions
    /// the fold calls: every live record counted once, lists in log order.
    /// Reads the model only, so a load runs it beside the indexes.
    pub(crate) fn aggregates_from_records(&self) -> Aggregates {
        let mut aggregates = Aggregates::default();
        // Position order is log order in these tables
        // (`Table::in_log_order`).
        for (_, id, pledge) in self.pledges.iter_positions() {
            aggregates.index_pledge(id, &pledge.donor_org_id);
        }
        for (position, _, receipt) in self.receipts.iter_positions() {
            aggregates.index_receipt(position, receipt);
            if !receipt.reversed {
                aggregates.receipt(receipt, Sign::Add);
            }
        }
        for transfer in self.transfers.values_any_order() {
            if transfer.received.is_none() && !transfer.reversed {
                aggregates.in_transit(transfer, Sign::Add);
            }
        }
        let mut tokens_of: FxHashMap<u64, Vec<[u8; 32]>> = FxHashMap::default();
        for (token, seqs) in self.deliveries_by_token.iter_any_order() {
            for seq in seqs {
                tokens_of.entry(*seq).or_default().push(*token);
            }
        }
        for (_, _, delivery) in self.deliveries.iter_positions() {
            if !delivery.reversed {
                aggregates.delivery(&self.receipts, delivery, Sign::Add);
            }
            let tokens = tokens_of.remove(&delivery.seq).unwrap_or_default();
            aggregates.index_delivery(delivery, tokens);
        }
        aggregates
    }

    /// The units of live deliveries drawn from `receipt_id`.
    pub(crate) fn delivered_from(&self, receipt_id: &str) -> u64 {
        self.flows
            .get(receipt_id)
            .into_iter()
            .flatten()
            .filter(|f| f.kind == FlowKind::Delivery)
            .filter(|f| {
                self.deliveries
                    .get(f.id.as_str())
                    .is_some_and(|d| !d.reversed)
            })
            .map(|f| f.quantity)
            .fold(0, u64::saturating_add)
    }

    /// After the delivery of entry `seq` was reversed: its month's
    /// organisations and its tokens' groups of its year and category (the
    /// only ones that counted it), worked out again from the deliveries
    /// left. Reversals are rare; this reads the commune's tokens
    /// and the lists of those the delivery named.
    pub(crate) fn regroup_after_reversal(&mut self, delivery: &DeliveryRecord) {
        let scope_seqs = self.aggregates.month_scope(delivery).seqs.clone();
        let mut orgs: Vec<Id> = scope_seqs
            .iter()
            .filter_map(|seq| self.delivery_at(*seq))
            .filter(|(_, d)| !d.reversed)
            .map(|(_, d)| d.org_id.clone())
            .collect();
        let live = orgs.len() as u64;
        orgs.sort_unstable();
        orgs.dedup();
        let flagged = orgs.len() >= 2;
        let scope = self.aggregates.month_scope(delivery);
        scope.orgs = orgs;
        scope.live = live;
        if flagged {
            self.aggregates.flagged_months.insert(month_key(delivery));
        } else {
            self.aggregates.flagged_months.remove(&month_key(delivery));
        }

        let named: Vec<[u8; 32]> = self
            .aggregates
            .tokens_by_commune
            .get(delivery.commune_code.as_str())
            .into_iter()
            .flatten()
            .filter(|token| {
                self.deliveries_by_token
                    .get(*token)
                    .is_some_and(|seqs| seqs.binary_search(&delivery.seq).is_ok())
            })
            .copied()
            .collect();
        // Only the group of the delivery's year and category counted it.
        let (year, category) = (delivery.year(), delivery.category);
        for token in named {
            let mut regrouped: Option<TokenGroup> = None;
            for (_, d) in self
                .deliveries_by_token
                .get(&token)
                .into_iter()
                .flatten()
                .filter_map(|seq| self.delivery_at(*seq))
                .filter(|(_, d)| !d.reversed && d.year() == year && d.category == category)
            {
                let group = regrouped.get_or_insert_with(|| TokenGroup::starting_at(d.seq));
                count_in(group, &d.org_id, d.seq);
            }
            let aggregates = &mut self.aggregates;
            let finding = (year, finding_tag(year, category, &token), category);
            if regrouped.as_ref().is_some_and(|g| g.orgs.len() >= 2) {
                aggregates.overlapping.insert(finding, token);
            } else {
                aggregates.overlapping.remove(&finding);
            }
            let key = (token, year, category);
            match regrouped {
                Some(group) => aggregates.tokens.insert(key, group),
                None => aggregates.tokens.remove(&key),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sum is found by its asset's shared copy or by an equal string
    /// alike, lists its assets in id order whatever order they came in,
    /// and drops an asset whose units reach zero.
    #[test]
    fn a_sum_keeps_its_assets_in_id_order_found_by_copy_or_by_string() {
        let rice = Id::from("gao");
        let mut sum = Quantities::default();
        change(&mut sum, &Id::from("vnd"), 500, Sign::Add);
        change(&mut sum, &rice, 20, Sign::Add);
        change(&mut sum, &Id::from("sach"), 3, Sign::Add);
        // Another copy of the same id, as a loaded record holds it.
        change(&mut sum, &Id::from("gao"), 5, Sign::Add);
        change(&mut sum, &rice, 1, Sign::Add);
        let listed: Vec<(&str, u128)> = sum
            .iter()
            .map(|(id, units)| (id.as_str(), *units))
            .collect();
        assert_eq!(listed, [("gao", 26), ("sach", 3), ("vnd", 500)]);
        assert_eq!(sum.get("gao"), Some(&26));
        assert_eq!(format!("{sum:?}"), r#"{"gao": 26, "sach": 3, "vnd": 500}"#);

        change(&mut sum, &Id::from("sach"), 3, Sign::Remove);
        change(&mut sum, &Id::from("muoi"), 7, Sign::Remove);
        change(&mut sum, &Id::from("muoi"), 0, Sign::Add);
        assert_eq!(sum.get("sach"), None, "emptied, so gone");
        assert_eq!(sum.get("muoi"), None, "nothing to take, nothing added");
        assert_eq!(sum.len(), 2);
        change(&mut sum, &rice, 100, Sign::Remove);
        change(&mut sum, &Id::from("vnd"), 500, Sign::Remove);
        assert!(sum.is_empty());
    }

    /// A token's deliveries are grouped by year and category, one group
    /// each; an organisation counts once per group, by its shared copy or
    /// an equal one, and a group's seqs bound its deliveries whatever
    /// order their seqs come in.
    #[test]
    fn a_token_group_counts_each_organisation_once() {
        use Category::{Health, Nutrition};
        let (fund, red_cross) = (Id::from("quy"), Id::from("chu-thap-do"));
        let child = [7; 32];
        let mut tokens = Map::default();
        let deliveries = [
            (2025, Nutrition, &fund, 14, Some(1)),
            (2025, Health, &fund, 11, Some(1)),
            (2024, Nutrition, &fund, 12, Some(1)),
            (2025, Nutrition, &red_cross, 10, Some(2)),
            (2025, Nutrition, &Id::from("quy"), 15, None),
        ];
        for (year, category, org, seq, new_orgs) in deliveries {
            let key = (child, year, category);
            assert_eq!(
                add_to_group(&mut tokens, &key, org, seq),
                new_orgs,
                "{year} {category:?} {org} at {seq}"
            );
        }
        assert_eq!(tokens.len(), 3);
        let nutrition_2025 = &tokens[&(child, 2025, Nutrition)];
        assert_eq!(nutrition_2025.orgs.as_slice(), [red_cross, fund.clone()]);
        assert_eq!(nutrition_2025.live, 3);
        assert_eq!(
            (nutrition_2025.first_seq, nutrition_2025.last_seq),
            (10, 15)
        );
        let health_2025 = &tokens[&(child, 2025, Health)];
        assert_eq!(
            (health_2025.orgs.as_slice(), health_2025.live),
            ([fund].as_slice(), 1)
        );
    }

    /// A sum of one asset takes no allocation of its own, and is no bigger
    /// than a `Vec` and the allocation it replaces together.
    #[test]
    fn a_sum_of_one_asset_is_kept_inline() {
        assert!(std::mem::size_of::<Quantities>() <= 48);
        let mut sum = Quantities::default();
        change(&mut sum, &Id::from("gao"), 20, Sign::Add);
        change(&mut sum, &Id::from("gao"), 5, Sign::Add);
        assert!(!sum.0.spilled(), "one asset stays inline");
        change(&mut sum, &Id::from("vnd"), 500, Sign::Add);
        assert!(sum.0.spilled());
        assert_eq!(format!("{sum:?}"), r#"{"gao": 25, "vnd": 500}"#);
    }
}
