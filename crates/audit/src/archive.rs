//! The portable archive of a log: its entries and the signed checkpoints
//! (with their witness cosignatures) that cover them, in one file that
//! verifies itself against the pinned ledger key, with no network.
//!
//! # Format (`aidledger-archive/v1`)
//!
//! ```text
//! archive = magic record*
//! magic   = "aidledger-archive/v1\n"                      (21 bytes)
//! record  = tag (1 byte) || length (u32, big-endian) || payload (length bytes)
//!   tag 'E' (0x45): payload = one LedgerEntry, its bytes exactly as served
//!                   (SPEC §4), at most 65,535 bytes; entries in seq order
//!                   from seq 0
//!   tag 'C' (0x43): payload = a signed checkpoint note (SPEC §5, UTF-8, at
//!                   most 64 KiB), with any cosignature lines; its tree size
//!                   is the number of 'E' records before it
//! ```
//!
//! A complete archive ends with a 'C' record, so every entry in it is
//! committed to by a signed root. Nothing in the file is trusted: the reader
//! replays every entry (SPEC §4 and §7), recomputes the tree, and checks
//! each checkpoint's signature against the vkey the auditor pins and its
//! root against the entries before it. An archive can be extended in place
//! (the monitor does): append 'E' records then a 'C' record; a crash
//! mid-append leaves a tail after the last 'C' that the reader reports (or,
//! for the monitor's own state, cuts off).

use std::io::{self, Read, Write};
use std::sync::mpsc;

use aidledger_ledger::ENTRY_BYTES_MAX;
use aidledger_tlog::Checkpoint;

use crate::auditor::{AUDIT_BATCH_ENTRIES_MAX, LogAuditor};
use crate::failure::{Failure, reason};
use crate::quorum::WitnessQuorum;

/// The first bytes of every archive.
pub const ARCHIVE_MAGIC: &[u8; 21] = b"aidledger-archive/v1\n";

/// Longest checkpoint note in an archive: a note with many cosignatures is
/// a few KiB.
pub const ARCHIVE_NOTE_BYTES_MAX: usize = 64 * 1024;

const TAG_ENTRY: u8 = b'E';
const TAG_CHECKPOINT: u8 = b'C';

/// Writes an archive.
#[derive(Debug)]
pub struct ArchiveWriter<W: Write> {
    out: W,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts a new archive: writes the magic.
    ///
    /// # Errors
    ///
    /// The writer's.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(ARCHIVE_MAGIC)?;
        Ok(ArchiveWriter { out })
    }

    /// Continues an archive whose magic is already written (appending).
    pub fn append_to(out: W) -> Self {
        ArchiveWriter { out }
    }

    /// Writes one entry.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an entry over 65,535 bytes; the writer's.
    pub fn entry(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() > ENTRY_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("an entry of {} bytes is over the limit", bytes.len()),
            ));
        }
        self.record(TAG_ENTRY, bytes)
    }

    /// Writes a checkpoint note covering every entry written before it.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a note over [`ARCHIVE_NOTE_BYTES_MAX`]; the writer's.
    pub fn checkpoint(&mut self, note: &str) -> io::Result<()> {
        if note.len() > ARCHIVE_NOTE_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a note of {} bytes is over the limit", note.len()),
            ));
        }
        self.record(TAG_CHECKPOINT, note.as_bytes())
    }

    fn record(&mut self, tag: u8, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len()).expect("payloads are bounded far below 4 GiB");
        self.out.write_all(&[tag])?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(payload)
    }

    /// The underlying writer (to flush and sync it).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

/// What a verified archive holds.
#[derive(Debug)]
pub struct VerifiedArchive {
    /// The auditor after the last covered entry, ready to continue.
    pub auditor: LogAuditor,
    /// The last checkpoint, verified.
    pub checkpoint: Checkpoint,
    /// Its note, with cosignatures.
    pub note: String,
    /// Bytes of the archive up to and including the last 'C' record.
    pub verified_len: u64,
    /// Bytes after it: a tail no checkpoint covers (0 for a complete
    /// archive).
    pub uncovered_len: u64,
}

/// How to treat bytes after the last checkpoint record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// They are a failure: a complete archive ends with a checkpoint.
    Refuse,
    /// They are reported in [`VerifiedArchive::uncovered_len`] and not
    /// checked: the monitor's own state after a crash mid-append.
    Ignore,
}

/// Reads and verifies a whole archive against the pinned `vkey`; the last
/// checkpoint must satisfy `quorum` when one is given. `progress` is told
/// the number of entries read so far, now and then.
///
/// # Errors
///
/// The first failure: an entry (with its seq), a checkpoint, the quorum,
/// or the file ([`reason::ARCHIVE_MALFORMED`]).
pub fn verify_archive(
    input: impl Read,
    vkey: &str,
    quorum: Option<&WitnessQuorum>,
    tail: Tail,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifiedArchive, Failure> {
    let auditor = LogAuditor::new(vkey)
        .map_err(|e| Failure::of(reason::CHECKPOINT_INVALID, e.to_string()))?;
    // The auditor works on its own thread while this one reads the next
    // batch, so reading never leaves the cores idle. Two batches in flight
    // bound the memory.
    let (work, received) = mpsc::sync_channel::<Work>(2);
    let (read, audited) = std::thread::scope(|scope| {
        let auditor = scope.spawn(move || audit_records(auditor, received));
        let read = read_records(input, tail, &work, progress);
        drop(work);
        let audited = auditor
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, audited)
    });
    // An entry that fails is named before a malformed byte after it.
    let (auditor, last) = audited?;
    let read = read?;
    let Some((checkpoint, note, verified_len)) = last else {
        return Err(Failure::of(
            reason::ARCHIVE_MALFORMED,
            "the archive has no checkpoint: nothing in it is signed",
        ));
    };
    let uncovered_len = read.end - verified_len + u64::from(read.cut_short);
    if uncovered_len > 0 && tail == Tail::Refuse {
        return Err(Failure::of(
            reason::ARCHIVE_MALFORMED,
            format!(
                "{} entries after the last checkpoint (size {}) are not covered by any",
                read.entries - checkpoint.size,
                checkpoint.size
            ),
        ));
    }
    if let Some(quorum) = quorum {
        quorum.check(&note)?;
    }
    Ok(VerifiedArchive {
        auditor,
        checkpoint,
        note,
        verified_len,
        uncovered_len,
    })
}

/// What the reader hands the auditor, in file order.
enum Work {
    Entries(Vec<Vec<u8>>),
    /// A checkpoint note and the offset just after its record.
    Checkpoint(Vec<u8>, u64),
}

/// How far the reader got.
struct ReadSoFar {
    /// Offset after the last whole record.
    end: u64,
    /// Entries read.
    entries: u64,
    /// A record was cut short at `end` (only with [`Tail::Ignore`]).
    cut_short: bool,
}

type Audited = (LogAuditor, Option<(Checkpoint, String, u64)>);

fn audit_records(
    mut auditor: LogAuditor,
    received: mpsc::Receiver<Work>,
) -> Result<Audited, Failure> {
    let mut last = None;
    for work in received {
        match work {
            Work::Entries(batch) => auditor.push(batch)?,
            Work::Checkpoint(note, end) => {
                let note = String::from_utf8(note).map_err(|_| {
                    Failure::of(
                        reason::ARCHIVE_MALFORMED,
                        format!("the note ending at byte {end} is not UTF-8"),
                    )
                })?;
                let checkpoint = auditor.check_checkpoint(&note)?;
                last = Some((checkpoint, note, end));
            }
        }
    }
    Ok((auditor, last))
}

fn read_records(
    input: impl Read,
    tail: Tail,
    work: &mpsc::SyncSender<Work>,
    progress: &mut dyn FnMut(u64),
) -> Result<ReadSoFar, Failure> {
    let malformed = |detail: String| Failure::of(reason::ARCHIVE_MALFORMED, detail);
    let mut input = io::BufReader::with_capacity(1 << 20, input);
    let mut magic = [0u8; ARCHIVE_MAGIC.len()];
    input
        .read_exact(&mut magic)
        .map_err(|e| malformed(format!("reading the magic: {e}")))?;
    if &magic != ARCHIVE_MAGIC {
        return Err(malformed("not an aidledger-archive/v1 file".into()));
    }
    let mut read = ReadSoFar {
        end: ARCHIVE_MAGIC.len() as u64,
        entries: 0,
        cut_short: false,
    };
    let mut batch = Vec::with_capacity(AUDIT_BATCH_ENTRIES_MAX);
    // A closed channel means the auditor stopped at a failure, which it
    // reports; reading further is pointless.
    let send = |item: Work| work.send(item).is_ok();
    loop {
        let (tag, payload) = match read_record(&mut input) {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(_) if tail == Tail::Ignore => {
                // A record cut short by a crash: the tail is not covered.
                read.cut_short = true;
                break;
            }
            Err(error) => return Err(malformed(format!("at byte {}: {error}", read.end))),
        };
        let end = read.end + 5 + payload.len() as u64;
        match tag {
            TAG_ENTRY => {
                batch.push(payload);
                read.entries += 1;
                if batch.len() == AUDIT_BATCH_ENTRIES_MAX {
                    if !send(Work::Entries(std::mem::take(&mut batch))) {
                        return Ok(read);
                    }
                    progress(read.entries);
                }
            }
            TAG_CHECKPOINT => {
                if !batch.is_empty() && !send(Work::Entries(std::mem::take(&mut batch))) {
                    return Ok(read);
                }
                if !send(Work::Checkpoint(payload, end)) {
                    return Ok(read);
                }
                progress(read.entries);
            }
            other => {
                return Err(malformed(format!(
                    "at byte {}: unknown record tag 0x{other:02x}",
                    read.end
                )));
            }
        }
        read.end = end;
    }
    // Entries after the last checkpoint are not audited: nothing vouches
    // for them.
    Ok(read)
}

/// One record, or `None` at a clean end of file.
fn read_record(input: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 5];
    let mut read = 0;
    while read < header.len() {
        match input.read(&mut header[read..]) {
            Ok(0) if read == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a record header is cut short",
                ));
            }
            Ok(n) => read += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    let tag = header[0];
    let len = u32::from_be_bytes(header[1..].try_into().expect("4 bytes")) as usize;
    let limit = match tag {
        TAG_ENTRY => ENTRY_BYTES_MAX,
        _ => ARCHIVE_NOTE_BYTES_MAX,
    };
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a record of {len} bytes is over the limit of {limit}"),
        ));
    }
    let mut payload = vec![0u8; len];
    input.read_exact(&mut payload)?;
    Ok(Some((tag, payload)))
}
