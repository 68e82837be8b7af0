//! Model-level operations, written once over [`Backend`].
//!
//! Each takes what the caller already holds (`&Pool`, `&mut Connection`, `&mut Transaction`) as a
//! [`Conn`], and works on the one connection it acquires from it. Every public operation is a few
//! lines over one [`Op`], which [`run`] runs: check the arguments, acquire, run (again, on a
//! retryable failure in autocommit, where the operation allows it), release, name the error.

use std::future::Future;
use std::sync::Arc;

use sea_query::Values;
use sqlx::Connection;

use crate::backend::{Backend, Dialect};
use crate::changes::{Changes, Extra};
use crate::check;
use crate::conn::{CloseUnlessClean, Conn};
use crate::error::Error;
use crate::meta::KeyId;
use crate::model::{Key, Model};
use crate::query::{self, Lock, Statement};
use crate::tx::{BoxFuture, Retry, RetryPolicy};
use crate::violation::{self, UniqueViolation};

/// What a `get_or_create` or `update_or_create` did with the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `get_or_create`: the row existed, and is returned as it was.
    Found,
    /// The row was inserted by this call.
    Created,
    /// `update_or_create`: the row existed and this call wrote the listed fields, at least one of
    /// which held another value.
    Updated,
    /// `update_or_create`: the row existed and its listed fields already held the incoming values;
    /// nothing was written (no new row version, no bumped counter).
    Unchanged,
    /// `update_or_create` with a condition ([`Changes::only_if_newer`]): the row existed and the
    /// condition refused the incoming values; nothing was written, and the row is returned as
    /// stored.
    Stale,
}

impl Outcome {
    /// `true` for [`Outcome::Created`], like the `created` flag of Django's `get_or_create`.
    pub fn created(self) -> bool {
        self == Outcome::Created
    }

    /// `true` when this call wrote the row: [`Outcome::Created`] or [`Outcome::Updated`].
    pub fn written(self) -> bool {
        matches!(self, Outcome::Created | Outcome::Updated)
    }
}

/// A row as the model, or [`Error::Decode`].
pub(crate) fn decode<M: Model, DB: Backend>(row: &DB::Row) -> Result<M, Error> {
    M::from_row(DB::row_ref(row)).map_err(|source| Error::Decode {
        model: M::META.name,
        source,
    })
}

async fn fetch_model<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    statement: Statement,
) -> Result<Option<M>, Error> {
    let row = DB::fetch_optional(conn, statement.sql, statement.values).await?;
    row.as_ref().map(decode::<M, DB>).transpose()
}

/// The integer a statement reads after the model's columns (a marker or a flag), at `at`.
fn trailing_int<M: Model, DB: Backend>(row: &DB::Row, at: usize) -> Result<Option<i64>, Error> {
    <i64 as crate::column::SqlType>::decode(DB::row_ref(row), at).map_err(|source| Error::Decode {
        model: M::META.name,
        source,
    })
}

/// A write statement's row: the whole result is read ([`Backend::fetch_write`]).
async fn write_model<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    statement: Statement,
) -> Result<Option<M>, Error> {
    let row = DB::fetch_write(conn, statement.sql, statement.values).await?;
    row.as_ref().map(decode::<M, DB>).transpose()
}

async fn select<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    key_values: Vec<sea_query::Value>,
    lock: Lock,
) -> Result<Option<M>, Error> {
    fetch_model::<M, DB>(
        conn,
        query::select_by_key::<M>(key, key_values, lock, DB::DIALECT),
    )
    .await
}

/// One operation, as [`run`] runs it.
pub(crate) trait Op: Send + Sync {
    /// What the operation returns.
    type Output: Send;

    /// Whether a retryable failure is retried when the connection is outside any transaction.
    ///
    /// Each statement is then a transaction of its own, which the library owns, so a retryable
    /// failure (a PostgreSQL REPEATABLE READ session meeting a concurrent insert, a deadlock) is
    /// retried with the policy of [`crate::transaction`] (a budget by time, jittered backoff). Inside
    /// the caller's transaction only the caller can retry, so the error is returned.
    const RETRY_IN_AUTOCOMMIT: bool = false;

    /// Checks the arguments before a connection is taken; `Some` answers without the database.
    fn check(&self, _dialect: Dialect) -> Result<Option<Self::Output>, Error> {
        Ok(None)
    }

    /// The operation's statements, on the connection it holds.
    fn run<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
    ) -> impl Future<Output = Result<Self::Output, Error>> + Send;

    /// The error as the caller sees it: a write's duplicate key named by its constraint and values
    /// ([`violation::classify`]).
    fn classify(&self, error: Error, _dialect: Dialect) -> Error {
        error
    }
}

/// Runs an operation on a connection acquired from `conn`, which is closed rather than handed back
/// if the call is cut off part-way (see [`crate::Release`]).
pub(crate) fn run<'a, 'c: 'a, O: Op + 'a>(
    conn: impl Conn<'c> + 'a,
    op: O,
) -> BoxFuture<'a, Result<O::Output, Error>> {
    Box::pin(run_on(conn, op))
}

async fn run_on<'c, A: Conn<'c>, O: Op>(conn: A, op: O) -> Result<O::Output, Error> {
    let dialect = <A::Database as Backend>::DIALECT;
    if let Some(answer) = op.check(dialect)? {
        return Ok(answer);
    }
    let mut conn = CloseUnlessClean::acquire(conn).await?;
    let in_transaction = conn.is_in_transaction();
    let mut retry = Retry::new(RetryPolicy::default());
    let result = loop {
        match op.run::<A::Database>(&mut conn).await {
            Err(error)
                if O::RETRY_IN_AUTOCOMMIT && !in_transaction && retry.again(&error).await => {}
            result => break result,
        }
    };
    // A connection whose server is unavailable is not handed back to the pool (when the library
    // acquired it): the next call gets a fresh one.
    if !matches!(&result, Err(error) if error.is_node_unavailable()) {
        conn.done();
    }
    result.map_err(|error| op.classify(error, dialect))
}

/// Inserts one row and returns it as stored (with its database-assigned primary key).
///
/// A duplicate key is an error; to tolerate one, use the generated `get_or_create_by_…` methods.
///
/// ```
/// # use model_runtime::Model;
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// let stored = model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
/// assert!(stored.id > 0); // the id the database chose
/// // The same as `Product { … }.insert(&pool)`.
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn insert<'a, 'c: 'a, M: Model>(
    conn: impl Conn<'c> + 'a,
    row: &'a M,
) -> BoxFuture<'a, Result<M, Error>> {
    run(conn, Insert(row))
}

struct Insert<'x, M>(&'x M);

impl<M: Model> Op for Insert<'_, M> {
    type Output = M;

    fn check(&self, dialect: Dialect) -> Result<Option<M>, Error> {
        check::check_row(self.0, dialect).map(|()| None)
    }

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<M, Error> {
        let statement = query::insert_returning(self.0, None, false, DB::DIALECT);
        write_model::<M, DB>(conn, statement)
            .await?
            .ok_or(Error::Database(sqlx::Error::RowNotFound))
    }

    fn classify(&self, error: Error, dialect: Dialect) -> Error {
        violation::classify::<M>(error, Some(self.0), dialect)
    }
}

/// Finds the row with this key, if any. A key with a NULL value finds nothing: NULLs never collide
/// in a unique constraint, so such a key does not identify a row.
///
/// ```
/// # use model_runtime::Model;
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// # let stored = model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
/// use model_runtime::get;
///
/// let found = get(&pool, ProductBySku { sku: "A-1".into() }).await?;
/// assert_eq!(found.map(|p| p.price), Some(10));
/// // The same as `Product::by_sku("A-1").get(&pool)`.
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn get<'a, 'c: 'a, K: Key + 'a>(
    conn: impl Conn<'c> + 'a,
    key: K,
) -> BoxFuture<'a, Result<Option<K::Model>, Error>> {
    run(conn, Get(key, Lock::None))
}

/// Finds the row with this key and locks it until the transaction ends: Django's
/// `select_for_update().get(…)`, as `SELECT … FOR UPDATE` on PostgreSQL and MySQL.
///
/// Call it inside a transaction; in autocommit the lock ends with the statement. SQLite has no row
/// locks: there the equivalent is the whole-database write lock that [`crate::transaction`] takes
/// with `BEGIN IMMEDIATE`, and this is a plain read.
///
/// ```
/// # use model_runtime::{Key, Model};
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// # let stored = model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
/// let mut tx = pool.begin().await?;
/// if let Some(product) = model_runtime::get_for_update(&mut *tx, ProductBySku { sku: "A-1".into() }).await? {
///     Product { price: product.price + 1, ..product }.update(&mut *tx).await?;
/// }
/// tx.commit().await?;
/// assert_eq!(Product::by_sku("A-1").get(&pool).await?.unwrap().price, 11);
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn get_for_update<'a, 'c: 'a, K: Key + 'a>(
    conn: impl Conn<'c> + 'a,
    key: K,
) -> BoxFuture<'a, Result<Option<K::Model>, Error>> {
    run(conn, Get(key, Lock::Update))
}

struct Get<K>(K, Lock);

impl<K: Key> Op for Get<K> {
    type Output = Option<K::Model>;

    fn check(&self, dialect: Dialect) -> Result<Option<Self::Output>, Error> {
        check::check_key::<K::Model>(K::KEY, || self.0.values(dialect), dialect).map(|()| None)
    }

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<Self::Output, Error> {
        let Get(key, lock) = self;
        select::<K::Model, DB>(conn, K::KEY, key.values(DB::DIALECT), *lock).await
    }
}

/// Whether a row with this key exists.
///
/// ```
/// # use model_runtime::{Key, Model};
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// # let stored = model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
/// assert!(model_runtime::exists(&pool, ProductBySku { sku: "A-1".into() }).await?);
/// assert!(!Product::by_sku("B-2").exists(&pool).await?);
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn exists<'a, 'c: 'a, K: Key + 'a>(
    conn: impl Conn<'c> + 'a,
    key: K,
) -> BoxFuture<'a, Result<bool, Error>> {
    run(conn, Exists(key))
}

struct Exists<K>(K);

impl<K: Key> Op for Exists<K> {
    type Output = bool;

    fn check(&self, dialect: Dialect) -> Result<Option<bool>, Error> {
        check::check_key::<K::Model>(K::KEY, || self.0.values(dialect), dialect).map(|()| None)
    }

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<bool, Error> {
        let Statement { sql, values } =
            query::exists_by_key::<K::Model>(K::KEY, self.0.values(DB::DIALECT), DB::DIALECT);
        Ok(DB::fetch_optional(conn, sql, values).await?.is_some())
    }
}

/// Writes every column of `row` but its primary key to the row with the same primary key, and returns
/// the row as stored. [`Error::NotFound`] when there is no such row.
///
/// ```
/// # use model_runtime::Model;
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// # let stored = model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
/// let changed = model_runtime::update(&pool, &Product { price: 12, ..stored }).await?;
/// assert_eq!(changed.price, 12);
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn update<'a, 'c: 'a, M: Model>(
    conn: impl Conn<'c> + 'a,
    row: &'a M,
) -> BoxFuture<'a, Result<M, Error>> {
    run(conn, Update(row))
}

struct Update<'x, M>(&'x M);

impl<M: Model> Op for Update<'_, M> {
    type Output = M;

    fn check(&self, dialect: Dialect) -> Result<Option<M>, Error> {
        check::check_row(self.0, dialect).map(|()| None)
    }

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<M, Error> {
        let (row, meta, dialect) = (self.0, M::META, DB::DIALECT);
        let set = (0..meta.columns.len())
            .filter(|&i| i != meta.primary_key)
            .map(|i| (i, row.column_value(i, dialect)))
            .collect();
        let key_values = query::key_values_of(row, KeyId::PrimaryKey, dialect);
        update_returning::<M, DB>(
            conn,
            KeyId::PrimaryKey,
            key_values,
            set,
            &Extra::default(),
            false,
        )
        .await?
        .ok_or(Error::NotFound { model: meta.name })
    }

    fn classify(&self, error: Error, dialect: Dialect) -> Error {
        violation::classify::<M>(error, Some(self.0), dialect)
    }
}

/// Deletes the row with `row`'s primary key; `false` when there was none.
///
/// ```
/// # use model_runtime::Model;
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// # let stored = model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
/// assert!(model_runtime::delete(&pool, &stored).await?);
/// assert!(!stored.delete(&pool).await?); // already gone
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn delete<'a, 'c: 'a, M: Model>(
    conn: impl Conn<'c> + 'a,
    row: &'a M,
) -> BoxFuture<'a, Result<bool, Error>> {
    run(conn, Delete(row))
}

struct Delete<'x, M>(&'x M);

impl<M: Model> Op for Delete<'_, M> {
    type Output = bool;

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<bool, Error> {
        let key_values = query::key_values_of(self.0, KeyId::PrimaryKey, DB::DIALECT);
        let Statement { sql, values } =
            query::delete_by_key::<M>(KeyId::PrimaryKey, key_values, DB::DIALECT);
        Ok(DB::execute(conn, sql, values).await?.rows_affected > 0)
    }

    fn classify(&self, error: Error, dialect: Dialect) -> Error {
        violation::classify::<M>(error, Some(self.0), dialect)
    }
}

/// Returns the row whose key `K` equals the candidate's, inserting the candidate if there is none:
/// Django's `get_or_create`, without its race.
///
/// The candidate's key columns are the lookup; its other columns are used only when creating
/// (Django's `defaults`). Correctness never rests on a check before the insert: the insert is the
/// atomic step, and a concurrent winner is found, not duplicated.
///
/// | | SQLite, PostgreSQL | MySQL / MariaDB |
/// |---|---|---|
/// | found | `SELECT` by key | `SELECT` by key |
/// | created | + `INSERT … ON CONFLICT DO NOTHING RETURNING …` | + `INSERT … RETURNING …` |
/// | lost the race | + `SELECT` of the winner's row | + `SELECT … LOCK IN SHARE MODE` |
///
/// The `ON CONFLICT DO NOTHING` has no target, so that every unique constraint arbitrates: a winner
/// that collides on this key and another constraint at once is still found. MySQL has no such form
/// (`ON DUPLICATE KEY UPDATE` and `INSERT IGNORE` react to every key, and the latter also hides NOT
/// NULL and truncation errors), so there a plain insert's duplicate-key error leads to the read; the
/// locking read sees the latest committed row even inside a REPEATABLE READ snapshot.
///
/// Errors:
/// - a conflict with another row on another unique constraint is that constraint's duplicate-key
///   error, never a wrong row or a silent success; inside a PostgreSQL transaction the statement
///   that raises it runs under a savepoint, so the transaction stays usable afterwards;
/// - under PostgreSQL REPEATABLE READ or SERIALIZABLE, a winner that committed after the
///   transaction's snapshot cannot be seen by any statement of the transaction: the call fails with
///   an error for which [`Error::is_retryable`] is true. Outside a transaction, and in
///   [`crate::transaction`], the library retries by itself.
///
/// A key with a NULL value identifies no row (NULLs never collide), so such a candidate is created.
///
/// Keyed by an auto-increment primary key, the candidate is inserted with its own id (a lookup by id
/// must create that id). PostgreSQL's identity sequence does not advance past ids inserted that way,
/// so later inserts that let the database choose can meet them: prefer a unique natural key.
///
/// ```
/// # use model_runtime::Model;
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// use model_runtime::{Outcome, get_or_create};
///
/// let candidate = Product { id: 0, sku: "A-1".into(), price: 10 };
/// let (first, outcome) = get_or_create::<ProductBySku>(&pool, &candidate).await?;
/// assert_eq!(outcome, Outcome::Created);
/// // The generated method is the same call: `Product::get_or_create_by_sku(&pool, &candidate)`.
/// let (again, outcome) = Product::get_or_create_by_sku(&pool, &candidate).await?;
/// assert_eq!((again, outcome), (first, Outcome::Found));
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn get_or_create<'a, 'c: 'a, K: Key + 'a>(
    conn: impl Conn<'c> + 'a,
    candidate: &'a K::Model,
) -> BoxFuture<'a, Result<(K::Model, Outcome), Error>> {
    get_or_create_with::<K>(conn, candidate, Strategy::SelectFirst)
}

/// Which statement [`get_or_create_with`] sends first. Both are race-free; they differ in speed.
///
/// Measured here (`cargo run --release -p model-bench -- single`), one connection: reading
/// first makes the found path one `SELECT`, about twice as fast as an insert that does nothing
/// followed by a read; inserting first makes the created path one statement instead of two, about
/// 1.5× as fast. Choose by what most calls meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// `SELECT`, then insert if nothing was found: best when most keys exist (lookups, syncs).
    #[default]
    SelectFirst,
    /// Insert at once, and read the row only when the insert met a conflict: best when most keys
    /// are new (imports).
    InsertFirst,
}

/// [`get_or_create`] with a chosen [`Strategy`].
///
/// ```
/// # use model_runtime::Model;
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// use model_runtime::{Strategy, get_or_create_with};
///
/// let candidate = Product { id: 0, sku: "A-1".into(), price: 10 };
/// let (row, outcome) =
///     get_or_create_with::<ProductBySku>(&pool, &candidate, Strategy::InsertFirst).await?;
/// assert!(outcome.created() && row.id > 0);
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn get_or_create_with<'a, 'c: 'a, K: Key + 'a>(
    conn: impl Conn<'c> + 'a,
    candidate: &'a K::Model,
    strategy: Strategy,
) -> BoxFuture<'a, Result<(K::Model, Outcome), Error>> {
    run(
        conn,
        GetOrCreate::<K> {
            candidate,
            strategy,
            key: std::marker::PhantomData,
        },
    )
}

/// A candidate outside a partial key's condition is refused before any statement: the key does not
/// identify such a row, so "the row with this key" means nothing for it.
fn uncovered<M: Model>(candidate: &M, key: KeyId, dialect: Dialect) -> Result<(), Error> {
    if query::covers(candidate, key, dialect) {
        return Ok(());
    }
    let meta = M::META;
    let constraint = meta.key_name(key);
    let predicate = query::predicate_sql(meta, key, dialect).unwrap_or_default();
    Err(Error::InvalidArgument {
        model: meta.name,
        reason: format!(
            "the candidate is outside the partial constraint `{constraint}` (it covers only rows where {predicate}), so that key does not identify it: insert it, or look it up by another key"
        ),
    })
}

struct GetOrCreate<'x, K: Key> {
    candidate: &'x K::Model,
    strategy: Strategy,
    key: std::marker::PhantomData<fn() -> K>,
}

impl<K: Key> Op for GetOrCreate<'_, K> {
    type Output = (K::Model, Outcome);
    const RETRY_IN_AUTOCOMMIT: bool = true;

    fn check(&self, dialect: Dialect) -> Result<Option<Self::Output>, Error> {
        check::check_row(self.candidate, dialect)?;
        uncovered::<K::Model>(self.candidate, K::KEY, dialect)?;
        Ok(None)
    }

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<Self::Output, Error> {
        get_or_create_on::<K::Model, DB>(conn, self.candidate, K::KEY, self.strategy).await
    }

    fn classify(&self, error: Error, dialect: Dialect) -> Error {
        violation::classify::<K::Model>(error, Some(self.candidate), dialect)
    }
}

async fn get_or_create_on<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    candidate: &M,
    key: KeyId,
    strategy: Strategy,
) -> Result<(M, Outcome), Error> {
    if strategy == Strategy::SelectFirst {
        let key_values = query::key_values_of(candidate, key, DB::DIALECT);
        if let Some(found) = select::<M, DB>(conn, key, key_values, Lock::None).await? {
            return Ok((found, Outcome::Found));
        }
    }
    match insert_or_find::<M, DB>(conn, candidate, key).await? {
        Inserted::Created(row) => Ok((row, Outcome::Created)),
        Inserted::Existing(row) => Ok((row, Outcome::Found)),
    }
}

/// Updates the row whose key `K` equals `create`'s with `update`, or inserts `create` if there is
/// none: Django's `update_or_create(defaults=…, create_defaults=…)`, without its race.
///
/// Only the fields listed in `update` are written on update (the primary key among them is refused
/// with [`Error::InvalidArgument`], unless it is the key itself; key fields among them are skipped:
/// they already match); `create` is inserted whole.
///
/// The outcome is [`Outcome::Updated`] when a listed field held another value and the row was
/// written, [`Outcome::Unchanged`] when every listed field already held the incoming value (then
/// nothing is written: no new row version, no trigger on PostgreSQL and SQLite), or
/// [`Outcome::Created`]. "Already held" is the database's equality, NULL-safe: on PostgreSQL
/// `1.50` and `1.5` in an unconstrained `numeric`, `-0.0` and `0.0`, and equal `jsonb` values are
/// the same (and a `json` column, which has no equality, cannot be listed); MariaDB compares text
/// and JSON by their bytes, whatever the column's collation, as it does when deciding to write.
/// The row found unchanged is locked (`FOR UPDATE`), as the update would have locked it.
///
/// Statements on SQLite and PostgreSQL: `UPDATE … WHERE key AND (c IS DISTINCT FROM ? OR …)
/// RETURNING …` (updated: one statement); when it writes nothing, a `SELECT` of the row with the key
/// and the same values (unchanged: two); when there is none, the insert of [`get_or_create`]
/// (created: three). If a concurrent caller inserts or changes the row between them, the round
/// runs again: no update is lost, and `Unchanged` is said only of a row that held the values.
///
/// On MariaDB: one `INSERT … ON DUPLICATE KEY UPDATE … RETURNING …` whose update writes only a row
/// with this key (outside a transaction, between a `START TRANSACTION` and a `COMMIT` of its own, so
/// that a Galera certification failure is this call's error: see [`Backend::fetch_write`]). It takes no gap lock, which under REPEATABLE
/// READ an `UPDATE` that finds no row does (and every contender then waits on every other's insert:
/// issue 17). A duplicate on another unique constraint leaves that row as it was and falls back to
/// the statements above (where the update of an existing row with this key is an `UPDATE` and a
/// `SELECT` in a transaction of their own outside the caller's). The statement sets the session's
/// `LAST_INSERT_ID()` to a marker when it meets a duplicate: read `LAST_INSERT_ID()` after an
/// insert of your own, not after this call.
///
/// With [`Changes::increment`], the update adds to the stored value (`n = n + ?`; always written,
/// never `Unchanged`); with [`Changes::only_if_newer`] or [`Changes::only_if_not_older`], the
/// statements above carry the condition (`AND version < ?`, on MariaDB inside the marker), the
/// `SELECT` also reads whether the condition holds, and a stored row it refuses is
/// [`Outcome::Stale`]: not written, returned as stored.
///
/// Errors as for [`get_or_create`], and [`Error::InvalidArgument`] for an increment that cannot be
/// written (see [`Changes::increment`]). With no fields to update and no increment, it is
/// [`get_or_create`], and a stored row is [`Outcome::Unchanged`] (or, refused by a condition,
/// [`Outcome::Stale`]).
///
/// ```
/// # use model_runtime::Model;
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// # let stored = model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
/// use model_runtime::{Changes, Outcome, update_or_create};
///
/// let incoming = Product { id: 0, sku: "A-1".into(), price: 15 };
/// let fields = [ProductField::Price];
/// let (row, outcome) =
///     update_or_create::<ProductBySku>(&pool, &incoming, Changes::new(&incoming, &fields)).await?;
/// assert_eq!((row.id, row.price, outcome), (stored.id, 15, Outcome::Updated));
/// // Again with the same values: nothing to write.
/// let (_, outcome) =
///     update_or_create::<ProductBySku>(&pool, &incoming, Changes::new(&incoming, &fields)).await?;
/// assert_eq!(outcome, Outcome::Unchanged);
/// // The same as `Product::update_or_create_by_sku(&pool, &incoming, &[ProductField::Price])`.
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn update_or_create<'a, 'c: 'a, K: Key + 'a>(
    conn: impl Conn<'c> + 'a,
    create: &'a K::Model,
    update: Changes<'a, K::Model>,
) -> BoxFuture<'a, Result<(K::Model, Outcome), Error>> {
    run(
        conn,
        UpdateOrCreate::<K> {
            create,
            update,
            key: std::marker::PhantomData,
        },
    )
}

struct UpdateOrCreate<'x, K: Key> {
    create: &'x K::Model,
    update: Changes<'x, K::Model>,
    key: std::marker::PhantomData<fn() -> K>,
}

impl<K: Key> Op for UpdateOrCreate<'_, K> {
    type Output = (K::Model, Outcome);
    const RETRY_IN_AUTOCOMMIT: bool = true;

    fn check(&self, dialect: Dialect) -> Result<Option<Self::Output>, Error> {
        let (create, update, meta) = (self.create, &self.update, K::Model::META);
        check::check_row(create, dialect)?;
        uncovered::<K::Model>(create, K::KEY, dialect)?;
        check::check_fields(update.values, update.fields, dialect)?;
        check_extra(update, K::KEY, dialect)?;
        // A stored row's primary key is never rewritten (Django refuses a pk in `update_fields`),
        // unless it is the key itself, whose value already matches.
        if K::KEY != KeyId::PrimaryKey
            && update
                .fields
                .iter()
                .any(|&f| K::Model::field_index(f) == meta.primary_key)
        {
            return Err(Error::InvalidArgument {
                model: meta.name,
                reason: format!(
                    "update_or_create lists the primary key `{}` among the fields to update: a stored row's primary key is never rewritten; remove it from the fields",
                    meta.primary_key_column().field
                ),
            });
        }
        Ok(None)
    }

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<Self::Output, Error> {
        let (create, update, dialect) = (self.create, &self.update, DB::DIALECT);
        let key_columns = K::Model::META.key_columns(K::KEY);
        let mut set: Vec<(usize, sea_query::Value)> = Vec::with_capacity(update.fields.len());
        for &field in update.fields {
            let index = K::Model::field_index(field);
            if !key_columns.contains(&index) && !set.iter().any(|(i, _)| *i == index) {
                set.push((index, update.values.column_value(index, dialect)));
            }
        }
        let extra = Extra::of(update, dialect);
        if set.is_empty() && extra.increments.is_empty() {
            // Nothing to write: a stored row is left as it is.
            let (row, outcome) =
                get_or_create_on::<K::Model, DB>(conn, create, K::KEY, Strategy::SelectFirst)
                    .await?;
            let outcome = match (outcome, &extra.guard) {
                (Outcome::Found, Some((guard, incoming)))
                    if !guard.admits(
                        &row.column_value(guard.column, dialect),
                        incoming,
                        dialect,
                    ) =>
                {
                    Outcome::Stale
                }
                (Outcome::Found, _) => Outcome::Unchanged,
                (other, _) => other,
            };
            return Ok((row, outcome));
        }
        let key_values = query::key_values_of(create, K::KEY, dialect);
        update_or_create_on::<K::Model, DB>(conn, create, K::KEY, &key_values, &set, &extra).await
    }

    fn classify(&self, error: Error, dialect: Dialect) -> Error {
        // A violation's values are read off the row only when one row holds everything this call
        // writes.
        let row = (std::ptr::eq(self.create, self.update.values)
            && self.update.increments.is_empty()
            && violation::update_writes_whole_keys::<K::Model>(K::KEY, self.update.fields))
        .then_some(self.create);
        violation::classify::<K::Model>(error, row, dialect)
    }
}

/// Refuses increments that cannot be written: of a listed field (set or add?), of a key or primary
/// key column (the row would move to another key), of a decimal on SQLite (stored as text); and
/// checks the values an increment or a guard binds.
pub(crate) fn check_extra<M: Model>(
    changes: &Changes<'_, M>,
    key: KeyId,
    dialect: Dialect,
) -> Result<(), Error> {
    let meta = M::META;
    let invalid = |reason: String| Error::InvalidArgument {
        model: meta.name,
        reason,
    };
    let listed: Vec<usize> = changes.fields.iter().map(|&f| M::field_index(f)).collect();
    if let Some(reason) =
        crate::changes::refused_increment(meta, &changes.increments, &listed, key, dialect)
    {
        return Err(invalid(reason));
    }
    check::check_columns(
        changes.values,
        changes
            .increments
            .iter()
            .copied()
            .chain(changes.guard.map(|guard| guard.column)),
        dialect,
    )
}

async fn update_or_create_on<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    create: &M,
    key: KeyId,
    key_values: &[sea_query::Value],
    set: &[(usize, sea_query::Value)],
    extra: &Extra,
) -> Result<(M, Outcome), Error> {
    // (A partial key's duplicate is on generated columns the guard does not compare: the general
    // path below serves it.)
    let partial = query::predicate_sql(M::META, key, DB::DIALECT).is_some();
    if DB::DIALECT == Dialect::MySql && !partial && !key_values.iter().any(crate::value::is_null) {
        match upsert_mysql::<M, DB>(conn, create, key, set, extra).await? {
            Upserted::Created(row) => return Ok((row, Outcome::Created)),
            Upserted::Updated(row) => return Ok((row, Outcome::Updated)),
            Upserted::Unchanged(row) => return Ok((row, Outcome::Unchanged)),
            Upserted::Stale(row) => return Ok((row, Outcome::Stale)),
            // Another unique constraint met another row first: that row was left as it was; the
            // general path below updates ours or reports the other constraint's error.
            Upserted::OtherRow => {}
        }
    }
    // Each round either updates a row that differs (and that the guard admits), finds one that
    // already holds the values or that the guard refuses, creates, or sees a concurrent insert or
    // update between its statements, after which the next round finds the row; more rounds would
    // mean rows change as fast as they are read.
    for _ in 0..3 {
        if let Some(row) =
            update_returning::<M, DB>(conn, key, key_values.to_vec(), set.to_vec(), extra, true)
                .await?
        {
            return Ok((row, Outcome::Updated));
        }
        let probe =
            query::select_probe::<M>(key, key_values.to_vec(), set.to_vec(), extra, DB::DIALECT);
        match DB::fetch_optional(conn, probe.sql, probe.values).await? {
            Some(row) => {
                let columns = M::META.columns.len();
                let admits = trailing_int::<M, DB>(&row, columns)?;
                let same = trailing_int::<M, DB>(&row, columns + 1)?;
                if admits != Some(1) {
                    return Ok((decode::<M, DB>(&row)?, Outcome::Stale));
                }
                if same == Some(1) && extra.increments.is_empty() {
                    return Ok((decode::<M, DB>(&row)?, Outcome::Unchanged));
                }
                // Changed by a concurrent caller since the update: it is locked now; again.
            }
            None => {
                if let Inserted::Created(row) = insert_or_find::<M, DB>(conn, create, key).await? {
                    return Ok((row, Outcome::Created));
                }
            }
        }
    }
    Err(Error::RowNotVisible {
        model: M::META.name,
    })
}

/// What [`upsert_mysql`] did.
enum Upserted<M> {
    Created(M),
    Updated(M),
    /// The row with our key already held the values: nothing was written.
    Unchanged(M),
    /// The guard refused to replace the row with our key: nothing was written.
    Stale(M),
    /// The insert met a duplicate on another unique constraint, with another row; nothing changed.
    OtherRow,
}

/// MySQL's `update_or_create`, in one statement that takes no gap lock:
///
/// ```sql
/// INSERT INTO t (…) VALUES (…)
/// ON DUPLICATE KEY UPDATE
///   k1 = IF(LAST_INSERT_ID(IF(k1 <=> VALUES(k1) AND …,
///          IF(<guard>, IF(<unchanged>, :same, :ours), :stale), :other)) > 0, k1, k1),
///   c = IF(LAST_INSERT_ID() = :ours, :c, c), …
///   n = IF(LAST_INSERT_ID() = :ours, n + :n, n), …
/// RETURNING <all columns>, (LAST_INSERT_ID() = :ours) + 2 * (LAST_INSERT_ID() = :other) + …
/// ```
///
/// Why not `UPDATE`, then `INSERT` when it matched nothing: under REPEATABLE READ an `UPDATE` (or a
/// locking read) that finds no row locks the gap where the key would go, every contender for the
/// key (and for any key in the same gap: in an empty table, every key) holds that gap lock, and
/// each one's `INSERT` waits on all the others' for its insert-intention lock: a deadlock storm
/// (issue 17). Why not a plain `INSERT` and an `UPDATE` on its duplicate-key error: that error
/// leaves a shared lock on the existing row, and two losers that both hold one deadlock when each
/// asks for the exclusive lock of its `UPDATE`. `ON DUPLICATE KEY UPDATE` takes the exclusive lock
/// on the duplicate at once, so contenders for a key queue on it and each goes through in turn.
///
/// `ON DUPLICATE KEY UPDATE` reacts to a duplicate on any unique key, so the update is guarded: it
/// writes only when the existing row has our key (compared by the column's own collation, as the
/// unique index does). The first assignment records which case it was with `LAST_INSERT_ID(x)`,
/// read back in the same statement by `RETURNING`. That value is not reset when the statement
/// inserts, so the two markers are fresh random values near 2^64 for each call (auto-increment
/// values never come near them): a stale value of an earlier call cannot pass for this call's.
/// `RETURNING` gives the row as this statement left it, so no transaction is needed around it.
async fn upsert_mysql<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    create: &M,
    key: KeyId,
    set: &[(usize, sea_query::Value)],
    extra: &Extra,
) -> Result<Upserted<M>, Error> {
    let meta = M::META;
    let dialect = DB::DIALECT;
    let key_columns = meta.key_columns(key);
    let q = |i: usize| query::quote(dialect, meta.columns[i].name);
    let explicit_pk = key == KeyId::PrimaryKey;
    let columns: Vec<usize> = (0..meta.columns.len())
        .filter(|&i| explicit_pk || !meta.columns[i].auto_increment)
        .collect();
    let nonce = crate::tx::random() >> 16;
    let ours = u64::MAX - 4 * nonce;
    let other = ours - 1;
    let same = ours - 2;
    let stale = ours - 3;

    let mut values: Vec<sea_query::Value> = Vec::with_capacity(columns.len() + set.len() + 4);
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        query::quote(dialect, meta.table),
        columns.iter().map(|&i| q(i)).collect::<Vec<_>>().join(", "),
        vec!["?"; columns.len()].join(", ")
    );
    values.extend(columns.iter().map(|&i| create.column_value(i, dialect)));
    // A case-insensitive column compares its fold (the generated column) with the fold of ours.
    let ours_key = key_columns
        .iter()
        .map(|&i| {
            let column = meta.columns[i].name;
            if meta.key_constraint(key).is_some_and(|c| c.folds(i)) {
                let stored = query::quote(dialect, &query::folded_column(column));
                let incoming = query::fold_of(&format!("VALUES({})", q(i)), dialect);
                format!("{stored} <=> {incoming}")
            } else {
                format!("{c} <=> VALUES({c})", c = q(i))
            }
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    let first = q(key_columns[0]);
    // Whether the stored row already holds the values, read before any assignment changes it.
    // Text compared by its bytes: MariaDB writes a row whose bytes change, whatever its collation.
    // An increment always writes.
    let unchanged = if extra.increments.is_empty() {
        set.iter()
            .map(|(i, _)| {
                if query::compares_bytes(meta, *i) {
                    format!("CAST({} AS BINARY) <=> CAST(? AS BINARY)", q(*i))
                } else {
                    format!("{} <=> ?", q(*i))
                }
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    } else {
        "FALSE".to_owned()
    };
    // Whether the guard admits the incoming values, also read before any assignment.
    let guard = match &extra.guard {
        Some((guard, _)) => {
            let column = &meta.columns[guard.column];
            guard.sql(column, dialect, &q(guard.column), "?")
        }
        None => "TRUE".to_owned(),
    };
    sql.push_str(&format!(
        " ON DUPLICATE KEY UPDATE {first} = IF(LAST_INSERT_ID(IF({ours_key}, IF({guard}, IF({unchanged}, ?, ?), ?), ?)) > 0, {first}, {first})"
    ));
    extra.push_guard(meta, &mut values, dialect);
    if extra.increments.is_empty() {
        values.extend(set.iter().map(|(_, value)| value.clone()));
    }
    values.push(same.into());
    values.push(ours.into());
    values.push(stale.into());
    values.push(other.into());
    // Later assignments see the columns as earlier ones left them: each asks the marker, which the
    // first assignment set from the row as it was.
    for (i, value) in set {
        sql.push_str(&format!(
            ", {c} = IF(LAST_INSERT_ID() = ?, ?, {c})",
            c = q(*i)
        ));
        values.push(ours.into());
        values.push(value.clone());
    }
    for (i, value) in &extra.increments {
        let sum = crate::changes::increment_sql(&meta.columns[*i], &q(*i), "?", dialect);
        sql.push_str(&format!(
            ", {c} = IF(LAST_INSERT_ID() = ?, {sum}, {c})",
            c = q(*i)
        ));
        values.push(ours.into());
        let uses = crate::changes::increment_uses(&meta.columns[*i], dialect);
        values.extend(std::iter::repeat_n(value, uses).cloned());
    }
    sql.push_str(&query::returning_all(meta, dialect));
    sql.push_str(
        ", CAST((LAST_INSERT_ID() = ?) + 2 * (LAST_INSERT_ID() = ?) + 3 * (LAST_INSERT_ID() = ?) + 4 * (LAST_INSERT_ID() = ?) AS SIGNED)",
    );
    values.push(ours.into());
    values.push(other.into());
    values.push(same.into());
    values.push(stale.into());

    let row = DB::fetch_write(conn, sql.into(), sea_query::Values(values))
        .await?
        .ok_or(Error::Database(sqlx::Error::RowNotFound))?;
    let marker = trailing_int::<M, DB>(&row, meta.columns.len())?;
    match marker {
        Some(1) => Ok(Upserted::Updated(decode::<M, DB>(&row)?)),
        Some(2) => Ok(Upserted::OtherRow),
        Some(3) => Ok(Upserted::Unchanged(decode::<M, DB>(&row)?)),
        Some(4) => Ok(Upserted::Stale(decode::<M, DB>(&row)?)),
        _ => Ok(Upserted::Created(decode::<M, DB>(&row)?)),
    }
}

/// `UPDATE … RETURNING` where the backend has it. MariaDB has no `UPDATE … RETURNING`: there it is an
/// `UPDATE` (sqlx reports matched rows) and a `SELECT` of the row, in a transaction of their own when
/// the caller is not in one, so that the row returned is the row as this update left it.
///
/// Known gap, sqlx's: a call cut off while that transaction's `START TRANSACTION` is in flight leaves
/// the connection inside a transaction sqlx believes closed (see `CloseUnlessClean` in `tx.rs`). The
/// library cannot close a connection it only borrows through [`sqlx::Acquire`]; `update_or_create`
/// on MariaDB avoids this transaction except when another constraint's duplicate sends it here.
async fn update_returning<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    key_values: Vec<sea_query::Value>,
    set: Vec<(usize, sea_query::Value)>,
    extra: &Extra,
    only_if_changed: bool,
) -> Result<Option<M>, Error> {
    let statement = query::update_by_key::<M>(
        key,
        key_values.clone(),
        set.clone(),
        extra,
        only_if_changed,
        DB::DIALECT,
    );
    if DB::DIALECT.has_update_returning() {
        return write_model::<M, DB>(conn, statement).await;
    }
    if conn.is_in_transaction() {
        return update_then_select::<M, DB>(conn, key, key_values, set, statement).await;
    }
    let mut tx = conn.begin().await?;
    let row = update_then_select::<M, DB>(&mut tx, key, key_values, set, statement).await?;
    tx.commit().await?;
    Ok(row)
}

/// The `UPDATE`, then the row read back with a lock, and only if it holds the values just written
/// ([`query::select_probe`]). A plain `SELECT` is not enough on MariaDB Galera: a node's applier
/// can abort the transaction between the two statements (to apply a conflicting write set from
/// another node), and a non-locking read in the aborted transaction still answers, with the other
/// writer's row, where a locking read reports the abort (1213). `tests/galera.rs` saw a call told
/// `Updated` with another caller's row that way. A row without the values (the transaction is
/// gone and the read ran outside it) is [`Error::WriteLost`]; both are retryable.
async fn update_then_select<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    key_values: Vec<sea_query::Value>,
    set: Vec<(usize, sea_query::Value)>,
    statement: Statement,
) -> Result<Option<M>, Error> {
    let done = DB::execute(conn, statement.sql, statement.values).await?;
    if done.rows_affected == 0 {
        return Ok(None);
    }
    // The probe's second flag: the listed columns hold the values written (an increment's sum is
    // not known here; the locked read still reports an aborted transaction).
    let probe = query::select_probe::<M>(key, key_values, set, &Extra::default(), DB::DIALECT);
    let lost = || Error::WriteLost {
        model: M::META.name,
    };
    let row = DB::fetch_optional(conn, probe.sql, probe.values)
        .await?
        .ok_or_else(lost)?;
    let same = trailing_int::<M, DB>(&row, M::META.columns.len() + 1)?;
    if same != Some(1) {
        return Err(lost());
    }
    decode::<M, DB>(&row).map(Some)
}

/// What [`insert_or_find`] did.
enum Inserted<M> {
    /// The candidate was inserted.
    Created(M),
    /// A row with the candidate's key exists (a concurrent caller inserted it): here it is.
    Existing(M),
}

/// Inserts the candidate, or finds the row with its key when one exists. Any other failure, a
/// conflict with another row on another constraint included, is an error.
///
/// PostgreSQL and SQLite: `INSERT … ON CONFLICT DO NOTHING RETURNING …` with no target, so that every
/// unique constraint arbitrates. A conflict on the key and on another constraint at once (the same
/// row inserted by a concurrent caller) thus never surfaces as the other constraint's error. No row
/// back means a conflict: the row with our key is read; if there is none, the conflict was with
/// another row, and a plain insert reports it as the database's own duplicate-key error. Under
/// PostgreSQL REPEATABLE READ, a conflict with a row this snapshot cannot see raises a serialization
/// failure instead, which is retryable.
///
/// MySQL: a plain `INSERT` (no conflict target exists; `ON DUPLICATE KEY UPDATE` and `INSERT IGNORE`
/// react to every key, and the latter also hides NOT NULL and truncation errors). On a duplicate-key
/// error the row with our key is read with `LOCK IN SHARE MODE`, which sees the latest committed
/// row even in a REPEATABLE READ snapshot; if there is none, the error stands.
async fn insert_or_find<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    candidate: &M,
    key: KeyId,
) -> Result<Inserted<M>, Error> {
    let dialect = DB::DIALECT;
    let key_values = || query::key_values_of(candidate, key, dialect);
    if !dialect.has_on_conflict() {
        let Statement { sql, values } =
            query::insert_returning(candidate, Some(key), false, dialect);
        return match DB::fetch_write(conn, sql, values).await {
            Ok(Some(row)) => Ok(Inserted::Created(decode::<M, DB>(&row)?)),
            Ok(None) => Err(Error::Database(sqlx::Error::RowNotFound)),
            Err(error) if is_unique_violation(&error) => {
                match select::<M, DB>(conn, key, key_values(), Lock::Share).await? {
                    Some(row) => Ok(Inserted::Existing(row)),
                    None => Err(error.into()),
                }
            }
            Err(error) => Err(error.into()),
        };
    }

    let statement = query::insert_returning(candidate, Some(key), true, dialect);
    if let Some(row) = write_model::<M, DB>(conn, statement).await? {
        return Ok(Inserted::Created(row));
    }
    if let Some(row) = select::<M, DB>(conn, key, key_values(), Lock::None).await? {
        return Ok(Inserted::Existing(row));
    }
    // A failed statement aborts a PostgreSQL transaction; a savepoint keeps the caller's transaction
    // usable after the error.
    let guard = dialect.error_aborts_transaction() && conn.is_in_transaction();
    if guard {
        execute_plain::<DB>(conn, "SAVEPOINT model_runtime_insert").await?;
    }
    let result = write_model::<M, DB>(
        conn,
        query::insert_returning(candidate, Some(key), false, dialect),
    )
    .await;
    if guard {
        if result.is_err() {
            execute_plain::<DB>(conn, "ROLLBACK TO SAVEPOINT model_runtime_insert").await?;
        }
        execute_plain::<DB>(conn, "RELEASE SAVEPOINT model_runtime_insert").await?;
    }
    match result? {
        // The conflicting row went away in between: the plain insert created ours.
        Some(row) => Ok(Inserted::Created(row)),
        None => Err(Error::Database(sqlx::Error::RowNotFound)),
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// Runs a statement without values or rows (`SAVEPOINT …`, `PRAGMA …`).
pub(crate) async fn execute_plain<DB: Backend>(
    conn: &mut DB::Connection,
    sql: &str,
) -> Result<(), Error> {
    DB::execute(conn, Arc::from(sql), Values(Vec::new())).await?;
    Ok(())
}

/// Checks every unique constraint of the model against the rows already stored, in **one** query,
/// before writing `row`: Django's `validate_constraints()` / `validate_unique()`. Returns every
/// constraint another row already holds `row`'s values for, with its columns and values; an empty
/// list means none.
///
/// The row with `row`'s own primary key is not counted (validating a row against itself finds
/// nothing: this is the check for a row being edited; for a new row with an explicit primary key,
/// use [`crate::validate_unique_new`], which checks the primary key too), and a constraint is skipped where `row` has a NULL in it: NULLs never collide in a unique
/// constraint. A check, not a guarantee: a concurrent writer can still take a value before the
/// write. The write itself stays the arbiter, and reports [`Error::UniqueViolation`].
///
/// ```
/// # use model_runtime::Model;
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// # let stored = model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
/// let edited = Product { id: 0, sku: "A-1".into(), price: 1 }; // another row, same sku
/// let violations = model_runtime::validate_unique(&pool, &edited).await?;
/// assert!(violations[0].is::<ProductBySku>());
/// assert!(stored.validate_unique(&pool).await?.is_empty()); // a stored row against itself
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn validate_unique<'a, 'c: 'a, M: Model>(
    conn: impl Conn<'c> + 'a,
    row: &'a M,
) -> BoxFuture<'a, Result<Vec<UniqueViolation>, Error>> {
    run(conn, Validate { row, new: false })
}

/// [`crate::validate_unique`] for a row that is **not stored yet**: Django's `validate_unique()`
/// while adding. Every unique constraint is checked against every stored row, and so is the primary
/// key when the row carries its own (not `auto_increment`): a new row whose explicit primary key is
/// already taken is reported as a violation of [`crate::KeyId::PrimaryKey`], where
/// [`crate::validate_unique`], which skips the row with `row`'s own primary key so that a stored row
/// validates against itself, finds nothing and the insert fails.
///
/// One query; a constraint with a NULL in `row` is skipped (NULLs never collide). A check, not a
/// guarantee: the insert stays the arbiter.
///
/// ```
/// # use model_runtime::Model;
/// # #[derive(Model, Debug, Clone, PartialEq)]
/// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
/// # let stored = model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
/// let new = Product { id: 0, sku: "A-1".into(), price: 1 };
/// let violations = model_runtime::validate_unique_new(&pool, &new).await?;
/// assert_eq!(violations.len(), 1);
/// assert_eq!(violations[0].columns(), ["sku"]);
/// # Ok::<(), model_runtime::Error>(()) }).unwrap();
/// ```
pub fn validate_unique_new<'a, 'c: 'a, M: Model>(
    conn: impl Conn<'c> + 'a,
    row: &'a M,
) -> BoxFuture<'a, Result<Vec<UniqueViolation>, Error>> {
    run(conn, Validate { row, new: true })
}

/// [`validate_unique`] and [`validate_unique_new`]: the declared constraints (and, for a new row
/// that carries its own primary key, the primary key) without a NULL in `row`, in one query.
struct Validate<'x, M> {
    row: &'x M,
    new: bool,
}

impl<M: Model> Validate<'_, M> {
    fn keys(&self, dialect: Dialect) -> Vec<KeyId> {
        let meta = M::META;
        let primary =
            (self.new && !meta.primary_key_column().auto_increment).then_some(KeyId::PrimaryKey);
        primary
            .into_iter()
            .chain((0..meta.uniques.len()).map(KeyId::Unique))
            .filter(|&key| query::covers(self.row, key, dialect))
            .filter(|&key| {
                query::null_identifies(meta, key)
                    || !query::key_values_of(self.row, key, dialect)
                        .iter()
                        .any(crate::value::is_null)
            })
            .collect()
    }
}

impl<M: Model> Op for Validate<'_, M> {
    type Output = Vec<UniqueViolation>;

    fn check(&self, dialect: Dialect) -> Result<Option<Self::Output>, Error> {
        let keys = self.keys(dialect);
        for &key in &keys {
            check::check_key::<M>(
                key,
                || query::key_values_of(self.row, key, dialect),
                dialect,
            )?;
        }
        Ok(keys.is_empty().then(Vec::new))
    }

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<Self::Output, Error> {
        let (meta, dialect) = (M::META, DB::DIALECT);
        let keys = self.keys(dialect);
        let Statement { sql, values } = query::validate_keys(self.row, &keys, !self.new, dialect);
        let flags = DB::fetch_optional(conn, sql, values)
            .await?
            .ok_or(Error::Database(sqlx::Error::RowNotFound))?;
        let flags = DB::row_ref(&flags);
        let mut violations = Vec::new();
        for (index, &key) in keys.iter().enumerate() {
            let taken = <bool as crate::column::SqlType>::decode(flags, index)
                .map_err(|source| Error::Decode {
                    model: meta.name,
                    source,
                })?
                .unwrap_or(false);
            if taken {
                violations.push(UniqueViolation::predicted(self.row, key, dialect));
            }
        }
        Ok(violations)
    }
}
