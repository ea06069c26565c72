//! The subcommands: read input, talk to the ledger through
//! `aidledger-client`, print results. The pure parts (JSON, statements) live
//! in their own modules; this one is the glue.
//!
//! Output discipline: results go to stdout, one line (or one JSON document)
//! each, so they can be piped; progress bars, summaries and warnings go to
//! stderr.

use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::time::SystemTime;

use aidledger_client::{
    Appended, Client, ClientError, Code, ConnectOptions, EntryKey, Rejected, SecretKey, TlsOptions,
    pb,
};
use aidledger_ledger::privacy::{RefKey, SECRET_KEY_BYTES, SecretKey32, free_text, text_warnings};
use aidledger_tlog::ed25519::Zeroizing;
use aidledger_tlog::{LogSigner, LogVerifier};
use aidledger_wire::{Message as _, Timestamp};
use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use indicatif::{ProgressBar, ProgressStyle};
use rand_core::RngCore as _;
use tokio_stream::StreamExt as _;

use crate::cli::{
    Cli, Command, EntrySelector, GenesisArgs, GetArgs, Global, ImportStatementArgs, KeygenArgs,
    ProveArgs, SubmitArgs, TailArgs,
};
use crate::event_json::{
    EventDefaults, Out, entry_to_json, event_to_json, parse_category, read_event_file,
};
use crate::statement::{ReceiptParams, parse_statement, receipt_event};

/// Some events were refused by the ledger (exit code 3). Each refusal was
/// printed where it happened.
#[derive(Debug)]
pub struct Refused {
    /// How many were refused.
    pub refused: usize,
    /// How many were submitted.
    pub total: usize,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} events were refused", self.refused, self.total)
    }
}

impl std::error::Error for Refused {}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<()> {
    let mut global = cli.global;
    // An empty environment variable (`AIDLEDGER_VKEY=`) means "not set".
    global.origin = global.origin.filter(|origin| !origin.is_empty());
    global.vkey = global.vkey.filter(|vkey| !vkey.is_empty());
    let global = &global;
    match &cli.command {
        Command::Keygen(args) => keygen(args),
        Command::Desk(args) => desk(global, args).await,
        Command::Pubkey(args) => {
            let key = load_key(&args.key)?;
            writeln!(
                io::stdout().lock(),
                "public key: {}",
                hex::encode(key.public_key())
            )?;
            Ok(())
        }
        Command::Genesis(args) => genesis(global, args).await,
        Command::Submit(args) => submit(global, args).await,
        Command::Get(args) => get(global, args).await,
        Command::Tail(args) => tail(global, args).await,
        Command::Checkpoint => checkpoint(global).await,
        Command::Prove(args) => prove(global, args).await,
        Command::ImportStatement(args) => import_statement(global, args).await,
        Command::RegisterDonor(args) => crate::donor::register(global, args).await,
        Command::Audit(args) => crate::audit::run(global, args).await,
    }
}

fn keygen(args: &KeygenArgs) -> Result<()> {
    if args.ref_key {
        return ref_keygen(&args.out);
    }
    let key = SecretKey::generate();
    let public_key = hex::encode(key.public_key());
    let pem = if args.encrypt {
        key.to_encrypted_pkcs8_pem(crate::passphrase::new_one()?.as_bytes())
    } else {
        key.to_pkcs8_pem()
    };
    // Checked before anything is written: an invalid name leaves no file.
    let vkey = match &args.name {
        Some(name) => Some(
            LogSigner::new(name, key)
                .with_context(|| format!("--name {name:?}"))?
                .vkey(),
        ),
        None => None,
    };
    write_private(&args.out, pem.as_bytes(), "a key")?;
    let mut out = io::stdout().lock();
    writeln!(out, "public key: {public_key}")?;
    if let Some(vkey) = vkey {
        writeln!(out, "vkey: {vkey}")?;
    }
    Ok(())
}

/// Serves the agency desk until Ctrl-C. The key is opened first, so a
/// wrong passphrase stops here, before anything listens.
async fn desk(global: &Global, args: &crate::cli::DeskArgs) -> Result<()> {
    let key = load_key(&args.key)?;
    let ref_key = args.ref_key.as_deref().map(load_ref_key).transpose()?;
    let ledger = connect(global, None).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let listen = listener.local_addr()?;
    if !listen.ip().is_loopback() {
        eprintln!(
            "aidctl: warning: the desk listens on {listen}, beyond this computer: whoever gets the address printed below can sign as {}",
            args.org
        );
    }
    let desk = aidledger_desk::Desk::new(
        aidledger_desk::DeskConfig {
            org_id: args.org.clone(),
            key,
            ledger,
            projector_url: args.projections.clone(),
            feed_url: args.feed.clone(),
            ref_key,
        },
        listen,
        args.host.clone(),
    );
    // The address carries the session's secret: only who sees this
    // terminal can open the desk.
    println!(
        "desk of {} at {} (open this address; Ctrl-C stops it)",
        args.org,
        desk.launch_url()
    );
    aidledger_desk::serve(listener, desk, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// SPEC §7.5 `K_ref`: 32 bytes from the operating system's generator, as
/// 64 hex characters and a line feed, in a new file only its owner reads.
fn ref_keygen(out: &Path) -> Result<()> {
    let mut bytes = Zeroizing::new([0u8; SECRET_KEY_BYTES]);
    rand_core::OsRng.fill_bytes(&mut bytes[..]);
    let key = SecretKey32::from_bytes(*bytes);
    let text = Zeroizing::new(format!("{}\n", key.to_hex()));
    write_private(out, text.as_bytes(), "a key")?;
    eprintln!(
        "reference key written to {} (mode 0600): give it to the organisations that record receipts and to the feeds that offer look-ups by reference; never publish it",
        out.display()
    );
    Ok(())
}

/// Writes `bytes` to a new file only its owner can read, synced; never
/// overwrites (`what` names the content in the error).
pub(crate) fn write_private(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    let mut file = create_private(path).map_err(|error| match error.kind() {
        io::ErrorKind::AlreadyExists => anyhow::anyhow!(
            "{} already exists; refusing to overwrite {what}",
            path.display()
        ),
        _ => anyhow::Error::new(error).context(format!("creating {}", path.display())),
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a reference key file (`aidctl keygen --ref-key`).
pub(crate) fn load_ref_key(path: &Path) -> Result<RefKey> {
    let text = Zeroizing::new(
        fs::read_to_string(path)
            .with_context(|| format!("reading reference key {}", path.display()))?,
    );
    warn_if_shared(path, "reference key");
    let key = SecretKey32::from_hex(&text)
        .with_context(|| format!("reading reference key {}", path.display()))?;
    Ok(RefKey(key))
}

#[cfg(unix)]
fn warn_if_shared(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(metadata) = fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "aidctl: warning: {what} {} is readable by other users (chmod 600 it)",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path, _what: &str) {}

/// SPEC §7.5: "the organisations' tools SHOULD warn when it looks like a
/// name or a number of 9 or more digits". A warning on stderr, never a
/// refusal: the text is the organisation's to decide.
pub(crate) fn warn_personal_text(location: &str, event: &pb::Event) {
    let Ok(event) = aidledger_ledger::decode::event_from_pb(event.clone()) else {
        return;
    };
    for (field, text) in free_text(&event.body) {
        for warning in text_warnings(text) {
            eprintln!(
                "aidctl: warning: {location}: {field} {warning}; free text is published with the log forever (SPEC 7.5), so it must not hold a child's or a hidden donor's personal data"
            );
        }
    }
}

/// Creates `path` for a private key: a new file, readable only by its owner.
#[cfg(unix)]
pub(crate) fn create_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
pub(crate) fn create_private(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Loads a signing key file, plain or encrypted (asking for its
/// passphrase, see [`crate::passphrase`]).
pub(crate) fn load_key(path: &Path) -> Result<SecretKey> {
    let pem = Zeroizing::new(
        fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))?,
    );
    warn_if_shared(path, "key");
    let passphrase = if SecretKey::pem_is_encrypted(&pem) {
        Some(crate::passphrase::existing(&format!(
            "key {}",
            path.display()
        ))?)
    } else {
        None
    };
    SecretKey::from_pkcs8_pem_with_passphrase(&pem, passphrase.as_ref().map(|p| p.as_bytes()))
        .with_context(|| format!("loading key {}", path.display()))
}

fn read_input(path: &Path) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        Ok(text)
    } else {
        fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}

fn read_pem(path: Option<&Path>) -> Result<Option<Vec<u8>>> {
    path.map(|path| fs::read(path).with_context(|| format!("reading {}", path.display())))
        .transpose()
}

/// Connects with the global options. `origin_fallback` is used when neither
/// `--origin` nor `--vkey` names the ledger.
pub(crate) async fn connect(global: &Global, origin_fallback: Option<&str>) -> Result<Client> {
    let origin = global.origin.clone().or_else(|| {
        global
            .vkey
            .is_none()
            .then(|| origin_fallback.map(str::to_owned))
            .flatten()
    });
    if origin.is_none() && global.vkey.is_none() {
        bail!(
            "the ledger's origin is needed to sign and verify: pass --origin ORIGIN or --vkey VKEY (or set AIDLEDGER_ORIGIN or AIDLEDGER_VKEY)"
        );
    }
    let mut options = ConnectOptions::new(origin.unwrap_or_default());
    options.vkey = global.vkey.clone();
    let any_tls = global.ca.is_some()
        || global.cert.is_some()
        || global.tls_key.is_some()
        || global.tls_domain.is_some();
    if any_tls {
        options.tls = Some(TlsOptions {
            ca_pem: read_pem(global.ca.as_deref())?,
            client_cert_pem: read_pem(global.cert.as_deref())?,
            client_key_pem: read_pem(global.tls_key.as_deref())?,
            domain: global.tls_domain.clone(),
        });
    }
    Client::connect_any(&global.ledger, options)
        .await
        .with_context(|| format!("connecting to the ledger at {}", global.ledger.join(", ")))
}

/// The current time at whole seconds, for events that do not say when.
pub(crate) fn now() -> Timestamp {
    let now = Timestamp::from(SystemTime::now());
    Timestamp {
        seconds: now.seconds,
        nanos: 0,
    }
}

pub(crate) fn new_event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn entry_key(selector: &EntrySelector) -> EntryKey {
    match (&selector.seq, &selector.event_id) {
        (Some(seq), _) => EntryKey::Seq(*seq),
        (None, Some(id)) => EntryKey::EventId(id.clone()),
        (None, None) => unreachable!("clap requires --seq or --event-id"),
    }
}

async fn genesis(global: &Global, args: &GenesisArgs) -> Result<()> {
    let key = load_key(&args.key)?;
    let log = LogVerifier::from_vkey(&args.log_vkey).context("--log-vkey")?;
    let client = connect(global, Some(log.origin())).await?;
    if client.origin() != log.origin() {
        bail!(
            "--log-vkey is a key of {:?}, but this ledger's origin is {:?}",
            log.origin(),
            client.origin()
        );
    }
    let event = pb::Event {
        event_id: new_event_id(),
        org_id: args.authority_org_id.clone(),
        occurred_at: Some(now()),
        body: Some(pb::event::Body::Genesis(pb::Genesis {
            origin: client.origin().to_owned(),
            authority_org_id: args.authority_org_id.clone(),
            authority_name: args.authority_name.clone(),
            authority_public_key: key.public_key().to_vec().into(),
            log_vkey: args.log_vkey.clone(),
        })),
    };
    aidledger_ledger::decode::event_from_pb(event.clone())
        .map_err(|rejection| anyhow::anyhow!("the genesis event is malformed: {rejection}"))?;
    let signed = client.sign(&key, &event);
    match client.append(signed, false).await {
        Ok(appended) => {
            println!(
                "genesis appended at seq {}{} (event {})",
                appended.seq,
                if appended.duplicate {
                    ", duplicate"
                } else {
                    ""
                },
                event.event_id
            );
            Ok(())
        }
        Err(ClientError::Rejected(rejected)) => {
            println!("genesis refused: {rejected}");
            Err(Refused {
                refused: 1,
                total: 1,
            }
            .into())
        }
        Err(error) => Err(error).context("appending the genesis event"),
    }
}

/// Counts of a submission, for the summary.
#[derive(Debug, Default)]
struct Tally {
    appended: usize,
    duplicates: usize,
    refused: usize,
}

impl Tally {
    fn total(&self) -> usize {
        self.appended + self.duplicates + self.refused
    }

    fn count(&mut self, result: &Result<Appended, Rejected>) {
        match result {
            Ok(appended) if appended.duplicate => self.duplicates += 1,
            Ok(_) => self.appended += 1,
            Err(_) => self.refused += 1,
        }
    }

    fn summary(&self, what: &str) -> String {
        format!(
            "{} {what}: {} appended, {} duplicates (already in the ledger), {} refused",
            self.total(),
            self.appended,
            self.duplicates,
            self.refused
        )
    }

    fn into_result(self) -> Result<()> {
        if self.refused > 0 {
            return Err(Refused {
                refused: self.refused,
                total: self.total(),
            }
            .into());
        }
        Ok(())
    }
}

/// Inputs at least this long get a progress bar (on a terminal).
const PROGRESS_EVENTS_MIN: usize = 20;

/// Result lines on stdout, a progress bar on stderr, without tearing.
struct Output {
    bar: ProgressBar,
}

impl Output {
    fn new(len: usize) -> Self {
        let bar = if len >= PROGRESS_EVENTS_MIN {
            let bar = ProgressBar::new(len as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} events, {per_sec}, eta {eta}")
            {
                bar.set_style(style);
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        Output { bar }
    }

    /// One result line on stdout.
    fn line(&self, text: &str) -> io::Result<()> {
        self.bar.suspend(|| writeln!(io::stdout().lock(), "{text}"))
    }

    /// One note on stderr.
    fn note(&self, text: &str) {
        self.bar.suspend(|| eprintln!("{text}"));
    }

    fn done(&self, count: usize) {
        self.bar.inc(count as u64);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn describe_appended(appended: &Appended) -> String {
    let mut text = format!("seq {}", appended.seq);
    if appended.duplicate {
        text.push_str(" (duplicate: already in the ledger)");
    }
    if let Some(inclusion) = &appended.inclusion {
        text.push_str(&format!(
            ", proven in checkpoint of size {}",
            inclusion.checkpoint.checkpoint.size
        ));
    }
    text
}

async fn submit(global: &Global, args: &SubmitArgs) -> Result<()> {
    let key = load_key(&args.key)?;
    let text = read_input(&args.input)?;
    let defaults = EventDefaults {
        org_id: args.org.clone(),
        now: now(),
        ref_key: args.ref_key.as_deref().map(load_ref_key).transpose()?,
    };
    let (events, errors) = read_event_file(&text, &defaults, new_event_id);
    if !errors.is_empty() {
        for error in &errors {
            eprintln!("{error}");
        }
        bail!(
            "{} event(s) in {} are malformed; nothing was submitted",
            errors.len(),
            args.input.display()
        );
    }
    if events.is_empty() {
        bail!("{} holds no events", args.input.display());
    }
    for located in &events {
        warn_personal_text(&located.location, &located.event);
    }
    let client = connect(global, None).await?;
    let signed: Vec<pb::SignedEvent> = events
        .iter()
        .map(|located| client.sign(&key, &located.event))
        .collect();
    let out = Output::new(events.len());
    let mut tally = Tally::default();
    let report = |tally: &mut Tally, location: &str, event: &pb::Event, result| -> Result<()> {
        tally.count(&result);
        match result {
            Ok(appended) => out.line(&format!(
                "{location}: {} event {}",
                describe_appended(&appended),
                event.event_id
            ))?,
            Err(rejected) => out.line(&format!(
                "{location}: refused: {rejected} (event {})",
                event.event_id
            ))?,
        }
        Ok(())
    };
    let stopped = |tally: &Tally| {
        format!(
            "stopped after {} of {} events (rerunning is safe: identical events are duplicates)",
            tally.total(),
            events.len()
        )
    };
    match args.batch {
        Some(batch) => {
            let batch = usize::try_from(batch).expect("clap bounds --batch");
            for (located, signed) in events.chunks(batch).zip(signed.chunks(batch)) {
                let results = client
                    .append_batch(signed.to_vec())
                    .await
                    .with_context(|| stopped(&tally))?;
                for (located, result) in located.iter().zip(results) {
                    report(&mut tally, &located.location, &located.event, result)?;
                }
                out.done(located.len());
            }
        }
        None => {
            for (located, signed) in events.iter().zip(signed) {
                let result = match client.append(signed, args.wait_checkpoint).await {
                    Ok(appended) => Ok(appended),
                    Err(ClientError::Rejected(rejected)) => Err(rejected),
                    Err(error) => {
                        return Err(error).with_context(|| {
                            format!(
                                "{}: event {}; {}",
                                located.location,
                                located.event.event_id,
                                stopped(&tally)
                            )
                        });
                    }
                };
                report(&mut tally, &located.location, &located.event, result)?;
                out.done(1);
            }
        }
    }
    out.finish();
    eprintln!("{}", tally.summary("events"));
    tally.into_result()
}

fn print_json(value: &Out, pretty: bool) -> Result<()> {
    let mut out = io::stdout().lock();
    if pretty {
        serde_json::to_writer_pretty(&mut out, value)?;
    } else {
        serde_json::to_writer(&mut out, value)?;
    }
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

async fn get(global: &Global, args: &GetArgs) -> Result<()> {
    let client = connect(global, None).await?;
    let key = entry_key(&args.entry);
    match client.get_entry(key.clone()).await? {
        Some(entry) => print_json(&entry_to_json(&entry), true),
        None => bail!("the ledger has no {key}"),
    }
}

async fn tail(global: &Global, args: &TailArgs) -> Result<()> {
    let client = connect(global, None).await?;
    let mut entries = client
        .subscribe(args.from)
        .await
        .with_context(|| format!("subscribing from entry {}", args.from))?;
    loop {
        let next_seq = entries.next_seq();
        let Some(entry) = entries.next().await else {
            eprintln!("aidctl: the ledger closed the stream before entry {next_seq}");
            return Ok(());
        };
        let entry = entry.with_context(|| format!("following the log at entry {next_seq}"))?;
        print_json(&entry_to_json(&entry), false)?;
    }
}

fn hash_line(hash: &[u8]) -> String {
    format!("{} (hex {})", BASE64.encode(hash), hex::encode(hash))
}

async fn checkpoint(global: &Global) -> Result<()> {
    let client = connect(global, None).await?;
    let signed = client.checkpoint().await?;
    let checkpoint = &signed.checkpoint;
    let mut out = io::stdout().lock();
    writeln!(out, "origin:    {}", checkpoint.origin)?;
    writeln!(out, "size:      {}", checkpoint.size)?;
    writeln!(out, "root:      {}", hash_line(&checkpoint.root.0))?;
    if signed.signature_verified {
        writeln!(out, "signature: verified with the pinned ledger key")?;
    } else {
        writeln!(
            out,
            "signature: NOT verified (no --vkey): this is the server's word"
        )?;
    }
    writeln!(out, "note:")?;
    write!(out, "{}", signed.note)?;
    Ok(())
}

async fn prove(global: &Global, args: &ProveArgs) -> Result<()> {
    if global.vkey.is_none() {
        bail!("prove verifies against the ledger's key: pass --vkey VKEY (or set AIDLEDGER_VKEY)");
    }
    let client = connect(global, None).await?;
    let key = entry_key(&args.entry);
    let proven = match client.prove(key.clone()).await {
        Ok(proven) => proven,
        Err(error @ ClientError::Verification { .. }) => {
            println!("result: FAILED: {error}");
            return Err(error).with_context(|| format!("proving {key}"));
        }
        Err(error) => return Err(error).with_context(|| format!("proving {key}")),
    };
    let entry = &proven.entry;
    let checkpoint = &proven.inclusion.checkpoint.checkpoint;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "1. entry {} (event {}): {} bytes, leaf hash {} = SHA-256(0x00 || entry)",
        entry.seq,
        entry.event.event_id,
        entry.bytes.len(),
        hex::encode(entry.leaf_hash)
    )?;
    writeln!(
        out,
        "2. event signature by {} verified for origin {}",
        hex::encode(&entry.signed_event.public_key),
        client.origin()
    )?;
    writeln!(
        out,
        "3. checkpoint {} size {} root {}: signature verified with the pinned key",
        checkpoint.origin,
        checkpoint.size,
        hash_line(&checkpoint.root.0)
    )?;
    writeln!(
        out,
        "4. inclusion proof, {} hashes (RFC 9162 2.1.3.2), from leaf {} of {}:",
        proven.inclusion.proof.len(),
        entry.seq,
        checkpoint.size
    )?;
    for (level, hash) in proven.inclusion.proof.iter().enumerate() {
        writeln!(out, "   {level:>2}. {}", hex::encode(hash))?;
    }
    writeln!(
        out,
        "result: VERIFIED: entry {} is in the ledger's tree of size {}",
        entry.seq, checkpoint.size
    )?;
    Ok(())
}

async fn import_statement(global: &Global, args: &ImportStatementArgs) -> Result<()> {
    let text = read_input(&args.input)?;
    let statement = parse_statement(&text)
        .with_context(|| format!("reading statement {}", args.input.display()))?;
    if !statement.errors.is_empty() {
        for error in &statement.errors {
            eprintln!("{error}");
        }
        bail!(
            "{} line(s) of {} cannot be read; nothing was submitted",
            statement.errors.len(),
            args.input.display()
        );
    }
    let earmark = match (&args.earmark_commune, &args.earmark_category) {
        (None, None) => None,
        (commune, category) => Some(pb::Earmark {
            commune_code: commune.clone().unwrap_or_default(),
            category: match category {
                Some(name) => parse_category(name)
                    .map_err(|error| anyhow::anyhow!("--earmark-category: {error}"))?,
                None => 0,
            },
        }),
    };
    let params = ReceiptParams {
        org_id: args.org.clone(),
        donor_org_id: args.donor_org.clone(),
        asset_id: args.asset.clone(),
        earmark,
        ref_key: load_ref_key(&args.ref_key)?,
    };
    let events: Vec<(u64, pb::Event)> = statement
        .lines
        .iter()
        .map(|line| (line.line, receipt_event(&params, line)))
        .collect();
    // The ledger's field rules, locally: a bad --org or --asset is caught
    // before anything is signed.
    if let Some((line, rejection)) = events.iter().find_map(|(line, event)| {
        aidledger_ledger::decode::event_from_pb(event.clone())
            .err()
            .map(|rejection| (line, rejection))
    }) {
        bail!("line {line}: {rejection}; nothing was submitted");
    }
    if args.dry_run {
        for skipped in &statement.skipped {
            eprintln!("line {}: skipped: {}", skipped.line, skipped.why);
        }
        for (line, event) in &events {
            let value = Out::Object(vec![
                ("line".to_owned(), Out::U64(*line)),
                ("event".to_owned(), event_to_json(event)),
            ]);
            print_json(&value, false)?;
        }
        eprintln!(
            "dry run: {} receipts would be submitted, {} lines skipped",
            events.len(),
            statement.skipped.len()
        );
        return Ok(());
    }
    if events.is_empty() {
        eprintln!("no credit lines to import");
        return Ok(());
    }
    let key = load_key(&args.key)?;
    let client = connect(global, None).await?;
    let out = Output::new(events.len());
    let mut tally = Tally::default();
    let batch = usize::try_from(args.batch).expect("clap bounds --batch");
    for chunk in events.chunks(batch) {
        let signed: Vec<pb::SignedEvent> = chunk
            .iter()
            .map(|(_, event)| client.sign(&key, event))
            .collect();
        let results = client.append_batch(signed).await.with_context(|| {
            format!(
                "stopped after {} of {} receipts (rerunning is safe: imported lines are duplicates)",
                tally.total(),
                events.len()
            )
        })?;
        for ((line, event), result) in chunk.iter().zip(results) {
            let result = match result {
                Err(rejected) if is_event_id_taken(&rejected) => {
                    already_imported(&client, event, rejected).await?
                }
                other => other,
            };
            tally.count(&result);
            let receipt = match &event.body {
                Some(pb::event::Body::Receipt(receipt)) => receipt,
                _ => unreachable!("receipt_event builds receipts"),
            };
            let text = match result {
                Ok(appended) if appended.duplicate => {
                    format!("line {line}: already imported (seq {})", appended.seq)
                }
                Ok(appended) => format!(
                    "line {line}: seq {}, receipt {}, {} {}",
                    appended.seq, receipt.receipt_id, receipt.quantity, receipt.asset_id
                ),
                Err(rejected) => format!("line {line}: refused: {rejected}"),
            };
            out.line(&text)?;
        }
        out.done(chunk.len());
    }
    out.finish();
    for skipped in &statement.skipped {
        out.note(&format!("line {}: skipped: {}", skipped.line, skipped.why));
    }
    eprintln!(
        "{}; {} lines skipped",
        tally.summary("receipts"),
        statement.skipped.len()
    );
    tally.into_result()
}

/// SPEC §6: "A different submission with an `event_id` already in the
/// ledger is refused with `ALREADY_EXISTS`."
fn is_event_id_taken(rejected: &Rejected) -> bool {
    rejected.code == Code::AlreadyExists && rejected.reason == "EVENT_ID_EXISTS"
}

/// A line whose event id is taken: imported before, signed with another key
/// (same event bytes, another signature), or a genuine conflict.
async fn already_imported(
    client: &Client,
    event: &pb::Event,
    rejected: Rejected,
) -> Result<Result<Appended, Rejected>> {
    let key = EntryKey::EventId(event.event_id.clone());
    let existing = client
        .get_entry(key.clone())
        .await
        .with_context(|| format!("fetching {key}"))?;
    Ok(match existing {
        Some(entry) if entry.signed_event.event == event.encode_to_vec() => Ok(Appended {
            seq: entry.seq,
            leaf_hash: entry.leaf_hash,
            duplicate: true,
            inclusion: None,
        }),
        // Same event id, other bytes: the line was imported before with other
        // options (event ids derive from the organisation and reference only).
        Some(_) => Err(Rejected {
            message: format!(
                "{} (this line was imported before with another --donor-org, --asset or earmark)",
                rejected.message
            ),
            ..rejected
        }),
        None => Err(rejected),
    })
}

/// The exit code of a failed run: 3 when the ledger refused events, 4 when
/// something the ledger said did not verify, 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.downcast_ref::<Refused>().is_some() {
            return 3;
        }
        if cause.downcast_ref::<crate::audit::AuditFailed>().is_some() {
            return 4;
        }
        match cause.downcast_ref::<ClientError>() {
            Some(ClientError::Rejected(_)) => return 3,
            Some(ClientError::Verification { .. }) => return 4,
            _ => {}
        }
    }
    1
}

/// Whether the run stopped because stdout was closed (`aidctl tail | head`):
/// not a failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|json| json.io_error_kind())
                == Some(io::ErrorKind::BrokenPipe)
    })
}
