//! k of n known witnesses (C2SP tlog-cosignature): a checkpoint is trusted
//! only if at least k of the witnesses the auditor knows cosigned it, so a
//! ledger would have to fool k independent parties to show a split view.

use aidledger_tlog::{CheckpointError, Cosignature, WitnessVerifier};

use crate::failure::{Failure, reason};

/// The witnesses an auditor knows, and how many must have cosigned.
#[derive(Clone, Debug)]
pub struct WitnessQuorum {
    witnesses: Vec<WitnessVerifier>,
    required: usize,
}

impl WitnessQuorum {
    /// `required` of the witnesses whose vkeys are given.
    ///
    /// # Errors
    ///
    /// A malformed vkey, the same witness twice, or `required` 0 or more
    /// than the number of witnesses.
    pub fn new(vkeys: &[String], required: usize) -> Result<Self, String> {
        let witnesses = vkeys
            .iter()
            .map(|vkey| {
                WitnessVerifier::from_vkey(vkey).map_err(|e| format!("witness vkey {vkey:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut ids: Vec<String> = witnesses.iter().map(WitnessVerifier::id).collect();
        ids.sort();
        ids.dedup();
        if ids.len() != witnesses.len() {
            return Err("the same witness is given twice".into());
        }
        if required == 0 || required > witnesses.len() {
            return Err(format!(
                "a quorum of {required} out of {} witnesses is not possible",
                witnesses.len()
            ));
        }
        Ok(WitnessQuorum {
            witnesses,
            required,
        })
    }

    /// How many cosignatures are required.
    pub fn required(&self) -> usize {
        self.required
    }

    /// The valid cosignatures of known witnesses on `note`, if there are
    /// enough.
    ///
    /// # Errors
    ///
    /// [`reason::WITNESS_QUORUM`], naming each witness's answer.
    pub fn check(&self, note: &str) -> Result<Vec<Cosignature>, Failure> {
        let mut valid = Vec::new();
        let mut missing = Vec::new();
        for witness in &self.witnesses {
            match witness.verify(note) {
                Ok(cosignature) => valid.push(cosignature),
                Err(CheckpointError::MissingSignature { key }) => {
                    missing.push(format!("{key}: no cosignature"));
                }
                Err(error) => missing.push(error.to_string()),
            }
        }
        if valid.len() < self.required {
            return Err(Failure::of(
                reason::WITNESS_QUORUM,
                format!(
                    "{} of {} known witnesses cosigned, {} required ({})",
                    valid.len(),
                    self.witnesses.len(),
                    self.required,
                    missing.join("; ")
                ),
            ));
        }
        Ok(valid)
    }
}
