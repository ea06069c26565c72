//! C2SP tlog-tiles names and entry bundles: the one place that knows how
//! a tile is addressed and how a bundle frames its entries, for the feed
//! that serves tiles and the auditor that reads them.
//!
//! A path is `tile/<L>/<N>[.p/<W>]` for hash tiles and
//! `tile/entries/<N>[.p/<W>]` for entry bundles, N written in groups of
//! three digits (`x001/x234/067`). That is Go sumdb's grammar with the
//! height (fixed at 8) left out and `entries` for `data`; parsing goes
//! through `tlog_tiles`, which checks the grammar strictly.

use tlog_tiles::Tile;

/// C2SP tlog-tiles: a tile covers 2^8 nodes of its level.
pub const TILE_HEIGHT: u8 = 8;

/// Entries (or hashes) in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// The level name of entry bundles in paths.
const ENTRIES: &str = "entries";

/// `tile/<level>/<N>[.p/<W>]`: the hash tile `index` of `level`, `width`
/// hashes wide (a partial tile when under [`TILE_WIDTH`]).
pub fn hash_tile_path(level: u8, index: u64, width: u64) -> String {
    path(&level.to_string(), index, width)
}

/// `tile/entries/<N>[.p/<W>]`: the entry bundle `index`, holding `width`
/// entries.
pub fn entry_bundle_path(index: u64, width: u64) -> String {
    path(ENTRIES, index, width)
}

/// Every tile of a tree of `size` entries, as paths: the entry bundles,
/// then the hash tiles of each level, each full or partial as the tree has
/// it.
pub fn tile_paths(size: u64) -> Vec<String> {
    let mut paths: Vec<String> = (0..size.div_ceil(TILE_WIDTH))
        .map(|n| entry_bundle_path(n, (size - n * TILE_WIDTH).min(TILE_WIDTH)))
        .collect();
    let (mut level, mut hashes) = (0u8, size);
    while hashes > 0 {
        paths.extend(
            (0..hashes.div_ceil(TILE_WIDTH))
                .map(|n| hash_tile_path(level, n, (hashes - n * TILE_WIDTH).min(TILE_WIDTH))),
        );
        hashes /= TILE_WIDTH;
        level += 1;
    }
    paths
}

fn path(level: &str, index: u64, width: u64) -> String {
    // Three-digit groups, most significant first, all but the last with an
    // `x`: 1234067 → x001/x234/067.
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    let partial = if width < TILE_WIDTH {
        format!(".p/{width}")
    } else {
        String::new()
    };
    format!("tile/{level}/{}{partial}", groups.join("/"))
}

/// Why a path names no tile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tile/{0} is not a C2SP tlog-tiles path")]
pub struct TilePathError(String);

/// The tile named by the part of a path after `tile/`:
/// `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`.
///
/// # Errors
///
/// [`TilePathError`] for anything the grammar does not allow (leading
/// zeros beyond three digits, a width of 0 or over 255, a level over 63).
pub fn parse_tile_path(path: &str) -> Result<Tile, TilePathError> {
    let bad = || TilePathError(path.to_owned());
    // `Tile::new` panics on a level over 63 or a width of 0, which
    // `Tile::from_path` lets through: check those first.
    let (level, rest) = path.split_once('/').ok_or_else(bad)?;
    if level != ENTRIES && !level.parse::<u8>().is_ok_and(|l| l < 64) {
        return Err(bad());
    }
    if let Some((_, width)) = rest.rsplit_once(".p/")
        && !width.parse::<u16>().is_ok_and(|w| (1..256).contains(&w))
    {
        return Err(bad());
    }
    let sumdb = if level == ENTRIES {
        format!("tile/{TILE_HEIGHT}/data/{rest}")
    } else {
        format!("tile/{TILE_HEIGHT}/{path}")
    };
    Tile::from_path(&sumdb).map_err(|_| bad())
}

/// Why bytes are not an entry bundle of the expected size.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// An entry is over 65,535 bytes (SPEC §4 bounds them below that).
    #[error("entry {index} is {len} bytes, over 65,535")]
    EntryTooLong { index: usize, len: usize },
    /// The bundle ends inside a length prefix.
    #[error("a length is cut off after {entries} entries")]
    LengthCutOff { entries: usize },
    /// The bundle ends inside an entry.
    #[error("entry {index} is cut off")]
    EntryCutOff { index: usize },
    /// A different number of entries than the tile's width.
    #[error("{found} entries where {expected} were due")]
    WrongCount { found: usize, expected: usize },
}

/// Frames `entries` as a C2SP entry bundle: each as a big-endian u16
/// length and its bytes.
///
/// # Errors
///
/// [`BundleError::EntryTooLong`] when an entry does not fit a u16 length.
pub fn entry_bundle<'a>(
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, BundleError> {
    let mut bundle = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let len = u16::try_from(entry.len()).map_err(|_| BundleError::EntryTooLong {
            index,
            len: entry.len(),
        })?;
        bundle.extend_from_slice(&len.to_be_bytes());
        bundle.extend_from_slice(entry);
    }
    Ok(bundle)
}

/// The entries of a bundle that must hold exactly `count` of them.
///
/// # Errors
///
/// A cut-off length or entry, or another count than `count`.
pub fn split_entry_bundle(bundle: &[u8], count: usize) -> Result<Vec<&[u8]>, BundleError> {
    let mut entries = Vec::with_capacity(count);
    let mut rest = bundle;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(BundleError::LengthCutOff {
                entries: entries.len(),
            });
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(BundleError::EntryCutOff {
                index: entries.len(),
            });
        }
        entries.push(&tail[..len]);
        rest = &tail[len..];
    }
    if entries.len() != count {
        return Err(BundleError::WrongCount {
            found: entries.len(),
            expected: count,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_c2sp() {
        assert_eq!(entry_bundle_path(0, 256), "tile/entries/000");
        assert_eq!(entry_bundle_path(3, 17), "tile/entries/003.p/17");
        assert_eq!(
            entry_bundle_path(1_234_067, 256),
            "tile/entries/x001/x234/067"
        );
        assert_eq!(hash_tile_path(0, 1000, 256), "tile/0/x001/000");
        assert_eq!(hash_tile_path(2, 5, 1), "tile/2/005.p/1");
        assert_eq!(entry_bundle_path(1234, 7), "tile/entries/x001/234.p/7");
    }

    #[test]
    fn a_tree_has_its_bundles_and_hash_tiles_at_every_level() {
        assert!(tile_paths(0).is_empty());
        assert_eq!(tile_paths(3), ["tile/entries/000.p/3", "tile/0/000.p/3"]);
        // 65,537 entries: 257 bundles and level-0 tiles (the last partial);
        // 256 complete level-1 nodes, one full tile; one level-2 node.
        let paths = tile_paths(256 * 256 + 1);
        assert_eq!(paths.len(), 257 + 257 + 1 + 1);
        assert!(paths.contains(&"tile/entries/256.p/1".to_owned()));
        assert!(paths.contains(&"tile/0/256.p/1".to_owned()));
        assert!(paths.contains(&"tile/1/000".to_owned()));
        assert!(paths.contains(&"tile/2/000.p/1".to_owned()));
    }

    #[test]
    fn paths_parse_back_to_their_tile() {
        for (index, width) in [(0, 256), (3, 17), (1_234_067, 256), (999, 255)] {
            let path = entry_bundle_path(index, width);
            let tile = parse_tile_path(path.strip_prefix("tile/").unwrap()).unwrap();
            assert!(tile.is_data());
            assert_eq!(tile.level_index(), index);
            assert_eq!(u64::from(tile.width()), width);
            let path = hash_tile_path(1, index, width);
            let tile = parse_tile_path(path.strip_prefix("tile/").unwrap()).unwrap();
            assert!(!tile.is_data());
            assert_eq!((tile.level(), tile.level_index()), (1, index));
        }
        for bad in [
            "0/0000",
            "0/001.p/0",
            "0/001.p/256",
            "64/000",
            "entries",
            "x/000",
            "0/1",
        ] {
            assert!(parse_tile_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bundles_frame_and_split_their_entries() {
        let entries: [&[u8]; 3] = [b"genesis", b"", &[7; 300]];
        let bundle = entry_bundle(entries).unwrap();
        assert_eq!(&bundle[..2], &[0, 7]);
        assert_eq!(split_entry_bundle(&bundle, 3).unwrap(), entries);
        assert_eq!(
            split_entry_bundle(&bundle, 2),
            Err(BundleError::WrongCount {
                found: 3,
                expected: 2
            })
        );
        assert_eq!(
            split_entry_bundle(&bundle[..bundle.len() - 1], 3),
            Err(BundleError::EntryCutOff { index: 2 })
        );
        assert_eq!(
            split_entry_bundle(&[0], 1),
            Err(BundleError::LengthCutOff { entries: 0 })
        );
        let long = vec![0; 65_536];
        assert_eq!(
            entry_bundle([long.as_slice()]),
            Err(BundleError::EntryTooLong {
                index: 0,
                len: 65_536
            })
        );
    }
}
