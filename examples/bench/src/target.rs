//! The databases a run goes over (SQLite, then each URL), each with a fresh `bench_products` table,
//! a timed side and a counted side, and what hand-written sqlx needs per backend.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use model_runtime::Schema;
use sea_orm::DatabaseConnection;
use sqlx::{Connection, Pool};

use crate::Result;
use crate::args::Url;
use crate::counter;
use crate::model::{Product, Row4, Sql, TABLE};

/// What a hand-written statement binds, in order.
pub enum Binds<'a> {
    Sku(&'a str),
    /// sku, name, price_cents.
    Row(&'a Product),
    /// price_cents, sku.
    PriceSku(i64, &'a str),
}

/// A backend the benchmarks run on: the library's `Backend`, and hand-written sqlx for it (one
/// implementation per database, since sqlx's generic bounds would otherwise fill every signature).
pub trait Db: model_runtime::Backend + Sized + 'static {
    /// SeaORM on this pool.
    fn seaorm(pool: Pool<Self>) -> DatabaseConnection;

    /// Runs `sql` and decodes its first row, if any.
    fn fetch_row<'a>(
        conn: &'a mut Self::Connection,
        sql: &Arc<str>,
        binds: Binds<'a>,
    ) -> impl Future<Output = std::result::Result<Option<Row4>, sqlx::Error>> + Send + 'a;

    /// Runs `sql`; rows affected.
    fn affect<'a>(
        conn: &'a mut Self::Connection,
        sql: &Arc<str>,
        binds: Binds<'a>,
    ) -> impl Future<Output = std::result::Result<u64, sqlx::Error>> + Send + 'a;

    /// Runs `sql`, without parameters, on a connection from `pool`.
    fn plain<'a>(
        pool: &'a Pool<Self>,
        sql: String,
    ) -> impl Future<Output = std::result::Result<(), sqlx::Error>> + Send + 'a;

    /// One multi-row `INSERT … VALUES` of `rows`, followed by `clause`.
    fn insert_values<'a>(
        conn: &'a mut Self::Connection,
        rows: &'a [Product],
        clause: &'a str,
    ) -> impl Future<Output = std::result::Result<(), sqlx::Error>> + Send + 'a;
}

macro_rules! impl_db {
    ($db:ty, $seaorm:expr) => {
        impl Db for $db {
            fn seaorm(pool: Pool<Self>) -> DatabaseConnection {
                $seaorm(pool)
            }

            fn fetch_row<'a>(
                conn: &'a mut Self::Connection,
                sql: &Arc<str>,
                binds: Binds<'a>,
            ) -> impl Future<Output = std::result::Result<Option<Row4>, sqlx::Error>> + Send + 'a
            {
                let query = sqlx::query_as::<Self, Row4>(sqlx::AssertSqlSafe(Arc::clone(sql)));
                let query = match binds {
                    Binds::Sku(sku) => query.bind(sku),
                    Binds::Row(r) => query.bind(&r.sku).bind(&r.name).bind(r.price_cents),
                    Binds::PriceSku(price, sku) => query.bind(price).bind(sku),
                };
                query.fetch_optional(conn)
            }

            fn affect<'a>(
                conn: &'a mut Self::Connection,
                sql: &Arc<str>,
                binds: Binds<'a>,
            ) -> impl Future<Output = std::result::Result<u64, sqlx::Error>> + Send + 'a {
                let query = sqlx::query::<Self>(sqlx::AssertSqlSafe(Arc::clone(sql)));
                let query = match binds {
                    Binds::Sku(sku) => query.bind(sku),
                    Binds::Row(r) => query.bind(&r.sku).bind(&r.name).bind(r.price_cents),
                    Binds::PriceSku(price, sku) => query.bind(price).bind(sku),
                };
                async move { Ok(query.execute(conn).await?.rows_affected()) }
            }

            fn plain<'a>(
                pool: &'a Pool<Self>,
                sql: String,
            ) -> impl Future<Output = std::result::Result<(), sqlx::Error>> + Send + 'a {
                async move {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
                    Ok(())
                }
            }

            fn insert_values<'a>(
                conn: &'a mut Self::Connection,
                rows: &'a [Product],
                clause: &'a str,
            ) -> impl Future<Output = std::result::Result<(), sqlx::Error>> + Send + 'a {
                async move {
                    let mut q = sqlx::QueryBuilder::<Self>::new(format!(
                        "INSERT INTO {TABLE} (sku, name, price_cents) "
                    ));
                    q.push_values(rows, |mut b, r| {
                        b.push_bind(r.sku.clone())
                            .push_bind(r.name.clone())
                            .push_bind(r.price_cents);
                    });
                    q.push(clause);
                    q.build().execute(conn).await?;
                    Ok(())
                }
            }
        }
    };
}

impl_db!(
    sqlx::Sqlite,
    sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool
);
impl_db!(
    sqlx::Postgres,
    sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool
);
impl_db!(
    sqlx::MySql,
    sea_orm::SqlxMySqlConnector::from_sqlx_mysql_pool
);

/// One pool of one connection, and SeaORM on it.
pub struct Side<DB: Db> {
    pub pool: Pool<DB>,
    pub seaorm: DatabaseConnection,
}

impl<DB: Db> Side<DB> {
    fn new(pool: Pool<DB>) -> Self {
        Side {
            seaorm: DB::seaorm(pool.clone()),
            pool,
        }
    }
}

type Options<DB> = <<DB as sqlx::Database>::Connection as Connection>::Options;

/// A database with a fresh `bench_products` table.
pub struct Target<DB: Db> {
    /// The backend and its version, for the tables' headings.
    pub label: String,
    pub sql: Sql,
    /// What the timings use.
    pub timed: Side<DB>,
    /// Another connection to the same database whose every statement is counted (see
    /// [`crate::counter`]); never timed.
    pub counted: Side<DB>,
    options: Options<DB>,
}

impl<DB: Db> Target<DB> {
    /// A pool of `size` connections to the same database, uncounted.
    pub async fn pool(&self, size: u32) -> Result<Pool<DB>> {
        Ok(sqlx::pool::PoolOptions::<DB>::new()
            .max_connections(size)
            .connect_with(self.options.clone())
            .await?)
    }

    async fn open(label: String, options: Options<DB>, counted: Pool<DB>) -> Result<Self> {
        let timed = sqlx::pool::PoolOptions::<DB>::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        DB::plain(&timed, format!("DROP TABLE IF EXISTS {TABLE}")).await?;
        Schema::new().model::<Product>().create(&timed).await?;
        Ok(Target {
            label,
            sql: Sql::new(DB::DIALECT),
            timed: Side::new(timed),
            counted: Side::new(counted),
            options,
        })
    }

    async fn close(self) -> Result<()> {
        self.counted.pool.close().await;
        DB::plain(&self.timed.pool, format!("DROP TABLE {TABLE}")).await?;
        self.timed.pool.close().await;
        Ok(())
    }
}

/// What a subcommand does on each database.
pub trait Visit {
    fn visit<DB: Db>(&mut self, target: &Target<DB>) -> impl Future<Output = Result<()>>;
}

/// SQLite in a file of its own (WAL, synchronous=NORMAL), then each URL in turn, each with a fresh
/// table that is dropped afterwards.
pub async fn each<V: Visit>(urls: &[Url], visit: &mut V) -> Result<()> {
    {
        let dir = std::env::temp_dir().join(format!("model_bench_{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("bench.sqlite"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        let counted = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| Box::pin(counter::count_sqlite(conn)))
            .connect_with(options.clone())
            .await?;
        let version: String = sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&counted)
            .await?;
        let label = format!("SQLite {version} (file, WAL, synchronous=NORMAL)");
        let target = Target::<sqlx::Sqlite>::open(label, options, counted).await?;
        let result = visit.visit(&target).await;
        target.close().await?;
        std::fs::remove_dir_all(&dir)?;
        result?;
    }
    for url in urls {
        match url {
            Url::Postgres(url) => {
                let options = sqlx::postgres::PgConnectOptions::from_str(url)?;
                let counted = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(counter::counted_postgres(&options).await?)
                    .await?;
                let version: String = sqlx::query_scalar("SHOW server_version")
                    .fetch_one(&counted)
                    .await?;
                let label = format!("PostgreSQL {version}");
                let target = Target::<sqlx::Postgres>::open(label, options, counted).await?;
                let result = visit.visit(&target).await;
                target.close().await?;
                result?;
            }
            Url::MySql(url) => {
                let options = sqlx::mysql::MySqlConnectOptions::from_str(url)?;
                let counted = sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(1)
                    .connect_with(counter::counted_mysql(&options).await?)
                    .await?;
                let version: String = sqlx::query_scalar("SELECT VERSION()")
                    .fetch_one(&counted)
                    .await?;
                let label = match version.split_once("-MariaDB") {
                    Some((version, _)) => format!("MariaDB {version}"),
                    None => format!("MySQL {version}"),
                };
                let target = Target::<sqlx::MySql>::open(label, options, counted).await?;
                let result = visit.visit(&target).await;
                target.close().await?;
                result?;
            }
        }
    }
    Ok(())
}
