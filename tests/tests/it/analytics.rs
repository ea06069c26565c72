//! The read models in PostgreSQL for analysts (`--analytics-store`): the
//! projector copies what the feed publishes into a documented schema, every
//! row stamped with the log position it reflects, and no hidden donor's
//! name or bank reference reaches a table.

use std::time::Duration;

use aho_corasick::AhoCorasick;
use aidledger_projector::analytics::{AnalyticsConfig, SCHEMA_DEFAULT, TABLES};
use aidledger_projector::queries;
use aidledger_projector::read::*;
use aidledger_projector::server::{Projector, ProjectorConfig};
use tokio_postgres::NoTls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_copies_the_public_read_models_into_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let (server, programme, size) = crate::projector::demo_ledger(dir.path()).await;
    let url = aidledger_store::test_database();
    let mut config = ProjectorConfig::new(
        dir.path().join("projections.redb"),
        "127.0.0.1:0".parse().unwrap(),
        &server.url(),
        &server.vkey,
    );
    config.follower.checkpoint_interval = Duration::from_millis(100);
    let mut analytics = AnalyticsConfig::new(&url);
    analytics.interval = Duration::from_millis(100);
    config.analytics = Some(analytics);
    let projector = Projector::build(config).await.unwrap();
    let shared = projector.shared();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(projector.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let (db, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let s = SCHEMA_DEFAULT;
    // Polled: the copy follows the projector at its own interval, and the
    // checkpoint covering the last entries may come a moment after them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let copied = db
            .query_opt(
                &format!("SELECT log_size, checkpoint_size FROM {s}.export"),
                &[],
            )
            .await
            .ok()
            .flatten()
            .map(|row| (row.get::<_, i64>(0), row.get::<_, Option<i64>>(1)));
        if copied == Some((size as i64, Some(size as i64))) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the copy did not reach {size} entries under a checkpoint (at {copied:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The copy names its ledger and the checkpoint it reflects.
    let export = db
        .query_one(
            &format!("SELECT origin, checkpoint_size, head_leaf_hash FROM {s}.export"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(export.get::<_, String>(0), aidledger_tests::ORIGIN);
    assert_eq!(export.get::<_, Option<i64>>(1), Some(size as i64));
    assert_eq!(export.get::<_, String>(2).len(), 64);

    // Every row of every table reflects that position, and the tables hold
    // what the feed's queries answer, row for row.
    let expected = {
        let model = shared.read();
        let all = || PageRequest::rest(None);
        let receipts = queries::receipts(
            &model,
            &ReceiptsQuery {
                page: all(),
                ..Default::default()
            },
        )
        .page
        .rows;
        let receipts_value: u64 = receipts.iter().map(|r| r.amount.value_vnd).sum();
        let anonymous_receipts = receipts.iter().filter(|r| r.donor_anonymous).count();
        let counts = [
            queries::organizations(
                &model,
                &OrganizationsQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows
            .len(),
            queries::communes(&model, None, &all()).page.rows.len(),
            receipts.len(),
            queries::transfers(
                &model,
                &TransfersQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows
            .len(),
            queries::deliveries(
                &model,
                &DeliveriesQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows
            .len(),
            queries::pledges(
                &model,
                &PledgesQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows
            .len(),
            queries::balances(
                &model,
                &BalancesQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows
            .len(),
        ];
        (counts, receipts_value, anonymous_receipts)
    };
    let (counts, receipts_value, anonymous_receipts) = expected;
    for (table, count) in TABLES.iter().zip(counts) {
        assert!(count > 0, "the demo ledger has {table}");
        let row = db
            .query_one(
                &format!("SELECT count(*), min(log_size), max(log_size) FROM {s}.{table}"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), count as i64, "{table}");
        assert_eq!(row.get::<_, Option<i64>>(1), Some(size as i64), "{table}");
        assert_eq!(row.get::<_, Option<i64>>(2), Some(size as i64), "{table}");
        let comment: Option<String> = db
            .query_one(
                &format!("SELECT obj_description('{s}.{table}'::regclass)"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(comment.is_some(), "{table} is described in the database");
    }
    let row = db
        .query_one(
            &format!(
                "SELECT sum(value_vnd)::bigint,
                        count(*) FILTER (WHERE donor_anonymous),
                        count(*) FILTER (WHERE donor_anonymous AND donor_name IS NOT NULL)
                 FROM {s}.receipts"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), receipts_value as i64);
    assert!(anonymous_receipts > 0, "the demo has hidden donors");
    assert_eq!(row.get::<_, i64>(1), anonymous_receipts as i64);
    assert_eq!(row.get::<_, i64>(2), 0, "a hidden donor is named");
    let named_hidden: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM {s}.organizations WHERE anonymous AND name IS NOT NULL"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        named_hidden, 0,
        "an organisation that asked not to be named is"
    );
    // Free text is not copied: an agency may have written a name into it.
    let notes: i64 = db
        .query_one(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_schema = $1 AND column_name IN ('note', 'description')",
            &[&s],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(notes, 0, "a free-text column is copied");
    let versions: Vec<i32> = db
        .query(&format!("SELECT version FROM {s}.migrations"), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1]);

    // SPEC 7.5: no hidden donor's name and no bank reference in any byte of
    // any table.
    // The generator draws names from tables: a hidden donor may share a
    // public donor's name, which is then rightly published for the other.
    let public_names: Vec<String> = {
        let model = shared.read();
        queries::organizations(
            &model,
            &OrganizationsQuery {
                page: PageRequest::rest(None),
                ..Default::default()
            },
        )
        .page
        .rows
        .into_iter()
        .filter_map(|org| org.name)
        .collect()
    };
    let hidden: Vec<String> = programme
        .hidden_donor_names()
        .into_iter()
        .filter(|h| !public_names.iter().any(|p| p.contains(h.as_str())))
        .collect();
    let references = programme.every_reference().to_vec();
    assert!(!hidden.is_empty() && !references.is_empty());
    let names = AhoCorasick::new(&hidden).unwrap();
    let refs = AhoCorasick::new(&references).unwrap();
    for table in TABLES {
        for row in db
            .query(
                &format!("SELECT row_to_json(t)::text FROM {s}.{table} t"),
                &[],
            )
            .await
            .unwrap()
        {
            let text: String = row.get(0);
            assert!(
                names.find(&text).is_none(),
                "{table}: a hidden donor's name in {text}"
            );
            assert!(
                refs.find(&text).is_none(),
                "{table}: a bank reference in {text}"
            );
        }
    }

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    server.stop().await;
}
