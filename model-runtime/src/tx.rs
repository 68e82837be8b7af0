//! A transaction the library opens and, where the database asks for it, retries.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::{Connection, Pool, Transaction};

use crate::backend::{Backend, Dialect, Isolation};
use crate::conn::CloseUnlessClean;
use crate::error::Error;

/// A boxed, sendable future: what a [`transaction`] closure returns (`Box::pin(async move { … })`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How [`transaction`] opens and retries its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxOptions {
    isolation: Option<Isolation>,
    retry: RetryPolicy,
}

impl Default for TxOptions {
    /// The server's default isolation level, and retries of retryable failures for up to 10 s
    /// after the first attempt began, with jittered exponential backoff (1, 2, 4, … ms, capped at
    /// 128 ms). Measured with 64 tasks on the same 500 new keys under REPEATABLE READ
    /// (`tests/contention.rs`), no retryable error reached the caller; five attempts, the former
    /// default, let a few through on PostgreSQL and MariaDB.
    fn default() -> Self {
        TxOptions {
            isolation: None,
            retry: RetryPolicy::default(),
        }
    }
}

impl TxOptions {
    /// Runs the transaction at this isolation level (ignored on SQLite, which is always serializable).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = Some(isolation);
        self
    }

    /// Gives up after this many attempts (at least 1) and returns the last retryable error, however
    /// long they take. Replaces the default budget by time.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry = RetryPolicy::Attempts(attempts.max(1));
        self
    }

    /// Starts no new attempt once `budget` has passed since the first one began (the default is
    /// 10 s); the last retryable error is then returned.
    /// `Duration::ZERO` means a single attempt.
    pub fn retry_for(mut self, budget: Duration) -> Self {
        self.retry = RetryPolicy::Time(budget);
        self
    }
}

/// When a retryable failure ([`Error::is_retryable`]) is run again: by [`transaction`], and by the
/// operations themselves outside any transaction (each statement is then a transaction of the
/// library's own).
///
/// Between attempts the caller sleeps 1, 2, 4, … ms (capped at 128 ms), each a random value between
/// half and all of that step, so that rivals that failed together spread out instead of meeting
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryPolicy {
    /// At most this many attempts.
    Attempts(u32),
    /// No attempt starts later than this after the first one began.
    Time(Duration),
}

impl RetryPolicy {
    /// The default budget: 10 s. Measured with 64 tasks on the same 500 new keys under REPEATABLE
    /// READ (see `tests/contention.rs`), no retryable error reached the caller; five attempts, the
    /// former default, let a few through on PostgreSQL and MariaDB.
    pub(crate) const DEFAULT_BUDGET: Duration = Duration::from_secs(10);
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::Time(Self::DEFAULT_BUDGET)
    }
}

/// The state of one retry loop: call [`Retry::again`] after each failed attempt.
pub(crate) struct Retry {
    policy: RetryPolicy,
    started: std::time::Instant,
    attempt: u32,
}

impl Retry {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Retry {
            policy,
            started: std::time::Instant::now(),
            attempt: 1,
        }
    }

    /// Whether to run again after `error`; when it says so, it has slept the backoff already.
    pub(crate) async fn again(&mut self, error: &Error) -> bool {
        self.again_if(error, error.is_retryable()).await
    }

    /// [`Retry::again`] for a caller that decides itself which errors can succeed on another
    /// attempt (`retryable`).
    pub(crate) async fn again_if(&mut self, error: &Error, retryable: bool) -> bool {
        if !retryable {
            return false;
        }
        let delay = backoff(self.attempt);
        let within = match self.policy {
            RetryPolicy::Attempts(max) => self.attempt < max,
            RetryPolicy::Time(budget) => self.started.elapsed() + delay <= budget,
        };
        if !within {
            return false;
        }
        tracing::debug!(target: "model_runtime::sql", attempt = self.attempt, %error, "retrying");
        tokio::time::sleep(delay).await;
        self.attempt += 1;
        true
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
///   every statement of the transaction, so the only correct answer is to run it again;
/// - a multi-primary cluster (MariaDB Galera) or a distributed database (CockroachDB, YugabyteDB):
///   a write conflict with another node is found at certification and reported as a deadlock or
///   serialization failure, often by `COMMIT` itself; that is retryable like any other;
/// - a lost connection, or a cluster node that is not ready for clients ([`Error::NodeUnavailable`]):
///   the body runs again on a fresh connection from the pool, within the same retry budget. Not
///   when the connection was lost while `COMMIT` was in flight: whether that commit happened is
///   unknown, and the error says so.
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
/// let (product, outcome) = model_runtime::transaction(&pool, options, async |tx| {
///     Product::get_or_create_by_sku(&mut *tx, &candidate).await
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
    F: AsyncFnMut(&mut Transaction<'_, DB>) -> Result<T, Error>,
{
    let mut retry = Retry::new(options.retry);
    loop {
        match attempt_once(pool, options, &mut body).await {
            Ok(value) => return Ok(value),
            Err(Failed::Rerun(error)) => {
                // A node that lost its connection or left the cluster: the next attempt runs on
                // a fresh connection (this one was closed).
                let again = error.is_retryable() || error.is_node_unavailable();
                if !retry.again_if(&error, again).await {
                    return Err(error);
                }
            }
            Err(Failed::Final(error)) => return Err(error),
        }
    }
}

/// How one attempt of [`transaction`] failed.
enum Failed {
    /// Nothing of the attempt was committed: run again if the error allows it.
    Rerun(Error),
    /// The connection was lost while `COMMIT` was in flight: whether it committed is unknown, so
    /// running the body again could apply it twice.
    Final(Error),
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed::Rerun(error)
    }
}

impl From<sqlx::Error> for Failed {
    fn from(error: sqlx::Error) -> Self {
        Failed::Rerun(error.into())
    }
}

/// One attempt of [`transaction`], on a pooled connection that is closed, not returned to the pool,
/// when its state cannot be proven clean ([`CloseUnlessClean`]).
///
/// What it guards against is a connection that comes back to the pool inside a transaction that
/// nobody will end, so that the next user's autocommit writes land in it and are never committed
/// (or are rolled back by a later `ROLLBACK`). Once `begin` has returned, sqlx's `Transaction`
/// handles a cancelled attempt: dropped, it queues a `ROLLBACK` that runs before the connection is
/// reused. `begin` itself is the gap: sqlx 0.9's MySQL and PostgreSQL drivers count a transaction
/// as open only after reading the server's answer to `BEGIN`, and the rollback they queue when
/// dropped is skipped while that count is 0 (the PostgreSQL driver has a guard for this case that
/// calls the same skipped rollback). A `begin` dropped after sending `BEGIN` and before reading the
/// answer leaves the server inside a transaction that sqlx believes closed. MySQL's `SET
/// TRANSACTION` before `START TRANSACTION` is a state of the same kind: dropped between the two, it
/// would apply to the next user's transaction.
///
/// MySQL has one more: sqlx 0.9's MySQL executor records that it awaits a statement's result
/// before sending the statement, which it may do only at a later poll (the first execution of a
/// statement text on a connection prepares it first, a round trip). Dropped in between, the
/// connection waits for a result that never comes: the pool's release check hangs, and the pool
/// loses the connection for good.
///
/// So the connection is closed when the attempt is dropped before `begin` returned, on MySQL when
/// it is dropped at any point before the commit or rollback was acknowledged, and on every backend
/// when a commit or rollback failed other than with the server's own error (I/O, protocol).
/// SQLite's driver runs `BEGIN` and its count together on its worker thread, and orders the queued
/// rollback after it: its connections are not closed (closing one would also throw away an
/// in-memory database).
async fn attempt_once<DB, T, F>(
    pool: &Pool<DB>,
    options: TxOptions,
    body: &mut F,
) -> Result<T, Failed>
where
    DB: Backend,
    F: AsyncFnMut(&mut Transaction<'_, DB>) -> Result<T, Error>,
{
    // SQLite's driver runs `BEGIN` and counts it in one step on its worker thread, and orders a
    // dropped transaction's rollback after it: its connections are never left unknown, and closing
    // one would throw away an in-memory database.
    let mut guard = CloseUnlessClean::held(pool.acquire().await?, DB::DIALECT);
    let (prepare, begin) = DB::DIALECT.begin_statements(options.isolation);
    if let Some(prepare) = prepare {
        DB::execute(
            &mut guard.conn,
            prepare.into(),
            sea_query::Values(Vec::new()),
        )
        .await?;
    }
    let mut tx = (*guard.conn).begin_with(sqlx::AssertSqlSafe(begin)).await?;
    // From here on, a dropped `tx` queues its own rollback; but not every dropped MySQL statement
    // leaves that connection usable.
    guard.close = DB::DIALECT == Dialect::MySql;
    match body(&mut tx).await {
        Ok(value) => match tx.commit().await {
            Ok(()) => {
                guard.close = false;
                Ok(value)
            }
            Err(error) => {
                // The server answered: sqlx has queued the rollback, which runs before the
                // connection is reused (a certification failure or serialization failure at
                // COMMIT is retryable). Anything else (I/O, protocol) closes it, and leaves the
                // commit's outcome unknown.
                let answered = matches!(error, sqlx::Error::Database(_));
                let error = Error::from(error);
                guard.close = !answered || error.is_node_unavailable();
                if answered {
                    Err(Failed::Rerun(error))
                } else {
                    Err(Failed::Final(commit_unknown(error)))
                }
            }
        },
        Err(error) => {
            guard.close = tx.rollback().await.is_err() || error.is_node_unavailable();
            Err(Failed::Rerun(error))
        }
    }
}

/// The error of a `COMMIT` whose connection was lost before its answer arrived.
fn commit_unknown(error: Error) -> Error {
    match error {
        Error::NodeUnavailable { source, .. } => Error::NodeUnavailable {
            reason: "the connection was lost while COMMIT was in flight, so whether the transaction was committed is unknown: check before running it again",
            source,
        },
        other => other,
    }
}

/// 1, 2, 4, … ms (capped at 128 ms): a random duration between half and all of that step, so that
/// rivals that failed together spread out.
fn backoff(attempt: u32) -> Duration {
    let step = 1000u64 << (attempt.saturating_sub(1)).min(7);
    Duration::from_micros(step / 2 + random() % (step / 2 + 1))
}

/// A fast, non-cryptographic random number: xorshift on a per-thread state seeded from the clock,
/// the thread and a global counter.
pub(crate) fn random() -> u64 {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEEDS: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            (clock ^ SEEDS.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)) | 1
        });
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        for attempt in 1..20 {
            let step = Duration::from_millis(1 << (attempt - 1).min(7));
            let delay = backoff(attempt);
            assert!(delay >= step / 2 && delay <= step, "{attempt}: {delay:?}");
        }
        let delays: std::collections::HashSet<_> = (0..50).map(|_| backoff(8)).collect();
        assert!(delays.len() > 10, "jitter: {delays:?}");
    }

    #[tokio::test]
    async fn the_default_policy_retries_by_time_not_by_count() {
        let error = Error::RowNotVisible { model: "Item" };
        let mut retry = Retry::new(RetryPolicy::Time(Duration::from_millis(300)));
        let mut attempts = 1;
        while retry.again(&error).await {
            attempts += 1;
        }
        // 1 + 2 + 4 + … ms at most: within 300 ms, more than the former five attempts.
        assert!(attempts > 5, "{attempts}");
        assert!(
            !Retry::new(RetryPolicy::default())
                .again(&Error::NotFound { model: "Item" })
                .await
        );
        let mut counted = Retry::new(RetryPolicy::Attempts(3));
        assert!(counted.again(&error).await && counted.again(&error).await);
        assert!(!counted.again(&error).await);
    }
}
