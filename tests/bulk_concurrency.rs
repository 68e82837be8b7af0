//! Bulk calls at the same time over overlapping keys, on every backend: each chunk's rows are written
//! in one key order, so the calls wait for each other instead of deadlocking; every key is inserted
//! once, and every call's report adds up.

use std::collections::BTreeSet;

use model_integration::{Options, Rng, TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{BulkInsert, BulkReport, Error, Isolation, Model, Schema};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "products")]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    #[model(max_length = 100)]
    product_name: String,
    price_cents: i64,
}

/// Concurrent calls.
const TASKS: usize = 10;
/// Keys in all; the first half are stored before the calls.
const KEYS: u64 = 300;
/// Keys per call, drawn from all of them and shuffled.
const PER_CALL: usize = 200;

fn keys_of(task: usize) -> Vec<u64> {
    let mut rng = Rng(0x51_7cc1_b727_220a ^ (task as u64 + 1).wrapping_mul(0x9e37_79b9));
    let mut keys: Vec<u64> = (0..KEYS).collect();
    for i in (1..keys.len()).rev() {
        keys.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    keys.truncate(PER_CALL);
    keys
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Skip,
    Update,
}

/// One call. Inside the caller's transaction the library cannot restart a chunk, and MariaDB reads
/// and writes a chunk again within the transaction after a concurrent insert: there skip mode runs
/// counts-only, the path that reports no rows and must still recognise that duplicate.
async fn call<'c>(
    conn: impl model_runtime::Conn<'c>,
    mode: Mode,
    rows: Vec<Product>,
) -> Result<BulkReport<i64>, Error> {
    let bulk = BulkInsert::<Product>::new();
    match mode {
        Mode::Skip => bulk.skip_conflicts::<ProductBySku>().run(conn, rows).await,
        Mode::Update => {
            bulk.update_conflicts::<ProductBySku>(&[ProductField::PriceCents])
                .run(conn, rows)
                .await
        }
    }
}

/// A deadlock (PostgreSQL 40P01, MySQL 1213), as opposed to another retryable error.
fn is_deadlock(error: &Error) -> bool {
    let Some(db) = error.as_database_error() else {
        return false;
    };
    let code = db.code();
    matches!(code.as_deref(), Some("40P01")) || db.message().contains("Deadlock found")
}

/// The scenarios read the server's deadlock counter before and after: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where the server may still report deadlocks; everywhere else (PostgreSQL, SQLite, MariaDB in the
/// library's own transaction or the caller's READ COMMITTED one, MariaDB's update mode) the calls
/// must not deadlock at all.
///
/// MariaDB's skip mode inside the caller's REPEATABLE READ transaction: the locking read of a
/// chunk's keys also locks the gaps where absent keys would go (the library cannot change the
/// caller's isolation level), and concurrent inserts into those gaps can deadlock. The read is
/// exclusive there, so that calls over the same stored keys queue; with all keys new there is
/// nothing to queue on. Seen here: 0 to 7 deadlocks per run of 10 calls over 300 contended new
/// keys, returned as retryable errors that the caller runs again. Tolerated here, reported, and
/// written down in the note: a finding, not a guarantee.
fn deadlocks_allowed<DB: TestBackend>(
    mode: Mode,
    in_caller_tx: bool,
    isolation: Isolation,
) -> bool {
    DB::DIALECT == model_runtime::Dialect::MySql
        && mode == Mode::Skip
        && in_caller_tx
        && isolation == Isolation::RepeatableRead
}

async fn overlapping_calls<DB: TestBackend>(
    db: TestDb<DB>,
    mode: Mode,
    in_caller_tx: bool,
    all_new: bool,
    isolation: Isolation,
) {
    let allow_deadlocks = deadlocks_allowed::<DB>(mode, in_caller_tx, isolation);
    let _serial = SERIAL.lock().await;
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    // Keys below `stored_below` are stored before the calls.
    let stored_below = if all_new { 0 } else { KEYS / 2 };
    let stored: Vec<Product> = (0..stored_below)
        .map(|k| Product {
            id: 0,
            sku: format!("K{k}"),
            product_name: format!("stored {k}"),
            price_cents: -1,
        })
        .collect();
    BulkInsert::<Product>::new()
        .run(&db.pool, stored)
        .await
        .unwrap();
    let deadlocks_before = DB::deadlocks().await;

    let start = tokio::sync::Barrier::new(TASKS);
    let calls = (0..TASKS).map(|task| {
        let (pool, start) = (&db.pool, &start);
        async move {
            let rows: Vec<Product> = keys_of(task)
                .into_iter()
                .map(|k| Product {
                    id: 0,
                    sku: format!("K{k}"),
                    product_name: format!("task {task} key {k}"),
                    price_cents: (task as i64) * 1000 + k as i64,
                })
                .collect();
            start.wait().await;
            let mut serialization_failures = 0;
            let report: Result<BulkReport<i64>, Error> = if in_caller_tx {
                // The library does not retry inside the caller's transaction: a deadlock surfaces
                // as this call's error. A serialization failure (PostgreSQL REPEATABLE READ meeting
                // a concurrent insert) is the documented answer there; the caller runs its
                // transaction again, as here.
                loop {
                    let mut tx = pool.begin().await.unwrap();
                    let report = match mode {
                        Mode::Skip => {
                            BulkInsert::<Product>::new()
                                .counts_only()
                                .skip_conflicts::<ProductBySku>()
                                .run(&mut tx, rows.clone())
                                .await
                        }
                        Mode::Update => call(&mut tx, mode, rows.clone()).await,
                    };
                    match report {
                        Ok(report) => {
                            tx.commit().await.unwrap();
                            break Ok(report);
                        }
                        Err(error)
                            if error.is_retryable()
                                && (allow_deadlocks || !is_deadlock(&error)) =>
                        {
                            // After a deadlock MariaDB has rolled back the whole transaction, the
                            // bulk call's savepoint with it; sqlx's queued `ROLLBACK TO SAVEPOINT`
                            // for that savepoint then fails (1305), and reports so here.
                            let rolled_back = tx.rollback().await;
                            assert!(rolled_back.is_ok() || allow_deadlocks, "{rolled_back:?}");
                            serialization_failures += 1;
                        }
                        Err(error) => break Err(error),
                    }
                }
            } else {
                call(pool, mode, rows).await
            };
            (task, report, serialization_failures)
        }
    });
    let reports = futures_util::future::join_all(calls).await;

    let mut inserted = 0;
    let retried: usize = reports.iter().map(|r| r.2).sum();
    for (task, report, _) in &reports {
        let report = report
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: call {task} failed: {e}", DB::DIALECT));
        assert_eq!(
            report.inserted + report.updated + report.skipped_existing,
            PER_CALL as u64,
            "call {task}: {report:?}"
        );
        assert_eq!(report.skipped_in_input, 0);
        match mode {
            Mode::Skip => assert_eq!(report.updated, 0),
            Mode::Update => assert_eq!(report.skipped_existing, 0),
        }
        inserted += report.inserted;
    }
    let all: BTreeSet<u64> = (0..TASKS).flat_map(keys_of).collect();
    let new_keys = all.iter().filter(|&&k| k >= stored_below).count() as u64;
    assert_eq!(
        inserted, new_keys,
        "every new key is inserted by exactly one call"
    );
    let count = DB::count(&db.pool, "products").await;
    assert_eq!(count, (stored_below + new_keys) as i64);
    // Every stored value is one that a call wrote for that key (or the original, when skipping).
    for &k in &all {
        let row = Product::by_sku(format!("K{k}").as_str())
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap();
        let writers: Vec<i64> = (0..TASKS)
            .filter(|&t| keys_of(t).contains(&k))
            .map(|t| t as i64 * 1000 + k as i64)
            .collect();
        let ok = match mode {
            Mode::Skip if k < stored_below => row.price_cents == -1,
            _ => writers.contains(&row.price_cents),
        };
        assert!(ok, "key {k}: {row:?}, written by {writers:?}");
    }
    db.pool.close().await;
    let deadlocks = DB::deadlocks().await - deadlocks_before;
    model_integration::report(&format!(
        "{} {isolation:?} overlapping {mode:?} calls ({}, {}): {TASKS} calls, {inserted} keys inserted, {retried} caller retries after a serialization failure, {deadlocks} deadlocks reported by the server",
        DB::DIALECT,
        if in_caller_tx {
            "caller's transactions"
        } else {
            "own transactions"
        },
        if all_new {
            "all keys new"
        } else {
            "half the keys stored"
        }
    ));
    if !allow_deadlocks {
        assert_eq!(deadlocks, 0, "the server reported deadlocks");
    }
}

async fn skip_new_keys_own_transaction<DB: TestBackend>(db: TestDb<DB>, isolation: Isolation) {
    overlapping_calls(db, Mode::Skip, false, true, isolation).await
}
async fn skip_new_keys_caller_transaction<DB: TestBackend>(db: TestDb<DB>, isolation: Isolation) {
    overlapping_calls(db, Mode::Skip, true, true, isolation).await
}
async fn skip_calls_own_transaction<DB: TestBackend>(db: TestDb<DB>, isolation: Isolation) {
    overlapping_calls(db, Mode::Skip, false, false, isolation).await
}
async fn update_calls_own_transaction<DB: TestBackend>(db: TestDb<DB>, isolation: Isolation) {
    overlapping_calls(db, Mode::Update, false, false, isolation).await
}
async fn skip_calls_caller_transaction<DB: TestBackend>(db: TestDb<DB>, isolation: Isolation) {
    overlapping_calls(db, Mode::Skip, true, false, isolation).await
}
async fn update_calls_caller_transaction<DB: TestBackend>(db: TestDb<DB>, isolation: Isolation) {
    overlapping_calls(db, Mode::Update, true, false, isolation).await
}

macro_rules! at_isolation {
    ($module:ident, $isolation:ident) => {
        mod $module {
            use super::*;

            async fn skip_new_keys_own_transaction<DB: TestBackend>(db: TestDb<DB>) {
                super::skip_new_keys_own_transaction(db, Isolation::$isolation).await
            }
            async fn skip_new_keys_caller_transaction<DB: TestBackend>(db: TestDb<DB>) {
                super::skip_new_keys_caller_transaction(db, Isolation::$isolation).await
            }
            async fn skip_calls_own_transaction<DB: TestBackend>(db: TestDb<DB>) {
                super::skip_calls_own_transaction(db, Isolation::$isolation).await
            }
            async fn update_calls_own_transaction<DB: TestBackend>(db: TestDb<DB>) {
                super::update_calls_own_transaction(db, Isolation::$isolation).await
            }
            async fn skip_calls_caller_transaction<DB: TestBackend>(db: TestDb<DB>) {
                super::skip_calls_caller_transaction(db, Isolation::$isolation).await
            }
            async fn update_calls_caller_transaction<DB: TestBackend>(db: TestDb<DB>) {
                super::update_calls_caller_transaction(db, Isolation::$isolation).await
            }

            backend_tests!(
                @with Options { max_connections: Some(TASKS as u32 + 2), sqlite_file: true, isolation: Some(Isolation::$isolation) };
                skip_new_keys_own_transaction,
                skip_new_keys_caller_transaction,
                skip_calls_own_transaction,
                update_calls_own_transaction,
                skip_calls_caller_transaction,
                update_calls_caller_transaction,
            );
        }
    };
}

at_isolation!(read_committed, ReadCommitted);
at_isolation!(repeatable_read, RepeatableRead);

/// Counts-only calls over several chunks each (50 rows a chunk, keys shuffled per call), each chunk
/// committed on its own. All or nothing over several chunks would hold the first chunks' locks
/// while taking the next ones', in a different order in each call: measured here, PostgreSQL then
/// deadlocked about 200 times in 10 calls (each found after its 1 s `deadlock_timeout`), MariaDB
/// 25. Committing each chunk keeps one sorted chunk's locks at a time. Retryable errors are
/// retried by the caller here, and counted; what must never happen is a duplicate-key error on the
/// very key the call skips, a wrong count, or a lost row.
async fn chunked_counts_only_calls<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    let start = tokio::sync::Barrier::new(TASKS);
    let calls = (0..TASKS).map(|task| {
        let (pool, start) = (&db.pool, &start);
        async move {
            let rows: Vec<Product> = keys_of(task)
                .into_iter()
                .map(|k| Product {
                    id: 0,
                    sku: format!("K{k}"),
                    product_name: format!("task {task} key {k}"),
                    price_cents: k as i64,
                })
                .collect();
            start.wait().await;
            let mut retries = 0;
            loop {
                let result = BulkInsert::<Product>::new()
                    .batch_size(50)
                    .commit_each_chunk()
                    .counts_only()
                    .skip_conflicts::<ProductBySku>()
                    .run(pool, rows.clone())
                    .await;
                match result {
                    Err(error) if error.is_retryable() => retries += 1,
                    result => break (result, retries),
                }
            }
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut inserted = 0;
    let mut retries = 0;
    for (task, (result, r)) in results.into_iter().enumerate() {
        let report = result.unwrap_or_else(|e| panic!("{}: call {task}: {e}", DB::DIALECT));
        assert_eq!(report.inserted + report.skipped_existing, PER_CALL as u64);
        assert_eq!(report.chunks, PER_CALL / 50);
        inserted += report.inserted;
        retries += r;
    }
    let all: BTreeSet<u64> = (0..TASKS).flat_map(keys_of).collect();
    assert_eq!(
        inserted,
        all.len() as u64,
        "every key inserted by exactly one call"
    );
    assert_eq!(DB::count(&db.pool, "products").await, all.len() as i64);
    model_integration::report(&format!(
        "{} chunked counts-only skip calls: {TASKS} calls of {PER_CALL} rows in chunks of 50, {inserted} keys inserted, {retries} caller retries after a retryable error",
        DB::DIALECT
    ));
}

/// No input: no transaction, no statement, an empty report, in every mode.
async fn empty_input_is_an_empty_report<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    let reports = [
        BulkInsert::<Product>::new()
            .commit_each_chunk()
            .run(&db.pool, Vec::new())
            .await
            .unwrap(),
        BulkInsert::<Product>::new()
            .skip_conflicts::<ProductBySku>()
            .run(&db.pool, Vec::new())
            .await
            .unwrap(),
    ];
    for report in reports {
        assert_eq!(
            (report.inserted, report.chunks, report.rows.map(|r| r.len())),
            (0, 0, Some(0))
        );
    }
}

mod chunked {
    use super::*;
    backend_tests!(
        @with Options { max_connections: Some(TASKS as u32 + 2), sqlite_file: true, isolation: None };
        chunked_counts_only_calls,
        empty_input_is_an_empty_report,
    );
}
