//! How each mode writes a planned chunk on each backend. The statements come from
//! [`super::statements`]; this is where they run.
//!
//! | mode | SQLite, PostgreSQL | MySQL / MariaDB |
//! |---|---|---|
//! | fail | `INSERT` | `INSERT` |
//! | skip | `INSERT … ON CONFLICT (key) DO NOTHING`; on PostgreSQL, for a chunk of 64 rows or more over a key of plain columns, first an anti-join without a conflict clause under a savepoint (see [`skip_on_conflict`]) | locked read of the stored keys, checked `INSERT IGNORE` of the others |
//! | update | SQLite, counts only (no guard or increment, a key of plain columns): one aggregated read of the stored rows and whether they differ, a plain insert of the others, the upsert of the stored ones checked against the read (see [`update_sqlite_counts`]); otherwise: read of the stored keys (PostgreSQL: locked), `INSERT … ON CONFLICT (key) DO NOTHING` of the others (PostgreSQL: the anti-join first, as in skip mode), then `… DO UPDATE` of the stored ones under their stored primary keys (no sequence value drawn) | locked read, `INSERT` of the new rows, one `UPDATE … CASE` of the stored ones, by the (integer) primary keys the read returned or else by key, which must match every row it names |
//!
//! MySQL has no conflict target (`ON DUPLICATE KEY UPDATE` and `INSERT IGNORE` react to every unique
//! key). Skip mode's `INSERT IGNORE` is checked row by row (see [`skip_mysql`]). Update mode inserts
//! plainly; when a concurrent writer stores one of the chunk's keys between the read and the
//! insert, the insert fails on that key, and the chunk is read again and written again (or, in the
//! library's own transaction, the transaction is rolled back and run again).

use std::collections::{HashMap, VecDeque};

use crate::backend::{Backend, Dialect};
use crate::changes::Guard;
use crate::column::Column;
use crate::error::Error;
use crate::meta::KeyId;
use crate::model::Model;
use crate::ops::{decode, execute_plain};
use crate::query::{Lock, Statement};
use crate::violation;

use super::key::KeyValues;
use super::statements::{self, OnKey};

/// What a bulk call does on a conflict, checked and resolved to column indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// A plain insert: a conflict is an error.
    Fail,
    /// Skip rows whose key is stored.
    Skip(KeyId),
    /// Write these columns to the stored row with the key.
    Update(KeyId, Update),
}

/// What update mode writes to a stored row: columns set to the incoming values, columns the incoming
/// values are added to, and the guard under which it writes at all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct Update {
    pub(crate) set: Vec<usize>,
    pub(crate) increments: Vec<usize>,
    pub(crate) guard: Option<Guard>,
}

impl Action {
    pub(crate) fn key(&self) -> Option<KeyId> {
        match self {
            Action::Fail => None,
            Action::Skip(key) | Action::Update(key, _) => Some(*key),
        }
    }

    /// A key given as the conflict target is written as given, the primary key included.
    pub(crate) fn explicit_pk(&self) -> bool {
        self.key() == Some(KeyId::PrimaryKey)
    }
}

/// What the database did with one written row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Written<P> {
    Inserted(P),
    /// Inserted, counts only: its primary key was not read back.
    Added,
    Updated(P),
    /// Updated, counts only: its primary key was not read back.
    Changed,
    /// Update mode: the stored row already held the values; it was not written.
    Unchanged,
    /// Update mode: the guard refused the incoming values; the stored row was not written.
    Stale,
    /// Get-or-create: the row with the key was stored; its primary key.
    Found(P),
    SkippedExisting,
}

/// Counts of what the database did with a chunk's rows whose key it had not written before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) inserted: u64,
    pub(crate) updated: u64,
    pub(crate) skipped_existing: u64,
    /// Positions in the batch of the fresh rows found unchanged (update mode).
    pub(crate) unchanged: Vec<usize>,
    /// Fresh rows the guard refused (update mode).
    pub(crate) stale: u64,
    /// Positions in the batch of the rows that rewrite a key an earlier chunk wrote and that the
    /// database wrote again (their values differed, or the row was gone and is inserted: then
    /// `true`): a key first found unchanged is then updated (or inserted).
    pub(crate) rewrites_written: Vec<(usize, bool)>,
}

/// What writing a chunk reports: one outcome per written row, or counts only.
#[derive(Debug)]
pub(crate) enum ChunkWrite<P> {
    Rows(Vec<Written<P>>),
    Counts(Counts),
}

/// The rows of a chunk to write, in write order, with their keys and whether each is fresh (its key
/// not written by this call before; only fresh rows are counted).
pub(crate) struct Batch<'a, M> {
    pub(crate) rows: Vec<&'a M>,
    pub(crate) keys: Vec<Option<&'a KeyValues>>,
    pub(crate) fresh: Vec<bool>,
}

/// How often a MySQL chunk is read and written again after a concurrent writer stored one of its
/// keys in between; each round sees that writer's row, so more rounds mean keys keep being deleted
/// and inserted as fast as the chunk is read.
const MYSQL_ROUNDS: usize = 8;

/// How often PostgreSQL's update mode reads, locked, the keys that other transactions stored
/// after its first read, and inserts those gone again (see `update_on_conflict`); keys that keep
/// racing after that are upserted by key.
const RACE_ROUNDS: usize = 3;

/// The call's settings that decide how a batch is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Outcomes per row, rather than counts.
    pub(crate) per_row: bool,
    /// The caller can roll the transaction back and run the batch again. Then a MySQL insert that
    /// meets a key a concurrent writer just stored returns that duplicate-key error, for the caller
    /// to restart with: rolling back releases the next-key locks that the failed insert's duplicate
    /// check took, on which concurrent inserters into the same gaps would otherwise deadlock.
    /// Otherwise the batch is read and written again within the transaction.
    pub(crate) restartable: bool,
    /// How MySQL's skip mode reads a chunk's stored keys.
    pub(crate) skip_read: Lock,
    /// Get-or-create: read the primary keys of the rows skip mode skipped.
    pub(crate) find: bool,
    /// Skip mode, and update mode's insert of the rows not stored, may write under a savepoint of
    /// their own on PostgreSQL (see [`skip_on_conflict`]).
    pub(crate) anti_join: bool,
    /// SQLite's update mode, counts only, may count from its aggregated read (no trigger or
    /// self-referencing foreign key on the table; see [`update_sqlite_counts`]).
    pub(crate) counts_from_read: bool,
}

/// Writes a batch: outcomes per row when `settings.per_row`, counts otherwise.
pub(crate) async fn write<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    action: &Action,
    batch: &Batch<'_, M>,
    settings: Settings,
) -> Result<ChunkWrite<M::PrimaryKey>, Error> {
    let Settings {
        per_row,
        restartable,
        skip_read,
        find,
        anti_join,
        counts_from_read,
    } = settings;
    let rounds = if restartable { 1 } else { MYSQL_ROUNDS };
    match (action, DB::DIALECT) {
        (Action::Fail, _) => plain::<M, DB>(conn, batch, per_row).await,
        (Action::Skip(key), _) if find => {
            let written = match DB::DIALECT {
                Dialect::MySql => skip_mysql::<M, DB>(conn, *key, batch, true, skip_read).await?,
                _ => skip_on_conflict::<M, DB>(conn, *key, batch, true, anti_join).await?,
            };
            find_skipped::<M, DB>(conn, *key, batch, written, skip_read).await
        }
        (Action::Skip(key), Dialect::MySql) => {
            skip_mysql::<M, DB>(conn, *key, batch, per_row, skip_read).await
        }
        (Action::Skip(key), _) => {
            skip_on_conflict::<M, DB>(conn, *key, batch, per_row, anti_join).await
        }
        (Action::Update(key, update), Dialect::MySql) => {
            update_mysql::<M, DB>(conn, *key, update, batch, per_row, rounds).await
        }
        (Action::Update(key, update), _) => {
            let fast = (anti_join, counts_from_read);
            update_on_conflict::<M, DB>(conn, *key, update, batch, per_row, fast).await
        }
    }
}

async fn plain<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    batch: &Batch<'_, M>,
    per_row: bool,
) -> Result<ChunkWrite<M::PrimaryKey>, Error> {
    if !per_row {
        let inserted = execute::<DB>(
            conn,
            statements::multi_insert(&batch.rows, None, false, false, DB::DIALECT),
        )
        .await?;
        return Ok(ChunkWrite::Counts(Counts {
            inserted,
            ..Counts::default()
        }));
    }
    let returned = insert_returning::<M, DB>(conn, &batch.rows, None, false).await?;
    if returned.len() != batch.rows.len() {
        // A trigger that drops rows, say: pairing keys with rows would be a guess.
        return Err(missing_row::<M>());
    }
    // Without a conflict clause every row is inserted, and returned in order.
    Ok(ChunkWrite::Rows(
        returned
            .into_iter()
            .map(|(_, pk)| Written::Inserted(pk))
            .collect(),
    ))
}

/// The fewest rows a chunk must have for skip mode's anti-join (see [`skip_on_conflict`]): below it
/// the savepoint's two extra round trips cost more than `ON CONFLICT` would.
pub(crate) const ANTI_JOIN_MIN_ROWS: usize = 64;

/// Skip mode on SQLite and PostgreSQL: `INSERT … ON CONFLICT (key) DO NOTHING`.
///
/// On PostgreSQL, with `anti_join` (at READ COMMITTED only, see `bulk::anti_join_allowed`) and a
/// key of plain columns, a chunk of at least [`ANTI_JOIN_MIN_ROWS`] rows is first written without
/// a conflict clause, leaving out by an anti-join the rows whose key is stored
/// ([`OnKey::SkipStored`]), under a savepoint. `ON CONFLICT`
/// inserts every row speculatively (a second index pass and WAL record per row), which costs more
/// than the anti-join's index probe: this runs at about 1.7 times the rate server-side, and draws
/// no sequence value for the stored rows. When another transaction stores one of the keys in the
/// meantime, the insert waits for it and fails with a duplicate-key error: then the savepoint is
/// rolled back and the chunk written with `ON CONFLICT`, which waits and skips that row, exactly as
/// without the anti-join. Any other error stands.
async fn skip_on_conflict<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    batch: &Batch<'_, M>,
    per_row: bool,
    anti_join: bool,
) -> Result<ChunkWrite<M::PrimaryKey>, Error> {
    if anti_join_opened::<M, DB>(conn, key, batch.rows.len(), anti_join).await? {
        let result = skip_rows::<M, DB>(conn, key, batch, per_row, OnKey::SkipStored(key)).await;
        if let Some(written) = anti_join_closed::<DB, _>(conn, result).await? {
            return Ok(written);
        }
    }
    skip_rows::<M, DB>(conn, key, batch, per_row, OnKey::DoNothing(key)).await
}

/// Whether to insert `rows` rows with [`OnKey::SkipStored`] (see [`skip_on_conflict`]); if so, its
/// savepoint is open, for [`anti_join_closed`] to close. (Not one function taking the insert as a
/// closure: an async closure over the connection would make the caller's future lose `Send`.)
async fn anti_join_opened<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    rows: usize,
    anti_join: bool,
) -> Result<bool, Error> {
    if !anti_join
        || rows < ANTI_JOIN_MIN_ROWS
        || !statements::skips_by_anti_join::<M>(key, DB::DIALECT)
    {
        return Ok(false);
    }
    execute_plain::<DB>(conn, "SAVEPOINT model_runtime_skip").await?;
    Ok(true)
}

/// Closes the savepoint [`anti_join_opened`] opened, after the insert's `result`: its value, or
/// `None` after a duplicate-key error (the savepoint rolled back: write the rows again with
/// [`OnKey::DoNothing`]). Any other error stands.
async fn anti_join_closed<DB: Backend, T>(
    conn: &mut DB::Connection,
    result: Result<T, Error>,
) -> Result<Option<T>, Error> {
    match result {
        Ok(written) => {
            execute_plain::<DB>(conn, "RELEASE SAVEPOINT model_runtime_skip").await?;
            Ok(Some(written))
        }
        Err(error) if is_unique_violation(&error) => {
            execute_plain::<DB>(conn, "ROLLBACK TO SAVEPOINT model_runtime_skip").await?;
            execute_plain::<DB>(conn, "RELEASE SAVEPOINT model_runtime_skip").await?;
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// Whether `error` is the database's duplicate-key error, on any unique constraint.
fn is_unique_violation(error: &Error) -> bool {
    error.unique_violation().is_some()
        || error
            .as_database_error()
            .is_some_and(|e| e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// Skip mode's insert with `on_key` ([`OnKey::DoNothing`] or [`OnKey::SkipStored`]): every row it
/// does not return (or count) was skipped as stored.
async fn skip_rows<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    batch: &Batch<'_, M>,
    per_row: bool,
    on_key: OnKey<'_>,
) -> Result<ChunkWrite<M::PrimaryKey>, Error> {
    let explicit_pk = key == KeyId::PrimaryKey;
    let on_key = Some(on_key);
    if !per_row {
        let statement =
            statements::multi_insert(&batch.rows, on_key, explicit_pk, false, DB::DIALECT);
        let inserted = execute::<DB>(conn, statement).await?;
        return Ok(ChunkWrite::Counts(Counts {
            inserted,
            skipped_existing: batch.rows.len() as u64 - inserted,
            ..Counts::default()
        }));
    }
    let returned = insert_returning::<M, DB>(conn, &batch.rows, on_key, explicit_pk).await?;
    let mut by_key = group(returned);
    Ok(ChunkWrite::Rows(
        batch
            .keys
            .iter()
            .map(|k| match take(&mut by_key, *k) {
                Some(pk) => Written::Inserted(pk),
                None => Written::SkippedExisting,
            })
            .collect(),
    ))
}

async fn update_on_conflict<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    update: &Update,
    batch: &Batch<'_, M>,
    per_row: bool,
    (anti_join, counts_from_read): (bool, bool),
) -> Result<ChunkWrite<M::PrimaryKey>, Error> {
    let dialect = DB::DIALECT;
    let meta = M::META;
    let explicit_pk = key == KeyId::PrimaryKey;
    let mut outcomes: Vec<Option<Written<M::PrimaryKey>>> =
        (0..batch.rows.len()).map(|_| None).collect();
    // Rows whose key is stored are read first (locked on PostgreSQL, in key order; SQLite's
    // transaction already holds the write lock), and upserted under their stored primary key: an
    // `INSERT … ON CONFLICT` draws a sequence value for every row it names, whether it inserts it
    // or not, unless the row names its primary key. (With a key that is the primary key, or a
    // primary key that is not the database's to assign, nothing is drawn anyway.) The lock keeps
    // the row from being deleted or re-keyed before the upsert finds it under its key.
    let read_first = !explicit_pk && meta.columns[meta.primary_key].auto_increment;
    // (The aggregated read binds each row's position, key and listed values: within the bind
    // limit, or the general path; found by review.)
    let read_binds = batch.rows.len() * (1 + meta.key_columns(key).len() + update.set.len());
    if read_first
        && counts_from_read
        && dialect == Dialect::Sqlite
        && !per_row
        && update.guard.is_none()
        && update.increments.is_empty()
        && !update.set.is_empty()
        && read_binds <= dialect.bind_limit()
        && statements::key_is_plain::<M>(key)
    {
        return update_sqlite_counts::<M, DB>(conn, key, update, batch).await;
    }
    let mut known: Vec<usize> = Vec::new();
    let mut known_pks: Vec<sea_query::Value> = Vec::new();
    let mut others: Vec<usize> = Vec::new();
    // The rows read (whole: the guard below is judged against them, as nothing changes them
    // until the upsert, which leaves a refused row as it is).
    let mut stored = HashMap::new();
    if read_first {
        stored = stored_rows::<M, DB>(
            conn,
            key,
            batch.keys.iter().flatten().copied(),
            Lock::Update,
        )
        .await?;
        for (i, k) in batch.keys.iter().enumerate() {
            match k.and_then(|k| stored.get(k)) {
                Some((pk, _)) => {
                    known.push(i);
                    known_pks.push(pk.to_value(dialect));
                }
                None => others.push(i),
            }
        }
    } else {
        others = (0..batch.rows.len()).collect();
    }
    // The others: `ON CONFLICT (key) DO NOTHING RETURNING` inserts the new rows and says which they
    // are (it waits for a concurrent inserter of the same key and then conflicts); a row it passes
    // over was stored a moment ago and is upserted below like the known ones, without a stored
    // primary key. Each statement runs over rows in key order. PostgreSQL's `xmax` is no portable
    // way to tell an insert from an update. A row deleted concurrently before the upsert is
    // inserted by it and reported updated.
    if read_first && dialect == Dialect::Sqlite && !per_row {
        // SQLite: the read is the truth for the whole transaction (one writer at a time, and a
        // write over a snapshot another connection has since changed fails as busy), so every
        // other row is new: a plain insert, and no row is streamed back for it (sqlx hands every
        // returned row from its SQLite thread to the caller one at a time). A conflict on the key
        // would be an error, which the call runs again.
        insert_fresh::<M, DB>(conn, key, batch, &others, false).await?;
        for &i in &others {
            outcomes[i] = Some(Written::Added);
        }
    } else if !others.is_empty() {
        let rows: Vec<&M> = others.iter().map(|&i| batch.rows[i]).collect();
        // PostgreSQL: by anti-join under a savepoint where that applies (see `skip_on_conflict`).
        let mut inserted = None;
        if anti_join_opened::<M, DB>(conn, key, rows.len(), anti_join).await? {
            let on_key = Some(OnKey::SkipStored(key));
            let result = insert_returning::<M, DB>(conn, &rows, on_key, explicit_pk).await;
            inserted = anti_join_closed::<DB, _>(conn, result).await?;
        }
        let inserted = match inserted {
            Some(inserted) => inserted,
            None => {
                let on_key = Some(OnKey::DoNothing(key));
                insert_returning::<M, DB>(conn, &rows, on_key, explicit_pk).await?
            }
        };
        let mut inserted = group(inserted);
        for &i in &others {
            outcomes[i] = take(&mut inserted, batch.keys[i]).map(Written::Inserted);
        }
    }
    let mut raced: Vec<usize> = others
        .into_iter()
        .filter(|&i| outcomes[i].is_none())
        .collect();
    // `DO UPDATE … WHERE <guard> AND <a listed column differs>`: a row that already holds the
    // values, or that the guard refuses, is neither written nor returned (but is locked).
    if !known.is_empty() {
        let rows: Vec<&M> = known.iter().map(|&i| batch.rows[i]).collect();
        for (n, pk) in upsert_stored::<M, DB>(conn, &rows, &known_pks, key, update).await? {
            outcomes[known[n]] = Some(Written::Updated(pk));
        }
    }
    // PostgreSQL: a raced key was stored by another transaction after the read (the insert
    // waited for it to commit). Its row is read now, locked, and upserted under its primary key
    // like the known ones: an upsert by key alone would insert the row if that transaction's
    // successor deleted it meanwhile, and report it updated (PostgreSQL has no portable way to
    // tell). A key gone again is inserted again. A few rounds; what still races after them is
    // upserted by key, as before.
    if read_first && dialect == Dialect::Postgres {
        for _ in 0..RACE_ROUNDS {
            if raced.is_empty() {
                break;
            }
            let keys = raced.iter().filter_map(|&i| batch.keys[i]);
            let found = stored_rows::<M, DB>(conn, key, keys, Lock::Update).await?;
            let (late, gone): (Vec<usize>, Vec<usize>) = raced
                .iter()
                .partition(|&&i| batch.keys[i].is_some_and(|k| found.contains_key(k)));
            if !late.is_empty() {
                let rows: Vec<&M> = late.iter().map(|&i| batch.rows[i]).collect();
                let pks: Vec<sea_query::Value> = late
                    .iter()
                    .map(|&i| {
                        let (pk, _) = &found[batch.keys[i].expect("found by its key")];
                        pk.to_value(dialect)
                    })
                    .collect();
                for (n, pk) in upsert_stored::<M, DB>(conn, &rows, &pks, key, update).await? {
                    outcomes[late[n]] = Some(Written::Updated(pk));
                }
                known.extend(late);
            }
            stored.extend(found);
            raced = Vec::new();
            if !gone.is_empty() {
                let rows: Vec<&M> = gone.iter().map(|&i| batch.rows[i]).collect();
                let on_key = Some(OnKey::DoNothing(key));
                let inserted = insert_returning::<M, DB>(conn, &rows, on_key, explicit_pk).await?;
                let mut inserted = group(inserted);
                for &i in &gone {
                    outcomes[i] = take(&mut inserted, batch.keys[i]).map(Written::Inserted);
                    if outcomes[i].is_none() {
                        raced.push(i);
                    }
                }
            }
        }
    }
    if !raced.is_empty() {
        let rows: Vec<&M> = raced.iter().map(|&i| batch.rows[i]).collect();
        let updated =
            insert_returning::<M, DB>(conn, &rows, Some(OnKey::DoUpdate(key, update)), explicit_pk)
                .await?;
        let mut updated = group(updated);
        for &i in &raced {
            outcomes[i] = take(&mut updated, batch.keys[i]).map(Written::Updated);
        }
    }
    let mut not_written = Vec::new();
    for i in known.into_iter().chain(raced) {
        if outcomes[i].is_none() {
            if update.guard.is_none() {
                outcomes[i] = Some(Written::Unchanged);
            } else {
                not_written.push(i);
            }
        }
    }
    if let Some(guard) = update.guard
        && !not_written.is_empty()
    {
        // Which of them the guard refused: the stored rows against the incoming values. Those
        // read first are as read; the others (stored concurrently after that read) are read now,
        // locked by the upsert above.
        let unread: Vec<&KeyValues> = not_written
            .iter()
            .filter_map(|&i| batch.keys[i])
            .filter(|k| !stored.contains_key(*k))
            .collect();
        if !unread.is_empty() {
            stored.extend(stored_rows::<M, DB>(conn, key, unread.into_iter(), Lock::None).await?);
        }
        for i in not_written {
            let (_, row) =
                batch.keys[i]
                    .and_then(|k| stored.get(k))
                    .ok_or(Error::RowNotVisible {
                        model: M::META.name,
                    })?;
            let admits = guard.admits(
                &row.column_value(guard.column, dialect),
                &batch.rows[i].column_value(guard.column, dialect),
                dialect,
            );
            outcomes[i] = Some(if admits {
                Written::Unchanged
            } else {
                Written::Stale
            });
        }
    }
    let outcomes = outcomes.into_iter().map(|o| o.expect("every row settled"));
    if per_row {
        return Ok(ChunkWrite::Rows(outcomes.collect()));
    }
    Ok(ChunkWrite::Counts(count(outcomes, &batch.fresh)))
}

/// SQLite's update mode, counts only, for a key of plain columns and listed columns set to the
/// incoming values (no guard, no increment): the chunk in at most three statements that stream one row
/// back in all, where the general path streams one per stored row twice (sqlx hands every row from
/// its SQLite thread to the caller one at a time, which costs more than SQLite's own work).
///
/// 1. One aggregated read ([`statements::stored_differs`]): for each stored row of the chunk, its
///    position, its primary key, and whether a listed column differs (SQLite's own `IS NOT`, as
///    the upsert's condition compares). The library's `BEGIN IMMEDIATE` (or the caller's
///    transaction, whose write is refused as busy if another connection wrote since its read)
///    keeps it true until the writes.
/// 2. The other rows: a plain insert, not read back.
/// 3. The stored rows the read found differing, and only those (when none differs, nothing is
///    sent): the upsert under their stored primary keys, without `RETURNING`, under a savepoint.
///    It must write exactly as many rows as it names; if it does not (a column whose type
///    converts the incoming value on the way in, so that the read's comparison and the upsert's,
///    against the converted value, disagree; or something changed the rows since the read), the
///    savepoint is rolled back and every stored row upserted again with `RETURNING`, which says
///    exactly which rows it wrote. (An `UPDATE … FROM (VALUES …)` by primary key, a rowid seek
///    instead of the key's index, was tried and measured about 10% faster on changed rows, but it
///    compares as the read does, so such a column's unchanged value was counted updated.)
async fn update_sqlite_counts<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    update: &Update,
    batch: &Batch<'_, M>,
) -> Result<ChunkWrite<M::PrimaryKey>, Error> {
    let dialect = DB::DIALECT;
    let Statement { sql, values } = statements::stored_differs::<M>(&batch.rows, key, &update.set);
    let found = DB::fetch_all(conn, sql, values).await?;
    let listed = match found.first() {
        Some(row) => <Option<String> as Column>::decode(DB::row_ref(row), 0).map_err(|source| {
            Error::Decode {
                model: M::META.name,
                source,
            }
        })?,
        None => None,
    };
    // `position:primary key:differs`, comma-separated.
    let mut stored: Vec<Option<(i64, bool)>> = vec![None; batch.rows.len()];
    for item in listed
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let mut parts = item.split(':');
        let parsed = (|| {
            let n: usize = parts.next()?.parse().ok()?;
            let pk: i64 = parts.next()?.parse().ok()?;
            let differs = parts.next()? == "1";
            Some((n, pk, differs))
        })();
        match parsed {
            Some((n, pk, differs)) if n < stored.len() && stored[n].is_none() => {
                stored[n] = Some((pk, differs));
            }
            _ => return Err(missing_row::<M>()),
        }
    }
    let mut outcomes: Vec<Written<M::PrimaryKey>> = Vec::with_capacity(batch.rows.len());
    let (mut known, mut others) = (Vec::new(), Vec::new());
    for (i, s) in stored.iter().enumerate() {
        match s {
            Some(_) => known.push(i),
            None => others.push(i),
        }
        outcomes.push(Written::Added);
    }
    // A conflict on the key here would be an error, which the call runs again (see the general
    // path's plain insert).
    insert_fresh::<M, DB>(conn, key, batch, &others, false).await?;
    // The rows at these positions, with the primary keys the read found for them.
    let stored_rows = |at: &[usize]| -> (Vec<&M>, Vec<sea_query::Value>) {
        at.iter()
            .map(|&i| {
                let pk = sea_query::Value::BigInt(stored[i].map(|(pk, _)| pk));
                (batch.rows[i], pk)
            })
            .unzip()
    };
    // Only the rows found differing are written: an unchanged row costs nothing more than the read.
    let differing: Vec<usize> = known
        .iter()
        .copied()
        .filter(|&i| stored[i].is_some_and(|(_, differs)| differs))
        .collect();
    for &i in &known {
        outcomes[i] = Written::Unchanged;
    }
    if !differing.is_empty() {
        let (rows, pks) = stored_rows(&differing);
        execute_plain::<DB>(conn, "SAVEPOINT model_runtime_upsert").await?;
        let statement = statements::multi_insert_with(
            &rows,
            Some(&pks),
            Some(OnKey::DoUpdate(key, update)),
            false,
            statements::Returning::Nothing,
            dialect,
        );
        let written = DB::execute(conn, statement.sql, statement.values)
            .await
            .map_err(|error| violation::classify::<M>(error.into(), None, dialect))?
            .rows_affected;
        if written == differing.len() as u64 {
            execute_plain::<DB>(conn, "RELEASE SAVEPOINT model_runtime_upsert").await?;
            for &i in &differing {
                outcomes[i] = Written::Changed;
            }
        } else {
            execute_plain::<DB>(conn, "ROLLBACK TO SAVEPOINT model_runtime_upsert").await?;
            execute_plain::<DB>(conn, "RELEASE SAVEPOINT model_runtime_upsert").await?;
            let (rows, pks) = stored_rows(&known);
            for (n, _) in upsert_stored::<M, DB>(conn, &rows, &pks, key, update).await? {
                outcomes[known[n]] = Written::Changed;
            }
        }
    }
    Ok(ChunkWrite::Counts(count(
        outcomes.into_iter(),
        &batch.fresh,
    )))
}

/// Get-or-create: the primary keys of the rows skip mode skipped, read in one `SELECT` (on MySQL
/// with the lock its skip read took, which sees the latest committed row even in a REPEATABLE READ
/// snapshot; elsewhere a plain read, which sees the row the insert conflicted with: PostgreSQL's
/// REPEATABLE READ raised a serialization failure instead if it could not). A skipped row whose key
/// is gone by then (deleted concurrently) is [`Error::RowNotVisible`], which is retryable.
async fn find_skipped<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    batch: &Batch<'_, M>,
    written: ChunkWrite<M::PrimaryKey>,
    skip_read: Lock,
) -> Result<ChunkWrite<M::PrimaryKey>, Error> {
    let ChunkWrite::Rows(mut rows) = written else {
        unreachable!("get_or_create writes with a per-row report")
    };
    let skipped: Vec<usize> = (0..rows.len())
        .filter(|&i| matches!(rows[i], Written::SkippedExisting))
        .collect();
    if skipped.is_empty() {
        return Ok(ChunkWrite::Rows(rows));
    }
    let lock = if DB::DIALECT == Dialect::MySql {
        skip_read
    } else {
        Lock::None
    };
    let stored = stored_keys::<M, DB>(
        conn,
        key,
        skipped.iter().filter_map(|&i| batch.keys[i]),
        lock,
    )
    .await?;
    for i in skipped {
        let pk = batch.keys[i]
            .and_then(|k| stored.get(k))
            .ok_or(Error::RowNotVisible {
                model: M::META.name,
            })?;
        rows[i] = Written::Found(pk.clone());
    }
    Ok(ChunkWrite::Rows(rows))
}

/// The counts of a batch's outcomes: those of its fresh rows, and which rewrites were written.
fn count<P>(outcomes: impl Iterator<Item = Written<P>>, fresh: &[bool]) -> Counts {
    let mut counts = Counts::default();
    for (i, (outcome, fresh)) in outcomes.zip(fresh).enumerate() {
        match outcome {
            Written::Updated(_) | Written::Changed if !fresh => {
                counts.rewrites_written.push((i, false))
            }
            Written::Inserted(_) | Written::Added if !fresh => {
                counts.rewrites_written.push((i, true))
            }
            _ if !fresh => {}
            Written::Inserted(_) | Written::Added => counts.inserted += 1,
            Written::Updated(_) | Written::Changed => counts.updated += 1,
            Written::Unchanged => counts.unchanged.push(i),
            Written::Stale => counts.stale += 1,
            Written::Found(_) => counts.skipped_existing += 1,
            Written::SkippedExisting => counts.skipped_existing += 1,
        }
    }
    counts
}

async fn skip_mysql<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    batch: &Batch<'_, M>,
    per_row: bool,
    read: Lock,
) -> Result<ChunkWrite<M::PrimaryKey>, Error> {
    // A locking read (through the key's index): it waits for a concurrent inserter of one of the
    // keys to finish and sees the latest committed rows in any isolation level. Under READ
    // COMMITTED (the library's own transaction) it is shared: it takes no gap locks, and never waits
    // for the shared locks a concurrent insert's duplicate check holds. Under the caller's
    // REPEATABLE READ it also locks the gaps of absent keys, where shared locks let every call in
    // and their inserts deadlock; there it is exclusive (FOR UPDATE), which makes calls over the
    // same stored keys queue.
    let stored =
        stored_keys::<M, DB>(conn, key, batch.keys.iter().flatten().copied(), read).await?;
    let fresh = fresh_rows(batch, &stored);
    let mut outcomes: Vec<Written<M::PrimaryKey>> = (0..batch.rows.len())
        .map(|_| Written::SkippedExisting)
        .collect();
    // Rows with a NULL in the key collide with nothing on it: a plain insert, whose errors are the
    // database's own.
    let (keyed, unkeyed): (Vec<usize>, Vec<usize>) =
        fresh.iter().partition(|&&i| batch.keys[i].is_some());
    if !unkeyed.is_empty() {
        for (i, pk) in insert_fresh::<M, DB>(conn, key, batch, &unkeyed, true).await? {
            outcomes[i] = Written::Inserted(pk);
        }
    }
    if !keyed.is_empty() {
        // A key a concurrent call stores between the read and the insert must be skipped, not
        // fail the chunk: a failed insert would be undone but keep its duplicate check's gap
        // locks, on which concurrent inserters deadlock, and running the chunk again would
        // multiply them. `INSERT IGNORE` passes over that row instead. It also passes over, or
        // adjusts, what must stay an error (a duplicate on another unique key, a value MySQL
        // would refuse), so every row is checked: a row returned must hold exactly the values
        // sent, and a row passed over must have its key stored by now. Anything else undoes the
        // insert (a savepoint) and runs it plainly, for the database's own error.
        execute_plain::<DB>(conn, "SAVEPOINT model_runtime_ignore").await?;
        match insert_ignored::<M, DB>(conn, key, batch, &keyed, read).await {
            Ok(inserted) => {
                // The savepoint is left in place (released at `COMMIT`, or replaced by the next
                // chunk's): one statement less, and none between the check above and the next.
                for (i, pk) in inserted {
                    outcomes[i] = Written::Inserted(pk);
                }
            }
            Err(Anomaly::Database(error)) => return Err(error),
            Err(Anomaly::Checked) => {
                // A savepoint that no longer exists (1305): the transaction was rolled back
                // without an error reported (see `insert_ignored`).
                execute_plain::<DB>(conn, "ROLLBACK TO SAVEPOINT model_runtime_ignore")
                    .await
                    .map_err(|error| {
                        if error.mysql_error_number() == Some(1305) {
                            Error::WriteLost {
                                model: M::META.name,
                            }
                        } else {
                            error
                        }
                    })?;
                // The plain insert fails with the real error; should it not (what made MySQL
                // adjust or pass over a row went away meanwhile), its rows are simply inserted.
                for (i, pk) in insert_fresh::<M, DB>(conn, key, batch, &keyed, true).await? {
                    outcomes[i] = Written::Inserted(pk);
                }
            }
        }
    }
    if !per_row {
        let inserted = outcomes
            .iter()
            .filter(|o| matches!(o, Written::Inserted(_)))
            .count() as u64;
        return Ok(ChunkWrite::Counts(Counts {
            inserted,
            skipped_existing: batch.rows.len() as u64 - inserted,
            ..Counts::default()
        }));
    }
    Ok(ChunkWrite::Rows(outcomes))
}

/// Why a checked `INSERT IGNORE` cannot stand.
enum Anomaly {
    /// The database failed the statement (or a read after it): its error.
    Database(Error),
    /// MySQL adjusted a value or passed over a row for another reason than a key a concurrent
    /// call stored: the insert must be undone and run plainly.
    Checked,
}

impl From<Error> for Anomaly {
    fn from(error: Error) -> Self {
        Anomaly::Database(error)
    }
}

/// `INSERT IGNORE … RETURNING` of the batch rows at `at` (none with a NULL in the key), checked:
/// the inserted rows' positions and primary keys, or why it cannot stand.
async fn insert_ignored<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    batch: &Batch<'_, M>,
    at: &[usize],
    read: Lock,
) -> Result<Vec<(usize, M::PrimaryKey)>, Anomaly> {
    let dialect = DB::DIALECT;
    let explicit_pk = key == KeyId::PrimaryKey;
    let rows: Vec<&M> = at.iter().map(|&i| batch.rows[i]).collect();
    let Statement { sql, values } = statements::insert_ignore(&rows, explicit_pk);
    let returned = DB::fetch_all(conn, sql, values)
        .await
        .map_err(|error| violation::classify::<M>(error.into(), None, dialect))?;
    let mut by_key: HashMap<Option<KeyValues>, VecDeque<(M, M::PrimaryKey)>> = HashMap::new();
    for r in &returned {
        let model = decode::<M, DB>(r)?;
        let k = KeyValues::of(&model, key, dialect);
        by_key
            .entry(k)
            .or_default()
            .push_back((model, primary_key::<M, DB>(r)?));
    }
    let columns = statements::insert_columns::<M>(explicit_pk);
    let mut inserted = Vec::with_capacity(at.len());
    let mut passed_over = Vec::new();
    for &i in at {
        match by_key
            .get_mut(&batch.keys[i].cloned())
            .and_then(VecDeque::pop_front)
        {
            Some((stored_row, pk)) => {
                let same = columns.iter().all(|&c| {
                    crate::value::same_value(
                        &stored_row.column_value(c, dialect),
                        &batch.rows[i].column_value(c, dialect),
                    )
                });
                if !same {
                    return Err(Anomaly::Checked);
                }
                inserted.push((i, pk));
            }
            None => passed_over.push(i),
        }
    }
    // A returned row that matches no row sent: a key column was adjusted.
    if by_key.values().any(|rows| !rows.is_empty()) {
        return Err(Anomaly::Checked);
    }
    // One locking read of every key sent, the last statement before the chunk's next locking
    // statement or `COMMIT`: a row passed over must have its key stored by now (by a concurrent
    // call), and an inserted row must be stored with the primary key returned. MariaDB's IGNORE
    // also turns a deadlock into a warning: on Galera, a node's applier that aborts this
    // transaction while the insert runs (a write set from another node holding one of its keys)
    // rolls the whole transaction back, and yet the insert returns the rows it had inserted, and
    // the statements after it run outside any transaction, up to a `COMMIT` that answers OK (seen
    // in the cluster tests, a few runs in a hundred: `@@in_transaction` was 0 after the insert,
    // with one warning). The rows it returned are then absent here, which is `WriteLost`; and an
    // abort during this read is reported by it, as a locking read reports it.
    let now =
        stored_keys::<M, DB>(conn, key, at.iter().filter_map(|&i| batch.keys[i]), read).await?;
    if passed_over
        .iter()
        .any(|&i| !batch.keys[i].is_some_and(|k| now.contains_key(k)))
    {
        return Err(Anomaly::Checked);
    }
    let stored_as_returned = inserted.iter().all(|(i, pk)| {
        batch.keys[*i]
            .and_then(|k| now.get(k))
            .is_some_and(|stored| {
                crate::value::same_value(&stored.to_value(dialect), &pk.to_value(dialect))
            })
    });
    if !stored_as_returned {
        return Err(Anomaly::Database(Error::WriteLost {
            model: M::META.name,
        }));
    }
    Ok(inserted)
}

async fn update_mysql<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    update: &Update,
    batch: &Batch<'_, M>,
    per_row: bool,
    rounds: usize,
) -> Result<ChunkWrite<M::PrimaryKey>, Error> {
    // The stored rows are locked (FOR UPDATE), so that the update below writes the rows this read
    // found; in the library's READ COMMITTED transaction that takes no gap locks.
    let mut round = 1;
    let (stored, inserted) = loop {
        let stored = stored_rows::<M, DB>(
            conn,
            key,
            batch.keys.iter().flatten().copied(),
            Lock::Update,
        )
        .await?;
        let fresh = fresh_rows(batch, &stored);
        match insert_fresh::<M, DB>(conn, key, batch, &fresh, true).await {
            Err(error) if round < rounds && is_duplicate_of(&error, key) => round += 1,
            Err(error) => return Err(error),
            Ok(inserted) => break (stored, inserted),
        }
    };
    // The stored rows are locked and read: those the guard refuses, and those whose listed columns
    // already hold the incoming values (MariaDB writes a row whose bytes change; so does this
    // comparison), are left alone. An increment always writes.
    let dialect = DB::DIALECT;
    let unchanged = |row: &M, stored: &M| {
        update.increments.is_empty()
            && update.set.iter().all(|&c| {
                crate::value::same_value(
                    &row.column_value(c, dialect),
                    &stored.column_value(c, dialect),
                )
            })
    };
    let refused = |row: &M, stored: &M| {
        update.guard.is_some_and(|guard: Guard| {
            !guard.admits(
                &stored.column_value(guard.column, dialect),
                &row.column_value(guard.column, dialect),
                dialect,
            )
        })
    };
    let outcome = |i: usize| -> Option<Written<M::PrimaryKey>> {
        let (pk, stored) = batch.keys[i].and_then(|k| stored.get(k))?;
        Some(if refused(batch.rows[i], stored) {
            Written::Stale
        } else if unchanged(batch.rows[i], stored) {
            Written::Unchanged
        } else {
            Written::Updated(pk.clone())
        })
    };
    let updating: Vec<usize> = (0..batch.rows.len())
        .filter(|&i| matches!(outcome(i), Some(Written::Updated(_))))
        .collect();
    if !updating.is_empty() {
        let updates: Vec<&M> = updating.iter().map(|&i| batch.rows[i]).collect();
        // Where rows are addressed by primary key: the one of the stored row each updates (locked
        // above).
        let pks: Option<Vec<sea_query::Value>> =
            statements::updates_by_primary_key::<M>().then(|| {
                updating
                    .iter()
                    .filter_map(|&i| batch.keys[i].and_then(|k| stored.get(k)))
                    .map(|(_, stored)| stored.column_value(M::META.primary_key, dialect))
                    .collect()
            });
        let statement = statements::update_by_case(&updates, pks.as_deref(), key, update, dialect);
        // Every row is locked and found, and the connection counts rows matched (not only those
        // changed): any other count means a row was not addressed as the read found it.
        let matched = execute::<DB>(conn, statement).await?;
        if matched != updates.len() as u64 {
            return Err(missing_row::<M>());
        }
    }
    let mut inserted = inserted;
    let outcomes = (0..batch.rows.len()).map(|i| match outcome(i) {
        Some(written) => written,
        None => {
            debug_assert_eq!(inserted.front().map(|(at, _)| *at), Some(i));
            Written::Inserted(inserted.pop_front().expect("one per fresh row").1)
        }
    });
    if !per_row {
        return Ok(ChunkWrite::Counts(count(outcomes, &batch.fresh)));
    }
    Ok(ChunkWrite::Rows(outcomes.collect()))
}

/// The positions in the batch of the rows whose key is not among `stored`.
fn fresh_rows<M, P>(batch: &Batch<'_, M>, stored: &HashMap<KeyValues, P>) -> Vec<usize> {
    batch
        .keys
        .iter()
        .enumerate()
        .filter(|(_, k)| k.is_none_or(|k| !stored.contains_key(k)))
        .map(|(i, _)| i)
        .collect()
}

/// Inserts the rows of the batch at `fresh` in one plain statement; with `returning`, their
/// primary keys, with their positions in the batch.
async fn insert_fresh<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    batch: &Batch<'_, M>,
    fresh: &[usize],
    returning: bool,
) -> Result<VecDeque<(usize, M::PrimaryKey)>, Error> {
    if fresh.is_empty() {
        return Ok(VecDeque::new());
    }
    let rows: Vec<&M> = fresh.iter().map(|&i| batch.rows[i]).collect();
    let explicit_pk = key == KeyId::PrimaryKey;
    if !returning {
        let Statement { sql, values } =
            statements::multi_insert(&rows, None, explicit_pk, false, DB::DIALECT);
        // Classified, so that a duplicate on the key itself is recognised and the chunk read again.
        DB::execute(conn, sql, values)
            .await
            .map_err(|error| violation::classify::<M>(error.into(), None, DB::DIALECT))?;
        return Ok(VecDeque::new());
    }
    let returned = insert_returning::<M, DB>(conn, &rows, None, explicit_pk).await?;
    if returned.len() != fresh.len() {
        return Err(missing_row::<M>());
    }
    Ok(fresh
        .iter()
        .copied()
        .zip(returned.into_iter().map(|(_, pk)| pk))
        .collect())
}

/// Whether `error` is a duplicate on `key` itself (a concurrent writer stored the key), rather than
/// on another constraint (which stays an error).
pub(crate) fn is_duplicate_of(error: &Error, key: KeyId) -> bool {
    error.unique_violation().and_then(|v| v.key()) == Some(key)
}

/// Runs a multi-row insert with `RETURNING` and reads every returned row to the end: each row's key
/// (`None` for a NULL in it) and primary key, in the order returned.
async fn insert_returning<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    rows: &[&M],
    on_key: Option<OnKey<'_>>,
    explicit_pk: bool,
) -> Result<Vec<(Option<KeyValues>, M::PrimaryKey)>, Error> {
    let key = match on_key {
        None => None,
        Some(OnKey::DoNothing(key) | OnKey::DoUpdate(key, _) | OnKey::SkipStored(key)) => Some(key),
    };
    let Statement { sql, values } =
        statements::multi_insert(rows, on_key, explicit_pk, true, DB::DIALECT);
    let returned = DB::fetch_all(conn, sql, values)
        .await
        .map_err(|error| violation::classify::<M>(error.into(), None, DB::DIALECT))?;
    returned
        .iter()
        .map(|r| {
            let model = decode::<M, DB>(r)?;
            let k = key.and_then(|key| KeyValues::of(&model, key, DB::DIALECT));
            Ok((k, primary_key::<M, DB>(r)?))
        })
        .collect()
}

/// Update mode's upsert of rows read as stored, naming their stored primary keys (`stored_pks`, one
/// per row, see [`statements::multi_insert_with`]): the positions in `rows` of the rows it wrote,
/// with their primary keys. It returns the primary key alone, which says which row it was.
async fn upsert_stored<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    rows: &[&M],
    stored_pks: &[sea_query::Value],
    key: KeyId,
    update: &Update,
) -> Result<Vec<(usize, M::PrimaryKey)>, Error> {
    let dialect = DB::DIALECT;
    let Statement { sql, values } = statements::multi_insert_with(
        rows,
        Some(stored_pks),
        Some(OnKey::DoUpdate(key, update)),
        // Not the key's own: the stored primary keys are written (see `multi_insert_with`).
        false,
        statements::Returning::PrimaryKey,
        dialect,
    );
    let returned = DB::fetch_all(conn, sql, values)
        .await
        .map_err(|error| violation::classify::<M>(error.into(), None, dialect))?;
    let at: HashMap<KeyValues, usize> = stored_pks
        .iter()
        .enumerate()
        .filter_map(|(n, pk)| Some((KeyValues::from_values(vec![pk.clone()], false)?, n)))
        .collect();
    returned
        .iter()
        .map(|r| {
            // `RETURNING <primary key>`: the only column.
            let pk = primary_key_at::<M, DB>(r, 0)?;
            let n = KeyValues::from_values(vec![pk.to_value(dialect)], false)
                .and_then(|k| at.get(&k).copied())
                .ok_or_else(|| missing_row::<M>())?;
            Ok((n, pk))
        })
        .collect()
}

/// The stored rows among `keys`, read with `lock`: key → primary key and row.
async fn stored_rows<'k, M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    keys: impl Iterator<Item = &'k KeyValues>,
    lock: Lock,
) -> Result<HashMap<KeyValues, (M::PrimaryKey, M)>, Error> {
    let dialect = DB::DIALECT;
    let keys: Vec<_> = keys.map(KeyValues::values).collect();
    let Some(Statement { sql, values }) = statements::existing::<M>(keys, key, true, lock, dialect)
    else {
        return Ok(HashMap::new());
    };
    let mut out = HashMap::new();
    for r in DB::fetch_all(conn, sql, values).await? {
        let model = decode::<M, DB>(&r)?;
        if let Some(k) = KeyValues::of(&model, key, dialect) {
            out.insert(k, (primary_key::<M, DB>(&r)?, model));
        }
    }
    Ok(out)
}

/// The stored rows among `keys`, read with `lock`: key → primary key.
pub(crate) async fn stored_keys<'k, M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    key: KeyId,
    keys: impl Iterator<Item = &'k KeyValues>,
    lock: Lock,
) -> Result<HashMap<KeyValues, M::PrimaryKey>, Error> {
    let rows = stored_rows::<M, DB>(conn, key, keys, lock).await?;
    Ok(rows.into_iter().map(|(k, (pk, _))| (k, pk)).collect())
}

async fn execute<DB: Backend>(
    conn: &mut DB::Connection,
    statement: Statement,
) -> Result<u64, Error> {
    Ok(DB::execute(conn, statement.sql, statement.values)
        .await?
        .rows_affected)
}

/// Returned rows grouped by key, in the order returned; rows with a NULL in their key (all
/// inserted) are matched in order among themselves.
struct Returned<P> {
    keyed: HashMap<KeyValues, VecDeque<P>>,
    unkeyed: VecDeque<P>,
}

fn group<P>(returned: Vec<(Option<KeyValues>, P)>) -> Returned<P> {
    let mut by_key = Returned {
        keyed: HashMap::with_capacity(returned.len()),
        unkeyed: VecDeque::new(),
    };
    for (k, pk) in returned {
        match k {
            Some(k) => by_key.keyed.entry(k).or_default().push_back(pk),
            None => by_key.unkeyed.push_back(pk),
        }
    }
    by_key
}

/// The next returned row with `key` (looked up without copying the key: one lookup per row).
fn take<P>(by_key: &mut Returned<P>, key: Option<&KeyValues>) -> Option<P> {
    match key {
        Some(key) => by_key.keyed.get_mut(key)?.pop_front(),
        None => by_key.unkeyed.pop_front(),
    }
}

/// The primary key of a row of all columns.
fn primary_key<M: Model, DB: Backend>(row: &DB::Row) -> Result<M::PrimaryKey, Error> {
    primary_key_at::<M, DB>(row, M::META.primary_key)
}

/// The primary key in column `at` of a returned row.
fn primary_key_at<M: Model, DB: Backend>(row: &DB::Row, at: usize) -> Result<M::PrimaryKey, Error> {
    <M::PrimaryKey as Column>::decode(DB::row_ref(row), at).map_err(|source| Error::Decode {
        model: M::META.name,
        source,
    })
}

/// The database returned fewer rows than an insert that cannot skip any wrote.
fn missing_row<M: Model>() -> Error {
    Error::Decode {
        model: M::META.name,
        source: sqlx::Error::RowNotFound,
    }
}
