//! Bulk insert with conflict handling: Django's `bulk_create(ignore_conflicts / update_conflicts)`,
//! with a per-row report, chunks under each backend's bind limit, repeats of a key within the input
//! resolved before the database sees them, and all or nothing (or, on request, a commit per chunk).
//!
//! - [`key`]: a key's values as something to hash, fingerprint and order;
//! - [`plan`]: which rows of a chunk are written, across chunks as within one;
//! - [`statements`]: the SQL, built with sea-query and cached per shape;
//! - [`write`]: each mode on each backend.

pub(crate) mod key;
mod plan;
mod statements;
pub(crate) mod write;

use std::marker::PhantomData;

use sqlx::Connection;

use crate::changes::{Guard, Numeric, Ordered, TypedField};
use crate::conn::Conn;

use crate::backend::{Backend, Dialect, Isolation};
use crate::error::Error;
use crate::meta::KeyId;
use crate::model::{KeyOf, Model};
use crate::tx::{BoxFuture, Retry, RetryPolicy};
use crate::violation;

use plan::{ChunkPlan, Repeat, Resolve, Seen, Tag};
pub(crate) use statements::Returning;
pub(crate) use write::Update;
use write::{Action, Batch, ChunkWrite, Counts, Written};

/// The state of a [`BulkInsert`] whose conflict mode is not chosen yet: a conflict is an error, and
/// [`BulkInsert::skip_conflicts`] or [`BulkInsert::update_conflicts`] may still choose one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoConflictMode;

/// The state of a [`BulkInsert`] whose conflict mode is chosen: choosing another does not compile.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConflictModeSet;

/// What to do with a row whose key already exists, as the caller asked.
#[derive(Debug)]
enum Mode<M: Model> {
    Error,
    Skip(KeyId),
    Update(KeyId, Vec<M::Field>),
}

/// A bulk insert of rows of `M`, configured with builder methods and run with [`BulkInsert::run`].
///
/// ```no_run
/// # use model_runtime::{Model, BulkInsert};
/// # #[derive(Model)] struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
/// # async fn demo(pool: sqlx::SqlitePool, rows: Vec<Product>) -> Result<(), model_runtime::Error> {
/// let report = BulkInsert::<Product>::new()
///     .skip_conflicts::<ProductBySku>()
///     .run(&pool, rows)
///     .await?;
/// println!("{} inserted, {} already there", report.inserted, report.skipped_existing);
/// # Ok(()) }
/// ```
///
/// # What is reported
/// Every input row is counted once: for each distinct key of the input, one row is written and
/// reported [`Inserted`](RowOutcome::Inserted), [`Updated`](RowOutcome::Updated) or
/// [`SkippedExisting`](RowOutcome::SkippedExisting); every other row with that key is an input
/// repeat ([`SkippedDuplicate`](RowOutcome::SkippedDuplicate) when skipping, the first wins;
/// [`Superseded`](RowOutcome::Superseded) when updating, the last wins), whatever the chunking. So
/// `inserted + updated + skipped_existing` is the number of distinct keys and `skipped_in_input` the
/// number of the other rows, in the per-row report and with [`counts_only`](Self::counts_only)
/// alike. Rows with a NULL in the key collide with nothing and are all inserted.
///
/// # Memory
/// The input is consumed chunk by chunk: while the database writes one chunk, the call reads the
/// next from the input and plans it (all or nothing over several chunks; a call that commits each
/// chunk reads the next after the commit). To recognise a repeat of a key from an earlier chunk,
/// a call keeps one 128-bit fingerprint of each distinct key: 17 bytes a hash-table slot with
/// [`counts_only`](Self::counts_only), 25 with the per-row report (which also keeps the key's row),
/// and the table keeps between 1.14 and 2.3 slots per key (between 19 and 39 bytes per distinct key
/// counts only, up to 57 with the per-row report; twice that for a moment while the table grows).
/// Beyond that, counts-only memory is two chunks (the one written and the one read ahead); the
/// per-row report adds one outcome per input row.
///
/// # Locks and transactions
/// Each chunk's rows are written in one order of their keys, so that concurrent calls over
/// overlapping keys wait for each other instead of deadlocking. That holds within a chunk: calls
/// whose inputs span several chunks, all or nothing, hold the first chunks' locks while taking the
/// next ones', and overlapping inputs in different orders deadlock (measured: about 200 deadlocks in
/// 10 concurrent 4-chunk PostgreSQL calls, each found after the 1 s `deadlock_timeout`), and get an
/// error for which [`Error::is_retryable`] is true. For concurrent imports, sort the input by key
/// or use [`commit_each_chunk`](Self::commit_each_chunk) (measured: no deadlock). Sorting does not
/// rule out a deadlock with another writer that takes the same rows in another order (update mode
/// on PostgreSQL, in a call of one chunk, locks the stored rows before it inserts the new ones, and
/// a deadlock with a sorted call of one row a chunk was seen in `tests/cancellation.rs`): run such
/// a call again when its error is retryable. Outside the caller's transaction the call runs in a
/// transaction of its own at READ COMMITTED (SQLite: `BEGIN IMMEDIATE`), which on MariaDB takes no
/// gap locks;
/// a call whose input fits in one chunk is retried there after a deadlock or serialization failure.
/// Inside the caller's transaction it runs under a savepoint, at the caller's isolation level. On
/// MariaDB a deadlock rolls back the caller's whole transaction, not just the savepoint: the error
/// is retryable, and the caller must run its transaction again (sqlx then also reports the lost
/// savepoint, error 1305, on the caller's rollback).
///
/// # Keys and names
/// A key given as the conflict target is written as given. Keyed by an auto-increment primary key,
/// that has two consequences: PostgreSQL's identity sequence does not move past ids written this
/// way (later inserts that let the database choose can meet them), and MySQL replaces an id of 0
/// with a new value, so a 0 there is refused. On MariaDB the read of a chunk's stored keys goes
/// through the key's index by its declared name (`FORCE INDEX`), so the table's unique indexes must
/// carry the model's constraint names: [`Schema::diff`](crate::Schema::diff) finds and renames
/// drifted ones. A failure of a chunk's `COMMIT` itself (a lost connection) cannot say whether the
/// chunk was committed: `committed_rows` counts the chunks known to be.
///
/// On MariaDB with its default 128 MB buffer pool, all-or-nothing holds every row lock of the call
/// until its commit, and rolling back a killed call of some 100,000 rows that each took an explicit
/// lock exhausted the pool's lock memory. Measured now (`tests/bulk_locks.rs`): new rows carry
/// implicit locks, which use no lock memory; a stored row skipped or updated takes one record lock,
/// about 1 byte of lock memory per row. For imports that do not need all-or-nothing, [`commit_each_chunk`](Self::commit_each_chunk)
/// bounds the locks and the undo log to one chunk.
#[derive(Debug)]
pub struct BulkInsert<M: Model, S = NoConflictMode> {
    mode: Mode<M>,
    batch_size: Option<usize>,
    per_row: bool,
    commit_each_chunk: bool,
    /// [`BulkInsert::get_or_create`]: skip mode that also reads the primary key of every row it
    /// skips.
    find: bool,
    /// Update mode: columns the incoming values are added to.
    increments: Vec<usize>,
    /// Update mode: when a stored row may be written.
    guard: Option<Guard>,
    /// The conflict mode chosen so far, a type-level marker (`fn() -> S`: the builder is `Send` and
    /// `Sync` whatever it is, so that the future of [`BulkInsert::run`] is).
    state: PhantomData<fn() -> S>,
}

impl<M: Model> Default for BulkInsert<M, NoConflictMode> {
    fn default() -> Self {
        BulkInsert {
            mode: Mode::Error,
            batch_size: None,
            per_row: true,
            commit_each_chunk: false,
            find: false,
            increments: Vec::new(),
            guard: None,
            state: PhantomData,
        }
    }
}

/// What happened to one input row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome<P> {
    /// Inserted, with its primary key.
    Inserted(P),
    /// Not inserted: a row with its key was already stored.
    SkippedExisting,
    /// Not inserted: an earlier input row (at this index) has the same key, and the first wins.
    SkippedDuplicate {
        /// The index of the input row that was kept.
        first: usize,
    },
    /// The existing row with its key was updated; its primary key.
    Updated(P),
    /// Update mode: the existing row with its key already held the incoming values of the listed
    /// fields, and was not written.
    Unchanged,
    /// Update mode with a condition ([`BulkInsert::only_if_newer`]): the existing row with its key
    /// was not written, the condition refusing the incoming values.
    Stale,
    /// [`BulkInsert::get_or_create`]: a row with its key was already stored; its primary key.
    Found(P),
    /// Not written: a later input row (at this index) has the same key, and the last wins.
    Superseded {
        /// The index of the input row that was written (the last with this key).
        last: usize,
    },
}

/// What a bulk insert did: the counts, and, unless [`BulkInsert::counts_only`] was asked for, one
/// outcome per input row, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkReport<P> {
    /// Rows inserted.
    pub inserted: u64,
    /// Rows skipped because their key was already stored.
    pub skipped_existing: u64,
    /// Rows skipped or superseded because another input row has the same key.
    pub skipped_in_input: u64,
    /// Stored rows updated: at least one of the listed fields held another value.
    pub updated: u64,
    /// Stored rows left as they were, their listed fields already holding the incoming values
    /// (update mode); nothing was written to them.
    pub unchanged: u64,
    /// Stored rows left as they were because the condition refused the incoming values (update
    /// mode with [`BulkInsert::only_if_newer`] or [`BulkInsert::only_if_not_older`]).
    pub stale: u64,
    /// Chunks written (each committed on its own with [`BulkInsert::commit_each_chunk`]).
    pub chunks: usize,
    /// One outcome per input row, in input order; `None` with [`BulkInsert::counts_only`].
    pub rows: Option<Vec<RowOutcome<P>>>,
}

impl<P: Clone> BulkReport<P> {
    /// The primary key of the stored row behind each input row, in input order, where the report
    /// knows it: inserted, found, updated, or a repeat of a row that is (following
    /// [`RowOutcome::SkippedDuplicate`] and [`RowOutcome::Superseded`]). With
    /// [`BulkInsert::get_or_create`] every row has one. `None` with
    /// [`BulkInsert::counts_only`].
    pub fn primary_keys(&self) -> Option<Vec<Option<P>>> {
        let rows = self.rows.as_ref()?;
        let own = |outcome: &RowOutcome<P>| match outcome {
            RowOutcome::Inserted(pk) | RowOutcome::Found(pk) | RowOutcome::Updated(pk) => {
                Some(pk.clone())
            }
            _ => None,
        };
        Some(
            rows.iter()
                .map(|outcome| match outcome {
                    RowOutcome::SkippedDuplicate { first } => own(&rows[*first]),
                    RowOutcome::Superseded { last } => own(&rows[*last]),
                    other => own(other),
                })
                .collect(),
        )
    }
}

impl<M: Model> BulkInsert<M, NoConflictMode> {
    /// A bulk insert that fails on any conflict (a plain multi-row `INSERT`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Skips rows whose key `K` is already stored, and all but the first of the input rows sharing
    /// a key. A conflict on any other unique constraint is still an error, never a silent skip.
    pub fn skip_conflicts<K: KeyOf<M>>(self) -> BulkInsert<M, ConflictModeSet> {
        self.with_mode(Mode::Skip(K::KEY))
    }

    /// Get-or-create for many rows at once: inserts the rows whose key `K` is not stored and
    /// reports, for every input row, the primary key of the row with its key, found or created
    /// ([`BulkReport::primary_keys`]), in input order; what importers need to resolve natural keys
    /// to ids (stores by name before their products). Race-free as skip mode is: a key a concurrent
    /// caller inserted is found, not duplicated. Of the input rows sharing a key the first is the
    /// candidate; the others report [`RowOutcome::SkippedDuplicate`] and share its primary key.
    ///
    /// Per chunk, skip mode's statements and one `SELECT` of the stored rows' primary keys. Needs
    /// the per-row report: with [`BulkInsert::counts_only`], [`BulkInsert::run`] refuses it.
    pub fn get_or_create<K: KeyOf<M>>(self) -> BulkInsert<M, ConflictModeSet> {
        let mut bulk = self.with_mode(Mode::Skip(K::KEY));
        bulk.find = true;
        bulk
    }

    /// Writes `fields` to the stored row when key `K` exists. Of the input rows sharing a key, the
    /// last wins: the earlier ones are reported [`RowOutcome::Superseded`], and the stored row ends
    /// with the last one's values. A conflict on any other unique constraint is an error.
    ///
    /// `fields` must name at least one field, and neither the primary key nor a field of `K` (the
    /// key's own values already match, and a primary key is never rewritten): [`BulkInsert::run`]
    /// refuses them with [`Error::InvalidArgument`] before any statement.
    pub fn update_conflicts<K: KeyOf<M>>(
        self,
        fields: &[M::Field],
    ) -> BulkInsert<M, ConflictModeSet> {
        self.with_mode(Mode::Update(K::KEY, fields.to_vec()))
    }

    fn with_mode(self, mode: Mode<M>) -> BulkInsert<M, ConflictModeSet> {
        BulkInsert {
            mode,
            batch_size: self.batch_size,
            per_row: self.per_row,
            commit_each_chunk: self.commit_each_chunk,
            find: self.find,
            increments: self.increments,
            guard: self.guard,
            state: PhantomData,
        }
    }
}

impl<M: Model> BulkInsert<M, ConflictModeSet> {
    /// Update mode: adds the incoming row's value of `field` to the stored one
    /// (`hits = hits + excluded.hits`) instead of replacing it; an inserted row holds its own
    /// value. As [`Changes::increment`](crate::Changes::increment): the field must not be listed
    /// nor be a key column, an increment always writes the row ([`RowOutcome::Updated`]), and an
    /// overflow is an error. Only with [`update_conflicts`](BulkInsert::update_conflicts), which
    /// may then list no fields.
    ///
    /// The input must not repeat a key (an [`Error::InvalidArgument`] names the row): the rows
    /// with one key are to be added up before the call, as the result would otherwise depend on
    /// their order and chunking.
    pub fn increment<T: Numeric>(mut self, field: TypedField<M, T>) -> Self {
        if !self.increments.contains(&field.index()) {
            self.increments.push(field.index());
        }
        self
    }

    /// Update mode: writes a stored row only when the incoming row's `field` is greater than the
    /// stored one (NULL older than every value), as
    /// [`Changes::only_if_newer`](crate::Changes::only_if_newer); a refused row is reported
    /// [`RowOutcome::Stale`] and counted in [`BulkReport::stale`]. The input must not repeat a key
    /// (keep the newest of each before the call). Only with
    /// [`update_conflicts`](BulkInsert::update_conflicts).
    pub fn only_if_newer<T: Ordered>(mut self, field: TypedField<M, T>) -> Self {
        self.guard = Some(Guard {
            column: field.index(),
            strict: true,
        });
        self
    }

    /// As [`only_if_newer`](BulkInsert::only_if_newer), but an equal value also writes.
    pub fn only_if_not_older<T: Ordered>(mut self, field: TypedField<M, T>) -> Self {
        self.guard = Some(Guard {
            column: field.index(),
            strict: false,
        });
        self
    }
}

/// Statements over this many rows are not built: the default chunk.
const DEFAULT_CHUNK: usize = 1000;

/// PostgreSQL's default chunk, where a statement binds one array per column: chosen by
/// measurement (`model-bench bulk --pg-chunks`).
const POSTGRES_CHUNK: usize = 10_000;

/// How often a call (all-or-nothing and within one chunk, or one chunk of a commit-per-chunk call)
/// is run again after a deadlock or serialization failure, outside the caller's transaction.
const ATTEMPTS: u32 = 10;

impl<M: Model, S> BulkInsert<M, S> {
    /// Rows per statement, at least 1 ([`BulkInsert::run`] refuses 0). Capped so that no statement
    /// exceeds the backend's bind-parameter limit (32766 on SQLite, 65535 on PostgreSQL and MySQL),
    /// except on PostgreSQL, where a bulk insert binds one array per column whatever its rows
    /// (not for [`get_or_create`](BulkInsert::get_or_create) and update mode, whose reads bind
    /// each key).
    /// Default: 1000, or fewer for wide rows; 10,000 on PostgreSQL.
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = Some(rows);
        self
    }

    /// Counts only: no per-row report, so that memory stays at two chunks (the one written and the
    /// one read ahead) and the per-key fingerprints, however long the input.
    pub fn counts_only(mut self) -> Self {
        self.per_row = false;
        self
    }

    /// Commits each chunk on its own instead of the whole call at once: for imports that do not need
    /// all or nothing, and keeps the locks and undo log of one chunk at a time. On a failure, the
    /// chunks before the failed one stay committed ([`Error::Bulk`]'s `committed_rows` says how many
    /// input rows); a deadlock or serialization failure in a chunk runs that chunk again. Needs a
    /// pool or a connection outside a transaction: inside the caller's transaction
    /// [`BulkInsert::run`] refuses it, as it cannot commit there.
    pub fn commit_each_chunk(mut self) -> Self {
        self.commit_each_chunk = true;
        self
    }

    /// The mode, checked and in column indexes.
    fn action(&self, dialect: Dialect) -> Result<Action, Error> {
        let invalid = |reason: String| Error::InvalidArgument {
            model: M::META.name,
            reason,
        };
        if self.batch_size == Some(0) {
            return Err(invalid(
                "batch_size(0): a chunk needs at least one row".into(),
            ));
        }
        if self.find && !self.per_row {
            return Err(invalid(
                "get_or_create reports a primary key per input row: leave counts_only out".into(),
            ));
        }
        Ok(match &self.mode {
            Mode::Error | Mode::Skip(_) if !self.increments.is_empty() || self.guard.is_some() => {
                return Err(invalid(
                    "increment, only_if_newer and only_if_not_older apply to update_conflicts, which writes stored rows; skip modes leave them as they are".into(),
                ));
            }
            Mode::Error => Action::Fail,
            Mode::Skip(key) => Action::Skip(*key),
            Mode::Update(key, fields) => {
                let meta = M::META;
                let listed: Vec<usize> = fields.iter().map(|&f| M::field_index(f)).collect();
                if let Some(reason) = crate::changes::refused_increment(
                    meta,
                    &self.increments,
                    &listed,
                    *key,
                    dialect,
                ) {
                    return Err(invalid(reason));
                }
                if fields.is_empty() && self.increments.is_empty() {
                    return Err(invalid(
                        "update_conflicts with no fields would write nothing to a stored row; name the fields to update, or use skip_conflicts to leave stored rows as they are".into(),
                    ));
                }
                let key_columns = meta.key_columns(*key);
                let mut set: Vec<usize> = Vec::with_capacity(fields.len());
                for &field in fields {
                    let index = M::field_index(field);
                    let column = &meta.columns[index];
                    if index == meta.primary_key {
                        return Err(invalid(format!(
                            "update_conflicts lists the primary key `{}`: a stored row's primary key is never rewritten; remove it from the fields",
                            column.field
                        )));
                    }
                    if key_columns.contains(&index) {
                        return Err(invalid(format!(
                            "update_conflicts lists `{}`, a field of the conflict key `{}`: a stored row with the key already holds its values; remove it from the fields",
                            column.field,
                            meta.key_name(*key)
                        )));
                    }
                    if !set.contains(&index) {
                        set.push(index);
                    }
                }
                Action::Update(
                    *key,
                    Update {
                        set,
                        increments: self.increments.clone(),
                        guard: self.guard,
                    },
                )
            }
        })
    }

    fn rows_per_chunk(&self, action: &Action, dialect: Dialect) -> usize {
        let limit = dialect.bind_limit();
        if dialect == Dialect::Postgres && !self.find {
            // One array per column whatever the rows (`statements::column_arrays`): no bind cap,
            // but for update mode's read of the stored keys, which binds each key (as does
            // get-or-create's read of the skipped keys).
            let rows = self.batch_size.unwrap_or(POSTGRES_CHUNK).max(1);
            return match action {
                Action::Update(key, _) => rows.min(limit / M::META.key_columns(*key).len().max(1)),
                _ => rows,
            };
        }
        let columns = statements::insert_columns::<M>(action.explicit_pk()).len();
        let key_columns = action.key().map_or(0, |key| M::META.key_columns(key).len());
        // Binds per row in the widest statement of the chunk: the insert, the read of the stored
        // keys, MySQL's CASE update (see `statements::update_by_case_binds`), and SQLite's upsert
        // of the stored rows, which names each row's stored primary key besides the columns
        // inserted (found by an adversarial test: 993 stored rows of 32 columns bound 32,769
        // values, past SQLite's 32,766).
        let per_row = match action {
            Action::Update(key, update) if dialect == Dialect::MySql => columns
                .max(statements::update_by_case_binds::<M>(*key, update, dialect))
                .max(key_columns),
            Action::Update(..) => (columns + 1).max(key_columns),
            _ => columns.max(key_columns),
        };
        (limit / per_row.max(1))
            .min(self.batch_size.unwrap_or(DEFAULT_CHUNK))
            .max(1)
    }

    /// Inserts `rows`, consumed chunk by chunk, inside one transaction (a savepoint in the caller's
    /// transaction): a failure in any chunk leaves none of this call's rows behind, unless
    /// [`commit_each_chunk`](Self::commit_each_chunk) was asked for.
    ///
    /// Errors: [`Error::InvalidArgument`] for a configuration that cannot run, before any
    /// statement; otherwise [`Error::Bulk`], which names the input row where the database's error
    /// identifies it and wraps the typed error ([`Error::UniqueViolation`] for a conflict on
    /// another constraint, or on the key itself without a conflict mode).
    ///
    /// Given a pool of PostgreSQL or MySQL connections, the call's connection is closed rather than
    /// returned to the pool when the call is dropped part-way (see [`crate::Release`]): its state
    /// would be unknown.
    ///
    /// The future is `Send` (boxed, as the generated methods' are), also on the caller's
    /// transaction (`&mut *tx`) inside a spawned task; the rows' iterator must be `Send` for that.
    pub fn run<'a, 'c: 'a, A, I>(
        &'a self,
        conn: A,
        rows: I,
    ) -> BoxFuture<'a, Result<BulkReport<M::PrimaryKey>, Error>>
    where
        A: Conn<'c> + 'a,
        I: IntoIterator<Item = M> + Send + 'a,
        I::IntoIter: Send,
    {
        Box::pin(self.run_in(conn, rows))
    }

    async fn run_in<'c, A, I>(&self, conn: A, rows: I) -> Result<BulkReport<M::PrimaryKey>, Error>
    where
        A: Conn<'c>,
        I: IntoIterator<Item = M> + Send,
        I::IntoIter: Send,
    {
        let dialect = <A::Database as Backend>::DIALECT;
        let action = self.action(dialect)?;
        let chunk_rows = self.rows_per_chunk(&action, dialect);
        let mut guard = crate::conn::CloseUnlessClean {
            conn: conn.acquire().await?,
            close: false,
        };
        let in_caller_tx = guard.conn.is_in_transaction();
        // The call's own transactions on a server: until the call returns, a cut-off leaves the
        // connection's state unknown (a `BEGIN` sent but not answered, statements in flight), and
        // the pooled connection is closed. A returned error leaves it known: a dropped transaction
        // has queued its rollback. SQLite's driver never leaves it unknown (and closing an
        // in-memory database's connection would throw the database away).
        guard.close = !in_caller_tx && dialect.closes_cut_connections();
        let result = self
            .run_on::<A::Database, I>(&mut guard.conn, rows, action, chunk_rows, in_caller_tx)
            .await;
        guard.close = false;
        result
    }

    async fn run_on<DB: Backend, I>(
        &self,
        conn: &mut DB::Connection,
        rows: I,
        action: Action,
        chunk_rows: usize,
        in_caller_tx: bool,
    ) -> Result<BulkReport<M::PrimaryKey>, Error>
    where
        I: IntoIterator<Item = M>,
    {
        if self.commit_each_chunk && in_caller_tx {
            return Err(Error::InvalidArgument {
                model: M::META.name,
                reason: "commit_each_chunk cannot commit inside the caller's transaction; run it on a pool or a connection, or leave it out for one all-or-nothing savepoint".into(),
            });
        }
        let mut rows = rows.into_iter().enumerate().peekable();
        let first: Vec<(usize, M)> = rows.by_ref().take(chunk_rows).collect();
        if first.is_empty() {
            // Nothing to write: no transaction, no statement.
            return Ok(Run::new(self.per_row).finish());
        }
        let single = rows.peek().is_none();
        let call = Call {
            action: &action,
            per_row: self.per_row,
            find: self.find,
            in_caller_tx,
            restartable: !in_caller_tx && (single || self.commit_each_chunk),
            skip_read: skip_read::<DB>(conn, &action, in_caller_tx).await,
            commit_each: self.commit_each_chunk,
            // (Not asked for a call whose first chunk is too small for it: later chunks are not
            // larger.)
            anti_join: first.len() >= write::ANTI_JOIN_MIN_ROWS
                && anti_join_allowed::<DB>(conn, &action, in_caller_tx).await,
            counts_from_read: counts_from_read::<M, DB>(conn, &action, self.per_row).await,
        };
        if self.commit_each_chunk {
            let mut run = Run::new(self.per_row);
            let mut chunk = first;
            loop {
                call.commit_chunk::<M, DB>(conn, &chunk, &mut run).await?;
                chunk = rows.by_ref().take(chunk_rows).collect();
                if chunk.is_empty() {
                    return Ok(run.finish());
                }
            }
        }
        if single {
            // The whole input is in hand: after a deadlock or serialization failure outside the
            // caller's transaction, the call runs again.
            let mut retry = Retry::new(RetryPolicy::Attempts(ATTEMPTS));
            loop {
                let mut run = Run::new(self.per_row);
                let result = async {
                    let mut tx = begin::<DB>(conn, in_caller_tx).await?;
                    call.chunk::<M, DB>(&mut tx, &first, &mut run, 0).await?;
                    tx.commit().await.map_err(|e| bulk_error(e.into(), 0, None))
                }
                .await;
                match result {
                    Ok(()) => return Ok(run.finish()),
                    Err(error)
                        if retry
                            .again_if(&error, call.restartable && call.retry(&error))
                            .await => {}
                    Err(error) => return Err(error),
                }
            }
        }
        // All or nothing over several chunks: each chunk after the first is read from the input,
        // checked and planned while the database writes the one before it (see `overlap`). Any
        // error ends the call and rolls every chunk back, so planning a chunk ahead of the
        // previous one's write changes no outcome.
        let mut run = Run::new(self.per_row);
        let mut tx = begin::<DB>(conn, in_caller_tx).await?;
        let mut chunk = first;
        let mut plan = call.prepare::<M, DB>(&chunk, &run.seen, 0)?;
        let mut next: Vec<(usize, M)> = Vec::with_capacity(chunk_rows);
        loop {
            // The keys a chunk writes are known from its plan: the next chunk is planned against
            // them before this one is written.
            run.seen.apply(std::mem::take(&mut plan.seen));
            let seen = &run.seen;
            let write = call.write_planned::<M, DB>(&mut tx, &chunk, &plan, run.chunks, 0);
            let read_ahead = || {
                let room = chunk_rows - next.len();
                next.extend(rows.by_ref().take(room.min(READ_AHEAD_STEP)));
                if next.len() < chunk_rows && rows.peek().is_some() {
                    return None;
                }
                Some((!next.is_empty()).then(|| call.prepare::<M, DB>(&next, seen, 0)))
            };
            let (written, planned) = overlap(write, read_ahead).await;
            run.record(&chunk, plan, written?);
            match planned {
                None => break,
                Some(planned) => plan = planned?,
            }
            std::mem::swap(&mut chunk, &mut next);
            next.clear();
        }
        drop((chunk, next));
        tx.commit()
            .await
            .map_err(|e| bulk_error(e.into(), 0, None))?;
        Ok(run.finish())
    }
}

/// Input rows read per step of [`overlap`]'s work, between polls of the chunk's write.
const READ_AHEAD_STEP: usize = 128;

/// Awaits `write` while doing `work` in steps on the same task: each step runs while the write
/// waits on the database, which meanwhile runs the statement it sent (SQLite's driver runs it on
/// its own thread), and the write is polled between steps, so that one of several statements
/// goes out as soon as the one before returns. `work` returns `None` until it is done. Once the
/// write is done, what is left of the work runs at once. Returns both results.
async fn overlap<F: std::future::Future, T>(
    write: F,
    mut work: impl FnMut() -> Option<T>,
) -> (F::Output, T) {
    use std::task::Poll;
    let mut write = std::pin::pin!(write);
    let mut written = None;
    let mut done = None;
    std::future::poll_fn(|cx| {
        if written.is_none()
            && let Poll::Ready(output) = write.as_mut().poll(cx)
        {
            written = Some(output);
        }
        while done.is_none() {
            done = work();
            if done.is_none() && written.is_none() {
                // Back to the write after each step: it may have a statement to send.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if written.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (
        written.expect("polled to completion"),
        done.expect("worked to completion"),
    )
}

/// Opens the call's transaction: its own at READ COMMITTED (SQLite: `BEGIN IMMEDIATE`, taking the
/// write lock up front, as a writer that reads first must), or a savepoint in the caller's.
async fn begin<DB: Backend>(
    conn: &mut DB::Connection,
    in_caller_tx: bool,
) -> Result<sqlx::Transaction<'_, DB>, Error> {
    if in_caller_tx {
        return Ok(conn.begin().await?);
    }
    let (prepare, begin) = DB::DIALECT.begin_statements(Some(Isolation::ReadCommitted));
    if let Some(prepare) = prepare {
        crate::ops::execute_plain::<DB>(conn, &prepare).await?;
    }
    Ok(conn.begin_with(sqlx::AssertSqlSafe(begin)).await?)
}

/// Whether an integer value is zero.
fn is_zero(value: &sea_query::Value) -> bool {
    use sea_query::Value;
    matches!(
        value,
        Value::SmallInt(Some(0)) | Value::Int(Some(0)) | Value::BigInt(Some(0))
    )
}

/// One call's settings, for its chunks.
struct Call<'a> {
    action: &'a Action,
    per_row: bool,
    /// Read the primary keys of the rows skip mode skips ([`BulkInsert::get_or_create`]).
    find: bool,
    in_caller_tx: bool,
    /// Whether a failed chunk can be rolled back and written again: outside the caller's
    /// transaction, when the chunk is in hand (the whole input, or one committed chunk).
    restartable: bool,
    /// How MySQL's skip mode reads a chunk's stored keys.
    skip_read: crate::query::Lock,
    /// Each chunk commits on its own ([`BulkInsert::commit_each_chunk`]).
    commit_each: bool,
    /// PostgreSQL's skip-mode anti-join may be used (see [`anti_join_allowed`]).
    anti_join: bool,
    /// SQLite's update mode may count from its aggregated read (see [`counts_from_read`]).
    counts_from_read: bool,
}

/// Whether SQLite's update mode, counts only, may tell updated rows from unchanged ones by its
/// aggregated read, checking only how many rows the upsert wrote (`write::update_sqlite_counts`):
/// not when a trigger on the table (in the main or the temporary schema), or a foreign key of the
/// table to itself (whose actions change its own rows), could make the upsert write other rows
/// than the read found differing, as many of them: then the upsert says which rows it wrote
/// (`RETURNING`). One statement per call. (Found by an independent test: a trigger that refused
/// one predicted update while an insert's trigger changed another stored row.)
async fn counts_from_read<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    action: &Action,
    per_row: bool,
) -> bool {
    if DB::DIALECT != Dialect::Sqlite || per_row || !matches!(action, Action::Update(..)) {
        return false;
    }
    // Names compared as SQLite compares them, without regard to case: a trigger `ON ITEMS` is on
    // the table `items` (found by review).
    let sql = "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE) \
               + (SELECT count(*) FROM sqlite_temp_master WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE) \
               + (SELECT count(*) FROM pragma_foreign_key_list(?1) WHERE \"table\" = ?1 COLLATE NOCASE)";
    let table = vec![sea_query::Value::from(M::META.table)];
    session_value::<DB, i64>(conn, sql, table).await == Some(0)
}

/// Whether PostgreSQL's skip mode (and update mode's insert of new rows) may leave stored rows out
/// by anti-join (`write::skip_on_conflict`): only at READ COMMITTED, where each statement reads
/// the latest committed rows. In the caller's REPEATABLE READ or SERIALIZABLE transaction the
/// anti-join would read the transaction's snapshot, and skip a key whose row another transaction
/// deleted since (and get_or_create would return that row's id), where `ON CONFLICT` sees the
/// deletion and inserts, or reports a serialization failure: there it is not used. The library's
/// own transaction runs at READ COMMITTED; the caller's is asked (one statement per call).
async fn anti_join_allowed<DB: Backend>(
    conn: &mut DB::Connection,
    action: &Action,
    in_caller_tx: bool,
) -> bool {
    if DB::DIALECT != Dialect::Postgres || matches!(action, Action::Fail) {
        return false;
    }
    if !in_caller_tx {
        return true;
    }
    let sql = "SELECT current_setting('transaction_isolation')";
    session_value::<DB, String>(conn, sql, Vec::new())
        .await
        .is_some_and(|level| {
            level.eq_ignore_ascii_case("read committed")
                || level.eq_ignore_ascii_case("read uncommitted")
        })
}

/// What a call asks of the session before it writes (an isolation level, a count from the
/// catalog): the first column of the statement's one row, or `None` when the statement fails,
/// returns no row or another type. Each caller then takes the answer that is safe without it.
async fn session_value<DB: Backend, T: crate::column::Column>(
    conn: &mut DB::Connection,
    sql: &str,
    values: Vec<sea_query::Value>,
) -> Option<T> {
    let row = DB::fetch_optional(conn, sql.into(), sea_query::Values(values))
        .await
        .ok()??;
    T::decode(DB::row_ref(&row), 0).ok()
}

/// The most chunks of one call that skip mode writes under a savepoint of their own on
/// PostgreSQL (its anti-join, see `write::skip_on_conflict`); later chunks use `ON CONFLICT`
/// alone. (Per call: several such calls in one caller's transaction add up.) Each such savepoint is a subtransaction with its own transaction id, and PostgreSQL
/// keeps 64 of them per transaction in shared memory: past that, every snapshot taken by every
/// session while the transaction is open has to look them up in `pg_subtrans`, which slows the
/// whole server. 32 leaves room for the caller's own savepoints.
const ANTI_JOIN_MAX_CHUNKS: usize = 32;

/// How MySQL's skip mode reads a chunk's stored keys: shared under READ COMMITTED (the library's
/// own transaction, or the caller's at that level), exclusive otherwise (see `write::skip_mysql`).
async fn skip_read<DB: Backend>(
    conn: &mut DB::Connection,
    action: &Action,
    in_caller_tx: bool,
) -> crate::query::Lock {
    use crate::query::Lock;
    if DB::DIALECT != Dialect::MySql || !matches!(action, Action::Skip(_)) || !in_caller_tx {
        return Lock::Share;
    }
    // The session's level (MariaDB spells it `tx_isolation`, MySQL 8 `transaction_isolation`); a
    // level set for this transaction alone is not visible, and unknown means exclusive.
    for sql in ["SELECT @@tx_isolation", "SELECT @@transaction_isolation"] {
        if let Some(Some(level)) = session_value::<DB, Option<String>>(conn, sql, Vec::new()).await
        {
            return if level.starts_with("READ-") {
                Lock::Share
            } else {
                Lock::Update
            };
        }
    }
    Lock::Update
}

impl Call<'_> {
    /// Whether running a restartable chunk again can succeed: a deadlock or serialization failure,
    /// or (MySQL) a concurrent writer that stored one of the chunk's keys after it was read.
    fn retry(&self, error: &Error) -> bool {
        error.is_retryable()
            || self
                .action
                .key()
                .is_some_and(|key| write::is_duplicate_of(error, key))
    }

    /// Plans and writes one chunk, and records its outcomes in `run`.
    async fn chunk<M: Model, DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        chunk: &[(usize, M)],
        run: &mut Run<M::PrimaryKey>,
        committed_rows: usize,
    ) -> Result<(), Error> {
        let (plan, written) = self
            .write::<M, DB>(conn, chunk, run, committed_rows)
            .await?;
        run.record(chunk, plan, written);
        Ok(())
    }

    /// Plans and writes one chunk; [`Call::prepare`] then [`Call::write_planned`].
    async fn write<M: Model, DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        chunk: &[(usize, M)],
        run: &Run<M::PrimaryKey>,
        committed_rows: usize,
    ) -> Result<(ChunkPlan, Option<ChunkWrite<M::PrimaryKey>>), Error> {
        let plan = self.prepare::<M, DB>(chunk, &run.seen, committed_rows)?;
        let written = self
            .write_planned::<M, DB>(conn, chunk, &plan, run.chunks, committed_rows)
            .await?;
        Ok((plan, written))
    }

    /// What is decided of a chunk before the database sees it: its values checked, the rows to
    /// write planned against what the earlier chunks wrote (`seen`). Sends nothing.
    fn prepare<M: Model, DB: Backend>(
        &self,
        chunk: &[(usize, M)],
        seen: &Seen,
        committed_rows: usize,
    ) -> Result<ChunkPlan, Error> {
        let resolve = match self.action {
            Action::Fail => Resolve::None,
            Action::Skip(_) => Resolve::FirstWins,
            Action::Update(..) => Resolve::LastWins,
        };
        // Values a backend cannot store exactly are refused before the chunk is written.
        if let Some((input, error)) = crate::check::check_chunk(chunk, DB::DIALECT) {
            return Err(Error::Bulk {
                row: Some(input),
                first_row: chunk[0].0,
                committed_rows,
                source: Box::new(error),
            });
        }
        if DB::DIALECT == Dialect::MySql
            && self.action.explicit_pk()
            && M::META.primary_key_column().auto_increment
            && let Some((input, _)) = chunk.iter().find(|(_, row)| {
                crate::query::key_values_of(row, KeyId::PrimaryKey, DB::DIALECT)
                    .first()
                    .is_some_and(is_zero)
            })
        {
            return Err(Error::Bulk {
                row: Some(*input),
                first_row: chunk[0].0,
                committed_rows,
                source: Box::new(Error::InvalidArgument {
                    model: M::META.name,
                    reason: "a primary key of 0 as the conflict target: MySQL and MariaDB replace 0 in an auto-increment column with a new value (unless sql_mode has NO_AUTO_VALUE_ON_ZERO), so the row would not be written as given; give the row its real id".into(),
                }),
            });
        }
        let plan = plan::plan(chunk, self.action.key(), resolve, seen, DB::DIALECT);
        // Increments and guards are not "the last wins": rows repeating a key must be combined by
        // the caller, or the result would depend on their order and chunking.
        if let Action::Update(_, update) = self.action
            && (!update.increments.is_empty() || update.guard.is_some())
        {
            let repeated = plan
                .repeats
                .iter()
                .map(|(pos, _)| *pos)
                .chain(
                    plan.writers
                        .iter()
                        .filter(|w| matches!(w.tag, Tag::Rewrite { .. }))
                        .map(|w| w.pos),
                )
                .min();
            if let Some(pos) = repeated {
                return Err(Error::Bulk {
                    row: Some(chunk[pos].0),
                    first_row: chunk[0].0,
                    committed_rows,
                    source: Box::new(Error::InvalidArgument {
                        model: M::META.name,
                        reason: "this row repeats the key of another input row, which update_conflicts with an increment or a condition cannot resolve by \"the last wins\" (the result would depend on the rows' order and chunking): combine the rows with one key before the call (add up the increments, keep the newest)".into(),
                    }),
                });
            }
        }
        Ok(plan)
    }

    /// Writes a chunk as planned; `chunks`: how many chunks the call wrote before it. `None` when
    /// the plan writes no row.
    async fn write_planned<M: Model, DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        chunk: &[(usize, M)],
        plan: &ChunkPlan,
        chunks: usize,
        committed_rows: usize,
    ) -> Result<Option<ChunkWrite<M::PrimaryKey>>, Error> {
        if plan.writers.is_empty() {
            return Ok(None);
        }
        let batch = Batch {
            rows: plan.writers.iter().map(|w| &chunk[w.pos].1).collect(),
            keys: plan.writers.iter().map(|w| w.key.as_ref()).collect(),
            fresh: plan.writers.iter().map(|w| w.tag == Tag::Fresh).collect(),
        };
        let settings = write::Settings {
            per_row: self.per_row,
            restartable: self.restartable,
            skip_read: self.skip_read,
            find: self.find,
            anti_join: self.anti_join && (self.commit_each || chunks < ANTI_JOIN_MAX_CHUNKS),
            counts_from_read: self.counts_from_read,
        };
        match write::write::<M, DB>(conn, self.action, &batch, settings).await {
            Ok(written) => Ok(Some(written)),
            Err(error) => {
                // The input row behind the error, where the error or a look at the database
                // identifies it, and the exact values of the violated key.
                let rows: Vec<(usize, &M)> = plan
                    .writers
                    .iter()
                    .map(|w| (chunk[w.pos].0, &chunk[w.pos].1))
                    .collect();
                let plain = *self.action == Action::Fail;
                let error =
                    violation::bulk_error::<M, DB>(conn, &rows, error, chunk[0].0, plain).await;
                Err(error.with_committed(committed_rows))
            }
        }
    }

    /// Writes one chunk in a transaction of its own and commits it, running it again after a
    /// deadlock or serialization failure.
    async fn commit_chunk<M: Model, DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        chunk: &[(usize, M)],
        run: &mut Run<M::PrimaryKey>,
    ) -> Result<(), Error> {
        let committed_rows = chunk[0].0;
        let mut retry = Retry::new(RetryPolicy::Attempts(ATTEMPTS));
        loop {
            let result = async {
                let mut tx = begin::<DB>(conn, self.in_caller_tx).await?;
                let done = self
                    .write::<M, DB>(&mut tx, chunk, run, committed_rows)
                    .await?;
                tx.commit()
                    .await
                    .map_err(|e| bulk_error(e.into(), committed_rows, None).at_chunk(chunk[0].0))?;
                Ok::<_, Error>(done)
            }
            .await;
            match result {
                Ok((plan, written)) => {
                    run.record(chunk, plan, written);
                    return Ok(());
                }
                Err(error) if retry.again_if(&error, self.retry(&error)).await => {}
                Err(error) => return Err(error.with_committed(committed_rows)),
            }
        }
    }
}

/// Wraps an error of a bulk call: where it happened and what is stored.
fn bulk_error(error: Error, committed_rows: usize, row: Option<usize>) -> Error {
    match error {
        already @ Error::Bulk { .. } => already,
        source => Error::Bulk {
            row,
            first_row: 0,
            committed_rows,
            source: Box::new(source),
        },
    }
}

impl Error {
    fn at_chunk(mut self, first: usize) -> Self {
        if let Error::Bulk { first_row, .. } = &mut self {
            *first_row = first;
        }
        self
    }

    /// Says how many input rows are committed; an error from outside the chunk's statements
    /// (opening or committing its transaction) is wrapped so that the count is not lost.
    fn with_committed(self, committed: usize) -> Self {
        match self {
            Error::Bulk {
                row,
                first_row,
                source,
                ..
            } => Error::Bulk {
                row,
                first_row,
                committed_rows: committed,
                source,
            },
            source => Error::Bulk {
                row: None,
                first_row: committed,
                committed_rows: committed,
                source: Box::new(source),
            },
        }
    }
}

/// What a call has done so far, across its chunks.
struct Run<P> {
    seen: Seen,
    /// Per input row, when a per-row report is asked for.
    outcomes: Option<Vec<Option<RowOutcome<P>>>>,
    counts: Counts,
    /// Update mode, counts only: the keys (fingerprints) found unchanged so far, so that a later
    /// chunk that writes one of them again counts it updated instead.
    unchanged_keys: key::FingerprintSet,
    unchanged: u64,
    stale: u64,
    skipped_in_input: u64,
    chunks: usize,
}

impl<P: Clone> Run<P> {
    fn new(per_row: bool) -> Self {
        Run {
            seen: Seen::new(per_row),
            outcomes: per_row.then(Vec::new),
            counts: Counts::default(),
            unchanged_keys: key::FingerprintSet::default(),
            unchanged: 0,
            stale: 0,
            skipped_in_input: 0,
            chunks: 0,
        }
    }

    /// Records a written chunk.
    fn record<M>(&mut self, chunk: &[(usize, M)], plan: ChunkPlan, written: Option<ChunkWrite<P>>) {
        self.chunks += 1;
        if let Some(outcomes) = &mut self.outcomes {
            let end = chunk.last().map_or(0, |(input, _)| input + 1);
            outcomes.resize_with(end.max(outcomes.len()), || None);
        }
        for (pos, repeat) in &plan.repeats {
            self.skipped_in_input += 1;
            if let Some(outcomes) = &mut self.outcomes {
                outcomes[chunk[*pos].0] = Some(match *repeat {
                    Repeat::Duplicate { first } => RowOutcome::SkippedDuplicate { first },
                    Repeat::Superseded { last } => RowOutcome::Superseded { last },
                });
            }
        }
        let rewrites = plan
            .writers
            .iter()
            .filter(|w| matches!(w.tag, Tag::Rewrite { .. }));
        self.skipped_in_input += rewrites.clone().count() as u64;
        match written {
            None => {}
            Some(ChunkWrite::Counts(counts)) => {
                self.counts.inserted += counts.inserted;
                self.counts.updated += counts.updated;
                self.counts.skipped_existing += counts.skipped_existing;
                self.unchanged += counts.unchanged.len() as u64;
                self.stale += counts.stale;
                let fingerprint = |w: usize| {
                    plan.writers[w]
                        .key
                        .as_ref()
                        .map(|k| self.seen.fingerprint(k))
                };
                let found: Vec<u128> = counts
                    .unchanged
                    .iter()
                    .filter_map(|&w| fingerprint(w))
                    .collect();
                let rewritten: Vec<(u128, bool)> = counts
                    .rewrites_written
                    .iter()
                    .filter_map(|&(w, inserted)| Some((fingerprint(w)?, inserted)))
                    .collect();
                self.unchanged_keys.extend(found);
                for (key, inserted) in rewritten {
                    // Found unchanged by an earlier chunk, written now: the key was updated (or,
                    // gone in between, inserted).
                    if self.unchanged_keys.remove(&key) {
                        self.unchanged -= 1;
                        if inserted {
                            self.counts.inserted += 1;
                        } else {
                            self.counts.updated += 1;
                        }
                    }
                }
            }
            Some(ChunkWrite::Rows(rows)) => {
                for (writer, written) in plan.writers.iter().zip(rows) {
                    let input = chunk[writer.pos].0;
                    match writer.tag {
                        Tag::Fresh => {
                            let outcome = match written {
                                Written::Inserted(pk) => {
                                    self.counts.inserted += 1;
                                    RowOutcome::Inserted(pk)
                                }
                                Written::Updated(pk) => {
                                    self.counts.updated += 1;
                                    RowOutcome::Updated(pk)
                                }
                                Written::Unchanged => {
                                    self.unchanged += 1;
                                    RowOutcome::Unchanged
                                }
                                Written::Stale => {
                                    self.stale += 1;
                                    RowOutcome::Stale
                                }
                                Written::Found(pk) => {
                                    self.counts.skipped_existing += 1;
                                    RowOutcome::Found(pk)
                                }
                                Written::SkippedExisting => {
                                    self.counts.skipped_existing += 1;
                                    RowOutcome::SkippedExisting
                                }
                                Written::Added | Written::Changed => {
                                    unreachable!("only a counts-only write leaves out the key")
                                }
                            };
                            if let Some(outcomes) = &mut self.outcomes {
                                outcomes[input] = Some(outcome);
                            }
                        }
                        // The key's outcome moves to this row, now the last with the key; the row
                        // that held it is superseded.
                        Tag::Rewrite { from } => {
                            if let Some(outcomes) = &mut self.outcomes {
                                let mut moved = outcomes[from].take();
                                // Found unchanged by an earlier chunk, written now: updated.
                                match (&moved, written) {
                                    (Some(RowOutcome::Unchanged), Written::Updated(pk)) => {
                                        moved = Some(RowOutcome::Updated(pk));
                                        self.unchanged -= 1;
                                        self.counts.updated += 1;
                                    }
                                    // Gone in between (deleted concurrently) and inserted now.
                                    (Some(RowOutcome::Unchanged), Written::Inserted(pk)) => {
                                        moved = Some(RowOutcome::Inserted(pk));
                                        self.unchanged -= 1;
                                        self.counts.inserted += 1;
                                    }
                                    _ => {}
                                }
                                outcomes[input] = moved;
                                outcomes[from] = Some(RowOutcome::Superseded { last: input });
                            }
                        }
                    }
                }
            }
        }
        self.seen.apply(plan.seen);
    }

    fn finish(self) -> BulkReport<P> {
        let rows = self.outcomes.map(|outcomes| {
            let mut outcomes: Vec<RowOutcome<P>> = outcomes
                .into_iter()
                .map(|o| o.expect("every input row has an outcome"))
                .collect();
            // A superseded row points at the next row with its key; point it at the last, which is
            // the one written. Pointers go forward, so one pass from the end settles them.
            for i in (0..outcomes.len()).rev() {
                if let RowOutcome::Superseded { last } = outcomes[i]
                    && let RowOutcome::Superseded { last: further } = outcomes[last]
                {
                    outcomes[i] = RowOutcome::Superseded { last: further };
                }
            }
            outcomes
        });
        BulkReport {
            inserted: self.counts.inserted,
            skipped_existing: self.counts.skipped_existing,
            skipped_in_input: self.skipped_in_input,
            updated: self.counts.updated,
            unchanged: self.unchanged,
            stale: self.stale,
            chunks: self.chunks,
            rows,
        }
    }
}
