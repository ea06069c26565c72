//! aidctl against the real server on a loopback port: keys, genesis, hand
//! submission, bank-statement import and re-import, reading and proving,
//! and the exit codes of refusals and failed verification.

use std::path::Path;
use std::process::{Command, Output};

use aidledger::config::load_key_file;
use aidledger::server::{Application, ServeConfig};

const ORIGIN: &str = "aid.test.example/aidctl";

fn aidctl(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aidctl"))
        .args(["--ledger", url, "--origin", ORIGIN])
        .args(args)
        .env_remove("AIDLEDGER_VKEY")
        .output()
        .expect("running aidctl")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[track_caller]
fn ok(output: Output) -> String {
    let all = text(&output);
    assert!(output.status.success(), "aidctl failed: {all}");
    all
}

fn keygen(dir: &Path, name: &str, extra: &[&str]) -> String {
    let path = dir.join(format!("{name}.pem"));
    let mut args = vec!["keygen", "--out", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    ok(aidctl("http://127.0.0.1:1", &args))
}

fn field<'a>(output: &'a str, label: &str) -> &'a str {
    output
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {output}"))
        .trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_works_the_ledger_with_aidctl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let authority = keygen(d, "authority", &[]);
    let authority_hex = field(&authority, "public key:").to_owned();
    let ledger = keygen(d, "ledger", &["--name", ORIGIN]);
    let vkey = field(&ledger, "vkey:").to_owned();
    let fund = keygen(d, "fund", &[]);
    let fund_hex = field(&fund, "public key:").to_owned();
    // keygen never overwrites a key.
    let again = aidctl(
        "http://127.0.0.1:1",
        &["keygen", "--out", d.join("fund.pem").to_str().unwrap()],
    );
    assert!(!again.status.success());

    let mut config = ServeConfig::new(
        d.join("data"),
        "127.0.0.1:0".parse().unwrap(),
        ORIGIN,
        load_key_file(&d.join("ledger.pem")).unwrap(),
    );
    config.authority_key = Some(aidledger::config::parse_public_key(&authority_hex).unwrap());
    config.ingest.checkpoint_interval = std::time::Duration::from_millis(100);
    let app = Application::build(config).await.unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let run = |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                aidctl(&url, &args)
            })
            .await
            .unwrap()
        }
    };
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let path = |name: &str| d.join(name).to_str().unwrap().to_owned();

    ok(run(s(&[
        "genesis",
        "--key",
        &path("authority.pem"),
        "--authority-org-id",
        "province",
        "--authority-name",
        "Ủy ban nhân dân tỉnh",
        "--log-vkey",
        &vkey,
    ]))
    .await);

    std::fs::write(
        d.join("setup.jsonl"),
        format!(
            concat!(
                r#"{{"register_org":{{"org_id":"fund","name":"Quỹ Bảo trợ trẻ em","kind":"AGENCY"}}}}"#, "\n",
                r#"{{"register_key":{{"org_id":"fund","public_key":"{}","roles":["RECEIVE","TRANSFER"]}}}}"#, "\n",
                r#"{{"register_org":{{"org_id":"donor-1","name":"Nhà hảo tâm","kind":"DONOR_INDIVIDUAL"}}}}"#, "\n",
            ),
            fund_hex
        ),
    )
    .unwrap();
    let out = ok(run(s(&[
        "submit",
        "--key",
        &path("authority.pem"),
        "--org",
        "province",
        &path("setup.jsonl"),
    ]))
    .await);
    assert!(out.contains("3 appended"), "{out}");

    // A bank statement: two credits; the description and account never enter the ledger.
    std::fs::write(
        d.join("statement.csv"),
        "date,amount,reference,description\n\
         03/01/2025,\"1.500.000\",FT25003ABC111,NGUYEN VAN A CK TK 0071000123456 ung ho tre em\n\
         2025-01-04,200000,FT25004ABC222,TRAN THI B ung ho\n",
    )
    .unwrap();
    let import = s(&[
        "import-statement",
        "--key",
        &path("fund.pem"),
        "--org",
        "fund",
        "--donor-org",
        "donor-1",
        &path("statement.csv"),
    ]);
    let out = ok(run(import.clone()).await);
    assert!(out.contains("2 appended"), "{out}");
    // Importing the same statement again changes nothing.
    let out = ok(run(import).await);
    assert!(
        out.contains("0 appended") && out.contains("2 duplicates"),
        "{out}"
    );

    // Read back: the receipt carries the hash of the reference, not the text.
    let entry = ok(run(s(&["get", "--seq", "5"])).await);
    assert!(entry.contains("receipt"), "{entry}");
    for secret in [
        "0071000123456",
        "NGUYEN VAN A",
        "FT25003ABC111",
        "FT25004ABC222",
    ] {
        assert!(
            !entry.contains(secret),
            "{secret} leaked into the ledger: {entry}"
        );
    }

    // Refusals exit with 3 and name the reason.
    std::fs::write(
        d.join("overdraft.json"),
        r#"{"transfer":{"transfer_id":"t-1","to_org_id":"donor-1","asset_id":"VND","quantity":999999999}}"#,
    )
    .unwrap();
    let refused = run(s(&[
        "submit",
        "--key",
        &path("fund.pem"),
        "--org",
        "fund",
        &path("overdraft.json"),
    ]))
    .await;
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert!(
        text(&refused).contains("INSUFFICIENT_BALANCE"),
        "{}",
        text(&refused)
    );

    // Proofs verify against the pinned vkey, and fail against another.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let proof = run(s(&["--vkey", &vkey, "prove", "--seq", "5"])).await;
    assert!(proof.status.success(), "{}", text(&proof));
    let other = keygen(d, "other", &["--name", ORIGIN]);
    let wrong = run(s(&[
        "--vkey",
        field(&other, "vkey:"),
        "prove",
        "--seq",
        "5",
    ]))
    .await;
    assert_eq!(wrong.status.code(), Some(4), "{}", text(&wrong));
    let checkpoint = ok(run(s(&["--vkey", &vkey, "checkpoint"])).await);
    assert!(checkpoint.contains(ORIGIN), "{checkpoint}");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
