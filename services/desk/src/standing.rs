//! What the desk's key may do: its organisation and roles, read from the
//! log itself (the `RegisterKey` and `RevokeKey` events, and the Genesis
//! for the authority's key), and followed while the desk runs, so a role
//! the authority grants later shows without a restart.

use std::sync::Arc;
use std::time::Duration;

use aidledger_wire::pb;
use tokio_stream::StreamExt as _;

use crate::Desk;

/// The key's standing in the ledger, as far as the desk has read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Standing {
    /// The log is being read.
    #[default]
    Reading,
    /// Registered for the desk's organisation, with these roles.
    Registered {
        org_id: String,
        roles: Vec<pb::Role>,
    },
    /// Registered for another organisation than the desk's `--org`.
    OtherOrganization { org_id: String },
    /// Registered once, since revoked (SPEC 7: a key is never registered
    /// again).
    Revoked { org_id: String },
    /// The whole log (as of the desk's start) names no such key.
    NotRegistered,
}

impl Standing {
    /// Whether the key may sign events of a kind that needs `role`; `true`
    /// while unknown, so the ledger's answer decides.
    pub fn allows(&self, role: pb::Role) -> bool {
        match self {
            Standing::Reading => true,
            Standing::Registered { roles, .. } => roles.contains(&role),
            Standing::OtherOrganization { .. }
            | Standing::Revoked { .. }
            | Standing::NotRegistered => false,
        }
    }
}

/// How far the desk has read.
#[derive(Debug, Default)]
struct Reading {
    next_seq: u64,
    found: Option<Standing>,
    /// The log as of the start is read: every change is published.
    caught_up: bool,
}

/// Reads the log from the start and follows it, keeping
/// [`Desk::standing`] current; after a failure it resumes where it was.
pub(crate) async fn follow(desk: Arc<Desk>) {
    let public_key = desk.config.key.public_key().to_vec();
    let mut reading = Reading::default();
    loop {
        if let Err(error) = read(&desk, &public_key, &mut reading).await {
            tracing::warn!(%error, next_seq = reading.next_seq, "reading the key's roles from the log; retrying");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn read(
    desk: &Desk,
    public_key: &[u8],
    reading: &mut Reading,
) -> Result<(), aidledger_client::ClientError> {
    let ledger = &desk.config.ledger;
    let size_at_start = if reading.caught_up {
        0
    } else {
        ledger.checkpoint().await?.checkpoint.size
    };
    if !reading.caught_up && reading.next_seq >= size_at_start {
        reading.caught_up = true;
        publish(desk, reading);
    }
    let mut stream = ledger.subscribe(reading.next_seq).await?;
    while let Some(entry) = stream.next().await {
        let entry = entry?;
        let changed = match &entry.event.body {
            Some(pb::event::Body::Genesis(g)) if g.authority_public_key == public_key => {
                Some(Standing::Registered {
                    org_id: g.authority_org_id.clone(),
                    roles: vec![pb::Role::Authority],
                })
            }
            Some(pb::event::Body::RegisterKey(k)) if k.public_key == public_key => {
                Some(Standing::Registered {
                    org_id: k.org_id.clone(),
                    roles: k
                        .roles
                        .iter()
                        .filter_map(|r| pb::Role::try_from(*r).ok())
                        .collect(),
                })
            }
            Some(pb::event::Body::RevokeKey(k)) if k.public_key == public_key => {
                let org_id = match &reading.found {
                    Some(Standing::Registered { org_id, .. }) => org_id.clone(),
                    _ => String::new(),
                };
                Some(Standing::Revoked { org_id })
            }
            _ => None,
        };
        reading.next_seq = entry.seq + 1;
        let changed = changed.is_some_and(|standing| {
            reading.found = Some(standing);
            true
        });
        let just_caught_up = !reading.caught_up && reading.next_seq >= size_at_start;
        reading.caught_up |= just_caught_up;
        if reading.caught_up && (changed || just_caught_up) {
            publish(desk, reading);
        }
    }
    Ok(())
}

/// The standing read so far, judged against the desk's organisation.
fn publish(desk: &Desk, reading: &Reading) {
    let standing = match reading.found.clone() {
        None => Standing::NotRegistered,
        Some(Standing::Registered { org_id, .. }) if org_id != desk.config.org_id => {
            Standing::OtherOrganization { org_id }
        }
        Some(standing) => standing,
    };
    desk.set_standing(standing);
}
