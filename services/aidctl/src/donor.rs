//! Donors who asked not to be named (SPEC §7.5): `aidctl register-donor`
//! registers one as an agency would, and `aidctl audit verify-donor` lets
//! the donor (or anyone they show the acknowledgement to) check it against
//! the log.
//!
//! The log gets a random org id and `name_commitment`; the name and the
//! salt go only into the acknowledgement file, which the agency hands to
//! the donor. Revealing name and salt proves the registration is theirs.

use std::fs;
use std::io::{self, Write as _};

use aidledger_client::{ClientError, EntryKey, pb};
use aidledger_desk::acknowledgement::{Acknowledgement, ORG_ID_ATTEMPTS_MAX, random_org_id};
use aidledger_ledger::OrgName;
use aidledger_ledger::decode::NAME_CHARS_MAX;
use aidledger_ledger::privacy::{NAME_SALT_BYTES, name_commitment};
use aidledger_tlog::ed25519::Zeroizing;
use anyhow::{Context as _, Result, bail};
use rand_core::RngCore as _;

use crate::cli::{DonorKind, Global, RegisterDonorArgs, VerifyDonorArgs};
use crate::commands::{Refused, connect, create_private, load_key, new_event_id, now};

fn org_kind(kind: DonorKind) -> pb::OrgKind {
    match kind {
        DonorKind::Individual => pb::OrgKind::DonorIndividual,
        DonorKind::Business => pb::OrgKind::DonorBusiness,
        DonorKind::Organization => pb::OrgKind::DonorOrganization,
    }
}

/// `aidctl register-donor`.
pub async fn register(global: &Global, args: &RegisterDonorArgs) -> Result<()> {
    let name = args.name.trim();
    if name.is_empty() {
        bail!("--name is empty");
    }
    if name.chars().any(char::is_control) || name.chars().count() > NAME_CHARS_MAX {
        bail!("--name must be one line of at most {NAME_CHARS_MAX} characters");
    }
    let feed_url = args.feed_url.trim_end_matches('/');
    if !(feed_url.starts_with("https://") || feed_url.starts_with("http://")) {
        bail!("--feed-url must be an http:// or https:// address");
    }
    let key = load_key(&args.key)?;
    // Claimed before anything is signed: a registration whose
    // acknowledgement cannot be written would leave the donor without a way
    // to prove it.
    let mut ack_file = create_private(&args.ack_out).map_err(|error| match error.kind() {
        io::ErrorKind::AlreadyExists => anyhow::anyhow!(
            "{} already exists; refusing to overwrite an acknowledgement",
            args.ack_out.display()
        ),
        _ => anyhow::Error::new(error).context(format!("creating {}", args.ack_out.display())),
    })?;
    let registered = register_with_fresh_id(global, args, &key, name).await;
    let ack = match registered {
        Ok(ack) => ack,
        Err(error) => {
            drop(ack_file);
            let _ = fs::remove_file(&args.ack_out);
            return Err(error);
        }
    };
    let text = Zeroizing::new(ack.to_text()?);
    ack_file
        .write_all(text.as_bytes())
        .and_then(|()| ack_file.sync_all())
        .with_context(|| format!("writing {}", args.ack_out.display()))?;
    println!(
        "registered hidden donor {} at seq {} (event {}); the acknowledgement for the donor is {}",
        ack.org_id,
        ack.seq,
        ack.event_id,
        args.ack_out.display()
    );
    eprintln!(
        "Hand the acknowledgement to the donor and keep no other copy of the name and salt: the log holds only the commitment."
    );
    Ok(())
}

async fn register_with_fresh_id(
    global: &Global,
    args: &RegisterDonorArgs,
    key: &aidledger_client::SecretKey,
    name: &str,
) -> Result<Acknowledgement> {
    let client = connect(global, None).await?;
    let feed_url = args.feed_url.trim_end_matches('/');
    for _ in 0..ORG_ID_ATTEMPTS_MAX {
        let org_id = random_org_id();
        let mut salt = Zeroizing::new([0u8; NAME_SALT_BYTES]);
        rand_core::OsRng.fill_bytes(&mut salt[..]);
        let event = pb::Event {
            event_id: new_event_id(),
            org_id: args.org.clone(),
            occurred_at: Some(now()),
            body: Some(pb::event::Body::RegisterOrg(pb::RegisterOrganization {
                org_id: org_id.clone(),
                name: String::new(),
                kind: org_kind(args.kind) as i32,
                public_name: false,
                name_commitment: name_commitment(&salt, name).to_vec().into(),
                ..Default::default()
            })),
        };
        aidledger_ledger::decode::event_from_pb(event.clone())
            .map_err(|rejection| anyhow::anyhow!("the registration is malformed: {rejection}"))?;
        let signed = client.sign(key, &event);
        // Waited for: the acknowledgement is handed over once a checkpoint
        // covers the registration, so the donor can verify it at once.
        match client.append(signed, true).await {
            Ok(appended) => {
                return Ok(Acknowledgement {
                    origin: client.origin().to_owned(),
                    page: format!("{feed_url}/donors/{org_id}"),
                    org_id,
                    name: name.to_owned(),
                    salt: *salt,
                    registered_by: args.org.clone(),
                    event_id: event.event_id,
                    seq: appended.seq,
                });
            }
            Err(ClientError::Rejected(rejected)) if rejected.reason == "ID_EXISTS" => continue,
            Err(ClientError::Rejected(rejected)) => {
                println!("registration refused: {rejected}");
                return Err(Refused {
                    refused: 1,
                    total: 1,
                }
                .into());
            }
            Err(error) => return Err(error).context("appending the registration"),
        }
    }
    bail!("{ORG_ID_ATTEMPTS_MAX} random org ids in a row were taken; is the generator broken?")
}

/// `aidctl audit verify-donor`: the registration named by the
/// acknowledgement is in a checkpoint signed by the pinned key, registers
/// that org id as hidden, and its commitment opens to the name and salt.
pub async fn verify(global: &Global, args: &VerifyDonorArgs) -> Result<()> {
    if global.vkey.is_none() {
        bail!(
            "verify-donor checks against the ledger's key: pass --vkey VKEY (or set AIDLEDGER_VKEY)"
        );
    }
    let text = Zeroizing::new(
        fs::read_to_string(&args.ack).with_context(|| format!("reading {}", args.ack.display()))?,
    );
    let ack =
        Acknowledgement::parse(&text).with_context(|| format!("reading {}", args.ack.display()))?;
    let client = connect(global, Some(&ack.origin)).await?;
    if client.origin() != ack.origin {
        bail!(
            "the acknowledgement is for ledger {:?}, but the pinned key is {:?}'s",
            ack.origin,
            client.origin()
        );
    }
    let proven = client
        .prove(EntryKey::EventId(ack.event_id.clone()))
        .await
        .with_context(|| format!("proving the registration event {}", ack.event_id))?;
    let failed = |why: String| -> anyhow::Error {
        crate::audit::AuditFailed(aidledger_audit::Failure {
            seq: Some(proven.entry.seq),
            reason: "DONOR_MISMATCH",
            detail: why,
        })
        .into()
    };
    let event = aidledger_ledger::decode::event_from_pb(proven.entry.event.clone())
        .map_err(|rejection| failed(format!("the entry's event is malformed: {rejection}")))?;
    let aidledger_ledger::Body::RegisterOrg(org) = &event.body else {
        return Err(failed(format!(
            "entry {} is a {}, not a registration",
            proven.entry.seq,
            event.body.kind_name()
        )));
    };
    if org.org_id != ack.org_id {
        return Err(failed(format!(
            "entry {} registers {}, not {}",
            proven.entry.seq, org.org_id, ack.org_id
        )));
    }
    let OrgName::Hidden { commitment } = org.name else {
        return Err(failed(format!(
            "{} was registered with a public name",
            org.org_id
        )));
    };
    if name_commitment(&ack.salt, &ack.name) != commitment {
        return Err(failed(format!(
            "the commitment of {} does not open to this name and salt",
            org.org_id
        )));
    }
    let checkpoint = &proven.inclusion.checkpoint.checkpoint;
    println!(
        "VERIFIED: {} (registered by {} at seq {}, event {}) commits to the name on this acknowledgement; the entry is in the checkpoint of size {} signed by the pinned key",
        org.org_id, event.org_id, proven.entry.seq, ack.event_id, checkpoint.size
    );
    if ack.seq != proven.entry.seq {
        eprintln!(
            "note: the acknowledgement says seq {}, the log has the event at seq {}",
            ack.seq, proven.entry.seq
        );
    }
    Ok(())
}
