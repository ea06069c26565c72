//! A real crash: this test re-executes its own test binary as a child writer
//! that appends to a `RedbStore` and prints "acked <size>" after each append
//! returns; the parent SIGKILLs it after a seeded random delay, reopens the
//! file, and checks that every acknowledged entry is there, byte-identical,
//! with its event id and hashes, and that no batch is partly there. Several
//! rounds, each child continuing the previous one's log. A second test does
//! the same with unsynced appends, each followed by an unsynced checkpoint
//! of the log it ends, acknowledged at each `sync`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use super::{SplitMix64, assert_log_is, batch};
use crate::{LogStore, RedbStore};

/// Set (to the database path) in the child's environment: act as the writer.
const CHILD_DB_ENV: &str = "AIDLEDGER_STORE_CRASH_CHILD_DB";
/// The child syncs after this many unsynced appends, and acknowledges then.
const SYNC_EVERY_BATCHES: usize = 5;
/// Set to replay a failing run's seed.
const SEED_ENV: &str = "AIDLEDGER_STORE_CRASH_SEED";
const ROUNDS: usize = 5;
/// The kill lands this long after the child's first ack, at most.
const KILL_DELAY_MS_MAX: u64 = 60;
/// The child's first ack must come within this (it includes redb's repair of
/// the file the previous child was killed writing).
const FIRST_ACK_WAIT_MAX: Duration = Duration::from_secs(15);
/// Largest batch the child appends.
const CHILD_BATCH_LEN_MAX: u64 = 16;
/// The child stops by itself after this many entries or this long, so an
/// orphaned child cannot run forever if the parent dies.
const CHILD_ENTRIES_MAX: u64 = 500_000;
const CHILD_RUN_MAX: Duration = Duration::from_secs(30);
/// SIGKILL, the signal `Child::kill` sends on Unix.
const SIGKILL: i32 = 9;

/// The length of the batch the child appends at `size`: a function of the
/// size, so the parent knows where every batch boundary is.
fn child_batch_len(size: u64) -> u64 {
    1 + (size.wrapping_mul(7) + 3) % CHILD_BATCH_LEN_MAX
}

/// Whether `size` is a batch boundary, and the next boundary after it.
fn next_boundary(size: u64) -> Option<u64> {
    let mut boundary = 0;
    while boundary < size {
        boundary += child_batch_len(boundary);
    }
    (boundary == size).then(|| size + child_batch_len(size))
}

/// The boundary `batches` batches after the boundary `size`.
fn boundary_after(size: u64, batches: usize) -> u64 {
    (0..batches).fold(size, |at, _| at + child_batch_len(at))
}

/// How the child writes, and so what an acknowledgement promises.
#[derive(Clone, Copy, Debug)]
enum Writes {
    /// Each batch appended durably, acknowledged as `append` returns.
    Durable,
    /// Batches appended unsynced, acknowledged after every
    /// [`SYNC_EVERY_BATCHES`]th, once `sync` returns.
    Unsynced,
}

impl Writes {
    fn test_name(self) -> String {
        let module = module_path!();
        let module = module
            .split_once("::")
            .map_or(module, |(_crate_name, rest)| rest);
        match self {
            Writes::Durable => format!("{module}::acked_appends_survive_sigkill"),
            Writes::Unsynced => format!("{module}::synced_appends_survive_sigkill"),
        }
    }

    /// Batches from one acknowledgement to the next: also the most the
    /// child may have made durable past its last one (the batch, or the
    /// batches its sync, in flight at the kill).
    fn batches_per_ack(self) -> usize {
        match self {
            Writes::Durable => 1,
            Writes::Unsynced => SYNC_EVERY_BATCHES,
        }
    }
}

#[test]
fn acked_appends_survive_sigkill() {
    crash_rounds(Writes::Durable);
}

#[test]
fn synced_appends_survive_sigkill() {
    crash_rounds(Writes::Unsynced);
}

fn crash_rounds(writes: Writes) {
    if let Some(path) = std::env::var_os(CHILD_DB_ENV) {
        child_writer(Path::new(&path), writes);
        return;
    }
    let seed = std::env::var(SEED_ENV)
        .ok()
        .map(|seed| seed.parse().expect("seed is a u64"))
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash test seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = SplitMix64::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");

    let mut size_before = 0;
    for round in 0..ROUNDS {
        let kill_delay = Duration::from_millis(rng.range(0, KILL_DELAY_MS_MAX));
        let acked = run_child_until_killed(&path, kill_delay, round, dir.path(), writes);

        assert!(!acked.is_empty(), "round {round}: the child acked nothing");
        for pair in acked.windows(2) {
            assert!(pair[0] < pair[1], "round {round}: acks increase");
        }
        let first_acked = acked[0];
        let last_acked = *acked.last().unwrap();
        assert!(
            first_acked > size_before,
            "round {round}: the child continued the log"
        );
        assert_eq!(
            boundary_after(size_before, writes.batches_per_ack()),
            first_acked,
            "round {round}: the child's first batch starts at the recovered size"
        );

        let store = RedbStore::open(&path).unwrap();
        let size = store.size().unwrap();
        println!(
            "round {round}: killed after {kill_delay:?}, {} acks, last acked {last_acked}, recovered {size}",
            acked.len()
        );
        // Every acknowledged entry survived, and beyond it at most what was
        // in flight at the kill, in whole batches.
        assert!(size >= last_acked, "round {round}: lost acked entries");
        assert!(
            next_boundary(last_acked).is_some(),
            "acks are batch boundaries"
        );
        assert!(
            next_boundary(size).is_some(),
            "round {round}: recovered size {size} is not a whole batch"
        );
        let limit = boundary_after(last_acked, writes.batches_per_ack());
        assert!(
            size <= limit,
            "round {round}: recovered size {size} is past {limit}, more than was in flight"
        );
        assert_log_is(&store, size);
        if let Writes::Unsynced = writes {
            // Synced with the batches, the checkpoints are lost with them
            // or kept with them: never one past the log, never an acked
            // one lost.
            let (checkpoint_size, note) = store.latest_checkpoint().unwrap().unwrap();
            assert!(
                (last_acked..=size).contains(&checkpoint_size),
                "round {round}: latest checkpoint at {checkpoint_size}, log recovered at {size}, acked {last_acked}"
            );
            assert_eq!(note, checkpoint_note(checkpoint_size), "round {round}");
        }
        size_before = size;
    }

    // The parent can carry on from the last crash too.
    let store = RedbStore::open(&path).unwrap();
    store
        .append(&batch(size_before, child_batch_len(size_before)))
        .unwrap();
    assert_log_is(&store, size_before + child_batch_len(size_before));
}

/// Runs one child writer, kills it `kill_delay` after its first ack, and
/// returns every size it acknowledged.
fn run_child_until_killed(
    path: &Path,
    kill_delay: Duration,
    round: usize,
    dir: &Path,
    writes: Writes,
) -> Vec<u64> {
    let stderr_path = dir.join(format!("child-{round}.stderr"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([&writes.test_name(), "--exact", "--nocapture"])
        .env(CHILD_DB_ENV, path)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (acks, acks_received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(size) = line.strip_prefix("acked ") {
                let size: u64 = size.parse().unwrap();
                if acks.send(size).is_err() {
                    return;
                }
            }
        }
    });
    let child_stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();

    let first = acks_received.recv_timeout(FIRST_ACK_WAIT_MAX);
    if first.is_ok() {
        std::thread::sleep(kill_delay);
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let Ok(first) = first else {
        panic!(
            "round {round}: no ack within {FIRST_ACK_WAIT_MAX:?}; child stderr:\n{}",
            child_stderr()
        );
    };
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "round {round}: the child died of something else ({status}); stderr:\n{}",
        child_stderr()
    );
    std::iter::once(first).chain(acks_received.iter()).collect()
}

fn checkpoint_note(size: u64) -> String {
    format!("the checkpoint at {size}")
}

/// The child: append batches in a loop, acknowledging on stdout only what
/// is durable: each batch once `append` returned Ok, or every
/// [`SYNC_EVERY_BATCHES`] unsynced batches once `sync` did.
fn child_writer(path: &Path, writes: Writes) {
    let started = Instant::now();
    let store = RedbStore::open(path).unwrap();
    let mut size = store.size().unwrap();
    let mut out = std::io::stdout().lock();
    let mut unsynced = 0;
    while size < CHILD_ENTRIES_MAX && started.elapsed() < CHILD_RUN_MAX {
        let len = child_batch_len(size);
        match writes {
            Writes::Durable => store.append(&batch(size, len)).unwrap(),
            Writes::Unsynced => {
                store.append_unsynced(&batch(size, len)).unwrap();
                store
                    .put_checkpoint_unsynced(size + len, &checkpoint_note(size + len))
                    .unwrap();
            }
        }
        size += len;
        unsynced += 1;
        if let Writes::Unsynced = writes {
            if unsynced < SYNC_EVERY_BATCHES {
                continue;
            }
            store.sync().unwrap();
        }
        unsynced = 0;
        writeln!(out, "acked {size}").unwrap();
        out.flush().unwrap();
    }
}
