//! Bulk insert with conflict handling: Django's `bulk_create(ignore_conflicts / update_conflicts)`,
//! with a per-row report, chunks under each backend's bind limit, duplicates within the input
//! resolved before the database sees them, and all or nothing.

use std::collections::HashMap;

use sea_query::{Alias, Expr, ExprTrait, OnConflict, Query, Value};
use sqlx::{Acquire, Connection};

use crate::backend::{Backend, Dialect};
use crate::column::Column;
use crate::error::Error;
use crate::meta::KeyId;
use crate::model::{Key, Model};
use crate::query::{self, Statement};
use crate::violation;

/// What to do with a row whose key already exists.
#[derive(Debug)]
enum Mode<M: Model> {
    /// Fail: a plain multi-row `INSERT`.
    Error,
    /// Leave the existing row as it is (`ignore_conflicts`).
    Skip(KeyId),
    /// Write the listed fields to the existing row (`update_conflicts`).
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
#[derive(Debug)]
pub struct BulkInsert<M: Model> {
    mode: Mode<M>,
    batch_size: Option<usize>,
    per_row: bool,
}

impl<M: Model> Default for BulkInsert<M> {
    fn default() -> Self {
        BulkInsert {
            mode: Mode::Error,
            batch_size: None,
            per_row: true,
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
    /// Not written: a later input row (at this index) has the same key, and the last wins.
    Superseded {
        /// The index of the input row that was written.
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
    /// Stored rows updated.
    pub updated: u64,
    /// One outcome per input row, in input order; `None` with [`BulkInsert::counts_only`].
    pub rows: Option<Vec<RowOutcome<P>>>,
}

impl<M: Model> BulkInsert<M> {
    /// A bulk insert that fails on any conflict (a plain multi-row `INSERT`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Skips rows whose key `K` already exists, and all but the first of input rows sharing a key.
    /// A conflict on any other unique constraint is still an error, never a silent skip. With
    /// [`counts_only`](Self::counts_only), a repeat of a key from an earlier chunk is counted as
    /// existing (it is, by then) rather than as an input duplicate: telling them apart would take
    /// memory that grows with the input.
    pub fn skip_conflicts<K: Key<M>>(mut self) -> Self {
        self.mode = Mode::Skip(K::KEY);
        self
    }

    /// Updates `fields` of the stored row when key `K` exists. Of input rows sharing a key, the last
    /// wins: within a chunk the earlier ones are not written and are reported
    /// [`RowOutcome::Superseded`]; the input is streamed, so across chunks each chunk writes its own
    /// (reported inserted or updated) and the stored row ends with the last one's values.
    pub fn update_conflicts<K: Key<M>>(mut self, fields: &[M::Field]) -> Self {
        self.mode = Mode::Update(K::KEY, fields.to_vec());
        self
    }

    /// Rows per statement (capped so that no statement exceeds the backend's bind-parameter limit:
    /// 32766 on SQLite, 65535 on PostgreSQL and MySQL). Default: 1000, or fewer for wide rows.
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = Some(rows.max(1));
        self
    }

    /// Counts only: no per-row report, so memory stays at one chunk however long the input.
    pub fn counts_only(mut self) -> Self {
        self.per_row = false;
        self
    }

    fn rows_per_chunk(&self, dialect: Dialect) -> usize {
        let limit = match dialect {
            Dialect::Sqlite => 32_766,
            Dialect::Postgres | Dialect::MySql => 65_535,
        };
        // Update mode's pre-read binds the key columns of every row too.
        let per_row = M::META.columns.len() * 2;
        (limit / per_row.max(1))
            .min(self.batch_size.unwrap_or(1000))
            .max(1)
    }

    /// Inserts `rows`, consumed chunk by chunk, inside one transaction (a savepoint in the caller's
    /// transaction): a failure in any chunk leaves none of this call's rows behind.
    pub async fn run<'c, A, I>(&self, conn: A, rows: I) -> Result<BulkReport<M::PrimaryKey>, Error>
    where
        A: Acquire<'c>,
        A::Database: Backend,
        I: IntoIterator<Item = M>,
    {
        let dialect = <A::Database as Backend>::DIALECT;
        let mut conn = conn.acquire().await?;
        let mut tx = if dialect == Dialect::Sqlite && !conn.is_in_transaction() {
            // Take the write lock up front, as a writer that reads first must.
            (*conn).begin_with("BEGIN IMMEDIATE").await?
        } else {
            (*conn).begin().await?
        };
        let mut report = BulkReport {
            inserted: 0,
            skipped_existing: 0,
            skipped_in_input: 0,
            updated: 0,
            rows: self.per_row.then(Vec::new),
        };
        let chunk_rows = self.rows_per_chunk(dialect);
        // Across chunks, only a per-row report needs to tell an input duplicate from a stored row.
        let mut seen: HashMap<KeyValues, usize> = HashMap::new();
        let mut chunk: Vec<(usize, M)> = Vec::with_capacity(chunk_rows);
        let mut rows = rows.into_iter().enumerate().peekable();
        while rows.peek().is_some() {
            chunk.clear();
            chunk.extend(rows.by_ref().take(chunk_rows));
            if let Some((input, error)) = crate::check::check_chunk(&chunk, dialect) {
                return Err(Error::Bulk {
                    row: Some(input),
                    first_row: chunk[0].0,
                    source: Box::new(error),
                });
            }
            self.write_chunk::<A::Database>(&mut tx, &chunk, &mut seen, &mut report)
                .await?;
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn write_chunk<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        chunk: &[(usize, M)],
        seen: &mut HashMap<KeyValues, usize>,
        report: &mut BulkReport<M::PrimaryKey>,
    ) -> Result<(), Error> {
        let dialect = DB::DIALECT;
        let mut outcomes: Vec<Option<RowOutcome<M::PrimaryKey>>> = vec![None; chunk.len()];

        // Resolve duplicates within the input: first wins when skipping, last wins when updating.
        let key = match &self.mode {
            Mode::Error => None,
            Mode::Skip(key) | Mode::Update(key, _) => Some(*key),
        };
        let mut write: Vec<usize> = Vec::with_capacity(chunk.len());
        if let Some(key) = key {
            let mut in_chunk: HashMap<KeyValues, usize> = HashMap::new();
            for (pos, (input, row)) in chunk.iter().enumerate() {
                let Some(k) = key_string(row, key, dialect) else {
                    write.push(pos);
                    continue;
                };
                match &self.mode {
                    Mode::Skip(_) => {
                        let first = in_chunk
                            .get(&k)
                            .map(|&p| chunk[p].0)
                            .or_else(|| seen.get(&k).copied());
                        match first {
                            Some(first) => {
                                outcomes[pos] = Some(RowOutcome::SkippedDuplicate { first })
                            }
                            None => {
                                in_chunk.insert(k.clone(), pos);
                                if report.rows.is_some() {
                                    seen.insert(k, *input);
                                }
                                write.push(pos);
                            }
                        }
                    }
                    _ => {
                        if let Some(previous) = in_chunk.insert(k, pos) {
                            outcomes[previous] = Some(RowOutcome::Superseded { last: *input });
                        }
                    }
                }
            }
            if matches!(self.mode, Mode::Update(..)) {
                write.extend(in_chunk.into_values());
                write.sort_unstable();
            }
        } else {
            write.extend(0..chunk.len());
        }

        if !write.is_empty() {
            let rows: Vec<&M> = write.iter().map(|&p| &chunk[p].1).collect();
            // Counts only, where one statement's affected-row count says it all: no RETURNING, no
            // rows to decode (MySQL needs the per-row path: it has no conflict target).
            if !self.per_row && dialect != Dialect::MySql {
                let counted = match self.count_chunk::<DB>(conn, &rows).await {
                    Ok(counted) => counted,
                    Err(error) => {
                        let rows: Vec<(usize, &M)> =
                            write.iter().map(|&p| (chunk[p].0, &chunk[p].1)).collect();
                        let plain = matches!(self.mode, Mode::Error);
                        let first = chunk[0].0;
                        return Err(violation::bulk_error::<M, DB>(
                            conn, &rows, error, first, plain,
                        )
                        .await);
                    }
                };
                report.inserted += counted.0;
                report.skipped_existing += counted.1;
                report.updated += counted.2;
                for outcome in outcomes.into_iter().flatten() {
                    match outcome {
                        RowOutcome::SkippedDuplicate { .. } | RowOutcome::Superseded { .. } => {
                            report.skipped_in_input += 1
                        }
                        _ => unreachable!("only in-input duplicates are settled before writing"),
                    }
                }
                return Ok(());
            }
            let written = match &self.mode {
                Mode::Error => insert_rows::<M, DB>(conn, &rows, None).await,
                Mode::Skip(key) => skip_rows::<M, DB>(conn, &rows, *key).await,
                Mode::Update(key, fields) => update_rows::<M, DB>(conn, &rows, *key, fields).await,
            };
            let written = match written {
                Ok(written) => written,
                Err(error) => {
                    let rows: Vec<(usize, &M)> =
                        write.iter().map(|&p| (chunk[p].0, &chunk[p].1)).collect();
                    let plain = matches!(self.mode, Mode::Error);
                    let first = chunk[0].0;
                    return Err(
                        violation::bulk_error::<M, DB>(conn, &rows, error, first, plain).await,
                    );
                }
            };
            for (&pos, outcome) in write.iter().zip(written) {
                outcomes[pos] = Some(outcome);
            }
        }

        for outcome in outcomes {
            let outcome = outcome.expect("every row of the chunk has an outcome");
            match &outcome {
                RowOutcome::Inserted(_) => report.inserted += 1,
                RowOutcome::SkippedExisting => report.skipped_existing += 1,
                RowOutcome::SkippedDuplicate { .. } | RowOutcome::Superseded { .. } => {
                    report.skipped_in_input += 1
                }
                RowOutcome::Updated(_) => report.updated += 1,
            }
            if let Some(rows) = &mut report.rows {
                rows.push(outcome);
            }
        }
        Ok(())
    }
}

impl<M: Model> BulkInsert<M> {
    /// Writes `rows` (SQLite, PostgreSQL) and returns (inserted, skipped as stored, updated), from
    /// affected-row counts alone.
    async fn count_chunk<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        rows: &[&M],
    ) -> Result<(u64, u64, u64), Error> {
        let dialect = DB::DIALECT;
        let total = rows.len() as u64;
        let on_key = match &self.mode {
            Mode::Error => None,
            Mode::Skip(key) => Some(OnKey::DoNothing(*key)),
            Mode::Update(key, fields) => {
                let key_columns = M::META.key_columns(*key);
                let set: Vec<usize> = fields
                    .iter()
                    .map(|&f| M::field_index(f))
                    .filter(|i| !key_columns.contains(i))
                    .collect();
                if set.is_empty() {
                    Some(OnKey::DoNothing(*key))
                } else if dialect == Dialect::Postgres {
                    // PostgreSQL tells inserted from updated rows itself: `xmax = 0` on a new row
                    // version that no earlier one precedes.
                    let Statement { sql, values } =
                        multi_insert(rows, Some(OnKey::DoUpdate(*key, &set)), dialect, false);
                    let sql = format!("{sql} RETURNING (xmax = 0)");
                    let flags = DB::fetch_all(conn, sql.into(), values).await?;
                    let mut inserted = 0;
                    for flag in &flags {
                        let was_inserted =
                            <bool as crate::column::SqlType>::decode(DB::row_ref(flag), 0)
                                .map_err(|source| Error::Decode {
                                    model: M::META.name,
                                    source,
                                })?;
                        inserted += u64::from(was_inserted == Some(true));
                    }
                    return Ok((inserted, 0, total - inserted));
                } else {
                    let stored = existing_count::<M, DB>(conn, rows, *key).await?;
                    let Statement { sql, values } =
                        multi_insert(rows, Some(OnKey::DoUpdate(*key, &set)), dialect, false);
                    DB::execute(conn, sql, values).await?;
                    return Ok((total - stored, 0, stored));
                }
            }
        };
        let Statement { sql, values } = multi_insert(rows, on_key, dialect, false);
        let inserted = DB::execute(conn, sql, values).await?.rows_affected;
        Ok((inserted, total - inserted, 0))
    }
}

/// A key's values, comparable and hashable (sea-query's `Value` is neither `Eq` nor `Hash`).
#[derive(Debug, Clone, PartialEq)]
struct KeyValues(Vec<Value>);

// Keys never hold NaN in practice; a NaN key only fails to match itself, which makes it distinct.
impl Eq for KeyValues {}

impl std::hash::Hash for KeyValues {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for value in &self.0 {
            std::mem::discriminant(value).hash(state);
            match value {
                Value::Bool(v) => v.hash(state),
                Value::SmallInt(v) => v.hash(state),
                Value::Int(v) => v.hash(state),
                Value::BigInt(v) => v.hash(state),
                Value::Float(v) => v.map(f32::to_bits).hash(state),
                Value::Double(v) => v.map(f64::to_bits).hash(state),
                Value::String(v) => v.hash(state),
                Value::Bytes(v) => v.hash(state),
                #[cfg(feature = "rust_decimal")]
                Value::Decimal(v) => v.hash(state),
                #[cfg(feature = "chrono")]
                Value::ChronoDate(v) => v.hash(state),
                #[cfg(feature = "chrono")]
                Value::ChronoTime(v) => v.hash(state),
                #[cfg(feature = "chrono")]
                Value::ChronoDateTime(v) => v.hash(state),
                #[cfg(feature = "chrono")]
                Value::ChronoDateTimeUtc(v) => v.hash(state),
                #[cfg(feature = "uuid")]
                Value::Uuid(v) => v.hash(state),
                // Anything else only hashes by kind: equal values still land together.
                _ => {}
            }
        }
    }
}

/// The key's values as a map key; `None` when one is NULL (such a key collides with nothing).
/// Decimals are normalized, as databases return them with their column's scale.
fn key_string<M: Model>(row: &M, key: KeyId, dialect: Dialect) -> Option<KeyValues> {
    let mut values = query::key_values_of(row, key, dialect);
    for value in &mut values {
        if query::is_null(value) {
            return None;
        }
        #[cfg(feature = "rust_decimal")]
        if let Value::Decimal(Some(d)) = value {
            *d = d.normalize();
        }
    }
    Some(KeyValues(values))
}

/// What a multi-row insert does on a conflict on its key (PostgreSQL and SQLite only).
#[derive(Clone, Copy)]
enum OnKey<'a> {
    DoNothing(KeyId),
    DoUpdate(KeyId, &'a [usize]),
}

/// A multi-row `INSERT … RETURNING <all columns>`, with an optional `ON CONFLICT (key) …`.
fn multi_insert<M: Model>(
    rows: &[&M],
    on_key: Option<OnKey<'_>>,
    dialect: Dialect,
    returning: bool,
) -> Statement {
    let meta = M::META;
    let columns: Vec<usize> = (0..meta.columns.len())
        .filter(|&i| !meta.columns[i].auto_increment)
        .collect();
    let values: Vec<Value> = rows
        .iter()
        .flat_map(|row| columns.iter().map(|&i| row.column_value(i, dialect)))
        .collect();
    let shape = query::Shape::BulkInsert {
        rows: rows.len(),
        on_key: on_key.map(|on_key| match on_key {
            OnKey::DoNothing(key) => (key, None),
            OnKey::DoUpdate(key, set) => (key, Some(set.to_vec())),
        }),
        returning,
    };
    // The text of a full chunk is built once and reused: building a 1000-row insert costs about as
    // much as SQLite takes to run it.
    query::cached::<M>(dialect, shape, values, |values| {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new(meta.table))
            .columns(columns.iter().map(|&i| Alias::new(meta.columns[i].name)));
        let mut values = values.into_iter();
        for _ in 0..rows.len() {
            insert
                .values(values.by_ref().take(columns.len()).map(Expr::val))
                .expect("one value per column by construction");
        }
        let target = |key: KeyId| {
            meta.key_columns(key)
                .iter()
                .map(|&i| Alias::new(meta.columns[i].name))
        };
        match on_key {
            None => {}
            Some(OnKey::DoNothing(key)) => {
                insert.on_conflict(OnConflict::columns(target(key)).do_nothing().to_owned());
            }
            Some(OnKey::DoUpdate(key, set)) => {
                let set = set.iter().map(|&i| Alias::new(meta.columns[i].name));
                insert.on_conflict(
                    OnConflict::columns(target(key))
                        .update_columns(set)
                        .to_owned(),
                );
            }
        }
        let (mut sql, values) = match dialect {
            Dialect::Sqlite => insert.build(sea_query::SqliteQueryBuilder),
            Dialect::Postgres => insert.build(sea_query::PostgresQueryBuilder),
            Dialect::MySql => insert.build(sea_query::MysqlQueryBuilder),
        };
        if returning {
            sql.push_str(&query::returning_all(meta, dialect));
        }
        (sql, values)
    })
}

/// Inserts `rows`; returns the outcome of each, matching returned rows to input rows by key.
async fn insert_rows<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    rows: &[&M],
    on_key: Option<OnKey<'_>>,
) -> Result<Vec<RowOutcome<M::PrimaryKey>>, Error> {
    let dialect = DB::DIALECT;
    let Statement { sql, values } = multi_insert(rows, on_key, dialect, true);
    let returned = DB::fetch_all(conn, sql, values).await?;
    let key = match on_key {
        None => None,
        Some(OnKey::DoNothing(key) | OnKey::DoUpdate(key, _)) => Some(key),
    };
    let Some(key) = key else {
        // Every row was inserted; without a conflict clause the database returns them in order.
        return returned
            .iter()
            .map(|r| primary_key::<M, DB>(r).map(RowOutcome::Inserted))
            .collect();
    };
    // Match returned rows to input rows by key: rows with a NULL in the key were all inserted, and
    // are matched in order among themselves.
    let mut by_key: HashMap<Option<KeyValues>, Vec<M::PrimaryKey>> = HashMap::new();
    for r in &returned {
        let model = M::from_row(DB::row_ref(r)).map_err(|source| Error::Decode {
            model: M::META.name,
            source,
        })?;
        by_key
            .entry(key_string(&model, key, dialect))
            .or_default()
            .push(primary_key::<M, DB>(r)?);
    }
    for pks in by_key.values_mut() {
        pks.reverse();
    }
    Ok(rows
        .iter()
        .map(|row| {
            match by_key
                .get_mut(&key_string(*row, key, dialect))
                .and_then(Vec::pop)
            {
                Some(pk) => RowOutcome::Inserted(pk),
                None => RowOutcome::SkippedExisting,
            }
        })
        .collect())
}

fn primary_key<M: Model, DB: Backend>(row: &DB::Row) -> Result<M::PrimaryKey, Error> {
    <M::PrimaryKey as Column>::decode(DB::row_ref(row), M::META.primary_key).map_err(|source| {
        Error::Decode {
            model: M::META.name,
            source,
        }
    })
}

/// `SELECT … FROM t WHERE (k1, k2) IN ((?, ?), …) FOR UPDATE` over the keys of `rows` that have no
/// NULL (those collide with nothing): whole rows, or just `1` per row; `None` when no key is left.
/// One flat list however many rows: a chain of ORs would nest, and sea-query renders nesting
/// recursively.
fn existing_statement<M: Model>(
    rows: &[&M],
    key: KeyId,
    whole_rows: bool,
    dialect: Dialect,
) -> Option<Statement> {
    let meta = M::META;
    let key_columns = meta.key_columns(key);
    let keys: Vec<Vec<Value>> = rows
        .iter()
        .map(|row| query::key_values_of(*row, key, dialect))
        .filter(|values| !values.iter().any(query::is_null))
        .collect();
    if keys.is_empty() {
        return None;
    }
    let shape = query::Shape::Existing {
        key,
        keys: keys.len(),
        whole_rows,
    };
    let per_key = key_columns.len();
    Some(query::cached::<M>(
        dialect,
        shape,
        keys.concat(),
        |values| {
            let mut values = values.into_iter();
            let tuples: Vec<Expr> = (0..values.len() / per_key)
                .map(|_| Expr::tuple(values.by_ref().take(per_key).map(Expr::val)))
                .collect();
            let target = Expr::tuple(
                key_columns
                    .iter()
                    .map(|&i| Expr::col(Alias::new(meta.columns[i].name))),
            );
            let mut select = Query::select();
            if whole_rows {
                select.columns(meta.columns.iter().map(|c| Alias::new(c.name)));
            } else {
                select.expr(Expr::cust("1"));
            }
            select
                .from(Alias::new(meta.table))
                .and_where(target.is_in(tuples));
            let (mut sql, values) = match dialect {
                Dialect::Sqlite => select.build(sea_query::SqliteQueryBuilder),
                Dialect::Postgres => select.build(sea_query::PostgresQueryBuilder),
                Dialect::MySql => select.build(sea_query::MysqlQueryBuilder),
            };
            // SQLite's write transaction already holds the whole database.
            if dialect != Dialect::Sqlite {
                sql.push_str(" FOR UPDATE");
            }
            (sql, values)
        },
    ))
}

/// The stored rows among the keys of `rows`, locked, by key.
async fn existing<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    rows: &[&M],
    key: KeyId,
) -> Result<HashMap<KeyValues, M::PrimaryKey>, Error> {
    let dialect = DB::DIALECT;
    let Some(Statement { sql, values }) = existing_statement(rows, key, true, dialect) else {
        return Ok(HashMap::new());
    };
    let mut out = HashMap::new();
    for r in DB::fetch_all(conn, sql, values).await? {
        let model = M::from_row(DB::row_ref(&r)).map_err(|source| Error::Decode {
            model: M::META.name,
            source,
        })?;
        if let Some(k) = key_string(&model, key, dialect) {
            out.insert(k, primary_key::<M, DB>(&r)?);
        }
    }
    Ok(out)
}

/// How many of the keys of `rows` are stored, locking them.
async fn existing_count<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    rows: &[&M],
    key: KeyId,
) -> Result<u64, Error> {
    match existing_statement(rows, key, false, DB::DIALECT) {
        Some(Statement { sql, values }) => Ok(DB::fetch_all(conn, sql, values).await?.len() as u64),
        None => Ok(0),
    }
}

/// Skip mode. PostgreSQL and SQLite: `ON CONFLICT (key) DO NOTHING`, so that another constraint's
/// conflict still raises. MySQL has no conflict target: the stored keys are read with a lock
/// (`FOR UPDATE`), and only the others are inserted, plainly.
async fn skip_rows<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    rows: &[&M],
    key: KeyId,
) -> Result<Vec<RowOutcome<M::PrimaryKey>>, Error> {
    let dialect = DB::DIALECT;
    if dialect != Dialect::MySql {
        return insert_rows::<M, DB>(conn, rows, Some(OnKey::DoNothing(key))).await;
    }
    let stored = existing::<M, DB>(conn, rows, key).await?;
    let mut inserted = insert_fresh::<M, DB>(conn, rows, key, &stored).await?;
    Ok(rows
        .iter()
        .map(|row| match key_string(*row, key, dialect) {
            Some(k) if stored.contains_key(&k) => RowOutcome::SkippedExisting,
            _ => inserted.next().expect("one outcome per fresh row"),
        })
        .collect())
}

/// Inserts, in one plain statement, the rows whose key is not among `stored` (MySQL's half of skip
/// and update modes); their outcomes, in order.
async fn insert_fresh<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    rows: &[&M],
    key: KeyId,
    stored: &HashMap<KeyValues, M::PrimaryKey>,
) -> Result<std::vec::IntoIter<RowOutcome<M::PrimaryKey>>, Error> {
    let fresh: Vec<&M> = rows
        .iter()
        .copied()
        .filter(|row| key_string(*row, key, DB::DIALECT).is_none_or(|k| !stored.contains_key(&k)))
        .collect();
    if fresh.is_empty() {
        return Ok(Vec::new().into_iter());
    }
    Ok(insert_rows::<M, DB>(conn, &fresh, None).await?.into_iter())
}

/// One `UPDATE t SET c = CASE WHEN <key of row 1> THEN ? … ELSE c END, … WHERE (key) IN (…)` for
/// every row of `rows` (all of them stored, their keys locked).
fn update_by_case<M: Model>(rows: &[&M], key: KeyId, set: &[usize], dialect: Dialect) -> Statement {
    let meta = M::META;
    let key_columns = meta.key_columns(key);
    let col = |i: usize| Expr::col(Alias::new(meta.columns[i].name));
    let key_of = |row: &M| {
        let mut condition = sea_query::Condition::all();
        for (&i, value) in key_columns
            .iter()
            .zip(query::key_values_of(row, key, dialect))
        {
            condition = condition.add(col(i).eq(value));
        }
        condition
    };
    let mut update = Query::update();
    update.table(Alias::new(meta.table));
    for &c in set {
        let mut case = sea_query::CaseStatement::new();
        for row in rows {
            case = case.case(key_of(row), Expr::val(row.column_value(c, dialect)));
        }
        update.value(Alias::new(meta.columns[c].name), case.finally(col(c)));
    }
    let target = Expr::tuple(key_columns.iter().map(|&i| col(i)));
    let tuples = rows.iter().map(|row| {
        Expr::tuple(
            query::key_values_of(*row, key, dialect)
                .into_iter()
                .map(Expr::val),
        )
    });
    update.and_where(target.is_in(tuples));
    let (sql, values) = match dialect {
        Dialect::Sqlite => update.build(sea_query::SqliteQueryBuilder),
        Dialect::Postgres => update.build(sea_query::PostgresQueryBuilder),
        Dialect::MySql => update.build(sea_query::MysqlQueryBuilder),
    };
    Statement {
        sql: sql.into(),
        values,
    }
}

/// Update mode: the stored keys are read (locked), then PostgreSQL and SQLite write the chunk in one
/// `INSERT … ON CONFLICT (key) DO UPDATE`; MySQL inserts the new rows in one statement and updates
/// the stored ones in another, with a `CASE` per column. `ON DUPLICATE KEY UPDATE` is never used: it reacts to a conflict on
/// any key, and would update the wrong row.
async fn update_rows<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    rows: &[&M],
    key: KeyId,
    fields: &[M::Field],
) -> Result<Vec<RowOutcome<M::PrimaryKey>>, Error> {
    let dialect = DB::DIALECT;
    let key_columns = M::META.key_columns(key);
    let set_columns: Vec<usize> = fields
        .iter()
        .map(|&f| M::field_index(f))
        .filter(|i| !key_columns.contains(i))
        .collect();
    if set_columns.is_empty() {
        // Nothing to write to a stored row: that is skip mode.
        return skip_rows::<M, DB>(conn, rows, key).await;
    }
    // Which keys are stored decides what each row's outcome is; the read locks them (FOR UPDATE)
    // on PostgreSQL and MySQL, and SQLite's write transaction holds the whole database.
    let stored = existing::<M, DB>(conn, rows, key).await?;
    if dialect != Dialect::MySql {
        // One statement: `ON CONFLICT (key) DO UPDATE SET f = excluded.f`, which conflicts on this
        // key only; the input holds each key once, so no row is affected twice.
        let written =
            insert_rows::<M, DB>(conn, rows, Some(OnKey::DoUpdate(key, &set_columns))).await?;
        return Ok(rows
            .iter()
            .zip(written)
            .map(
                |(row, outcome)| match (outcome, key_string(*row, key, dialect)) {
                    (RowOutcome::Inserted(pk), Some(k)) if stored.contains_key(&k) => {
                        RowOutcome::Updated(pk)
                    }
                    (outcome, _) => outcome,
                },
            )
            .collect());
    }
    let mut inserted = insert_fresh::<M, DB>(conn, rows, key, &stored).await?;
    let mut outcomes = Vec::with_capacity(rows.len());
    let updates: Vec<&M> = rows
        .iter()
        .copied()
        .filter(|row| key_string(*row, key, dialect).is_some_and(|k| stored.contains_key(&k)))
        .collect();
    if !updates.is_empty() {
        let Statement { sql, values } = update_by_case(&updates, key, &set_columns, dialect);
        DB::execute(conn, sql, values).await?;
    }
    for row in rows {
        match key_string(*row, key, dialect).and_then(|k| stored.get(&k).cloned()) {
            Some(pk) => outcomes.push(RowOutcome::Updated(pk)),
            None => outcomes.push(inserted.next().expect("one outcome per fresh row")),
        }
    }
    Ok(outcomes)
}
