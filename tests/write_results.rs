//! A write statement's result is read to its end: an error the server sends after the first row is
//! the call's error, and is not left on the connection for the next, unrelated statement.
//!
//! A faithful single-server reproduction of the failures this guards against (a Galera
//! certification failure or a deferred constraint reported after the rows of an `INSERT …
//! RETURNING`) is not available here: on PostgreSQL sqlx already reads to the end (it drains for
//! deferred constraints), and SQLite makes every change at the first step. What the tests show is
//! the mechanism: a multi-row `INSERT … RETURNING` whose second row fails a CHECK, on MariaDB sent
//! after the first row.

use model_integration::{Options, TestBackend, TestDb, backend_tests};
use model_runtime::__private::Values;

fn no_values() -> Values {
    Values(Vec::new())
}

async fn write_error_after_the_first_row_is_the_calls_error<DB: TestBackend>(db: TestDb<DB>) {
    DB::run(
        &db.pool,
        "CREATE TABLE checked (v INTEGER NOT NULL, CONSTRAINT v_positive CHECK (v > 0))",
    )
    .await;
    // One connection, so that whatever the first statement leaves behind meets the second.
    let mut conn = db.pool.acquire().await.unwrap();
    let written = DB::fetch_write(
        &mut conn,
        "INSERT INTO checked (v) VALUES (1), (-1) RETURNING v".into(),
        no_values(),
    )
    .await;
    assert!(
        written.is_err(),
        "the failed CHECK on the second row must be this statement's error, got a row: {:?}",
        written.map(|row| row.is_some())
    );
    // The next, unrelated statement on the same connection is not handed the error.
    let next = DB::fetch_all(&mut conn, "SELECT 1".into(), no_values()).await;
    assert!(next.is_ok(), "the next statement got: {:?}", next.err());
    drop(conn);
    assert_eq!(DB::count(&db.pool, "checked").await, 0);
}

async fn a_single_row_write_still_returns_its_row<DB: TestBackend>(db: TestDb<DB>) {
    DB::run(&db.pool, "CREATE TABLE checked (v INTEGER NOT NULL)").await;
    let mut conn = db.pool.acquire().await.unwrap();
    let row = DB::fetch_write(
        &mut conn,
        "INSERT INTO checked (v) VALUES (7) RETURNING v".into(),
        no_values(),
    )
    .await
    .unwrap();
    assert!(row.is_some());
    let none = DB::fetch_write(
        &mut conn,
        "DELETE FROM checked WHERE v = 8 RETURNING v".into(),
        no_values(),
    )
    .await
    .unwrap();
    assert!(none.is_none());
}

backend_tests!(
    @with Options { max_connections: Some(1), ..Options::default() };
    write_error_after_the_first_row_is_the_calls_error,
    a_single_row_write_still_returns_its_row,
);
