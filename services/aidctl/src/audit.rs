//! `aidctl audit`: the auditor's commands, a thin shell over
//! `aidledger-audit`. This module fetches (gRPC, archive files) and prints;
//! every decision about what is valid is the audit crate's.
//!
//! A verification failure (an entry, a checkpoint, a proof, a quorum, an
//! alarm of the monitor, a witness refusal) is an [`AuditFailed`] error:
//! exit code 4, with the first failing seq and the stable reason.

use std::fmt;
use std::fs;
use std::io::{self, Seek as _, Write as _};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use aidledger_audit::archive::{ArchiveWriter, Tail, VerifiedArchive, verify_archive};
use aidledger_audit::bundle::{ProofBundle, verify_bundle};
use aidledger_audit::{
    AUDIT_BATCH_ENTRIES_MAX, EventSelector, Failure, LogAuditor, Monitor, Witness, WitnessError,
    WitnessQuorum, reason, verify_note,
};
use aidledger_client::{Client, pb};
use aidledger_ledger::check_format;
use aidledger_tlog::tiles::{TILE_WIDTH, entry_bundle_path, split_entry_bundle};
use aidledger_tlog::{Checkpoint, EMPTY_ROOT, Hash, LogVerifier, WitnessSigner};
use aidledger_wire::Message as _;
use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio_stream::StreamExt as _;

use crate::cli::{
    AuditArgs, AuditCommand, AuditProveArgs, ExportArgs, Global, ImportArgs, MonitorArgs, Quorum,
    VerifyArgs, VerifyBundleArgs, WitnessArgs,
};

/// A verification failed: exit code 4.
#[derive(Debug)]
pub struct AuditFailed(pub Failure);

impl fmt::Display for AuditFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "verification failed: {}", self.0)
    }
}

impl std::error::Error for AuditFailed {}

/// The monitor's archive of everything it verified, in its state directory.
const MONITOR_ARCHIVE: &str = "log.archive";

pub async fn run(global: &Global, args: &AuditArgs) -> Result<()> {
    match &args.command {
        AuditCommand::Verify(args) => verify(global, args).await,
        AuditCommand::Export(args) => export(global, args).await,
        AuditCommand::Import(args) => import(global, args),
        AuditCommand::Prove(args) => prove(global, args).await,
        AuditCommand::VerifyBundle(args) => verify_bundle_file(global, args),
        AuditCommand::VerifyDonor(args) => crate::donor::verify(global, args).await,
        AuditCommand::Monitor(args) => monitor(global, args).await,
        AuditCommand::Witness(args) => witness(global, args).await,
    }
}

fn vkey(global: &Global) -> Result<&str> {
    global
        .vkey
        .as_deref()
        .context("auditing needs the ledger's pinned key: pass --vkey VKEY (or set AIDLEDGER_VKEY)")
}

fn quorum(quorum: &Quorum) -> Result<Option<WitnessQuorum>> {
    if quorum.witness.is_empty() {
        if quorum.quorum.is_some() {
            bail!("--quorum needs the witnesses' vkeys (--witness VKEY, repeated)");
        }
        return Ok(None);
    }
    let required = quorum.quorum.unwrap_or(quorum.witness.len());
    WitnessQuorum::new(&quorum.witness, required)
        .map(Some)
        .map_err(|e| anyhow::anyhow!(e))
}

fn failed(failure: Failure) -> anyhow::Error {
    AuditFailed(failure).into()
}

fn progress_bar(len: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} entries, {per_sec}, eta {eta} ({elapsed} so far)",
    ) {
        bar.set_style(style);
    }
    bar
}

/// A checkpoint from the ledger: latest, at a size, or the latest with
/// enough cosignatures for `quorum`.
async fn fetch_checkpoint(
    client: &Client,
    tree_size: Option<u64>,
    quorum: Option<&WitnessQuorum>,
) -> Result<String> {
    let request = pb::GetCheckpointRequest {
        tree_size: tree_size.unwrap_or(0),
        cosignatures_min: match (tree_size, quorum) {
            (None, Some(quorum)) => u32::try_from(quorum.required()).unwrap_or(u32::MAX),
            _ => 0,
        },
    };
    let served = client
        .raw()
        .get_checkpoint(request)
        .await
        .context("fetching the checkpoint")?
        .into_inner();
    Ok(served.note)
}

/// Receives entries `from..to` from the ledger's raw stream, in batches,
/// into `send`. The stream is checked by whoever receives the batches.
async fn stream_entries(
    client: &Client,
    from: u64,
    to: u64,
    mut send: impl FnMut(Vec<Bytes>) -> Result<()>,
) -> Result<()> {
    if from >= to {
        return Ok(());
    }
    let mut stream = client
        .raw()
        .subscribe(pb::SubscribeRequest { from_seq: from })
        .await
        .context("subscribing to the log")?
        .into_inner();
    let mut batch = Vec::with_capacity(AUDIT_BATCH_ENTRIES_MAX);
    let mut received = from;
    while received < to {
        let Some(entry) = stream.next().await else {
            bail!(
                "the ledger ended the stream after entry {}",
                received.wrapping_sub(1)
            );
        };
        let entry = entry.with_context(|| format!("receiving entry {received}"))?;
        // The auditor checks each entry's own seq field; the envelope's is
        // only a label, so it is not trusted here.
        batch.push(entry.entry);
        received += 1;
        if batch.len() == AUDIT_BATCH_ENTRIES_MAX {
            send(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        send(batch)?;
    }
    Ok(())
}

/// The verified log fetched from the ledger, up to a checkpoint.
struct Fetched {
    auditor: LogAuditor,
    checkpoint: Checkpoint,
    note: String,
    elapsed: Duration,
}

/// Verifies the ledger's log up to a checkpoint over gRPC, handing every
/// batch to `also` (the export writes it). The auditor runs on its own
/// thread so the stream keeps flowing while it verifies.
async fn fetch_and_verify(
    global: &Global,
    tree_size: Option<u64>,
    quorum: Option<&WitnessQuorum>,
    progress: bool,
    mut also: impl FnMut(&[Bytes]) -> Result<()>,
) -> Result<Fetched> {
    let vkey = vkey(global)?.to_owned();
    let client = crate::commands::connect(global, None).await?;
    let note = fetch_checkpoint(&client, tree_size, quorum).await?;
    let log = LogVerifier::from_vkey(&vkey).context("--vkey")?;
    let checkpoint = verify_note(&log, &note).map_err(failed)?;
    if let Some(quorum) = quorum {
        quorum.check(&note).map_err(failed)?;
    }
    let bar = progress_bar(checkpoint.size, progress);
    let started = Instant::now();
    // Two batches in flight: one being verified, one arriving.
    let (batches, received) = mpsc::sync_channel::<Vec<Bytes>>(2);
    let auditor_note = note.clone();
    let auditor_bar = bar.clone();
    let auditor = std::thread::spawn(move || -> Result<LogAuditor, Failure> {
        let mut auditor = LogAuditor::new(&vkey)
            .map_err(|e| Failure::of(reason::CHECKPOINT_INVALID, e.to_string()))?;
        for batch in received {
            let len = batch.len() as u64;
            auditor.push(batch)?;
            auditor_bar.inc(len);
        }
        auditor.check_checkpoint(&auditor_note)?;
        Ok(auditor)
    });
    let streamed = stream_entries(&client, 0, checkpoint.size, |batch| {
        also(&batch)?;
        // A closed channel means the auditor stopped at a failure; its
        // result says which.
        let _ = batches.send(batch);
        Ok(())
    })
    .await;
    drop(batches);
    let audited = auditor
        .join()
        .map_err(|_| anyhow::anyhow!("the auditor thread panicked"))?;
    bar.finish_and_clear();
    let auditor = match (audited, streamed) {
        (Ok(auditor), Ok(())) => auditor,
        // The stream broke off: that is the network's failure (exit 1), not
        // a short log, unless the auditor found something before it.
        (Err(failure), Err(error)) if failure.reason == reason::LOG_TOO_SHORT => {
            return Err(error);
        }
        (Err(failure), _) => return Err(failed(failure)),
        (Ok(_), Err(error)) => return Err(error),
    };
    Ok(Fetched {
        auditor,
        checkpoint,
        note,
        elapsed: started.elapsed(),
    })
}

fn report(
    json_output: bool,
    source: &str,
    checkpoint: &Checkpoint,
    note: &str,
    quorum: Option<&WitnessQuorum>,
    elapsed: Duration,
) -> Result<()> {
    let witnesses: Vec<String> = match quorum {
        Some(quorum) => quorum
            .check(note)
            .map_err(failed)?
            .into_iter()
            .map(|c| c.witness)
            .collect(),
        None => Vec::new(),
    };
    let rate = checkpoint.size as f64 / elapsed.as_secs_f64().max(1e-9);
    if json_output {
        let report = json!({
            "ok": true,
            "source": source,
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root": BASE64.encode(checkpoint.root.0),
            "witnesses": witnesses,
            "elapsed_seconds": elapsed.as_secs_f64(),
            "entries_per_second": rate,
        });
        println!("{report}");
    } else {
        println!(
            "verified {} entries of {} from {source}: root {} signed by the pinned key{} ({:.0} entries/s)",
            checkpoint.size,
            checkpoint.origin,
            BASE64.encode(checkpoint.root.0),
            if witnesses.is_empty() {
                String::new()
            } else {
                format!(", cosigned by {}", witnesses.join(", "))
            },
            rate
        );
    }
    Ok(())
}

/// Prints a failure as JSON when asked, then returns it as the error.
fn fail_with_report(json_output: bool, error: anyhow::Error) -> anyhow::Error {
    if json_output && let Some(AuditFailed(failure)) = error.downcast_ref::<AuditFailed>() {
        println!("{}", json!({"ok": false, "failure": failure}));
    }
    error
}

async fn verify(global: &Global, args: &VerifyArgs) -> Result<()> {
    let quorum = quorum(&args.quorum)?;
    let progress = !args.json && !args.no_progress;
    if let Some(base) = &args.tiles {
        let (checkpoint, note, elapsed) = verify_tiles(global, base, quorum.as_ref(), progress)
            .await
            .map_err(|error| fail_with_report(args.json, error))?;
        return report(
            args.json,
            base,
            &checkpoint,
            &note,
            quorum.as_ref(),
            elapsed,
        );
    }
    let result = match &args.archive {
        Some(path) => verify_archive_file(global, path, quorum.as_ref(), progress).map(|v| {
            let (checkpoint, note, elapsed) = v;
            (
                format!("archive {}", path.display()),
                checkpoint,
                note,
                elapsed,
            )
        }),
        None => fetch_and_verify(
            global,
            args.tree_size,
            quorum.as_ref(),
            progress,
            |_| Ok(()),
        )
        .await
        .map(|fetched| {
            (
                global.ledger.join(", "),
                fetched.checkpoint,
                fetched.note,
                fetched.elapsed,
            )
        }),
    };
    let (source, checkpoint, note, elapsed) =
        result.map_err(|error| fail_with_report(args.json, error))?;
    report(
        args.json,
        &source,
        &checkpoint,
        &note,
        quorum.as_ref(),
        elapsed,
    )
}

/// Verifies the log from its public C2SP tlog-tiles: the checkpoint, then
/// every entry bundle it covers, through the same auditor as the other
/// sources. Nothing the tile server says is trusted: the entries must
/// replay and hash to the signed root.
async fn verify_tiles(
    global: &Global,
    base: &str,
    quorum: Option<&WitnessQuorum>,
    progress: bool,
) -> Result<(Checkpoint, String, Duration)> {
    let vkey = vkey(global)?.to_owned();
    let http = crate::http::Http::new();
    let base = base.trim_end_matches('/');
    let (status, note) = http.get(&format!("{base}/checkpoint")).await?;
    if status != 200 {
        bail!("{base}/checkpoint answered HTTP {status}");
    }
    let note = String::from_utf8(note.to_vec()).context("the checkpoint is not UTF-8 text")?;
    let log = LogVerifier::from_vkey(&vkey).context("--vkey")?;
    let checkpoint = verify_note(&log, &note).map_err(failed)?;
    if let Some(quorum) = quorum {
        quorum.check(&note).map_err(failed)?;
    }
    let bar = progress_bar(checkpoint.size, progress);
    let started = Instant::now();
    let mut auditor = LogAuditor::new(&vkey)
        .map_err(|e| failed(Failure::of(reason::CHECKPOINT_INVALID, e.to_string())))?;
    for index in 0..checkpoint.size.div_ceil(TILE_WIDTH) {
        let width = (checkpoint.size - index * TILE_WIDTH).min(TILE_WIDTH);
        let url = format!("{base}/{}", entry_bundle_path(index, width));
        let (status, bundle) = http.get(&url).await?;
        if status != 200 {
            bail!("{url} answered HTTP {status}");
        }
        let entries: Vec<Vec<u8>> = split_entry_bundle(&bundle, width as usize)
            .map_err(|detail| {
                failed(Failure::of(
                    reason::UNDECODABLE_ENTRY,
                    format!("entry bundle {url}: {detail}"),
                ))
            })?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        auditor.push(entries).map_err(failed)?;
        bar.inc(width);
    }
    auditor.check_checkpoint(&note).map_err(failed)?;
    bar.finish_and_clear();
    Ok((checkpoint, note, started.elapsed()))
}

fn verify_archive_file(
    global: &Global,
    path: &Path,
    quorum: Option<&WitnessQuorum>,
    progress: bool,
) -> Result<(Checkpoint, String, Duration)> {
    let vkey = vkey(global)?;
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // The size is not known before the end: the bar counts bytes instead.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(len, progress);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes}, {bytes_per_sec}, eta {eta}")
    {
        bar.set_style(style);
    }
    let started = Instant::now();
    let reader = bar.wrap_read(file);
    let verified = verify_archive(reader, vkey, quorum, Tail::Refuse, &mut |_| {});
    bar.finish_and_clear();
    let verified = verified.map_err(failed)?;
    Ok((verified.checkpoint, verified.note, started.elapsed()))
}

async fn export(global: &Global, args: &ExportArgs) -> Result<()> {
    let quorum = quorum(&args.quorum)?;
    // Written beside the target and renamed only once verified, so a file
    // at --out is always a complete, verified archive.
    let partial = args.out.with_extension("partial");
    let file =
        fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut writer = ArchiveWriter::new(io::BufWriter::with_capacity(1 << 20, file))
        .with_context(|| format!("writing {}", partial.display()))?;
    let fetched = fetch_and_verify(
        global,
        args.tree_size,
        quorum.as_ref(),
        !args.no_progress,
        |batch| {
            batch
                .iter()
                .try_for_each(|entry| writer.entry(entry))
                .with_context(|| format!("writing {}", partial.display()))
        },
    )
    .await?;
    writer
        .checkpoint(&fetched.note)
        .and_then(|()| writer.get_mut().flush())
        .and_then(|()| {
            writer
                .into_inner()
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()
        })
        .with_context(|| format!("writing {}", partial.display()))?;
    fs::rename(&partial, &args.out)
        .with_context(|| format!("renaming {} to {}", partial.display(), args.out.display()))?;
    eprintln!(
        "exported and verified {} entries of {} to {}",
        fetched.checkpoint.size,
        fetched.checkpoint.origin,
        args.out.display()
    );
    drop(fetched.auditor);
    Ok(())
}

fn import(global: &Global, args: &ImportArgs) -> Result<()> {
    let quorum = quorum(&args.quorum)?;
    let (checkpoint, _, _) =
        verify_archive_file(global, &args.archive, quorum.as_ref(), !args.no_progress)?;
    fs::create_dir_all(&args.state)
        .with_context(|| format!("creating {}", args.state.display()))?;
    let target = args.state.join(MONITOR_ARCHIVE);
    if target.exists() {
        bail!(
            "{} already holds a monitor state; import into an empty directory",
            args.state.display()
        );
    }
    let bytes =
        fs::read(&args.archive).with_context(|| format!("reading {}", args.archive.display()))?;
    aidledger_audit::write_atomically(&target, &bytes)
        .with_context(|| format!("writing {}", target.display()))?;
    eprintln!(
        "imported {} verified entries of {} into {}; `aidctl audit monitor --state {}` continues from there",
        checkpoint.size,
        checkpoint.origin,
        args.state.display(),
        args.state.display()
    );
    Ok(())
}

fn selector(args: &AuditProveArgs) -> Result<EventSelector> {
    Ok(match (&args.event_id, &args.receipt_id, &args.bank_ref) {
        (Some(id), None, None) => EventSelector::EventId(id.clone()),
        (None, Some(id), None) => EventSelector::ReceiptId(id.clone()),
        (None, None, Some(reference)) => {
            let path = args
                .ref_key
                .as_deref()
                .context("--bank-ref needs --ref-key: references are keyed (SPEC 7.5)")?;
            EventSelector::bank_reference(reference, &crate::commands::load_ref_key(path)?)
        }
        _ => bail!("give exactly one of --event-id, --receipt-id, --bank-ref"),
    })
}

/// The seq of the first entry below `size` whose event matches.
async fn find_entry(client: &Client, selector: &EventSelector, size: u64) -> Result<Option<u64>> {
    if let EventSelector::EventId(id) = selector {
        let found = client
            .raw()
            .get_entry(pb::GetEntryRequest {
                key: Some(pb::get_entry_request::Key::EventId(id.clone())),
            })
            .await;
        return match found {
            Ok(entry) => Ok(Some(entry.into_inner().seq).filter(|&seq| seq < size)),
            Err(status) if status.code() == aidledger_client::Code::NotFound => Ok(None),
            Err(status) => Err(status).context("looking the event up"),
        };
    }
    // Receipts have no index on the ledger: scan the log. The match is only
    // a search; the bundle is verified below whatever the stream said.
    let mut found = None;
    let mut seq = 0u64;
    stream_entries(client, 0, size, |batch| {
        for bytes in batch {
            if found.is_none()
                && let Ok(entry) = pb::LedgerEntry::decode(bytes.clone())
                && let Some(signed) = entry.signed_event
                && let Ok(checked) = check_format(signed)
                && selector.matches(&checked.event)
            {
                found = Some(seq);
            }
            seq += 1;
        }
        Ok(())
    })
    .await?;
    Ok(found)
}

async fn prove(global: &Global, args: &AuditProveArgs) -> Result<()> {
    let selector = selector(args)?;
    let quorum = quorum(&args.quorum)?;
    let vkey = vkey(global)?;
    let client = crate::commands::connect(global, None).await?;
    let note = fetch_checkpoint(&client, None, quorum.as_ref()).await?;
    let log = LogVerifier::from_vkey(vkey).context("--vkey")?;
    let checkpoint = verify_note(&log, &note).map_err(failed)?;
    let Some(seq) = find_entry(&client, &selector, checkpoint.size).await? else {
        bail!(
            "no such event in the {} entries of the checkpoint{}",
            checkpoint.size,
            if quorum.is_some() {
                " with enough cosignatures"
            } else {
                ""
            }
        );
    };
    let entry = client
        .raw()
        .get_entry(pb::GetEntryRequest {
            key: Some(pb::get_entry_request::Key::Seq(seq)),
        })
        .await
        .with_context(|| format!("fetching entry {seq}"))?
        .into_inner();
    let proof = client
        .raw()
        .get_inclusion_proof(pb::InclusionProofRequest {
            seq,
            tree_size: checkpoint.size,
        })
        .await
        .with_context(|| format!("fetching the inclusion proof of entry {seq}"))?
        .into_inner();
    let hashes = proof
        .hashes
        .iter()
        .map(|hash| {
            <[u8; 32]>::try_from(&hash[..])
                .map(Hash)
                .map_err(|_| Failure::of(reason::PROOF_INVALID, "a proof hash is not 32 bytes"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    let bundle = ProofBundle::new(vkey, &note, seq, &entry.entry, &hashes);
    // Verified exactly as the person it is handed to will verify it.
    let proven = verify_bundle(&bundle, vkey, quorum.as_ref()).map_err(failed)?;
    let text = serde_json::to_string_pretty(&bundle)?;
    match &args.out {
        Some(path) => {
            fs::write(path, format!("{text}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => println!("{text}"),
    }
    eprintln!(
        "entry {seq} ({} {}) is in the checkpoint of size {}{}; the bundle verifies offline with `aidctl --vkey <vkey> audit verify-bundle`",
        proven.event.event.body.kind_name(),
        proven.event.event.event_id,
        proven.checkpoint.size,
        cosigned_by(&proven.cosignatures),
    );
    Ok(())
}

fn cosigned_by(cosignatures: &[aidledger_tlog::Cosignature]) -> String {
    if cosignatures.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = cosignatures.iter().map(|c| c.witness.as_str()).collect();
        format!(", cosigned by {}", names.join(", "))
    }
}

fn verify_bundle_file(global: &Global, args: &VerifyBundleArgs) -> Result<()> {
    let quorum = quorum(&args.quorum)?;
    let vkey = vkey(global)?;
    let text = fs::read_to_string(&args.bundle)
        .with_context(|| format!("reading {}", args.bundle.display()))?;
    let bundle: ProofBundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proof bundle", args.bundle.display()))?;
    let proven = verify_bundle(&bundle, vkey, quorum.as_ref())
        .map_err(failed)
        .map_err(|error| fail_with_report(args.json, error))?;
    let event = &proven.event.event;
    if args.json {
        println!(
            "{}",
            json!({
                "ok": true,
                "seq": proven.seq,
                "event_id": event.event_id,
                "kind": event.body.kind_name(),
                "org_id": event.org_id,
                "signer": proven.event.signer.to_string(),
                "tree_size": proven.checkpoint.size,
                "root": BASE64.encode(proven.checkpoint.root.0),
                "witnesses": proven.cosignatures.iter().map(|c| &c.witness).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "entry {} ({} {} by {}) is in the ledger's checkpoint of size {}{}",
            proven.seq,
            event.body.kind_name(),
            event.event_id,
            event.org_id,
            proven.checkpoint.size,
            cosigned_by(&proven.cosignatures)
        );
    }
    Ok(())
}

/// Loads the monitor's verified archive, cutting off a tail a crash left.
/// The quorum applies to what the monitor observes next, not to the
/// history it already verified.
fn load_monitor_state(path: &Path, vkey: &str) -> Result<Option<VerifiedArchive>> {
    if !path.exists() {
        return Ok(None);
    }
    for _ in 0..2 {
        let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let verified =
            verify_archive(file, vkey, None, Tail::Ignore, &mut |_| {}).map_err(failed)?;
        if verified.uncovered_len == 0 {
            return Ok(Some(verified));
        }
        warn(&format!(
            "{}: cutting off {} bytes no checkpoint covers (an interrupted update)",
            path.display(),
            verified.uncovered_len
        ));
        let file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.set_len(verified.verified_len)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("truncating {}", path.display()))?;
    }
    bail!("{} could not be repaired", path.display())
}

fn warn(text: &str) {
    eprintln!("aidctl audit: {text}");
}

/// Appends verified entries and their checkpoint to the monitor's archive,
/// durably, before the new checkpoint is trusted across restarts.
fn append_to_state(path: &Path, entries: &[Bytes], note: &str) -> Result<()> {
    let new = !path.exists();
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.seek(io::SeekFrom::End(0))?;
    let buffered = io::BufWriter::with_capacity(1 << 20, file);
    let mut writer = if new {
        ArchiveWriter::new(buffered)?
    } else {
        ArchiveWriter::append_to(buffered)
    };
    for entry in entries {
        writer.entry(entry)?;
    }
    writer.checkpoint(note)?;
    let file = writer
        .into_inner()
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

/// Sends the alarm to the webhook: one HTTP POST of JSON, plain `http://`
/// only (a local relay forwards it anywhere), bounded in time.
async fn post_webhook(url: &str, body: &serde_json::Value) -> Result<()> {
    crate::http::Http::new()
        .post_json(url, body)
        .await
        .with_context(|| format!("webhook {url}"))
}

async fn alarm(
    args: &MonitorArgs,
    origin: &str,
    trusted: &Checkpoint,
    failure: Failure,
) -> anyhow::Error {
    eprintln!(
        "ALARM {origin}: {failure} (trusted checkpoint: size {}, root {})",
        trusted.size,
        BASE64.encode(trusted.root.0)
    );
    if let Some(url) = &args.webhook {
        let body = json!({
            "alarm": failure,
            "origin": origin,
            "trusted_size": trusted.size,
            "trusted_root": BASE64.encode(trusted.root.0),
        });
        if let Err(error) = post_webhook(url, &body).await {
            eprintln!("aidctl audit: the alarm could not be posted: {error:#}");
        }
    }
    failed(failure)
}

async fn monitor(global: &Global, args: &MonitorArgs) -> Result<()> {
    let quorum = quorum(&args.quorum)?;
    let vkey = vkey(global)?;
    let log = LogVerifier::from_vkey(vkey).context("--vkey")?;
    fs::create_dir_all(&args.state)
        .with_context(|| format!("creating {}", args.state.display()))?;
    let path = args.state.join(MONITOR_ARCHIVE);
    let mut monitor = match load_monitor_state(&path, vkey)? {
        Some(verified) => Monitor::new(
            verified.auditor,
            verified.checkpoint,
            verified.note,
            quorum.clone(),
        ),
        None => Monitor::new(
            LogAuditor::new(vkey).context("--vkey")?,
            Checkpoint {
                origin: log.origin().to_owned(),
                size: 0,
                root: EMPTY_ROOT,
            },
            String::new(),
            quorum.clone(),
        ),
    };
    eprintln!(
        "monitoring {} from the trusted size {}",
        log.origin(),
        monitor.trusted().size
    );
    let client = crate::commands::connect(global, None).await?;
    loop {
        let note = fetch_checkpoint(&client, None, quorum.as_ref()).await?;
        let trusted = monitor.trusted().clone();
        let observed = match monitor.observe(&note) {
            Ok(observed) => observed,
            Err(failure) => return Err(alarm(args, log.origin(), &trusted, failure).await),
        };
        if let Some(checkpoint) = observed {
            let proof = if trusted.size == 0 {
                Vec::new()
            } else {
                match client
                    .consistency_proof(trusted.size, checkpoint.size)
                    .await
                {
                    Ok(proof) => proof.into_iter().map(Hash).collect(),
                    Err(aidledger_client::ClientError::Verification { what }) => {
                        let failure = Failure::of(reason::INCONSISTENT, what);
                        return Err(alarm(args, log.origin(), &trusted, failure).await);
                    }
                    Err(error) => return Err(error).context("fetching a consistency proof"),
                }
            };
            let mut entries = Vec::new();
            stream_entries(&client, trusted.size, checkpoint.size, |batch| {
                entries.extend(batch);
                Ok(())
            })
            .await?;
            if let Err(failure) = monitor.advance(&note, &checkpoint, &proof, entries.clone()) {
                return Err(alarm(args, log.origin(), &trusted, failure).await);
            }
            append_to_state(&path, &entries, &note)?;
            eprintln!(
                "verified {} new entries: trusted size {}, root {}",
                checkpoint.size - trusted.size,
                checkpoint.size,
                BASE64.encode(checkpoint.root.0)
            );
        }
        if args.once {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn witness(global: &Global, args: &WitnessArgs) -> Result<()> {
    let vkey = vkey(global)?;
    let log = LogVerifier::from_vkey(vkey).context("--vkey")?;
    let key = crate::commands::load_key(&args.key).context("the witness key")?;
    let signer = WitnessSigner::new(&args.name, key).context("--name")?;
    eprintln!("witness {}", signer.vkey());
    let mut witness = Witness::open(&args.state, signer, log).map_err(|e| anyhow::anyhow!(e))?;
    let client = crate::commands::connect(global, None).await?;
    loop {
        let note = fetch_checkpoint(&client, None, None).await?;
        let checkpoint = LogVerifier::from_vkey(vkey)?
            .verify(&note)
            .map_err(|e| failed(Failure::of(reason::CHECKPOINT_INVALID, e.to_string())))?;
        let proof = match witness.last() {
            Some(last) if last.size > 0 && last.size < checkpoint.size => {
                match client.consistency_proof(last.size, checkpoint.size).await {
                    Ok(proof) => proof.into_iter().map(Hash).collect(),
                    Err(aidledger_client::ClientError::Verification { what }) => {
                        return Err(failed(Failure::of(reason::INCONSISTENT, what)));
                    }
                    Err(error) => return Err(error).context("fetching a consistency proof"),
                }
            }
            _ => Vec::new(),
        };
        let line = match witness.cosign(&note, &proof, unix_now()) {
            Ok(line) => line,
            Err(WitnessError::Refused(failure)) => {
                eprintln!(
                    "witness: refusing the checkpoint of size {}: {failure}",
                    checkpoint.size
                );
                return Err(failed(failure));
            }
            Err(error) => return Err(error.into()),
        };
        let cosigned = format!("{note}{line}");
        let added = client
            .raw()
            .add_cosignature(pb::AddCosignatureRequest { note: cosigned })
            .await
            .context("sending the cosignature to the ledger")?
            .into_inner();
        eprintln!(
            "cosigned the checkpoint of size {}; the ledger recorded {}",
            checkpoint.size,
            added.witnesses.join(", ")
        );
        if args.once {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
}
