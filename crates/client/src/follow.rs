//! Low-level reads for followers that check the log themselves (the
//! projector): the raw entry stream and raw consistency proofs.

use aidledger_wire::pb;
use tonic::Streaming;

use crate::Client;
use crate::error::ClientError;

impl Client {
    /// The ledger's `Subscribe` stream from `from_seq`, unchecked.
    ///
    /// For a follower that checks the chain itself from a head it persisted
    /// (with [`aidledger_ledger::ChainChecker::resume`]) and binds what it
    /// read to signed checkpoints, so that verifying every event signature,
    /// as [`Client::subscribe`] does, would be work without use.
    ///
    /// # Errors
    ///
    /// Transport or server errors.
    pub async fn subscribe_raw(&self, from_seq: u64) -> Result<Streaming<pb::Entry>, ClientError> {
        let request = pb::SubscribeRequest { from_seq };
        self.call(
            "Subscribe",
            request,
            None,
            |mut ledger, request| async move { ledger.subscribe(request).await },
        )
        .await
        .map_err(ClientError::from_status)
    }

    /// The ledger's consistency proof between two tree sizes (RFC 9162
    /// 2.1.4), unverified: the caller holds the roots to check it against.
    ///
    /// # Errors
    ///
    /// [`ClientError::Verification`] when a proof hash is not 32 bytes; a
    /// refusal (a size beyond the log), transport or server errors.
    pub async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<[u8; 32]>, ClientError> {
        let request = pb::ConsistencyProofRequest { old_size, new_size };
        let proof = self
            .call(
                "GetConsistencyProof",
                request,
                Some(self.timeout),
                |mut ledger, request| async move { ledger.get_consistency_proof(request).await },
            )
            .await
            .map_err(ClientError::from_status)?;
        proof
            .hashes
            .iter()
            .map(|hash| {
                <[u8; 32]>::try_from(&hash[..]).map_err(|_| {
                    ClientError::verification(format!(
                        "a consistency proof hash is {} bytes, not 32",
                        hash.len()
                    ))
                })
            })
            .collect()
    }
}
