//! The log as static files in the C2SP tlog-tiles layout (`--tiles-dir`), so
//! any static web server, CDN or object-store sync can serve it without our
//! code: `checkpoint`, `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`.
//!
//! Each file is written once, atomically (a temporary file, fsync, rename,
//! fsync of the folder): a tile's content is fixed by its path, a partial
//! tile's by its width. The checkpoint is written last, so a reader that
//! follows it finds every tile it covers.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aidledger_store::LogStore;
use aidledger_tlog::add_signature_lines;

use aidledger_tlog::tiles::{TILE_WIDTH, entry_bundle_path, hash_tile_path};

use crate::tiles::read_tile_path;

/// Writes the tiles of the store's latest checkpoint that `dir` does not
/// hold yet, then the checkpoint. `written` is the tree size whose tiles are
/// known to be written (0 at start: files already there are kept); returns
/// the new one.
///
/// # Errors
///
/// The store or the folder failed; a later call picks up where this one
/// stopped.
pub fn export(store: &dyn LogStore, dir: &Path, written: u64) -> anyhow::Result<u64> {
    let Some((size, note)) = store.latest_checkpoint()? else {
        return Ok(written);
    };
    if size == written && dir.join("checkpoint").exists() {
        return Ok(written);
    }
    let mut level = 0u8;
    let mut count = size;
    let mut done = written;
    while count > 0 {
        // Tiles wholly below what was written are there already.
        for n in done / TILE_WIDTH..count.div_ceil(TILE_WIDTH) {
            let width = (count - n * TILE_WIDTH).min(TILE_WIDTH);
            let path = hash_tile_path(level, n, width);
            if level == 0 {
                write_once(store, dir, &entry_bundle_path(n, width), size)?;
            }
            write_once(store, dir, &path, size)?;
        }
        count /= TILE_WIDTH;
        done /= TILE_WIDTH;
        level += 1;
    }
    let lines = store.cosignatures(size)?;
    let note = add_signature_lines(&note, lines.iter().map(|(_, line)| line.as_str()));
    write_atomically(&dir.join("checkpoint"), note.as_bytes())?;
    Ok(size)
}

fn write_once(store: &dyn LogStore, dir: &Path, relative: &str, size: u64) -> anyhow::Result<()> {
    let path: PathBuf = dir.join(relative);
    if path.exists() {
        return Ok(());
    }
    let bytes = read_tile_path(store, relative, size)
        .map_err(|e| anyhow::anyhow!("reading {relative}: {e}"))?;
    write_atomically(&path, &bytes)
}

/// Temporary file, fsync, rename, fsync of the folder: a reader sees the
/// whole file or none, even after a crash.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let parent = path.parent().expect("a tile path has a folder");
    fs::create_dir_all(parent)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("tile");
    let temporary = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)?;
    fs::File::open(parent)?.sync_all()?;
    Ok(())
}
