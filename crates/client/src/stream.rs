//! A subscription: the ledger's entry stream, checked entry by entry.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use aidledger_ledger::ChainChecker;
use aidledger_wire::pb;
use tokio_stream::Stream;
use tonic::Streaming;

use crate::error::ClientError;
use crate::verify::{VerifiedEntry, link_entry};

/// The entries of a subscription, each checked as SPEC §4 asks of a reader:
/// the next seq, `prev_hash` equal to the previous leaf hash, recorded time
/// not decreasing, the leaf hash, and the event signature.
///
/// The chain is anchored at the entry before the first one (fetched and
/// leaf-hash-checked when the subscription starts after 0; the zero hash for
/// entry 0). That anchor is the ledger's word; to tie the stream to a signed
/// tree, prove any entry of it with [`crate::Client::prove`].
///
/// After the first error the stream ends. To resume after a transport error,
/// subscribe again from [`EntryStream::next_seq`].
pub struct EntryStream {
    inner: Streaming<pb::Entry>,
    checker: ChainChecker,
    origin: String,
    ended: bool,
}

impl EntryStream {
    pub(crate) fn new(inner: Streaming<pb::Entry>, checker: ChainChecker, origin: String) -> Self {
        EntryStream {
            inner,
            checker,
            origin,
            ended: false,
        }
    }

    /// The seq the next entry must have: where to resubscribe from.
    pub fn next_seq(&self) -> u64 {
        self.checker.next_seq()
    }

    /// The leaf hash of the last entry checked (or of the anchor).
    pub fn head(&self) -> [u8; 32] {
        self.checker.head()
    }
}

impl fmt::Debug for EntryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryStream")
            .field("origin", &self.origin)
            .field("next_seq", &self.checker.next_seq())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Stream for EntryStream {
    type Item = Result<VerifiedEntry, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let result = match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
            None => {
                this.ended = true;
                return Poll::Ready(None);
            }
            Some(Err(status)) => Err(ClientError::from_status(status)),
            Some(Ok(served)) => link_entry(&this.origin, &mut this.checker, served),
        };
        if result.is_err() {
            this.ended = true;
        }
        Poll::Ready(Some(result))
    }
}
