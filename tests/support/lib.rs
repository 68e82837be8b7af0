//! The harness shared by the integration tests: a fresh, isolated database per test on each backend.
//!
//! SQLite always runs (in memory, or in a temporary file). PostgreSQL and MariaDB/MySQL run when
//! `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` are set when the tests are built and run (`.ci/run` sets
//! both); when one is not, the build script marks its tests `#[ignore]`, and `cargo test` lists them
//! as ignored with the reason. A URL that is set but unreachable fails the test: it never skips.
//!
//! Every scenario's scratch database (a PostgreSQL schema, a MariaDB database, a SQLite file) is
//! dropped when the scenario ends, whether it passed or panicked.
//!
//! Write a scenario once, generic over the backend, and instantiate it for all three with
//! [`backend_tests!`]:
//!
//! ```ignore
//! async fn duplicate_is_rejected<DB: TestBackend>(db: TestDb<DB>) { … }
//! model_integration::backend_tests!(duplicate_is_rejected);
//! ```

use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use model_runtime::{Backend, Dialect, Isolation};
use sqlx::{Pool, Row};

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL: &str = "TEST_POSTGRES_URL";
/// The environment variable naming the MySQL / MariaDB server for tests.
pub const MYSQL_URL: &str = "TEST_MYSQL_URL";

/// A fresh database for one test: a pool on an empty schema (PostgreSQL), database (MySQL) or file
/// or in-memory database (SQLite) that no other test touches.
pub struct TestDb<DB: sqlx::Database> {
    /// The pool on the fresh database.
    pub pool: Pool<DB>,
    /// The schema / database name on the server backends; the file path on SQLite (empty in memory).
    pub name: String,
    _dir: Option<TempDir>,
}

/// A backend the tests can run on, with the catalog queries the schema tests need.
pub trait TestBackend: Backend {
    /// A fresh database for the test `test` (a name unique within the test suite). Panics when the
    /// backend's URL is not set or the server is unreachable: a test that cannot run is marked
    /// ignored at build time, never passed.
    fn fresh(test: &str, options: Options) -> impl Future<Output = TestDb<Self>> + Send;

    /// Drops the scratch database `name` that [`TestBackend::fresh`] made (nothing on SQLite, whose
    /// file goes with its directory).
    fn drop_database(name: &str) -> impl Future<Output = ()> + Send;

    /// Every unique constraint (or unique index) of `table` as the database's catalog reports it:
    /// `(name, columns in order)`, sorted by name. On SQLite the constraint name is not in the catalog:
    /// it is read back from the `CREATE TABLE` text stored in `sqlite_master`.
    fn unique_constraints(
        pool: &Pool<Self>,
        table: &str,
    ) -> impl Future<Output = Vec<(String, Vec<String>)>> + Send;

    /// Deadlocks the server has reported so far (PostgreSQL: in the URL's database; MariaDB: server
    /// wide; SQLite has none: its writers queue on one lock). Read on a fresh connection, after the
    /// caller closed its pool: PostgreSQL counts a backend's deadlocks when it flushes its statistics,
    /// at the latest when it exits.
    fn deadlocks() -> impl Future<Output = i64> + Send;

    /// `SELECT COUNT(*)` of a table.
    fn count(pool: &Pool<Self>, table: &str) -> impl Future<Output = i64> + Send;

    /// Runs a statement of the test's own (for example a constraint the model does not declare).
    fn run(pool: &Pool<Self>, sql: &str) -> impl Future<Output = ()> + Send {
        let sql = sql.to_owned();
        async move {
            let mut conn = pool.acquire().await.expect("a connection");
            Self::execute(&mut conn, sql.clone().into(), sea_query_values())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

fn sea_query_values() -> model_runtime::__private::Values {
    model_runtime::__private::Values(Vec::new())
}

/// How the fresh database is made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Connections in the pool (default 5).
    pub max_connections: Option<u32>,
    /// SQLite: a file in WAL mode instead of memory, so that several connections share it.
    pub sqlite_file: bool,
    /// PostgreSQL and MySQL: the session's default isolation level (server default otherwise).
    pub isolation: Option<Isolation>,
}

/// Writes a line to the terminal past libtest's capture: figures a test measured, for the record.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "report: {line}");
}

/// A database name of at most 63 bytes, unique per test, made of `[a-z0-9_]`.
pub fn database_name(test: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in test.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let tail: String = test
        .rsplit("::")
        .next()
        .unwrap_or(test)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("mr_{tail}_{hash:08x}")
}

/// Reads the URL of a server backend. The tests of a backend whose URL was not set at build time are
/// ignored and never get here, so an unset URL now means the environment changed since the build.
fn server_url(backend: &str, var: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{backend} tests were built with {var} set, but it is not set now: run them with {var} set (for example {var}={example})",
            example = if var == POSTGRES_URL {
                "postgres://postgres@127.0.0.1:5432/test"
            } else {
                "mysql://root@127.0.0.1:3306/test"
            }
        ),
    }
}

/// Runs a scenario on a fresh database of `DB`, then drops that database, also when the scenario
/// panicked (the panic is then resumed, failing the test).
pub async fn run_scenario<DB, Fut>(
    test: &str,
    options: Options,
    scenario: impl FnOnce(TestDb<DB>) -> Fut,
) where
    DB: TestBackend,
    Fut: Future<Output = ()>,
{
    use futures_util::FutureExt;
    let db = DB::fresh(test, options).await;
    let name = db.name.clone();
    let outcome = std::panic::AssertUnwindSafe(scenario(db))
        .catch_unwind()
        .await;
    DB::drop_database(&name).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `sql` on a fresh admin connection to `url`; a failure is printed, not fatal (a leftover
/// scratch database is not a reason to fail the test that made it).
async fn admin_statement<DB: sqlx::Database>(url: &str, sql: String)
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let result = async {
        let mut conn = <DB::Connection as sqlx::Connection>::connect(url).await?;
        sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(sql.clone())).await?;
        sqlx::Connection::close(conn).await
    }
    .await;
    if let Err(error) = result {
        let _ = writeln!(std::io::stderr(), "warning: {sql}: {error}");
    }
}

impl TestBackend for sqlx::Sqlite {
    async fn count(pool: &Pool<Self>, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM \"{table}\"");
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .expect("count")
    }

    async fn drop_database(_name: &str) {}

    async fn deadlocks() -> i64 {
        0
    }

    async fn fresh(test: &str, options: Options) -> TestDb<Self> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
        let (connect, dir, name) = if options.sqlite_file {
            let dir = TempDir::new(&database_name(test));
            let path = dir.path.join("db.sqlite");
            let connect = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(30));
            (connect, Some(dir), path.display().to_string())
        } else {
            (
                SqliteConnectOptions::from_str("sqlite::memory:").unwrap(),
                None,
                String::new(),
            )
        };
        // Every connection to `sqlite::memory:` is a database of its own: keep one.
        let max = if options.sqlite_file {
            options.max_connections.unwrap_or(5)
        } else {
            1
        };
        // Not tested before each acquire: sqlx drops a connection whose test is cut off, and an
        // in-memory database with it (see tests/sqlite_memory_cancel.rs); the cancellation tests
        // cut calls off at random.
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .test_before_acquire(options.sqlite_file)
            .connect_with(connect.foreign_keys(true))
            .await
            .expect("open SQLite");
        TestDb {
            pool,
            name,
            _dir: dir,
        }
    }

    async fn unique_constraints(pool: &Pool<Self>, table: &str) -> Vec<(String, Vec<String>)> {
        let sql: String =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(table)
                .fetch_one(pool)
                .await
                .expect("table in sqlite_master");
        // `CONSTRAINT "name" UNIQUE ("a", "b")`, as written by the DDL.
        let mut named = Vec::new();
        let mut rest = sql.as_str();
        while let Some(at) = rest.find("CONSTRAINT \"") {
            rest = &rest[at + "CONSTRAINT \"".len()..];
            let name_end = rest.find('"').expect("closing quote");
            let name = rest[..name_end].to_owned();
            let after = &rest[name_end + 1..];
            if let Some(cols) = after.strip_prefix(" UNIQUE (") {
                let end = cols.find(')').expect("closing paren");
                let columns = cols[..end]
                    .split(", ")
                    .map(|c| c.trim_matches('"').to_owned())
                    .collect();
                named.push((name, columns));
            }
        }
        // Every named constraint must also be enforced: a unique index over exactly those columns.
        let indexes = sqlx::query(
            "SELECT il.name AS index_name, ii.name AS column_name FROM pragma_index_list(?) il \
             JOIN pragma_index_info(il.name) ii WHERE il.\"unique\" = 1 AND il.origin = 'u' ORDER BY il.name, ii.seqno",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .expect("pragma_index_list");
        let enforced = group(
            indexes
                .iter()
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))),
        );
        let mut enforced_sets: Vec<Vec<String>> = enforced.into_iter().map(|(_, c)| c).collect();
        for (name, columns) in &named {
            let position = enforced_sets.iter().position(|c| c == columns);
            assert!(
                position.is_some(),
                "constraint {name} {columns:?} has no unique index in SQLite"
            );
            enforced_sets.remove(position.unwrap());
        }
        assert!(
            enforced_sets.is_empty(),
            "unnamed unique indexes in SQLite: {enforced_sets:?}"
        );
        named.sort();
        named
    }
}

impl TestBackend for sqlx::Postgres {
    async fn count(pool: &Pool<Self>, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM \"{table}\"");
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .expect("count")
    }

    async fn drop_database(name: &str) {
        let url = server_url("PostgreSQL", POSTGRES_URL);
        // A connection left inside a transaction by a panicking test would make the drop wait.
        admin_statement::<Self>(&url, "SET lock_timeout = '20s'".into()).await;
        admin_statement::<Self>(&url, format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")).await;
    }

    async fn deadlocks() -> i64 {
        use sqlx::Connection;
        // Let exiting backends flush their statistics.
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let url = server_url("PostgreSQL", POSTGRES_URL);
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .expect("connect PostgreSQL");
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut conn)
            .await
            .expect("pg_stat_clear_snapshot");
        sqlx::query_scalar(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_database")
    }

    async fn fresh(test: &str, options: Options) -> TestDb<Self> {
        use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
        let url = server_url("PostgreSQL", POSTGRES_URL);
        let name = database_name(test);
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL}={url} is set but unreachable: {e}"));
        for sql in [
            format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"),
            format!("CREATE SCHEMA \"{name}\""),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await
                .expect("create schema");
        }
        admin.close().await;
        let mut connect = PgConnectOptions::from_str(&url)
            .expect("valid PostgreSQL URL")
            .options([("search_path", name.as_str())]);
        if let Some(level) = options.isolation {
            connect = connect.options([("default_transaction_isolation", isolation_sql(level))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(5))
            .connect_with(connect)
            .await
            .expect("connect PostgreSQL");
        TestDb {
            pool,
            name,
            _dir: None,
        }
    }

    async fn unique_constraints(pool: &Pool<Self>, table: &str) -> Vec<(String, Vec<String>)> {
        let rows = sqlx::query(
            "SELECT con.conname::text, att.attname::text \
             FROM pg_constraint con \
             JOIN pg_class rel ON rel.oid = con.conrelid \
             JOIN pg_namespace ns ON ns.oid = rel.relnamespace \
             CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute att ON att.attrelid = rel.oid AND att.attnum = k.attnum \
             WHERE con.contype = 'u' AND rel.relname = $1 AND ns.nspname = current_schema() \
             ORDER BY con.conname, k.ord",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .expect("pg_constraint");
        group(
            rows.iter()
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))),
        )
    }
}

impl TestBackend for sqlx::MySql {
    async fn count(pool: &Pool<Self>, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM `{table}`");
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .expect("count")
    }

    async fn drop_database(name: &str) {
        let url = server_url("MySQL/MariaDB", MYSQL_URL);
        admin_statement::<Self>(&url, format!("DROP DATABASE IF EXISTS `{name}`")).await;
    }

    async fn deadlocks() -> i64 {
        use sqlx::Connection;
        let url = server_url("MySQL/MariaDB", MYSQL_URL);
        let mut conn = sqlx::MySqlConnection::connect(&url)
            .await
            .expect("connect MySQL");
        let row = sqlx::query("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
            .fetch_one(&mut conn)
            .await
            .expect("Innodb_deadlocks");
        let value: String = row.get(1);
        value.parse().expect("a number")
    }

    async fn fresh(test: &str, options: Options) -> TestDb<Self> {
        use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
        let url = server_url("MySQL/MariaDB", MYSQL_URL);
        let name = database_name(test);
        let admin = MySqlPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{MYSQL_URL}={url} is set but unreachable: {e}"));
        for sql in [
            format!("DROP DATABASE IF EXISTS `{name}`"),
            format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await
                .expect("create database");
        }
        admin.close().await;
        let connect = MySqlConnectOptions::from_str(&url)
            .expect("valid MySQL URL")
            .database(&name);
        let isolation = options.isolation;
        let pool = MySqlPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if let Some(level) = isolation {
                        let sql = format!(
                            "SET SESSION TRANSACTION ISOLATION LEVEL {}",
                            isolation_sql(level)
                        );
                        sqlx::Executor::execute(conn, sqlx::AssertSqlSafe(sql)).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .expect("connect MySQL");
        TestDb {
            pool,
            name,
            _dir: None,
        }
    }

    async fn unique_constraints(pool: &Pool<Self>, table: &str) -> Vec<(String, Vec<String>)> {
        let rows = sqlx::query(
            "SELECT CAST(INDEX_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR) FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY' \
             ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .expect("information_schema.STATISTICS");
        group(
            rows.iter()
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))),
        )
    }
}

fn isolation_sql(level: Isolation) -> &'static str {
    match level {
        Isolation::ReadCommitted => "read committed",
        Isolation::RepeatableRead => "repeatable read",
        Isolation::Serializable => "serializable",
    }
}

/// `(name, column)` rows, ordered by name, grouped into `(name, columns)`.
fn group(rows: impl Iterator<Item = (String, String)>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (name, column) in rows {
        match out.last_mut() {
            Some((last, columns)) if *last == name => columns.push(column),
            _ => out.push((name, vec![column])),
        }
    }
    out.sort();
    out
}

/// xorshift64*: a small deterministic generator for seeded tests, so that a failing seed can be
/// replayed.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The dialect of a test backend, for assertions that differ per database.
pub fn dialect<DB: Backend>() -> Dialect {
    DB::DIALECT
}

/// A directory removed when dropped.
struct TempDir {
    path: std::path::PathBuf,
}

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Instantiates generic scenarios `async fn name<DB: TestBackend>(db: TestDb<DB>)` once per backend,
/// as `sqlite::name`, `postgres::name` and `mysql::name`. The server backends' tests are ignored, with
/// the reason, when their URL was not set at build time (see `build.rs`).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $crate::backend_tests!(@with $crate::Options::default(); $($name),*);
    };
    (@with $options:expr; $($name:ident),* $(,)?) => {
        $crate::backend_tests!(@backend sqlite, ::sqlx::Sqlite, $options, [cfg_attr(any(), ignore)]; $($name),*);
        $crate::backend_tests!(@backend postgres, ::sqlx::Postgres, $options,
            [cfg_attr(skip_postgres, ignore = "PostgreSQL: set TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run")];
            $($name),*);
        $crate::backend_tests!(@backend mysql, ::sqlx::MySql, $options,
            [cfg_attr(skip_mysql, ignore = "MariaDB/MySQL: set TEST_MYSQL_URL (e.g. mysql://root@127.0.0.1:3306/test) to run")];
            $($name),*);
    };
    (@backend $module:ident, $db:ty, $options:expr, [$attr:meta]; $($name:ident),*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[$attr]
                async fn $name() {
                    let test = concat!(module_path!(), "::", stringify!($name));
                    $crate::run_scenario::<$db, _>(test, $options, super::$name::<$db>).await;
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_short_and_distinct() {
        let a = super::database_name(
            "schema::sqlite::constraints_exist_under_their_declared_names_in_the_catalog",
        );
        let b = super::database_name(
            "schema::postgres::constraints_exist_under_their_declared_names_in_the_catalog",
        );
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
    }
}

/// The SQL of every statement the library sent, in order, from its `model_runtime::sql` events:
/// a `tracing` subscriber installed for the whole test binary on first use (the binary must
/// install no other). Scenarios that read it should run one at a time and [`clear`](Vec::clear)
/// it first.
pub fn captured_statements() -> &'static Arc<Mutex<Vec<String>>> {
    static STATEMENTS: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    STATEMENTS.get_or_init(|| {
        let statements = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::set_global_default(Capture(Arc::clone(&statements)))
            .expect("the only subscriber of this test binary");
        statements
    })
}

/// A subscriber that keeps the message of each `model_runtime::sql` statement event.
struct Capture(Arc<Mutex<Vec<String>>>);

#[derive(Default)]
struct Fields {
    message: Option<String>,
    backend: bool,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            "backend" => self.backend = true,
            _ => {}
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "model_runtime::sql"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let (true, Some(sql)) = (fields.backend, fields.message) {
            self.0.lock().unwrap().push(sql);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
