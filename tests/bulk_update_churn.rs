//! Bulk update mode while another connection deletes, re-inserts and re-keys the stored rows it
//! updates. Update mode reads the chunk's stored keys first and, on SQLite and PostgreSQL, upserts
//! those rows naming their stored primary keys (so that no sequence value is drawn): a row deleted
//! or renamed between the read and the upsert would then be inserted under an id that is still
//! taken, or taken again. The read locks the rows it finds on PostgreSQL and MariaDB, and SQLite has
//! one writer at a time, so it cannot happen: every call succeeds or fails with a retryable error,
//! and at the end every key has one row whose price is one that a call was told it wrote, or the
//! churn's own.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use model_integration::{Rng, TestBackend, TestDb, backend_tests, report};
use model_runtime::Key;
use model_runtime::{BulkInsert, Model, RowOutcome, Schema};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "churned")]
struct Churned {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    sku: String,
    price: i64,
}

const KEYS: u64 = 40;
const TASKS: u64 = 3;
const CALLS: u64 = 150;
/// Connections deleting and renaming rows meanwhile.
const CHURNERS: u64 = 2;
/// The price the churn writes when it inserts a deleted key again.
const CHURNED: i64 = -1;

fn sku(k: u64) -> String {
    format!("K{k}")
}

/// Runs one statement of the churn; an error (a deadlock, a busy database, a lock wait timeout) is
/// counted, not fatal: the churn only has to keep the rows moving.
async fn churn_statement<DB: TestBackend>(pool: &sqlx::Pool<DB>, sql: &str) -> bool {
    let Ok(mut conn) = pool.acquire().await else {
        return false;
    };
    DB::execute(
        &mut conn,
        sql.to_owned().into(),
        model_runtime::__private::Values(Vec::new()),
    )
    .await
    .is_ok()
}

async fn bulk_update_under_churn<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Churned>()
        .create(&db.pool)
        .await
        .unwrap();
    let stored: Vec<Churned> = (0..KEYS)
        .map(|k| Churned {
            id: 0,
            sku: sku(k),
            price: 0,
        })
        .collect();
    BulkInsert::<Churned>::new()
        .run(&db.pool, stored)
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let mut churners = Vec::new();
    for c in 0..CHURNERS {
        let pool = db.pool.clone();
        let stop = Arc::clone(&stop);
        churners.push(tokio::spawn(async move {
            let mut rng = Rng(0xc4u64 + c);
            let (mut moves, mut failed) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let k = rng.below(KEYS);
                let ok = if rng.below(2) == 0 {
                    // Deleted, then inserted again under a new id.
                    churn_statement::<DB>(&pool, &format!("DELETE FROM churned WHERE sku = 'K{k}'"))
                        .await
                        && churn_statement::<DB>(
                            &pool,
                            &format!("INSERT INTO churned (sku, price) VALUES ('K{k}', {CHURNED})"),
                        )
                        .await
                } else {
                    // Renamed away and back: the id stays, the key leaves for a moment.
                    churn_statement::<DB>(
                        &pool,
                        &format!("UPDATE churned SET sku = 'T{k}' WHERE sku = 'K{k}'"),
                    )
                    .await
                        && churn_statement::<DB>(
                            &pool,
                            &format!("UPDATE churned SET sku = 'K{k}' WHERE sku = 'T{k}'"),
                        )
                        .await
                };
                if ok {
                    moves += 1;
                } else {
                    failed += 1;
                }
                tokio::task::yield_now().await;
            }
            (moves, failed)
        }));
    }

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xb0 + t);
            let mut told: Vec<(u64, i64)> = Vec::new();
            let mut retryable = 0u64;
            for call in 0..CALLS {
                let mut keys: Vec<u64> = (0..KEYS).collect();
                for i in (1..keys.len()).rev() {
                    keys.swap(i, rng.below(i as u64 + 1) as usize);
                }
                keys.truncate(15);
                let price = (t * 1000 + call + 1) as i64;
                let rows: Vec<Churned> = keys
                    .iter()
                    .map(|&k| Churned {
                        id: 0,
                        sku: sku(k),
                        price,
                    })
                    .collect();
                match BulkInsert::<Churned>::new()
                    .update_conflicts::<ChurnedBySku>(&[ChurnedField::Price])
                    .run(&pool, rows)
                    .await
                {
                    Ok(report) => {
                        for (&k, outcome) in keys.iter().zip(report.rows.expect("per row")) {
                            match outcome {
                                RowOutcome::Inserted(_)
                                | RowOutcome::Updated(_)
                                | RowOutcome::Unchanged => told.push((k, price)),
                                other => panic!("key {k}: unexpected {other:?}"),
                            }
                        }
                    }
                    Err(error) if error.is_retryable() => retryable += 1,
                    Err(error) => {
                        let mut text = error.to_string();
                        let mut source = std::error::Error::source(&error);
                        while let Some(cause) = source {
                            text.push_str(&format!(": {cause}"));
                            source = cause.source();
                        }
                        panic!(
                            "{}: a bulk update under churn failed with a non-retryable error: {text}",
                            DB::DIALECT
                        )
                    }
                }
            }
            (told, retryable)
        }));
    }
    let mut told: HashMap<u64, Vec<i64>> = HashMap::new();
    let mut retryable = 0;
    for task in tasks {
        let (calls, retried) = task.await.unwrap();
        retryable += retried;
        for (k, price) in calls {
            told.entry(k).or_default().push(price);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (mut moves, mut churn_failed) = (0, 0);
    for churner in churners {
        let (m, f) = churner.await.unwrap();
        moves += m;
        churn_failed += f;
    }

    // Renamed keys are moved back where the churn stopped half-way (where a call inserted the key
    // meanwhile, the renamed row stays renamed: that is the churn's doing).
    for k in 0..KEYS {
        churn_statement::<DB>(
            &db.pool,
            &format!("UPDATE churned SET sku = 'K{k}' WHERE sku = 'T{k}'"),
        )
        .await;
    }
    for k in 0..KEYS {
        let row = Churned::by_sku(sku(k).as_str())
            .get(&db.pool)
            .await
            .unwrap();
        // A key the churn deleted and had not inserted again when it stopped may be absent.
        let Some(row) = row else { continue };
        let allowed = told.get(&k).map(Vec::as_slice).unwrap_or_default();
        assert!(
            row.price == 0 || row.price == CHURNED || allowed.contains(&row.price),
            "{}: key {k} holds {}, which no call was told it wrote ({allowed:?})",
            DB::DIALECT,
            row.price
        );
    }
    report(&format!(
        "{}: bulk update under churn: {} rows told written, {retryable} retryable errors, {moves} churn moves ({churn_failed} churn statements failed)",
        DB::DIALECT,
        told.values().map(Vec::len).sum::<usize>(),
    ));
}

backend_tests!(bulk_update_under_churn);
