//! SQLite in autocommit checks a deferred foreign key when the statement ends, and a violation
//! rolls the statement back: every write path must then report the error, never the row as
//! written. (A review found the single-row writes reading only the first row of `INSERT …
//! RETURNING`, whose early end made sqlx drop that error.)

use model_integration::{Options, TestDb, run_scenario};
use model_runtime::Key;
use model_runtime::{BulkInsert, Model};
use sqlx::Sqlite;

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "dfk_children")]
struct Child {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    name: String,
    parent: i64,
}

async fn count(db: &TestDb<Sqlite>) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM dfk_children")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn deferred_violation_is_an_error(db: TestDb<Sqlite>) {
    for sql in [
        "CREATE TABLE dfk_parents (id INTEGER PRIMARY KEY)",
        "CREATE TABLE dfk_children (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL \
         CONSTRAINT dfk_children_name_key UNIQUE, parent INTEGER NOT NULL REFERENCES dfk_parents (id) \
         DEFERRABLE INITIALLY DEFERRED)",
        "INSERT INTO dfk_parents (id) VALUES (1)",
    ] {
        sqlx::query(sql).execute(&db.pool).await.unwrap();
    }
    let orphan = |name: &str| Child {
        id: 0,
        name: name.into(),
        parent: 42,
    };
    // The control: a row with a parent is written.
    let ok = Child {
        parent: 1,
        ..orphan("ok")
    };
    ok.insert(&db.pool).await.unwrap();
    assert_eq!(count(&db).await, 1);

    assert!(orphan("a").insert(&db.pool).await.is_err(), "insert");
    assert!(
        Child::get_or_create_by_name(&db.pool, &orphan("b"))
            .await
            .is_err(),
        "get_or_create"
    );
    assert!(
        model_runtime::get_or_create_with::<ChildByName>(
            &db.pool,
            &orphan("c"),
            model_runtime::Strategy::InsertFirst
        )
        .await
        .is_err(),
        "get_or_create, insert first"
    );
    assert!(
        Child::update_or_create_by_name(&db.pool, &orphan("d"), &[ChildField::Parent])
            .await
            .is_err(),
        "update_or_create, created"
    );
    assert!(
        Child::update_or_create_by_name(&db.pool, &orphan("ok"), &[ChildField::Parent])
            .await
            .is_err(),
        "update_or_create, updated"
    );
    assert!(
        BulkInsert::<Child>::new()
            .run(&db.pool, vec![orphan("e")])
            .await
            .is_err(),
        "bulk"
    );
    assert_eq!(count(&db).await, 1, "nothing kept");
    let stored = Child::by_name("ok").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(stored.parent, 1, "the update was rolled back");
}

#[tokio::test]
async fn a_deferred_foreign_key_violation_is_an_error_in_autocommit() {
    run_scenario::<Sqlite, _>(
        "sqlite_deferred_fk::a_deferred_foreign_key_violation_is_an_error_in_autocommit",
        Options::default(),
        deferred_violation_is_an_error,
    )
    .await;
}
