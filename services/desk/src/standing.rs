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
    /// Registered for `org_id`, with these roles.
    Registered {
        org_id: String,
        roles: Vec<pb::Role>,
    },
    /// Registered once, since revoked.
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
            Standing::Revoked { .. } | Standing::NotRegistered => false,
        }
    }
}

/// Reads the log from the start and follows it, keeping
/// [`Desk::standing`] current. Reconnects after a failure.
pub(crate) async fn follow(desk: Arc<Desk>) {
    let public_key = desk.config.key.public_key().to_vec();
    loop {
        if let Err(error) = read(&desk, &public_key).await {
            tracing::warn!(%error, "reading the key's roles from the log; retrying");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn read(desk: &Desk, public_key: &[u8]) -> Result<(), aidledger_client::ClientError> {
    let ledger = &desk.config.ledger;
    let size_at_start = ledger.checkpoint().await?.checkpoint.size;
    let mut found: Option<Standing> = None;
    let mut stream = ledger.subscribe(0).await?;
    if size_at_start == 0 {
        desk.set_standing(Standing::NotRegistered);
    }
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
                let org_id = match &found {
                    Some(Standing::Registered { org_id, .. }) => org_id.clone(),
                    _ => String::new(),
                };
                Some(Standing::Revoked { org_id })
            }
            _ => None,
        };
        if let Some(standing) = changed {
            found = Some(standing);
        }
        // Published once the log as of the start is read, then at each
        // change.
        if entry.seq + 1 >= size_at_start {
            desk.set_standing(found.clone().unwrap_or(Standing::NotRegistered));
        }
    }
    Ok(())
}
