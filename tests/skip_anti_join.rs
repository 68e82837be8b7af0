//! PostgreSQL's skip mode writes a chunk of 64 rows or more without a conflict clause: an anti-join
//! leaves out the rows whose key is stored, under a savepoint, and a duplicate-key error (a key
//! stored concurrently) rolls the savepoint back and writes the chunk with `ON CONFLICT (key) DO
//! NOTHING` instead. These are the races that decide it, each forced step by step the way
//! PostgreSQL's own isolation specs force them (another transaction holds a key uncommitted; the
//! bulk call is seen waiting on it in `pg_locks`; the other transaction then commits or rolls back),
//! with the statements the library sent captured from its `model_runtime::sql` events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use model_integration::{Options, TestDb, run_scenario};
use model_runtime::Key;
use model_runtime::{BulkInsert, BulkReport, Model, RowOutcome, Schema};
use sqlx::{Connection, Executor, Postgres};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "aj_products")]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    #[model(max_length = 100)]
    name: String,
    price: i64,
}

/// A case-insensitive key: the anti-join's `=` would not find what its index finds.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "aj_handles")]
struct Handle {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(case_insensitive)]
    #[model(max_length = 40)]
    handle: String,
}

/// A table named like the anti-join's alias for the incoming rows once was (`v`): inside the
/// subquery the table hid the alias, the key was compared with itself, and every row was skipped
/// (found by review).
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "v")]
struct V {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    k: String,
}

async fn a_table_named_v(db: TestDb<Postgres>) {
    let _serial = SERIAL.lock().await;
    Schema::new().model::<V>().create(&db.pool).await.unwrap();
    let row = |n: usize| V {
        id: 0,
        k: format!("k{n}"),
    };
    BulkInsert::<V>::new()
        .run(&db.pool, (0..10).map(row))
        .await
        .unwrap();
    start();
    let report = BulkInsert::<V>::new()
        .counts_only()
        .skip_conflicts::<VByK>()
        .run(&db.pool, (0..100).map(row))
        .await
        .unwrap();
    assert_eq!(sent().anti_joins, 1);
    assert_eq!((report.inserted, report.skipped_existing), (90, 10));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM v")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 100);
}

/// The SQL of every statement the library sent, in order.
fn statements() -> &'static Arc<Mutex<Vec<String>>> {
    model_integration::captured_statements()
}

/// The scenarios share the capture: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the captured statements of one call did.
#[derive(Debug, Default, PartialEq)]
struct Sent {
    /// Inserts by anti-join (`NOT EXISTS`, no conflict clause).
    anti_joins: usize,
    /// Inserts with `ON CONFLICT … DO NOTHING`.
    on_conflict: usize,
    /// The anti-join's savepoint rolled back after a duplicate-key error.
    rolled_back: usize,
}

/// Clears the capture.
fn start() {
    statements().lock().unwrap().clear();
}

/// What was sent since [`start`].
fn sent() -> Sent {
    let statements = statements().lock().unwrap();
    let mut sent = Sent::default();
    for sql in statements.iter() {
        if sql.starts_with("INSERT") && sql.contains("NOT EXISTS") {
            assert!(!sql.contains("ON CONFLICT"), "{sql}");
            sent.anti_joins += 1;
        }
        if sql.starts_with("INSERT") && sql.contains("DO NOTHING") {
            sent.on_conflict += 1;
        }
        if sql == "ROLLBACK TO SAVEPOINT model_runtime_skip" {
            sent.rolled_back += 1;
        }
    }
    sent
}

fn product(n: usize, tag: &str) -> Product {
    Product {
        id: 0,
        sku: format!("P-{n:04}"),
        name: format!("{tag} {n}"),
        price: n as i64,
    }
}

async fn create(db: &TestDb<Postgres>, stored: usize) {
    Schema::new()
        .model::<Product>()
        .model::<Handle>()
        .create(&db.pool)
        .await
        .unwrap();
    BulkInsert::<Product>::new()
        .run(&db.pool, (0..stored).map(|n| product(n, "stored")))
        .await
        .unwrap();
}

/// The id the next insert gets, less one: what the sequence has handed out so far.
async fn ids_handed_out(db: &TestDb<Postgres>) -> i64 {
    let probe = product(9_999, "probe").insert(&db.pool).await.unwrap();
    sqlx::query("DELETE FROM aj_products WHERE id = $1")
        .bind(probe.id)
        .execute(&db.pool)
        .await
        .unwrap();
    probe.id
}

/// Waits until some session of this database waits for a lock (the bulk call, on the other
/// transaction's uncommitted key).
async fn until_a_session_waits(db: &TestDb<Postgres>) {
    for _ in 0..1000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the bulk call never waited for the other transaction's key");
}

/// 100 stored rows and 100 new ones, in one chunk: no conflict clause is sent, no sequence value
/// is drawn for the stored rows, and every report (counts, per row, get_or_create) is exact.
async fn stored_rows_left_out(db: TestDb<Postgres>) {
    let _serial = SERIAL.lock().await;
    create(&db, 100).await;
    let input: Vec<Product> = (0..200).map(|n| product(n, "incoming")).collect();
    let before = ids_handed_out(&db).await;

    start();
    let mut tx = db.pool.begin().await.unwrap();
    let report = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .run(&mut *tx, input.clone())
        .await
        .unwrap();
    assert_eq!(
        sent(),
        Sent {
            anti_joins: 1,
            ..Sent::default()
        }
    );
    assert_eq!((report.inserted, report.skipped_existing), (100, 100));
    let rows = report.rows.as_ref().unwrap();
    for (n, outcome) in rows.iter().enumerate() {
        match outcome {
            RowOutcome::SkippedExisting if n < 100 => {}
            RowOutcome::Inserted(id) if n >= 100 => {
                let stored = Product::by_sku(input[n].sku.as_str())
                    .get(&mut *tx)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!((stored.id, &stored.name), (*id, &input[n].name));
            }
            other => panic!("row {n}: {other:?}"),
        }
    }
    tx.rollback().await.unwrap();
    // Every id drawn went to a new row (the rolled-back ones included): none to a stored row.
    assert_eq!(ids_handed_out(&db).await - before, 100 + 1);

    // Counts only, then get_or_create: the stored rows' ids are found.
    start();
    let counts = BulkInsert::<Product>::new()
        .counts_only()
        .skip_conflicts::<ProductBySku>()
        .run(&db.pool, input.clone())
        .await
        .unwrap();
    assert_eq!((counts.inserted, counts.skipped_existing), (100, 100));
    assert_eq!(sent().anti_joins, 1);
    let more: Vec<Product> = (150..250).map(|n| product(n, "again")).collect();
    start();
    let found = BulkInsert::<Product>::new()
        .get_or_create::<ProductBySku>()
        .run(&db.pool, more.clone())
        .await
        .unwrap();
    assert_eq!(sent().anti_joins, 1);
    assert_eq!((found.inserted, found.skipped_existing), (50, 50));
    for (row, id) in more.iter().zip(found.primary_keys().unwrap()) {
        let stored = Product::by_sku(row.sku.as_str())
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Some(stored.id), id, "{}", row.sku);
    }
    assert_eq!(model_integration_count(&db).await, 250);
}

async fn model_integration_count(db: &TestDb<Postgres>) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM aj_products")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// Another transaction holds one of the chunk's new keys uncommitted. The anti-join does not see
/// it, the insert waits for it; then the other transaction commits (the insert fails on the key,
/// the savepoint is rolled back and `ON CONFLICT` skips that row) or rolls back (the insert goes
/// through, no second statement). Per-row report, counts only and get_or_create.
async fn concurrent_inserter(db: TestDb<Postgres>, commits: bool, how: How) {
    let _serial = SERIAL.lock().await;
    create(&db, 50).await;
    let input: Vec<Product> = (0..150).map(|n| product(n, "incoming")).collect();
    let raced = &input[120];
    let mut other = sqlx::PgConnection::connect_with(&db.pool.connect_options())
        .await
        .unwrap();
    let mut other_tx = other.begin().await.unwrap();
    let rival = Product {
        name: "the other transaction's".into(),
        ..raced.clone()
    }
    .insert(&mut *other_tx)
    .await
    .unwrap();

    start();
    let call = {
        let (pool, input) = (db.pool.clone(), input.clone());
        tokio::spawn(async move {
            let bulk = BulkInsert::<Product>::new();
            match how {
                How::PerRow => {
                    bulk.skip_conflicts::<ProductBySku>()
                        .run(&pool, input)
                        .await
                }
                How::CountsOnly => {
                    bulk.counts_only()
                        .skip_conflicts::<ProductBySku>()
                        .run(&pool, input)
                        .await
                }
                How::GetOrCreate => bulk.get_or_create::<ProductBySku>().run(&pool, input).await,
            }
        })
    };
    until_a_session_waits(&db).await;
    if commits {
        other_tx.commit().await.unwrap();
    } else {
        other_tx.rollback().await.unwrap();
    }
    let report: BulkReport<i64> = call.await.unwrap().unwrap();
    let sent = sent();
    assert_eq!(sent.anti_joins, 1, "{how:?}: {sent:?}");
    let stored = Product::by_sku(raced.sku.as_str())
        .get(&db.pool)
        .await
        .unwrap()
        .unwrap();
    if commits {
        assert_eq!(
            (sent.rolled_back, sent.on_conflict),
            (1, 1),
            "{how:?}: the chunk is written again with ON CONFLICT"
        );
        assert_eq!((report.inserted, report.skipped_existing), (99, 51));
        assert_eq!(stored, rival, "{how:?}: the other transaction's row stands");
    } else {
        assert_eq!((sent.rolled_back, sent.on_conflict), (0, 0), "{how:?}");
        assert_eq!((report.inserted, report.skipped_existing), (100, 50));
        assert_eq!(stored.name, raced.name, "{how:?}: the call's row is stored");
    }
    if let Some(rows) = &report.rows {
        let expected = match (how, commits) {
            (How::GetOrCreate, true) => RowOutcome::Found(rival.id),
            (_, true) => RowOutcome::SkippedExisting,
            (_, false) => RowOutcome::Inserted(stored.id),
        };
        assert_eq!(rows[120], expected, "{how:?}");
        for (n, row) in input.iter().enumerate().filter(|(n, _)| *n != 120) {
            let stored = Product::by_sku(row.sku.as_str())
                .get(&db.pool)
                .await
                .unwrap()
                .unwrap();
            let expected = match (n < 50, how) {
                (true, How::GetOrCreate) => RowOutcome::Found(stored.id),
                (true, _) => RowOutcome::SkippedExisting,
                (false, _) => RowOutcome::Inserted(stored.id),
            };
            assert_eq!(rows[n], expected, "{how:?}: row {n}");
            let tag = if n < 50 { "stored" } else { "incoming" };
            assert_eq!(stored.name, format!("{tag} {n}"), "{how:?}: row {n}");
        }
    }
    assert_eq!(model_integration_count(&db).await, 150);
}

#[derive(Debug, Clone, Copy)]
enum How {
    PerRow,
    CountsOnly,
    GetOrCreate,
}

/// The caller's REPEATABLE READ transaction: no anti-join (it would read the transaction's old
/// snapshot), only `ON CONFLICT`, which sees what other transactions did since.
///
/// - Another transaction stored one of the new keys after the snapshot: a serialization failure,
///   which the caller runs its transaction again on; the second run skips the row.
/// - Another transaction deleted a stored key after the snapshot (found by an independent test
///   of the first anti-join, which skipped the key, and whose get_or_create returned the deleted
///   row's id): get_or_create inserts the row, and its id is the stored row's after commit.
async fn repeatable_read_snapshot(db: TestDb<Postgres>) {
    let _serial = SERIAL.lock().await;
    create(&db, 0).await;
    let input: Vec<Product> = (0..100).map(|n| product(n, "incoming")).collect();
    let begin_repeatable_read = async || {
        let mut tx = db.pool.begin().await.unwrap();
        tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .await
            .unwrap();
        // The snapshot.
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM aj_products")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx
    };
    let mut attempts = 0;
    let report = loop {
        attempts += 1;
        let mut tx = begin_repeatable_read().await;
        if attempts == 1 {
            product(70, "rival").insert(&db.pool).await.unwrap();
        }
        start();
        let result = BulkInsert::<Product>::new()
            .counts_only()
            .skip_conflicts::<ProductBySku>()
            .run(&mut *tx, input.clone())
            .await;
        assert_eq!(
            sent(),
            Sent {
                on_conflict: 1,
                ..Sent::default()
            }
        );
        match result {
            Ok(report) => {
                tx.commit().await.unwrap();
                break report;
            }
            Err(error) => {
                assert!(error.is_retryable(), "{error}");
                tx.rollback().await.unwrap();
            }
        }
    };
    assert_eq!(attempts, 2);
    assert_eq!((report.inserted, report.skipped_existing), (99, 1));
    assert_eq!(
        Product::by_sku("P-0070")
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap()
            .name,
        "rival 70"
    );

    // A stored key deleted after the snapshot.
    let mut tx = begin_repeatable_read().await;
    let deleted = Product::by_sku("P-0005")
        .get(&db.pool)
        .await
        .unwrap()
        .unwrap();
    sqlx::query("DELETE FROM aj_products WHERE id = $1")
        .bind(deleted.id)
        .execute(&db.pool)
        .await
        .unwrap();
    start();
    let report = BulkInsert::<Product>::new()
        .get_or_create::<ProductBySku>()
        .run(&mut *tx, input.clone())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(sent().anti_joins, 0);
    assert_eq!((report.inserted, report.skipped_existing), (1, 99));
    let ids = report.primary_keys().unwrap();
    let stored = Product::by_sku("P-0005")
        .get(&db.pool)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(stored.id, deleted.id);
    assert_eq!(ids[5], Some(stored.id), "the id of the row stored now");
    assert_eq!(report.rows.unwrap()[5], RowOutcome::Inserted(stored.id));
}

/// A row that breaks another unique index (not the conflict key): the anti-join's duplicate-key
/// error is not swallowed by the second statement, which fails on the same index; the call fails,
/// names that index, and keeps nothing.
async fn other_constraint_still_fails(db: TestDb<Postgres>) {
    let _serial = SERIAL.lock().await;
    create(&db, 10).await;
    sqlx::query("CREATE UNIQUE INDEX aj_products_name ON aj_products (name)")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut input: Vec<Product> = (0..100).map(|n| product(n, "incoming")).collect();
    input[80].name = "stored 3".into();
    start();
    let error = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .run(&db.pool, input)
        .await
        .unwrap_err();
    let violation = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error}"));
    assert_eq!(violation.constraint(), "aj_products_name", "{error}");
    assert_eq!(
        sent(),
        Sent {
            anti_joins: 1,
            on_conflict: 1,
            rolled_back: 1
        }
    );
    assert_eq!(model_integration_count(&db).await, 10);
}

/// Small chunks and keys whose `=` is not the index's meaning go straight to `ON CONFLICT`; past 32
/// chunks in one transaction the savepoints stop (PostgreSQL keeps 64 subtransaction ids per
/// transaction in shared memory), while each chunk committed on its own keeps its own.
async fn where_the_anti_join_applies(db: TestDb<Postgres>) {
    let _serial = SERIAL.lock().await;
    create(&db, 0).await;
    start();
    let mut tx = db.pool.begin().await.unwrap();
    BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .run(&mut *tx, (0..63).map(|n| product(n, "small")))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        sent(),
        Sent {
            on_conflict: 1,
            ..Sent::default()
        },
        "63 rows"
    );
    // Too small for the anti-join: the caller's isolation level is not asked either.
    let asked = statements()
        .lock()
        .unwrap()
        .iter()
        .filter(|sql| sql.contains("transaction_isolation"))
        .count();
    assert_eq!(asked, 0, "63 rows in the caller's transaction");

    start();
    let handles = (0..100).map(|n| Handle {
        id: 0,
        handle: format!("h{n}"),
    });
    BulkInsert::<Handle>::new()
        .skip_conflicts::<HandleByHandle>()
        .run(&db.pool, handles)
        .await
        .unwrap();
    let upper = (0..100).map(|n| Handle {
        id: 0,
        handle: format!("H{n}"),
    });
    let report = BulkInsert::<Handle>::new()
        .counts_only()
        .skip_conflicts::<HandleByHandle>()
        .run(&db.pool, upper)
        .await
        .unwrap();
    assert_eq!((report.inserted, report.skipped_existing), (0, 100));
    assert_eq!(
        sent(),
        Sent {
            on_conflict: 2,
            ..Sent::default()
        },
        "case-insensitive key"
    );

    start();
    let report = BulkInsert::<Product>::new()
        .counts_only()
        .batch_size(64)
        .skip_conflicts::<ProductBySku>()
        .run(&db.pool, (1000..1000 + 40 * 64).map(|n| product(n, "many")))
        .await
        .unwrap();
    assert_eq!((report.inserted, report.chunks), (40 * 64, 40));
    assert_eq!(
        sent(),
        Sent {
            anti_joins: 32,
            on_conflict: 8,
            rolled_back: 0
        },
        "one transaction of 40 chunks"
    );

    start();
    let report = BulkInsert::<Product>::new()
        .counts_only()
        .batch_size(64)
        .commit_each_chunk()
        .skip_conflicts::<ProductBySku>()
        .run(&db.pool, (5000..5000 + 40 * 64).map(|n| product(n, "each")))
        .await
        .unwrap();
    assert_eq!(report.inserted, 40 * 64);
    assert_eq!(
        sent(),
        Sent {
            anti_joins: 40,
            ..Sent::default()
        },
        "40 chunks committed each on its own"
    );
}

macro_rules! postgres_tests {
    ($($name:ident => $body:expr;)*) => {$(
        #[tokio::test]
        #[cfg_attr(
            skip_postgres,
            ignore = "PostgreSQL: set TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run"
        )]
        async fn $name() {
            run_scenario::<Postgres, _>(
                concat!("skip_anti_join::", stringify!($name)),
                Options::default(),
                $body,
            )
            .await;
        }
    )*};
}

postgres_tests! {
    a_table_named_like_the_alias_of_the_incoming_rows => a_table_named_v;
    stored_rows_are_left_out_without_a_conflict_clause => stored_rows_left_out;
    concurrent_insert_committed_per_row => |db| concurrent_inserter(db, true, How::PerRow);
    concurrent_insert_committed_counts_only => |db| concurrent_inserter(db, true, How::CountsOnly);
    concurrent_insert_committed_get_or_create => |db| concurrent_inserter(db, true, How::GetOrCreate);
    concurrent_insert_rolled_back_per_row => |db| concurrent_inserter(db, false, How::PerRow);
    concurrent_insert_rolled_back_get_or_create => |db| concurrent_inserter(db, false, How::GetOrCreate);
    repeatable_read_snapshot_older_than_a_stored_key => repeatable_read_snapshot;
    another_unique_index_still_fails_the_call => other_constraint_still_fails;
    small_chunks_folded_keys_and_the_savepoint_cap => where_the_anti_join_applies;
}
