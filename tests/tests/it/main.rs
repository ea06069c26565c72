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

/// A program of the workspace, built beside this test binary: `cargo test`
/// builds a package's programs only for that package's own integration
/// tests, so tests/run builds them all first.
fn program(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run the tests with tests/run, which builds every program first",
        path.display()
    );
    path
}
