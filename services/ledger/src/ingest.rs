//! The ingest pipeline: many request handlers, one writer.
//!
//! Handlers verify signatures on all cores (rayon) before they queue a job,
//! so verification of the next requests overlaps the commit of the current
//! batch. The writer thread owns the [`Sequencer`]: it takes every job
//! waiting in the queue (up to `batch_events_max` events), appends them in
//! one durable transaction (group commit: appends that arrive together share
//! one fsync), and only then answers each job. It also signs checkpoints,
//! at most once per `checkpoint_interval` while entries arrive, and at once
//! for a batch in which someone waits for one.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aidledger_ledger::{CheckedEvent, Rejection, Timestamp};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};

use crate::sequencer::{LedgerError, Outcome, Sequencer, SignedCheckpoint};

/// Limits and timing of the pipeline.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// Jobs waiting for the writer before handlers are pushed back.
    pub queue_jobs_max: usize,
    /// Events in one group commit.
    pub batch_events_max: usize,
    /// SPEC §5: a checkpoint at least this often while entries arrive.
    pub checkpoint_interval: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            queue_jobs_max: 4_096,
            batch_events_max: 4_096,
            // SPEC §5 asks for one at least every second. A quarter of that
            // keeps append-to-checkpoint under a second even when appends
            // queue for a few hundred milliseconds under load, for the cost
            // of four small fsyncs a second.
            checkpoint_interval: Duration::from_millis(250),
        }
    }
}

/// The ledger clock. Rules never read it; the writer passes its reading in.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            nanos: now.subsec_nanos(),
        }
    })
}

/// What the writer answers for one job.
#[derive(Debug)]
pub struct JobResult {
    /// One result per submitted event, in order.
    pub outcomes: Vec<Result<Outcome, Rejection>>,
    /// The checkpoint signed after this job, when it asked for one.
    pub checkpoint: Option<Arc<SignedCheckpoint>>,
}

/// Why a job was not carried out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The ledger stopped: shutting down, or after a storage failure.
    #[error("the ledger is not accepting appends: {0}")]
    Stopped(String),
}

struct Job {
    events: Vec<Result<CheckedEvent, Rejection>>,
    wants_checkpoint: bool,
    reply: oneshot::Sender<Result<JobResult, IngestError>>,
}

/// The handle request handlers use.
#[derive(Clone, Debug)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
    committed: watch::Receiver<u64>,
    checkpoint: watch::Receiver<Option<Arc<SignedCheckpoint>>>,
}

/// The writer thread; joining it waits until every queued job is answered.
#[derive(Debug)]
pub struct Writer {
    thread: JoinHandle<()>,
}

impl Writer {
    /// Waits for the writer to finish its last batch.
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("the ledger writer thread panicked");
        }
    }
}

impl Ingest {
    /// Starts the writer thread. It stops when every [`Ingest`] handle is
    /// dropped, after answering the jobs already queued.
    pub fn start(
        mut sequencer: Sequencer,
        config: IngestConfig,
        clock: Clock,
        runtime: Handle,
    ) -> (Ingest, Writer) {
        // The first checkpoint covers what the store holds at start, so
        // readers always have one (a tree of size 0 is a valid checkpoint).
        let initial = match sequencer.sign_checkpoint() {
            Ok(signed) => Some(Arc::new(signed.clone())),
            Err(error) => {
                tracing::error!(%error, "signing the start-up checkpoint");
                None
            }
        };
        let (jobs_tx, jobs_rx) = mpsc::channel(config.queue_jobs_max);
        let (committed_tx, committed_rx) = watch::channel(sequencer.size());
        let (checkpoint_tx, checkpoint_rx) = watch::channel(initial);
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                let mut writer = WriterLoop {
                    sequencer,
                    config,
                    clock,
                    jobs: jobs_rx,
                    committed: committed_tx,
                    checkpoint: checkpoint_tx,
                    last_checkpoint_at: Instant::now(),
                    carried: None,
                };
                writer.run(&runtime);
            })
            .expect("spawning the writer thread");
        (
            Ingest {
                jobs: jobs_tx,
                committed: committed_rx,
                checkpoint: checkpoint_rx,
            },
            Writer { thread },
        )
    }

    /// Queues verified events and waits until they are durable (or refused).
    pub async fn append(
        &self,
        events: Vec<Result<CheckedEvent, Rejection>>,
        wants_checkpoint: bool,
    ) -> Result<JobResult, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                events,
                wants_checkpoint,
                reply,
            })
            .await
            .map_err(|_| IngestError::Stopped("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| IngestError::Stopped("the writer stopped before answering".into()))?
    }

    /// Entries durable so far; changes after each commit.
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> Option<Arc<SignedCheckpoint>> {
        self.checkpoint.borrow().clone()
    }

    /// What readers follow: the committed size and latest checkpoint.
    pub fn head(&self) -> crate::service::Head {
        crate::service::Head {
            committed: self.committed.clone(),
            checkpoint: self.checkpoint.clone(),
        }
    }
}

struct WriterLoop {
    sequencer: Sequencer,
    config: IngestConfig,
    clock: Clock,
    jobs: mpsc::Receiver<Job>,
    committed: watch::Sender<u64>,
    checkpoint: watch::Sender<Option<Arc<SignedCheckpoint>>>,
    last_checkpoint_at: Instant,
    /// A job taken from the queue that did not fit in the last group.
    carried: Option<Job>,
}

impl WriterLoop {
    fn run(&mut self, runtime: &Handle) {
        let mut stopped: Option<String> = None;
        loop {
            let wait = self
                .config
                .checkpoint_interval
                .saturating_sub(self.last_checkpoint_at.elapsed())
                .max(Duration::from_millis(1));
            let mut batch = match self.carried.take() {
                Some(job) => vec![job],
                None => {
                    let first = runtime
                        .block_on(async { tokio::time::timeout(wait, self.jobs.recv()).await });
                    match first {
                        Ok(Some(job)) => vec![job],
                        // Every handle dropped: shut down after the last commit.
                        Ok(None) => break,
                        Err(_elapsed) => Vec::new(),
                    }
                }
            };
            let mut events: usize = batch.iter().map(|job| job.events.len()).sum();
            while events < self.config.batch_events_max {
                match self.jobs.try_recv() {
                    // A job that would overfill the group waits for the next.
                    Ok(job) if events + job.events.len() > self.config.batch_events_max => {
                        self.carried = Some(job);
                        break;
                    }
                    Ok(job) => {
                        events += job.events.len();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            if let Some(reason) = &stopped {
                for job in batch {
                    let _ = job.reply.send(Err(IngestError::Stopped(reason.clone())));
                }
                continue;
            }
            if !batch.is_empty()
                && let Err(error) = self.commit(batch)
            {
                tracing::error!(error = %error, "storage failed; the ledger stops accepting appends until restarted");
                stopped = Some(format!("{error}; restart the ledger"));
                continue;
            }
            if self.last_checkpoint_at.elapsed() >= self.config.checkpoint_interval
                && let Err(error) = self.sign_checkpoint()
            {
                tracing::error!(error = %error, "signing a checkpoint failed; the ledger stops accepting appends until restarted");
                stopped = Some(format!("{error}; restart the ledger"));
            }
        }
        if stopped.is_none()
            && let Err(error) = self.sign_checkpoint()
        {
            tracing::error!(error = %error, "signing the final checkpoint");
        }
    }

    fn commit(&mut self, batch: Vec<Job>) -> Result<(), LedgerError> {
        let mut events = Vec::new();
        let mut shapes = Vec::with_capacity(batch.len());
        let mut wants_checkpoint = false;
        for job in batch {
            shapes.push((job.events.len(), job.wants_checkpoint, job.reply));
            wants_checkpoint |= job.wants_checkpoint;
            events.extend(job.events);
        }
        let started = Instant::now();
        let outcomes = match self.sequencer.append_checked(events, (self.clock)()) {
            Ok(outcomes) => outcomes,
            Err(error) => {
                for (_, _, reply) in shapes {
                    let _ = reply.send(Err(IngestError::Stopped(error.to_string())));
                }
                return Err(error);
            }
        };
        self.committed.send_replace(self.sequencer.size());
        crate::metrics::group_committed(&outcomes, started.elapsed(), self.sequencer.size());
        let checkpoint = if wants_checkpoint {
            self.sign_checkpoint()?;
            self.checkpoint.borrow().clone()
        } else {
            None
        };
        let mut outcomes = outcomes.into_iter();
        for (count, wanted, reply) in shapes {
            let job_outcomes: Vec<_> = outcomes.by_ref().take(count).collect();
            let _ = reply.send(Ok(JobResult {
                outcomes: job_outcomes,
                checkpoint: if wanted { checkpoint.clone() } else { None },
            }));
        }
        Ok(())
    }

    fn sign_checkpoint(&mut self) -> Result<(), LedgerError> {
        let covered = self
            .checkpoint
            .borrow()
            .as_ref()
            .is_some_and(|c| c.checkpoint.size == self.sequencer.size());
        self.last_checkpoint_at = Instant::now();
        if covered {
            return Ok(());
        }
        let signed = self.sequencer.sign_checkpoint()?.clone();
        crate::metrics::checkpoint_signed(
            signed.checkpoint.size,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        self.checkpoint.send_replace(Some(Arc::new(signed)));
        Ok(())
    }
}
