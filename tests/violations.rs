//! Duplicate-key reports that the database's text alone gets wrong: MariaDB's lossy rendering,
//! PostgreSQL's 63-byte names and quoted identifiers, SQLite's missing values in a bulk insert; and
//! `validate_unique_new` for new rows with an explicit primary key.

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{BulkInsert, Dialect, Error, KeyId, Model, Schema, ViolationValues};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "tags")]
#[unique_together(label, rank, name = "tags_label_rank")]
struct Tag {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 200)]
    slug: String,
    #[model(max_length = 200)]
    label: String,
    rank: i64,
}

fn tag(slug: &str, label: &str, rank: i64) -> Tag {
    Tag {
        id: 0,
        slug: slug.into(),
        label: label.into(),
        rank,
    }
}

async fn tags<DB: TestBackend>(db: &TestDb<DB>) {
    Schema::new().model::<Tag>().create(&db.pool).await.unwrap();
}

/// `"emoji 😀🎉"` came back `Known(["emoji ??"])` from MariaDB's text, a 70-byte key came back cut:
/// a bulk insert (which has no single row to read the values from) now finds its input row and
/// reports that row's exact values, on every backend.
async fn bulk_reports_exact_values_of_lossy_keys<DB: TestBackend>(db: TestDb<DB>) {
    tags(&db).await;
    let long = format!("{}-and-more", "x".repeat(70));
    for (n, slug) in ["emoji 😀🎉", long.as_str(), "nul\0inside"]
        .into_iter()
        .enumerate()
    {
        if DB::DIALECT == Dialect::Postgres && slug.contains('\0') {
            continue;
        }
        tag(slug, "first", n as i64).insert(&db.pool).await.unwrap();
        // A plain insert: the call's own row, never the parsed text.
        let error = tag(slug, "again", 50 + n as i64)
            .insert(&db.pool)
            .await
            .unwrap_err();
        let v = error
            .unique_violation()
            .unwrap_or_else(|| panic!("{error:?}"));
        assert_eq!(v.values(), &ViolationValues::Known(vec![slug.to_owned()]));
        let error = BulkInsert::<Tag>::new()
            .run(
                &db.pool,
                vec![
                    tag(&format!("new {n}"), "a", 100),
                    tag(&format!("other {n}"), "b", 100),
                    tag(slug, "c", 100),
                ],
            )
            .await
            .unwrap_err();
        let Error::Bulk { row, source, .. } = &error else {
            panic!("{error:?}")
        };
        let v = source
            .unique_violation()
            .unwrap_or_else(|| panic!("{error:?}"));
        assert!(v.is::<TagBySlug>(), "{v}");
        assert_eq!(*row, Some(2), "{}: {error}", DB::DIALECT);
        assert_eq!(v.values(), &ViolationValues::Known(vec![slug.to_owned()]));
    }
}

/// A composite key whose MariaDB text is cut: the split of the cut text gave wrong values.
async fn composite_values_of_a_cut_text_are_not_guessed<DB: TestBackend>(db: TestDb<DB>) {
    tags(&db).await;
    // A dash inside the part MariaDB prints, then cut: splitting on `-` would give two "values".
    let label = format!("{}-{}", "y".repeat(30), "y".repeat(40));
    tag("one", &label, 7).insert(&db.pool).await.unwrap();
    // update_or_create with another row's update values: the call has no single row to read.
    let create = tag("two", &label, 7);
    let changes = tag("unrelated", "z", 0);
    let error = model_runtime::update_or_create::<TagBySlug>(
        &db.pool,
        &create,
        model_runtime::Changes::new(&changes, &[TagField::Rank]),
    )
    .await
    .unwrap_err();
    let v = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert!(v.is::<TagByLabelAndRank>(), "{v}");
    let expected = match DB::DIALECT {
        // PostgreSQL's detail quotes the values whole.
        Dialect::Postgres => ViolationValues::Known(vec![label.clone(), "7".into()]),
        // MariaDB's text is cut at 64 bytes: only the raw text can be given.
        Dialect::MySql => ViolationValues::Ambiguous(format!("{}...", &label[..61])),
        // SQLite reports no values, and this call has no single row holding them.
        Dialect::Sqlite => ViolationValues::Unknown,
    };
    assert_eq!(v.values(), &expected);
}

/// An update_or_create whose update writes part of a composite key: the violated key's other
/// column comes from the stored row, so the caller's row does not tell the values.
async fn partial_key_update_reports_no_guessed_values<DB: TestBackend>(db: TestDb<DB>) {
    tags(&db).await;
    tag("target", "old", 2).insert(&db.pool).await.unwrap();
    tag("blocker", "taken", 2).insert(&db.pool).await.unwrap();
    // The caller's rank is 1, the stored row's 2: the update collides on ("taken", 2).
    let error =
        Tag::update_or_create_by_slug(&db.pool, &tag("target", "taken", 1), &[TagField::Label])
            .await
            .unwrap_err();
    let v = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert!(v.is::<TagByLabelAndRank>(), "{v}");
    match v.values() {
        ViolationValues::Known(values) => assert_eq!(values, &["taken", "2"], "{}", DB::DIALECT),
        other => assert_eq!(other, &ViolationValues::Unknown, "{}", DB::DIALECT),
    }

    // The same through a bulk insert in update mode: the row written is the stored one, updated.
    let error = BulkInsert::<Tag>::new()
        .update_conflicts::<TagBySlug>(&[TagField::Label])
        .run(&db.pool, vec![tag("target", "taken", 1)])
        .await
        .unwrap_err();
    let Error::Bulk { source, .. } = &error else {
        panic!("{error:?}")
    };
    let v = source
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert!(v.is::<TagByLabelAndRank>(), "{v}");
    if let ViolationValues::Known(values) = v.values() {
        assert_eq!(values, &["taken", "2"], "{}: {error}", DB::DIALECT);
    }
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "a_table_name_that_is_sixty_bytes_long_xxxxxxxxxxxxxxxxxxxxxx")]
struct LongName {
    #[model(primary_key)]
    code: i64,
    note: String,
}

/// PostgreSQL names the primary key of a 60-byte table with the table cut to 58 bytes: the key
/// was `None` and the advice said the model does not declare it.
async fn primary_key_of_a_long_table_is_recognised<DB: TestBackend>(db: TestDb<DB>) {
    assert_eq!(LongName::META.table.len(), 60);
    Schema::new()
        .model::<LongName>()
        .create(&db.pool)
        .await
        .unwrap();
    let first = LongName {
        code: 1,
        note: "a".into(),
    };
    first.insert(&db.pool).await.unwrap();
    let error = first.insert(&db.pool).await.unwrap_err();
    let v = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert_eq!(v.key(), Some(KeyId::PrimaryKey), "{v}");
    assert!(v.is::<LongNameByCode>());
    assert_eq!(
        error.to_string(),
        "duplicate LongName: the primary key (code) already has a row with code = \"1\""
    );
    assert!(
        v.advice().starts_with("LongName::get_or_create_by_code "),
        "{}",
        v.advice()
    );
    // Without the row: a bulk insert.
    let error = BulkInsert::<LongName>::new()
        .run(&db.pool, vec![first.clone()])
        .await
        .unwrap_err();
    let Error::Bulk { row, source, .. } = &error else {
        panic!("{error:?}")
    };
    let v = source
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert_eq!(v.key(), Some(KeyId::PrimaryKey), "{v}");
    assert_eq!(*row, Some(0));
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "pages")]
struct Page {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[model(column = "Slug", max_length = 50)]
    slug: String,
}

/// PostgreSQL quotes `"Slug"` in its detail: `columns()` gave `["\"Slug\""]`.
async fn quoted_column_names_are_unquoted<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Page>()
        .create(&db.pool)
        .await
        .unwrap();
    let index = match DB::DIALECT {
        Dialect::MySql => "CREATE UNIQUE INDEX pages_slug_by_hand ON pages (`Slug`)",
        _ => "CREATE UNIQUE INDEX pages_slug_by_hand ON pages (\"Slug\")",
    };
    DB::run(&db.pool, index).await;
    let page = Page {
        id: 0,
        slug: "s-2".into(),
    };
    page.insert(&db.pool).await.unwrap();
    let error = page.insert(&db.pool).await.unwrap_err();
    let v = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert_eq!(v.key(), None);
    match DB::DIALECT {
        // MariaDB names the key, not its columns.
        Dialect::MySql => assert_eq!(v.constraint(), "pages_slug_by_hand"),
        _ => assert_eq!(v.columns(), ["Slug"], "{v}"),
    }
}

/// SQLite reports columns only: a failed plain bulk insert named no input row.
async fn bulk_names_the_input_row_without_values_in_the_report<DB: TestBackend>(db: TestDb<DB>) {
    tags(&db).await;
    tag("stored", "s", 1).insert(&db.pool).await.unwrap();

    // A key already stored, at input row 2.
    let error = BulkInsert::<Tag>::new()
        .run(
            &db.pool,
            vec![
                tag("a", "a", 1),
                tag("b", "b", 1),
                tag("stored", "c", 1),
                tag("d", "d", 1),
            ],
        )
        .await
        .unwrap_err();
    let Error::Bulk { row, source, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(
        source
            .unique_violation()
            .is_some_and(|v| v.is::<TagBySlug>())
    );
    assert_eq!(*row, Some(2), "{}: {error}", DB::DIALECT);

    // Two input rows with the same key, none stored: the later one, at input row 3, fails.
    let error = BulkInsert::<Tag>::new()
        .batch_size(10)
        .run(
            &db.pool,
            vec![
                tag("a", "a", 1),
                tag("dup", "b", 1),
                tag("c", "c", 1),
                tag("dup", "d", 1),
            ],
        )
        .await
        .unwrap_err();
    let Error::Bulk { row, source, .. } = &error else {
        panic!("{error:?}")
    };
    let v = source
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert!(v.is::<TagBySlug>());
    assert_eq!(v.values(), &ViolationValues::Known(vec!["dup".into()]));
    match DB::DIALECT {
        // PostgreSQL's aborted transaction allows no read to tell which of the two failed.
        Dialect::Postgres => assert_eq!(*row, None),
        _ => assert_eq!(*row, Some(3), "{}: {error}", DB::DIALECT),
    }

    // Same key twice, and stored: the first of the two fails; in a second chunk, counted from
    // the whole input.
    let error = BulkInsert::<Tag>::new()
        .batch_size(2)
        .run(
            &db.pool,
            vec![
                tag("e", "e", 1),
                tag("f", "f", 1),
                tag("stored", "g", 1),
                tag("stored", "h", 1),
            ],
        )
        .await
        .unwrap_err();
    let Error::Bulk { row, first_row, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*first_row, 2);
    match DB::DIALECT {
        Dialect::Postgres => assert_eq!(*row, None),
        _ => assert_eq!(*row, Some(2), "{}: {error}", DB::DIALECT),
    }
    assert_eq!(
        DB::count(&db.pool, "tags").await,
        1,
        "none of the bulk rows kept"
    );

    // Counts only: the same row is named.
    let error = BulkInsert::<Tag>::new()
        .counts_only()
        .run(
            &db.pool,
            vec![tag("a", "a", 1), tag("b", "b", 1), tag("stored", "c", 1)],
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Bulk { row: Some(2), .. }), "{error}");

    // A large chunk with the repeat at its very end: found in one pass.
    let mut rows: Vec<Tag> = (0..4000).map(|i| tag(&format!("k{i}"), "x", i)).collect();
    rows.push(tag("k17", "y", 1));
    let started = std::time::Instant::now();
    let error = BulkInsert::<Tag>::new()
        .batch_size(5000)
        .run(&db.pool, rows)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let Error::Bulk { row, .. } = &error else {
        panic!("{error:?}")
    };
    match DB::DIALECT {
        Dialect::Postgres => assert_eq!(*row, None, "two rows match PostgreSQL's detail"),
        _ => assert_eq!(*row, Some(4000), "{error}"),
    }
    model_integration::report(&format!(
        "{} failed 4001-row bulk insert, culprit search included: {elapsed:?}",
        DB::DIALECT
    ));
    assert_eq!(DB::count(&db.pool, "tags").await, 1);
}

/// A bad value is refused before anything is sent, and nothing is lost: NaN on SQLite was stored
/// as NULL, and NaN into a NOT NULL column was reported as "a NOT NULL column got NULL".
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "measures")]
struct Measure {
    #[model(primary_key, auto_increment)]
    id: i64,
    value: f64,
    maybe: Option<f64>,
}

async fn nan_is_refused_where_it_cannot_be_stored<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Measure>()
        .create(&db.pool)
        .await
        .unwrap();
    for m in [
        Measure {
            id: 0,
            value: f64::NAN,
            maybe: None,
        },
        Measure {
            id: 0,
            value: 1.0,
            maybe: Some(f64::NAN),
        },
    ] {
        let result = m.insert(&db.pool).await;
        match DB::DIALECT {
            Dialect::Postgres => {
                let stored = result.unwrap();
                let read = Measure::by_id(stored.id)
                    .get(&db.pool)
                    .await
                    .unwrap()
                    .unwrap();
                assert!(read.value.is_nan() || read.maybe.is_some_and(f64::is_nan));
            }
            _ => {
                let error = result.unwrap_err();
                let field = if m.value.is_nan() { "value" } else { "maybe" };
                assert!(
                    matches!(&error, Error::InvalidValue { model: "Measure", field: f, .. } if *f == field),
                    "{error:?}"
                );
                let reason = match DB::DIALECT {
                    Dialect::Sqlite => "SQLite stores NaN as NULL",
                    _ => "MariaDB and MySQL cannot store NaN",
                };
                assert_eq!(
                    error.to_string(),
                    format!(
                        "cannot write this `Measure`: field `{field}`: {reason}; nothing was sent"
                    )
                );
            }
        }
    }
    let expected = if DB::DIALECT == Dialect::Postgres {
        2
    } else {
        0
    };
    assert_eq!(DB::count(&db.pool, "measures").await, expected);
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "codes")]
struct Code {
    #[model(primary_key, max_length = 20)]
    code: String,
    #[unique]
    #[model(max_length = 50)]
    name: String,
}

/// A new row whose explicit primary key is stored passed `validate_unique` (its own key is
/// excluded), then failed on insert. `validate_unique_new` checks the primary key too.
async fn validate_unique_new_checks_the_primary_key<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Code>()
        .create(&db.pool)
        .await
        .unwrap();
    let stored = Code {
        code: "EUR".into(),
        name: "euro".into(),
    }
    .insert(&db.pool)
    .await
    .unwrap();
    let new = Code {
        code: "EUR".into(),
        name: "another".into(),
    };
    // The edit check keeps its meaning: the row with this primary key is the row itself.
    assert!(new.validate_unique(&db.pool).await.unwrap().is_empty());
    assert!(stored.validate_unique(&db.pool).await.unwrap().is_empty());
    // The new-row check finds the primary key taken.
    let found = new.validate_unique_new(&db.pool).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key(), Some(KeyId::PrimaryKey));
    assert_eq!(
        found[0].values(),
        &ViolationValues::Known(vec!["EUR".into()])
    );
    // And the insert agrees.
    let error = new.insert(&db.pool).await.unwrap_err();
    assert!(
        error
            .unique_violation()
            .is_some_and(|v| v.key() == Some(KeyId::PrimaryKey))
    );
    // Both constraints at once, and none.
    let both = Code {
        code: "EUR".into(),
        name: "euro".into(),
    };
    let found = model_runtime::validate_unique_new(&db.pool, &both)
        .await
        .unwrap();
    let keys: Vec<_> = found.iter().map(|v| v.key()).collect();
    assert_eq!(keys, [Some(KeyId::PrimaryKey), Some(KeyId::Unique(0))]);
    let fresh = Code {
        code: "USD".into(),
        name: "dollar".into(),
    };
    assert!(
        fresh
            .validate_unique_new(&db.pool)
            .await
            .unwrap()
            .is_empty()
    );

    // An auto-increment primary key is the database's to choose: not checked.
    tags(&db).await;
    let t = tag("s", "l", 1).insert(&db.pool).await.unwrap();
    let again = Tag {
        slug: "other".into(),
        label: "other".into(),
        ..t
    };
    assert!(
        again
            .validate_unique_new(&db.pool)
            .await
            .unwrap()
            .is_empty()
    );
    again.insert(&db.pool).await.unwrap();
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "days")]
struct Day {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    day: chrono::NaiveDate,
    #[unique]
    amount: rust_decimal::Decimal,
}

fn day(d: u32, amount: &str) -> Day {
    Day {
        id: 0,
        day: chrono::NaiveDate::from_ymd_opt(2024, 1, d).unwrap(),
        amount: amount.parse().unwrap(),
    }
}

/// Keys whose MariaDB rendering is not reproduced (dates, decimals): the input row is still found,
/// by which row's key is stored or repeated, compared exactly (no text, so no collation).
async fn bulk_finds_the_row_of_a_date_or_decimal_key<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Day>().create(&db.pool).await.unwrap();
    day(2, "1.5").insert(&db.pool).await.unwrap();
    let cases = [
        // (input, failing row, violated key's column, where PostgreSQL cannot tell)
        (
            vec![day(10, "10"), day(11, "11"), day(2, "12")],
            Some(2),
            "day",
            false,
        ),
        // 1.50 equals the stored 1.5 on every backend (SQLite stores normalized text).
        (
            vec![day(10, "10"), day(11, "11"), day(12, "1.50")],
            Some(2),
            "amount",
            false,
        ),
        (
            vec![day(10, "10"), day(11, "11"), day(12, "12"), day(11, "13")],
            Some(3),
            "day",
            true,
        ),
    ];
    for (rows, expected, column, ambiguous_on_postgres) in cases {
        let error = BulkInsert::<Day>::new()
            .run(&db.pool, rows)
            .await
            .unwrap_err();
        let Error::Bulk { row, source, .. } = &error else {
            panic!("{error:?}")
        };
        let v = source
            .unique_violation()
            .unwrap_or_else(|| panic!("{error:?}"));
        assert_eq!(v.columns(), [column], "{v}");
        if DB::DIALECT == Dialect::Postgres && ambiguous_on_postgres {
            assert_eq!(*row, None);
        } else {
            assert_eq!(*row, expected, "{}: {error}", DB::DIALECT);
        }
    }
    assert_eq!(DB::count(&db.pool, "days").await, 1);
}

backend_tests!(
    bulk_finds_the_row_of_a_date_or_decimal_key,
    bulk_reports_exact_values_of_lossy_keys,
    composite_values_of_a_cut_text_are_not_guessed,
    partial_key_update_reports_no_guessed_values,
    primary_key_of_a_long_table_is_recognised,
    quoted_column_names_are_unquoted,
    bulk_names_the_input_row_without_values_in_the_report,
    nan_is_refused_where_it_cannot_be_stored,
    validate_unique_new_checks_the_primary_key,
);
