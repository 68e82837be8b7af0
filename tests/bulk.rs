//! Bulk insert with conflict handling, on every backend: per-row outcomes, in-input duplicates,
//! chunks past the bind limit, update mode, and all-or-nothing.

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{BulkInsert, Dialect, Error, Model, RowOutcome, Schema};

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
    #[unique]
    ean: Option<i64>,
}

fn product(sku: &str, name: &str, price_cents: i64) -> Product {
    Product {
        id: 0,
        sku: sku.into(),
        product_name: name.into(),
        store_id: 1,
        price_cents,
        ean: None,
    }
}

async fn setup<DB: TestBackend>(db: &TestDb<DB>) -> Product {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    product("OLD", "existing", 100)
        .insert(&db.pool)
        .await
        .unwrap()
}

async fn skip_mode_reports_every_row<DB: TestBackend>(db: TestDb<DB>) {
    let old = setup(&db).await;
    let rows = vec![
        product("A", "a", 1),         // 0 new
        product("OLD", "renamed", 2), // 1 already stored
        product("B", "b", 3),         // 2 new
        product("A", "a again", 4),   // 3 duplicate of 0 in the input
        Product {
            ean: None,
            ..product("C", "c", 5)
        }, // 4 new, NULL in a unique column
        Product {
            ean: None,
            ..product("D", "d", 6)
        }, // 5 new, NULL again: no collision
    ];
    let report = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .batch_size(4) // two chunks: the in-input duplicate is in the second
        .run(&db.pool, rows)
        .await
        .unwrap();
    assert_eq!(
        (
            report.inserted,
            report.skipped_existing,
            report.skipped_in_input,
            report.updated
        ),
        (4, 1, 1, 0)
    );
    let outcomes = report.rows.unwrap();
    assert!(matches!(outcomes[1], RowOutcome::SkippedExisting));
    assert_eq!(outcomes[3], RowOutcome::SkippedDuplicate { first: 0 });
    // The primary keys returned are the stored rows'.
    for (i, sku) in [(0, "A"), (2, "B"), (4, "C"), (5, "D")] {
        let RowOutcome::Inserted(id) = outcomes[i] else {
            panic!("row {i}: {:?}", outcomes[i]);
        };
        let stored = Product::by_sku(sku).get(&db.pool).await.unwrap().unwrap();
        assert_eq!(stored.id, id, "row {i}");
    }
    // The first of the duplicates won, and the stored row was left alone.
    assert_eq!(
        Product::by_sku("A")
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap()
            .product_name,
        "a"
    );
    assert_eq!(
        Product::by_sku("OLD").get(&db.pool).await.unwrap().unwrap(),
        old
    );
    assert_eq!(DB::count(&db.pool, "products").await, 5);

    // Counts only: the same counts, no per-row report.
    let again = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .counts_only()
        .run(&db.pool, vec![product("A", "x", 0), product("E", "e", 0)])
        .await
        .unwrap();
    assert_eq!(
        (again.inserted, again.skipped_existing, again.rows),
        (1, 1, None)
    );
}

async fn skip_mode_does_not_hide_another_constraint<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    // A new sku, but (product_name, store_id) is taken by the stored row: an error, not a skip.
    let error = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .run(
            &db.pool,
            vec![product("N1", "fresh", 1), product("N2", "existing", 1)],
        )
        .await
        .unwrap_err();
    let Error::Bulk { row, source, .. } = &error else {
        panic!("{error:?}");
    };
    let violation = source
        .unique_violation()
        .unwrap_or_else(|| panic!("{source:?}"));
    assert!(
        violation.is::<ProductByProductNameAndStoreId>(),
        "{violation}"
    );
    if DB::DIALECT != Dialect::Sqlite {
        assert_eq!(
            *row,
            Some(1),
            "the database names the values, so the row is known: {error}"
        );
    }
    model_integration::report(&format!("{} bulk error: {error}: {source}", DB::DIALECT));
    // All or nothing: N1 is not kept.
    assert_eq!(DB::count(&db.pool, "products").await, 1);
}

/// Each chunk is read and planned while the one before it is written: an error of the earlier
/// chunk's write is still the call's error, not one found in planning the next chunk.
async fn a_failed_chunk_is_the_error_before_the_next_chunks_plan<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    let rows = vec![
        // The first chunk: N2 takes (product_name, store_id) of the stored row, which the write
        // finds.
        product("N1", "fresh", 1),
        product("N2", "existing", 1),
        // The second chunk repeats a key, which an increment refuses when the chunk is planned.
        product("N3", "x", 1),
        product("N3", "y", 1),
    ];
    let error = BulkInsert::<Product>::new()
        .batch_size(2)
        .counts_only()
        .update_conflicts::<ProductBySku>(&[])
        .increment(Product::FIELDS.price_cents)
        .run(&db.pool, rows)
        .await
        .unwrap_err();
    let Error::Bulk {
        first_row, source, ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*first_row, 0, "{error}");
    let violation = source
        .unique_violation()
        .unwrap_or_else(|| panic!("the first chunk's error, not the second's: {source:?}"));
    assert!(
        violation.is::<ProductByProductNameAndStoreId>(),
        "{violation}"
    );
    assert_eq!(DB::count(&db.pool, "products").await, 1, "all or nothing");
}

async fn update_mode_updates_only_the_named_fields<DB: TestBackend>(db: TestDb<DB>) {
    let old = setup(&db).await;
    let rows = vec![
        product("OLD", "renamed", 111), // updates price only
        product("NEW", "new", 5),
        product("NEW", "new", 6), // last wins
    ];
    let report = BulkInsert::<Product>::new()
        .update_conflicts::<ProductBySku>(&[ProductField::PriceCents])
        .run(&db.pool, rows)
        .await
        .unwrap();
    assert_eq!(
        (report.inserted, report.updated, report.skipped_in_input),
        (1, 1, 1)
    );
    let outcomes = report.rows.unwrap();
    assert_eq!(outcomes[0], RowOutcome::Updated(old.id));
    assert_eq!(outcomes[1], RowOutcome::Superseded { last: 2 });
    let stored = Product::by_sku("OLD").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(
        (stored.product_name.as_str(), stored.price_cents),
        ("existing", 111)
    );
    assert_eq!(
        Product::by_sku("NEW")
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap()
            .price_cents,
        6
    );
}

async fn chunks_stay_under_the_bind_limit<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    // 20,000 rows of 5 bound columns: 100,000 values, past every backend's limit in one statement.
    let rows = (0..20_000).map(|i| product(&format!("S{i}"), &format!("n{i}"), i));
    let report = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .batch_size(1_000_000)
        .counts_only()
        .run(&db.pool, rows)
        .await
        .unwrap();
    assert_eq!(report.inserted, 20_000);
    assert_eq!(DB::count(&db.pool, "products").await, 20_001);
}

async fn a_failure_in_a_late_chunk_keeps_nothing<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    let mut rows: Vec<Product> = (0..250)
        .map(|i| product(&format!("L{i}"), &format!("n{i}"), i))
        .collect();
    // In the third chunk, a plain insert meets the stored sku.
    rows[230].sku = "OLD".into();
    let error = BulkInsert::<Product>::new()
        .batch_size(100)
        .run(&db.pool, rows)
        .await
        .unwrap_err();
    let Error::Bulk { row, first_row, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*first_row, 200);
    if DB::DIALECT != Dialect::Sqlite {
        assert_eq!(*row, Some(230), "{error}");
    }
    assert_eq!(
        DB::count(&db.pool, "products").await,
        1,
        "the first two chunks were rolled back too"
    );

    // Inside the caller's transaction, the bulk insert is a savepoint: the caller's own work stays.
    let mut tx = db.pool.begin().await.unwrap();
    product("MINE", "kept", 1).insert(&mut tx).await.unwrap();
    let result = BulkInsert::<Product>::new()
        .run(
            &mut tx,
            vec![product("X1", "x1", 1), product("OLD", "dup", 1)],
        )
        .await;
    assert!(result.is_err());
    tx.commit().await.unwrap();
    assert!(Product::by_sku("MINE").exists(&db.pool).await.unwrap());
    assert!(!Product::by_sku("X1").exists(&db.pool).await.unwrap());
}

/// Settings that cannot run are refused before any statement, with a message that says what to do.
async fn bad_settings_are_refused_before_any_statement<DB: TestBackend>(db: TestDb<DB>) {
    let old = setup(&db).await;
    let rows = || vec![product("OLD", "renamed", 5), product("N", "n", 6)];
    let cases: Vec<(&str, Result<_, Error>)> = vec![
        (
            "primary key",
            BulkInsert::<Product>::new()
                .update_conflicts::<ProductBySku>(&[ProductField::Id, ProductField::ProductName])
                .run(&db.pool, rows())
                .await,
        ),
        (
            "conflict key",
            BulkInsert::<Product>::new()
                .update_conflicts::<ProductBySku>(&[ProductField::Sku, ProductField::PriceCents])
                .run(&db.pool, rows())
                .await,
        ),
        (
            "no fields",
            BulkInsert::<Product>::new()
                .update_conflicts::<ProductBySku>(&[])
                .run(&db.pool, rows())
                .await,
        ),
        (
            "batch size",
            BulkInsert::<Product>::new()
                .batch_size(0)
                .skip_conflicts::<ProductBySku>()
                .run(&db.pool, rows())
                .await,
        ),
    ];
    for (case, result) in cases {
        let error = result.expect_err(case);
        let Error::InvalidArgument { model, reason } = &error else {
            panic!("{case}: {error:?}");
        };
        assert_eq!(*model, "Product");
        let hint = match case {
            "primary key" => "primary key `id`",
            "conflict key" => "`sku`, a field of the conflict key",
            "no fields" => "skip_conflicts",
            _ => "at least one row",
        };
        assert!(reason.contains(hint), "{case}: {reason}");
    }
    // Nothing was written: the stored row is as it was, and N was not inserted.
    assert_eq!(
        Product::by_sku("OLD").get(&db.pool).await.unwrap().unwrap(),
        old
    );
    assert_eq!(DB::count(&db.pool, "products").await, 1);

    // commit_each_chunk cannot commit inside the caller's transaction.
    let mut tx = db.pool.begin().await.unwrap();
    let error = BulkInsert::<Product>::new()
        .commit_each_chunk()
        .run(&mut tx, rows())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument { reason, .. } if reason.contains("commit_each_chunk")),
        "{error:?}"
    );
    tx.rollback().await.unwrap();
}

/// With commit_each_chunk, a failure keeps the chunks before it, and the error says how many rows
/// are committed; without it, the same failure keeps nothing.
async fn commit_each_chunk_keeps_the_chunks_before_a_failure<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    let mut rows: Vec<Product> = (0..250)
        .map(|i| product(&format!("C{i}"), &format!("n{i}"), i))
        .collect();
    // In the third chunk, a row collides with the stored row on (product_name, store_id).
    rows[230].product_name = "existing".into();
    let error = BulkInsert::<Product>::new()
        .batch_size(100)
        .commit_each_chunk()
        .skip_conflicts::<ProductBySku>()
        .run(&db.pool, rows.clone())
        .await
        .unwrap_err();
    let Error::Bulk {
        row,
        first_row,
        committed_rows,
        source,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!((*first_row, *committed_rows), (200, 200), "{error}");
    let at = match row {
        Some(row) => format!("at input row {row}"),
        None => "in the chunk starting at input row 200".to_owned(),
    };
    // What failed is the source, not part of the message.
    assert_eq!(
        error.to_string(),
        format!("bulk insert failed {at}; input rows 0..200 were committed, none after")
    );
    // The chain: the bulk error, the duplicate it met, the database's error.
    let inner = std::error::Error::source(&error).expect("a source");
    assert_eq!(inner.to_string(), source.to_string());
    let database = inner.source().expect("the database's error");
    assert!(
        database.downcast_ref::<sqlx::Error>().is_some(),
        "{database:?}"
    );
    assert!(
        error.unique_violation().is_some(),
        "the typed violation is visible through the wrapper: {error:?}"
    );
    assert_eq!(DB::count(&db.pool, "products").await, 1 + 200);
    assert!(Product::by_sku("C199").exists(&db.pool).await.unwrap());
    assert!(!Product::by_sku("C200").exists(&db.pool).await.unwrap());

    // Fixed, the same call finishes: the committed chunks are skipped as stored.
    rows[230].product_name = "fixed".into();
    let report = BulkInsert::<Product>::new()
        .batch_size(100)
        .commit_each_chunk()
        .skip_conflicts::<ProductBySku>()
        .run(&db.pool, rows)
        .await
        .unwrap();
    assert_eq!(
        (report.inserted, report.skipped_existing, report.chunks),
        (50, 200, 3)
    );
    assert_eq!(DB::count(&db.pool, "products").await, 1 + 250);
}

/// A primary key given as the conflict target is written as given; MySQL would replace an id of 0
/// with a new one, so there a 0 is refused instead.
async fn a_zero_primary_key_as_the_target<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    let result = BulkInsert::<Product>::new()
        .update_conflicts::<ProductById>(&[ProductField::PriceCents])
        .run(&db.pool, vec![product("ZERO", "zero", 7)])
        .await;
    if DB::DIALECT == Dialect::MySql {
        let error = result.unwrap_err();
        let Error::Bulk { row, source, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(*row, Some(0));
        assert!(matches!(**source, Error::InvalidArgument { .. }), "{error}");
        assert!(!Product::by_sku("ZERO").exists(&db.pool).await.unwrap());
    } else {
        let report = result.unwrap();
        assert_eq!(report.rows.unwrap(), vec![RowOutcome::Inserted(0)]);
        let stored = Product::by_sku("ZERO")
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.id, 0);
    }
}

/// A value the database would refuse is refused in skip mode too, on every backend, with the
/// database's own error, and nothing of the call is kept: MySQL's skip mode inserts with `INSERT
/// IGNORE`, which would cut the value and warn, so there the row read back is compared with the row
/// sent, and a difference undoes the insert and runs it plainly.
async fn skip_mode_keeps_refusing_bad_values<DB: TestBackend>(db: TestDb<DB>) {
    setup(&db).await;
    let long = "x".repeat(101); // product_name is max_length = 100
    let error = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .run(
            &db.pool,
            vec![product("FINE", "fine", 1), product("LONG", &long, 2)],
        )
        .await
        .unwrap_err();
    let Error::Bulk { source, .. } = &error else {
        panic!("{error:?}");
    };
    // The database's own error on every backend (on MySQL, from the plain insert run after the
    // checked INSERT IGNORE was undone).
    assert!(
        matches!(
            **source,
            Error::Integrity {
                kind: model_runtime::IntegrityKind::ValueTooLong,
                ..
            }
        ),
        "{}: {error:?}",
        DB::DIALECT
    );
    assert_eq!(DB::count(&db.pool, "products").await, 1, "nothing kept");
}

/// NULLs and values side by side in one column, across chunk boundaries (a chunk of 3 over 8 rows:
/// on PostgreSQL each chunk binds one array per column, NULL elements included), in skip mode and
/// in update mode (a NULL written over a value and a value over a NULL); every row reads back as
/// sent, and the outcomes are exact chunk by chunk.
async fn nulls_round_trip_across_chunks<DB: TestBackend>(db: TestDb<DB>) {
    let old = setup(&db).await;
    let ean = |i: i64| (i % 2 == 0).then_some(1000 + i);
    let rows: Vec<Product> = (0..8)
        .map(|i| Product {
            ean: ean(i),
            ..product(&format!("N{i}"), &format!("name {i}"), i)
        })
        .chain([product("OLD", "ignored", 7)])
        .collect();
    let report = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .batch_size(3)
        .run(&db.pool, rows.clone())
        .await
        .unwrap();
    assert_eq!(
        (report.inserted, report.skipped_existing, report.chunks),
        (8, 1, 3)
    );
    let outcomes = report.rows.unwrap();
    assert_eq!(outcomes[8], RowOutcome::SkippedExisting);
    for (i, row) in rows.iter().enumerate().take(8) {
        let stored = Product::by_sku(row.sku.as_str())
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcomes[i], RowOutcome::Inserted(stored.id));
        assert_eq!(Product { id: 0, ..stored }, *row, "{}", DB::DIALECT);
    }
    // Update mode flips every ean: values over NULLs, NULLs over values.
    let flipped: Vec<Product> = (0..8)
        .map(|i| Product {
            ean: (i % 2 == 1).then_some(2000 + i),
            ..product(&format!("N{i}"), "unchanged name", i)
        })
        .collect();
    let report = BulkInsert::<Product>::new()
        .update_conflicts::<ProductBySku>(&[ProductField::Ean])
        .batch_size(3)
        .counts_only()
        .run(&db.pool, flipped.clone())
        .await
        .unwrap();
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (0, 8, 0)
    );
    for (i, row) in flipped.iter().enumerate() {
        let stored = Product::by_sku(row.sku.as_str())
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.ean, row.ean, "row {i} on {}", DB::DIALECT);
        assert_eq!(
            stored.product_name,
            format!("name {i}"),
            "not a listed field"
        );
    }
    assert_eq!(
        Product::by_sku("OLD").get(&db.pool).await.unwrap().unwrap(),
        old
    );
}

backend_tests!(
    a_failed_chunk_is_the_error_before_the_next_chunks_plan,
    nulls_round_trip_across_chunks,
    skip_mode_keeps_refusing_bad_values,
    a_zero_primary_key_as_the_target,
    bad_settings_are_refused_before_any_statement,
    commit_each_chunk_keeps_the_chunks_before_a_failure,
    skip_mode_reports_every_row,
    skip_mode_does_not_hide_another_constraint,
    update_mode_updates_only_the_named_fields,
    chunks_stay_under_the_bind_limit,
    a_failure_in_a_late_chunk_keeps_nothing,
);
