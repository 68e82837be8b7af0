//! Plain indexes (`#[index]`): created under their names and not unique, listed in the metadata,
//! read back by `Schema::diff`, which creates the missing ones and drops the undeclared ones, on
//! every backend. The catalog is read here from other sources than the library's own (index
//! definitions and `sqlite_master` text, `information_schema`), so that each checks the other.

// Clippy's `duplicated_attributes` flags two `#[index]` that share a field (`price` below), though
// they declare different indexes.
#![allow(clippy::duplicated_attributes)]

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::migrate::Step;
use model_runtime::{Dialect, Model, Schema, SchemaError};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "stores")]
struct Store {
    #[model(primary_key, auto_increment)]
    id: i64,
    name: String,
}

mod v1 {
    use super::Store;
    use model_runtime::Model;

    /// No plain index.
    #[derive(Model, Debug, Clone, PartialEq)]
    #[model(table = "products")]
    pub struct Product {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[unique]
        #[model(max_length = 20)]
        pub sku: String,
        #[model(references = Store)]
        pub store_id: i64,
        pub added: i64,
        pub price: i64,
    }
}

mod v2 {
    use super::Store;
    use model_runtime::Model;

    #[derive(Model, Debug, Clone, PartialEq)]
    #[model(table = "products")]
    #[index(added, price)]
    #[index(price, name = "products_by_price")]
    pub struct Product {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[unique]
        #[model(max_length = 20)]
        pub sku: String,
        #[model(references = Store)]
        #[index]
        pub store_id: i64,
        pub added: i64,
        pub price: i64,
    }
}

fn v2_indexes() -> Vec<(String, Vec<String>)> {
    let mut out = vec![
        (
            "products_added_price_idx".to_owned(),
            names(&["added", "price"]),
        ),
        ("products_by_price".to_owned(), names(&["price"])),
        ("products_store_id_idx".to_owned(), names(&["store_id"])),
    ];
    out.sort();
    out
}

fn names(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| (*c).to_owned()).collect()
}

/// The table's non-unique indexes, `(name, columns)` sorted by name. MySQL's own index for a
/// foreign key that no declared index serves is named after the constraint (`…_fkey`) and left out.
async fn catalog<DB>(db: &TestDb<DB>, table: &str) -> Vec<(String, Vec<String>)>
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    String: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB> + for<'q> sqlx::Encode<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let sql = match DB::DIALECT {
        Dialect::Postgres => {
            "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1"
        }
        Dialect::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL"
        }
        Dialect::MySql => {
            "SELECT CAST(INDEX_NAME AS CHAR), CAST(GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR ', ') AS CHAR) \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 1 \
             GROUP BY INDEX_NAME"
        }
    };
    let rows: Vec<(String, String)> = sqlx::query_as(sql)
        .bind(table.to_owned())
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let mut out: Vec<(String, Vec<String>)> = rows
        .into_iter()
        .filter(|(name, definition)| {
            !definition.contains("UNIQUE") && !name.ends_with("_fkey") && !name.ends_with("_pkey")
        })
        .map(|(name, definition)| {
            // `CREATE INDEX name ON t USING btree (a, b)`, `CREATE INDEX "name" ON "t" ("a", "b")`,
            // or MySQL's `a, b`.
            let list = match definition.rfind('(') {
                Some(open) => &definition[open + 1..definition.rfind(')').unwrap()],
                None => &definition,
            };
            let columns = list
                .split(", ")
                .map(|c| c.trim_matches(['"', '`']).to_owned())
                .collect();
            (name, columns)
        })
        .collect();
    out.sort();
    out
}

async fn declared_indexes_are_created_named_and_not_unique<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    String: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB> + for<'q> sqlx::Encode<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let schema = Schema::new().model::<v2::Product>();
    schema.create(&db.pool).await.unwrap();
    assert_eq!(
        catalog(&db, "products").await,
        v2_indexes(),
        "on {}",
        DB::DIALECT
    );
    // Not unique: rows sharing every indexed value are fine.
    let store = Store {
        id: 0,
        name: "Downtown".into(),
    }
    .insert(&db.pool)
    .await
    .unwrap();
    for sku in ["A-1", "B-2"] {
        v2::Product {
            id: 0,
            sku: sku.into(),
            store_id: store.id,
            added: 20260101,
            price: 100,
        }
        .insert(&db.pool)
        .await
        .unwrap();
    }
    // The diff sees the indexes as declared (and, on MySQL, not the foreign key's own index).
    let plan = schema.diff(&db.pool).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    // Created again with IF NOT EXISTS: nothing changes.
    schema.if_not_exists(true).create(&db.pool).await.unwrap();
    assert_eq!(catalog(&db, "products").await, v2_indexes());
}

/// A model whose foreign key has no declared index: MySQL makes one for it, which is no
/// difference.
async fn a_foreign_key_index_of_mysql_is_no_difference<DB: TestBackend>(db: TestDb<DB>) {
    let schema = Schema::new().model::<v1::Product>();
    schema.create(&db.pool).await.unwrap();
    let plan = schema.diff(&db.pool).await.unwrap();
    assert!(plan.is_empty(), "{plan} on {}", DB::DIALECT);
}

async fn the_diff_creates_and_drops_plain_indexes<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    String: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB> + for<'q> sqlx::Encode<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    Schema::new()
        .model::<v1::Product>()
        .create(&db.pool)
        .await
        .unwrap();
    DB::run(&db.pool, "CREATE INDEX hand_made ON products (sku, price)").await;

    let plan = Schema::new()
        .model::<v2::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    let mut step_names: Vec<String> = plan.steps.iter().map(ToString::to_string).collect();
    // MySQL drops old indexes last, so that a foreign key always keeps one (1553).
    if DB::DIALECT == Dialect::MySql {
        step_names.rotate_right(1);
    }
    assert_eq!(
        step_names,
        [
            "drop index hand_made (sku, price) from products: no model declares it",
            "create index products_store_id_idx (store_id) on products",
            "create index products_added_price_idx (added, price) on products",
            "create index products_by_price (price) on products",
        ],
        "on {}",
        DB::DIALECT
    );
    let migration = plan.sql().unwrap();
    let q = |s: &str| match DB::DIALECT {
        Dialect::MySql => format!("`{s}`"),
        _ => format!("\"{s}\""),
    };
    // (MySQL: the drop comes last.)
    let mut up = migration.up.clone();
    if DB::DIALECT == Dialect::MySql {
        up.rotate_right(1);
    }
    assert_eq!(
        up[0],
        match DB::DIALECT {
            Dialect::MySql => "DROP INDEX `hand_made` ON `products`".to_owned(),
            _ => format!("DROP INDEX {}", q("hand_made")),
        }
    );
    assert_eq!(
        up[2],
        format!(
            "CREATE INDEX {} ON {} ({}, {})",
            q("products_added_price_idx"),
            q("products"),
            q("added"),
            q("price")
        )
    );
    // Undone in reverse: the created indexes dropped, the dropped one created again.
    assert_eq!(migration.down.len(), 4);
    let recreate = if DB::DIALECT == Dialect::MySql { 0 } else { 3 };
    assert_eq!(
        migration.down[recreate],
        format!(
            "CREATE INDEX {} ON {} ({}, {})",
            q("hand_made"),
            q("products"),
            q("sku"),
            q("price")
        )
    );

    plan.apply(&db.pool).await.unwrap();
    assert_eq!(catalog(&db, "products").await, v2_indexes());
    let again = Schema::new()
        .model::<v2::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again}");

    // Back to no index: three drops.
    let back = Schema::new()
        .model::<v1::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        back.steps
            .iter()
            .filter(|s| matches!(s, Step::DropIndex { .. }))
            .count(),
        3,
        "{back}"
    );
    // MariaDB dropped the index it had made for the foreign key when `products_store_id_idx`
    // came, and refuses to drop the key's last index: the plan makes its own index again first.
    let first = back.steps[0].to_string();
    if DB::DIALECT == Dialect::MySql {
        assert_eq!(
            first,
            "create index products_store_id_fkey (store_id) on products"
        );
    } else {
        assert!(first.starts_with("drop index"), "{back}");
    }
    back.apply(&db.pool).await.unwrap();
    assert_eq!(catalog(&db, "products").await, vec![]);
    let again = Schema::new()
        .model::<v1::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again}");
}

mod w1 {
    use model_runtime::Model;

    #[derive(Model, Debug, Clone, PartialEq)]
    #[model(table = "items")]
    #[unique_together(a, b)]
    pub struct Item {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        pub a: i64,
        pub b: i64,
        #[index]
        pub c: i64,
        pub d: i64,
    }
}

mod w2 {
    use model_runtime::Model;

    /// `(a, b)` is no longer unique (SQLite rebuilds the table), and `d` gains an index.
    #[derive(Model, Debug, Clone, PartialEq)]
    #[model(table = "items")]
    pub struct Item {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[unique]
        pub a: i64,
        pub b: i64,
        #[index]
        pub c: i64,
        #[index]
        pub d: i64,
    }
}

async fn indexes_survive_a_table_rebuild<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    String: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB> + for<'q> sqlx::Encode<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    Schema::new()
        .model::<w1::Item>()
        .create(&db.pool)
        .await
        .unwrap();
    w1::Item {
        id: 0,
        a: 1,
        b: 2,
        c: 3,
        d: 4,
    }
    .insert(&db.pool)
    .await
    .unwrap();
    let plan = Schema::new()
        .model::<w2::Item>()
        .diff(&db.pool)
        .await
        .unwrap();
    let rebuilt = plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::RebuildTable { .. }));
    assert_eq!(rebuilt, DB::DIALECT == Dialect::Sqlite, "{plan}");
    plan.apply(&db.pool).await.unwrap();
    assert_eq!(
        catalog(&db, "items").await,
        vec![
            ("items_c_idx".to_owned(), names(&["c"])),
            ("items_d_idx".to_owned(), names(&["d"])),
        ],
        "on {}",
        DB::DIALECT
    );
    assert_eq!(DB::count(&db.pool, "items").await, 1);
    let again = Schema::new()
        .model::<w2::Item>()
        .diff(&db.pool)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again}");
}

backend_tests!(
    declared_indexes_are_created_named_and_not_unique,
    a_foreign_key_index_of_mysql_is_no_difference,
    the_diff_creates_and_drops_plain_indexes,
    indexes_survive_a_table_rebuild,
);

#[test]
fn the_ddl_names_every_index_and_meta_lists_them() {
    let schema = Schema::new().model::<v2::Product>();
    let postgres = schema.sql(Dialect::Postgres).unwrap();
    assert_eq!(
        &postgres[2..],
        [
            r#"CREATE INDEX "products_store_id_idx" ON "products" ("store_id")"#,
            r#"CREATE INDEX "products_added_price_idx" ON "products" ("added", "price")"#,
            r#"CREATE INDEX "products_by_price" ON "products" ("price")"#,
        ]
    );
    let sqlite = schema
        .clone()
        .if_not_exists(true)
        .sql(Dialect::Sqlite)
        .unwrap();
    assert_eq!(
        sqlite[2],
        r#"CREATE INDEX IF NOT EXISTS "products_store_id_idx" ON "products" ("store_id")"#
    );
    // MySQL: part of the table, so that the one statement (and its IF NOT EXISTS) covers them.
    let mysql = schema.sql(Dialect::MySql).unwrap();
    assert_eq!(mysql.len(), 2);
    for key in [
        "KEY `products_store_id_idx` (`store_id`)",
        "KEY `products_added_price_idx` (`added`, `price`)",
        "KEY `products_by_price` (`price`)",
    ] {
        assert!(mysql[1].contains(key), "{key} in {}", mysql[1]);
    }
    assert_eq!(schema.index_statements(Dialect::Postgres).unwrap().len(), 3);
    assert!(schema.index_statements(Dialect::MySql).unwrap().is_empty());

    let meta = v2::Product::META;
    let listed: Vec<(&str, Vec<&str>)> = meta
        .indexes
        .iter()
        .map(|i| (i.name, meta.index_columns(i).map(|c| c.name).collect()))
        .collect();
    assert_eq!(
        listed,
        [
            ("products_store_id_idx", vec!["store_id"]),
            ("products_added_price_idx", vec!["added", "price"]),
            ("products_by_price", vec!["price"]),
        ]
    );
    assert!(
        meta.to_string()
            .ends_with("\n  index \"products_added_price_idx\" (added, price)\n  index \"products_by_price\" (price)"),
        "{meta}"
    );
}

/// MySQL indexes an unbounded text column only by a prefix: refused, as for unique keys.
#[test]
fn mysql_refuses_to_index_an_unbounded_text() {
    #[derive(Model)]
    struct Note {
        #[model(primary_key)]
        id: i64,
        #[index]
        body: String,
    }
    let error = Schema::new()
        .model::<Note>()
        .sql(Dialect::MySql)
        .unwrap_err();
    assert!(
        matches!(error, SchemaError::Unsupported { column: "body", .. }),
        "{error:?}"
    );
    assert!(Schema::new().model::<Note>().sql(Dialect::Postgres).is_ok());
}
