//! Ledger entries (SPEC §4): encoding an entry once at append, and checking
//! a stream of entries link by link as every reader does.

use aidledger_tlog::leaf_hash;
use aidledger_wire::{Message, Timestamp as PbTimestamp, pb};
use bytes::Bytes;

use crate::event::Timestamp;

/// SPEC §4: an entry is at most 65,535 bytes, the C2SP entry-bundle limit.
pub const ENTRY_BYTES_MAX: usize = 65_535;

/// SPEC §4: `prev_hash` of entry 0.
pub const GENESIS_PREV_HASH: [u8; 32] = [0; 32];

/// Encodes a `LedgerEntry`. Done once, by the ledger, when it appends; the
/// bytes are then stored and served verbatim (protobuf encoding is not
/// canonical, so nobody re-encodes).
pub fn encode_entry(
    seq: u64,
    prev_hash: &[u8; 32],
    recorded_at: Timestamp,
    signed_event: &pb::SignedEvent,
) -> Vec<u8> {
    pb::LedgerEntry {
        seq,
        prev_hash: Bytes::copy_from_slice(prev_hash),
        recorded_at: Some(PbTimestamp {
            seconds: recorded_at.seconds,
            nanos: i32::try_from(recorded_at.nanos).expect("nanos below 10^9"),
        }),
        signed_event: Some(signed_event.clone()),
    }
    .encode_to_vec()
}

/// A decoded entry whose link to its predecessor has been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedEntry {
    /// Its position.
    pub seq: u64,
    /// Its leaf hash, `SHA-256(0x00 || entry bytes)`.
    pub leaf_hash: [u8; 32],
    /// When the ledger recorded it.
    pub recorded_at: Timestamp,
    /// The submission it carries.
    pub signed_event: pb::SignedEvent,
}

/// An entry of an already verified log as a reader of its contents sees
/// it: where it is, when it was recorded, and the event it carries, decoded
/// by the rules the ledger applied when it accepted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Its position.
    pub seq: u64,
    /// When the ledger recorded it.
    pub recorded_at: Timestamp,
    /// The event it carries.
    pub event: crate::event::Event,
}

/// Why stored entry bytes could not be read as a [`LoggedEvent`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("reading a stored entry: {0}")]
pub struct EntryReadError(String);

/// Reads an entry of a log whose chain was already checked (a replica's
/// copy, the ledger's store), for what it says rather than how it links:
/// no chain check here, that was [`ChainChecker`]'s job.
///
/// # Errors
///
/// The bytes are not an entry, or carry no well-formed event.
pub fn read_logged_event(bytes: &[u8]) -> Result<LoggedEvent, EntryReadError> {
    let entry = pb::LedgerEntry::decode(bytes).map_err(|e| EntryReadError(e.to_string()))?;
    let recorded_at = entry
        .recorded_at
        .map(|t| Timestamp {
            seconds: t.seconds,
            nanos: u32::try_from(t.nanos).unwrap_or(0),
        })
        .ok_or_else(|| EntryReadError(format!("entry {}: recorded_at is missing", entry.seq)))?;
    let signed = entry
        .signed_event
        .ok_or_else(|| EntryReadError(format!("entry {}: signed_event is missing", entry.seq)))?;
    let event = crate::decode::decode_event(signed.event)
        .map_err(|e| EntryReadError(format!("entry {}: {e}", entry.seq)))?;
    Ok(LoggedEvent {
        seq: entry.seq,
        recorded_at,
        event,
    })
}

/// Why an entry does not continue the chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The bytes are not a `LedgerEntry`.
    #[error("entry {seq}: undecodable: {detail}")]
    Undecodable {
        /// The seq the entry was expected to have.
        seq: u64,
        /// The decoder's message.
        detail: String,
    },
    /// A missing or wrongly sized field.
    #[error("entry {seq}: malformed: {detail}")]
    Malformed {
        /// The seq the entry was expected to have.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
    /// The `seq` field is not the next number.
    #[error("entry {expected}: has seq {found}")]
    WrongSeq {
        /// The seq expected.
        expected: u64,
        /// The seq in the entry.
        found: u64,
    },
    /// `prev_hash` is not the leaf hash of the previous entry.
    #[error("entry {seq}: prev_hash does not match the leaf hash of entry {}", seq.saturating_sub(1))]
    BrokenLink {
        /// The entry whose prev_hash is wrong.
        seq: u64,
    },
    /// `recorded_at` went back in time.
    #[error("entry {seq}: recorded_at goes back in time")]
    TimeWentBack {
        /// The entry.
        seq: u64,
    },
    /// The entry is over [`ENTRY_BYTES_MAX`].
    #[error("entry {seq}: {len} bytes, over the limit of {ENTRY_BYTES_MAX}")]
    TooLarge {
        /// The entry.
        seq: u64,
        /// Its size.
        len: usize,
    },
}

impl ChainError {
    /// The seq of the first entry that is wrong.
    pub fn seq(&self) -> u64 {
        match self {
            ChainError::Undecodable { seq, .. }
            | ChainError::Malformed { seq, .. }
            | ChainError::BrokenLink { seq }
            | ChainError::TimeWentBack { seq }
            | ChainError::TooLarge { seq, .. } => *seq,
            ChainError::WrongSeq { expected, .. } => *expected,
        }
    }
}

/// Checks a stream of entries, one at a time, as SPEC §4 asks of every
/// reader: seq continuity, the hash chain and non-decreasing recorded time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainChecker {
    next_seq: u64,
    prev_hash: [u8; 32],
    last_recorded_at: Timestamp,
}

impl Default for ChainChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainChecker {
    /// A checker expecting entry 0.
    pub fn new() -> Self {
        ChainChecker {
            next_seq: 0,
            prev_hash: GENESIS_PREV_HASH,
            last_recorded_at: Timestamp::default(),
        }
    }

    /// A checker that resumes after an entry already checked.
    pub fn resume(next_seq: u64, prev_hash: [u8; 32], last_recorded_at: Timestamp) -> Self {
        ChainChecker {
            next_seq,
            prev_hash,
            last_recorded_at,
        }
    }

    /// The seq the next entry must have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The leaf hash of the last entry checked (zeros before entry 0).
    pub fn head(&self) -> [u8; 32] {
        self.prev_hash
    }

    /// The recorded time of the last entry checked.
    pub fn last_recorded_at(&self) -> Timestamp {
        self.last_recorded_at
    }

    /// Checks the next entry and advances past it. Takes the bytes whole
    /// (a `Vec` or shared [`Bytes`], neither copied) because the entry's
    /// byte fields share them.
    pub fn check(&mut self, bytes: impl Into<Bytes>) -> Result<LinkedEntry, ChainError> {
        self.link(ParsedEntry::parse(self.next_seq, bytes.into())?)
    }

    /// Checks that an entry parsed apart from the chain (see
    /// [`ParsedEntry::parse`]) is the next one, and advances past it.
    pub fn link(&mut self, parsed: ParsedEntry) -> Result<LinkedEntry, ChainError> {
        let seq = self.next_seq;
        if parsed.seq != seq {
            return Err(ChainError::WrongSeq {
                expected: seq,
                found: parsed.seq,
            });
        }
        // In the order a single pass over the entry finds them.
        if parsed.prev_hash[..] != self.prev_hash[..] {
            return Err(ChainError::BrokenLink { seq });
        }
        let recorded_at = parsed.recorded_at?;
        if recorded_at < self.last_recorded_at {
            return Err(ChainError::TimeWentBack { seq });
        }
        let Some(signed_event) = parsed.signed_event else {
            return Err(ChainError::Malformed {
                seq,
                detail: "signed_event is missing".into(),
            });
        };
        self.next_seq = seq.checked_add(1).expect("seq below 2^64");
        self.prev_hash = parsed.leaf_hash;
        self.last_recorded_at = recorded_at;
        Ok(LinkedEntry {
            seq,
            leaf_hash: parsed.leaf_hash,
            recorded_at,
            signed_event,
        })
    }
}

/// An entry decoded and hashed on its own, before its link to the one
/// before it is checked: the costly part of reading the chain (hashing and
/// decoding), which readers can run on many entries at once and then link
/// in order with [`ChainChecker::link`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedEntry {
    seq: u64,
    prev_hash: Bytes,
    /// What is wrong with it is reported by [`ChainChecker::link`], after
    /// the link, as a single pass would.
    recorded_at: Result<Timestamp, ChainError>,
    leaf_hash: [u8; 32],
    signed_event: Option<pb::SignedEvent>,
}

impl ParsedEntry {
    /// Decodes the entry expected at `seq` (which names it in errors) and
    /// computes its leaf hash. Its byte fields (the event, its key and
    /// signature) share `bytes` rather than copying them.
    pub fn parse(seq: u64, bytes: Bytes) -> Result<ParsedEntry, ChainError> {
        if bytes.len() > ENTRY_BYTES_MAX {
            return Err(ChainError::TooLarge {
                seq,
                len: bytes.len(),
            });
        }
        let leaf_hash = leaf_hash(&bytes).0;
        let entry = pb::LedgerEntry::decode(bytes).map_err(|e| ChainError::Undecodable {
            seq,
            detail: e.to_string(),
        })?;
        if entry.seq != seq {
            return Err(ChainError::WrongSeq {
                expected: seq,
                found: entry.seq,
            });
        }
        let recorded_at = match entry.recorded_at {
            Some(ts) => match u32::try_from(ts.nanos) {
                Ok(nanos) if nanos < 1_000_000_000 => Ok(Timestamp {
                    seconds: ts.seconds,
                    nanos,
                }),
                _ => Err(ChainError::Malformed {
                    seq,
                    detail: format!("recorded_at has nanos {}", ts.nanos),
                }),
            },
            None => Err(ChainError::Malformed {
                seq,
                detail: "recorded_at is missing".into(),
            }),
        };
        Ok(ParsedEntry {
            seq,
            prev_hash: entry.prev_hash,
            recorded_at,
            leaf_hash,
            signed_event: entry.signed_event,
        })
    }

    /// The event bytes the entry carries (empty when it carries none), to
    /// decode alongside: shared, not copied.
    pub fn event_bytes(&self) -> Bytes {
        self.signed_event
            .as_ref()
            .map_or_else(Bytes::new, |s| s.event.clone())
    }
}
