//! How many auto-increment values each write path draws for rows that are already stored (issue
//! 12: a sync of 48,001 rows had driven ids to 115,001). The paths that read or update first draw
//! none, and this is asserted (get_or_create, update_or_create on SQLite and PostgreSQL, bulk update
//! mode everywhere, bulk skip mode over a chunk of 64 rows or more on PostgreSQL and MariaDB); the figures of the others (an insert first) are reported per backend.

use model_integration::{TestBackend, TestDb, backend_tests, report};
use model_runtime::{BulkInsert, Model, Schema, Strategy};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "synced")]
struct Synced {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    sku: String,
    price: i64,
}

const STORED: i64 = 50;

fn row(n: i64, price: i64) -> Synced {
    Synced {
        id: 0,
        sku: format!("S-{n}"),
        price,
    }
}

/// The ids a path drew: the id the next insert gets, less the one it would have got before.
async fn drawn<DB: TestBackend>(db: &TestDb<DB>, before: i64) -> i64 {
    let next = row(1_000_000 + before, 0).insert(&db.pool).await.unwrap();
    next.id - before - 1
}

/// Inserts one fresh row and returns its id: the baseline for [`drawn`].
async fn baseline<DB: TestBackend>(db: &TestDb<DB>, n: i64) -> i64 {
    row(2_000_000 + n, 0).insert(&db.pool).await.unwrap().id
}

async fn ids_drawn_for_stored_rows<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Synced>()
        .create(&db.pool)
        .await
        .unwrap();
    let rows: Vec<Synced> = (0..STORED).map(|n| row(n, 1)).collect();
    BulkInsert::<Synced>::new()
        .run(&db.pool, rows.clone())
        .await
        .unwrap();
    let mut figures = Vec::new();

    // Single-row paths over the stored rows.
    let before = baseline(&db, 0).await;
    for r in &rows {
        Synced::get_or_create_by_sku(&db.pool, r).await.unwrap();
    }
    let get_or_create = drawn(&db, before).await;
    assert_eq!(
        get_or_create,
        0,
        "{}: get_or_create reads first",
        DB::DIALECT
    );
    figures.push(("get_or_create (select first)", get_or_create, STORED));

    let before = baseline(&db, 1).await;
    for r in &rows {
        Synced::update_or_create_by_sku(
            &db.pool,
            &row(r.sku[2..].parse().unwrap(), 2),
            &[SyncedField::Price],
        )
        .await
        .unwrap();
    }
    let update_or_create = drawn(&db, before).await;
    if DB::DIALECT != model_runtime::Dialect::MySql {
        // SQLite and PostgreSQL update first; MariaDB's one statement is an insert.
        assert_eq!(
            update_or_create,
            0,
            "{}: update_or_create updates first",
            DB::DIALECT
        );
    }
    figures.push(("update_or_create", update_or_create, STORED));

    let before = baseline(&db, 2).await;
    for r in &rows {
        model_runtime::get_or_create_with::<SyncedBySku>(&db.pool, r, Strategy::InsertFirst)
            .await
            .unwrap();
    }
    figures.push((
        "get_or_create (insert first)",
        drawn(&db, before).await,
        STORED,
    ));

    let before = baseline(&db, 3).await;
    BulkInsert::<Synced>::new()
        .skip_conflicts::<SyncedBySku>()
        .run(&db.pool, rows.clone())
        .await
        .unwrap();
    figures.push(("bulk skip", drawn(&db, before).await, STORED));

    let before = baseline(&db, 4).await;
    let changed: Vec<Synced> = (0..STORED).map(|n| row(n, 3)).collect();
    BulkInsert::<Synced>::new()
        .update_conflicts::<SyncedBySku>(&[SyncedField::Price])
        .run(&db.pool, changed)
        .await
        .unwrap();
    let bulk_update = drawn(&db, before).await;
    // Every backend reads the stored keys first (SQLite and PostgreSQL then upsert those rows
    // under their stored primary keys; MariaDB updates them by `UPDATE … CASE`).
    assert_eq!(
        bulk_update,
        0,
        "{}: bulk update mode reads the stored keys first",
        DB::DIALECT
    );
    figures.push(("bulk update", bulk_update, STORED));

    // A mix of stored and new rows: ids are drawn for the new rows only.
    let before = baseline(&db, 5).await;
    let mixed: Vec<Synced> = (0..STORED + 10).map(|n| row(n, 4)).collect();
    let mixed_report = BulkInsert::<Synced>::new()
        .update_conflicts::<SyncedBySku>(&[SyncedField::Price])
        .run(&db.pool, mixed)
        .await
        .unwrap();
    assert_eq!(
        (mixed_report.inserted, mixed_report.updated),
        (10, STORED as u64)
    );
    let mixed_drawn = drawn(&db, before).await;
    assert_eq!(
        mixed_drawn,
        10,
        "{}: bulk update of {STORED} stored and 10 new rows",
        DB::DIALECT
    );

    // Bulk skip mode over a chunk of 64 rows or more: PostgreSQL leaves the stored rows out by an
    // anti-join, and MariaDB reads them first; neither draws an id for them. (SQLite's `ON CONFLICT
    // DO NOTHING` draws one per stored row: see its figure above.) The 60 rows stored by now and 90
    // new ones.
    let before = baseline(&db, 6).await;
    let wide: Vec<Synced> = (0..STORED + 100).map(|n| row(n, 5)).collect();
    let wide_report = BulkInsert::<Synced>::new()
        .counts_only()
        .skip_conflicts::<SyncedBySku>()
        .run(&db.pool, wide)
        .await
        .unwrap();
    assert_eq!(
        (wide_report.inserted, wide_report.skipped_existing),
        (90, STORED as u64 + 10)
    );
    let wide_drawn = drawn(&db, before).await;
    if DB::DIALECT != model_runtime::Dialect::Sqlite {
        assert_eq!(
            wide_drawn,
            90,
            "{}: bulk skip of 60 stored and 90 new rows in one chunk",
            DB::DIALECT
        );
    }
    figures.push(("bulk skip, 150-row chunk", wide_drawn - 90, STORED + 10));

    let text: Vec<String> = figures
        .iter()
        .map(|(path, ids, stored)| format!("{path} {:.2}", *ids as f64 / *stored as f64))
        .collect();
    report(&format!(
        "{}: ids drawn per stored row: {}",
        DB::DIALECT,
        text.join(", ")
    ));
}

backend_tests!(ids_drawn_for_stored_rows);
