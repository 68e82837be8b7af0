//! Awkward values through every write path on every backend: each is written by insert, update,
//! get_or_create, update_or_create, bulk insert and bulk update mode and read back exactly, or refused with
//! `Error::InvalidValue` where the backend cannot store it; and a duplicate of each names the right
//! constraint with values that are exactly right (`Known`) or honestly not (`Ambiguous`/`Unknown`),
//! never a wrong `Known`.

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{
    BulkInsert, Changes, Dialect, Error, KeyId, Model, Outcome, Schema, ViolationValues,
};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "awkward")]
#[unique_together(part, n, name = "awkward_pair")]
struct Awkward {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 200)]
    label: String,
    #[model(max_length = 200)]
    part: String,
    n: i64,
    ratio: Option<f64>,
    note: String,
}

/// The awkward texts: quotes, separators, MariaDB's message syntax, 4-byte characters, NUL,
/// control characters, lengths around MariaDB's 64-byte cut, case and trailing spaces.
fn texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "it's",
        "say \"hi\"",
        "back`tick`",
        "a-b",
        "a, b",
        "x' for key 'y",
        "Duplicate entry 'z' for key 'awkward_label_key'",
        "emoji 😀🎉",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ?",
        "nul\0byte",
        "ctl\u{1}\u{7f}\t\n",
        "back\\slash \\0000",
        "Case",
        "case",
        "trail ",
        "ends with ...",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for len in 61..=65 {
        texts.push("k".repeat(len));
    }
    // 4-byte characters across the cut: 15 emoji (60 bytes) and 17 (68 bytes).
    texts.push("😀".repeat(15));
    texts.push("😀".repeat(17));
    // Two-byte characters across the cut, and a long text differing only past byte 61.
    texts.push("é".repeat(40));
    texts.push(format!("{}-tail-one", "p".repeat(60)));
    texts.push(format!("{}-tail-two", "p".repeat(60)));
    texts
}

const EXTREMES: [i64; 4] = [i64::MIN, i64::MAX, -1, 0];

fn row(text: &str, n: i64) -> Awkward {
    Awkward {
        id: 0,
        label: text.to_owned(),
        part: text.to_owned(),
        n,
        ratio: None,
        note: text.to_owned(),
    }
}

/// What a backend cannot store exactly, per the measurements in `model-runtime/src/check.rs`.
fn refused(dialect: Dialect, text: &str) -> bool {
    dialect == Dialect::Postgres && text.contains('\0')
}

fn assert_invalid(error: &Error, field: &str) {
    assert!(
        matches!(error, Error::InvalidValue { model: "Awkward", field: f, .. } if *f == field),
        "expected InvalidValue on {field}: {error:?}"
    );
}

async fn clear<DB: TestBackend>(db: &TestDb<DB>) {
    DB::run(&db.pool, "DELETE FROM awkward").await;
}

async fn read<DB: TestBackend>(db: &TestDb<DB>, id: i64) -> Awkward {
    Awkward::by_id(id)
        .get(&db.pool)
        .await
        .unwrap()
        .expect("the row just written")
}

/// Every text through every write path, read back exactly, or refused with nothing stored.
async fn every_write_path_round_trips_or_refuses<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Awkward>()
        .create(&db.pool)
        .await
        .unwrap();
    let dialect = DB::DIALECT;
    let texts = texts();
    for (i, text) in texts.iter().enumerate() {
        let n = EXTREMES[i % EXTREMES.len()];
        let wanted = row(text, n);
        let refuse = refused(dialect, text);
        clear(&db).await;

        // insert
        match wanted.insert(&db.pool).await {
            Ok(stored) => {
                assert!(!refuse, "{dialect} accepted {text:?}");
                assert_eq!(
                    stored,
                    Awkward {
                        id: stored.id,
                        ..wanted.clone()
                    },
                    "{text:?}"
                );
                assert_eq!(read(&db, stored.id).await, stored, "insert {text:?}");
            }
            Err(error) => {
                assert!(refuse, "{dialect} insert {text:?}: {error}");
                assert_invalid(&error, "label");
            }
        }
        clear(&db).await;

        // update
        let base = row(&format!("base {i}"), 1).insert(&db.pool).await.unwrap();
        let edited = Awkward {
            id: base.id,
            ..wanted.clone()
        };
        match edited.update(&db.pool).await {
            Ok(stored) => {
                assert!(!refuse);
                assert_eq!(stored, edited, "update {text:?}");
                assert_eq!(read(&db, base.id).await, edited, "update {text:?}");
            }
            Err(error) => {
                assert!(refuse, "{dialect} update {text:?}: {error}");
                assert_invalid(&error, "label");
                assert_eq!(read(&db, base.id).await, base, "nothing changed");
            }
        }
        clear(&db).await;

        // get_or_create, twice: created, then found
        match Awkward::get_or_create_by_label(&db.pool, &wanted).await {
            Ok((created, outcome)) => {
                assert!(!refuse);
                assert_eq!(outcome, Outcome::Created);
                assert_eq!(read(&db, created.id).await, created);
                assert_eq!(created.label, *text);
                let (found, outcome) = Awkward::get_or_create_by_label(&db.pool, &wanted)
                    .await
                    .unwrap();
                assert_eq!((found, outcome), (created, Outcome::Found), "{text:?}");
            }
            Err(error) => {
                assert!(refuse, "{dialect} get_or_create {text:?}: {error}");
                assert_invalid(&error, "label");
            }
        }
        clear(&db).await;

        // update_or_create: created, then updated with the awkward text as the new note
        let create = Awkward {
            note: "first".into(),
            ..wanted.clone()
        };
        match Awkward::update_or_create_by_label(&db.pool, &create, &[AwkwardField::Note]).await {
            Ok((created, outcome)) => {
                assert!(!refuse);
                assert_eq!(outcome, Outcome::Created);
                assert_eq!(created.label, *text);
                let (updated, outcome) =
                    Awkward::update_or_create_by_label(&db.pool, &wanted, &[AwkwardField::Note])
                        .await
                        .unwrap();
                let expected = if *text == "first" {
                    Outcome::Unchanged
                } else {
                    Outcome::Updated
                };
                assert_eq!(outcome, expected, "{text:?}");
                assert_eq!(updated.note, *text);
                assert_eq!(read(&db, created.id).await, updated, "{text:?}");
            }
            Err(error) => {
                assert!(refuse, "{dialect} update_or_create {text:?}: {error}");
                assert_invalid(&error, "label");
            }
        }
    }

    // bulk: every text the backend accepts in one call, read back by key; the refused ones in a
    // call of their own, refused whole with the input row named.
    clear(&db).await;
    let (accepted, rejected): (Vec<_>, Vec<_>) = texts
        .iter()
        .enumerate()
        .map(|(i, t)| row(t, EXTREMES[i % EXTREMES.len()]))
        .partition(|r| !refused(dialect, &r.label));
    // MariaDB compares with PAD SPACE: "trail " is "trail" there. Neither is in the list twice.
    let report = BulkInsert::<Awkward>::new()
        .batch_size(7)
        .run(&db.pool, accepted.clone())
        .await
        .unwrap();
    assert_eq!(report.inserted, accepted.len() as u64);
    for wanted in &accepted {
        let stored = Awkward::by_label(wanted.label.clone())
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{dialect}: {:?} not found", wanted.label));
        assert_eq!(
            stored,
            Awkward {
                id: stored.id,
                ..wanted.clone()
            }
        );
    }
    // Update mode over the same texts: the first half stored, the rest new. The stored rows are
    // found by their awkward keys (and upserted under their stored ids on SQLite and PostgreSQL);
    // a second identical call finds every row unchanged.
    clear(&db).await;
    let half = accepted.len() / 2;
    BulkInsert::<Awkward>::new()
        .run(&db.pool, accepted[..half].to_vec())
        .await
        .unwrap();
    let changed: Vec<Awkward> = accepted
        .iter()
        .map(|r| Awkward {
            note: format!("{}|2", r.note),
            n: r.n.wrapping_add(1),
            ..r.clone()
        })
        .collect();
    let update = || {
        BulkInsert::<Awkward>::new()
            .batch_size(7)
            .update_conflicts::<AwkwardByLabel>(&[AwkwardField::Note, AwkwardField::N])
    };
    let report = update()
        .run(&db.pool, changed.clone())
        .await
        .unwrap_or_else(|e| panic!("{dialect} bulk update: {e}"));
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (changed.len() as u64 - half as u64, half as u64, 0),
        "{dialect} bulk update"
    );
    for wanted in &changed {
        let stored = Awkward::by_label(wanted.label.clone())
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{dialect}: {:?} not found after update", wanted.label));
        assert_eq!(
            stored,
            Awkward {
                id: stored.id,
                ..wanted.clone()
            },
            "{dialect} bulk update"
        );
    }
    let again = update()
        .counts_only()
        .run(&db.pool, changed.clone())
        .await
        .unwrap();
    assert_eq!(
        (again.inserted, again.updated, again.unchanged),
        (0, 0, changed.len() as u64),
        "{dialect} bulk update of the values already stored"
    );
    assert_eq!(
        DB::count(&db.pool, "awkward").await,
        changed.len() as i64,
        "{dialect}: one row per text"
    );
    if !rejected.is_empty() {
        let before = DB::count(&db.pool, "awkward").await;
        let mut input = vec![row("fine", 5)];
        input.extend(rejected);
        let error = BulkInsert::<Awkward>::new()
            .run(&db.pool, input)
            .await
            .unwrap_err();
        match &error {
            Error::Bulk { row, source, .. } => {
                assert_eq!(*row, Some(1));
                assert_invalid(source, "label");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(DB::count(&db.pool, "awkward").await, before, "none kept");
    }
}

/// `values` is either exactly `expected` or honestly not known.
fn assert_honest(values: &ViolationValues, expected: &[String], context: &str) {
    if let ViolationValues::Known(values) = values {
        assert_eq!(values, expected, "a wrong Known: {context}");
    }
}

/// A duplicate of every text, by every write path that can raise one.
async fn duplicates_report_the_right_constraint_and_honest_values<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Awkward>()
        .create(&db.pool)
        .await
        .unwrap();
    let dialect = DB::DIALECT;
    for (i, text) in texts().iter().enumerate() {
        if refused(dialect, text) {
            continue;
        }
        let n = EXTREMES[i % EXTREMES.len()];
        clear(&db).await;
        let stored = row(text, n).insert(&db.pool).await.unwrap();
        let label_values = vec![text.clone()];
        let pair_values = vec![text.clone(), n.to_string()];

        // insert, same label: the call's row gives the exact values on every backend.
        let error = Awkward {
            part: "other".into(),
            ..row(text, n)
        }
        .insert(&db.pool)
        .await
        .unwrap_err();
        let v = error
            .unique_violation()
            .unwrap_or_else(|| panic!("{error:?}"));
        assert!(v.is::<AwkwardByLabel>(), "{text:?}: {v}");
        assert_eq!(v.constraint(), "awkward_label_key");
        assert_eq!(
            v.values(),
            &ViolationValues::Known(label_values.clone()),
            "{text:?}"
        );

        // update of another row onto the same pair.
        let other = row(&format!("other {i}"), 3)
            .insert(&db.pool)
            .await
            .unwrap();
        let error = Awkward {
            part: text.clone(),
            n,
            ..other.clone()
        }
        .update(&db.pool)
        .await
        .unwrap_err();
        let v = error
            .unique_violation()
            .unwrap_or_else(|| panic!("{error:?}"));
        assert!(v.is::<AwkwardByPartAndN>(), "{text:?}: {v}");
        assert_eq!(v.values(), &ViolationValues::Known(pair_values.clone()));

        // get_or_create by label, colliding on the pair.
        let error = Awkward::get_or_create_by_label(
            &db.pool,
            &Awkward {
                label: format!("fresh {i}"),
                ..row(text, n)
            },
        )
        .await
        .unwrap_err();
        let v = error
            .unique_violation()
            .unwrap_or_else(|| panic!("{error:?}"));
        assert!(v.is::<AwkwardByPartAndN>());
        assert_eq!(v.values(), &ViolationValues::Known(pair_values.clone()));

        // update_or_create whose update values come from another row: the report's text alone
        // tells the values, so they must be exact or not Known.
        let create = Awkward {
            label: format!("fresh {i}"),
            ..row(text, n)
        };
        let changes = row("unrelated", 0);
        let error = model_runtime::update_or_create::<AwkwardByLabel>(
            &db.pool,
            &create,
            Changes::new(&changes, &[AwkwardField::Note]),
        )
        .await
        .unwrap_err();
        let v = error
            .unique_violation()
            .unwrap_or_else(|| panic!("{error:?}"));
        assert!(v.is::<AwkwardByPartAndN>());
        assert_honest(
            v.values(),
            &pair_values,
            &format!("{dialect} update_or_create {text:?}"),
        );

        // bulk: a fresh row, then the duplicate label: row 1 named, its exact values.
        let error = BulkInsert::<Awkward>::new()
            .run(
                &db.pool,
                vec![
                    row(&format!("bulk fresh {i}"), 9),
                    Awkward {
                        part: "bulk other".into(),
                        ..row(text, n)
                    },
                ],
            )
            .await
            .unwrap_err();
        let Error::Bulk {
            row: at, source, ..
        } = &error
        else {
            panic!("{error:?}")
        };
        let v = source
            .unique_violation()
            .unwrap_or_else(|| panic!("{error:?}"));
        assert!(v.is::<AwkwardByLabel>(), "{text:?}: {v}");
        assert_eq!(*at, Some(1), "{dialect} bulk {text:?}: {error}");
        assert_eq!(v.values(), &ViolationValues::Known(label_values.clone()));

        // bulk, the same row twice in the input and not stored: the second is the culprit.
        clear(&db).await;
        let twice = row(text, n);
        let error = BulkInsert::<Awkward>::new()
            .run(&db.pool, vec![row("lead", 1), twice.clone(), twice.clone()])
            .await
            .unwrap_err();
        let Error::Bulk {
            row: at, source, ..
        } = &error
        else {
            panic!("{error:?}")
        };
        let v = source
            .unique_violation()
            .unwrap_or_else(|| panic!("{error:?}"));
        assert!(v.key().is_some(), "{v}");
        let expected = match v.key() {
            Some(KeyId::Unique(0)) => vec![twice.label.clone()],
            _ => vec![twice.part.clone(), n.to_string()],
        };
        assert_eq!(
            v.values(),
            &ViolationValues::Known(expected),
            "{dialect} {text:?}"
        );
        match dialect {
            // PostgreSQL's aborted transaction allows no read to tell the two apart.
            Dialect::Postgres => assert!(matches!(at, None | Some(2)), "{at:?}"),
            _ => assert_eq!(*at, Some(2), "{dialect} twice {text:?}: {error}"),
        }
        assert_eq!(DB::count(&db.pool, "awkward").await, 0, "none kept");
        let _ = stored;
    }
}

/// Trailing spaces and case are significant in a key on every backend: key columns on MariaDB are
/// `utf8mb4_nopad_bin` (its default collations, and `utf8mb4_bin` too, pad with spaces).
async fn trailing_space_variants<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Awkward>()
        .create(&db.pool)
        .await
        .unwrap();
    row("pad", 1).insert(&db.pool).await.unwrap();
    let stored = row("pad ", 2).insert(&db.pool).await.unwrap();
    assert_eq!(read(&db, stored.id).await.label, "pad ");
    let stored = row("Pad", 3).insert(&db.pool).await.unwrap();
    assert_eq!(read(&db, stored.id).await.label, "Pad");
    // And the same key again is a duplicate.
    let error = row("pad ", 4).insert(&db.pool).await.unwrap_err();
    let v = error
        .unique_violation()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert!(v.is::<AwkwardByLabel>());
    assert_eq!(v.values(), &ViolationValues::Known(vec!["pad ".into()]));
}

/// Floats through every write path: read back bit for bit, or refused before sending.
async fn floats_round_trip_bit_for_bit_or_are_refused<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Awkward>()
        .create(&db.pool)
        .await
        .unwrap();
    let dialect = DB::DIALECT;
    let cases = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        0.1,
    ];
    let refused = |v: f64| match dialect {
        Dialect::Postgres => false,
        Dialect::Sqlite => v.is_nan() || (v == 0.0 && v.is_sign_negative()),
        Dialect::MySql => !v.is_finite() || (v == 0.0 && v.is_sign_negative()),
    };
    for (i, &v) in cases.iter().enumerate() {
        let wanted = Awkward {
            ratio: Some(v),
            ..row(&format!("float {i}"), i as i64)
        };
        let same = |got: &Awkward| got.ratio.map(f64::to_bits) == Some(v.to_bits());
        let paths: [(&str, Result<Awkward, Error>); 3] = [
            ("insert", wanted.insert(&db.pool).await),
            (
                "get_or_create",
                Awkward::get_or_create_by_label(
                    &db.pool,
                    &Awkward {
                        label: format!("goc {i}"),
                        part: format!("goc {i}"),
                        ..wanted.clone()
                    },
                )
                .await
                .map(|(r, _)| r),
            ),
            (
                "update_or_create",
                Awkward::update_or_create_by_label(
                    &db.pool,
                    &Awkward {
                        label: format!("uoc {i}"),
                        part: format!("uoc {i}"),
                        ..wanted.clone()
                    },
                    &[AwkwardField::Ratio],
                )
                .await
                .map(|(r, _)| r),
            ),
        ];
        for (path, result) in paths {
            match result {
                Ok(stored) => {
                    assert!(!refused(v), "{dialect} {path} accepted {v:?}");
                    assert!(same(&stored), "{dialect} {path} {v:?}: {:?}", stored.ratio);
                    assert!(same(&read(&db, stored.id).await), "{dialect} {path} {v:?}");
                }
                Err(error) => {
                    assert!(refused(v), "{dialect} {path} {v:?}: {error}");
                    assert_invalid(&error, "ratio");
                }
            }
        }
        // update, and update_or_create's update values.
        let base = row(&format!("base {i}"), 100 + i as i64)
            .insert(&db.pool)
            .await
            .unwrap();
        let result = Awkward {
            ratio: Some(v),
            ..base.clone()
        }
        .update(&db.pool)
        .await;
        let found = Awkward::update_or_create_by_label(
            &db.pool,
            &Awkward {
                ratio: Some(v),
                ..base.clone()
            },
            &[AwkwardField::Ratio],
        )
        .await;
        for (path, result) in [
            ("update", result),
            ("update_or_create found", found.map(|r| r.0)),
        ] {
            match result {
                Ok(stored) => {
                    assert!(!refused(v), "{dialect} {path} accepted {v:?}");
                    assert!(same(&read(&db, stored.id).await), "{dialect} {path} {v:?}");
                }
                Err(error) => {
                    assert!(refused(v), "{dialect} {path} {v:?}: {error}");
                    assert_invalid(&error, "ratio");
                    assert_eq!(read(&db, base.id).await, base, "nothing changed");
                }
            }
        }
        // bulk
        let result = BulkInsert::<Awkward>::new()
            .run(
                &db.pool,
                vec![Awkward {
                    label: format!("bulk {i}"),
                    part: format!("bulk {i}"),
                    ..wanted.clone()
                }],
            )
            .await;
        match result {
            Ok(_) => {
                assert!(!refused(v), "{dialect} bulk accepted {v:?}");
                let stored = Awkward::by_label(format!("bulk {i}"))
                    .get(&db.pool)
                    .await
                    .unwrap()
                    .unwrap();
                assert!(same(&stored), "{dialect} bulk {v:?}");
            }
            Err(Error::Bulk { row, source, .. }) => {
                assert!(refused(v), "{dialect} bulk {v:?}: {source}");
                assert_eq!(row, Some(0));
                assert_invalid(&source, "ratio");
            }
            Err(other) => panic!("{other:?}"),
        }
    }
}

backend_tests!(
    every_write_path_round_trips_or_refuses,
    duplicates_report_the_right_constraint_and_honest_values,
    trailing_space_variants,
    floats_round_trip_bit_for_bit_or_are_refused,
);
