//! SQLite's update mode, counts only: one aggregated read tells each chunk's stored rows (and
//! whether they differ) in a single returned row, and the upsert of the stored rows that differ (and
//! only those) runs without `RETURNING` under a savepoint, checked against that read: when the upsert writes another number
//! of rows than the read predicted, the savepoint is rolled back and the upsert run again with
//! `RETURNING`. The statements are captured from the library's `model_runtime::sql` events.

use std::sync::{Arc, Mutex};

use model_integration::{Options, TestDb, run_scenario};
use model_runtime::{BulkInsert, Model, Schema};
use sqlx::Sqlite;

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "uc_items")]
struct Item {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 100)]
    sku: String,
    price: i64,
    weight: f64,
}

/// The SQL of every statement the library sent, in order.
fn statements() -> &'static Arc<Mutex<Vec<String>>> {
    model_integration::captured_statements()
}

/// The scenarios share the capture: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the captured statements since the last [`start`] did.
#[derive(Debug, Default, PartialEq)]
struct Sent {
    aggregated_reads: usize,
    returning: usize,
    rolled_back: usize,
}

fn start() {
    statements().lock().unwrap().clear();
}

fn sent() -> Sent {
    let mut sent = Sent::default();
    for sql in statements().lock().unwrap().iter() {
        sent.aggregated_reads += usize::from(sql.starts_with("SELECT group_concat("));
        sent.returning += usize::from(sql.contains("RETURNING"));
        sent.rolled_back += usize::from(sql == "ROLLBACK TO SAVEPOINT model_runtime_upsert");
    }
    sent
}

/// Keys with the aggregated text's separators, quotes, emoji and a 4-byte character, and a
/// trailing-space variant, so that nothing is read back by its text.
fn sku(n: usize) -> String {
    match n % 5 {
        0 => format!("k:{n},x"),
        1 => format!("it's \"{n}\""),
        2 => format!("🦀{n}𝄞"),
        3 => format!("k{n} "),
        _ => format!("k{n}"),
    }
}

fn item(n: usize, price: i64, weight: f64) -> Item {
    Item {
        id: 0,
        sku: sku(n),
        price,
        weight,
    }
}

async fn stored(db: &TestDb<Sqlite>) -> Vec<Item> {
    sqlx::query_as::<_, (i64, String, i64, f64)>(
        "SELECT id, sku, price, weight FROM uc_items ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, sku, price, weight)| Item {
        id,
        sku,
        price,
        weight,
    })
    .collect()
}

/// 200 stored rows, then 300 incoming (100 unchanged; 100 changed; 100 new) in chunks of 120 (chunks that mix all three): one aggregated read a chunk, no
/// `RETURNING`, exact counts and values, no id drawn for a stored row.
async fn counts_from_one_read(db: TestDb<Sqlite>) {
    let _serial = SERIAL.lock().await;
    Schema::new()
        .model::<Item>()
        .create(&db.pool)
        .await
        .unwrap();
    let weight = |n: usize| if n.is_multiple_of(2) { 0.0 } else { 1.5e300 };
    BulkInsert::<Item>::new()
        .run(&db.pool, (0..200).map(|n| item(n, 1, weight(n))))
        .await
        .unwrap();
    let before = stored(&db).await;
    let incoming: Vec<Item> = (0..300)
        .map(|n| match n {
            // Unchanged. (-0.0 for 0.0 would be refused: SQLite stores it as 0.0.)
            0..100 => item(n, 1, weight(n)),
            100..200 => item(n, 2, weight(n)),
            _ => item(n, 3, f64::MIN_POSITIVE),
        })
        .collect();
    start();
    let report = BulkInsert::<Item>::new()
        .batch_size(120)
        .counts_only()
        .update_conflicts::<ItemBySku>(&[ItemField::Price, ItemField::Weight])
        .run(&db.pool, incoming.clone())
        .await
        .unwrap();
    assert_eq!(
        sent(),
        Sent {
            aggregated_reads: 3,
            returning: 0,
            rolled_back: 0
        }
    );
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (100, 100, 100)
    );
    let after = stored(&db).await;
    assert_eq!(after.len(), 300);
    let mut new_ids = Vec::new();
    for (n, incoming) in incoming.iter().enumerate() {
        let row = after.iter().find(|r| r.sku == incoming.sku).unwrap();
        assert_eq!(
            (row.price, row.weight),
            (incoming.price, incoming.weight),
            "row {n}"
        );
        if n < 200 {
            assert_eq!(row.id, before[n].id, "row {n} keeps its id");
        } else {
            new_ids.push(row.id);
        }
    }
    // The new rows take the ids right after the stored ones: none was drawn for a stored row.
    new_ids.sort();
    let last = before[199].id;
    assert_eq!(new_ids, (last + 1..=last + 100).collect::<Vec<_>>());
    // Again: every row unchanged.
    start();
    let again = BulkInsert::<Item>::new()
        .counts_only()
        .update_conflicts::<ItemBySku>(&[ItemField::Price, ItemField::Weight])
        .run(&db.pool, incoming)
        .await
        .unwrap();
    assert_eq!(
        (again.inserted, again.updated, again.unchanged),
        (0, 0, 300)
    );
    assert_eq!(sent().aggregated_reads, 1);
    // Nothing differs, so nothing but the read is sent for the chunk: no insert, no upsert, no
    // savepoint.
    let writes: Vec<String> = statements()
        .lock()
        .unwrap()
        .iter()
        .filter(|sql| sql.starts_with("INSERT") || sql.contains("model_runtime_upsert"))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "an unchanged import wrote: {writes:#?}");
}

/// When the trigger appears (see [`trigger_refuses_updates`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trigger {
    /// Before the call: the call sees it and lets the upsert say which rows it wrote.
    Before,
    /// Between two chunks of a call that commits each on its own, created by another connection:
    /// the call checked for triggers at its start, so the second chunk's upsert writes fewer rows
    /// than its read predicted; the savepoint is rolled back and the upsert run again with
    /// `RETURNING`.
    MidCall,
}

/// A trigger refuses some updates (`RAISE(IGNORE)`): the refused rows are unchanged, the others
/// updated, either way.
async fn trigger_refuses_updates(db: TestDb<Sqlite>, when: Trigger) {
    let _serial = SERIAL.lock().await;
    Schema::new()
        .model::<Item>()
        .create(&db.pool)
        .await
        .unwrap();
    BulkInsert::<Item>::new()
        .run(&db.pool, (0..50).map(|n| item(n, 1, 1.0)))
        .await
        .unwrap();
    // The table named in another case than the model's: SQLite's names are case-insensitive, and
    // the call's check for triggers must see it (found by review).
    let create_trigger = "CREATE TRIGGER uc_refuse BEFORE UPDATE ON UC_ITEMS WHEN NEW.price = 13 BEGIN SELECT RAISE(IGNORE); END";
    if when == Trigger::Before {
        sqlx::query(create_trigger).execute(&db.pool).await.unwrap();
    }
    let pool = db.pool.clone();
    // The rows, consumed chunk by chunk: the second row of the second chunk creates the trigger,
    // on another connection, after the first chunk committed. (The call looks at the first row
    // of the second chunk before it starts, to know whether the input is a single chunk.)
    let incoming = (0..60).map(move |n| {
        if n == 31 && when == Trigger::MidCall {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current()
                    .block_on(sqlx::query(create_trigger).execute(&pool))
                    .unwrap();
            });
        }
        item(n, if n.is_multiple_of(10) { 13 } else { 2 }, 1.0)
    });
    start();
    let report = BulkInsert::<Item>::new()
        .batch_size(30)
        .commit_each_chunk()
        .counts_only()
        .update_conflicts::<ItemBySku>(&[ItemField::Price])
        .run(&db.pool, incoming)
        .await
        .unwrap();
    // Refused: before the call, rows 0, 10, 20, 30 and 40; mid-call, only those of the second
    // chunk (30 and 40). Rows 50..60 are new (50 is inserted with price 13: the trigger is on
    // UPDATE).
    let refused = |n: usize| n < 50 && n.is_multiple_of(10) && (when == Trigger::Before || n >= 30);
    let (sent_expected, counts) = match when {
        Trigger::Before => (
            Sent {
                aggregated_reads: 0,
                returning: 2,
                rolled_back: 0,
            },
            (10, 45, 5),
        ),
        Trigger::MidCall => (
            Sent {
                aggregated_reads: 2,
                returning: 1,
                rolled_back: 1,
            },
            (10, 48, 2),
        ),
    };
    assert_eq!(sent(), sent_expected, "{when:?}");
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        counts,
        "{when:?}"
    );
    for row in stored(&db).await {
        let n: usize = row
            .sku
            .trim_matches(|c: char| !c.is_ascii_digit())
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let expected = match n {
            _ if refused(n) => 1,
            _ if n.is_multiple_of(10) => 13,
            _ => 2,
        };
        assert_eq!(row.price, expected, "{when:?}: {}", row.sku);
    }
}

/// A table named like the aggregated read's own alias for the incoming rows once was (`v`), with
/// a column named like a `VALUES` column (`column1`): the read names both sides with aliases of
/// its own (a review found `ambiguous column name: v.column1`).
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "v")]
struct V {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    k: String,
    column1: i64,
}

async fn a_table_named_v(db: TestDb<Sqlite>) {
    let _serial = SERIAL.lock().await;
    Schema::new().model::<V>().create(&db.pool).await.unwrap();
    let row = |n: i64, column1: i64| V {
        id: 0,
        k: format!("k{n}"),
        column1,
    };
    BulkInsert::<V>::new()
        .run(&db.pool, (0..10).map(|n| row(n, 1)))
        .await
        .unwrap();
    start();
    let report = BulkInsert::<V>::new()
        .counts_only()
        .update_conflicts::<VByK>(&[VField::Column1])
        .run(&db.pool, (0..20).map(|n| row(n, if n < 5 { 1 } else { 2 })))
        .await
        .unwrap();
    assert_eq!(sent().aggregated_reads, 1);
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (10, 5, 5)
    );
}

#[tokio::test]
async fn a_table_named_like_the_alias_of_the_incoming_rows() {
    run_scenario::<Sqlite, _>(
        "sqlite_update_counts::a_table_named_like_the_alias_of_the_incoming_rows",
        Options::default(),
        a_table_named_v,
    )
    .await;
}

#[tokio::test]
async fn counts_come_from_one_aggregated_read() {
    run_scenario::<Sqlite, _>(
        "sqlite_update_counts::counts_come_from_one_aggregated_read",
        Options::default(),
        counts_from_one_read,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_on_the_table_lets_the_upsert_say_which_rows_it_wrote() {
    run_scenario::<Sqlite, _>(
        "sqlite_update_counts::a_trigger_on_the_table_lets_the_upsert_say_which_rows_it_wrote",
        Options {
            sqlite_file: true,
            ..Options::default()
        },
        |db| trigger_refuses_updates(db, Trigger::Before),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_created_mid_call_is_caught_by_the_count_check() {
    run_scenario::<Sqlite, _>(
        "sqlite_update_counts::a_trigger_created_mid_call_is_caught_by_the_count_check",
        Options {
            sqlite_file: true,
            ..Options::default()
        },
        |db| trigger_refuses_updates(db, Trigger::MidCall),
    )
    .await;
}
