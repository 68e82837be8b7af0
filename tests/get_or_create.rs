//! `get_or_create_by_…` and `update_or_create_by_…` behave like Django's, without its races, on every
//! backend: the Django behaviours one by one, then 32 racing sessions per key under each isolation
//! level, in autocommit, in the library's transaction helper, and in the caller's own transactions.

use model_integration::{Options, TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{Changes, Isolation, Model, Outcome, Schema, TxOptions};
use sqlx::error::ErrorKind;

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

fn product(sku: &str, name: &str, store_id: i64, price_cents: i64) -> Product {
    Product {
        id: 0,
        sku: sku.into(),
        product_name: name.into(),
        store_id,
        price_cents,
        ean: None,
    }
}

async fn create_schema<DB: TestBackend>(db: &TestDb<DB>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
}

fn unique_violation(error: &model_runtime::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.kind() == ErrorKind::UniqueViolation)
}

async fn get_or_create_finds_or_creates_and_uses_defaults_only_on_create<DB: TestBackend>(
    db: TestDb<DB>,
) {
    create_schema(&db).await;

    let (created, outcome) =
        Product::get_or_create_by_sku(&db.pool, &product("A-1", "iPhone 15", 1, 99_999))
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert!(outcome.created());
    assert!(created.id > 0);
    assert_eq!(created.price_cents, 99_999);

    // Same key, other values: the existing row comes back unchanged; the new values are defaults only.
    let (found, outcome) =
        Product::get_or_create_by_sku(&db.pool, &product("A-1", "Renamed", 2, 1))
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Found);
    assert_eq!(found, created);
    assert_eq!(DB::count(&db.pool, "products").await, 1);

    // The composite key works the same way.
    let (by_pair, outcome) = Product::get_or_create_by_product_name_and_store_id(
        &db.pool,
        &product("B-7", "iPhone 15", 1, 5),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Found);
    assert_eq!(by_pair, created);

    // And the primary key: a lookup by id inserts that id.
    let mut by_id = product("C-1", "Pixel 8", 1, 7);
    by_id.id = 4242;
    let (row, outcome) = Product::get_or_create_by_id(&db.pool, &by_id)
        .await
        .unwrap();
    assert_eq!((row.id, outcome), (4242, Outcome::Created));
    let (row, outcome) = Product::get_or_create_by_id(&db.pool, &by_id)
        .await
        .unwrap();
    assert_eq!((row.id, outcome), (4242, Outcome::Found));
    assert_eq!(DB::count(&db.pool, "products").await, 2);
}

async fn a_key_with_null_identifies_no_row<DB: TestBackend>(db: TestDb<DB>) {
    create_schema(&db).await;
    // NULLs never collide in a unique constraint, so a NULL key never finds a row: both are created.
    let (first, a) = Product::get_or_create_by_ean(&db.pool, &product("N-1", "a", 1, 1))
        .await
        .unwrap();
    let (second, b) = Product::get_or_create_by_ean(&db.pool, &product("N-2", "b", 1, 1))
        .await
        .unwrap();
    assert_eq!((a, b), (Outcome::Created, Outcome::Created));
    assert_ne!(first.id, second.id);
    assert_eq!(Product::by_ean(None).get(&db.pool).await.unwrap(), None);
}

async fn a_conflict_on_another_constraint_is_an_error<DB: TestBackend>(db: TestDb<DB>) {
    create_schema(&db).await;
    product("A-1", "iPhone 15", 1, 10)
        .insert(&db.pool)
        .await
        .unwrap();

    // New sku, but (product_name, store_id) is taken: neither a wrong row nor a silent success.
    let error = Product::get_or_create_by_sku(&db.pool, &product("A-2", "iPhone 15", 1, 10))
        .await
        .expect_err("the other constraint must refuse it");
    assert!(unique_violation(&error), "{error:?}");
    let error = Product::update_or_create_by_sku(
        &db.pool,
        &product("A-3", "iPhone 15", 1, 10),
        &[ProductField::PriceCents],
    )
    .await
    .expect_err("the other constraint must refuse it");
    assert!(unique_violation(&error), "{error:?}");
    assert_eq!(DB::count(&db.pool, "products").await, 1);

    // Inside the caller's transaction, the transaction stays usable after the error (PostgreSQL
    // needs the savepoint the library sets for that) and commits what else it did.
    let mut tx = db.pool.begin().await.unwrap();
    let error = Product::get_or_create_by_sku(&mut tx, &product("A-2", "iPhone 15", 1, 10))
        .await
        .expect_err("the other constraint must refuse it");
    assert!(unique_violation(&error), "{error:?}");
    let (_, outcome) = Product::get_or_create_by_sku(&mut tx, &product("A-4", "Pixel 8", 1, 10))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    tx.commit().await.unwrap();
    assert_eq!(DB::count(&db.pool, "products").await, 2);
}

async fn update_or_create_updates_only_the_given_fields<DB: TestBackend>(db: TestDb<DB>) {
    create_schema(&db).await;
    let (created, outcome) = Product::update_or_create_by_sku(
        &db.pool,
        &product("A-1", "iPhone 15", 1, 999),
        &[ProductField::PriceCents],
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert_eq!(
        (created.product_name.as_str(), created.price_cents),
        ("iPhone 15", 999)
    );

    // Price is listed, name is not: the name stays as it was.
    let (updated, outcome) = Product::update_or_create_by_sku(
        &db.pool,
        &product("A-1", "Renamed", 1, 899),
        &[ProductField::PriceCents],
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(updated.id, created.id);
    assert_eq!(
        (updated.product_name.as_str(), updated.price_cents),
        ("iPhone 15", 899)
    );
    let stored = Product::by_sku("A-1").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(stored, updated);
    assert_eq!(DB::count(&db.pool, "products").await, 1);

    // Key fields in the list are skipped; an empty list behaves as get_or_create.
    let (same, outcome) = Product::update_or_create_by_sku(
        &db.pool,
        &product("A-1", "x", 9, 1),
        &[ProductField::Sku],
    )
    .await
    .unwrap();
    assert_eq!((outcome, same), (Outcome::Unchanged, stored));
}

async fn create_only_values_are_used_only_on_create<DB: TestBackend>(db: TestDb<DB>) {
    create_schema(&db).await;
    // Django 5's `create_defaults`: the created row gets the create values, an update only the
    // update values.
    let create = product("A-1", "iPhone 15", 1, 999);
    let update = product("A-1", "ignored", 1, 555);
    let fields = [ProductField::PriceCents];
    let (row, outcome) = model_runtime::update_or_create::<ProductBySku>(
        &db.pool,
        &create,
        Changes::new(&update, &fields),
    )
    .await
    .unwrap();
    assert_eq!((outcome, row.price_cents), (Outcome::Created, 999));
    let (row, outcome) = model_runtime::update_or_create::<ProductBySku>(
        &db.pool,
        &create,
        Changes::new(&update, &fields),
    )
    .await
    .unwrap();
    assert_eq!(
        (outcome, row.price_cents, row.product_name.as_str()),
        (Outcome::Updated, 555, "iPhone 15")
    );
}

async fn the_small_set_around_them<DB: TestBackend>(db: TestDb<DB>) {
    create_schema(&db).await;
    let stored = product("A-1", "iPhone 15", 1, 10)
        .insert(&db.pool)
        .await
        .unwrap();
    assert!(Product::by_sku("A-1").exists(&db.pool).await.unwrap());
    assert!(!Product::by_sku("A-2").exists(&db.pool).await.unwrap());
    assert_eq!(
        Product::by_id(stored.id)
            .get(&db.pool)
            .await
            .unwrap()
            .as_ref(),
        Some(&stored)
    );

    let changed = Product {
        price_cents: 20,
        ..stored.clone()
    }
    .update(&db.pool)
    .await
    .unwrap();
    assert_eq!(changed.price_cents, 20);
    let missing = Product {
        id: stored.id + 100,
        ..stored.clone()
    };
    assert!(matches!(
        missing.update(&db.pool).await,
        Err(model_runtime::Error::NotFound { .. })
    ));

    // A locking read inside a transaction (Django's select_for_update), then a write, then commit.
    let mut tx = db.pool.begin().await.unwrap();
    let locked = Product::by_sku("A-1")
        .get_for_update(&mut tx)
        .await
        .unwrap()
        .unwrap();
    Product {
        price_cents: locked.price_cents + 1,
        ..locked
    }
    .update(&mut tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        Product::by_sku("A-1")
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap()
            .price_cents,
        21
    );

    assert!(changed.delete(&db.pool).await.unwrap());
    assert!(!changed.delete(&db.pool).await.unwrap());
    assert_eq!(DB::count(&db.pool, "products").await, 0);
}

async fn outcomes_stay_right_on_one_connection<DB: TestBackend>(db: TestDb<DB>) {
    create_schema(&db).await;
    // One connection throughout: on MariaDB the upsert leaves a marker in the session's
    // LAST_INSERT_ID(), which a later call on the same connection must not take for its own.
    let mut conn = db.pool.acquire().await.unwrap();
    let fields = [ProductField::PriceCents];
    let calls = [
        ("A-1", 1, Outcome::Created),
        ("A-1", 2, Outcome::Updated),
        ("A-2", 3, Outcome::Created),
        ("A-2", 3, Outcome::Unchanged),
        ("A-3", 4, Outcome::Created),
        ("A-1", 5, Outcome::Updated),
    ];
    for (n, (sku, price, expected)) in calls.into_iter().enumerate() {
        let candidate = product(sku, &format!("name {sku}"), 1, price);
        let (row, outcome) = Product::update_or_create_by_sku(&mut conn, &candidate, &fields)
            .await
            .unwrap();
        assert_eq!(
            (outcome, row.sku.as_str(), row.price_cents),
            (expected, sku, price),
            "call {n}"
        );
    }
    drop(conn);
    assert_eq!(DB::count(&db.pool, "products").await, 3);
}

async fn update_or_create_updates_its_row_when_another_constraint_also_collides<DB: TestBackend>(
    db: TestDb<DB>,
) {
    create_schema(&db).await;
    let ours = product("A-1", "X", 1, 10).insert(&db.pool).await.unwrap();
    let other = product("A-2", "Y", 1, 20).insert(&db.pool).await.unwrap();
    // The candidate's key is A-1's, its (name, store) is A-2's: an insert would collide with both.
    // Whichever the database reports first, our row is updated and the other one is left alone.
    let (row, outcome) = Product::update_or_create_by_sku(
        &db.pool,
        &product("A-1", "Y", 1, 30),
        &[ProductField::PriceCents],
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(
        row,
        Product {
            price_cents: 30,
            ..ours
        }
    );
    assert_eq!(
        Product::by_sku("A-2").get(&db.pool).await.unwrap(),
        Some(other)
    );
}

backend_tests!(
    outcomes_stay_right_on_one_connection,
    update_or_create_updates_its_row_when_another_constraint_also_collides,
    get_or_create_finds_or_creates_and_uses_defaults_only_on_create,
    a_key_with_null_identifies_no_row,
    a_conflict_on_another_constraint_is_an_error,
    update_or_create_updates_only_the_given_fields,
    create_only_values_are_used_only_on_create,
    the_small_set_around_them,
);

// ---------------------------------------------------------------------------------------------
// Races.

const TASKS: usize = 32;
const KEYS: usize = 200;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    GetOrCreate,
    UpdateOrCreate,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Each call on its own, outside any transaction.
    Autocommit,
    /// Each call inside `model_runtime::transaction`, as a per-request transaction would be.
    LibraryTransaction,
    /// Each call inside a plain `pool.begin()` transaction that the caller commits.
    CallerTransaction,
}

/// 32 tasks, each on its own connection, call the operation on the same 200 new keys in the same
/// order, so that all of them race for every key. Every key must end with exactly one row, exactly
/// one committed caller per key must see `Created`, and every caller must get the winner's row
/// (`get_or_create`) or a row carrying its own update (`update_or_create`: no update lost). The only
/// error a caller may see is a retryable one, and only when it manages the transaction itself.
async fn race<DB: TestBackend>(db: TestDb<DB>, op: Op, mode: Mode, isolation: Isolation) {
    create_schema(&db).await;
    let start = tokio::sync::Barrier::new(TASKS);
    let tasks = (0..TASKS).map(|task| {
        let (pool, start) = (&db.pool, &start);
        async move {
            start.wait().await;
            let mut results = Vec::with_capacity(KEYS);
            let mut retryable = 0usize;
            for k in 0..KEYS {
                let candidate = product(&format!("K-{k}"), &format!("name {k}"), 1, task as i64);
                let result = match mode {
                    Mode::Autocommit => call(pool, op, &candidate).await,
                    Mode::LibraryTransaction => {
                        // The defaults a user gets: a retry budget by time.
                        let options = TxOptions::default().isolation(isolation);
                        model_runtime::transaction(pool, options, async |tx| {
                            call(&mut *tx, op, &candidate).await
                        })
                        .await
                    }
                    Mode::CallerTransaction => {
                        let mut tx = pool.begin().await.expect("begin");
                        match call(&mut tx, op, &candidate).await {
                            Ok(value) => tx
                                .commit()
                                .await
                                .map(|()| value)
                                .map_err(model_runtime::Error::from),
                            Err(error) => {
                                tx.rollback().await.expect("rollback");
                                Err(error)
                            }
                        }
                    }
                };
                match result {
                    Ok((row, outcome)) => results.push((k, row, outcome)),
                    Err(error) if mode == Mode::CallerTransaction && error.is_retryable() => {
                        retryable += 1
                    }
                    Err(error) => {
                        panic!("{op:?} {mode:?} {isolation:?}, task {task}, key {k}: {error}")
                    }
                }
            }
            (task, results, retryable)
        }
    });
    let finished = futures_util::future::join_all(tasks).await;

    let mut creators = vec![0usize; KEYS];
    let mut created_rows: Vec<Option<Product>> = vec![None; KEYS];
    let mut retryable = 0;
    for (_, results, errors) in &finished {
        retryable += errors;
        for (k, row, outcome) in results {
            if *outcome == Outcome::Created {
                creators[*k] += 1;
                created_rows[*k] = Some(row.clone());
            }
        }
    }
    for (task, results, _) in &finished {
        for (k, row, outcome) in results {
            match op {
                // Everybody sees the one row that was created.
                Op::GetOrCreate => assert_eq!(Some(row), created_rows[*k].as_ref(), "key {k}"),
                // Everybody's write is in the row it got back: created with it, or updated with it.
                Op::UpdateOrCreate => {
                    assert_eq!(
                        row.price_cents, *task as i64,
                        "task {task}, key {k}, {outcome:?}"
                    );
                    assert_eq!(
                        Some(row.id),
                        created_rows[*k].as_ref().map(|r| r.id),
                        "key {k}"
                    );
                }
            }
        }
    }
    if mode != Mode::CallerTransaction {
        assert_eq!(retryable, 0);
        assert!(
            creators.iter().all(|&c| c == 1),
            "one creator per key: {creators:?}"
        );
    } else {
        // A key every caller failed on may have no row; none may have two creators.
        assert!(
            creators.iter().all(|&c| c <= 1),
            "at most one creator per key: {creators:?}"
        );
    }
    let rows = DB::count(&db.pool, "products").await;
    assert_eq!(
        rows,
        creators.iter().sum::<usize>() as i64,
        "rows in the table = creators"
    );
    if mode != Mode::CallerTransaction {
        assert_eq!(rows, KEYS as i64);
    }
    model_integration::report(&format!(
        "{} {op:?} {mode:?} {isolation:?}: {} calls, {retryable} retryable errors",
        DB::DIALECT,
        TASKS * KEYS
    ));
}

fn call<'a, 'c: 'a>(
    conn: impl model_runtime::Conn<'c> + 'a,
    op: Op,
    candidate: &'a Product,
) -> model_runtime::BoxFuture<'a, Result<(Product, Outcome), model_runtime::Error>> {
    match op {
        Op::GetOrCreate => Product::get_or_create_by_sku(conn, candidate),
        Op::UpdateOrCreate => {
            Product::update_or_create_by_sku(conn, candidate, &[ProductField::PriceCents])
        }
    }
}

macro_rules! races {
    ($isolation:ident: $($name:ident => $op:ident, $mode:ident;)*) => {
        $(
            async fn $name<DB: TestBackend>(db: TestDb<DB>) {
                race(db, Op::$op, Mode::$mode, Isolation::$isolation).await
            }
        )*
        model_integration::backend_tests!(
            @with Options { max_connections: Some(TASKS as u32 + 2), sqlite_file: true, isolation: Some(Isolation::$isolation) };
            $($name),*
        );
    };
}

mod read_committed {
    use super::*;
    races!(ReadCommitted:
        get_or_create_autocommit => GetOrCreate, Autocommit;
        get_or_create_library_transaction => GetOrCreate, LibraryTransaction;
        get_or_create_caller_transaction => GetOrCreate, CallerTransaction;
        update_or_create_autocommit => UpdateOrCreate, Autocommit;
        update_or_create_library_transaction => UpdateOrCreate, LibraryTransaction;
        update_or_create_caller_transaction => UpdateOrCreate, CallerTransaction;
    );
}

mod repeatable_read {
    use super::*;
    races!(RepeatableRead:
        get_or_create_autocommit => GetOrCreate, Autocommit;
        get_or_create_library_transaction => GetOrCreate, LibraryTransaction;
        get_or_create_caller_transaction => GetOrCreate, CallerTransaction;
        update_or_create_autocommit => UpdateOrCreate, Autocommit;
        update_or_create_library_transaction => UpdateOrCreate, LibraryTransaction;
        update_or_create_caller_transaction => UpdateOrCreate, CallerTransaction;
    );
}
