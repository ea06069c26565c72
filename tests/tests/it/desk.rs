//! The agency desk (`aidctl desk`) as a clerk uses it, against the real
//! demo (ledger, projections, feed) and the real `aidctl` program, driven
//! in Debian's headless Chromium (playwright-core) with axe-core's rules:
//! a receipt recorded by form appears on the public feed, the same preview
//! submitted twice is recorded once, a key without the role gets a clear
//! refusal, and a wrong passphrase stops the desk before it listens.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aidledger_demo::{DEMO_AGENCY, DEMO_ORIGIN, DEMO_REF_KEY_FILE, DemoArgs, run};
use aidledger_programme::{DemoConfig, Programme};
use aidledger_tests::{http_exchange, http_request};
use aidledger_wire::Message as _;
use aidledger_wire::pb;

const SEED: u64 = 2025;
const PASSPHRASE: &str = "bàn làm việc của quỹ bảo trợ";

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A program that is stopped when the test ends, however it ends (and
/// its standard output, kept open).
struct Running {
    child: Child,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

/// Starts a desk and reads the address it prints, which carries the
/// session's secret; returns it with the desk's socket address.
fn start_desk(mut command: Command) -> (Running, SocketAddr, String) {
    use std::io::BufRead as _;
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("aidctl desk printed no address: {line:?}"))
        .to_owned();
    let addr: SocketAddr = url["http://".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (
        Running {
            child,
            _stdout: stdout,
        },
        addr,
        url,
    )
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until `addr` answers `path` with 200, or `what` fails the test.
fn wait_for(addr: SocketAddr, path: &str, what: &str, ready: impl Fn(&[u8]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "{what} never came up");
        if std::net::TcpStream::connect(addr).is_ok() {
            let (status, _, body) = http_request(addr, "GET", path);
            if status == 200 && ready(&body) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn desk(
    key: &Path,
    org: &str,
    listen: SocketAddr,
    demo: &DemoAddrs,
    passphrase: Option<&str>,
) -> Command {
    let mut command = Command::new(crate::program("aidctl"));
    command
        .args(["--ledger", &format!("http://{}", demo.ledger)])
        .args(["--origin", DEMO_ORIGIN])
        .args(["desk", "--key", key.to_str().unwrap(), "--org", org])
        .args(["--listen", &listen.to_string()])
        .args(["--projections", &format!("http://{}", demo.projections)])
        .args(["--feed", &format!("http://{}", demo.feed)])
        .args(["--ref-key", demo.ref_key.to_str().unwrap()])
        .env_remove("AIDLEDGER_KEY_PASSPHRASE")
        .env_remove("AIDLEDGER_VKEY")
        .stdin(Stdio::null());
    if let Some(passphrase) = passphrase {
        command.env("AIDLEDGER_KEY_PASSPHRASE", passphrase);
    }
    command
}

struct DemoAddrs {
    ledger: SocketAddr,
    projections: SocketAddr,
    feed: SocketAddr,
    ref_key: std::path::PathBuf,
}

#[test]
fn a_clerk_records_a_receipt_by_form_and_sees_it_on_the_public_feed() {
    let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join("desk-demo");
    match std::fs::remove_dir_all(&data) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("clearing {}: {e}", data.display()),
    }
    let demo = DemoAddrs {
        ledger: free_addr(),
        projections: free_addr(),
        feed: free_addr(),
        ref_key: data.join("demo-data/keys").join(DEMO_REF_KEY_FILE),
    };
    let args = DemoArgs {
        data: data.join("demo-data"),
        listen: demo.ledger,
        projections_listen: demo.projections,
        feed_listen: demo.feed,
        feed_public_url: None,
        seed: SEED,
        extra_events: 0,
        no_serve: false,
    };
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(args, std::future::pending()))
            .expect("the demo runs");
    });
    let mut programme = Programme::new(DemoConfig {
        seed: SEED,
        origin: DEMO_ORIGIN.into(),
        log_vkey: String::new(),
        extra_events: 0,
    });
    let size = programme.total_events() as u64;
    let events: Vec<pb::Event> = programme
        .events()
        .map(|signed| pb::Event::decode(signed.event.as_ref()).unwrap())
        .collect();
    wait_for(demo.feed, "/api/v1/overview", "the demo's feed", |body| {
        let overview: serde_json::Value = serde_json::from_slice(body).unwrap();
        overview["as_of"]["size"] == size
    });

    // The fund's key, encrypted; a donor that signs only its own pledges
    // (role PLEDGE, not RECEIVE), plain.
    let keys = tempfile::tempdir().unwrap();
    let fund_key = keys.path().join("fund.pem");
    std::fs::write(
        &fund_key,
        programme
            .signing_key(DEMO_AGENCY)
            .unwrap()
            .to_encrypted_pkcs8_pem(PASSPHRASE.as_bytes())
            .as_bytes(),
    )
    .unwrap();
    let pledger = events
        .iter()
        .find_map(|e| match &e.body {
            Some(pb::event::Body::RegisterKey(k)) if k.roles == [pb::Role::Pledge as i32] => {
                Some(k.org_id.clone())
            }
            _ => None,
        })
        .expect("the demo has a donor that signs its own pledges");
    let pledger_key = keys.path().join("pledger.pem");
    std::fs::write(
        &pledger_key,
        programme
            .signing_key(&pledger)
            .unwrap()
            .to_pkcs8_pem()
            .as_bytes(),
    )
    .unwrap();
    // A donor to pick: one with a public name.
    let donor = events
        .iter()
        .find_map(|e| match &e.body {
            Some(pb::event::Body::RegisterOrg(o))
                if o.kind == pb::OrgKind::DonorBusiness as i32 && o.public_name =>
            {
                Some(o.org_id.clone())
            }
            _ => None,
        })
        .unwrap();

    // An organisation whose key may deliver, and a pool of its holdings
    // that covers 200 deliveries of one unit.
    let (deliverer, pool) = deliverer_with_a_pool(&events, demo.projections);
    let deliverer_key = keys.path().join("deliverer.pem");
    std::fs::write(
        &deliverer_key,
        programme
            .signing_key(&deliverer)
            .unwrap()
            .to_pkcs8_pem()
            .as_bytes(),
    )
    .unwrap();
    let communes: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.body {
            Some(pb::event::Body::RegisterCommune(c)) => Some(c.commune_code.clone()),
            _ => None,
        })
        .collect();
    let sheets = ImportSheets::write(keys.path(), &pool, &communes);
    // Three gifts for the fund's receipts template, as CSV with a BOM; the
    // second with a bank reference, which only its keyed hash reaches.
    let receipts_csv = keys.path().join("receipts.csv");
    std::fs::write(
        &receipts_csv,
        format!(
            "\u{FEFF}receipt_id,date,donor_org_id,asset_id,quantity,reference,earmark_commune,earmark_category,note\r\n\
             csv-gift-1,2025-11-03,{donor},VND,1.000.000,,,,\r\n\
             csv-gift-2,2025-11-04,{donor},VND,2000000,FT25 999 000 111,,nutrition,\"Bữa ăn, tháng 11\"\r\n\
             csv-gift-3,2025-11-05,{donor},VND,300000,,,,\r\n"
        ),
    )
    .unwrap();

    // A wrong passphrase stops the desk before it listens, and says why.
    let refused_at = free_addr();
    let wrong = desk(
        &fund_key,
        DEMO_AGENCY,
        refused_at,
        &demo,
        Some("not the passphrase"),
    )
    .output()
    .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        said.contains("the passphrase does not open this key"),
        "{said}"
    );
    assert!(std::net::TcpStream::connect(refused_at).is_err());

    let (_fund, fund_desk, fund_url) = start_desk(desk(
        &fund_key,
        DEMO_AGENCY,
        free_addr(),
        &demo,
        Some(PASSPHRASE),
    ));
    let (_pledger, _, pledger_url) =
        start_desk(desk(&pledger_key, &pledger, free_addr(), &demo, None));
    // The authority's own desk: registrations and commendations.
    let authority = events
        .iter()
        .find_map(|e| match &e.body {
            Some(pb::event::Body::Genesis(g)) => Some(g.authority_org_id.clone()),
            _ => None,
        })
        .unwrap();
    let authority_key = keys.path().join("authority.pem");
    std::fs::write(
        &authority_key,
        programme
            .signing_key(&authority)
            .expect("the authority signs with a key of the programme")
            .to_pkcs8_pem()
            .as_bytes(),
    )
    .unwrap();
    let (_authority, _, authority_url) =
        start_desk(desk(&authority_key, &authority, free_addr(), &demo, None));
    // The authority's annual plan: two targets, one row each.
    let plan_csv = keys.path().join("plan.csv");
    std::fs::write(
        &plan_csv,
        "year,date,category,commune_code,asset_id,quantity,children_targeted\n\
         2026,2025-12-20,nutrition,99001,VND,50.000.000,120\n\
         2026,2025-12-20,health,,VND,20000000,400\n",
    )
    .unwrap();
    let new_key = hex::encode(aidledger_tlog::ed25519::SecretKey::generate().public_key());
    let (_deliverer, _, deliverer_url) =
        start_desk(desk(&deliverer_key, &deliverer, free_addr(), &demo, None));
    let session = fund_url.split("session=").nth(1).unwrap().to_owned();
    let port = fund_desk.port();
    let request = |head: String, body: &[u8]| http_exchange(fund_desk, head.as_bytes(), body).0;
    // Another site's name for it is refused (DNS rebinding); without the
    // printed address's session nothing answers (another program on this
    // computer); and in session, a form posted from another site and a
    // form without the desk's token are refused.
    assert_eq!(
        request("GET / HTTP/1.0\r\nHost: evil.example\r\n\r\n".into(), &[]),
        421
    );
    assert_eq!(
        request(format!("GET / HTTP/1.0\r\nHost: {fund_desk}\r\n\r\n"), &[]),
        401
    );
    assert_eq!(
        request(
            format!(
                "GET / HTTP/1.0\r\nHost: {fund_desk}\r\nCookie: aidledger_desk_{port}={session}x\r\n\r\n"
            ),
            &[]
        ),
        401
    );
    assert_eq!(
        request(
            format!(
                "GET / HTTP/1.0\r\nHost: {fund_desk}\r\nCookie: aidledger_desk_{port}={session}\r\n\r\n"
            ),
            &[]
        ),
        200
    );
    let form = b"token=&receipt_id=x&donor_org_id=y&asset_id=VND&quantity=1";
    let post = |origin: &str| {
        format!(
            "POST /receipts/submit HTTP/1.0\r\nHost: {fund_desk}\r\nCookie: aidledger_desk_{port}={session}\r\n{origin}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            form.len()
        )
    };
    assert_eq!(request(post("Origin: http://evil.example\r\n"), form), 403);
    assert_eq!(request(post(""), form), 403);
    // A bank reference typed into the public receipt id is refused at the
    // preview (SPEC 7.5).
    let (_, _, page) = http_exchange(
        fund_desk,
        format!("GET /en/receipts/new HTTP/1.0\r\nHost: {fund_desk}\r\nCookie: aidledger_desk_{port}={session}\r\n\r\n").as_bytes(),
        &[],
    );
    let page = String::from_utf8(page).unwrap();
    let token = page
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let leaky = format!(
        "token={token}&receipt_id=FT-DESK00001234&donor_org_id=x&asset_id=VND&quantity=1&reference=FT-DESK+0000+1234"
    );
    let (status, _, answer) = http_exchange(
        fund_desk,
        format!(
            "POST /en/receipts/preview HTTP/1.0\r\nHost: {fund_desk}\r\nCookie: aidledger_desk_{port}={session}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            leaky.len()
        )
        .as_bytes(),
        leaky.as_bytes(),
    );
    assert_eq!(status, 422);
    assert!(
        String::from_utf8_lossy(&answer).contains("must not appear in the receipt id"),
        "the preview did not refuse the reference in the receipt id"
    );

    let receipt_id = "desk-receipt-0001";
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let artifacts = workspace.join("target/test-artifacts/desk");
    std::fs::create_dir_all(&artifacts).unwrap();
    let output = Command::new("node")
        .current_dir(workspace.join("tests/browser"))
        .arg("desk.mjs")
        .arg(&fund_url)
        .arg(&pledger_url)
        .arg(format!("http://{}", demo.feed))
        .arg(&donor)
        .arg(receipt_id)
        .arg(&artifacts)
        .arg(&deliverer_url)
        .arg(&sheets.bad)
        .arg(&sheets.good)
        .arg(&receipts_csv)
        .arg(&authority_url)
        .arg(&plan_csv)
        .arg(
            serde_json::json!({
                "asset": pool.asset_id,
                "commune": sheets.commune,
                "deliveryCategory": sheets.category_value.to_string(),
                "earmarkCommune": pool.commune_code,
                "earmarkCategory": if pool.category == 0 { String::new() } else { pool.category.to_string() },
                "deliverer": deliverer,
                "newKey": new_key,
            })
            .to_string(),
        )
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "the browser run failed (is Debian's chromium installed? see .ci/run):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // The authority registers a commune, a school in it and the school's
    // key, and commends a donor, each recorded in turn; the commune is then
    // public.
    let registered: Vec<u64> = ["commune", "organisation", "key", "commendation"]
        .iter()
        .map(|k| report["authority"][k].as_u64().unwrap())
        .collect();
    assert!(
        registered.windows(2).all(|w| w[0] < w[1]) && registered[0] >= size,
        "{report}"
    );
    wait_for(
        demo.feed,
        "/api/v1/communes/99001",
        "the new commune on the feed",
        |_| true,
    );
    // The plan: two rows, one event.
    assert_eq!(
        report["authority"]["plan"]["rows"]["toRecord"], 1,
        "{report}"
    );
    assert_eq!(report["authority"]["plan"]["recorded"], 1, "{report}");
    // The desk read its key's organisation and roles from the log, and
    // offers what they allow.
    let standing = report["homeStanding"].as_str().unwrap();
    assert!(
        standing.contains(DEMO_AGENCY) && standing.contains("RECEIVE"),
        "{standing}"
    );
    assert_eq!(
        report["homeLinks"],
        serde_json::json!([
            "/receipts/new",
            "/pledges/new",
            "/cancellations/new",
            "/transfers/new",
            "/arrivals/new",
            "/needs/new",
            "/inspections/new",
            "/reversals/new",
            "/key-revocations/new",
            "/donors/new",
            "/import"
        ]),
        "{report}"
    );
    assert_eq!(
        report["transferForm"]["scrollWidth"], report["transferForm"]["clientWidth"],
        "{report}"
    );
    // A hidden donor: the preview says the name is not published; the
    // acknowledgement holds it, and verifies against the ledger's key with
    // `aidctl audit verify-donor`; the feed names the donor nowhere.
    assert_eq!(report["hiddenDonor"]["previewShowsName"], false, "{report}");
    let acknowledgement = report["hiddenDonor"]["acknowledgement"].as_str().unwrap();
    assert!(acknowledgement.contains("name: Trần Thị Mai Hương"));
    let hidden_org = acknowledgement
        .lines()
        .find_map(|l| l.strip_prefix("org_id: "))
        .unwrap()
        .to_owned();
    let ledger_key =
        aidledger::config::load_key_file(&data.join("demo-data/ledger-key.pem")).unwrap();
    let vkey = aidledger_tlog::LogSigner::new(DEMO_ORIGIN, ledger_key)
        .unwrap()
        .vkey();
    let verified = Command::new(crate::program("aidctl"))
        .args(["--ledger", &format!("http://{}", demo.ledger)])
        .args(["--vkey", &vkey])
        .args(["audit", "verify-donor"])
        .arg(report["hiddenDonor"]["file"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "verify-donor: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    wait_for(
        demo.feed,
        &format!("/api/v1/donors/{hidden_org}"),
        "the hidden donor on the feed",
        |_| true,
    );
    for path in [
        format!("/donors/{hidden_org}"),
        format!("/api/v1/donors/{hidden_org}"),
    ] {
        let (_, _, body) = http_request(demo.feed, "GET", &path);
        let body = String::from_utf8(body).unwrap();
        assert!(!body.contains("Mai Hương"), "{path} names the hidden donor");
    }
    // A pledge and its cancellation, a commune's need, a transfer and its
    // arrival confirmed by the receiver, each recorded in turn.
    let seqs: Vec<u64> = ["pledge", "cancellation", "need", "transfer", "arrival"]
        .iter()
        .map(|k| report[k]["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] >= size,
        "{seqs:?}"
    );
    // The delivery by form, reversed by its agency, picked from its own
    // recent entries.
    let target = report["reversal"]["target"].as_str().unwrap();
    assert!(
        report["reversal"]["offered"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == target),
        "{report}"
    );
    assert!(
        report["reversal"]["seq"].as_u64().unwrap() > report["delivery"]["seq"].as_u64().unwrap()
    );
    // A delivery by form: recorded, and linked to its commune's public page.
    assert!(
        report["delivery"]["seq"].as_u64().unwrap() >= size,
        "{report}"
    );
    assert_eq!(
        report["delivery"]["publicPage"],
        format!("http://{}/communes/{}", demo.feed, sheets.commune)
    );
    // The form, the preview and the answer, in the clerk's language.
    assert_eq!(report["home"]["lang"], "vi");
    assert_eq!(report["form"]["lang"], "en");
    assert_eq!(
        report["form"]["scrollWidth"], report["form"]["clientWidth"],
        "the form scrolls sideways on a phone"
    );
    // The form is checked as it is typed.
    assert_eq!(report["liveCheck"]["invalid"], "true", "{report}");
    assert_eq!(report["liveCheck"]["cleared"], true, "{report}");
    // The preview warns about the note and never shows the reference.
    assert!(
        report["preview"]["warnings"].as_u64().unwrap() >= 2,
        "{report}"
    );
    assert_eq!(report["preview"]["showsReference"], false);
    // Recorded: after the demo's entries, and on the public feed.
    let seq = report["recorded"]["seq"].as_u64().unwrap();
    assert!(seq >= size, "{report}");
    assert_eq!(
        report["recorded"]["publicPage"],
        format!("http://{}/receipts/{receipt_id}", demo.feed)
    );
    assert_eq!(report["recorded"]["qr"], 1);
    assert_eq!(report["feed"]["status"], 200, "{report}");
    assert!(
        report["feed"]["text"]
            .as_str()
            .unwrap()
            .contains(receipt_id)
    );
    let (_, _, body) = http_request(demo.feed, "GET", &format!("/api/v1/receipts/{receipt_id}"));
    let receipt: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(receipt["receipt"]["donor"]["org_id"], donor, "{receipt}");
    // The same preview submitted again is recorded once.
    assert_eq!(report["again"]["seq"].as_u64(), Some(seq), "{report}");
    assert_eq!(report["again"]["duplicate"], true);
    // A key without the role: no link to the form, a warning on it, and,
    // submitted anyway, the ledger's reason and what to do.
    assert!(
        report["noRole"]["standing"]
            .as_str()
            .unwrap()
            .contains(&pledger)
    );
    assert_eq!(
        report["noRole"]["links"],
        serde_json::json!([
            "/en/pledges/new",
            "/en/cancellations/new",
            "/en/reversals/new",
            "/en/key-revocations/new",
            "/en/import"
        ]),
        "{report}"
    );
    assert!(
        report["noRole"]["warning"]
            .as_str()
            .unwrap()
            .contains("needs RECEIVE"),
        "{report}"
    );
    assert_eq!(report["noRole"]["reason"], "ROLE_NOT_ALLOWED", "{report}");
    assert!(
        report["noRole"]["message"]
            .as_str()
            .unwrap()
            .contains("needs RECEIVE"),
        "{report}"
    );
    // axe-core's WCAG 2.1 A and AA rules find nothing on any desk page.
    let audited = report["accessibility"].as_object().unwrap();
    // Every form page in both languages, and the pages of each step.
    assert!(audited.len() >= 50, "{} pages audited", audited.len());
    for (page, result) in audited {
        assert_eq!(
            result["violations"],
            serde_json::json!([]),
            "{page}: {result}"
        );
        assert!(result["passes"].as_u64().unwrap() > 5, "{page}: {result}");
    }
    assert_eq!(report["consoleErrors"], serde_json::json!([]));

    // The spreadsheet: exactly the five bad rows, each with its column and
    // reason; nothing signed.
    let import = &report["import"];
    assert_eq!(import["bad"]["problems"], 5, "{import}");
    assert_eq!(import["bad"]["toRecord"], 195, "{import}");
    let named: Vec<(u64, String, String)> = import["bad"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().parse().unwrap(),
                r[1].as_str().unwrap().to_owned(),
                r[2].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String, String)> = sheets
        .bad_rows
        .iter()
        .map(|(row, column, reason)| (*row, (*column).to_owned(), (*reason).to_owned()))
        .collect();
    assert_eq!(named, expected);
    assert_eq!(
        import["bad"]["page"]["scrollWidth"], import["bad"]["page"]["clientWidth"],
        "the report scrolls sideways on a phone"
    );
    assert_eq!(import["bad"]["reportStatus"], 200);
    assert!(
        import["bad"]["reportType"]
            .as_str()
            .unwrap()
            .contains("spreadsheetml"),
        "{import}"
    );
    // The fund's receipts from CSV: all three recorded, each on the feed.
    assert_eq!(import["receipts"]["toRecord"], 3, "{import}");
    assert_eq!(import["receipts"]["recorded"], 3, "{import}");
    for id in ["csv-gift-1", "csv-gift-2", "csv-gift-3"] {
        wait_for(demo.feed, &format!("/api/v1/receipts/{id}"), id, |_| true);
    }
    // Corrected: all 200 recorded, once; again: nothing new.
    assert_eq!(import["good"]["toRecord"], 200, "{import}");
    assert_eq!(import["good"]["recorded"], 200, "{import}");
    // Submitted in the background, its progress on a page of its own.
    assert!(
        import["good"]["progressPage"]
            .as_str()
            .unwrap()
            .ends_with("/progress"),
        "{import}"
    );
    assert_eq!(import["again"]["toRecord"], 0, "{import}");
    assert_eq!(import["again"]["already"], 200, "{import}");
    assert_eq!(import["again"]["problems"], 0, "{import}");
    // The ledger holds the demo, the receipt, the donor, the pledge and
    // its cancellation, the need, the transfer and its arrival, the
    // delivery by form and its reversal, the 200 deliveries, the 3
    // receipts and the authority's 5 entries: no more.
    wait_for(
        demo.feed,
        "/api/v1/overview",
        "the feed, after the import",
        |body| {
            let overview: serde_json::Value = serde_json::from_slice(body).unwrap();
            overview["as_of"]["size"].as_u64().unwrap() >= size + 217
        },
    );
    let (_, _, body) = http_request(demo.feed, "GET", "/api/v1/overview");
    let overview: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(overview["as_of"]["size"], size + 217);
}

/// A pool of holdings: asset and earmark.
struct Pool {
    asset_id: String,
    commune_code: String,
    category: i32,
}

/// An organisation whose key has DELIVER, and one of its pools holding at
/// least 200 units, read from the demo's projections.
fn deliverer_with_a_pool(events: &[pb::Event], projections: SocketAddr) -> (String, Pool) {
    let deliverers: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.body {
            Some(pb::event::Body::RegisterKey(k))
                if k.roles.contains(&(pb::Role::Deliver as i32)) =>
            {
                Some(k.org_id.clone())
            }
            _ => None,
        })
        .collect();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut client =
                pb::projections_client::ProjectionsClient::connect(format!("http://{projections}"))
                    .await
                    .unwrap();
            for org in deliverers {
                let balances = client
                    .list_balances(pb::ListBalancesRequest {
                        page: Some(pb::Page {
                            page_size: 1000,
                            page_token: String::new(),
                        }),
                        org_id: org.clone(),
                        asset_id: String::new(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                if let Some(balance) = balances.balances.iter().find(|b| b.held >= 400) {
                    let earmark = balance.earmark.clone().unwrap_or_default();
                    return (
                        org,
                        Pool {
                            asset_id: balance.asset_id.clone(),
                            commune_code: earmark.commune_code,
                            category: earmark.category,
                        },
                    );
                }
            }
            panic!("no organisation of the demo can deliver 200 units");
        })
}

/// The deliveries spreadsheet with five bad rows, and the same corrected.
struct ImportSheets {
    /// The commune the deliveries go to, and their category as the form's
    /// value (the pb number).
    commune: String,
    category_value: i32,
    bad: std::path::PathBuf,
    good: std::path::PathBuf,
    /// (spreadsheet row, column, reason) of each bad row, in row order.
    bad_rows: Vec<(u64, &'static str, &'static str)>,
}

impl ImportSheets {
    fn write(dir: &Path, pool: &Pool, communes: &[String]) -> ImportSheets {
        const CATEGORIES: [&str; 7] = [
            "health",
            "nutrition",
            "culture_recreation",
            "scholarship",
            "books_supplies",
            "clothing",
            "other",
        ];
        let commune = if pool.commune_code.is_empty() {
            communes[0].clone()
        } else {
            pool.commune_code.clone()
        };
        let category = if pool.category == 0 {
            "nutrition"
        } else {
            CATEGORIES[pool.category as usize - 1]
        };
        let earmark_category = if pool.category == 0 { "" } else { category };
        let good_row = |i: usize| -> Vec<String> {
            vec![
                format!("import-{i:03}"),
                "2025-12-15".into(),
                commune.clone(),
                category.into(),
                pool.asset_id.clone(),
                "1".into(),
                "2025-12".into(),
                "1".into(),
                pool.commune_code.clone(),
                earmark_category.into(),
                String::new(),
            ]
        };
        // Data row i is spreadsheet row i + 2 (the header is row 1).
        let bad_rows: Vec<(usize, &str, &str)> = vec![
            (7, "quantity", "INVALID_QUANTITY"),
            (42, "commune_code", "UNKNOWN_COMMUNE"),
            (99, "period", "INVALID_DATE"),
            (150, "category", "INVALID_ENUM"),
            (180, "delivery_id", "ID_EXISTS"),
        ];
        let break_row = |i: usize, row: &mut Vec<String>| match i {
            7 => row[5] = "a few".into(),
            42 => row[2] = "99999".into(),
            99 => row[6] = "2025-13".into(),
            150 => row[3] = "food".into(),
            180 => row[0] = "import-010".into(),
            _ => {}
        };
        let header = [
            "delivery_id",
            "date",
            "commune_code",
            "category",
            "asset_id",
            "quantity",
            "period",
            "children_reached",
            "earmark_commune",
            "earmark_category",
            "note",
        ];
        let write = |path: &Path, broken: bool| {
            let mut workbook = rust_xlsxwriter::Workbook::new();
            let sheet = workbook.add_worksheet();
            for (c, title) in header.iter().enumerate() {
                sheet.write_string(0, c as u16, *title).unwrap();
            }
            for i in 0..200 {
                let mut row = good_row(i);
                if broken {
                    break_row(i, &mut row);
                }
                for (c, cell) in row.iter().enumerate() {
                    // Quantities as numbers, as a clerk's spreadsheet has them.
                    if c == 5
                        && let Ok(n) = cell.parse::<f64>()
                    {
                        sheet.write_number(i as u32 + 1, c as u16, n).unwrap();
                    } else {
                        sheet.write_string(i as u32 + 1, c as u16, cell).unwrap();
                    }
                }
            }
            workbook.save(path).unwrap();
        };
        let bad = dir.join("deliveries-with-mistakes.xlsx");
        let good = dir.join("deliveries.xlsx");
        write(&bad, true);
        write(&good, false);
        ImportSheets {
            commune,
            category_value: CATEGORIES.iter().position(|c| *c == category).unwrap() as i32 + 1,
            bad,
            good,
            bad_rows: bad_rows
                .into_iter()
                .map(|(i, column, reason)| (i as u64 + 2, column, reason))
                .collect(),
        }
    }
}
