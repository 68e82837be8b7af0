//! The DDL creates every declared constraint under its declared name, on every backend, and each one
//! rejects a duplicate.

// Clippy's `duplicated_attributes` flags two `#[unique_together]` that share a field (`store_id`
// below), though they declare different constraints.
#![allow(clippy::duplicated_attributes)]

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::{Dialect, Model, Schema, SchemaError};
use sqlx::error::ErrorKind;

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "stores")]
struct Store {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 100)]
    name: String,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "products")]
#[unique_together(product_name, store_id, name = "unique_product_per_store")]
#[unique_together(store_id, code)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    #[model(max_length = 100)]
    product_name: String,
    #[model(references = Store)]
    store_id: i64,
    #[unique(name = "products_ean_unique")]
    ean: Option<i64>,
    code: i32,
}

/// Default names past 63 bytes are cut, with a hash, and still created as declared.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "warehouse_inventory_adjustments")]
#[unique_together(warehouse_location_code, inventory_adjustment_reason)]
struct WarehouseInventoryAdjustment {
    #[model(primary_key)]
    #[model(column = "adjustment_id")]
    id: i32,
    #[model(max_length = 20)]
    warehouse_location_code: String,
    #[model(max_length = 20)]
    inventory_adjustment_reason: String,
}

fn schema() -> Schema {
    Schema::new()
        .model::<Product>()
        .model::<WarehouseInventoryAdjustment>()
}

fn declared<M: Model>() -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = M::META
        .unique_constraints()
        .iter()
        .map(|c| {
            let columns = M::META
                .constraint_columns(c)
                .map(|c| c.name.to_owned())
                .collect();
            (c.name.to_owned(), columns)
        })
        .collect();
    out.sort();
    out
}

async fn constraints_exist_under_their_declared_names_in_the_catalog<DB: TestBackend>(
    db: TestDb<DB>,
) {
    schema().create(&db.pool).await.expect("create schema");
    for (table, expected) in [
        ("stores", declared::<Store>()),
        ("products", declared::<Product>()),
        (
            "warehouse_inventory_adjustments",
            declared::<WarehouseInventoryAdjustment>(),
        ),
    ] {
        let found = DB::unique_constraints(&db.pool, table).await;
        assert_eq!(
            found,
            expected,
            "unique constraints of {table} on {}",
            DB::DIALECT
        );
    }
    let long = &WarehouseInventoryAdjustment::META.uniques[0].name;
    assert_eq!(long.len(), 63, "{long}");
}

fn product(sku: &str, name: &str, store_id: i64, ean: Option<i64>, code: i32) -> Product {
    Product {
        id: 0,
        sku: sku.into(),
        product_name: name.into(),
        store_id,
        ean,
        code,
    }
}

async fn count<DB: TestBackend>(db: &TestDb<DB>) -> i64 {
    DB::count(&db.pool, "products").await
}

async fn each_constraint_rejects_a_duplicate<DB: TestBackend>(db: TestDb<DB>) {
    schema().create(&db.pool).await.expect("create schema");
    let store = Store {
        id: 0,
        name: "Downtown".into(),
    }
    .insert(&db.pool)
    .await
    .unwrap();
    let base = product("A-1", "iPhone 15", store.id, Some(4006381333931), 7)
        .insert(&db.pool)
        .await
        .unwrap();
    assert!(base.id > 0);

    // Each candidate collides with `base` on exactly one constraint.
    let cases = [
        (
            "products_sku_key",
            product("A-1", "Pixel 8", store.id, None, 8),
        ),
        (
            "products_ean_unique",
            product("A-2", "Pixel 8", store.id, Some(4006381333931), 9),
        ),
        (
            "unique_product_per_store",
            product("A-3", "iPhone 15", store.id, None, 10),
        ),
        (
            "products_store_id_code_key",
            product("A-4", "Galaxy S24", store.id, None, 7),
        ),
    ];
    for (constraint, candidate) in cases {
        let error = candidate.insert(&db.pool).await.expect_err(constraint);
        let Some(db_error) = error.as_database_error() else {
            panic!("{constraint}: expected a database error, got {error:?}");
        };
        assert_eq!(
            db_error.kind(),
            ErrorKind::UniqueViolation,
            "{constraint}: {db_error}"
        );
        let columns: Vec<&str> = Product::META
            .uniques
            .iter()
            .find(|c| c.name == constraint)
            .map(|c| {
                Product::META
                    .constraint_columns(c)
                    .map(|c| c.name)
                    .collect()
            })
            .unwrap();
        match DB::DIALECT {
            Dialect::Postgres => assert_eq!(db_error.constraint(), Some(constraint)),
            Dialect::MySql => assert!(db_error.message().contains(constraint), "{db_error}"),
            // SQLite names the columns, not the constraint.
            Dialect::Sqlite => {
                let named = columns
                    .iter()
                    .map(|c| format!("products.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                assert!(db_error.message().ends_with(&named), "{db_error}");
            }
        }
    }
    assert_eq!(count(&db).await, 1, "no rejected row was stored");

    // NULLs do not collide: two rows without an EAN are fine.
    product("B-1", "Pixel 8", store.id, None, 20)
        .insert(&db.pool)
        .await
        .unwrap();
    product("B-2", "Pixel 9", store.id, None, 21)
        .insert(&db.pool)
        .await
        .unwrap();
    assert_eq!(count(&db).await, 3);

    // The foreign key is enforced too.
    let error = product("C-1", "Orphan", store.id + 1000, None, 30)
        .insert(&db.pool)
        .await
        .expect_err("unknown store");
    assert!(
        matches!(
            error,
            model_runtime::Error::Integrity {
                kind: model_runtime::IntegrityKind::ForeignKey,
                ..
            }
        ),
        "{error:?}"
    );
    let Some(db_error) = error.as_database_error() else {
        panic!("expected a database error, got {error:?}");
    };
    assert_eq!(
        db_error.kind(),
        ErrorKind::ForeignKeyViolation,
        "{db_error}"
    );
}

async fn if_not_exists_makes_creation_repeatable<DB: TestBackend>(db: TestDb<DB>) {
    schema().create(&db.pool).await.expect("create schema");
    assert!(
        schema().create(&db.pool).await.is_err(),
        "a second CREATE TABLE must fail"
    );
    schema()
        .if_not_exists(true)
        .create(&db.pool)
        .await
        .expect("CREATE TABLE IF NOT EXISTS");
}

backend_tests!(
    constraints_exist_under_their_declared_names_in_the_catalog,
    each_constraint_rejects_a_duplicate,
    if_not_exists_makes_creation_repeatable,
);

#[test]
fn tables_come_after_the_tables_they_reference() {
    let order: Vec<&str> = schema()
        .ordered()
        .unwrap()
        .iter()
        .map(|m| m.table)
        .collect();
    let position = |table| order.iter().position(|t| *t == table).unwrap();
    assert_eq!(order.len(), 3, "{order:?}");
    assert!(position("stores") < position("products"), "{order:?}");
}

#[test]
fn mysql_refuses_a_unique_unbounded_text_column() {
    #[derive(Model)]
    struct Tag {
        #[model(primary_key)]
        id: i64,
        #[unique]
        label: String,
    }
    let error = Schema::new()
        .model::<Tag>()
        .sql(Dialect::MySql)
        .unwrap_err();
    assert!(
        matches!(
            error,
            SchemaError::Unsupported {
                column: "label",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "Tag.label: MariaDB and MySQL cannot enforce a unique key or primary key on an unbounded TEXT, BLOB or JSON column; give the field #[model(max_length = N)] so that it becomes VARCHAR(N)"
    );
    // The other backends index TEXT fine.
    assert!(Schema::new().model::<Tag>().sql(Dialect::Postgres).is_ok());
    assert!(Schema::new().model::<Tag>().sql(Dialect::Sqlite).is_ok());
}

#[test]
fn ddl_names_every_constraint() {
    let ddl = Schema::new()
        .model::<Product>()
        .sql(Dialect::Postgres)
        .unwrap();
    assert_eq!(
        ddl[1],
        concat!(
            r#"CREATE TABLE "products" ( "id" bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL PRIMARY KEY, "#,
            r#""sku" varchar(40) NOT NULL, "product_name" varchar(100) NOT NULL, "store_id" bigint NOT NULL, "#,
            r#""ean" bigint NULL, "code" integer NOT NULL, "#,
            r#"CONSTRAINT "products_sku_key" UNIQUE ("sku"), "#,
            r#"CONSTRAINT "products_ean_unique" UNIQUE ("ean"), "#,
            r#"CONSTRAINT "unique_product_per_store" UNIQUE ("product_name", "store_id"), "#,
            r#"CONSTRAINT "products_store_id_code_key" UNIQUE ("store_id", "code"), "#,
            r#"CONSTRAINT "products_store_id_fkey" FOREIGN KEY ("store_id") REFERENCES "stores" ("id") )"#,
        )
    );
}
