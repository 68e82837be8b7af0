//! Typed duplicate-key and integrity errors, and uniqueness validation before saving, on every
//! backend.

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{Dialect, Error, IntegrityKind, KeyId, Model, Schema, ViolationValues};

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
    code: i32,
    #[unique]
    ean: Option<i64>,
}

/// The same table seen with a nullable `sku`, to provoke a NOT NULL violation.
#[derive(Model, Debug, Clone)]
#[model(table = "products")]
struct LooseProduct {
    #[model(primary_key, auto_increment)]
    id: i64,
    sku: Option<String>,
    product_name: String,
    store_id: i64,
    code: i32,
    ean: Option<i64>,
}

fn product(sku: &str, name: &str, store_id: i64, code: i32) -> Product {
    Product {
        id: 0,
        sku: sku.into(),
        product_name: name.into(),
        store_id,
        code,
        ean: None,
    }
}

const AWKWARD: &str = "O'Brien, \"quoted\" (x)-y — café 日本";

async fn setup<DB: TestBackend>(db: &TestDb<DB>) -> Product {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    product("A-1", AWKWARD, 7, 1)
        .insert(&db.pool)
        .await
        .unwrap()
}

async fn single_column_violation_names_the_constraint<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    let error = product("A-1", "other", 8, 2)
        .insert(&db.pool)
        .await
        .unwrap_err();
    let violation = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert!(violation.is::<ProductBySku>());
    assert!(!violation.is::<ProductByProductNameAndStoreId>());
    assert_eq!(violation.key(), Some(KeyId::Unique(0)));
    assert_eq!(violation.constraint(), "products_sku_key");
    assert_eq!(violation.columns(), ["sku"]);
    assert_eq!(
        violation.values(),
        &ViolationValues::Known(vec!["A-1".into()])
    );
    assert_eq!(
        (violation.model(), violation.table()),
        ("Product", "products")
    );
    // One line saying what happened, the same on every backend; the advice and the database's
    // own text are elsewhere.
    let message = error.to_string();
    model_integration::report(&format!("{} single: {message}", DB::DIALECT));
    assert_eq!(
        message,
        "duplicate Product: unique constraint \"products_sku_key\" (sku) already has a row with sku = \"A-1\""
    );
    assert_eq!(
        violation.advice(),
        "Product::get_or_create_by_sku returns the existing row, Product::update_or_create_by_sku updates it, and BulkInsert::skip_conflicts::<ProductBySku>() passes over it"
    );
    // The sqlx error is the source, and is not repeated in the message.
    let source = std::error::Error::source(&error).expect("a source");
    let sqlx_error = source
        .downcast_ref::<sqlx::Error>()
        .unwrap_or_else(|| panic!("the source is the sqlx error: {source:?}"));
    assert!(
        matches!(sqlx_error, sqlx::Error::Database(_)),
        "{sqlx_error:?}"
    );
    let source = source.to_string();
    assert!(!message.contains(&source), "{message} repeats {source}");
    let lowercase = source.to_lowercase();
    assert!(
        lowercase.contains("unique") || lowercase.contains("duplicate"),
        "{source}"
    );
    assert!(std::ptr::eq(
        violation.database_error().expect("the database's error"),
        sqlx_error
    ));
}

async fn composite_violation_with_awkward_values<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    let error = product("A-2", AWKWARD, 7, 2)
        .insert(&db.pool)
        .await
        .unwrap_err();
    let violation = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert!(violation.is::<ProductByProductNameAndStoreId>());
    assert_eq!(violation.constraint(), "unique_product_per_store");
    assert_eq!(violation.columns(), ["product_name", "store_id"]);
    // Quotes, commas, dashes, parentheses and non-ASCII text come back exactly: where the
    // database's joined text cannot be split without guessing, the values written are used.
    assert_eq!(
        violation.values(),
        &ViolationValues::Known(vec![AWKWARD.into(), "7".into()])
    );
    model_integration::report(&format!("{} composite: {error}", DB::DIALECT));

    // The same through get_or_create on another key and through update.
    let error = Product::get_or_create_by_sku(&db.pool, &product("A-3", AWKWARD, 7, 3))
        .await
        .unwrap_err();
    assert!(
        error
            .unique_violation()
            .is_some_and(|v| v.is::<ProductByProductNameAndStoreId>())
    );
    let other = product("B-1", "plain", 7, 4)
        .insert(&db.pool)
        .await
        .unwrap();
    let error = Product {
        sku: "A-1".into(),
        ..other
    }
    .update(&db.pool)
    .await
    .unwrap_err();
    assert!(
        error
            .unique_violation()
            .is_some_and(|v| v.is::<ProductBySku>()),
        "{error:?}"
    );
}

async fn an_undeclared_constraint_is_still_a_unique_violation<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    DB::run(
        &db.pool,
        "CREATE UNIQUE INDEX products_code_by_hand ON products (code)",
    )
    .await;
    let error = product("C-1", "another", 9, 1)
        .insert(&db.pool)
        .await
        .unwrap_err();
    let violation = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert_eq!(violation.key(), None);
    match DB::DIALECT {
        // SQLite reports the columns only.
        Dialect::Sqlite => assert_eq!(violation.columns(), ["code"]),
        _ => assert_eq!(violation.constraint(), "products_code_by_hand"),
    }
    // Where the database names the columns (SQLite, PostgreSQL), the row the call wrote gives their
    // exact values; MariaDB names only the index, and its text is not exact enough for `Known`
    // unless it provably is.
    match DB::DIALECT {
        Dialect::MySql => assert!(
            matches!(
                violation.values(),
                ViolationValues::Known(v) if v == &["1".to_owned()]
            ) || !matches!(violation.values(), ViolationValues::Known(_)),
            "{:?}",
            violation.values()
        ),
        _ => assert_eq!(
            violation.values(),
            &ViolationValues::Known(vec!["1".into()])
        ),
    }
    let message = error.to_string();
    let expected = match DB::DIALECT {
        Dialect::Sqlite => {
            "duplicate Product: a unique constraint (code) already has a row with code = \"1\""
        }
        Dialect::Postgres => {
            "duplicate Product: unique constraint \"products_code_by_hand\" (code) already has a row with code = \"1\""
        }
        // MariaDB names the index only: no columns, so its text cannot be read as exact values.
        Dialect::MySql => {
            "duplicate Product: unique constraint \"products_code_by_hand\" already has a row with the values the database reported as \"1\""
        }
    };
    model_integration::report(&format!("{} undeclared: {message}", DB::DIALECT));
    assert_eq!(message, expected);
    assert_eq!(
        violation.advice(),
        "Product does not declare this constraint: declare it with #[unique] or #[unique_together(…)] for a typed key, get_or_create and update_or_create"
    );
}

async fn other_integrity_errors_are_not_duplicates<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    let loose = LooseProduct {
        id: 0,
        sku: None,
        product_name: "no sku".into(),
        store_id: 1,
        code: 9,
        ean: None,
    };
    let error = loose.insert(&db.pool).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Integrity {
                kind: IntegrityKind::NotNull,
                model: "LooseProduct",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.unique_violation().is_none());
    model_integration::report(&format!("{} not null: {error}", DB::DIALECT));
    assert_eq!(
        error.to_string(),
        "cannot write this `LooseProduct`: a NOT NULL column got NULL"
    );
    let source = std::error::Error::source(&error).expect("a source");
    assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");

    // SQLite does not enforce VARCHAR lengths; the others refuse.
    if DB::DIALECT != Dialect::Sqlite {
        let long = "x".repeat(41);
        let error = product(&long, "long", 1, 10)
            .insert(&db.pool)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::Integrity {
                    kind: IntegrityKind::ValueTooLong,
                    ..
                }
            ),
            "{error:?}"
        );
    }
}

async fn validate_unique_reports_every_violated_constraint<DB: TestBackend>(db: TestDb<DB>) {
    let stored = setup(&db).await;
    let with_ean = Product {
        ean: Some(42),
        ..product("E-1", "with ean", 1, 5)
    }
    .insert(&db.pool)
    .await
    .unwrap();

    // No conflict.
    assert!(
        product("Z-1", "fresh", 1, 6)
            .validate_unique(&db.pool)
            .await
            .unwrap()
            .is_empty()
    );

    // The stored row against itself: nothing.
    assert!(stored.validate_unique(&db.pool).await.unwrap().is_empty());
    assert!(with_ean.validate_unique(&db.pool).await.unwrap().is_empty());

    // One constraint.
    let one = product("A-1", "fresh", 1, 7)
        .validate_unique(&db.pool)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert!(one[0].is::<ProductBySku>());
    assert_eq!(one[0].values(), &ViolationValues::Known(vec!["A-1".into()]));
    assert!(one[0].database_error().is_none());

    // Two constraints at once (and a NULL ean, which collides with nothing).
    let two = product("A-1", AWKWARD, 7, 8)
        .validate_unique(&db.pool)
        .await
        .unwrap();
    let names: Vec<&str> = two.iter().map(|v| v.constraint()).collect();
    assert_eq!(names, ["products_sku_key", "unique_product_per_store"]);

    // Three, with the ean.
    let three = Product {
        ean: Some(42),
        ..product("A-1", AWKWARD, 7, 8)
    }
    .validate_unique(&db.pool)
    .await
    .unwrap();
    assert_eq!(three.len(), 3);

    // Another row's key: editing `with_ean` to take `stored`'s sku is a violation.
    let edited = Product {
        sku: "A-1".into(),
        ..with_ean.clone()
    };
    let found = edited.validate_unique(&db.pool).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].is::<ProductBySku>());
    model_integration::report(&format!("{} validate_unique: {}", DB::DIALECT, found[0]));
}

/// update_or_create never rewrites a stored row's primary key: listing it is refused before any
/// statement, as Django refuses a pk in `update_fields`.
async fn update_or_create_refuses_to_rewrite_the_primary_key<DB: TestBackend>(db: TestDb<DB>) {
    let stored = setup(&db).await;
    let candidate = Product {
        id: stored.id + 100,
        code: 99,
        ..stored.clone()
    };
    let error = Product::update_or_create_by_sku(
        &db.pool,
        &candidate,
        &[ProductField::Id, ProductField::Code],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument { reason, .. } if reason.contains("primary key `id`")),
        "{error:?}"
    );
    let again = Product::by_sku(stored.sku.as_str())
        .get(&db.pool)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.id, again.code),
        (stored.id, stored.code),
        "nothing written"
    );
    // Keyed by the primary key itself, the id is the lookup: allowed, and not rewritten.
    let (row, _) = Product::update_or_create_by_id(
        &db.pool,
        &Product {
            code: 7,
            ..stored.clone()
        },
        &[ProductField::Id, ProductField::Code],
    )
    .await
    .unwrap();
    assert_eq!((row.id, row.code), (stored.id, 7));
}

backend_tests!(
    update_or_create_refuses_to_rewrite_the_primary_key,
    single_column_violation_names_the_constraint,
    composite_violation_with_awkward_values,
    an_undeclared_constraint_is_still_a_unique_violation,
    other_integrity_errors_are_not_duplicates,
    validate_unique_reports_every_violated_constraint,
);
