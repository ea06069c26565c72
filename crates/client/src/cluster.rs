//! The ledgers one client may talk to: a writer and its standbys sharing a
//! store (SPEC §6, `NOT_LEADER`), and which of them the client talks to now.
//!
//! Every ledger serves reads; only the writer appends. A call goes to the
//! current ledger. When a standby answers `NOT_LEADER` naming the writer,
//! the client moves to the writer at once and sends the identical request
//! again (an append of identical bytes is idempotent). When a ledger cannot
//! be reached, or no writer is known yet (a takeover is under way), the
//! client moves to the next address and waits its backoff first.

use std::sync::Mutex;
use std::time::Duration;

use aidledger_wire::pb::ledger_client::LedgerClient;
use tonic::Status;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use crate::error::ERROR_DOMAIN;
use crate::{ClientError, TlsOptions, build_endpoint, error_chain};

/// The reason a standby refuses a write with, naming the writer in the
/// `writer` metadata of its `ErrorInfo`.
pub(crate) const NOT_LEADER: &str = "NOT_LEADER";

/// The known ledgers. Addresses named by a standby are added, so a client
/// given one address of a pair still finds the writer.
#[derive(Debug)]
pub(crate) struct Ledgers {
    tls: Option<TlsOptions>,
    connect_timeout: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    nodes: Vec<Node>,
    current: usize,
}

#[derive(Debug)]
struct Node {
    url: String,
    ledger: LedgerClient<Channel>,
}

impl Ledgers {
    /// The ledgers at `urls`, none connected yet, the first one current.
    pub(crate) fn new(
        urls: &[String],
        tls: Option<TlsOptions>,
        connect_timeout: Duration,
    ) -> Result<Ledgers, ClientError> {
        if urls.is_empty() {
            return Err(ClientError::Config("no ledger address given".into()));
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(urls.len());
        for url in urls {
            if nodes.iter().any(|node| node.url == *url) {
                continue;
            }
            let endpoint = build_endpoint(url, tls.as_ref(), connect_timeout)?;
            nodes.push(Node {
                url: url.clone(),
                ledger: LedgerClient::new(endpoint.connect_lazy()),
            });
        }
        Ok(Ledgers {
            tls,
            connect_timeout,
            state: Mutex::new(State { nodes, current: 0 }),
        })
    }

    /// Establishes a connection to one of the ledgers, trying them in order,
    /// and makes it current. Errors name every address tried.
    pub(crate) async fn connect_one(&self) -> Result<(), Vec<String>> {
        let targets: Vec<(usize, String)> = {
            let state = self.lock();
            state
                .nodes
                .iter()
                .enumerate()
                .map(|(index, node)| (index, node.url.clone()))
                .collect()
        };
        let mut failures = Vec::new();
        for (index, url) in targets {
            // Built again only to connect eagerly; the address was checked
            // when the ledgers were made.
            let endpoint = build_endpoint(&url, self.tls.as_ref(), self.connect_timeout)
                .map_err(|error| vec![error.to_string()])?;
            match endpoint.connect().await {
                Ok(channel) => {
                    let mut state = self.lock();
                    state.nodes[index].ledger = LedgerClient::new(channel);
                    state.current = index;
                    return Ok(());
                }
                Err(error) => failures.push(format!("{url}: {}", error_chain(&error))),
            }
        }
        Err(failures)
    }

    /// The current ledger: its index (for [`Ledgers::move_on`]) and a
    /// handle on its connection.
    pub(crate) fn current(&self) -> (usize, LedgerClient<Channel>) {
        let state = self.lock();
        (state.current, state.nodes[state.current].ledger.clone())
    }

    /// The address of the current ledger.
    pub(crate) fn current_url(&self) -> String {
        let state = self.lock();
        state.nodes[state.current].url.clone()
    }

    /// Every known address, the configured ones first.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.lock()
            .nodes
            .iter()
            .map(|node| node.url.clone())
            .collect()
    }

    /// Moves to the next ledger after `failed` did not serve. Another task
    /// may have moved already; then the current one is kept.
    pub(crate) fn move_on(&self, failed: usize) {
        let mut state = self.lock();
        if state.current == failed {
            state.current = (failed + 1) % state.nodes.len();
        }
    }

    /// Makes the writer at `url` current, adding it when it is not known.
    /// `Ok(false)` when the writer is the ledger `refused_by` itself (the
    /// request went there already, so sending it again would not help).
    /// Another task may have moved to the writer first: the request that
    /// went to the standby is still sent to it.
    pub(crate) fn follow(&self, url: &str, refused_by: usize) -> Result<bool, ClientError> {
        let mut state = self.lock();
        if let Some(index) = state.nodes.iter().position(|node| node.url == url) {
            state.current = index;
            return Ok(index != refused_by);
        }
        let endpoint = build_endpoint(url, self.tls.as_ref(), self.connect_timeout)?;
        state.nodes.push(Node {
            url: url.to_owned(),
            ledger: LedgerClient::new(endpoint.connect_lazy()),
        });
        state.current = state.nodes.len() - 1;
        Ok(true)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is an index and a list that are never left half
        // updated, so a panic elsewhere cannot have broken it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a `NOT_LEADER` refusal says about the writer: `Some(Some(url))`
/// when it names one, `Some(None)` when no writer is known yet, `None` when
/// the status is not a `NOT_LEADER` refusal.
pub(crate) fn not_leader(status: &Status) -> Option<Option<String>> {
    let info = status
        .get_details_error_info()
        .filter(|info| info.domain == ERROR_DOMAIN && info.reason == NOT_LEADER)?;
    Some(
        info.metadata
            .get("writer")
            .filter(|url| !url.is_empty())
            .cloned(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic::Code;
    use tonic_types::ErrorDetails;

    use super::*;

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|url| (*url).to_owned()).collect()
    }

    #[tokio::test]
    async fn a_named_writer_becomes_current_and_unknown_ones_are_added() {
        let ledgers = Ledgers::new(
            &urls(&["http://127.0.0.1:1", "http://127.0.0.1:2"]),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(ledgers.current().0, 0);
        assert!(ledgers.follow("http://127.0.0.1:2", 0).unwrap());
        assert_eq!(ledgers.current_url(), "http://127.0.0.1:2");
        // Already current because another task followed first: a request
        // the standby refused is still sent there.
        assert!(ledgers.follow("http://127.0.0.1:2", 0).unwrap());
        // The writer named is the ledger that refused: nothing to follow.
        assert!(!ledgers.follow("http://127.0.0.1:2", 1).unwrap());
        assert!(ledgers.follow("http://127.0.0.1:3", 1).unwrap());
        assert_eq!(
            ledgers.urls(),
            urls(&[
                "http://127.0.0.1:1",
                "http://127.0.0.1:2",
                "http://127.0.0.1:3"
            ])
        );
        assert!(matches!(
            ledgers.follow("ftp://elsewhere", 0),
            Err(ClientError::Config(_))
        ));
    }

    #[tokio::test]
    async fn moving_on_wraps_and_ignores_a_stale_failure() {
        let ledgers = Ledgers::new(
            &urls(&[
                "http://127.0.0.1:1",
                "http://127.0.0.1:2",
                "http://127.0.0.1:1",
            ]),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(ledgers.urls().len(), 2, "duplicates are dropped");
        ledgers.move_on(0);
        assert_eq!(ledgers.current().0, 1);
        // A second task whose call to ledger 0 also failed does not move
        // the client off ledger 1.
        ledgers.move_on(0);
        assert_eq!(ledgers.current().0, 1);
        ledgers.move_on(1);
        assert_eq!(ledgers.current().0, 0);
        assert!(matches!(
            Ledgers::new(&[], None, Duration::from_secs(1)),
            Err(ClientError::Config(_))
        ));
    }

    #[test]
    fn not_leader_is_read_from_the_error_info() {
        let refusal = |metadata: HashMap<String, String>, domain: &str| {
            Status::with_error_details(
                Code::Unavailable,
                "NOT_LEADER: standby",
                ErrorDetails::with_error_info(NOT_LEADER, domain, metadata),
            )
        };
        let named = HashMap::from([("writer".to_owned(), "http://w:1".to_owned())]);
        assert_eq!(
            not_leader(&refusal(named.clone(), ERROR_DOMAIN)),
            Some(Some("http://w:1".to_owned()))
        );
        assert_eq!(
            not_leader(&refusal(HashMap::new(), ERROR_DOMAIN)),
            Some(None)
        );
        assert_eq!(not_leader(&refusal(named, "example.com")), None);
        assert_eq!(not_leader(&Status::unavailable("connection refused")), None);
    }
}
