// Must compile: the futures of the write paths are `Send` on every backend, on a pool and inside a
// transaction, so that a caller can `tokio::spawn` them. (An async closure over the connection
// inside the library once made them lose `Send` for every lifetime; this is the check.)
use model_runtime::{BulkInsert, Model};

#[derive(Model, Debug, Clone)]
pub struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    price: i64,
}

fn send<T: Send>(_: T) {}

fn rows() -> Vec<Product> {
    Vec::new()
}

macro_rules! every_write {
    ($conn:expr) => {
        send(async {
            let _ = BulkInsert::<Product>::new().run($conn, rows()).await;
            let _ = BulkInsert::<Product>::new()
                .skip_conflicts::<ProductBySku>()
                .run($conn, rows())
                .await;
            let _ = BulkInsert::<Product>::new()
                .counts_only()
                .skip_conflicts::<ProductBySku>()
                .run($conn, rows())
                .await;
            let _ = BulkInsert::<Product>::new()
                .get_or_create::<ProductBySku>()
                .run($conn, rows())
                .await;
            let _ = BulkInsert::<Product>::new()
                .update_conflicts::<ProductBySku>(&[ProductField::Price])
                .run($conn, rows())
                .await;
            let row = Product {
                id: 0,
                sku: "a".into(),
                price: 1,
            };
            let _ = Product::get_or_create_by_sku($conn, &row).await;
            let _ = Product::update_or_create_by_sku($conn, &row, &[ProductField::Price]).await;
        })
    };
}

#[allow(dead_code)]
fn on_pools(sqlite: sqlx::SqlitePool, postgres: sqlx::PgPool, mysql: sqlx::MySqlPool) {
    every_write!(&sqlite);
    every_write!(&postgres);
    every_write!(&mysql);
}

/// What a caller spawns: a task that opens its transaction, writes in it and commits.
macro_rules! in_a_transaction {
    ($pool:expr) => {
        send(async move {
            let mut tx = $pool.begin().await.unwrap();
            let _ = BulkInsert::<Product>::new()
                .skip_conflicts::<ProductBySku>()
                .run(&mut *tx, rows())
                .await;
            let row = Product {
                id: 0,
                sku: "a".into(),
                price: 1,
            };
            let _ = Product::get_or_create_by_sku(&mut *tx, &row).await;
            let schema = model_runtime::Schema::new().model::<Product>();
            let _ = schema.create(&mut *tx).await;
            if let Ok(plan) = schema.diff(&mut *tx).await {
                let _ = plan.apply(&mut *tx).await;
            }
            tx.commit().await.unwrap();
        })
    };
}

#[allow(dead_code)]
fn in_transactions(sqlite: sqlx::SqlitePool, postgres: sqlx::PgPool, mysql: sqlx::MySqlPool) {
    in_a_transaction!(sqlite);
    in_a_transaction!(postgres);
    in_a_transaction!(mysql);
}

fn main() {}
