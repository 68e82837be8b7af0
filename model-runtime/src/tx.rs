//! A transaction the library opens and, where the database asks for it, retries.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::{Connection, Pool, Transaction};

use crate::backend::{Backend, Isolation};
use crate::error::Error;

/// A boxed, sendable future: what a [`transaction`] closure returns (`Box::pin(async move { … })`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How [`transaction`] opens and retries its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxOptions {
    isolation: Option<Isolation>,
    max_attempts: u32,
}

impl Default for TxOptions {
    /// The server's default isolation level, and up to 5 attempts.
    fn default() -> Self {
        TxOptions {
            isolation: None,
            max_attempts: 5,
        }
    }
}

impl TxOptions {
    /// Runs the transaction at this isolation level (ignored on SQLite, which is always serializable).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = Some(isolation);
        self
    }

    /// Gives up after this many attempts (at least 1) and returns the last retryable error.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }
}

/// Runs `body` in a transaction on a connection from `pool`, commits it, and runs it again from the
/// start when the database asks for that ([`Error::is_retryable`]): a serialization failure or
/// deadlock, a row committed after a REPEATABLE READ snapshot, or SQLite's "database is locked".
///
/// This is where the known traps are handled, so that `get_or_create` in a per-request transaction
/// holds under contention:
/// - SQLite: the transaction begins with `BEGIN IMMEDIATE`, taking the write lock up front; a plain
///   `BEGIN` that reads and then writes fails with SQLITE_BUSY_SNAPSHOT whatever the busy timeout;
/// - PostgreSQL REPEATABLE READ / SERIALIZABLE: a row committed after the snapshot stays invisible to
///   every statement of the transaction, so the only correct answer is to run it again.
///
/// `body` may run more than once: keep side effects outside the database out of it. An error it
/// returns rolls the transaction back.
///
/// ```no_run
/// # use model_runtime::{Model, TxOptions, Isolation};
/// # #[derive(Model, Clone)] struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String }
/// # async fn demo(pool: sqlx::SqlitePool) -> Result<(), model_runtime::Error> {
/// let candidate = Product { id: 0, sku: "A-1".into() };
/// let options = TxOptions::default().isolation(Isolation::RepeatableRead);
/// let (product, outcome) = model_runtime::transaction(&pool, options, |tx| {
///     // The future may not borrow from outside the closure: move a copy in.
///     let candidate = candidate.clone();
///     Box::pin(async move { Product::get_or_create_by_sku(&mut *tx, &candidate).await })
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn transaction<DB, T, F>(
    pool: &Pool<DB>,
    options: TxOptions,
    mut body: F,
) -> Result<T, Error>
where
    DB: Backend,
    F: for<'t, 'c> FnMut(&'t mut Transaction<'c, DB>) -> BoxFuture<'t, Result<T, Error>>,
{
    let mut attempt = 1;
    loop {
        match attempt_once(pool, options, &mut body).await {
            Err(error) if error.is_retryable() && attempt < options.max_attempts => {
                tracing::debug!(target: "model_runtime::sql", attempt, %error, "retrying the transaction");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn attempt_once<DB, T, F>(
    pool: &Pool<DB>,
    options: TxOptions,
    body: &mut F,
) -> Result<T, Error>
where
    DB: Backend,
    F: for<'t, 'c> FnMut(&'t mut Transaction<'c, DB>) -> BoxFuture<'t, Result<T, Error>>,
{
    let mut conn = pool.acquire().await?;
    let (prepare, begin) = DB::DIALECT.begin_statements(options.isolation);
    if let Some(prepare) = prepare {
        DB::execute(&mut conn, prepare.into(), sea_query::Values(Vec::new())).await?;
    }
    let mut tx = (*conn).begin_with(sqlx::AssertSqlSafe(begin)).await?;
    match body(&mut tx).await {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) => {
            // A failed rollback leaves nothing to keep: the connection is closed rather than reused.
            let _ = tx.rollback().await;
            Err(error)
        }
    }
}

/// 2, 4, 8, … ms (capped at 256), plus up to as much again of jitter, so that retrying rivals spread.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(8);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    ) % (base * 1000);
    Duration::from_micros(base * 1000 + jitter)
}
