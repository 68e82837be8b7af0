//! Column types of the user's own (`#[derive(Column)]` newtypes and enums) in every position, on
//! every backend: plain and nullable fields, a newtype primary key with `auto_increment`, unique
//! keys and a `unique_together`, a foreign key, every write path, violation values, and stored
//! values that are not a variant.

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{
    BulkInsert, Column, Dialect, Error, IntegrityKind, Model, Outcome, RowOutcome, Schema,
    UnknownVariant, ViolationValues,
};
use rust_decimal::Decimal;

#[derive(Column, Debug, Clone, Copy, PartialEq)]
struct ProductId(i64);

#[derive(Column, Debug, Clone, PartialEq)]
struct Sku(String);

/// A newtype of a newtype: stored as `String` all the same.
#[derive(Column, Debug, Clone, PartialEq)]
struct Barcode(Sku);

#[derive(Column, Debug, Clone, Copy, PartialEq)]
struct StoreId(i64);

#[derive(Column, Debug, Clone, Copy, PartialEq)]
struct Price(Decimal);

#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(text)]
enum Status {
    Active,
    OnHold,
    #[column(rename = "Retired — für immer ")]
    Retired,
}

#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(integer)]
#[repr(i16)]
enum Priority {
    Lowest = i16::MIN,
    Normal = 0,
    Highest = i16::MAX,
}

/// No `#[repr]`: stored as an `i32`.
#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(integer)]
enum Level {
    Low = -5,
    High = 2_000_000_000,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "stores")]
struct Store {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 50)]
    name: String,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "products")]
#[unique_together(store_id, barcode)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: ProductId,
    #[unique]
    #[model(max_length = 40)]
    sku: Sku,
    #[model(references = Store)]
    store_id: StoreId,
    #[model(max_length = 30)]
    barcode: Barcode,
    #[model(max_length = 20)]
    status: Status,
    priority: Priority,
    level: Option<Level>,
    price: Price,
    previous_status: Option<Status>,
    #[unique]
    #[model(max_length = 40)]
    alias: Option<Sku>,
}

fn product(sku: &str, store: i64, barcode: &str) -> Product {
    Product {
        id: ProductId(0),
        sku: Sku(sku.into()),
        store_id: StoreId(store),
        barcode: Barcode(Sku(barcode.into())),
        status: Status::Active,
        priority: Priority::Normal,
        level: None,
        price: Price(Decimal::new(1999, 2)),
        previous_status: None,
        alias: None,
    }
}

async fn setup<DB: TestBackend>(db: &TestDb<DB>) -> (Store, Store) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    let a = Store {
        id: 0,
        name: "Downtown".into(),
    };
    let b = Store {
        id: 0,
        name: "Airport".into(),
    };
    (
        a.insert(&db.pool).await.unwrap(),
        b.insert(&db.pool).await.unwrap(),
    )
}

async fn own_types_round_trip_exactly<DB: TestBackend>(db: TestDb<DB>) {
    let (store, _) = setup(&db).await;
    let extremes = Product {
        status: Status::Retired,
        priority: Priority::Lowest,
        level: Some(Level::High),
        price: Price("-12345678901234567890.123456789".parse().unwrap()),
        previous_status: Some(Status::OnHold),
        alias: Some(Sku("naïve 🦀 \"quoted\" ".into())),
        ..product("A-1", store.id, "0001")
    };
    let others = Product {
        priority: Priority::Highest,
        level: Some(Level::Low),
        ..product("B-2", store.id, "0002")
    };
    let nulls = product("C-3", store.id, "0003");
    for original in [extremes, others, nulls] {
        let stored = original.insert(&db.pool).await.unwrap();
        assert!(stored.id.0 > 0, "the database assigned the newtype key");
        let expected = Product {
            id: stored.id,
            ..original.clone()
        };
        assert_eq!(stored, expected, "as returned on {}", DB::DIALECT);
        let by_id = Product::by_id(stored.id).get(&db.pool).await.unwrap();
        assert_eq!(by_id.as_ref(), Some(&expected), "by id on {}", DB::DIALECT);
        let by_sku = Product::by_sku(original.sku.clone())
            .get(&db.pool)
            .await
            .unwrap();
        assert_eq!(
            by_sku.as_ref(),
            Some(&expected),
            "by sku on {}",
            DB::DIALECT
        );
        let by_pair = Product::by_store_id_and_barcode(original.store_id, original.barcode.clone())
            .get(&db.pool)
            .await
            .unwrap();
        assert_eq!(by_pair, Some(expected), "by pair on {}", DB::DIALECT);
    }
}

/// What the database holds: the text of a stored enum is exactly its name, and an integer enum
/// its discriminant.
async fn stored_values_are_the_names_and_discriminants<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let (store, _) = setup(&db).await;
    let row = Product {
        status: Status::Retired,
        priority: Priority::Lowest,
        level: Some(Level::High),
        ..product("A-1", store.id, "0001")
    };
    row.insert(&db.pool).await.unwrap();
    for (condition, expected) in [
        ("status = 'Retired — für immer '", 1),
        ("status = 'retired'", 0),
        ("priority = -32768", 1),
        ("level = 2000000000", 1),
        ("previous_status IS NULL AND alias IS NULL", 1),
    ] {
        let sql = format!("SELECT COUNT(*) FROM products WHERE {condition}");
        let found: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(found, expected, "{condition} on {}", DB::DIALECT);
    }
}

fn decode_failure(error: Error) -> sqlx::Error {
    match error {
        Error::Decode {
            model: "Product",
            source,
        } => source,
        other => panic!("expected a decode error, got {other:?}"),
    }
}

async fn stored_values_that_are_no_variant_are_decode_errors<DB: TestBackend>(db: TestDb<DB>) {
    let (store, _) = setup(&db).await;
    product("A-1", store.id, "0001")
        .insert(&db.pool)
        .await
        .unwrap();
    // Another spelling of a variant's name is no variant: the match is exact.
    for (update, column, type_name, value) in [
        ("status = 'archived'", "status", "Status", "\"archived\""),
        ("status = 'Active'", "status", "Status", "\"Active\""),
        ("status = 'active '", "status", "Status", "\"active \""),
        ("priority = 5", "priority", "Priority", "5"),
        ("level = 0", "level", "Level", "0"),
    ] {
        DB::run(&db.pool, &format!("UPDATE products SET {update}")).await;
        let error = Product::by_sku(Sku("A-1".into()))
            .get(&db.pool)
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "could not read a `Product` from its row");
        let source = decode_failure(error);
        assert_eq!(
            source.to_string(),
            format!(
                "error occurred while decoding column \"{column}\": `{type_name}` has no variant stored as {value}"
            ),
            "on {}",
            DB::DIALECT
        );
        let sqlx::Error::ColumnDecode { index, source } = source else {
            panic!("a column decode error");
        };
        assert_eq!(index, format!("{column:?}"));
        let unknown = source
            .downcast_ref::<UnknownVariant>()
            .expect("an UnknownVariant");
        assert_eq!(
            (unknown.type_name(), unknown.value()),
            (type_name, value),
            "on {}",
            DB::DIALECT
        );
        DB::run(
            &db.pool,
            "UPDATE products SET status = 'active', priority = 0, level = NULL",
        )
        .await;
        assert!(
            Product::by_sku(Sku("A-1".into()))
                .get(&db.pool)
                .await
                .unwrap()
                .is_some()
        );
    }
}

async fn newtype_keys_work_through_every_operation<DB: TestBackend>(db: TestDb<DB>) {
    let (store, airport) = setup(&db).await;
    let candidate = product("A-1", store.id, "0001");

    let (created, outcome) = Product::get_or_create_by_sku(&db.pool, &candidate)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    let (found, outcome) = Product::get_or_create_by_sku(&db.pool, &candidate)
        .await
        .unwrap();
    assert_eq!((found.id, outcome), (created.id, Outcome::Found));

    // A nullable newtype key: NULLs never collide, a value does.
    let aliased = Product {
        alias: Some(Sku("first".into())),
        ..product("AL-1", store.id, "al1")
    };
    let (aliased, _) = Product::get_or_create_by_alias(&db.pool, &aliased)
        .await
        .unwrap();
    let by_alias = Product::by_alias(Some(Sku("first".into())))
        .get(&db.pool)
        .await
        .unwrap();
    assert_eq!(by_alias.map(|p| p.id), Some(aliased.id));
    let error = Product {
        alias: Some(Sku("first".into())),
        ..product("AL-2", store.id, "al2")
    }
    .insert(&db.pool)
    .await
    .unwrap_err();
    let violation = error.unique_violation().expect("a duplicate alias");
    assert!(violation.is::<ProductByAlias>(), "{violation}");
    assert_eq!(
        violation.values(),
        &ViolationValues::Known(vec!["first".into()])
    );
    assert!(
        Product::by_sku(Sku("A-1".into()))
            .exists(&db.pool)
            .await
            .unwrap()
    );

    // Keys compare exactly on every backend (MariaDB's key collation included): case and
    // trailing spaces make other keys.
    for sku in ["a-1", "A-1 "] {
        let other = product(sku, store.id, &format!("x{sku}"));
        let (_, outcome) = Product::get_or_create_by_sku(&db.pool, &other)
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Created, "{sku:?} on {}", DB::DIALECT);
    }

    let on_hold = Product {
        status: Status::OnHold,
        priority: Priority::Highest,
        ..candidate.clone()
    };
    let (updated, outcome) = Product::update_or_create_by_sku(
        &db.pool,
        &on_hold,
        &[ProductField::Status, ProductField::Priority],
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(
        (updated.id, updated.status, updated.priority),
        (created.id, Status::OnHold, Priority::Highest)
    );

    // A duplicate of each key: the violation names the key and shows the stored values.
    let error = Product {
        barcode: Barcode(Sku("9999".into())),
        ..candidate.clone()
    }
    .insert(&db.pool)
    .await
    .unwrap_err();
    let violation = error.unique_violation().expect("a duplicate sku");
    assert!(violation.is::<ProductBySku>(), "{violation}");
    assert_eq!(
        violation.values(),
        &ViolationValues::Known(vec!["A-1".into()])
    );
    let error = Product {
        sku: Sku("Z-9".into()),
        ..candidate.clone()
    }
    .insert(&db.pool)
    .await
    .unwrap_err();
    let violation = error.unique_violation().expect("a duplicate pair");
    assert!(violation.is::<ProductByStoreIdAndBarcode>(), "{violation}");
    assert_eq!(
        violation.values(),
        &ViolationValues::Known(vec![store.id.to_string(), "0001".into()])
    );
    let found = Product {
        id: ProductId(0),
        sku: Sku("Z-9".into()),
        ..candidate.clone()
    }
    .validate_unique(&db.pool)
    .await
    .unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].is::<ProductByStoreIdAndBarcode>());
    assert_eq!(
        found[0].values(),
        &ViolationValues::Known(vec![store.id.to_string(), "0001".into()])
    );

    // The foreign key: a `StoreId` referencing `Store`'s `i64` key is enforced.
    let error = product("N-1", store.id + airport.id + 100, "n")
        .insert(&db.pool)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Integrity {
                kind: IntegrityKind::ForeignKey,
                ..
            }
        ),
        "{error:?}"
    );

    // Bulk: skip and update by the newtype key, with the newtype primary key reported.
    let rows = vec![
        product("A-1", airport.id, "b1"),
        product("B-2", airport.id, "b2"),
        product("B-2", airport.id, "b3"),
    ];
    let report = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .run(&db.pool, rows)
        .await
        .unwrap();
    assert_eq!(
        (
            report.inserted,
            report.skipped_existing,
            report.skipped_in_input
        ),
        (1, 1, 1)
    );
    let outcomes = report.rows.unwrap();
    let RowOutcome::Inserted(new_id) = outcomes[1] else {
        panic!("row 1 inserted: {outcomes:?}");
    };
    let b2 = Product::by_id(new_id).get(&db.pool).await.unwrap().unwrap();
    assert_eq!(b2.sku, Sku("B-2".into()));

    let rows = vec![
        Product {
            status: Status::Retired,
            level: Some(Level::Low),
            ..product("B-2", airport.id, "b2")
        },
        product("C-3", airport.id, "c3"),
    ];
    let report = BulkInsert::<Product>::new()
        .update_conflicts::<ProductBySku>(&[ProductField::Status, ProductField::Level])
        .run(&db.pool, rows)
        .await
        .unwrap();
    assert_eq!((report.inserted, report.updated), (1, 1));
    let b2 = Product::by_sku(Sku("B-2".into()))
        .get(&db.pool)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (b2.id, b2.status, b2.level),
        (new_id, Status::Retired, Some(Level::Low))
    );

    // A bulk duplicate of the composite key names its values.
    let error = BulkInsert::<Product>::new()
        .run(&db.pool, vec![product("D-4", airport.id, "c3")])
        .await
        .unwrap_err();
    let violation = error.unique_violation().expect("a duplicate pair");
    assert!(violation.is::<ProductByStoreIdAndBarcode>());
    assert_eq!(
        violation.values(),
        &ViolationValues::Known(vec![airport.id.to_string(), "c3".into()])
    );
}

backend_tests!(
    own_types_round_trip_exactly,
    stored_values_are_the_names_and_discriminants,
    stored_values_that_are_no_variant_are_decode_errors,
    newtype_keys_work_through_every_operation,
);

/// The column of an own type is the column of what it is stored as, key rules included: a text
/// newtype in a key gets MariaDB's exact collation and `max_length`.
#[test]
fn own_types_have_their_storage_columns_in_the_ddl() {
    let sql = Schema::new()
        .model::<Product>()
        .sql(Dialect::MySql)
        .unwrap();
    let products = &sql[1];
    for column in [
        "`id` bigint NOT NULL PRIMARY KEY AUTO_INCREMENT",
        "`sku` varchar(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL",
        "`store_id` bigint NOT NULL",
        "`barcode` varchar(30) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL",
        "`status` varchar(20) NOT NULL",
        "`priority` smallint NOT NULL",
        "`level` int NULL",
        "`price` decimal(65, 30) NOT NULL",
        "`previous_status` longtext NULL",
    ] {
        assert!(products.contains(column), "{column} in {products}");
    }
    let sql = Schema::new()
        .model::<Product>()
        .sql(Dialect::Postgres)
        .unwrap();
    assert!(
        sql[1].contains(r#"CONSTRAINT "products_store_id_fkey" FOREIGN KEY ("store_id") REFERENCES "stores" ("id")"#),
        "{}",
        sql[1]
    );
    let meta = Product::META;
    let status = &meta.columns[meta.column_named("status").unwrap()];
    assert_eq!(
        (status.kind, status.nullable, status.max_length),
        (model_runtime::ColumnKind::Text, false, Some(20))
    );
}
