//! The deploy files cannot drift from the programs: every flag and
//! `AIDLEDGER_*` variable that `deploy/` passes (systemd units, compose,
//! Kubernetes, the example TOML) exists in the program's `--help`
//! (`tests/deploy/check.py`, with PyYAML).

use std::path::Path;
use std::process::Command;

fn help(name: &str, subcommand: Option<&str>) -> String {
    let output = Command::new(crate::program(name))
        .args(subcommand)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "{name} --help");
    String::from_utf8(output.stdout).unwrap()
}

fn check(deploy: &Path, helps: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/check.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(deploy)
        .arg(helps)
        .output()
        .expect("python3 runs (tests/run installs PyYAML)");
    assert!(
        output.status.success(),
        "check.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_flag_and_variable_in_the_deploy_files_exists_in_the_programs() {
    let helps = tempfile::tempdir().unwrap();
    for (file, name, subcommand) in [
        ("aidledger_serve.txt", "aidledger", Some("serve")),
        ("aidledger-projector.txt", "aidledger-projector", None),
        ("aidledger-feed.txt", "aidledger-feed", None),
        ("aidctl.txt", "aidctl", None),
    ] {
        std::fs::write(helps.path().join(file), help(name, subcommand)).unwrap();
    }
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let report = check(&deploy, helps.path());
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let files: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for expected in [
        "aidledger.service",
        "aidledger-projector.service",
        "aidledger-feed.service",
        "compose.yaml",
        "compose.postgres.yaml",
        "kubernetes/ledger.yaml",
        "kubernetes/projector.yaml",
        "kubernetes/feed.yaml",
        "aidledger.toml",
    ] {
        assert!(
            files.contains(&expected),
            "{expected} was not checked: {files:?}"
        );
    }
    assert!(report["checked"].as_u64().unwrap() > 50, "{report}");

    // The check can fail: a unit with a flag and a variable no program has.
    let drifted = tempfile::tempdir().unwrap();
    std::fs::write(
        drifted.path().join("drifted.service"),
        "[Service]\nEnvironment=AIDLEDGER_NO_SUCH=1\nExecStart=/usr/local/bin/aidledger-feed --no-such-flag\n",
    )
    .unwrap();
    let report = check(drifted.path(), helps.path());
    let problems = report["problems"].to_string();
    assert!(problems.contains("--no-such-flag"), "{report}");
    assert!(problems.contains("AIDLEDGER_NO_SUCH"), "{report}");
}
