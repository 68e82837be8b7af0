//! `get_or_create_by_…` behaves like Django's `get_or_create`, without its race, on every backend.

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::{Model, Outcome, Schema};
use sqlx::error::ErrorKind;

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "products")]
#[unique_together(product_name, store_id, name = "unique_product_per_store")]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    #[model(max_length = 100)]
    product_name: String,
    store_id: i64,
    price_cents: i64,
}

fn product(sku: &str, name: &str, store_id: i64, price_cents: i64) -> Product {
    Product {
        id: 0,
        sku: sku.into(),
        product_name: name.into(),
        store_id,
        price_cents,
    }
}

async fn found_created_and_defaults_only_on_create<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();

    let (created, outcome) =
        Product::get_or_create_by_sku(&db.pool, &product("A-1", "iPhone 15", 1, 99_999))
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert!(outcome.created());
    assert!(created.id > 0);
    assert_eq!(created.price_cents, 99_999);

    // Same key, other values: the existing row comes back unchanged; the new values are defaults only.
    let (found, outcome) =
        Product::get_or_create_by_sku(&db.pool, &product("A-1", "Renamed", 2, 1))
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Found);
    assert_eq!(found, created);
    assert_eq!(DB::count(&db.pool, "products").await, 1);

    // The composite key works the same way.
    let (by_pair, outcome) = Product::get_or_create_by_product_name_and_store_id(
        &db.pool,
        &product("B-7", "iPhone 15", 1, 5),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Found);
    assert_eq!(by_pair, created);
    assert_eq!(DB::count(&db.pool, "products").await, 1);
}

async fn a_conflict_on_another_constraint_is_an_error<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    product("A-1", "iPhone 15", 1, 10)
        .insert(&db.pool)
        .await
        .unwrap();

    // New sku, but (product_name, store_id) is taken: neither a wrong row nor a silent success.
    let error = Product::get_or_create_by_sku(&db.pool, &product("A-2", "iPhone 15", 1, 10))
        .await
        .expect_err("the other constraint must refuse it");
    let model_runtime::Error::Database(sqlx::Error::Database(db_error)) = &error else {
        panic!("expected a database error, got {error:?}");
    };
    assert_eq!(db_error.kind(), ErrorKind::UniqueViolation, "{db_error}");
    assert_eq!(DB::count(&db.pool, "products").await, 1);
}

/// 32 tasks, each on its own connection, race `get_or_create` over the same 200 new keys.
async fn concurrent_callers_get_one_row_per_key<DB: TestBackend>(db: TestDb<DB>)
where
    for<'c> &'c mut DB::Connection: sqlx::Acquire<'c, Database = DB>,
{
    const TASKS: usize = 32;
    const KEYS: usize = 200;
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    // One future per task, each on its own connection, all polled concurrently: the database sees 32
    // sessions racing (sqlx runs each SQLite connection on a thread of its own).
    let start = tokio::sync::Barrier::new(TASKS);
    let tasks = (0..TASKS).map(|task| {
        let pool = &db.pool;
        let start = &start;
        async move {
            let mut conn = pool.acquire().await.expect("a connection per task");
            start.wait().await;
            let mut seen = Vec::with_capacity(KEYS);
            // Each task walks the keys from a different offset, so that every key is contended.
            for n in 0..KEYS {
                let k = (n + task * 7) % KEYS;
                let candidate = product(&format!("K-{k}"), &format!("name {k}"), 1, task as i64);
                let (row, outcome) = Product::get_or_create_by_sku(&mut *conn, &candidate)
                    .await
                    .unwrap_or_else(|e| panic!("task {task}, key {k}: {e}"));
                seen.push((k, row, outcome));
            }
            seen
        }
    });
    let all: Vec<(usize, Product, Outcome)> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut winners: Vec<Option<Product>> = vec![None; KEYS];
    let mut created = vec![0usize; KEYS];
    for (k, row, outcome) in &all {
        if *outcome == Outcome::Created {
            created[*k] += 1;
            winners[*k] = Some(row.clone());
        }
    }
    assert!(
        created.iter().all(|&c| c == 1),
        "one creator per key: {created:?}"
    );
    for (k, row, _) in &all {
        assert_eq!(
            Some(row),
            winners[*k].as_ref(),
            "every caller gets the winner's row for key {k}"
        );
    }
    assert_eq!(DB::count(&db.pool, "products").await, KEYS as i64);
}

backend_tests!(
    found_created_and_defaults_only_on_create,
    a_conflict_on_another_constraint_is_an_error
);

mod concurrency {
    use super::*;
    model_integration::backend_tests!(@with model_integration::Options { max_connections: Some(32), sqlite_file: true }; concurrent_callers_get_one_row_per_key);
}
