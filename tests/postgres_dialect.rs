//! The PostgreSQL dialect stays within what CockroachDB and YugabyteDB accept (see
//! `docs/clusters.md`), and `transaction()` retries a serialization failure that only `COMMIT`
//! reports, as CockroachDB reports most of them.
//!
//! - Every statement the library sends for every operation is captured from its
//!   `model_runtime::sql` events; none may read `xmax` (CockroachDB has no such column).
//! - Two SERIALIZABLE transactions with a read/write cycle: the one that commits second fails at
//!   `COMMIT` with SQLSTATE 40001, which is retryable, and `transaction()` runs its body again.

use std::sync::{Arc, Mutex};

use model_integration::{Options, TestDb, run_scenario};
use model_runtime::Key;
use model_runtime::{BulkInsert, Isolation, Model, Outcome, Schema, Strategy, TxOptions};
use sqlx::{Connection, Postgres};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "dialect_items")]
#[unique_together(shelf, slot, name = "dialect_items_place")]
struct Item {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    shelf: i64,
    slot: Option<i64>,
    price: i64,
}

/// The SQL of every statement the library sent, in order.
fn statements() -> &'static Arc<Mutex<Vec<String>>> {
    model_integration::captured_statements()
}

fn item(sku: &str, shelf: i64, slot: Option<i64>, price: i64) -> Item {
    Item {
        id: 0,
        sku: sku.into(),
        shelf,
        slot,
        price,
    }
}

/// Runs every operation, on every path the library has for PostgreSQL, and checks the statements.
async fn every_operation(db: TestDb<Postgres>) {
    let captured = statements();
    captured.lock().unwrap().clear();
    let pool = &db.pool;
    Schema::new().model::<Item>().create(pool).await.unwrap();
    let stored = item("A-1", 1, Some(1), 10).insert(pool).await.unwrap();
    assert!(Item::by_sku("A-1").get(pool).await.unwrap().is_some());
    assert!(Item::by_sku("A-1").exists(pool).await.unwrap());
    let mut tx = pool.begin().await.unwrap();
    assert!(
        Item::by_sku("A-1")
            .get_for_update(&mut *tx)
            .await
            .unwrap()
            .is_some()
    );
    // In the caller's transaction: the savepoint path of get_or_create.
    let other_row_same_place = item("Z-9", 1, Some(1), 0);
    assert!(
        Item::get_or_create_by_sku(&mut *tx, &other_row_same_place)
            .await
            .is_err()
    );
    tx.rollback().await.unwrap();
    Item {
        price: 11,
        ..stored.clone()
    }
    .update(pool)
    .await
    .unwrap();
    assert!(stored.validate_unique(pool).await.unwrap().is_empty());
    assert_eq!(
        item("A-1", 2, None, 0)
            .validate_unique_new(pool)
            .await
            .unwrap()
            .len(),
        1
    );
    for strategy in [Strategy::SelectFirst, Strategy::InsertFirst] {
        let candidate = item(&format!("G-{strategy:?}"), 3, None, 1);
        for expected in [Outcome::Created, Outcome::Found] {
            let (_, outcome) =
                model_runtime::get_or_create_with::<ItemBySku>(pool, &candidate, strategy)
                    .await
                    .unwrap();
            assert_eq!(outcome, expected);
        }
    }
    let fields = [ItemField::Price];
    for (price, expected) in [
        (5, Outcome::Created),
        (6, Outcome::Updated),
        (6, Outcome::Unchanged),
    ] {
        let row = item("U-1", 4, None, price);
        let (_, outcome) = Item::update_or_create_by_sku(pool, &row, &fields)
            .await
            .unwrap();
        assert_eq!(outcome, expected);
    }
    let (_, outcome) = model_runtime::transaction(pool, TxOptions::default(), async |tx| {
        Item::get_or_create_by_shelf_and_slot(&mut *tx, &item("T-1", 5, Some(5), 0)).await
    })
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Created);
    let rows = || {
        (0..4)
            .map(|i| item(&format!("B-{i}"), 6, Some(i), i))
            .collect::<Vec<_>>()
    };
    BulkInsert::<Item>::new().run(pool, rows()).await.unwrap();
    for counts_only in [false, true] {
        let skip = BulkInsert::<Item>::new().skip_conflicts::<ItemBySku>();
        let update = BulkInsert::<Item>::new().update_conflicts::<ItemBySku>(&[ItemField::Price]);
        for bulk in [skip, update] {
            let bulk = if counts_only {
                bulk.counts_only()
            } else {
                bulk
            };
            bulk.run(pool, rows()).await.unwrap();
        }
    }
    BulkInsert::<Item>::new()
        .get_or_create::<ItemBySku>()
        .run(pool, rows())
        .await
        .unwrap();
    assert!(stored.delete(pool).await.unwrap());

    let captured = captured.lock().unwrap().clone();
    if std::env::var_os("PRINT_STATEMENTS").is_some() {
        for sql in &captured {
            eprintln!("statement: {sql}");
        }
    }
    // The capture works: it saw the statements that make the operations race-free.
    assert!(captured.len() > 30, "{captured:#?}");
    for needle in [
        "ON CONFLICT",
        "RETURNING",
        "SAVEPOINT",
        "FOR UPDATE",
        "CREATE TABLE",
    ] {
        assert!(
            captured
                .iter()
                .any(|sql| sql.to_uppercase().contains(needle)),
            "no statement with {needle}: {captured:#?}"
        );
    }
    let with_xmax: Vec<&String> = captured
        .iter()
        .filter(|sql| sql.to_lowercase().contains("xmax"))
        .collect();
    assert!(
        with_xmax.is_empty(),
        "statements reading xmax, which CockroachDB does not have: {with_xmax:#?}"
    );
}

/// The body reads `a` and writes `b`; on its first attempt, a rival SERIALIZABLE transaction reads
/// `b`, writes `a` and commits first. The body's statements all succeed: only its `COMMIT` fails,
/// with 40001, and `transaction()` runs it again.
async fn serialization_failure_at_commit(db: TestDb<Postgres>) {
    let pool = &db.pool;
    Schema::new().model::<Item>().create(pool).await.unwrap();
    let url = std::env::var(model_integration::POSTGRES_URL).unwrap();
    let search_path = format!("SET search_path TO \"{}\"", db.name);

    // Rival: reads `b`, writes `a`, commits.
    let rival = async |a: &str, b: &str| {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(search_path.clone()))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut tx = conn
            .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .await
            .unwrap();
        assert!(Item::by_sku(b).get(&mut *tx).await.unwrap().is_none());
        item(a, 0, None, 0).insert(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    };

    // By hand first: the failure is at COMMIT, 40001, retryable.
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    assert!(Item::by_sku("a1").get(&mut *tx).await.unwrap().is_none());
    item("b1", 1, None, 0).insert(&mut *tx).await.unwrap();
    rival("a1", "b1").await;
    let error = model_runtime::Error::from(tx.commit().await.unwrap_err());
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("40001"), "{error}");
    assert!(error.is_retryable(), "{error}");

    // transaction(): the first attempt's body returns Ok, its COMMIT fails, the second commits.
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let options = TxOptions::default().isolation(Isolation::Serializable);
    let created = model_runtime::transaction(pool, options, async |tx| {
        let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let seen_a = Item::by_sku("a2").get(&mut *tx).await?;
        let (row, _) = Item::get_or_create_by_sku(&mut *tx, &item("b2", 2, None, 0)).await?;
        if attempt == 1 {
            rival("a2", "b2").await;
        }
        Ok((seen_a.is_some(), row))
    })
    .await
    .unwrap();
    assert_eq!(
        attempts.into_inner(),
        2,
        "the body ran again after the failed COMMIT"
    );
    assert!(created.0, "the second attempt sees the rival's row");
    assert_eq!(Item::by_sku("b2").get(pool).await.unwrap(), Some(created.1));
}

#[tokio::test]
#[cfg_attr(
    skip_postgres,
    ignore = "PostgreSQL: set TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run"
)]
async fn postgres_statements_never_read_xmax() {
    run_scenario::<Postgres, _>(
        "postgres_dialect::postgres_statements_never_read_xmax",
        Options::default(),
        every_operation,
    )
    .await;
}

#[tokio::test]
#[cfg_attr(
    skip_postgres,
    ignore = "PostgreSQL: set TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run"
)]
async fn serialization_failure_at_commit_is_retried() {
    run_scenario::<Postgres, _>(
        "postgres_dialect::serialization_failure_at_commit_is_retried",
        Options::default(),
        serialization_failure_at_commit,
    )
    .await;
}
