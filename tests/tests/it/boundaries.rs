//! The crate boundaries ARCHITECTURE.md states, read from the manifests and
//! the lock file, so a `use` that crosses one cannot land unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

fn read_toml(path: &Path) -> toml::Table {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A member's normal (not dev, not build) dependencies, by package name.
fn direct_dependencies(member: &str) -> BTreeSet<String> {
    let manifest = read_toml(&workspace().join(member).join("Cargo.toml"));
    manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|deps| deps.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every package `root` can reach in the lock file. The lock file lists a
/// workspace member's dev-dependencies with its normal ones, so this is a
/// superset of what `root` links: a package missing here is truly absent.
fn closure(root: &str) -> BTreeSet<String> {
    let lock = read_toml(&workspace().join("Cargo.lock"));
    let packages = lock["package"]
        .as_array()
        .expect("[[package]] in Cargo.lock");
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in packages {
        let name = package["name"].as_str().expect("a package name").to_owned();
        let deps = package
            .get("dependencies")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            // "name" or "name version" or "name version (source)".
            .map(|dep| {
                let dep = dep.as_str().expect("a dependency string");
                dep.split(' ').next().unwrap_or(dep).to_owned()
            });
        edges.entry(name).or_default().extend(deps);
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(name) = stack.pop() {
        if seen.insert(name.clone()) {
            stack.extend(edges.get(&name).into_iter().flatten().cloned());
        }
    }
    seen.remove(root);
    seen
}

fn ours(deps: &BTreeSet<String>) -> BTreeSet<&str> {
    deps.iter()
        .map(String::as_str)
        .filter(|name| name.starts_with("aidledger"))
        .collect()
}

#[test]
fn each_crate_depends_only_on_the_crates_architecture_md_allows() {
    let allowed: &[(&str, &[&str])] = &[
        ("crates/tlog", &[]),
        ("crates/wire", &[]),
        ("crates/store", &[]),
        ("crates/alloc", &[]),
        ("crates/ledger", &["aidledger-tlog", "aidledger-wire"]),
        (
            "crates/audit",
            &["aidledger-ledger", "aidledger-tlog", "aidledger-wire"],
        ),
        (
            "crates/client",
            &["aidledger-ledger", "aidledger-tlog", "aidledger-wire"],
        ),
        (
            "crates/programme",
            &["aidledger-ledger", "aidledger-tlog", "aidledger-wire"],
        ),
        (
            "services/ledger",
            &[
                "aidledger-alloc",
                "aidledger-ledger",
                "aidledger-store",
                "aidledger-tlog",
                "aidledger-wire",
            ],
        ),
        (
            "services/projector",
            &[
                "aidledger-alloc",
                "aidledger-client",
                "aidledger-ledger",
                "aidledger-store",
                "aidledger-tlog",
                "aidledger-wire",
            ],
        ),
        (
            "services/feed",
            &[
                "aidledger-alloc",
                "aidledger-client",
                "aidledger-ledger",
                "aidledger-projector",
                "aidledger-store",
                "aidledger-tlog",
            ],
        ),
    ];
    for (member, allowed) in allowed {
        let deps = direct_dependencies(member);
        let extra: Vec<&str> = ours(&deps)
            .into_iter()
            .filter(|dep| !allowed.contains(dep))
            .collect();
        assert!(
            extra.is_empty(),
            "{member} depends on {extra:?}, which ARCHITECTURE.md does not allow"
        );
    }
}

#[test]
fn the_feed_reads_typed_answers_not_wire_types() {
    let deps = direct_dependencies("services/feed");
    for wire in ["aidledger-wire", "prost", "prost-types", "tonic"] {
        assert!(
            !deps.contains(wire),
            "the feed depends on {wire}: its views must come from the projector's typed read API"
        );
    }
}

#[test]
fn the_write_path_links_no_read_side() {
    let linked = closure("aidledger");
    for read_side in [
        "aidledger-demo",
        "aidledger-feed",
        "aidledger-programme",
        "aidledger-projector",
        "aidledger-client",
        "maud",
        "qrcode",
        "tower-http",
        "csv",
    ] {
        assert!(
            !linked.contains(read_side),
            "`aidledger serve` links {read_side}"
        );
    }
    // The demo is the crate above: it does reach every part.
    let demo = closure("aidledger-demo");
    for part in ["aidledger", "aidledger-projector", "aidledger-feed"] {
        assert!(demo.contains(part), "the demo does not reach {part}");
    }
}

#[test]
fn the_closure_follows_the_lock_file() {
    // The check above is only as good as the walk: a crate the ledger
    // certainly links must be found.
    let linked = closure("aidledger");
    for needed in ["aidledger-store", "redb", "tonic", "ed25519-dalek"] {
        assert!(linked.contains(needed), "the walk missed {needed}");
    }
}
