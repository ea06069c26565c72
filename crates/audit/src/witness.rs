//! The witness (C2SP tlog-cosignature, Ed25519, type 0x04): cosigns a
//! checkpoint only if it is consistent with the last one this witness
//! cosigned, and persists that checkpoint before the cosignature leaves, so
//! that even after a crash it never cosigns two inconsistent views.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use aidledger_tlog::{Checkpoint, Hash, LogVerifier, WitnessSigner};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::auditor::verify_note;
use crate::consistency::check_extends;
use crate::failure::Failure;

/// Writes `bytes` to `path` so that after a crash the file holds either the
/// old or the new bytes, whole: write a temporary file beside it, fsync it,
/// rename it over `path`, fsync the directory (so the rename itself is
/// durable).
///
/// # Errors
///
/// Any I/O error, with the path.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let context = |what: &str, error: io::Error| {
        io::Error::new(error.kind(), format!("{what} {}: {error}", path.display()))
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let temporary = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut file =
        fs::File::create(&temporary).map_err(|e| context("creating a temporary for", e))?;
    file.write_all(bytes)
        .map_err(|e| context("writing a temporary for", e))?;
    file.sync_all()
        .map_err(|e| context("syncing a temporary for", e))?;
    drop(file);
    fs::rename(&temporary, path).map_err(|e| context("renaming a temporary onto", e))?;
    // The rename is durable only once the directory entry is.
    fs::File::open(&dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| context("syncing the directory of", e))?;
    Ok(())
}

/// What a witness remembers: the last checkpoint it cosigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessState {
    /// The log's origin.
    pub origin: String,
    /// Its tree size.
    pub size: u64,
    /// Its root, base64.
    pub root: String,
    /// The checkpoint's note as the log signed it.
    pub note: String,
}

impl WitnessState {
    fn checkpoint(&self) -> Result<Checkpoint, String> {
        let root = BASE64
            .decode(&self.root)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or("the root is not the base64 of 32 bytes")?;
        Ok(Checkpoint {
            origin: self.origin.clone(),
            size: self.size,
            root: Hash(root),
        })
    }
}

/// Why a witness did not cosign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The checkpoint is not one to cosign: its signature, or its
    /// consistency with the last one cosigned (`FORK`, `ROLLBACK`,
    /// `INCONSISTENT`).
    #[error("refusing to cosign: {0}")]
    Refused(Failure),
    /// The state file could not be read or written.
    #[error("witness state {path}: {detail}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// A witness of one log, with its state file.
#[derive(Debug)]
pub struct Witness {
    signer: WitnessSigner,
    log: LogVerifier,
    path: PathBuf,
    last: Option<Checkpoint>,
}

impl Witness {
    /// Opens the witness whose state lives at `path` (absent: it has
    /// cosigned nothing yet).
    ///
    /// # Errors
    ///
    /// [`WitnessError::State`] for an unreadable state, or a state of
    /// another log.
    pub fn open(
        path: &Path,
        signer: WitnessSigner,
        log: LogVerifier,
    ) -> Result<Self, WitnessError> {
        let state_error = |detail: String| WitnessError::State {
            path: path.to_path_buf(),
            detail,
        };
        let last = match fs::read(path) {
            Ok(bytes) => {
                let state: WitnessState = serde_json::from_slice(&bytes)
                    .map_err(|e| state_error(format!("not a witness state: {e}")))?;
                if state.origin != log.origin() {
                    return Err(state_error(format!(
                        "it is the state of log {:?}, not {:?}",
                        state.origin,
                        log.origin()
                    )));
                }
                Some(state.checkpoint().map_err(state_error)?)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(state_error(error.to_string())),
        };
        Ok(Witness {
            signer,
            log,
            path: path.to_path_buf(),
            last,
        })
    }

    /// The last checkpoint cosigned.
    pub fn last(&self) -> Option<&Checkpoint> {
        self.last.as_ref()
    }

    /// Cosigns `note` at `timestamp` (POSIX seconds) if it is signed by the
    /// log and `proof` proves it consistent with the last checkpoint
    /// cosigned (an empty proof when there is none, or the size is the
    /// same). Returns the cosignature line to append to the note.
    ///
    /// The new state is durable before the line is returned.
    ///
    /// # Errors
    ///
    /// [`WitnessError::Refused`] or [`WitnessError::State`]; either way the
    /// state is unchanged.
    pub fn cosign(
        &mut self,
        note: &str,
        proof: &[Hash],
        timestamp: u64,
    ) -> Result<String, WitnessError> {
        let checkpoint = verify_note(&self.log, note).map_err(WitnessError::Refused)?;
        if let Some(last) = &self.last {
            check_extends(last, &checkpoint, proof).map_err(WitnessError::Refused)?;
        }
        if self.last.as_ref() != Some(&checkpoint) {
            // SPEC: c2sp.org/tlog-witness: the witness must never cosign two
            // inconsistent checkpoints, so the new one is recorded first.
            let state = WitnessState {
                origin: checkpoint.origin.clone(),
                size: checkpoint.size,
                root: BASE64.encode(checkpoint.root.0),
                note: note.to_owned(),
            };
            let bytes = serde_json::to_vec_pretty(&state).expect("a state serializes");
            write_atomically(&self.path, &bytes).map_err(|error| WitnessError::State {
                path: self.path.clone(),
                detail: error.to_string(),
            })?;
            self.last = Some(checkpoint.clone());
        }
        Ok(self.signer.cosign(&checkpoint, timestamp))
    }
}

impl WitnessError {
    /// The failure behind a refusal.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            WitnessError::Refused(failure) => Some(failure),
            WitnessError::State { .. } => None,
        }
    }
}
