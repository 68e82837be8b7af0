//! `update_or_create` tells a row it changed (`Updated`) from one that already held the values
//! (`Unchanged`, and then nothing is written), on every backend, under races too.

use std::collections::HashMap;

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{Dialect, Model, Outcome, Schema, SqlType};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "prices")]
struct Price {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    cents: i64,
    note: Option<String>,
}

fn price(sku: &str, cents: i64, note: Option<&str>) -> Price {
    Price {
        id: 0,
        sku: sku.into(),
        cents,
        note: note.map(Into::into),
    }
}

/// PostgreSQL's row version, to show that an unchanged row was not written (test-only: the library
/// never reads it).
async fn xmin<DB: TestBackend>(db: &TestDb<DB>, sku: &str) -> Option<String> {
    if DB::DIALECT != Dialect::Postgres {
        return None;
    }
    let mut conn = db.pool.acquire().await.unwrap();
    let row = DB::fetch_optional(
        &mut conn,
        "SELECT xmin::text FROM prices WHERE sku = $1".into(),
        model_runtime::__private::Values(vec![sku.into()]),
    )
    .await
    .unwrap()
    .unwrap();
    String::decode(DB::row_ref(&row), 0).unwrap()
}

async fn updated_and_unchanged_are_told_apart<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Price>()
        .create(&db.pool)
        .await
        .unwrap();
    let fields = [PriceField::Cents, PriceField::Note];
    let (row, outcome) = Price::update_or_create_by_sku(&db.pool, &price("A", 100, None), &fields)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    let before = xmin(&db, "A").await;
    // Same values, NULL included: unchanged, and not written.
    let (same, outcome) = Price::update_or_create_by_sku(&db.pool, &price("A", 100, None), &fields)
        .await
        .unwrap();
    assert_eq!(
        (outcome, same.id),
        (Outcome::Unchanged, row.id),
        "{}",
        DB::DIALECT
    );
    assert_eq!(
        xmin(&db, "A").await,
        before,
        "an unchanged row gets no new version"
    );
    // One listed field differs: updated.
    let (updated, outcome) =
        Price::update_or_create_by_sku(&db.pool, &price("A", 100, Some("n")), &fields)
            .await
            .unwrap();
    assert_eq!(
        (outcome, updated.note.as_deref()),
        (Outcome::Updated, Some("n")),
        "{}",
        DB::DIALECT
    );
    assert!(outcome.written() && !Outcome::Unchanged.written());
    // Text that differs only by case or a trailing space differs: on MariaDB too, whose default
    // collation for a column that is no key would call it equal (and then never write it).
    for note in ["N", "N ", "n"] {
        let (row, outcome) =
            Price::update_or_create_by_sku(&db.pool, &price("A", 100, Some(note)), &fields)
                .await
                .unwrap();
        assert_eq!(
            (outcome, row.note.as_deref()),
            (Outcome::Updated, Some(note)),
            "{}",
            DB::DIALECT
        );
        let stored = Price::by_sku("A").get(&db.pool).await.unwrap().unwrap();
        assert_eq!(stored.note.as_deref(), Some(note), "{}", DB::DIALECT);
    }
    // A field that is not listed does not count: `cents` differs but only `note` is written.
    let (row, outcome) =
        Price::update_or_create_by_sku(&db.pool, &price("A", 5, Some("n")), &[PriceField::Note])
            .await
            .unwrap();
    assert_eq!(
        (outcome, row.cents),
        (Outcome::Unchanged, 100),
        "{}",
        DB::DIALECT
    );
    // Inside the caller's transaction too.
    let mut tx = db.pool.begin().await.unwrap();
    let (_, outcome) =
        Price::update_or_create_by_sku(&mut tx, &price("A", 100, Some("n")), &fields)
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Unchanged, "{}", DB::DIALECT);
    let (_, outcome) =
        Price::update_or_create_by_sku(&mut tx, &price("A", 101, Some("n")), &fields)
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Updated, "{}", DB::DIALECT);
    tx.commit().await.unwrap();
    let stored = Price::by_sku("A").get(&db.pool).await.unwrap().unwrap();
    assert_eq!((stored.cents, stored.note.as_deref()), (101, Some("n")));
}

/// 64 tasks upsert one key: those writing the stored values are `Unchanged`, the others `Updated`,
/// one `Created`; an `Unchanged` is never reported by a task whose value is not the one stored
/// just before it, and the final value is one some task wrote.
async fn races_report_what_was_written<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Price>()
        .create(&db.pool)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for task in 0..64i64 {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            // Half the tasks write 7, the others their own number.
            let cents = if task % 2 == 0 { 7 } else { 1000 + task };
            let (row, outcome) = Price::update_or_create_by_sku(
                &pool,
                &price("R", cents, None),
                &[PriceField::Cents],
            )
            .await
            .unwrap();
            (task, cents, row, outcome)
        }));
    }
    let mut outcomes: HashMap<Outcome, usize> = HashMap::new();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let (task, cents, row, outcome) = task.await.unwrap();
        *outcomes.entry(outcome).or_default() += 1;
        ids.insert(row.id);
        // The row a call returns holds the value it wrote, or found already there.
        assert_eq!(row.cents, cents, "{}: task {task} {outcome:?}", DB::DIALECT);
        assert_ne!(outcome, Outcome::Found, "update_or_create never says Found");
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(
        outcomes.get(&Outcome::Created),
        Some(&1),
        "{}: {outcomes:?}",
        DB::DIALECT
    );
    // Each of the 32 odd tasks writes a value no other task writes: it is never unchanged.
    let odd_written = outcomes.get(&Outcome::Updated).copied().unwrap_or(0);
    assert!(odd_written >= 31, "{}: {outcomes:?}", DB::DIALECT);
    let stored = Price::by_sku("R").get(&db.pool).await.unwrap().unwrap();
    assert!(stored.cents == 7 || (1000..1064).contains(&stored.cents));
}

backend_tests!(
    updated_and_unchanged_are_told_apart,
    races_report_what_was_written
);
