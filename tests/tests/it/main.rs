//! The one integration test binary: real ledgers on real files.

mod analytics;
mod audit;
mod boundaries;
mod crash;
mod crosslang;
mod demo;
mod deploy;
mod desk;
mod feed;
mod grpc;
mod projector;
mod sequencer;
mod tls;

/// A program of the workspace, built beside this test binary (`cargo test
/// --workspace` builds every package's programs before running tests).
fn program(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run the tests with `cargo test --workspace` (tests/run)",
        path.display()
    );
    path
}
