//! Every model is a `sqlx::FromRow` of each backend's row: the library keeps the unique keys, and
//! the user's own sqlx queries read the same models, by column name, on the same pool.

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::{Column, Dialect, Model, Schema, UnknownVariant};

#[derive(Column, Debug, Clone, Copy, PartialEq)]
struct StoreId(i64);

#[derive(Column, Debug, Clone, PartialEq)]
struct Sku(String);

#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(text)]
enum Status {
    Active,
    Retired,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "stores")]
struct Store {
    #[model(primary_key, auto_increment)]
    id: StoreId,
    #[unique]
    #[model(max_length = 50)]
    name: String,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "products")]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: Sku,
    #[model(references = Store)]
    store_id: StoreId,
    #[model(max_length = 10)]
    status: Status,
    #[model(column = "price_in_cents")]
    price: Option<i64>,
}

/// `$1` on PostgreSQL, `?` elsewhere.
fn param<DB: TestBackend>() -> &'static str {
    if DB::DIALECT == Dialect::Postgres {
        "$1"
    } else {
        "?"
    }
}

async fn query_as_reads_models_by_column_name<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    // The unique-key layer: stores and products by their keys, race-free.
    let mut stores = Vec::new();
    for name in ["Downtown", "Airport"] {
        let candidate = Store {
            id: StoreId(0),
            name: name.into(),
        };
        let (store, _) = Store::get_or_create_by_name(&db.pool, &candidate)
            .await
            .unwrap();
        stores.push(store);
    }
    let mut stored = Vec::new();
    for (n, sku) in ["A-1", "B-2", "C-3"].into_iter().enumerate() {
        let row = Product {
            id: 0,
            sku: Sku(sku.into()),
            store_id: stores[n % 2].id,
            status: if n == 1 {
                Status::Retired
            } else {
                Status::Active
            },
            price: (n != 2).then_some(100 * n as i64),
        };
        let (product, _) = Product::get_or_create_by_sku(&db.pool, &row).await.unwrap();
        stored.push(product);
    }

    // The rest is sqlx's: a listing by a column no key covers.
    let sql = format!(
        "SELECT * FROM products WHERE store_id = {} ORDER BY sku",
        param::<DB>()
    );
    let listed: Vec<Product> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(stores[0].id.0)
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        listed,
        vec![stored[0].clone(), stored[2].clone()],
        "on {}",
        DB::DIALECT
    );

    // Any column order, a join, extra columns: the fields are found by name.
    let sql = format!(
        "SELECT s.name AS store_name, p.status, p.price_in_cents, p.sku, p.store_id, p.id, 1 AS extra \
         FROM products p JOIN stores s ON s.id = p.store_id WHERE s.name = {} ORDER BY p.id",
        param::<DB>()
    );
    let listed: Vec<Product> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind("Airport")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(listed, vec![stored[1].clone()], "on {}", DB::DIALECT);

    // The model's first columns in order, then the rest moved (the runtime reads by position
    // while the columns are in order, and by name from the first one that is not).
    for sql in [
        "SELECT p.id, p.sku, 7 AS extra, p.status, p.price_in_cents, p.store_id FROM products p ORDER BY p.id",
        "SELECT p.id, p.sku, p.store_id, p.status, p.price_in_cents, 'x' AS extra FROM products p ORDER BY p.id",
        "SELECT p.price_in_cents, p.status, p.store_id, p.sku, p.id FROM products p ORDER BY p.id",
    ] {
        let listed: Vec<Product> = sqlx::query_as(sql).fetch_all(&db.pool).await.unwrap();
        assert_eq!(listed, stored, "on {}: {sql}", DB::DIALECT);
    }

    // Two columns of one name (both tables' `id`): an error naming it, never the wrong one (sqlx's
    // own lookup by name takes the last).
    let error = sqlx::query_as::<_, Product>(
        "SELECT p.*, s.* FROM products p JOIN stores s ON s.id = p.store_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap_err();
    assert!(
        matches!(&error, sqlx::Error::ColumnDecode { index, .. } if index == "\"id\""),
        "{}: {error:?}",
        DB::DIALECT
    );

    // A column the query leaves out is sqlx's own error, naming it.
    let error = sqlx::query_as::<_, Product>("SELECT id, sku, status FROM products")
        .fetch_all(&db.pool)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, sqlx::Error::ColumnNotFound(name) if name == "store_id"),
        "{error:?}"
    );
    // The model's column names, not its field names.
    let error = sqlx::query_as::<_, Product>(
        "SELECT id, sku, store_id, status, price_in_cents AS price FROM products",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap_err();
    assert!(
        matches!(&error, sqlx::Error::ColumnNotFound(name) if name == "price_in_cents"),
        "{error:?}"
    );

    // A value that is not a variant is a decode error of that column, by name.
    let error = sqlx::query_as::<_, Product>(
        "SELECT id, sku, store_id, 'closed' AS status, price_in_cents FROM products",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap_err();
    let sqlx::Error::ColumnDecode { index, source } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(index, "\"status\"");
    assert_eq!(
        source.downcast_ref::<UnknownVariant>().map(|u| u.value()),
        Some("\"closed\"")
    );
    assert_eq!(
        error.to_string(),
        "error occurred while decoding column \"status\": `Status` has no variant stored as \"closed\""
    );
}

backend_tests!(query_as_reads_models_by_column_name);
