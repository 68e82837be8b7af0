//! How many row locks a bulk call holds on MariaDB, read from `information_schema.INNODB_TRX` while
//! the call's transaction is still open: the locks an all-or-nothing call keeps until its commit,
//! and what a rollback must release. With its default 128 MB buffer pool, MariaDB crashed rolling
//! back a killed call that held explicit locks on some 100,000 rows (`Over 95 percent of the buffer
//! pool is occupied by lock heaps`).
//!
//! MariaDB only: the other backends have no lock heap of this kind (PostgreSQL keeps row locks in
//! the rows themselves; SQLite locks the whole database).

use model_integration::{Options, TestBackend, TestDb};
use model_runtime::{BulkInsert, Model, Schema};
use sqlx::Row;

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "products")]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    price_cents: i64,
}

const ROWS: usize = 20_000;

fn rows(from: usize, to: usize, price: i64) -> Vec<Product> {
    (from..to)
        .map(|i| Product {
            id: 0,
            sku: format!("S{i:06}"),
            price_cents: price,
        })
        .collect()
}

#[derive(Debug)]
struct Locks {
    rows_locked: i64,
    lock_structs: i64,
    lock_memory: i64,
}

/// Runs `call` in a READ COMMITTED transaction of the caller's (the isolation the library's own
/// transaction uses), reads that transaction's locks from another connection, and rolls back.
async fn locks_of(db: &TestDb<sqlx::MySql>, mode: &str) -> Locks {
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    let id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let bulk = BulkInsert::<Product>::new().counts_only();
    let report = match mode {
        "skip, all new" => bulk
            .skip_conflicts::<ProductBySku>()
            .run(&mut tx, rows(ROWS, 2 * ROWS, 1))
            .await
            .unwrap(),
        "skip, all stored" => bulk
            .skip_conflicts::<ProductBySku>()
            .run(&mut tx, rows(0, ROWS, 1))
            .await
            .unwrap(),
        _ => bulk
            .update_conflicts::<ProductBySku>(&[ProductField::PriceCents])
            .run(&mut tx, rows(ROWS / 2, ROWS + ROWS / 2, 2))
            .await
            .unwrap(),
    };
    assert_eq!(
        report.inserted + report.updated + report.skipped_existing,
        ROWS as u64
    );
    // INNODB_TRX is a cache the server refreshes every 0.1 s: wait for the transaction to show.
    let mut row = None;
    for _ in 0..50 {
        row = sqlx::query(
            "SELECT trx_rows_locked, trx_lock_structs, trx_lock_memory_bytes FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = ?",
        )
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .unwrap();
        if row.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let row = row.expect("the bulk call's transaction in INNODB_TRX");
    tx.rollback().await.unwrap();
    Locks {
        rows_locked: row.get::<u64, _>(0) as i64,
        lock_structs: row.get::<u64, _>(1) as i64,
        lock_memory: row.get::<u64, _>(2) as i64,
    }
}

async fn bulk_calls_hold_few_row_locks(db: TestDb<sqlx::MySql>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    BulkInsert::<Product>::new()
        .run(&db.pool, rows(0, ROWS, 0))
        .await
        .unwrap();
    for mode in ["skip, all new", "skip, all stored", "update, half stored"] {
        let locks = locks_of(&db, mode).await;
        model_integration::report(&format!(
            "MariaDB bulk {mode}, {ROWS} rows, READ COMMITTED: {} rows locked, {} lock structs, {} bytes of lock memory ({:.1} bytes per row)",
            locks.rows_locked,
            locks.lock_structs,
            locks.lock_memory,
            locks.lock_memory as f64 / ROWS as f64
        ));
        // New rows carry implicit locks (their transaction id), which take no lock memory; a
        // stored row the call reads or updates takes one bit in a per-page lock struct.
        assert!(locks.lock_memory < 64 * (ROWS as i64), "{mode}: {locks:?}");
        if mode == "skip, all new" {
            assert!(locks.rows_locked < (ROWS as i64) / 10, "{mode}: {locks:?}");
        }
    }
    assert_eq!(
        <sqlx::MySql as TestBackend>::count(&db.pool, "products").await,
        ROWS as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    skip_mysql,
    ignore = "MariaDB/MySQL: set TEST_MYSQL_URL (e.g. mysql://root@127.0.0.1:3306/test) to run"
)]
async fn mysql_bulk_calls_hold_few_row_locks() {
    model_integration::run_scenario::<sqlx::MySql, _>(
        concat!(module_path!(), "::mysql_bulk_calls_hold_few_row_locks"),
        Options::default(),
        bulk_calls_hold_few_row_locks,
    )
    .await;
}

/// A 200,000-row call killed from another session part-way through: the server rolls it back and
/// stays up, nothing of the call is kept, and the pool's next call works.
async fn a_killed_call_keeps_nothing(db: TestDb<sqlx::MySql>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    BulkInsert::<Product>::new()
        .run(&db.pool, rows(0, ROWS, 0))
        .await
        .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    // The input is consumed chunk by chunk: counting the rows taken tells how far the call is.
    let taken = std::sync::atomic::AtomicUsize::new(0);
    let call = async {
        let input = rows(ROWS / 2, 200_000 + ROWS / 2, 7)
            .into_iter()
            .inspect(|_| {
                taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
        BulkInsert::<Product>::new()
            .counts_only()
            .update_conflicts::<ProductBySku>(&[ProductField::PriceCents])
            .run(&mut *conn, input)
            .await
    };
    let killer = async {
        // Kill it once it has written a good part of its rows.
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let taken = taken.load(std::sync::atomic::Ordering::Relaxed);
            if taken > 100_000 {
                model_integration::report(&format!(
                    "MariaDB killed call: about {} rows written when killed, after {:?}",
                    taken.saturating_sub(1000),
                    started.elapsed()
                ));
                break;
            }
            assert!(
                started.elapsed().as_secs() < 120,
                "the call made no progress: {taken} rows taken"
            );
        }
        sqlx::query(sqlx::AssertSqlSafe(format!("KILL {id}")))
            .execute(&db.pool)
            .await
            .unwrap();
    };
    let (result, ()) = tokio::join!(call, killer);
    drop(conn);
    assert!(
        result.is_err(),
        "the killed call reports an error: {result:?}"
    );
    // The server is up, and nothing of the call is kept.
    let stored = <sqlx::MySql as TestBackend>::count(&db.pool, "products").await;
    assert_eq!(stored, ROWS as i64);
    let updated: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE price_cents <> 0")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(updated, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    skip_mysql,
    ignore = "MariaDB/MySQL: set TEST_MYSQL_URL (e.g. mysql://root@127.0.0.1:3306/test) to run"
)]
async fn mysql_a_killed_call_keeps_nothing() {
    model_integration::run_scenario::<sqlx::MySql, _>(
        concat!(module_path!(), "::mysql_a_killed_call_keeps_nothing"),
        Options::default(),
        a_killed_call_keeps_nothing,
    )
    .await;
}
