//! The public read models in PostgreSQL, for analysts, journalists and BI
//! tools that speak SQL (issue 15, item 4).
//!
//! Every `interval`, when the model has moved, the projector copies what
//! the feed publishes into one schema (by default `aidledger_public`):
//! organisations, communes, receipts, transfers, deliveries, pledges and
//! balances, built by the same queries as the feed's pages, with the
//! feed's privacy rules (SPEC 7.5): a hidden donor has no name here, no
//! reference is written, keyed or not, and no free-text note (an agency
//! may have written a donor's or a child's name into one; the feed does
//! not show them either). Every row carries `log_size`, the
//! number of log entries it reflects, and the table `export` says which
//! ledger, which entries and which checkpoint the whole copy reflects.
//!
//! Each copy replaces the previous one in one transaction, so a reader sees
//! one whole copy or the one before, never a mix. It is rebuilt from the
//! projections, which are rebuilt from the log: nothing here is a source
//! of truth, and dropping the schema loses nothing. A copy older than the
//! one in the database (a projector rebuilding from entry 0) is not
//! written, so the schema never moves back.
//!
//! The layout is created by versioned migrations recorded in the schema's
//! `migrations` table, and described in the database itself (`COMMENT ON`),
//! where BI tools show it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aidledger_ledger::{Category, Earmark, OrgKind, Timestamp};
use aidledger_wire::pb;
use anyhow::{Context as _, bail};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Transaction};

use crate::follower::Shared;
use crate::queries;
use crate::read::*;

/// The schema written when none is named.
pub const SCHEMA_DEFAULT: &str = "aidledger_public";

/// Where and how often to copy the read models.
#[derive(Clone, Debug)]
pub struct AnalyticsConfig {
    /// `postgres://USER@HOST:PORT/DB`.
    pub url: String,
    /// The schema the tables live in: lower-case letters, digits and `_`.
    pub schema: String,
    /// How often to copy, when the model has moved.
    pub interval: Duration,
}

impl AnalyticsConfig {
    /// A copy into [`SCHEMA_DEFAULT`] at `url` every 10 s.
    pub fn new(url: impl Into<String>) -> Self {
        AnalyticsConfig {
            url: url.into(),
            schema: SCHEMA_DEFAULT.to_owned(),
            interval: Duration::from_secs(10),
        }
    }
}

/// The schema's layout, one migration per version, never edited once
/// released: a new layout is a new version. `{schema}` is the schema name.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE {schema}.export (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    origin text NOT NULL,
    log_size bigint NOT NULL,
    head_leaf_hash text NOT NULL,
    checkpoint_size bigint,
    checkpoint_root text,
    exported_at timestamptz NOT NULL
);
COMMENT ON TABLE {schema}.export IS 'Which ledger (origin) and which log prefix the tables reflect: entries 0..log_size, the last with leaf hash head_leaf_hash (hex); the latest verified checkpoint covering them. One row.';

CREATE TABLE {schema}.organizations (
    org_id text PRIMARY KEY,
    name text,
    anonymous boolean NOT NULL,
    kind text NOT NULL,
    parent_org_id text,
    commune_code text,
    log_size bigint NOT NULL
);
COMMENT ON TABLE {schema}.organizations IS 'Registered organisations. name is NULL for a donor who asked not to be named (SPEC 7.5). kind: authority, agency, commune, school, clinic, donor_business, donor_organization, donor_individual.';

CREATE TABLE {schema}.communes (
    commune_code text PRIMARY KEY,
    name text NOT NULL,
    district text NOT NULL,
    province text NOT NULL,
    children_count bigint NOT NULL,
    needed_value_vnd bigint NOT NULL,
    delivered_value_vnd bigint NOT NULL,
    children_targeted bigint NOT NULL,
    children_reached bigint NOT NULL,
    deliveries bigint NOT NULL,
    log_size bigint NOT NULL
);
COMMENT ON TABLE {schema}.communes IS 'Registered communes with their published needs and deliveries over all years, values in dong.';

CREATE TABLE {schema}.receipts (
    receipt_id text PRIMARY KEY,
    event_id text NOT NULL,
    seq bigint NOT NULL,
    recipient_org_id text NOT NULL,
    donor_org_id text NOT NULL,
    donor_name text,
    donor_anonymous boolean NOT NULL,
    pledge_id text,
    asset_id text NOT NULL,
    quantity bigint NOT NULL,
    value_vnd bigint NOT NULL,
    earmark_commune_code text,
    earmark_category text,
    reversed boolean NOT NULL,
    occurred_at timestamptz NOT NULL,
    inspections bigint NOT NULL,
    log_size bigint NOT NULL
);
COMMENT ON TABLE {schema}.receipts IS 'Donations received, one row per receipt event (seq: its position in the log). donor_name is NULL for a hidden donor. No bank reference or its keyed hash is stored here, and no free-text note (an agency may have written a name into one). inspections: passed or failed inspections recorded against it.';

CREATE TABLE {schema}.transfers (
    transfer_id text PRIMARY KEY,
    event_id text NOT NULL,
    seq bigint NOT NULL,
    from_org_id text NOT NULL,
    to_org_id text NOT NULL,
    asset_id text NOT NULL,
    earmark_commune_code text,
    earmark_category text,
    quantity bigint NOT NULL,
    received bigint NOT NULL,
    lost bigint NOT NULL,
    state text NOT NULL,
    occurred_at timestamptz NOT NULL,
    value_vnd bigint NOT NULL,
    log_size bigint NOT NULL
);
COMMENT ON TABLE {schema}.transfers IS 'Transfers between organisations. state: in_transit, received, reversed; received and lost are 0 until confirmed.';

CREATE TABLE {schema}.deliveries (
    delivery_id text PRIMARY KEY,
    event_id text NOT NULL,
    seq bigint NOT NULL,
    org_id text NOT NULL,
    commune_code text NOT NULL,
    category text NOT NULL,
    asset_id text NOT NULL,
    quantity bigint NOT NULL,
    value_vnd bigint NOT NULL,
    earmark_commune_code text,
    earmark_category text,
    children_reached bigint NOT NULL,
    period text NOT NULL,
    reversed boolean NOT NULL,
    occurred_at timestamptz NOT NULL,
    beneficiary_count bigint NOT NULL,
    evidence_count bigint NOT NULL,
    log_size bigint NOT NULL
);
COMMENT ON TABLE {schema}.deliveries IS 'Aid delivered to children of a commune. period: YYYY-MM. Children appear only as counts (SPEC 7.5); beneficiary tokens and free-text notes are not stored here.';

CREATE TABLE {schema}.pledges (
    pledge_id text PRIMARY KEY,
    event_id text NOT NULL,
    seq bigint NOT NULL,
    donor_org_id text NOT NULL,
    donor_name text,
    recipient_org_id text NOT NULL,
    asset_id text NOT NULL,
    earmark_commune_code text,
    earmark_category text,
    quantity bigint NOT NULL,
    received bigint NOT NULL,
    due_date text,
    status text NOT NULL,
    value_vnd bigint NOT NULL,
    log_size bigint NOT NULL
);
COMMENT ON TABLE {schema}.pledges IS 'Pledges and what has been received against them. due_date: YYYY-MM-DD (Vietnam time). status: open, partly_received, fulfilled, cancelled, overdue.';

CREATE TABLE {schema}.balances (
    org_id text NOT NULL,
    asset_id text NOT NULL,
    earmark_commune_code text,
    earmark_category text,
    held bigint NOT NULL,
    held_value_vnd bigint NOT NULL,
    log_size bigint NOT NULL
);
COMMENT ON TABLE {schema}.balances IS 'What each organisation holds now, per asset and earmark (NULL earmark parts: not earmarked).';
"#,
)];

/// The tables a copy replaces, in the order they are written (besides
/// `export`, which says what they reflect).
pub const TABLES: [&str; 7] = [
    "organizations",
    "communes",
    "receipts",
    "transfers",
    "deliveries",
    "pledges",
    "balances",
];

/// Copies the read models every `config.interval` until `stop` completes.
/// A failed copy is logged, counted and tried again at the next interval
/// with a new connection: the database being away never stops the
/// projector.
pub async fn run(
    shared: Arc<Shared>,
    config: AnalyticsConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // What the copy in the database reflects: entries applied, and the size
    // of the checkpoint that covers them (it may arrive after the entries).
    let mut exported: Option<(u64, Option<u64>)> = None;
    let mut client: Option<Client> = None;
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let position = {
            let model = shared.read();
            let as_of = queries::as_of(&model);
            (as_of.size, as_of.checkpoint.map(|c| c.size))
        };
        if exported == Some(position) {
            continue;
        }
        let started = Instant::now();
        let result = async {
            if client.as_ref().is_none_or(Client::is_closed) {
                client = Some(connect(&config).await?);
            }
            let client = client.as_mut().expect("connected above");
            // Building every list takes the model's read lock for a while:
            // off the async workers, which serve queries meanwhile.
            let model = Arc::clone(&shared);
            let snapshot = tokio::task::spawn_blocking(move || Snapshot::take(&model))
                .await
                .context("taking the snapshot")?;
            write(client, &config.schema, &snapshot).await
        }
        .await;
        match result {
            Ok(written) => {
                exported = Some(position);
                metrics::gauge!("aidledger_analytics_exported_entries").set(written as f64);
                metrics::histogram!("aidledger_analytics_export_seconds")
                    .record(started.elapsed().as_secs_f64());
                tracing::debug!(size = written, elapsed = ?started.elapsed(), "read models copied to PostgreSQL");
            }
            Err(error) => {
                client = None;
                metrics::counter!("aidledger_analytics_export_failures_total").increment(1);
                tracing::warn!(
                    error = format!("{error:#}"),
                    "copying the read models to PostgreSQL failed; trying again at the next interval"
                );
            }
        }
    }
}

/// Checks what can be checked without the database: the schema name and
/// the URL. The database itself may be away at start; copies wait for it.
///
/// # Errors
///
/// The schema name is not a plain identifier, or the URL does not parse.
pub fn check(config: &AnalyticsConfig) -> anyhow::Result<()> {
    check_schema_name(&config.schema)?;
    config
        .url
        .parse::<tokio_postgres::Config>()
        .with_context(|| format!("{} is not a PostgreSQL URL", redacted(&config.url)))?;
    Ok(())
}

/// Connects and brings the schema to the latest layout.
///
/// # Errors
///
/// The schema name is not a plain identifier, the database cannot be
/// reached, or a migration fails.
pub async fn connect(config: &AnalyticsConfig) -> anyhow::Result<Client> {
    check_schema_name(&config.schema)?;
    let (mut client, connection) = tokio_postgres::connect(&config.url, NoTls)
        .await
        .with_context(|| format!("connecting to {}", redacted(&config.url)))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "analytics connection closed");
        }
    });
    migrate(&mut client, &config.schema).await?;
    Ok(client)
}

fn check_schema_name(schema: &str) -> anyhow::Result<()> {
    let mut chars = schema.chars();
    let plain = matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63;
    if !plain {
        bail!(
            "analytics schema {schema:?}: use lower-case letters, digits and '_' (at most 63), starting with a letter"
        );
    }
    Ok(())
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user_info = &url[scheme + 3..at];
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

async fn migrate(client: &mut Client, schema: &str) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    // One projector migrates at a time; the lock ends with the transaction.
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .with_context(|| format!("creating the schema {schema}"))?;
    let applied: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {schema}.migrations"),
            &[],
        )
        .await?
        .get(0);
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        tx.batch_execute(&sql.replace("{schema}", schema))
            .await
            .with_context(|| format!("migrating {schema} to version {version}"))?;
        tx.execute(
            &format!("INSERT INTO {schema}.migrations (version) VALUES ($1)"),
            &[version],
        )
        .await?;
    }
    tx.commit().await.context("committing the migrations")?;
    Ok(())
}

/// What one copy holds: the feed's answers at one position.
struct Snapshot {
    as_of: AsOf,
    origin: String,
    organizations: Vec<OrganizationView>,
    communes: Vec<CommuneSummary>,
    receipts: Vec<ReceiptView>,
    transfers: Vec<TransferView>,
    deliveries: Vec<DeliveryView>,
    pledges: Vec<PledgeView>,
    balances: Vec<Balance>,
}

impl Snapshot {
    /// Every list at once, under one read lock, so they agree.
    fn take(shared: &Shared) -> Snapshot {
        let model = shared.read();
        let all = || PageRequest::rest(None);
        Snapshot {
            as_of: queries::as_of(&model),
            origin: model.position.origin.clone(),
            organizations: queries::organizations(
                &model,
                &OrganizationsQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows,
            communes: queries::communes(&model, None, &all()).page.rows,
            receipts: queries::receipts(
                &model,
                &ReceiptsQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows,
            transfers: queries::transfers(
                &model,
                &TransfersQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows,
            deliveries: queries::deliveries(
                &model,
                &DeliveriesQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows,
            pledges: queries::pledges(
                &model,
                &PledgesQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows,
            balances: queries::balances(
                &model,
                &BalancesQuery {
                    page: all(),
                    ..Default::default()
                },
            )
            .page
            .rows,
        }
    }
}

/// Replaces the copy in the database with `snapshot`, in one transaction.
/// Returns the log size now in the database: the snapshot's, or a newer
/// one's that was already there.
async fn write(client: &mut Client, schema: &str, snapshot: &Snapshot) -> anyhow::Result<u64> {
    let size = snapshot.as_of.size;
    if snapshot.origin.is_empty() {
        // Nothing applied yet, not even the Genesis: no ledger to speak of.
        return Ok(0);
    }
    let tx = client.transaction().await?;
    // One copy at a time per schema, the very first included (before it
    // there is no export row to lock).
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])
        .await?;
    let current = tx
        .query_opt(
            &format!(
                "SELECT origin, log_size, checkpoint_size, checkpoint_root FROM {schema}.export"
            ),
            &[],
        )
        .await?;
    let checkpoint = snapshot.as_of.checkpoint.as_ref();
    let mut checkpoint_size = checkpoint
        .map(|c| bigint("checkpoint size", c.size))
        .transpose()?;
    let mut checkpoint_root = checkpoint.map(|c| hex::encode(c.root));
    if let Some(row) = current {
        let origin: String = row.get(0);
        let stored: i64 = row.get(1);
        let stored_checkpoint: Option<i64> = row.get(2);
        let stored_root: Option<String> = row.get(3);
        if origin != snapshot.origin {
            bail!(
                "{schema} holds the read models of the ledger {origin:?}, not of {:?}: name another schema",
                snapshot.origin
            );
        }
        if stored as u64 > size {
            return Ok(stored as u64);
        }
        if stored as u64 == size {
            // The same entries: only a newer checkpoint covering them is
            // news, and the rows need not be copied again for it.
            if checkpoint_size > stored_checkpoint {
                tx.execute(
                    &format!(
                        "UPDATE {schema}.export SET checkpoint_size = $1, checkpoint_root = $2, exported_at = now()"
                    ),
                    &[&checkpoint_size, &checkpoint_root],
                )
                .await?;
                tx.commit().await.context("committing the checkpoint")?;
            }
            return Ok(size);
        }
        // More entries, but the cited checkpoint never moves back: a
        // rebuilding projector may not have verified the newest one yet,
        // and the stored one is a prefix of the same log.
        if stored_checkpoint > checkpoint_size {
            checkpoint_size = stored_checkpoint;
            checkpoint_root = stored_root;
        }
    }
    let log_size = bigint("log size", size)?;
    for table in TABLES {
        tx.execute(&format!("DELETE FROM {schema}.{table}"), &[])
            .await?;
    }
    copy_organizations(&tx, schema, &snapshot.organizations, log_size).await?;
    copy_communes(&tx, schema, &snapshot.communes, log_size).await?;
    copy_receipts(&tx, schema, &snapshot.receipts, log_size).await?;
    copy_transfers(&tx, schema, &snapshot.transfers, log_size).await?;
    copy_deliveries(&tx, schema, &snapshot.deliveries, log_size).await?;
    copy_pledges(&tx, schema, &snapshot.pledges, log_size).await?;
    copy_balances(&tx, schema, &snapshot.balances, log_size).await?;
    tx.execute(
        &format!(
            "INSERT INTO {schema}.export (singleton, origin, log_size, head_leaf_hash, checkpoint_size, checkpoint_root, exported_at)
             VALUES (true, $1, $2, $3, $4, $5, now())
             ON CONFLICT (singleton) DO UPDATE SET origin = $1, log_size = $2, head_leaf_hash = $3,
                 checkpoint_size = $4, checkpoint_root = $5, exported_at = now()"
        ),
        &[
            &snapshot.origin,
            &log_size,
            &hex::encode(snapshot.as_of.head_leaf_hash),
            &checkpoint_size,
            &checkpoint_root,
        ],
    )
    .await?;
    tx.commit().await.context("committing the copy")?;
    Ok(size)
}

/// One binary `COPY` into `table`, one row per item.
async fn copy_rows<T>(
    tx: &Transaction<'_>,
    schema: &str,
    table: &str,
    columns: &[(&str, Type)],
    items: &[T],
    mut row: impl FnMut(&T) -> anyhow::Result<Vec<Box<dyn ToSql + Sync + Send>>>,
) -> anyhow::Result<()> {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let types: Vec<Type> = columns.iter().map(|(_, ty)| ty.clone()).collect();
    let sink = tx
        .copy_in(&format!(
            "COPY {schema}.{table} ({}) FROM STDIN BINARY",
            names.join(", ")
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    for item in items {
        let values = row(item)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect();
        writer
            .as_mut()
            .write(&refs)
            .await
            .with_context(|| format!("copying into {schema}.{table}"))?;
    }
    writer.finish().await?;
    Ok(())
}

type Values = Vec<Box<dyn ToSql + Sync + Send>>;

fn bigint(what: &str, value: u64) -> anyhow::Result<i64> {
    i64::try_from(value).with_context(|| format!("{what} {value} does not fit in a bigint"))
}

fn time(at: Timestamp) -> SystemTime {
    let nanos = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
    let since = Duration::from_nanos(u64::try_from(nanos.unsigned_abs()).unwrap_or(u64::MAX));
    if nanos >= 0 {
        SystemTime::UNIX_EPOCH + since
    } else {
        SystemTime::UNIX_EPOCH - since
    }
}

/// An enum's name in SQL: its wire name without the type's prefix, in lower
/// case (`CATEGORY_BOOKS_SUPPLIES` → `books_supplies`), so the proto stays
/// the one place names are spelled.
fn sql_name(wire_name: &str, prefix: &str) -> String {
    wire_name
        .strip_prefix(prefix)
        .unwrap_or(wire_name)
        .to_ascii_lowercase()
}

fn category(category: Category) -> String {
    let name = pb::Category::try_from(category.to_pb()).map_or("OTHER", |c| c.as_str_name());
    sql_name(name, "CATEGORY_")
}

fn org_kind(kind: OrgKind) -> String {
    let name = pb::OrgKind::try_from(kind.to_pb()).map_or("UNSPECIFIED", |k| k.as_str_name());
    sql_name(name, "ORG_KIND_")
}

fn transfer_state(state: TransferState) -> String {
    sql_name(
        crate::wire::transfer_state_pb(state).as_str_name(),
        "TRANSFER_STATE_",
    )
}

fn pledge_status(status: PledgeStatus) -> String {
    sql_name(
        crate::wire::pledge_status_pb(status).as_str_name(),
        "PLEDGE_STATUS_",
    )
}

fn earmark(earmark: &Earmark) -> (Option<String>, Option<String>) {
    (earmark.commune_code.clone(), earmark.category.map(category))
}

fn boxed<T: ToSql + Sync + Send + 'static>(value: T) -> Box<dyn ToSql + Sync + Send> {
    Box::new(value)
}

async fn copy_organizations(
    tx: &Transaction<'_>,
    schema: &str,
    rows: &[OrganizationView],
    log_size: i64,
) -> anyhow::Result<()> {
    let columns = [
        ("org_id", Type::TEXT),
        ("name", Type::TEXT),
        ("anonymous", Type::BOOL),
        ("kind", Type::TEXT),
        ("parent_org_id", Type::TEXT),
        ("commune_code", Type::TEXT),
        ("log_size", Type::INT8),
    ];
    copy_rows(tx, schema, "organizations", &columns, rows, |o| {
        Ok::<Values, anyhow::Error>(vec![
            boxed(o.org_id.clone()),
            boxed(o.name.clone()),
            boxed(o.anonymous),
            boxed(org_kind(o.kind)),
            boxed(o.parent_org_id.clone()),
            boxed(o.commune_code.clone()),
            boxed(log_size),
        ])
    })
    .await
}

async fn copy_communes(
    tx: &Transaction<'_>,
    schema: &str,
    rows: &[CommuneSummary],
    log_size: i64,
) -> anyhow::Result<()> {
    let columns = [
        ("commune_code", Type::TEXT),
        ("name", Type::TEXT),
        ("district", Type::TEXT),
        ("province", Type::TEXT),
        ("children_count", Type::INT8),
        ("needed_value_vnd", Type::INT8),
        ("delivered_value_vnd", Type::INT8),
        ("children_targeted", Type::INT8),
        ("children_reached", Type::INT8),
        ("deliveries", Type::INT8),
        ("log_size", Type::INT8),
    ];
    copy_rows(tx, schema, "communes", &columns, rows, |c| {
        Ok(vec![
            boxed(c.commune_code.clone()),
            boxed(c.name.clone()),
            boxed(c.district.clone()),
            boxed(c.province.clone()),
            boxed(i64::from(c.children_count)),
            boxed(bigint("needed value", c.needed_value_vnd)?),
            boxed(bigint("delivered value", c.delivered_value_vnd)?),
            boxed(i64::from(c.children_targeted)),
            boxed(i64::from(c.children_reached)),
            boxed(i64::from(c.deliveries)),
            boxed(log_size),
        ])
    })
    .await
}

async fn copy_receipts(
    tx: &Transaction<'_>,
    schema: &str,
    rows: &[ReceiptView],
    log_size: i64,
) -> anyhow::Result<()> {
    let columns = [
        ("receipt_id", Type::TEXT),
        ("event_id", Type::TEXT),
        ("seq", Type::INT8),
        ("recipient_org_id", Type::TEXT),
        ("donor_org_id", Type::TEXT),
        ("donor_name", Type::TEXT),
        ("donor_anonymous", Type::BOOL),
        ("pledge_id", Type::TEXT),
        ("asset_id", Type::TEXT),
        ("quantity", Type::INT8),
        ("value_vnd", Type::INT8),
        ("earmark_commune_code", Type::TEXT),
        ("earmark_category", Type::TEXT),
        ("reversed", Type::BOOL),
        ("occurred_at", Type::TIMESTAMPTZ),
        ("inspections", Type::INT8),
        ("log_size", Type::INT8),
    ];
    copy_rows(tx, schema, "receipts", &columns, rows, |r| {
        let (earmark_commune, earmark_category) = earmark(&r.earmark);
        Ok(vec![
            boxed(r.receipt_id.clone()),
            boxed(r.event_id.clone()),
            boxed(bigint("seq", r.seq)?),
            boxed(r.recipient_org_id.clone()),
            boxed(r.donor_org_id.clone()),
            boxed(r.donor_name.clone()),
            boxed(r.donor_anonymous),
            boxed(r.pledge_id.clone()),
            boxed(r.amount.asset_id.clone()),
            boxed(bigint("quantity", r.amount.quantity)?),
            boxed(bigint("value", r.amount.value_vnd)?),
            boxed(earmark_commune),
            boxed(earmark_category),
            boxed(r.reversed),
            boxed(time(r.occurred_at)),
            boxed(i64::try_from(r.inspections.len()).unwrap_or(i64::MAX)),
            boxed(log_size),
        ])
    })
    .await
}

async fn copy_transfers(
    tx: &Transaction<'_>,
    schema: &str,
    rows: &[TransferView],
    log_size: i64,
) -> anyhow::Result<()> {
    let columns = [
        ("transfer_id", Type::TEXT),
        ("event_id", Type::TEXT),
        ("seq", Type::INT8),
        ("from_org_id", Type::TEXT),
        ("to_org_id", Type::TEXT),
        ("asset_id", Type::TEXT),
        ("earmark_commune_code", Type::TEXT),
        ("earmark_category", Type::TEXT),
        ("quantity", Type::INT8),
        ("received", Type::INT8),
        ("lost", Type::INT8),
        ("state", Type::TEXT),
        ("occurred_at", Type::TIMESTAMPTZ),
        ("value_vnd", Type::INT8),
        ("log_size", Type::INT8),
    ];
    copy_rows(tx, schema, "transfers", &columns, rows, |t| {
        let (earmark_commune, earmark_category) = earmark(&t.earmark);
        Ok(vec![
            boxed(t.transfer_id.clone()),
            boxed(t.event_id.clone()),
            boxed(bigint("seq", t.seq)?),
            boxed(t.from_org_id.clone()),
            boxed(t.to_org_id.clone()),
            boxed(t.asset_id.clone()),
            boxed(earmark_commune),
            boxed(earmark_category),
            boxed(bigint("quantity", t.quantity)?),
            boxed(bigint("received", t.received)?),
            boxed(bigint("lost", t.lost)?),
            boxed(transfer_state(t.state)),
            boxed(time(t.occurred_at)),
            boxed(bigint("value", t.value_vnd)?),
            boxed(log_size),
        ])
    })
    .await
}

async fn copy_deliveries(
    tx: &Transaction<'_>,
    schema: &str,
    rows: &[DeliveryView],
    log_size: i64,
) -> anyhow::Result<()> {
    let columns = [
        ("delivery_id", Type::TEXT),
        ("event_id", Type::TEXT),
        ("seq", Type::INT8),
        ("org_id", Type::TEXT),
        ("commune_code", Type::TEXT),
        ("category", Type::TEXT),
        ("asset_id", Type::TEXT),
        ("quantity", Type::INT8),
        ("value_vnd", Type::INT8),
        ("earmark_commune_code", Type::TEXT),
        ("earmark_category", Type::TEXT),
        ("children_reached", Type::INT8),
        ("period", Type::TEXT),
        ("reversed", Type::BOOL),
        ("occurred_at", Type::TIMESTAMPTZ),
        ("beneficiary_count", Type::INT8),
        ("evidence_count", Type::INT8),
        ("log_size", Type::INT8),
    ];
    copy_rows(tx, schema, "deliveries", &columns, rows, |d| {
        let (earmark_commune, earmark_category) = earmark(&d.earmark);
        Ok(vec![
            boxed(d.delivery_id.clone()),
            boxed(d.event_id.clone()),
            boxed(bigint("seq", d.seq)?),
            boxed(d.org_id.clone()),
            boxed(d.commune_code.clone()),
            boxed(category(d.category)),
            boxed(d.amount.asset_id.clone()),
            boxed(bigint("quantity", d.amount.quantity)?),
            boxed(bigint("value", d.amount.value_vnd)?),
            boxed(earmark_commune),
            boxed(earmark_category),
            boxed(i64::from(d.children_reached)),
            boxed(d.period.clone()),
            boxed(d.reversed),
            boxed(time(d.occurred_at)),
            boxed(i64::from(d.beneficiary_count)),
            boxed(i64::from(d.evidence_count)),
            boxed(log_size),
        ])
    })
    .await
}

async fn copy_pledges(
    tx: &Transaction<'_>,
    schema: &str,
    rows: &[PledgeView],
    log_size: i64,
) -> anyhow::Result<()> {
    let columns = [
        ("pledge_id", Type::TEXT),
        ("event_id", Type::TEXT),
        ("seq", Type::INT8),
        ("donor_org_id", Type::TEXT),
        ("donor_name", Type::TEXT),
        ("recipient_org_id", Type::TEXT),
        ("asset_id", Type::TEXT),
        ("earmark_commune_code", Type::TEXT),
        ("earmark_category", Type::TEXT),
        ("quantity", Type::INT8),
        ("received", Type::INT8),
        ("due_date", Type::TEXT),
        ("status", Type::TEXT),
        ("value_vnd", Type::INT8),
        ("log_size", Type::INT8),
    ];
    copy_rows(tx, schema, "pledges", &columns, rows, |p| {
        let (earmark_commune, earmark_category) = earmark(&p.earmark);
        Ok(vec![
            boxed(p.pledge_id.clone()),
            boxed(p.event_id.clone()),
            boxed(bigint("seq", p.seq)?),
            boxed(p.donor_org_id.clone()),
            boxed(p.donor_name.clone()),
            boxed(p.recipient_org_id.clone()),
            boxed(p.asset_id.clone()),
            boxed(earmark_commune),
            boxed(earmark_category),
            boxed(bigint("quantity", p.quantity)?),
            boxed(bigint("received", p.received)?),
            boxed(p.due_date.clone()),
            boxed(pledge_status(p.status)),
            boxed(bigint("value", p.value_vnd)?),
            boxed(log_size),
        ])
    })
    .await
}

async fn copy_balances(
    tx: &Transaction<'_>,
    schema: &str,
    rows: &[Balance],
    log_size: i64,
) -> anyhow::Result<()> {
    let columns = [
        ("org_id", Type::TEXT),
        ("asset_id", Type::TEXT),
        ("earmark_commune_code", Type::TEXT),
        ("earmark_category", Type::TEXT),
        ("held", Type::INT8),
        ("held_value_vnd", Type::INT8),
        ("log_size", Type::INT8),
    ];
    copy_rows(tx, schema, "balances", &columns, rows, |b| {
        let (earmark_commune, earmark_category) = earmark(&b.earmark);
        Ok(vec![
            boxed(b.org_id.clone()),
            boxed(b.asset_id.clone()),
            boxed(earmark_commune),
            boxed(earmark_category),
            boxed(bigint("held", b.held)?),
            boxed(bigint("held value", b.held_value_vnd)?),
            boxed(log_size),
        ])
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema_name("aidledger_public").is_ok());
        assert!(check_schema_name("p2025").is_ok());
        for bad in [
            "",
            "Public",
            "2025",
            "a-b",
            "a;drop",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_lose_their_password_in_messages() {
        assert_eq!(
            redacted("postgres://analyst:s3cret@db:5432/aid"),
            "postgres://analyst@db:5432/aid"
        );
        assert_eq!(redacted("postgres://db/aid"), "postgres://db/aid");
    }

    #[test]
    fn enum_names_come_from_the_wire_names() {
        assert_eq!(category(Category::BooksSupplies), "books_supplies");
        assert_eq!(org_kind(OrgKind::DonorIndividual), "donor_individual");
        assert_eq!(transfer_state(TransferState::InTransit), "in_transit");
        assert_eq!(
            pledge_status(PledgeStatus::PartlyReceived),
            "partly_received"
        );
    }

    #[test]
    fn times_before_and_after_the_epoch() {
        let after = time(Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        });
        assert_eq!(
            after.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::new(1_700_000_000, 5)
        );
        // Protobuf's form: seconds rounded down, nanos forward from there.
        let before = time(Timestamp {
            seconds: -10,
            nanos: 250_000_000,
        });
        assert_eq!(
            SystemTime::UNIX_EPOCH.duration_since(before).unwrap(),
            Duration::from_millis(9_750)
        );
    }
}
