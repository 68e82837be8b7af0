//! The one seam between SQL building and execution.
//!
//! [`Backend`] is implemented for sqlx's `Sqlite`, `Postgres` and `MySql` (each behind the cargo feature
//! of that name). It knows how to run a built statement on a connection and nothing about models; the
//! model-level operations are written once, generically, on top of it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use sea_query::Values;

/// The SQL dialect of a backend: what [`crate::schema`] and the statement builders render for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite 3.35+ (`RETURNING`, `ON CONFLICT`).
    Sqlite,
    /// PostgreSQL 13+.
    Postgres,
    /// MySQL 8 and MariaDB 10.5+.
    MySql,
}

impl Dialect {
    /// Every dialect, in a stable order.
    pub const ALL: [Dialect; 3] = [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql];
}

/// What each dialect can do, declared once: the statement builders and operations ask these rather
/// than test for a dialect by name.
impl Dialect {
    /// `INSERT … ON CONFLICT [(target)] DO NOTHING | DO UPDATE`: a conflict clause that can name the
    /// constraint that arbitrates. MySQL has only `ON DUPLICATE KEY UPDATE` and `INSERT IGNORE`,
    /// which react to a duplicate on any unique key.
    pub(crate) const fn has_on_conflict(self) -> bool {
        !matches!(self, Dialect::MySql)
    }

    /// `UPDATE … RETURNING`. MariaDB has `INSERT … RETURNING` and `DELETE … RETURNING` only.
    pub(crate) const fn has_update_returning(self) -> bool {
        !matches!(self, Dialect::MySql)
    }

    /// Row locks (`FOR UPDATE`, `FOR SHARE`). SQLite locks the whole database instead.
    pub(crate) const fn has_row_locks(self) -> bool {
        !matches!(self, Dialect::Sqlite)
    }

    /// A failed statement aborts the whole transaction (PostgreSQL), so a statement that may fail
    /// inside the caller's transaction runs under a savepoint.
    pub(crate) const fn error_aborts_transaction(self) -> bool {
        matches!(self, Dialect::Postgres)
    }

    /// The most bind parameters one statement may carry.
    pub(crate) const fn bind_limit(self) -> usize {
        match self {
            Dialect::Sqlite => 32_766,
            Dialect::Postgres | Dialect::MySql => 65_535,
        }
    }

    /// The driver can leave a connection in a state nobody knows when a call is cut off part-way
    /// (sqlx 0.9's MySQL and PostgreSQL drivers: a `BEGIN` sent but not answered), so such a
    /// connection the library acquired is closed rather than handed back. SQLite's driver runs
    /// each step on its worker thread to the end, and closing an in-memory database's only
    /// connection would throw the database away.
    pub(crate) const fn closes_cut_connections(self) -> bool {
        !matches!(self, Dialect::Sqlite)
    }

    /// The character that quotes an identifier.
    pub(crate) const fn identifier_quote(self) -> char {
        match self {
            Dialect::MySql => '`',
            Dialect::Sqlite | Dialect::Postgres => '"',
        }
    }
}

impl Dialect {
    /// The statements that open a transaction at `isolation`: one to run before `BEGIN` (MySQL sets
    /// the next transaction's level with a statement of its own), and the `BEGIN` itself.
    pub(crate) fn begin_statements(
        self,
        isolation: Option<Isolation>,
    ) -> (Option<String>, &'static str) {
        match (self, isolation) {
            // SQLite is always serializable; IMMEDIATE takes the write lock up front, so a transaction
            // that reads and then writes waits for other writers instead of failing with
            // SQLITE_BUSY_SNAPSHOT.
            (Dialect::Sqlite, _) => (None, "BEGIN IMMEDIATE"),
            (Dialect::Postgres, None) => (None, "BEGIN"),
            (Dialect::Postgres, Some(Isolation::ReadCommitted)) => {
                (None, "BEGIN ISOLATION LEVEL READ COMMITTED")
            }
            (Dialect::Postgres, Some(Isolation::RepeatableRead)) => {
                (None, "BEGIN ISOLATION LEVEL REPEATABLE READ")
            }
            (Dialect::Postgres, Some(Isolation::Serializable)) => {
                (None, "BEGIN ISOLATION LEVEL SERIALIZABLE")
            }
            (Dialect::MySql, None) => (None, "START TRANSACTION"),
            (Dialect::MySql, Some(level)) => (
                Some(format!("SET TRANSACTION ISOLATION LEVEL {}", level.sql())),
                "START TRANSACTION",
            ),
        }
    }
}

/// A transaction isolation level, for [`crate::TxOptions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// `READ COMMITTED`: PostgreSQL's default.
    ReadCommitted,
    /// `REPEATABLE READ`: MySQL's default.
    RepeatableRead,
    /// `SERIALIZABLE`.
    Serializable,
}

impl Isolation {
    fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
            Dialect::MySql => "MySQL",
        })
    }
}

/// A borrowed row of any enabled backend, for [`crate::Column::decode`].
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum RowRef<'r> {
    /// A SQLite row.
    #[cfg(feature = "sqlite")]
    Sqlite(&'r sqlx::sqlite::SqliteRow),
    /// A PostgreSQL row.
    #[cfg(feature = "postgres")]
    Postgres(&'r sqlx::postgres::PgRow),
    /// A MySQL / MariaDB row.
    #[cfg(feature = "mysql")]
    MySql(&'r sqlx::mysql::MySqlRow),
}

/// What a statement without result rows reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Rows the statement affected, as the database counts them.
    pub rows_affected: u64,
}

mod sealed {
    pub trait Sealed {}
}

/// A database the runtime can execute statements on. Implemented for sqlx's `Sqlite`, `Postgres` and
/// `MySql` (each behind the cargo feature of that name), and sealed: it cannot be implemented
/// elsewhere. Its rows are [`ModelRow`](crate::ModelRow)s, so code generic over a `Backend` can
/// read models with `sqlx::query_as`.
pub trait Backend: sqlx::Database<Row: crate::row::ModelRow> + sealed::Sealed {
    /// The SQL dialect.
    const DIALECT: Dialect;

    /// Borrows a row for decoding.
    fn row_ref(row: &Self::Row) -> RowRef<'_>;

    /// Runs a statement and returns its first row, if any, after reading its whole result.
    ///
    /// sqlx's own `fetch_optional` stops reading at the first row on MySQL, so an error the server
    /// sends after it (a Galera node aborting the transaction while the rows stream) would not be
    /// seen, and would be handed to the next statement on the connection, or left for the next
    /// user of the pooled connection. Every statement this is used for returns at most one row.
    fn fetch_optional<'c>(
        conn: &'c mut Self::Connection,
        sql: Arc<str>,
        values: Values,
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send + 'c;

    /// Runs a statement and returns all its rows.
    fn fetch_all<'c>(
        conn: &'c mut Self::Connection,
        sql: Arc<str>,
        values: Values,
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'c;

    /// Runs a write statement (`INSERT … RETURNING`, `UPDATE … RETURNING`) and returns its first row,
    /// after reading its whole result: an error the server reports after the rows (a failed CHECK on
    /// a later row, a Galera certification failure at the implicit commit of autocommit, a deferred
    /// constraint) is this call's error, never a row reported written that was not, and never left
    /// unread for the next statement on the connection.
    ///
    /// On MySQL / MariaDB outside a transaction, the statement runs in a transaction of its own
    /// (`START TRANSACTION`, the statement, `COMMIT`): MariaDB Galera commits an autocommit
    /// statement while its `RETURNING` result set is still open, and a transaction that must then
    /// be replayed (a node's applier aborted it after certification) ends that result set with an
    /// OK packet where an EOF packet belongs, which sqlx 0.9 decodes as a row, and panics on. In a
    /// transaction the result set is complete before `COMMIT`, which certifies, replays or fails
    /// with an error of its own (1213, retryable). A call cut off while `START TRANSACTION` is in
    /// flight leaves the connection in a state sqlx does not know: a pooled connection the library
    /// acquired is then closed (`CloseUnlessClean`), a borrowed one cannot be.
    fn fetch_write<'c>(
        conn: &'c mut Self::Connection,
        sql: Arc<str>,
        values: Values,
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send + 'c {
        async move {
            use sqlx::Connection;
            if Self::DIALECT == Dialect::MySql && !conn.is_in_transaction() {
                let mut tx = conn.begin().await?;
                let rows = Self::fetch_all(&mut tx, sql, values).await;
                return match rows {
                    Ok(rows) => {
                        tx.commit().await?;
                        Ok(rows.into_iter().next())
                    }
                    Err(error) => {
                        tx.rollback().await?;
                        Err(error)
                    }
                };
            }
            if Self::DIALECT == Dialect::Sqlite && conn.is_in_transaction() {
                // Inside a transaction SQLite makes every change of an `INSERT` / `UPDATE …
                // RETURNING` at its first step, and reports any error there: the first row is
                // the whole outcome, and waiting for the driver's end-of-result message costs
                // its thread a second hand-off. Not in autocommit: there the statement commits,
                // and checks deferred foreign keys, when it ends, and the driver drops an error
                // from ending it early (a deferred foreign key violation then rolls the row back
                // while the row is returned as written; found by review, see
                // `tests/sqlite_deferred_fk.rs`).
                return Self::fetch_optional(conn, sql, values).await;
            }
            let rows = Self::fetch_all(conn, sql, values).await?;
            Ok(rows.into_iter().next())
        }
    }

    /// Runs a statement that returns no rows.
    fn execute<'c>(
        conn: &'c mut Self::Connection,
        sql: Arc<str>,
        values: Values,
    ) -> impl Future<Output = Result<ExecOutcome, sqlx::Error>> + Send + 'c;
}

macro_rules! impl_backend {
    ($feature:literal, $db:ty, $dialect:ident, $variant:ident, $args:path) => {
        #[cfg(feature = $feature)]
        impl sealed::Sealed for $db {}

        #[cfg(feature = $feature)]
        impl Backend for $db {
            const DIALECT: Dialect = Dialect::$dialect;

            fn row_ref(row: &Self::Row) -> RowRef<'_> {
                RowRef::$variant(row)
            }

            async fn fetch_optional(
                conn: &mut Self::Connection,
                sql: Arc<str>,
                values: Values,
            ) -> Result<Option<Self::Row>, sqlx::Error> {
                let started = Instant::now();
                let query = sqlx::query_with(sqlx::AssertSqlSafe(Arc::clone(&sql)), $args(values));
                // The whole result, not sqlx's `fetch_optional`, on the servers: see the trait's
                // documentation. SQLite's driver reports a statement's error at the step that
                // meets it, and reads every result here to its end either way.
                let result = if Dialect::$dialect == Dialect::Sqlite {
                    query.fetch_optional(&mut *conn).await
                } else {
                    query
                        .fetch_all(&mut *conn)
                        .await
                        .map(|rows| rows.into_iter().next())
                };
                trace_statement(Dialect::$dialect, &sql, started, result.is_ok());
                result
            }

            async fn fetch_all(
                conn: &mut Self::Connection,
                sql: Arc<str>,
                values: Values,
            ) -> Result<Vec<Self::Row>, sqlx::Error> {
                let started = Instant::now();
                let query = sqlx::query_with(sqlx::AssertSqlSafe(Arc::clone(&sql)), $args(values));
                let result = query.fetch_all(&mut *conn).await;
                trace_statement(Dialect::$dialect, &sql, started, result.is_ok());
                result
            }

            async fn execute(
                conn: &mut Self::Connection,
                sql: Arc<str>,
                values: Values,
            ) -> Result<ExecOutcome, sqlx::Error> {
                let started = Instant::now();
                let query = sqlx::query_with(sqlx::AssertSqlSafe(Arc::clone(&sql)), $args(values));
                let result = query.execute(&mut *conn).await;
                trace_statement(Dialect::$dialect, &sql, started, result.is_ok());
                result.map(|done| ExecOutcome {
                    rows_affected: done.rows_affected(),
                })
            }
        }
    };
}

impl_backend!(
    "sqlite",
    sqlx::Sqlite,
    Sqlite,
    Sqlite,
    sea_query_sqlx::SqlxValues
);
impl_backend!("postgres", sqlx::Postgres, Postgres, Postgres, PgValues);
impl_backend!(
    "mysql",
    sqlx::MySql,
    MySql,
    MySql,
    sea_query_sqlx::SqlxValues
);

/// PostgreSQL's binding of a statement's values: sea-query-sqlx's, except for arrays
/// (`Value::Array`, a bulk insert's one array per column), which are bound with their NULL elements
/// (sea-query-sqlx binds an array as a `Vec<T>` and cannot hold a NULL in one).
#[cfg(feature = "postgres")]
struct PgValues(Values);

#[cfg(feature = "postgres")]
impl sqlx::IntoArguments<sqlx::Postgres> for PgValues {
    fn into_arguments(self) -> sqlx::postgres::PgArguments {
        use sea_query::Value;
        if !self.0.0.iter().any(|v| matches!(v, Value::Array(..))) {
            return sqlx::IntoArguments::<sqlx::Postgres>::into_arguments(
                sea_query_sqlx::SqlxValues(self.0),
            );
        }
        let mut args = sqlx::postgres::PgArguments::default();
        for value in self.0.0 {
            // As sea-query-sqlx does, an encoding error is left for the database to report: the
            // parameter count no longer matches the statement's.
            let _ = match value {
                Value::Array(kind, items) => add_array(&mut args, kind, items.map(|v| *v)),
                other => add_one(&mut args, other),
            };
        }
        args
    }
}

/// Appends one array of `kind`, NULL elements included, to `args`.
#[cfg(feature = "postgres")]
fn add_array(
    args: &mut sqlx::postgres::PgArguments,
    kind: sea_query::ArrayType,
    items: Option<Vec<sea_query::Value>>,
) -> Result<(), sqlx::error::BoxDynError> {
    use sea_query::{ArrayType as A, Value};
    use sqlx::Arguments;
    let items = items.unwrap_or_default();
    // Every element is of the array's kind by construction (`bulk::statements::column_arrays`).
    macro_rules! elements {
        ($variant:ident $(, $map:expr)?) => {{
            let column: Vec<Option<_>> = items
                .into_iter()
                .map(|v| match v {
                    Value::$variant(v) => v $(.map($map))?,
                    other => unreachable!("an array of {:?} holds {other:?}", kind),
                })
                .collect();
            args.add(column)
        }};
    }
    match kind {
        A::Bool => elements!(Bool),
        A::SmallInt => elements!(SmallInt),
        A::Int => elements!(Int),
        A::BigInt => elements!(BigInt),
        A::Float => elements!(Float),
        A::Double => elements!(Double),
        A::String => elements!(String),
        A::Bytes => elements!(Bytes),
        #[cfg(feature = "rust_decimal")]
        A::Decimal => elements!(Decimal),
        #[cfg(feature = "chrono")]
        A::ChronoDate => elements!(ChronoDate),
        #[cfg(feature = "chrono")]
        A::ChronoTime => elements!(ChronoTime),
        #[cfg(feature = "chrono")]
        A::ChronoDateTime => elements!(ChronoDateTime),
        #[cfg(feature = "chrono")]
        A::ChronoDateTimeUtc => elements!(ChronoDateTimeUtc),
        #[cfg(feature = "uuid")]
        A::Uuid => elements!(Uuid),
        #[cfg(feature = "json")]
        A::Json => elements!(Json, |json: Box<serde_json::Value>| *json),
        other => unreachable!("no array of {other:?} is built"),
    }
}

/// Appends one value that is not an array to `args`, bound as sea-query-sqlx binds it (the kinds
/// a column produces; no statement with arrays binds anything else).
#[cfg(feature = "postgres")]
fn add_one(
    args: &mut sqlx::postgres::PgArguments,
    value: sea_query::Value,
) -> Result<(), sqlx::error::BoxDynError> {
    use sea_query::Value;
    use sqlx::Arguments;
    match value {
        Value::Bool(v) => args.add(v),
        Value::SmallInt(v) => args.add(v),
        Value::Int(v) => args.add(v),
        Value::BigInt(v) => args.add(v),
        Value::Float(v) => args.add(v),
        Value::Double(v) => args.add(v),
        Value::String(v) => args.add(v),
        Value::Bytes(v) => args.add(v),
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(v) => args.add(v),
        #[cfg(feature = "chrono")]
        Value::ChronoDate(v) => args.add(v),
        #[cfg(feature = "chrono")]
        Value::ChronoTime(v) => args.add(v),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTime(v) => args.add(v),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTimeUtc(v) => args.add(v),
        #[cfg(feature = "uuid")]
        Value::Uuid(v) => args.add(v),
        #[cfg(feature = "json")]
        Value::Json(v) => args.add(v.map(|json| *json)),
        other => unreachable!("no statement with arrays binds {other:?}"),
    }
}

/// Every statement the runtime sends is logged here, at debug level, with its SQL and duration.
fn trace_statement(dialect: Dialect, sql: &str, started: Instant, ok: bool) {
    tracing::debug!(
        target: "model_runtime::sql",
        backend = %dialect,
        elapsed_us = started.elapsed().as_micros() as u64,
        ok,
        "{sql}"
    );
}
