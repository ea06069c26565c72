//! The command line: global connection options and one subcommand per task.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The aidledger command line, for agencies and operators.
#[derive(Debug, Parser)]
#[command(name = "aidctl", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach and trust the ledger.
#[derive(Debug, Args)]
pub struct Global {
    /// The ledger's gRPC endpoint, http:// or https://. A writer and its
    /// standbys: repeat the option or separate the URLs with commas; reads
    /// go to whichever answers, and submissions follow the writer.
    #[arg(
        long,
        global = true,
        env = "AIDLEDGER_URL",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub ledger: Vec<String>,
    /// The ledger's origin (SPEC §2), bound into every event signature.
    /// Optional when --vkey is given.
    #[arg(long, global = true, env = "AIDLEDGER_ORIGIN", value_name = "ORIGIN")]
    pub origin: Option<String>,
    /// The ledger's checkpoint verifier key (C2SP vkey): checkpoints and
    /// proofs are then verified locally against it.
    #[arg(long, global = true, env = "AIDLEDGER_VKEY", value_name = "VKEY")]
    pub vkey: Option<String>,
    /// CA certificate (PEM) of the ledger's TLS certificate; needed for https://.
    #[arg(long, global = true, env = "AIDLEDGER_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), for a ledger that requires mutual TLS.
    #[arg(long, global = true, env = "AIDLEDGER_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM). Named --tls-key because
    /// --key is the signing key of the commands that sign.
    #[arg(long, global = true, env = "AIDLEDGER_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The name expected in the server certificate, if not the URL's host.
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_domain: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an Ed25519 signing key (PKCS#8 PEM, mode 0600; --encrypt for a
    /// passphrase).
    Keygen(KeygenArgs),
    /// Print the public key of a signing key file (the passphrase of an
    /// encrypted one is asked for): what the authority registers.
    Pubkey(PubkeyArgs),
    /// Serve the agency desk: forms in a browser, in Vietnamese and
    /// English, signed with the agency's key in this process.
    Desk(DeskArgs),
    /// Build, sign and submit the Genesis event (entry 0).
    Genesis(GenesisArgs),
    /// Sign and submit events written as JSON or JSON lines.
    Submit(SubmitArgs),
    /// Print one entry as JSON.
    Get(GetArgs),
    /// Follow the log, printing entries as JSON lines, chain-checked.
    Tail(TailArgs),
    /// Print the latest checkpoint (verified with --vkey).
    Checkpoint,
    /// Prove an entry's inclusion in the latest checkpoint, verified locally.
    Prove(ProveArgs),
    /// Import a bank statement export (CSV) as Receipt events.
    ImportStatement(ImportStatementArgs),
    /// Register a donor who asked not to be named (SPEC 7.5): a random org
    /// id and a salted commitment in the log, and an acknowledgement with
    /// the name and salt for the donor.
    RegisterDonor(RegisterDonorArgs),
    /// Verify the ledger without trusting it: replay, proofs, monitor,
    /// witness, archives (needs --vkey).
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the whole log (SPEC §4: chain, signatures, keys, rules, root)
    /// from the ledger or an archive; exit 4 naming the first failing seq.
    Verify(VerifyArgs),
    /// Verify the log from the ledger and write it as a portable archive.
    Export(ExportArgs),
    /// Verify an archive offline and install it as a monitor's state.
    Import(ImportArgs),
    /// Prove an event's inclusion and print an offline-verifiable bundle.
    Prove(AuditProveArgs),
    /// Verify a proof bundle offline.
    VerifyBundle(VerifyBundleArgs),
    /// Check a hidden donor's acknowledgement against the log: the
    /// registration is in the signed tree and commits to that name.
    VerifyDonor(VerifyDonorArgs),
    /// Follow the ledger from a trusted state; alarm on any inconsistency.
    Monitor(MonitorArgs),
    /// Cosign checkpoints consistent with the last one cosigned (C2SP
    /// tlog-cosignature) and send the cosignatures to the ledger.
    Witness(WitnessArgs),
}

/// Which witnesses must have cosigned.
#[derive(Debug, Args)]
pub struct Quorum {
    /// Vkey of a known witness (C2SP, signature type 0x04); repeat for each.
    #[arg(long, value_name = "VKEY")]
    pub witness: Vec<String>,
    /// How many of the known witnesses must have cosigned (default: all).
    #[arg(long, value_name = "K")]
    pub quorum: Option<usize>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify this archive instead of the ledger (no network).
    #[arg(long, value_name = "FILE")]
    pub archive: Option<PathBuf>,
    /// Verify from the log's public C2SP tlog-tiles at this base URL
    /// (http://host:port, as the feed or a CDN serves them) instead of gRPC.
    #[arg(long, value_name = "URL", conflicts_with_all = ["archive", "tree_size"])]
    pub tiles: Option<String>,
    /// Verify the log up to the checkpoint of this size (default: the
    /// latest, or the latest with the quorum's cosignatures).
    #[arg(long, value_name = "N", conflicts_with = "archive")]
    pub tree_size: Option<u64>,
    #[command(flatten)]
    pub quorum: Quorum,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The archive to write; written only once verified.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Export up to the checkpoint of this size (default: the latest).
    #[arg(long, value_name = "N")]
    pub tree_size: Option<u64>,
    #[command(flatten)]
    pub quorum: Quorum,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The archive.
    #[arg(value_name = "FILE")]
    pub archive: PathBuf,
    /// The monitor's state directory (must not hold a state yet).
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    #[command(flatten)]
    pub quorum: Quorum,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct AuditProveArgs {
    /// The event with this id.
    #[arg(long, value_name = "ID")]
    pub event_id: Option<String>,
    /// The receipt with this receipt id.
    #[arg(long, value_name = "ID")]
    pub receipt_id: Option<String>,
    /// The receipt of this bank (or delivery-note) reference; only its keyed
    /// hash (SPEC 7.5) is compared, the reference never leaves this machine.
    #[arg(long, value_name = "REFERENCE", requires = "ref_key")]
    pub bank_ref: Option<String>,
    /// The ledger's reference key (K_ref, from `aidctl keygen --ref-key`),
    /// to hash --bank-ref.
    #[arg(long, env = "AIDLEDGER_REF_KEY", value_name = "FILE")]
    pub ref_key: Option<PathBuf>,
    #[command(flatten)]
    pub quorum: Quorum,
    /// Write the bundle here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyBundleArgs {
    /// The bundle (JSON) `audit prove` wrote.
    #[arg(value_name = "FILE")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub quorum: Quorum,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Directory of the monitor's trusted state (a verified archive).
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Poll the ledger this often.
    #[arg(long, value_name = "MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub interval_ms: u64,
    /// Check once and stop.
    #[arg(long)]
    pub once: bool,
    /// POST each alarm as JSON to this http:// URL.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    #[command(flatten)]
    pub quorum: Quorum,
}

#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// The witness's signing key (PKCS#8 PEM, from `aidctl keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The witness's name (a schema-less URL), its key name.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The witness's state file: the last checkpoint it cosigned.
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// Poll the ledger this often.
    #[arg(long, value_name = "MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub interval_ms: u64,
    /// Cosign once and stop.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key; never overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also print the C2SP verifier key of this key as a ledger key for this
    /// origin.
    #[arg(long, value_name = "ORIGIN")]
    pub name: Option<String>,
    /// Write the ledger's reference key instead (SPEC 7.5 K_ref: 32 random
    /// bytes as 64 hex characters), shared by the operator, the
    /// organisations that record receipts and the feeds that offer look-ups.
    #[arg(long, conflicts_with = "name")]
    pub ref_key: bool,
    /// Encrypt the key with a passphrase (PKCS#8 PBES2: PBKDF2-HMAC-SHA256
    /// and AES-256-CBC, which OpenSSL reads), asked twice on the terminal
    /// or taken from AIDLEDGER_KEY_PASSPHRASE. Every command that signs
    /// then asks for it the same way.
    #[arg(long, conflicts_with = "ref_key")]
    pub encrypt: bool,
}

#[derive(Debug, Args)]
pub struct DeskArgs {
    /// The agency's signing key (PKCS#8 PEM, plain or encrypted: the
    /// passphrase is asked for once, at start).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The agency the desk records for.
    #[arg(long, value_name = "ORG")]
    pub org: String,
    /// Where the desk answers. A loopback address keeps it to this
    /// computer; anything else exposes the agency's key to whoever reaches it.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    pub listen: std::net::SocketAddr,
    /// Another name the desk answers to (e.g. the computer's name on the
    /// office network, with --listen 0.0.0.0:8090); repeatable. Requests
    /// naming any other host are refused (DNS rebinding).
    #[arg(long, value_name = "NAME")]
    pub host: Vec<String>,
    /// A projector's gRPC endpoint, for the pick lists.
    #[arg(
        long,
        env = "AIDLEDGER_PROJECTIONS",
        value_name = "URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub projections: String,
    /// The public feed's base URL, for links and QR codes to what was recorded.
    #[arg(long, env = "AIDLEDGER_FEED", value_name = "URL")]
    pub feed: Option<String>,
    /// The ledger's reference key (K_ref), to record bank references
    /// as keyed hashes (SPEC 7.5).
    #[arg(long, env = "AIDLEDGER_REF_KEY", value_name = "FILE")]
    pub ref_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PubkeyArgs {
    /// The signing key (PKCS#8 PEM, plain or encrypted).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

/// The kinds of donor that may be hidden (SPEC 7.5: donor kinds only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DonorKind {
    Individual,
    Business,
    Organization,
}

#[derive(Debug, Args)]
pub struct RegisterDonorArgs {
    /// The registering organisation's signing key (PKCS#8 PEM; a key with
    /// RECEIVE or AUTHORITY).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The registering organisation (the agency that received the gift).
    #[arg(long, value_name = "ORG")]
    pub org: String,
    /// The donor's name as they gave it; it never leaves this machine except
    /// in the acknowledgement file.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    #[arg(long, value_enum, default_value_t = DonorKind::Individual)]
    pub kind: DonorKind,
    /// The public feed's address (e.g. https://minhbach.example.vn), for the
    /// link and QR code to the donor's page.
    #[arg(long, env = "AIDLEDGER_FEED_URL", value_name = "URL")]
    pub feed_url: String,
    /// Where to write the donor's acknowledgement (mode 0600; never
    /// overwritten). It holds the name and the salt: hand it to the donor.
    #[arg(long, value_name = "FILE")]
    pub ack_out: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyDonorArgs {
    /// The acknowledgement file `aidctl register-donor` wrote.
    #[arg(value_name = "FILE")]
    pub ack: PathBuf,
}

#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// The authority's first key (PKCS#8 PEM); it signs the Genesis and is
    /// registered by it.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    #[arg(long, value_name = "ID")]
    pub authority_org_id: String,
    #[arg(long, value_name = "NAME")]
    pub authority_name: String,
    /// The ledger's checkpoint verifier key; its origin is the ledger's.
    #[arg(long, value_name = "VKEY")]
    pub log_vkey: String,
}

/// Limit on events per AppendBatch request: keeps one request far below
/// gRPC's default 4 MiB message limit (entries are at most 64 KiB).
pub const BATCH_EVENTS_MAX: usize = 50;

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The signing key (PKCS#8 PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The acting organisation of events that do not name one.
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// Send N events per AppendBatch request instead of one Append each.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=BATCH_EVENTS_MAX as u64))]
    pub batch: Option<u64>,
    /// Wait until a checkpoint covers each event and verify its inclusion
    /// proof (single appends only).
    #[arg(long, conflicts_with = "batch")]
    pub wait_checkpoint: bool,
    /// The ledger's reference key (K_ref, from `aidctl keygen --ref-key`),
    /// to hash a receipt's `external_ref` (SPEC 7.5); needed only for those.
    #[arg(long, env = "AIDLEDGER_REF_KEY", value_name = "FILE")]
    pub ref_key: Option<PathBuf>,
    /// A JSON file (one event or an array), a JSON lines file, or - for
    /// standard input.
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
}

/// Which entry.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct EntrySelector {
    /// By position.
    #[arg(long, value_name = "N")]
    pub seq: Option<u64>,
    /// By the event id of the event it carries.
    #[arg(long, value_name = "ID")]
    pub event_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub entry: EntrySelector,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The first entry to print.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub from: u64,
}

#[derive(Debug, Args)]
pub struct ProveArgs {
    #[command(flatten)]
    pub entry: EntrySelector,
}

#[derive(Debug, Args)]
pub struct ImportStatementArgs {
    /// The signing key (PKCS#8 PEM) of the receiving organisation.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The receiving organisation (the importer).
    #[arg(long, value_name = "ORG")]
    pub org: String,
    /// The donor every line of this statement came from.
    #[arg(long, value_name = "ORG_ID")]
    pub donor_org: String,
    /// The asset the amounts are in.
    #[arg(long, value_name = "ASSET", default_value = "VND")]
    pub asset: String,
    /// Earmark every receipt for this commune.
    #[arg(long, value_name = "CODE")]
    pub earmark_commune: Option<String>,
    /// Earmark every receipt for this category (e.g. NUTRITION).
    #[arg(long, value_name = "CATEGORY")]
    pub earmark_category: Option<String>,
    /// Events per AppendBatch request.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=BATCH_EVENTS_MAX as u64))]
    pub batch: u64,
    /// The ledger's reference key (K_ref, from `aidctl keygen --ref-key`):
    /// each reference enters the ledger only as its keyed hash (SPEC 7.5).
    #[arg(long, env = "AIDLEDGER_REF_KEY", value_name = "FILE")]
    pub ref_key: PathBuf,
    /// Print the events that would be submitted, as JSON lines, and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// The statement (CSV with a header row: date, amount, reference, ...),
    /// or - for standard input.
    #[arg(value_name = "FILE.csv")]
    pub input: PathBuf,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "aidctl",
            "get",
            "--seq",
            "3",
            "--ledger",
            "http://ledger:1",
            "--origin",
            "aid.example/log",
        ])
        .unwrap();
        assert_eq!(cli.global.ledger, ["http://ledger:1"]);
        let Command::Get(get) = cli.command else {
            panic!("get")
        };
        assert_eq!(get.entry.seq, Some(3));
    }

    #[test]
    fn several_ledgers_are_given_by_commas_or_by_repeating() {
        let commas = ["aidctl", "checkpoint", "--ledger", "http://a:1,http://b:2"];
        let repeated = [
            "aidctl",
            "checkpoint",
            "--ledger",
            "http://a:1",
            "--ledger",
            "http://b:2",
        ];
        for args in [&commas[..], &repeated[..]] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.global.ledger, ["http://a:1", "http://b:2"]);
        }
    }

    #[test]
    fn an_entry_is_selected_exactly_once() {
        assert!(Cli::try_parse_from(["aidctl", "get"]).is_err());
        assert!(Cli::try_parse_from(["aidctl", "get", "--seq", "1", "--event-id", "x"]).is_err());
    }

    #[test]
    fn batches_are_bounded() {
        let args = ["aidctl", "submit", "--key", "k", "--batch", "0", "e.json"];
        assert!(Cli::try_parse_from(args).is_err());
        let args = ["aidctl", "submit", "--key", "k", "--batch", "51", "e.json"];
        assert!(Cli::try_parse_from(args).is_err());
    }
}
