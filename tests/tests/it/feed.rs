//! The public feed of the real demo, over real HTTP: pages in both
//! languages, the privacy sweep, exports, the documents checked by standard
//! tools (Python), and the pages driven in headless Chromium (Node,
//! playwright-core), with axe-core's accessibility rules.
//!
//! One demo (seed 2025, the README's) is started for all the tests here and
//! serves until the test process ends.

use aidledger_tlog::tiles::{TILE_WIDTH, entry_bundle_path, split_entry_bundle, tile_paths};
use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aho_corasick::AhoCorasick;
use aidledger_demo::{DEMO_ORIGIN, DemoArgs, run};
use aidledger_programme::{DemoConfig, Programme, SampleReference};
use aidledger_tests::{http_post, http_request};
use aidledger_wire::Message as _;
use aidledger_wire::pb;
use base64::Engine as _;
use sha2::{Digest, Sha256};

const SEED: u64 = 2025;

struct Demo {
    addr: SocketAddr,
    vkey: String,
    size: u64,
    /// Every entry of the log, from the tiles.
    events: Vec<pb::Event>,
    samples: Vec<SampleReference>,
    /// The names of the donors the generator created hidden.
    hidden_names: Vec<String>,
    /// Every bank and goods-note reference of the programme's receipts.
    every_reference: Vec<String>,
}

/// What the ledger, the projector and the feed logged while the demo ran
/// in this process (every level of our crates, debug of the others).
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: OnceLock<std::sync::Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| std::sync::Mutex::new(Vec::new()))
}

#[derive(Clone, Copy)]
struct LogCapture;

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        captured_logs().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn demo() -> &'static Demo {
    // A failed start is kept too: the other tests fail at once instead of
    // each starting a demo of its own.
    static DEMO: OnceLock<Result<Demo, String>> = OnceLock::new();
    DEMO.get_or_init(|| {
        std::panic::catch_unwind(start_demo).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        })
    })
    .as_ref()
    .unwrap_or_else(|e| panic!("the demo did not start: {e}"))
}

fn start_demo() -> Demo {
    // The demo serves until the test process ends, so no TempDir would
    // ever be dropped: one fixed folder under cargo's target, cleared first.
    let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join("feed-demo");
    match std::fs::remove_dir_all(&data) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("clearing {}: {e}", data.display()),
    }
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let args = DemoArgs {
        data: data.join("demo-data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        projections_listen: "127.0.0.1:0".parse().unwrap(),
        feed_listen: addr,
        feed_public_url: None,
        seed: SEED,
        extra_events: 0,
        no_serve: false,
    };
    let key_path = args.data.join("ledger-key.pem");
    // SPEC §9.3: the reference must never reach a log line; capture every
    // line the services write, to look for it.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,aidledger=trace,aidledger_feed=trace,aidledger_projector=trace",
        ))
        .with_writer(|| LogCapture)
        .with_ansi(false)
        .try_init()
        .expect("the first subscriber of the test process");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime
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
    // Drawing the events fills in the programme's references.
    programme.events().for_each(drop);
    // Ready once the projection has applied every entry and a checkpoint
    // covers them all.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "the demo's feed never caught up");
        if std::net::TcpStream::connect(addr).is_ok() {
            let (status, _, body) = get(addr, "/api/v1/overview");
            if status == 200 {
                let overview: serde_json::Value = serde_json::from_slice(&body).unwrap();
                if overview["as_of"]["size"] == size && overview["as_of"]["checkpoint_size"] == size
                {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let key = aidledger::config::load_key_file(&key_path).unwrap();
    let vkey = aidledger_tlog::LogSigner::new(DEMO_ORIGIN, key)
        .unwrap()
        .vkey();
    Demo {
        addr,
        vkey,
        size,
        events: events_from_tiles(addr, size),
        samples: programme.sample_references(),
        hidden_names: programme.hidden_donor_names(),
        every_reference: programme.every_reference().to_vec(),
    }
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    http_request(addr, "GET", path)
}

fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String, Vec<u8>) {
    http_request(addr, method, path)
}

fn get_ok(path: &str) -> Vec<u8> {
    let (status, _, body) = get(demo().addr, path);
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

fn get_json(path: &str) -> serde_json::Value {
    serde_json::from_slice(&get_ok(path)).unwrap()
}

fn get_text(path: &str) -> String {
    String::from_utf8(get_ok(path)).unwrap()
}

/// The whole log, read back from the public entry bundles.
fn events_from_tiles(addr: SocketAddr, size: u64) -> Vec<pb::Event> {
    let mut events = Vec::new();
    for tile in 0..size.div_ceil(TILE_WIDTH) {
        let width = (size - tile * TILE_WIDTH).min(TILE_WIDTH);
        let path = format!("/{}", entry_bundle_path(tile, width));
        let (status, _, bundle) = get(addr, &path);
        assert_eq!(status, 200, "{path}");
        for entry in split_entry_bundle(&bundle, width as usize).unwrap() {
            let entry = pb::LedgerEntry::decode(entry).unwrap();
            let signed = entry.signed_event.unwrap();
            events.push(pb::Event::decode(signed.event.as_ref()).unwrap());
        }
    }
    assert_eq!(events.len() as u64, size);
    events
}

fn sample(public_name: bool) -> &'static SampleReference {
    demo()
        .samples
        .iter()
        .find(|s| s.public_name == public_name)
        .expect("the demo has a sample of each kind")
}

fn anonymous_donor_id() -> String {
    sample(false).donor_org_id.clone()
}

#[test]
fn pages_render_in_vietnamese_by_default_and_in_english_under_en() {
    let vi = get_text("/");
    assert!(vi.contains(r#"<html lang="vi">"#));
    assert!(vi.contains("Nguồn lực vì trẻ em vùng khó khăn"));
    assert!(
        vi.contains(r#"hreflang="en" href="/en""#),
        "a link to the English page"
    );
    let en = get_text("/en");
    assert!(en.contains(r#"<html lang="en">"#));
    assert!(en.contains("Aid for children in the poorest communes"));
    // Same numbers in both: the Vietnamese and English separators.
    let overview = get_json("/api/v1/overview");
    let raised = overview["totals"]["received_vnd"].as_u64().unwrap();
    let vi_raised = format_grouped(raised, '.');
    let en_raised = format_grouped(raised, ',');
    assert!(vi.contains(&format!("{vi_raised} ₫")), "{vi_raised}");
    assert!(en.contains(&format!("{en_raised} ₫")), "{en_raised}");
    // Charts are inline SVG with a text alternative; nothing loads from
    // elsewhere.
    assert_eq!(
        vi.matches(r#"<svg class="chart" role="img" aria-label="#)
            .count(),
        2
    );
    for page in [&vi, &en] {
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no external resources"
        );
    }
    // Every page of both languages answers; the English ones link English.
    let communes = get_json("/api/v1/communes");
    let commune = communes["items"][0]["commune_code"].as_str().unwrap();
    let receipt = &sample(true).receipt_id;
    for path in [
        "/communes".to_owned(),
        format!("/communes/{commune}"),
        "/donors".to_owned(),
        format!("/donors/{}", sample(true).donor_org_id),
        "/pledges".to_owned(),
        "/balances".to_owned(),
        "/overlaps".to_owned(),
        "/commendations".to_owned(),
        "/log".to_owned(),
        "/verify".to_owned(),
        format!("/receipts/{receipt}"),
    ] {
        let vi = get_text(&path);
        let en = get_text(&format!("/en{path}"));
        assert!(vi.contains(r#"<html lang="vi">"#), "{path}");
        assert!(en.contains(r#"<html lang="en">"#), "{path}");
        // The navigation stays in the reader's language; only the
        // language switch leads out of it.
        let nav = |page: &str| {
            let start = page.find("<nav").unwrap();
            page[start..start + page[start..].find("</nav>").unwrap()].to_owned()
        };
        let (vi_nav, en_nav) = (nav(&vi), nav(&en));
        assert!(
            en_nav.contains(r#"href="/en/communes""#),
            "{path}: {en_nav}"
        );
        assert_eq!(
            en_nav.matches(r#"href="/"#).count(),
            en_nav.matches(r#"href="/en"#).count(),
            "{path}: {en_nav}"
        );
        assert!(!vi_nav.contains(r#"href="/en"#), "{path}: {vi_nav}");
        assert!(
            en.contains(r#"hreflang="vi""#),
            "{path}: a switch to Vietnamese"
        );
    }
    // Unknown things are a 404 page in the reader's language.
    let (status, _, body) = get(demo().addr, "/en/communes/00000");
    assert_eq!(status, 404);
    assert!(String::from_utf8(body).unwrap().contains("Not found"));
    let (status, _, body) = get(demo().addr, "/receipts/no-such-receipt");
    assert_eq!(status, 404);
    assert!(String::from_utf8(body).unwrap().contains("Không tìm thấy"));
}

fn format_grouped(n: u64, separator: char) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(c);
    }
    out
}

#[test]
fn the_log_page_shows_the_checkpoint_the_tiles_serve() {
    let note = get_text("/checkpoint");
    let verifier = aidledger_tlog::LogVerifier::from_vkey(&demo().vkey).unwrap();
    let checkpoint = verifier.verify(&note).unwrap();
    assert_eq!(checkpoint.size, demo().size);
    let page = get_text("/en/log");
    let root = hex::encode(checkpoint.root.0);
    assert!(page.contains(&root), "the root in hex");
    assert!(page.contains(&demo().vkey), "the vkey to verify with");
    assert!(page.contains("the ledger&#39;s signature") || page.contains("the ledger's signature"));
}

fn post(path: &str, content_type: &str, body: &str) -> (u16, String, Vec<u8>) {
    http_post(demo().addr, path, content_type, body.as_bytes())
}

#[test]
fn verify_finds_a_receipt_by_id_or_by_a_bank_reference_posted_in_the_body() {
    let addr = demo().addr;
    let named = sample(true);
    let (status, head, _) = get(addr, &format!("/verify?receipt={}", named.receipt_id));
    assert_eq!(status, 303);
    assert!(
        head.contains(&format!("location: /receipts/{}", named.receipt_id)),
        "{head}"
    );
    // SPEC §9.3 through the page's form: the reference in the body only.
    let (status, head, _) = post(
        "/en/verify",
        "application/x-www-form-urlencoded",
        &format!("reference={}", named.reference),
    );
    assert_eq!(status, 303);
    assert!(
        head.contains(&format!("location: /en/receipts/{}", named.receipt_id)),
        "{head}"
    );
    assert!(head.contains("cache-control: no-store"), "{head}");
    // The API answers the same question, and a donor's spacing and case do
    // not matter (SPEC §7.5 normalize).
    let typed = named.reference.to_lowercase().replace("ft", "ft ");
    let (status, head, body) = post(
        "/api/v1/receipts/lookup",
        "application/json",
        &serde_json::json!({ "reference": typed }).to_string(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(head.contains("cache-control: no-store"), "{head}");
    let found: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(found["receipt_ids"][0], named.receipt_id.as_str());
    assert_eq!(found["items"][0]["receipt_id"], named.receipt_id.as_str());
    // Unknown and malformed inputs say so, and change nothing.
    let (status, _, body) = post(
        "/en/verify",
        "application/x-www-form-urlencoded",
        "reference=FT25000NOSUCHREF",
    );
    assert_eq!(status, 404);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("No receipt carries this transfer reference"));
    assert!(
        !body.contains("NOSUCHREF"),
        "the page repeats the reference"
    );
    let (status, _, body) = post("/api/v1/receipts/lookup", "application/json", "reference=x");
    assert_eq!(status, 400);
    assert!(String::from_utf8(body).unwrap().contains("JSON object"));
    // The old GET by hash is gone: nothing about a reference goes in a URL.
    let (status, _, _) = get(
        addr,
        &format!("/api/v1/receipts?ref_hash={}", "0".repeat(64)),
    );
    assert_eq!(status, 404);

    // Nothing the ledger, the projector or the feed logged holds a
    // reference, in any form, though the look-ups were logged.
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(
        logs.contains("receipt look-up by reference"),
        "the look-ups were logged (is the capture working?)"
    );
    assert!(
        logs.contains("aidledger"),
        "the services' own lines are captured"
    );
    for reference in &demo().every_reference {
        let normalized = aidledger_ledger::privacy::normalize_reference(reference);
        for form in [reference.as_str(), normalized.as_str(), typed.as_str()] {
            assert!(
                !logs.contains(form),
                "a log line holds the reference {form}"
            );
        }
    }
    assert!(
        !logs.contains("NOSUCHREF"),
        "a log line holds a looked-up reference"
    );
}

#[test]
fn the_receipt_page_carries_a_qr_code_and_the_proof_verifies_in_rust_too() {
    let named = sample(true);
    let page = get_text(&format!("/receipts/{}", named.receipt_id));
    assert!(
        page.contains(r#"<figure class="qr"><svg"#),
        "an inline SVG QR code"
    );
    assert!(page.contains(&format!(r#"data-vkey="{}""#, demo().vkey)));
    // The browser's inputs, checked here with the reference implementation.
    let proof = get_json(&format!("/api/v1/receipts/{}/proof", named.receipt_id));
    let verifier = aidledger_tlog::LogVerifier::from_vkey(&demo().vkey).unwrap();
    let checkpoint = verifier
        .verify(proof["checkpoint"].as_str().unwrap())
        .unwrap();
    let entry = base64::engine::general_purpose::STANDARD
        .decode(proof["entry"].as_str().unwrap())
        .unwrap();
    let hashes: Vec<aidledger_tlog::Hash> = proof["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            aidledger_tlog::Hash(
                hex::decode(h.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
            )
        })
        .collect();
    let seq = proof["seq"].as_u64().unwrap();
    aidledger_tlog::verify_inclusion(
        &aidledger_tlog::leaf_hash(&entry),
        seq,
        checkpoint.size,
        &hashes,
        &checkpoint.root,
    )
    .unwrap();
    let event = pb::LedgerEntry::decode(entry.as_slice()).unwrap();
    let event = pb::Event::decode(event.signed_event.unwrap().event.as_ref()).unwrap();
    match event.body {
        Some(pb::event::Body::Receipt(r)) => assert_eq!(r.receipt_id, named.receipt_id),
        other => panic!("entry {seq} is not the receipt: {other:?}"),
    }
}

#[test]
fn csv_exports_carry_a_bom_and_round_trip_vietnamese_text() {
    for name in ["receipts", "transfers", "deliveries", "communes"] {
        let (status, head, body) = get(demo().addr, &format!("/exports/{name}.csv"));
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/csv; charset=utf-8"),
            "{head}"
        );
        assert!(head.contains(&format!("filename=\"{name}.csv\"")), "{head}");
        assert!(
            body.starts_with("\u{FEFF}".as_bytes()),
            "{name}.csv starts with a BOM"
        );
        let rows = csv::Reader::from_reader(&body[3..]).records().count();
        assert!(rows > 10, "{name}.csv has {rows} rows");
    }
    // The commune names read back from the CSV are the API's, accents and
    // all.
    let body = get_ok("/exports/communes.csv");
    let mut reader = csv::Reader::from_reader(&body[3..]);
    let from_csv: BTreeSet<String> = reader.records().map(|r| r.unwrap()[1].to_owned()).collect();
    let from_api: BTreeSet<String> = get_json("/api/v1/communes")["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(from_csv, from_api);
    assert!(
        from_csv.iter().any(|n| n
            .chars()
            .any(|c| "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ".contains(c))),
        "Vietnamese diacritics survive: {from_csv:?}"
    );
    // Receipts: one row per receipt in the log; a hidden donor has no name.
    let body = get_ok("/exports/receipts.csv");
    let mut reader = csv::Reader::from_reader(&body[3..]);
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let receipts: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let in_log = demo()
        .events
        .iter()
        .filter(|e| matches!(e.body, Some(pb::event::Body::Receipt(_))))
        .count();
    assert_eq!(receipts.len(), in_log);
    let anonymous = anonymous_donor_id();
    let row = receipts
        .iter()
        .find(|r| r[col("donor_org_id")] == *anonymous)
        .unwrap();
    assert_eq!(&row[col("donor_name")], "");
    assert_eq!(&row[col("donor_anonymous")], "true");
}

#[test]
fn the_feed_has_no_write_routes() {
    // POST is the look-up (SPEC §9.3) on `/verify` and
    // `/api/v1/receipts/lookup` only; it writes nothing.
    for path in [
        "/",
        "/en/communes",
        "/api/v1/communes",
        "/exports/receipts.csv",
        "/checkpoint",
    ] {
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let (status, _, _) = request(demo().addr, method, path);
            assert_eq!(status, 405, "{method} {path}");
        }
    }
    let (status, _, _) = request(demo().addr, "POST", "/api/v1/receipts/x/proof");
    assert_eq!(status, 405);
    for method in ["PUT", "DELETE", "PATCH"] {
        for path in ["/en/verify", "/api/v1/receipts/lookup"] {
            let (status, _, _) = request(demo().addr, method, path);
            assert_eq!(status, 405, "{method} {path}");
        }
    }
}

/// Every public path of the feed for the demo data (both languages, every
/// commune, donor and receipt page, the API for each, every export), with
/// whether its body may carry log bytes (the proof API returns the signed
/// entry itself).
fn every_public_path() -> Vec<(String, bool)> {
    let mut paths: Vec<String> = Vec::new();
    for lang in ["", "/en"] {
        for page in [
            "/",
            "/communes",
            "/donors",
            "/pledges",
            "/balances",
            "/overlaps",
            "/commendations",
            "/log",
            "/verify",
        ] {
            paths.push(if lang.is_empty() {
                page.to_owned()
            } else if page == "/" {
                "/en".to_owned()
            } else {
                format!("{lang}{page}")
            });
        }
    }
    for api in [
        "overview",
        "communes",
        "donors",
        "pledges",
        "balances",
        "transfers",
        "deliveries",
        "overlaps",
        "checkpoint",
    ] {
        paths.push(format!("/api/v1/{api}"));
    }
    for export in [
        "/exports/receipts.csv",
        "/exports/transfers.csv",
        "/exports/deliveries.csv",
        "/exports/communes.csv",
        "/exports/iati-activities.xml",
        "/feed.atom",
    ] {
        paths.push(export.to_owned());
    }
    // The per-year views.
    for year_view in [
        "/communes?year=2025",
        "/donors?year=2025",
        "/api/v1/communes?year=2025",
        "/api/v1/donors?year=2025",
    ] {
        paths.push(year_view.to_owned());
    }
    // Every overlap finding's events.
    for finding in get_json("/api/v1/overlaps")["findings"].as_array().unwrap() {
        let id = finding["finding"].as_str().unwrap();
        paths.extend([
            format!("/overlaps/{id}"),
            format!("/en/overlaps/{id}"),
            format!("/api/v1/overlaps/{id}"),
        ]);
    }
    for commune in get_json("/api/v1/communes")["items"].as_array().unwrap() {
        let code = commune["commune_code"].as_str().unwrap();
        paths.extend([
            format!("/communes/{code}"),
            format!("/en/communes/{code}"),
            format!("/api/v1/communes/{code}"),
            format!("/communes/{code}?year=2025"),
        ]);
    }
    let donors: BTreeSet<String> = demo()
        .events
        .iter()
        .filter_map(|e| match &e.body {
            Some(pb::event::Body::RegisterOrg(o))
                if o.kind >= pb::OrgKind::DonorBusiness as i32 =>
            {
                Some(o.org_id.clone())
            }
            _ => None,
        })
        .collect();
    for donor in &donors {
        paths.extend([
            format!("/donors/{donor}"),
            format!("/en/donors/{donor}"),
            format!("/api/v1/donors/{donor}"),
        ]);
    }
    // The log itself: the checkpoint, every hash tile and entry bundle.
    let mut with_log_bytes = vec!["/checkpoint".to_owned()];
    with_log_bytes.extend(every_tile_path(demo().size));
    for event in &demo().events {
        if let Some(pb::event::Body::Receipt(r)) = &event.body {
            paths.extend([
                format!("/receipts/{}", r.receipt_id),
                format!("/en/receipts/{}", r.receipt_id),
                format!("/api/v1/receipts/{}", r.receipt_id),
            ]);
            with_log_bytes.push(format!("/api/v1/receipts/{}/proof", r.receipt_id));
        }
    }
    paths
        .into_iter()
        .map(|p| (p, false))
        .chain(with_log_bytes.into_iter().map(|p| (p, true)))
        .collect()
}

/// Every C2SP tile of a log of `size` entries: hash tiles at every level
/// and entry bundles, full and partial.
fn every_tile_path(size: u64) -> Vec<String> {
    tile_paths(size)
        .into_iter()
        .map(|path| format!("/{path}"))
        .collect()
}

#[test]
fn nothing_served_names_a_hidden_donor_or_holds_a_reference_or_its_unkeyed_hash() {
    let demo = demo();
    let b64 = base64::engine::general_purpose::STANDARD;
    // The tokens and keyed hashes that the log holds but no page displays.
    let mut public_names = Vec::new();
    let mut opaque: BTreeSet<String> = BTreeSet::new();
    for event in &demo.events {
        match &event.body {
            Some(pb::event::Body::RegisterOrg(o)) if o.public_name => {
                public_names.push(o.name.clone());
            }
            Some(pb::event::Body::RegisterOrg(o)) => {
                // SPEC §7.5: hidden means no name in the log at all.
                assert_eq!(o.name, "", "{} is hidden but named in the log", o.org_id);
                assert_eq!(o.name_commitment.len(), 32, "{}", o.org_id);
            }
            Some(pb::event::Body::Delivery(d)) => {
                for token in d.beneficiary_tokens.iter().chain(&d.evidence_hashes) {
                    opaque.insert(hex::encode(token));
                    opaque.insert(hex::encode_upper(token));
                    opaque.insert(b64.encode(token));
                }
            }
            Some(pb::event::Body::Receipt(r)) if !r.external_ref_hash.is_empty() => {
                opaque.insert(hex::encode(&r.external_ref_hash));
                opaque.insert(b64.encode(&r.external_ref_hash));
            }
            _ => {}
        }
    }
    // The generator's names are drawn from tables: a hidden donor may share
    // a public donor's name, which is then rightly published for the other.
    let hidden: Vec<&String> = demo
        .hidden_names
        .iter()
        .filter(|h| !public_names.iter().any(|p| p.contains(h.as_str())))
        .collect();
    assert!(hidden.len() > 100, "hidden donors: {}", hidden.len());
    assert!(opaque.len() > 1000, "tokens and hashes: {}", opaque.len());
    // Every reference as the donor has it and as normalised, and the
    // unkeyed SHA-256 of each (raw, hex, base64): what anyone could match a
    // guess against if the log held it.
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for reference in &demo.every_reference {
        let normalized = aidledger_ledger::privacy::normalize_reference(reference);
        for form in [reference.clone(), normalized] {
            let unkeyed = Sha256::digest(form.as_bytes());
            secrets.push(form.into_bytes());
            secrets.push(unkeyed.to_vec());
            secrets.push(hex::encode(unkeyed).into_bytes());
            secrets.push(b64.encode(unkeyed).into_bytes());
        }
    }
    assert!(
        demo.every_reference.len() > 500,
        "{}",
        demo.every_reference.len()
    );
    assert!(
        demo.every_reference.iter().any(|r| r.starts_with("PNK-")),
        "goods-note references too"
    );

    let paths = every_public_path();
    assert!(paths.len() > 1500, "{} paths swept", paths.len());
    assert!(paths.iter().any(|(p, _)| p.starts_with("/tile/0/")));
    assert!(paths.iter().any(|(p, _)| p.starts_with("/tile/1/")));
    // One pass over each body for every secret at once.
    let names = AhoCorasick::new(&hidden).unwrap();
    let references = AhoCorasick::new(&secrets).unwrap();
    let opaque = AhoCorasick::new(&opaque).unwrap();
    let mut swept_bytes = 0usize;
    let mut log_bytes = 0usize;
    let mut anonymous_seen = 0usize;
    for (path, carries_log_bytes) in &paths {
        let (status, _, body) = get(demo.addr, path);
        assert_eq!(status, 200, "GET {path}");
        swept_bytes += body.len();
        if let Some(found) = names.find(&body) {
            panic!(
                "{path} names a hidden donor: {:?}",
                hidden[found.pattern().as_usize()]
            );
        }
        if let Some(found) = references.find(&body) {
            panic!(
                "{path} holds a reference or its unkeyed hash: {:?}",
                String::from_utf8_lossy(&body[found.range()])
            );
        }
        if *carries_log_bytes {
            // Tiles, bundles and proofs are the signed entries themselves,
            // which hold the keyed hashes and tokens by design.
            log_bytes += body.len();
            continue;
        }
        let body = String::from_utf8(body).unwrap();
        if let Some(found) = opaque.find(&body) {
            panic!("{path} shows a token or hash: {:?}", &body[found.range()]);
        }
        if body.contains("Nhà hảo tâm ẩn danh") || body.contains("Anonymous donor") {
            anonymous_seen += 1;
        }
    }
    assert!(
        anonymous_seen > 100,
        "anonymous donors are shown as such ({anonymous_seen} pages)"
    );
    assert!(swept_bytes > 5_000_000, "{swept_bytes} bytes swept");
    assert!(log_bytes > 1_000_000, "{log_bytes} bytes of the log swept");
    eprintln!(
        "privacy sweep: {} paths, {swept_bytes} bytes ({log_bytes} of log: tiles, bundles, proofs, checkpoint), {} hidden names, {} references",
        paths.len(),
        hidden.len(),
        demo.every_reference.len(),
    );
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn artifacts() -> PathBuf {
    let dir = workspace().join("target/test-artifacts/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn standard_tools_accept_the_openapi_document_the_api_the_atom_feed_and_the_iati_export() {
    let demo = demo();
    let named = sample(true);
    let commune = get_json("/api/v1/communes")["items"][0]["commune_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let output = Command::new("python3")
        .arg(workspace().join("tests/feed/validate.py"))
        .arg(format!("http://{}", demo.addr))
        .arg(workspace().join("tests/feed/iati-2.03"))
        .args([&commune, &named.donor_org_id, &named.receipt_id])
        .arg(&named.reference)
        .output()
        .expect(
            "python3 runs (CI installs feedparser, openapi-spec-validator, jsonschema, xmlschema)",
        );
    assert!(
        output.status.success(),
        "validate.py failed (are its packages installed? see .ci/run):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["openapi_valid"], true, "{}", report["openapi_error"]);
    let api = report["api"].as_object().unwrap();
    assert!(
        api.len() >= 15,
        "every documented operation was called: {api:?}"
    );
    for (path, outcome) in api {
        assert_eq!(outcome["valid"], true, "{path}: {outcome}");
        // Called with real ids: a documented 404 is not an answer.
        if !path.ends_with("(unknown)") {
            assert_eq!(outcome["status"], 200, "{path}: {outcome}");
        }
    }
    let atom = &report["atom"];
    assert_eq!(atom["bozo"], false, "{}", atom["bozo_exception"]);
    assert_eq!(atom["version"], "atom10");
    assert_eq!(atom["entries"], 50);
    assert_eq!(atom["entries_with_links"], 50);
    assert_eq!(atom["ids_unique"], true);
    let iati = &report["iati"];
    assert_eq!(iati["valid"], true, "{}", iati["errors"]);
    assert_eq!(iati["version"], "2.03");
    for code in ["1", "3", "4", "13"] {
        assert!(
            iati["transaction_types"][code].as_u64().unwrap() > 0,
            "type {code}: {iati}"
        );
    }
    assert_eq!(iati["sector_percentages"], 100.0);
    let sectors: HashSet<&str> = iati["sectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for dac in ["11250", "12220", "11220"] {
        assert!(sectors.contains(dac), "DAC sector {dac} in {sectors:?}");
    }
}

#[test]
fn headless_chromium_verifies_a_real_receipt_and_refuses_tampered_proofs() {
    let demo = demo();
    let browser_dir = workspace().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in tests/browser (.ci/run does)"
    );
    let anonymous = sample(false);
    let output = Command::new("node")
        .arg(browser_dir.join("feed.mjs"))
        .arg(format!("http://{}", demo.addr))
        .arg(&anonymous.receipt_id)
        .arg(&anonymous.reference)
        .arg(artifacts())
        .arg(&sample(true).receipt_id)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "the browser run failed (is Debian's chromium installed? see .ci/run):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // The pages, in both languages, fit a phone's width.
    assert_eq!(report["overviewVi"]["lang"], "vi");
    assert_eq!(
        report["overviewVi"]["h1"],
        "Nguồn lực vì trẻ em vùng khó khăn"
    );
    assert_eq!(report["overviewEn"]["lang"], "en");
    assert_eq!(
        report["overviewEn"]["h1"],
        "Aid for children in the poorest communes"
    );
    assert_eq!(report["overviewEn"]["nav"][0], "Overview");
    for page in ["overviewVi", "overviewEn", "commune"] {
        assert_eq!(
            report[page]["scrollWidth"], report[page]["clientWidth"],
            "{page} scrolls sideways on a phone"
        );
    }
    assert!(report["overviewVi"]["svgCharts"].as_u64().unwrap() >= 2);
    // The real proof verifies, every step of it.
    for run in ["valid", "validEn"] {
        let outcome = &report[run];
        assert_eq!(outcome["verified"], "ok", "{run}: {outcome}");
        let steps = outcome["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 7, "{outcome}");
        assert!(steps.iter().all(|s| s["ok"] == true), "{outcome}");
        assert_eq!(outcome["qr"], 1);
    }
    assert!(
        report["validEn"]["result"]
            .as_str()
            .unwrap()
            .starts_with("VALID")
    );
    // Each tampering is refused, at the step that catches it (the
    // tampered runs are on the Vietnamese page).
    for (run, failing_step) in [
        ("proofHash", "Merkle"),
        ("entry", "Merkle"),
        ("otherReceipt", "là biên nhận này"),
        ("treeSize", "Điểm kiểm tra bao gồm"),
        ("checkpointRoot", "Ed25519"),
    ] {
        let outcome = &report["tampered"][run];
        assert_eq!(outcome["verified"], "fail", "{run}: {outcome}");
        let last = outcome["steps"].as_array().unwrap().last().unwrap();
        assert_eq!(last["ok"], false, "{run}: {outcome}");
        assert!(
            last["text"].as_str().unwrap().contains(failing_step),
            "{run}: {outcome}"
        );
    }
    // By bank reference: the page posted it in a form body, the donor
    // landed on the receipt and verified it there; no URL carried it.
    let by_reference = &report["byReference"];
    assert!(
        by_reference["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/en/receipts/{}", anonymous.receipt_id)),
        "{by_reference}"
    );
    assert_eq!(by_reference["verified"], "ok", "{by_reference}");
    let posted = by_reference["posted"].as_array().unwrap();
    assert_eq!(posted.len(), 1, "{by_reference}");
    assert!(posted[0]["url"].as_str().unwrap().ends_with("/en/verify"));
    assert!(
        posted[0]["body"]
            .as_str()
            .unwrap()
            .contains(&anonymous.reference),
        "the reference went in the body"
    );
    let requests: Vec<&str> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let normalized = aidledger_ledger::privacy::normalize_reference(&anonymous.reference);
    for url in &requests {
        assert!(
            !url.contains(&anonymous.reference) && !url.contains(&normalized),
            "{url} carries the reference"
        );
        assert!(
            url.starts_with(&format!("http://{}/", demo.addr)),
            "{url}: nothing loads from elsewhere"
        );
    }
    assert_eq!(report["consoleErrors"], serde_json::json!([]));
    // axe-core's WCAG 2.1 A and AA rules find nothing on the main pages.
    let audited = report["accessibility"].as_object().unwrap();
    assert!(audited.len() >= 9, "{audited:?}");
    for (path, result) in audited {
        assert_eq!(
            result["violations"],
            serde_json::json!([]),
            "{path}: {result}"
        );
        assert!(
            result["passes"].as_u64().unwrap() > 10,
            "{path}: axe ran its rules: {result}"
        );
    }
    for shot in [
        "overview-vi",
        "overview-en",
        "verify-valid-vi",
        "verify-tampered-proof",
    ] {
        let path = artifacts().join(format!("{shot}.png"));
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 10_000),
            "{path:?}"
        );
    }
}
