//! The generator's own record of who holds what, so every transfer and
//! delivery it writes is covered by a balance the ledger will agree exists.
//!
//! Deliberately simpler than the ledger's state and sharing no code with it:
//! the crate's tests compare the two at the end of a stream, which makes this
//! an independent oracle for the rules' balance arithmetic.

use std::collections::BTreeMap;

use aidledger_ledger::Category;

use crate::catalogue::Asset;

/// SPEC §7 `Earmark`, by commune index: `None` means unrestricted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Mark {
    pub commune: Option<usize>,
    pub category: Option<Category>,
}

/// Balances per organisation (by index), then per (asset, earmark). Ordered
/// maps, so walking an organisation's pools is deterministic.
#[derive(Debug, Default)]
pub(crate) struct Books {
    holdings: Vec<BTreeMap<(Asset, Mark), u64>>,
}

impl Books {
    pub(crate) fn balance(&self, org: usize, asset: Asset, mark: Mark) -> u64 {
        self.holdings
            .get(org)
            .and_then(|pools| pools.get(&(asset, mark)))
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn credit(&mut self, org: usize, asset: Asset, mark: Mark, quantity: u64) {
        if self.holdings.len() <= org {
            self.holdings.resize_with(org + 1, BTreeMap::new);
        }
        let balance = self.holdings[org].entry((asset, mark)).or_insert(0);
        *balance = balance
            .checked_add(quantity)
            .expect("generated balances stay far below 2^64");
    }

    /// Panics if the pool does not cover `quantity`: the generator only ever
    /// spends what it has checked is there.
    pub(crate) fn debit(&mut self, org: usize, asset: Asset, mark: Mark, quantity: u64) {
        let pools = &mut self.holdings[org];
        let balance = pools
            .get_mut(&(asset, mark))
            .expect("debits only pools that hold something");
        assert!(
            *balance >= quantity,
            "org {org} holds {balance} of {asset:?} {mark:?}, not {quantity}"
        );
        *balance -= quantity;
        if *balance == 0 {
            pools.remove(&(asset, mark));
        }
    }

    /// The non-empty pools of `org`, in a fixed order.
    pub(crate) fn pools(&self, org: usize) -> Vec<(Asset, Mark, u64)> {
        self.holdings
            .get(org)
            .map(|pools| {
                pools
                    .iter()
                    .map(|(&(asset, mark), &balance)| (asset, mark, balance))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn pool_count(&self, org: usize) -> usize {
        self.holdings.get(org).map_or(0, BTreeMap::len)
    }

    /// The `n`-th non-empty pool of `org`, for a uniform random pick.
    pub(crate) fn nth_pool(&self, org: usize, n: usize) -> Option<(Asset, Mark, u64)> {
        self.holdings
            .get(org)?
            .iter()
            .nth(n)
            .map(|(&(asset, mark), &balance)| (asset, mark, balance))
    }

    /// Every non-empty pool: (org, asset, earmark, balance).
    #[cfg(test)]
    pub(crate) fn all(&self) -> impl Iterator<Item = (usize, Asset, Mark, u64)> + '_ {
        self.holdings.iter().enumerate().flat_map(|(org, pools)| {
            pools
                .iter()
                .map(move |(&(asset, mark), &balance)| (org, asset, mark, balance))
        })
    }
}
