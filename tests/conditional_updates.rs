//! Upserts that say what they did with conditions and increments: `Changes::only_if_newer` /
//! `only_if_not_older` (a refused row is `Stale` and not written), `Changes::increment` (a counter
//! in one call), and separate values for create and update, on every backend, single-row and
//! under 64-task races.

use std::collections::HashMap;

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{Changes, Error, Model, Outcome, Schema, update_or_create};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "docs")]
struct Doc {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    slug: String,
    version: i64,
    seen: Option<i64>,
    #[model(max_length = 200)]
    body: String,
}

fn doc(slug: &str, version: i64, seen: Option<i64>, body: &str) -> Doc {
    Doc {
        id: 0,
        slug: slug.into(),
        version,
        seen,
        body: body.into(),
    }
}

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "pages")]
struct Page {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    path: String,
    hits: i64,
    small: i32,
    ratio: f64,
    #[model(max_length = 40)]
    title: String,
}

fn page(path: &str, hits: i64, title: &str) -> Page {
    Page {
        id: 0,
        path: path.into(),
        hits,
        small: 1,
        ratio: 0.5,
        title: title.into(),
    }
}

async fn upsert<DB: TestBackend>(
    db: &TestDb<DB>,
    row: &Doc,
    changes: Changes<'_, Doc>,
) -> (Doc, Outcome) {
    update_or_create::<DocBySlug>(&db.pool, row, changes)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT))
}

async fn stored<DB: TestBackend>(db: &TestDb<DB>, slug: &str) -> Doc {
    Doc::by_slug(slug).get(&db.pool).await.unwrap().unwrap()
}

async fn only_if_newer_refuses_older_and_equal_versions<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Doc>().create(&db.pool).await.unwrap();
    let fields = [DocField::Version, DocField::Body];
    let d = DB::DIALECT;
    let v5 = doc("a", 5, None, "five");
    let (created, outcome) = upsert(
        &db,
        &v5,
        Changes::new(&v5, &fields).only_if_newer(Doc::FIELDS.version),
    )
    .await;
    assert_eq!((outcome, created.version), (Outcome::Created, 5), "{d}");
    for (version, body) in [(4, "four"), (5, "five again")] {
        let older = doc("a", version, None, body);
        let (row, outcome) = upsert(
            &db,
            &older,
            Changes::new(&older, &fields).only_if_newer(Doc::FIELDS.version),
        )
        .await;
        assert_eq!(outcome, Outcome::Stale, "{d}: version {version}");
        assert_eq!(row, created, "{d}: a stale call returns the row as stored");
        assert_eq!(stored(&db, "a").await, created, "{d}: nothing written");
    }
    let v6 = doc("a", 6, None, "six");
    let (row, outcome) = upsert(
        &db,
        &v6,
        Changes::new(&v6, &fields).only_if_newer(Doc::FIELDS.version),
    )
    .await;
    assert_eq!(
        (outcome, row.version, row.body.as_str()),
        (Outcome::Updated, 6, "six"),
        "{d}"
    );
    // Not older: an equal version writes, or is Unchanged when it holds the values already.
    let (_, outcome) = upsert(
        &db,
        &v6,
        Changes::new(&v6, &fields).only_if_not_older(Doc::FIELDS.version),
    )
    .await;
    assert_eq!(outcome, Outcome::Unchanged, "{d}");
    let v6b = doc("a", 6, None, "six, edited");
    let (row, outcome) = upsert(
        &db,
        &v6b,
        Changes::new(&v6b, &fields).only_if_not_older(Doc::FIELDS.version),
    )
    .await;
    assert_eq!(
        (outcome, row.body.as_str()),
        (Outcome::Updated, "six, edited"),
        "{d}"
    );
    let v5b = doc("a", 5, None, "older");
    let (_, outcome) = upsert(
        &db,
        &v5b,
        Changes::new(&v5b, &fields).only_if_not_older(Doc::FIELDS.version),
    )
    .await;
    assert_eq!(outcome, Outcome::Stale, "{d}");
    assert_eq!(stored(&db, "a").await.body, "six, edited", "{d}");
    // A guard with nothing listed: Stale or Unchanged, never a write.
    let (_, outcome) = upsert(
        &db,
        &v5b,
        Changes::new(&v5b, &[]).only_if_newer(Doc::FIELDS.version),
    )
    .await;
    assert_eq!(outcome, Outcome::Stale, "{d}");
    let v9 = doc("a", 9, None, "nine");
    let (row, outcome) = upsert(
        &db,
        &v9,
        Changes::new(&v9, &[]).only_if_newer(Doc::FIELDS.version),
    )
    .await;
    assert_eq!((outcome, row.version), (Outcome::Unchanged, 6), "{d}");
}

async fn null_is_older_than_every_value<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Doc>().create(&db.pool).await.unwrap();
    let fields = [DocField::Seen, DocField::Body];
    let d = DB::DIALECT;
    fn newer<'a>(row: &'a Doc, fields: &'a [DocField]) -> Changes<'a, Doc> {
        Changes::new(row, fields).only_if_newer(Doc::FIELDS.seen)
    }
    let r = doc("n", 0, None, "null");
    assert_eq!(
        upsert(&db, &r, newer(&r, &fields)).await.1,
        Outcome::Created,
        "{d}"
    );
    // NULL stored, NULL incoming: not newer.
    let r2 = doc("n", 0, None, "null again");
    assert_eq!(
        upsert(&db, &r2, newer(&r2, &fields)).await.1,
        Outcome::Stale,
        "{d}"
    );
    // ... but not older.
    let changes = Changes::new(&r2, &fields).only_if_not_older(Doc::FIELDS.seen);
    assert_eq!(upsert(&db, &r2, changes).await.1, Outcome::Updated, "{d}");
    // A value replaces NULL, even a negative one.
    let r3 = doc("n", 0, Some(-7), "minus seven");
    assert_eq!(
        upsert(&db, &r3, newer(&r3, &fields)).await.1,
        Outcome::Updated,
        "{d}"
    );
    // NULL never replaces a value, newer or not older.
    let r4 = doc("n", 0, None, "back to null");
    assert_eq!(
        upsert(&db, &r4, newer(&r4, &fields)).await.1,
        Outcome::Stale,
        "{d}"
    );
    let changes = Changes::new(&r4, &fields).only_if_not_older(Doc::FIELDS.seen);
    assert_eq!(upsert(&db, &r4, changes).await.1, Outcome::Stale, "{d}");
    let row = stored(&db, "n").await;
    assert_eq!(
        (row.seen, row.body.as_str()),
        (Some(-7), "minus seven"),
        "{d}"
    );
}

async fn increments_count_and_value_sets_stay_apart<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Page>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    // The row to create and the values to update are different rows: the title is created as
    // "created" and written as "updated"; `hits` counts from the created row's 1 by the update
    // row's 10.
    let create = page("/", 1, "created");
    let update = Page {
        hits: 10,
        title: "updated".into(),
        ..page("/", 0, "")
    };
    let fields = [PageField::Title];
    let changes = || Changes::new(&update, &fields).increment(Page::FIELDS.hits);
    let (row, outcome) = update_or_create::<PageByPath>(&db.pool, &create, changes())
        .await
        .unwrap();
    assert_eq!(
        (outcome, row.hits, row.title.as_str()),
        (Outcome::Created, 1, "created"),
        "{d}"
    );
    for n in 1..=3 {
        let (row, outcome) = update_or_create::<PageByPath>(&db.pool, &create, changes())
            .await
            .unwrap();
        assert_eq!(
            (outcome, row.hits, row.title.as_str()),
            (Outcome::Updated, 1 + 10 * n, "updated"),
            "{d}"
        );
    }
    // An increment always writes, even when nothing listed changes (and by 0).
    let zero = Page {
        hits: 0,
        ..update.clone()
    };
    let (row, outcome) = update_or_create::<PageByPath>(
        &db.pool,
        &create,
        Changes::new(&zero, &fields).increment(Page::FIELDS.hits),
    )
    .await
    .unwrap();
    assert_eq!((outcome, row.hits), (Outcome::Updated, 31), "{d}");
    // Floats and narrower integers too; a field not listed keeps its created value.
    let more = Page {
        small: 2,
        ratio: 0.25,
        ..update.clone()
    };
    let changes = Changes::new(&more, &[])
        .increment(Page::FIELDS.small)
        .increment(Page::FIELDS.ratio);
    let (row, outcome) = update_or_create::<PageByPath>(&db.pool, &create, changes)
        .await
        .unwrap();
    assert_eq!(
        (outcome, row.small, row.ratio, row.hits),
        (Outcome::Updated, 3, 0.75, 31),
        "{d}"
    );
    // Increments with a guard: refused, nothing added.
    let changes = Changes::new(&update, &fields)
        .increment(Page::FIELDS.hits)
        .only_if_newer(Page::FIELDS.small);
    let (row, outcome) = update_or_create::<PageByPath>(&db.pool, &create, changes)
        .await
        .unwrap();
    assert_eq!((outcome, row.hits), (Outcome::Stale, 31), "{d}");
}

async fn overflow_is_an_error_and_writes_nothing<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Page>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    let mut full = page("/max", i64::MAX, "max");
    full.small = i32::MAX;
    model_runtime::insert(&db.pool, &full).await.unwrap();
    let one = Page {
        hits: 1,
        small: 1,
        ..full.clone()
    };
    for changes in [
        Changes::new(&one, &[]).increment(Page::FIELDS.hits),
        Changes::new(&one, &[]).increment(Page::FIELDS.small),
    ] {
        let error = update_or_create::<PageByPath>(&db.pool, &full, changes)
            .await
            .expect_err("an increment past the type's range");
        assert!(matches!(error, Error::Database(_)), "{d}: {error:?}");
        let row = Page::by_path("/max").get(&db.pool).await.unwrap().unwrap();
        assert_eq!(
            (row.hits, row.small),
            (i64::MAX, i32::MAX),
            "{d}: nothing written"
        );
    }
    // Negative amounts count down; the lower end overflows too.
    let mut low = page("/min", i64::MIN + 1, "min");
    low.small = i32::MIN + 1;
    model_runtime::insert(&db.pool, &low).await.unwrap();
    let minus = Page {
        hits: -1,
        small: -1,
        ..low.clone()
    };
    let changes = || {
        Changes::new(&minus, &[])
            .increment(Page::FIELDS.hits)
            .increment(Page::FIELDS.small)
    };
    let (row, _) = update_or_create::<PageByPath>(&db.pool, &low, changes())
        .await
        .unwrap();
    assert_eq!((row.hits, row.small), (i64::MIN, i32::MIN), "{d}");
    assert!(
        update_or_create::<PageByPath>(&db.pool, &low, changes())
            .await
            .is_err(),
        "{d}"
    );
}

async fn increments_that_cannot_be_written_are_refused<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Page>()
        .create(&db.pool)
        .await
        .unwrap();
    let p = page("/x", 1, "t");
    for (changes, needle) in [
        (
            Changes::new(&p, &[PageField::Hits]).increment(Page::FIELDS.hits),
            "both listed",
        ),
        (
            Changes::new(&p, &[]).increment(Page::FIELDS.id),
            "primary key",
        ),
    ] {
        let error = update_or_create::<PageByPath>(&db.pool, &p, changes)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidArgument { reason, .. } if reason.contains(needle)),
            "{error:?}"
        );
    }
    assert!(
        Page::by_path("/x").get(&db.pool).await.unwrap().is_none(),
        "nothing was written"
    );
}

/// 64 tasks add 1 each to one counter (the first creates it with 1): the count is exact, one task
/// created it, every other says Updated.
async fn racing_increments_lose_nothing<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Page>()
        .create(&db.pool)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            let row = page("/hot", 1, "hot");
            let changes = Changes::new(&row, &[]).increment(Page::FIELDS.hits);
            update_or_create::<PageByPath>(&pool, &row, changes).await
        }));
    }
    let mut outcomes: HashMap<Outcome, usize> = HashMap::new();
    for task in tasks {
        let (_, outcome) = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
        *outcomes.entry(outcome).or_default() += 1;
    }
    assert_eq!(
        outcomes.get(&Outcome::Created),
        Some(&1),
        "{}: {outcomes:?}",
        DB::DIALECT
    );
    assert_eq!(
        outcomes.get(&Outcome::Updated),
        Some(&63),
        "{}: {outcomes:?}",
        DB::DIALECT
    );
    let row = Page::by_path("/hot").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(row.hits, 64, "{}", DB::DIALECT);
}

/// 64 tasks write versions 1..=64 of one document in shuffled order, only if newer: the newest
/// wins, a task told Updated or Created saw its own version stored, a task told Stale saw a version
/// at least its own (it was never written over a newer one, and never refused an older one).
async fn racing_versions_end_at_the_newest<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Doc>().create(&db.pool).await.unwrap();
    let mut versions: Vec<i64> = (1..=64).collect();
    let mut rng = model_integration::Rng(0x5eed);
    for i in (1..versions.len()).rev() {
        versions.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut tasks = Vec::new();
    for version in versions {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            let row = doc("hot", version, Some(version), &format!("v{version}"));
            let fields = [DocField::Version, DocField::Body, DocField::Seen];
            let changes = Changes::new(&row, &fields).only_if_newer(Doc::FIELDS.version);
            let result = update_or_create::<DocBySlug>(&pool, &row, changes).await;
            (version, result)
        }));
    }
    let mut outcomes: HashMap<Outcome, usize> = HashMap::new();
    for task in tasks {
        let (version, result) = task.await.unwrap();
        let (row, outcome) = result.unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
        *outcomes.entry(outcome).or_default() += 1;
        match outcome {
            Outcome::Created | Outcome::Updated => {
                assert_eq!(
                    (row.version, row.body.clone()),
                    (version, format!("v{version}")),
                    "{}",
                    DB::DIALECT
                )
            }
            Outcome::Stale => assert!(
                row.version >= version,
                "{}: v{version} stale against {}",
                DB::DIALECT,
                row.version
            ),
            other => panic!("{}: {other:?}", DB::DIALECT),
        }
        // What a call returns is a consistent row: its body is its version's.
        assert_eq!(row.body, format!("v{}", row.version));
    }
    assert_eq!(
        outcomes.get(&Outcome::Created),
        Some(&1),
        "{}: {outcomes:?}",
        DB::DIALECT
    );
    let row = stored(&db, "hot").await;
    assert_eq!(
        (row.version, row.body.as_str(), row.seen),
        (64, "v64", Some(64)),
        "{}",
        DB::DIALECT
    );
}

mod bulk {
    use super::*;
    use model_runtime::{BulkInsert, BulkReport, RowOutcome};

    fn outcomes(report: &BulkReport<i64>) -> Vec<String> {
        report
            .rows
            .as_ref()
            .unwrap()
            .iter()
            .map(|o| match o {
                RowOutcome::Inserted(_) => "inserted".to_owned(),
                RowOutcome::Updated(_) => "updated".to_owned(),
                other => format!("{other:?}").to_lowercase(),
            })
            .collect()
    }

    pub(super) async fn increments_add_up_and_guards_refuse<DB: TestBackend>(db: TestDb<DB>) {
        Schema::new()
            .model::<Page>()
            .model::<Doc>()
            .create(&db.pool)
            .await
            .unwrap();
        let d = DB::DIALECT;
        model_runtime::insert(&db.pool, &page("/a", 5, "a"))
            .await
            .unwrap();
        model_runtime::insert(&db.pool, &page("/c", 7, "c"))
            .await
            .unwrap();
        for (counts_only, batch) in [(false, 1000), (false, 2), (true, 2)] {
            let mut bulk = BulkInsert::<Page>::new()
                .update_conflicts::<PageByPath>(&[PageField::Title])
                .increment(Page::FIELDS.hits)
                .batch_size(batch);
            if counts_only {
                bulk = bulk.counts_only();
            }
            let rows = vec![page("/a", 1, "A"), page("/b", 2, "B"), page("/c", 3, "c")];
            let report = bulk.run(&db.pool, rows).await.unwrap();
            assert_eq!(
                (report.inserted, report.updated, report.unchanged),
                (1, 2, 0),
                "{d} {counts_only} {batch}"
            );
            if !counts_only {
                assert_eq!(outcomes(&report)[0], "updated", "{d}");
            }
            // Remove /b again so that every round inserts it once.
            let b = Page::by_path("/b").get(&db.pool).await.unwrap().unwrap();
            if batch == 1000 {
                assert_eq!(b.hits, 2, "{d}: inserted with its own value");
            }
            model_runtime::delete(&db.pool, &b).await.unwrap();
        }
        let a = Page::by_path("/a").get(&db.pool).await.unwrap().unwrap();
        let c = Page::by_path("/c").get(&db.pool).await.unwrap().unwrap();
        assert_eq!((a.hits, a.title.as_str(), c.hits), (8, "A", 16), "{d}");

        // Guards: stored v5 at /x and a NULL `seen` at /y.
        model_runtime::insert(&db.pool, &doc("x", 5, Some(5), "x5"))
            .await
            .unwrap();
        model_runtime::insert(&db.pool, &doc("y", 5, None, "y5"))
            .await
            .unwrap();
        model_runtime::insert(&db.pool, &doc("z", 5, Some(1), "z5"))
            .await
            .unwrap();
        let fields = [DocField::Version, DocField::Body, DocField::Seen];
        for counts_only in [false, true] {
            let mut bulk = BulkInsert::<Doc>::new()
                .update_conflicts::<DocBySlug>(&fields)
                .only_if_newer(Doc::FIELDS.seen)
                .batch_size(2);
            if counts_only {
                bulk = bulk.counts_only();
            }
            let rows = vec![
                doc("x", 4, Some(4), "x4"), // older: stale
                doc("y", 6, Some(0), "y6"), // a value replaces NULL: updated
                doc("w", 1, None, "w1"),    // new: inserted
                doc("z", 5, Some(1), "z5"), // equal: stale (strict)
            ];
            let report = bulk.run(&db.pool, rows).await.unwrap();
            // The second time, y and w hold what they are sent: not newer, so stale too.
            let expect = if counts_only {
                (0, 0, 0, 4)
            } else {
                (1, 1, 0, 2)
            };
            assert_eq!(
                (
                    report.inserted,
                    report.updated,
                    report.unchanged,
                    report.stale
                ),
                expect,
                "{d} counts_only {counts_only}: {:?}",
                report.rows
            );
            if !counts_only {
                assert_eq!(
                    outcomes(&report),
                    ["stale", "updated", "inserted", "stale"],
                    "{d}"
                );
            }
        }
        let x = stored(&db, "x").await;
        let y = stored(&db, "y").await;
        assert_eq!(
            (x.body.as_str(), y.body.as_str(), y.seen),
            ("x5", "y6", Some(0)),
            "{d}"
        );
        // Not older: equal values are Unchanged, equal guard with other values Updated.
        let report = BulkInsert::<Doc>::new()
            .update_conflicts::<DocBySlug>(&fields)
            .only_if_not_older(Doc::FIELDS.seen)
            .run(
                &db.pool,
                vec![
                    doc("z", 5, Some(1), "z5"),
                    doc("x", 9, Some(5), "x9"),
                    doc("y", 1, None, "y?"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(outcomes(&report), ["unchanged", "updated", "stale"], "{d}");
        assert_eq!(stored(&db, "x").await.body, "x9", "{d}");
    }

    pub(super) async fn repeated_keys_and_skip_modes_are_refused<DB: TestBackend>(db: TestDb<DB>) {
        Schema::new()
            .model::<Page>()
            .create(&db.pool)
            .await
            .unwrap();
        let d = DB::DIALECT;
        // Within one chunk, and across chunks (the second chunk repeats /a).
        for batch in [10, 2] {
            let rows = vec![page("/a", 1, "a"), page("/b", 1, "b"), page("/a", 1, "a")];
            let error = BulkInsert::<Page>::new()
                .update_conflicts::<PageByPath>(&[])
                .increment(Page::FIELDS.hits)
                .batch_size(batch)
                .run(&db.pool, rows)
                .await
                .unwrap_err();
            assert!(
                matches!(&error, Error::Bulk { row: Some(_), source, .. } if matches!(**source, Error::InvalidArgument { .. })),
                "{d}: {error:?}"
            );
            assert!(
                Page::by_path("/a").get(&db.pool).await.unwrap().is_none(),
                "{d}: all or nothing"
            );
        }
        let error = BulkInsert::<Page>::new()
            .skip_conflicts::<PageByPath>()
            .increment(Page::FIELDS.hits)
            .run(&db.pool, vec![page("/a", 1, "a")])
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::InvalidArgument { .. }),
            "{d}: {error:?}"
        );
        let error = BulkInsert::<Page>::new()
            .update_conflicts::<PageByPath>(&[PageField::Hits])
            .increment(Page::FIELDS.hits)
            .run(&db.pool, vec![page("/a", 1, "a")])
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::InvalidArgument { .. }),
            "{d}: {error:?}"
        );
    }

    /// 64 overlapping bulk calls add 1 to each of 40 counters, half of them stored, with the
    /// defaults a user gets: every count is exact, and each new key is inserted once.
    pub(super) async fn racing_bulk_increments_lose_nothing<DB: TestBackend>(db: TestDb<DB>) {
        Schema::new()
            .model::<Page>()
            .create(&db.pool)
            .await
            .unwrap();
        for k in (0..40).step_by(2) {
            model_runtime::insert(&db.pool, &page(&format!("/{k}"), 100, "t"))
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for call in 0..64u64 {
            let pool = db.pool.clone();
            tasks.push(tokio::spawn(async move {
                let mut rows: Vec<Page> = (0..40).map(|k| page(&format!("/{k}"), 1, "t")).collect();
                // Each call sends the keys in its own order.
                rows.rotate_left((call as usize * 5) % 40);
                BulkInsert::<Page>::new()
                    .update_conflicts::<PageByPath>(&[])
                    .increment(Page::FIELDS.hits)
                    .run(&pool, rows)
                    .await
            }));
        }
        let mut inserted = 0;
        for task in tasks {
            let report = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e}", DB::DIALECT));
            assert_eq!(report.inserted + report.updated, 40, "{}", DB::DIALECT);
            inserted += report.inserted;
        }
        assert_eq!(inserted, 20, "{}", DB::DIALECT);
        for k in 0..40 {
            let row = Page::by_path(format!("/{k}"))
                .get(&db.pool)
                .await
                .unwrap()
                .unwrap();
            let expect = if k % 2 == 0 { 164 } else { 64 };
            assert_eq!(row.hits, expect, "{}: /{k}", DB::DIALECT);
        }
    }

    /// 64 overlapping bulk calls write versions 1..=64 of 30 documents, only if newer: every
    /// document ends at version 64 with its body; a call's Updated or Inserted row held its
    /// version when written (checked by the stored history: a version is written at most once).
    pub(super) async fn racing_bulk_versions_end_at_the_newest<DB: TestBackend>(db: TestDb<DB>) {
        Schema::new().model::<Doc>().create(&db.pool).await.unwrap();
        let mut tasks = Vec::new();
        for version in 1..=64i64 {
            let pool = db.pool.clone();
            tasks.push(tokio::spawn(async move {
                let rows: Vec<Doc> = (0..30)
                    .map(|k| {
                        doc(
                            &format!("d{k}"),
                            version,
                            Some(version),
                            &format!("v{version}"),
                        )
                    })
                    .collect();
                let report = BulkInsert::<Doc>::new()
                    .update_conflicts::<DocBySlug>(&[
                        DocField::Version,
                        DocField::Body,
                        DocField::Seen,
                    ])
                    .only_if_newer(Doc::FIELDS.version)
                    .batch_size(7)
                    // Overlapping all-or-nothing calls of several chunks deadlock on MariaDB even
                    // in the same key order (see the bulk docs); concurrent imports commit chunks.
                    .commit_each_chunk()
                    .run(&pool, rows)
                    .await;
                (version, report)
            }));
        }
        let mut written_by_key: HashMap<usize, usize> = HashMap::new();
        let mut inserted = 0;
        for task in tasks {
            let (version, report) = task.await.unwrap();
            let report = report.unwrap_or_else(|e| panic!("{}: {e:?}", DB::DIALECT));
            inserted += report.inserted;
            assert_eq!(report.unchanged, 0);
            for (k, outcome) in report.rows.unwrap().iter().enumerate() {
                match outcome {
                    RowOutcome::Inserted(_) | RowOutcome::Updated(_) => {
                        *written_by_key.entry(k).or_default() += 1
                    }
                    RowOutcome::Stale => {}
                    other => panic!("{}: v{version} {other:?}", DB::DIALECT),
                }
            }
            // Version 64 is newer than everything: it is never stale.
            if version == 64 {
                assert_eq!(report.stale, 0, "{}", DB::DIALECT);
            }
        }
        assert_eq!(inserted, 30, "{}", DB::DIALECT);
        for k in 0..30 {
            let row = stored(&db, &format!("d{k}")).await;
            assert_eq!(
                (row.version, row.body.as_str()),
                (64, "v64"),
                "{}",
                DB::DIALECT
            );
            let writes = written_by_key[&k];
            assert!((1..=64).contains(&writes), "{}: {writes}", DB::DIALECT);
        }
    }
}

use bulk::{
    increments_add_up_and_guards_refuse, racing_bulk_increments_lose_nothing,
    racing_bulk_versions_end_at_the_newest, repeated_keys_and_skip_modes_are_refused,
};

backend_tests!(
    only_if_newer_refuses_older_and_equal_versions,
    null_is_older_than_every_value,
    increments_count_and_value_sets_stay_apart,
    overflow_is_an_error_and_writes_nothing,
    increments_that_cannot_be_written_are_refused,
    racing_increments_lose_nothing,
    racing_versions_end_at_the_newest,
    increments_add_up_and_guards_refuse,
    repeated_keys_and_skip_modes_are_refused,
    racing_bulk_increments_lose_nothing,
    racing_bulk_versions_end_at_the_newest,
);
