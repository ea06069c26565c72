//! aidctl against the real server on a loopback port: keys, genesis, hand
//! submission, bank-statement import and re-import, reading and proving,
//! and the exit codes of refusals and failed verification.

use std::path::Path;
use std::process::{Command, Output};

use aidledger::config::load_key_file;
use aidledger::server::{Application, ServeConfig};

const ORIGIN: &str = "aid.test.example/aidctl";

/// Polls the ledger at `url` until its checkpoint covers entry `seq`.
async fn wait_for_checkpoint_over(url: &str, seq: u64) {
    let client =
        aidledger_client::Client::connect(url, aidledger_client::ConnectOptions::new(ORIGIN))
            .await
            .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while client.checkpoint().await.unwrap().checkpoint.size <= seq {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint covers entry {seq}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

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
                r#"{{"register_org":{{"org_id":"fund","name":"Quỹ Bảo trợ trẻ em","kind":"AGENCY","public_name":true}}}}"#, "\n",
                r#"{{"register_key":{{"org_id":"fund","public_key":"{}","roles":["RECEIVE","TRANSFER"]}}}}"#, "\n",
                r#"{{"register_org":{{"org_id":"donor-1","name":"Nhà hảo tâm","kind":"DONOR_INDIVIDUAL","public_name":true}}}}"#, "\n",
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
    // References are keyed (SPEC 7.5): without the key, nothing is hashed.
    let unkeyed = run(s(&[
        "import-statement",
        "--key",
        &path("fund.pem"),
        "--org",
        "fund",
        "--donor-org",
        "donor-1",
        &path("statement.csv"),
    ]))
    .await;
    assert_eq!(unkeyed.status.code(), Some(2), "{}", text(&unkeyed));
    assert!(text(&unkeyed).contains("--ref-key"), "{}", text(&unkeyed));
    ok(run(s(&["keygen", "--ref-key", "--out", &path("ref.key")])).await);
    let import = s(&[
        "import-statement",
        "--key",
        &path("fund.pem"),
        "--org",
        "fund",
        "--donor-org",
        "donor-1",
        "--ref-key",
        &path("ref.key"),
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

    // Proofs verify against the pinned vkey, and fail against another,
    // once a checkpoint covers the entry.
    wait_for_checkpoint_over(&url, 5).await;
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

/// Serves one HTTP request on a loopback port, answers 204 and hands the
/// request text back: the monitor's webhook receiver.
fn webhook_receiver() -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alarm", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).unwrap();
            request.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                // Header names are case-insensitive (hyper sends them in
                // lowercase).
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length").then_some(value)
                    })
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                if body.len() >= length || n == 0 {
                    break;
                }
            }
        }
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (url, handle)
}

/// A ledger on `data` with the same commands every time: genesis, a fund
/// and a donor, one receipt of bank reference `FT-AUDIT-1`.
async fn audited_ledger(
    d: &Path,
    data: &str,
    witnesses: Vec<String>,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let authority_hex = field(&keygen_once(d, "authority"), "public key:").to_owned();
    let fund_hex = field(&keygen_once(d, "fund"), "public key:").to_owned();
    let mut config = ServeConfig::new(
        d.join(data),
        "127.0.0.1:0".parse().unwrap(),
        ORIGIN,
        load_key_file(&d.join("ledger.pem")).unwrap(),
    );
    config.authority_key = Some(aidledger::config::parse_public_key(&authority_hex).unwrap());
    config.ingest.checkpoint_interval = std::time::Duration::from_millis(100);
    config.witnesses = witnesses;
    let app = Application::build(config).await.unwrap();
    let vkey = app.vkey().to_owned();
    let url = format!("http://127.0.0.1:{}", app.port());
    // The public tiles of the same log, as the feed serves them.
    let feed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    std::fs::write(
        d.join(format!("{data}.tiles-url")),
        format!("http://{}", feed.local_addr().unwrap()),
    )
    .unwrap();
    tokio::spawn(aidledger_feed::serve(
        feed,
        aidledger_feed::tiles_router(app.store()),
        std::future::pending(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let path = |name: &str| d.join(name).to_str().unwrap().to_owned();
    std::fs::write(
        d.join("audit-setup.jsonl"),
        format!(
            concat!(
                r#"{{"register_org":{{"org_id":"fund","name":"Quỹ","kind":"AGENCY","public_name":true}}}}"#, "\n",
                r#"{{"register_key":{{"org_id":"fund","public_key":"{}","roles":["RECEIVE"]}}}}"#, "\n",
                r#"{{"register_org":{{"org_id":"donor-1","name":"Nhà hảo tâm","kind":"DONOR_INDIVIDUAL","public_name":true}}}}"#, "\n",
            ),
            fund_hex
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("audit-receipt.json"),
        r#"{"receipt":{"receipt_id":"pt-audit-1","donor_org_id":"donor-1","asset_id":"VND","quantity":500000,"external_ref":"FT-AUDIT-1"}}"#,
    )
    .unwrap();
    if !d.join("ref.key").exists() {
        ok(aidctl(
            "http://127.0.0.1:1",
            &["keygen", "--ref-key", "--out", &path("ref.key")],
        ));
    }
    let commands: Vec<Vec<String>> = vec![
        vec![
            "genesis".into(),
            "--key".into(),
            path("authority.pem"),
            "--authority-org-id".into(),
            "province".into(),
            "--authority-name".into(),
            "Tỉnh".into(),
            "--log-vkey".into(),
            vkey.clone(),
        ],
        vec![
            "submit".into(),
            "--key".into(),
            path("authority.pem"),
            "--org".into(),
            "province".into(),
            path("audit-setup.jsonl"),
        ],
        vec![
            "--vkey".into(),
            vkey.clone(),
            "submit".into(),
            "--key".into(),
            path("fund.pem"),
            "--org".into(),
            "fund".into(),
            "--wait-checkpoint".into(),
            "--ref-key".into(),
            path("ref.key"),
            path("audit-receipt.json"),
        ],
    ];
    for args in commands {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(aidctl(&url, &args))
        })
        .await
        .unwrap();
    }
    (url, stop, server)
}

/// keygen, or the key already made by an earlier call.
fn keygen_once(dir: &Path, name: &str) -> String {
    let path = dir.join(format!("{name}.pem"));
    if path.exists() {
        let key = aidledger_tlog::ed25519::SecretKey::from_pkcs8_pem(
            &std::fs::read_to_string(&path).unwrap(),
        )
        .unwrap();
        return format!("public key: {}\n", hex::encode(key.public_key()));
    }
    keygen(dir, name, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_verifies_proves_witnesses_and_monitors_with_aidctl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vkey = field(&keygen(d, "ledger", &["--name", ORIGIN]), "vkey:").to_owned();
    keygen(d, "witness", &[]);
    let witness_vkey = aidledger_tlog::WitnessSigner::new(
        "witness.example/w1",
        aidledger_tlog::ed25519::SecretKey::from_pkcs8_pem(
            &std::fs::read_to_string(d.join("witness.pem")).unwrap(),
        )
        .unwrap(),
    )
    .unwrap()
    .vkey();
    let (url, stop, server) = audited_ledger(d, "a", vec![witness_vkey.clone()]).await;
    let path = |name: &str| d.join(name).to_str().unwrap().to_owned();
    let run = |url: &str, args: Vec<String>| {
        let url = url.to_owned();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut all = vec!["--vkey".to_owned(), vkey_of(&args)];
                all.extend(args.into_iter().skip(1));
                let all: Vec<&str> = all.iter().map(String::as_str).collect();
                aidctl(&url, &all)
            })
            .await
            .unwrap()
        }
    };
    // Every audit command pins the ledger key; the first word carries it.
    fn vkey_of(args: &[String]) -> String {
        args[0].clone()
    }
    let s = |v: &[&str]| {
        let mut args = vec![vkey.clone()];
        args.extend(v.iter().map(|a| a.to_string()));
        args
    };
    // Nothing listens here: proves a command needs no network.
    let offline = "http://127.0.0.1:1";

    // The whole log verifies; the JSON report says how much.
    let report = ok(run(&url, s(&["audit", "verify", "--json"])).await);
    let json: serde_json::Value = serde_json::from_str(report.lines().next().unwrap()).unwrap();
    assert_eq!(json["ok"], true, "{report}");
    let size = json["size"].as_u64().unwrap();
    assert_eq!(size, 5, "genesis, 3 set-up events, 1 receipt: {report}");

    // The same log verifies from its public tiles alone, over plain HTTP;
    // a tile server that lies about the checkpoint is caught.
    let tiles = std::fs::read_to_string(d.join("a.tiles-url")).unwrap();
    let report = ok(run(
        offline,
        s(&["audit", "verify", "--json", "--tiles", &tiles]),
    )
    .await);
    let json: serde_json::Value = serde_json::from_str(report.lines().next().unwrap()).unwrap();
    assert_eq!(
        (json["ok"].as_bool(), json["size"].as_u64()),
        (Some(true), Some(5)),
        "{report}"
    );
    let wrong_key = field(&keygen(d, "other-ledger", &["--name", ORIGIN]), "vkey:").to_owned();
    let refused = run(
        offline,
        vec![
            wrong_key,
            "audit".into(),
            "verify".into(),
            "--tiles".into(),
            tiles.clone(),
        ],
    )
    .await;
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(
        text(&refused).contains("CHECKPOINT_INVALID"),
        "{}",
        text(&refused)
    );

    // A witness cosigns; the ledger records it; a 1-of-1 quorum holds.
    let witness = s(&[
        "audit",
        "witness",
        "--key",
        &path("witness.pem"),
        "--name",
        "witness.example/w1",
        "--state",
        &path("witness.json"),
        "--once",
    ]);
    let cosigned = ok(run(&url, witness.clone()).await);
    assert!(cosigned.contains("witness.example/w1"), "{cosigned}");
    let report = ok(run(
        &url,
        s(&[
            "audit",
            "verify",
            "--json",
            "--witness",
            &witness_vkey,
            "--quorum",
            "1",
        ]),
    )
    .await);
    assert!(report.contains("witness.example/w1"), "{report}");

    // Export, then verify the archive with no network.
    ok(run(
        &url,
        s(&[
            "audit",
            "export",
            "--out",
            &path("log.archive"),
            "--no-progress",
        ]),
    )
    .await);
    let offline_report = ok(run(
        offline,
        s(&[
            "audit",
            "verify",
            "--archive",
            &path("log.archive"),
            "--json",
        ]),
    )
    .await);
    assert!(offline_report.contains(r#""ok":true"#), "{offline_report}");

    // One flipped byte in entry 3 of the archive: exit 4, seq and reason.
    let mut bytes = std::fs::read(d.join("log.archive")).unwrap();
    let mut offset = 21; // the magic
    for _ in 0..3 {
        let len = u32::from_be_bytes(bytes[offset + 1..offset + 5].try_into().unwrap()) as usize;
        offset += 5 + len;
    }
    let len = u32::from_be_bytes(bytes[offset + 1..offset + 5].try_into().unwrap()) as usize;
    bytes[offset + 5 + len - 1] ^= 0x01; // the last byte of its signature
    std::fs::write(d.join("tampered.archive"), &bytes).unwrap();
    let tampered = run(
        offline,
        s(&[
            "audit",
            "verify",
            "--archive",
            &path("tampered.archive"),
            "--json",
        ]),
    )
    .await;
    assert_eq!(tampered.status.code(), Some(4), "{}", text(&tampered));
    let failure: serde_json::Value =
        serde_json::from_slice(&tampered.stdout).expect("a JSON failure report");
    assert_eq!(failure["failure"]["seq"], 3, "{failure}");
    assert_eq!(failure["failure"]["reason"], "BAD_SIGNATURE", "{failure}");
    assert!(
        text(&tampered).contains("entry 3: BAD_SIGNATURE"),
        "{}",
        text(&tampered)
    );

    // A donor's bank reference, keyed locally, proven; the bundle verifies
    // offline, with the witness, and not with a forged checkpoint. Without
    // the reference key there is nothing to compare.
    let unkeyed = run(&url, s(&["audit", "prove", "--bank-ref", "FT-AUDIT-1"])).await;
    assert_eq!(unkeyed.status.code(), Some(2), "{}", text(&unkeyed));
    assert!(text(&unkeyed).contains("--ref-key"), "{}", text(&unkeyed));
    ok(run(
        &url,
        s(&[
            "audit",
            "prove",
            "--bank-ref",
            // As a donor might type it: SPEC 7.5 normalises case.
            "ft-audit-1",
            "--ref-key",
            &path("ref.key"),
            "--witness",
            &witness_vkey,
            "--out",
            &path("bundle.json"),
        ]),
    )
    .await);
    let bundle = std::fs::read_to_string(d.join("bundle.json")).unwrap();
    assert!(!bundle.contains("FT-AUDIT-1"), "the reference never leaves");
    let proven = ok(run(
        offline,
        s(&[
            "audit",
            "verify-bundle",
            &path("bundle.json"),
            "--json",
            "--witness",
            &witness_vkey,
        ]),
    )
    .await);
    assert!(proven.contains(r#""kind":"receipt""#), "{proven}");
    assert!(proven.contains(r#""seq":4"#), "{proven}");
    let other = field(&keygen(d, "other", &["--name", ORIGIN]), "vkey:").to_owned();
    let mut forged_args = s(&["audit", "verify-bundle", &path("bundle.json")]);
    forged_args[0] = other;
    let forged = run(offline, forged_args).await;
    assert_eq!(forged.status.code(), Some(4), "{}", text(&forged));
    assert!(
        text(&forged).contains("CHECKPOINT_INVALID"),
        "{}",
        text(&forged)
    );

    // The monitor starts from the imported archive and finds A consistent.
    ok(run(
        offline,
        s(&[
            "audit",
            "import",
            &path("log.archive"),
            "--state",
            &path("monitor"),
            "--no-progress",
        ]),
    )
    .await);
    let monitored = ok(run(
        &url,
        s(&["audit", "monitor", "--state", &path("monitor"), "--once"]),
    )
    .await);
    assert!(monitored.contains("trusted size 5"), "{monitored}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    // Ledger B: the same key and the same commands, another history. Same
    // size, other root: the monitor raises the alarm and posts it.
    let (url_b, stop_b, server_b) = audited_ledger(d, "b", Vec::new()).await;
    let (webhook, received) = webhook_receiver();
    let alarm = run(
        &url_b,
        s(&[
            "audit",
            "monitor",
            "--state",
            &path("monitor"),
            "--once",
            "--webhook",
            &webhook,
        ]),
    )
    .await;
    assert_eq!(alarm.status.code(), Some(4), "{}", text(&alarm));
    assert!(text(&alarm).contains("ALARM"), "{}", text(&alarm));
    assert!(text(&alarm).contains("FORK"), "{}", text(&alarm));
    let posted = received.join().unwrap();
    assert!(posted.starts_with("POST /alarm HTTP/1.1"), "{posted}");
    assert!(posted.contains(r#""reason":"FORK""#), "{posted}");

    // The witness, shown B after cosigning A, refuses.
    let refused = run(&url_b, witness).await;
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(text(&refused).contains("FORK"), "{}", text(&refused));
    let _ = stop_b.send(());
    server_b.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_donor_is_registered_proven_by_acknowledgement_and_absent_from_the_archive() {
    const NAME: &str = "Trần Thị Bí Mật";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vkey = field(&keygen(d, "ledger", &["--name", ORIGIN]), "vkey:").to_owned();
    let (url, stop, server) = audited_ledger(d, "h", Vec::new()).await;
    let path = |name: &str| d.join(name).to_str().unwrap().to_owned();
    let run = |args: Vec<String>| {
        let url = url.clone();
        let vkey = vkey.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut all = vec!["--vkey".to_owned(), vkey];
                all.extend(args);
                let all: Vec<&str> = all.iter().map(String::as_str).collect();
                aidctl(&url, &all)
            })
            .await
            .unwrap()
        }
    };
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();

    // The reference key is private to its owner, like a signing key.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.join("ref.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let key = std::fs::read_to_string(d.join("ref.key")).unwrap();
        assert_eq!(key.trim().len(), 64, "32 bytes in hex");
    }

    // The agency registers the donor: the log gets an id and a commitment.
    let out = ok(run(s(&[
        "register-donor",
        "--key",
        &path("fund.pem"),
        "--org",
        "fund",
        "--name",
        NAME,
        "--feed-url",
        "https://minhbach.example.vn/",
        "--ack-out",
        &path("ack.txt"),
    ]))
    .await);
    assert!(out.contains("registered hidden donor an-"), "{out}");
    let ack = std::fs::read_to_string(d.join("ack.txt")).unwrap();
    assert!(ack.contains(NAME), "the name is on the donor's paper");
    let org_id = field(&ack, "org_id:").to_owned();
    assert!(ack.contains(&format!(
        "page: https://minhbach.example.vn/donors/{org_id}"
    )));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.join("ack.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // An acknowledgement is never overwritten, and a refusal writes none.
    let again = run(s(&[
        "register-donor",
        "--key",
        &path("fund.pem"),
        "--org",
        "fund",
        "--name",
        NAME,
        "--feed-url",
        "https://x.example",
        "--ack-out",
        &path("ack.txt"),
    ]))
    .await;
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(d.join("ack.txt")).unwrap(), ack);
    let refused = run(s(&[
        "register-donor",
        "--key",
        &path("fund.pem"),
        "--org",
        "nobody",
        "--name",
        NAME,
        "--feed-url",
        "https://x.example",
        "--ack-out",
        &path("ack-refused.txt"),
    ]))
    .await;
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert!(!d.join("ack-refused.txt").exists());

    // A gift from the hidden donor, with a careless note that names someone
    // and holds an identity number: recorded (SPEC 7.5 leaves the note to
    // the agency) but warned about before signing.
    std::fs::write(
        d.join("hidden-gift.json"),
        format!(
            r#"{{"receipt":{{"receipt_id":"pt-hidden-1","donor_org_id":"{org_id}","asset_id":"VND","quantity":750000,"external_ref":"FT25120999888777","note":"CK hộ anh Nguyễn Văn Minh, CCCD 012345678901"}}}}"#
        ),
    )
    .unwrap();
    // Without the reference key the reference is refused, never hashed bare.
    let unkeyed = run(s(&[
        "submit",
        "--key",
        &path("fund.pem"),
        "--org",
        "fund",
        &path("hidden-gift.json"),
    ]))
    .await;
    assert!(!unkeyed.status.success());
    assert!(text(&unkeyed).contains("--ref-key"), "{}", text(&unkeyed));
    let out = ok(run(s(&[
        "submit",
        "--key",
        &path("fund.pem"),
        "--org",
        "fund",
        "--ref-key",
        &path("ref.key"),
        "--wait-checkpoint",
        &path("hidden-gift.json"),
    ]))
    .await);
    assert!(out.contains("looks like a personal name"), "{out}");
    assert!(out.contains("run of 12 digits"), "{out}");
    assert!(out.contains("1 appended"), "{out}");

    // The donor's acknowledgement verifies against the pinned key.
    let verified = ok(run(s(&["audit", "verify-donor", &path("ack.txt")])).await);
    assert!(
        verified.contains(&format!("VERIFIED: {org_id}")),
        "{verified}"
    );
    // Another name, or another salt, does not.
    for (from, to) in [
        (
            format!("name: {NAME}"),
            "name: Trần Thị Bí Mật Khác".to_owned(),
        ),
        ("salt: ".to_owned(), "salt: 00".to_owned()),
    ] {
        let forged = ack.replacen(&from, &to, 1);
        let forged = if from == "salt: " {
            let line = forged
                .lines()
                .find(|l| l.starts_with("salt: "))
                .unwrap()
                .to_owned();
            forged.replace(&line, &format!("salt: {}", "00".repeat(32)))
        } else {
            forged
        };
        std::fs::write(d.join("forged.txt"), forged).unwrap();
        let failed = run(s(&["audit", "verify-donor", &path("forged.txt")])).await;
        assert_eq!(failed.status.code(), Some(4), "{}", text(&failed));
        assert!(text(&failed).contains("does not open"), "{}", text(&failed));
    }

    // The exported archive, every byte of the log, holds neither the name
    // nor the reference nor the reference's unkeyed hash.
    ok(run(s(&["audit", "export", "--out", &path("log.archive")])).await);
    let archive = std::fs::read(d.join("log.archive")).unwrap();
    assert!(archive.len() > 1_000);
    let unkeyed_hash = <sha2::Sha256 as sha2::Digest>::digest(b"FT25120999888777");
    for (what, secret) in [
        ("the hidden donor's name", NAME.as_bytes().to_vec()),
        ("the bank reference", b"FT25120999888777".to_vec()),
        ("the other reference", b"FT-AUDIT-1".to_vec()),
        ("the reference's unkeyed SHA-256", unkeyed_hash.to_vec()),
        ("the same in hex", hex::encode(unkeyed_hash).into_bytes()),
    ] {
        assert!(
            !archive
                .windows(secret.len())
                .any(|w| w == secret.as_slice()),
            "the archive holds {what}"
        );
    }
    // ... but does hold the registration, by commitment.
    let commitment = hex::decode(field(&ack, "name_commitment:")).unwrap();
    assert!(archive.windows(32).any(|w| w == commitment.as_slice()));

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// A feed replica's `--tiles-dir`, served by a plain static file server
/// (Python's), verifies whole with `aidctl audit verify --tiles`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_written_as_static_tiles_verifies_through_a_plain_file_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vkey = field(&keygen(d, "ledger", &["--name", ORIGIN]), "vkey:").to_owned();
    let (url, stop, server) = audited_ledger(d, "s", Vec::new()).await;
    let path = |name: &str| d.join(name).to_str().unwrap().to_owned();
    // More than a tile's worth of entries, so full and partial tiles of two
    // levels are written.
    let receipts: String = (0..300)
        .map(|n| {
            format!(
                r#"{{"receipt":{{"receipt_id":"pt-static-{n}","donor_org_id":"donor-1","asset_id":"VND","quantity":{}}}}}"#,
                1_000 + n
            ) + "\n"
        })
        .collect();
    std::fs::write(d.join("many.jsonl"), receipts).unwrap();
    let submit = {
        let url = url.clone();
        let args = [
            "submit".to_owned(),
            "--key".into(),
            path("fund.pem"),
            "--org".into(),
            "fund".into(),
            "--batch".into(),
            "50".into(),
            path("many.jsonl"),
        ];
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(aidctl(&url, &args))
        })
        .await
        .unwrap()
    };
    assert!(submit.contains("300 appended"), "{submit}");
    let size = 305u64;

    let tiles = d.join("tiles");
    let mut connect = aidledger_client::ConnectOptions::new("");
    connect.vkey = Some(vkey.clone());
    let mut follower = aidledger_projector::FollowerConfig::new(&url, connect);
    follower.checkpoint_interval = std::time::Duration::from_millis(100);
    follower.commit_interval = std::time::Duration::from_millis(100);
    let replica = aidledger_feed::replica::Replica::build(aidledger_feed::replica::ReplicaConfig {
        data: d.join("feed"),
        listen: "127.0.0.1:0".parse().unwrap(),
        follower,
        options: aidledger_feed::FeedOptions::default(),
        rebuild: false,
        tiles_dir: Some(tiles.clone()),
    })
    .await
    .unwrap();
    let (stop_feed, feed_stopped) = tokio::sync::oneshot::channel::<()>();
    let feed = tokio::spawn(replica.run_until_stopped(async {
        let _ = feed_stopped.await;
    }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(tiles.join("checkpoint"))
        .ok()
        .and_then(|note| note.lines().nth(1).map(str::to_owned))
        != Some(size.to_string())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the tiles folder never reached {size}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for file in [
        "tile/entries/000",
        "tile/entries/001.p/49",
        "tile/0/000",
        "tile/0/001.p/49",
        "tile/1/000.p/1",
    ] {
        assert!(tiles.join(file).is_file(), "{file}");
    }
    // No temporary file is left behind.
    let leftovers = walk(&tiles)
        .into_iter()
        .filter(|p| p.ends_with(".tmp"))
        .count();
    assert_eq!(leftovers, 0);

    // A plain static file server, knowing nothing of aidledger.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut http = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&tiles)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 serves the folder");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the file server did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let static_url = format!("http://127.0.0.1:{port}");
    let report = tokio::task::spawn_blocking(move || {
        ok(aidctl(
            "http://127.0.0.1:1",
            &[
                "--vkey",
                &vkey,
                "audit",
                "verify",
                "--json",
                "--tiles",
                &static_url,
            ],
        ))
    })
    .await
    .unwrap();
    let _ = http.kill();
    let _ = http.wait();
    let json: serde_json::Value = serde_json::from_str(report.lines().next().unwrap()).unwrap();
    assert_eq!(json["ok"], true, "{report}");
    assert_eq!(json["size"], size, "{report}");

    let _ = stop_feed.send(());
    feed.await.unwrap().unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

fn walk(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path.to_string_lossy().into_owned());
        }
    }
    files
}

fn openssl(args: &[&str]) -> Output {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs (CI installs Debian's openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        text(&output)
    );
    output
}

/// `aidctl pubkey` with `passphrase` in the environment, or none.
fn pubkey(key: &Path, passphrase: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aidctl"));
    command
        .args(["pubkey", "--key", key.to_str().unwrap()])
        .env_remove("AIDLEDGER_KEY_PASSPHRASE")
        .stdin(std::process::Stdio::null());
    if let Some(passphrase) = passphrase {
        command.env("AIDLEDGER_KEY_PASSPHRASE", passphrase);
    }
    command.output().expect("running aidctl")
}

#[test]
fn an_encrypted_key_is_read_by_openssl_and_opens_with_its_passphrase_only() {
    const PASSPHRASE: &str = "mười hai ký tự trở lên";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("fund.pem");
    let made = Command::new(env!("CARGO_BIN_EXE_aidctl"))
        .args(["keygen", "--encrypt", "--out", path.to_str().unwrap()])
        .env("AIDLEDGER_KEY_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    let public_hex = field(&ok(made), "public key:").to_owned();
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );

    // OpenSSL opens it with the passphrase: the same public key (the last
    // 32 bytes of the DER SubjectPublicKeyInfo).
    let spki = openssl(&[
        "pkey",
        "-in",
        path.to_str().unwrap(),
        "-passin",
        &format!("pass:{PASSPHRASE}"),
        "-pubout",
        "-outform",
        "DER",
    ])
    .stdout;
    assert_eq!(hex::encode(&spki[spki.len() - 32..]), public_hex);

    // aidctl opens it with the passphrase, and says what is wrong without.
    assert_eq!(
        field(&ok(pubkey(&path, Some(PASSPHRASE))), "public key:"),
        public_hex
    );
    let wrong = pubkey(&path, Some("mười hai ký tự trở lên!"));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong).contains("the passphrase does not open this key"),
        "{}",
        text(&wrong)
    );
    let none = pubkey(&path, None);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none).contains("set AIDLEDGER_KEY_PASSPHRASE"),
        "{}",
        text(&none)
    );

    // A key OpenSSL encrypted (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC)
    // opens in aidctl.
    let plain = d.join("openssl-plain.pem");
    let encrypted = d.join("openssl-encrypted.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        plain.to_str().unwrap(),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-v2prf",
        "hmacWithSHA256",
        "-in",
        plain.to_str().unwrap(),
        "-out",
        encrypted.to_str().unwrap(),
        "-passout",
        &format!("pass:{PASSPHRASE}"),
    ]);
    assert_eq!(
        field(&ok(pubkey(&encrypted, Some(PASSPHRASE))), "public key:"),
        field(&ok(pubkey(&plain, None)), "public key:")
    );

    // A new key's passphrase is not a short one, and no file is left.
    let short = d.join("short.pem");
    let refused = Command::new(env!("CARGO_BIN_EXE_aidctl"))
        .args(["keygen", "--encrypt", "--out", short.to_str().unwrap()])
        .env("AIDLEDGER_KEY_PASSPHRASE", "short")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("fewer than 12 characters"));
    assert!(!short.exists());
}
