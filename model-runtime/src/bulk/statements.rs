//! The statements a bulk insert sends, built with sea-query once per shape (model, dialect, rows,
//! columns) and cached: model metadata and values in, SQL text and values out. Nothing here knows of
//! connections.

use sea_query::{Alias, Expr, ExprTrait, OnConflict, Query, Value};

use crate::backend::Dialect;
use crate::meta::{ColumnKind, KeyId};
use crate::model::Model;
use crate::query::{self, Lock, Shape, Statement};

use super::write::Update;

/// What a multi-row insert does on a conflict on its key (PostgreSQL and SQLite only: MySQL has no
/// conflict target, and its `ON DUPLICATE KEY UPDATE` reacts to every unique key).
#[derive(Debug, Clone, Copy)]
pub(crate) enum OnKey<'a> {
    /// `ON CONFLICT (key) DO NOTHING`.
    DoNothing(KeyId),
    /// `ON CONFLICT (key) DO UPDATE SET c = excluded.c, …, n = t.n + excluded.n, … WHERE …`.
    DoUpdate(KeyId, &'a Update),
    /// PostgreSQL, a key of plain columns: no conflict clause, but an anti-join that leaves out the
    /// rows whose key the statement's snapshot sees stored, `INSERT … SELECT … FROM (<arrays>) AS v
    /// WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.k = v.k …)`. A key stored concurrently (or one
    /// repeated among the rows) is a duplicate-key error, after which the caller runs
    /// [`OnKey::DoNothing`] instead (see [`skips_by_anti_join`]). Without arrays (see
    /// `column_arrays`) it is written as [`OnKey::DoNothing`].
    SkipStored(KeyId),
}

/// The alias of the stored table in the statements that join it with the incoming rows.
const STORED_ALIAS: &str = "model_runtime_stored";
/// The alias of the incoming rows in those statements.
const INCOMING_ALIAS: &str = "model_runtime_in";

/// Whether skip mode can leave stored rows out with [`OnKey::SkipStored`]'s anti-join: PostgreSQL,
/// and a key of plain columns (not case-insensitive, partial or nulls-not-distinct), whose `=` on
/// each column finds exactly the rows the key's index would conflict with: a stored key it misses
/// (a nulls-not-distinct NULL, say) would only be a duplicate-key error and a second statement,
/// but a row it matched that the index would not conflict with would be skipped wrongly.
pub(crate) fn skips_by_anti_join<M: Model>(key: KeyId, dialect: Dialect) -> bool {
    let meta = M::META;
    // The anti-join compares the written columns: not for a key with an auto-increment column
    // the insert leaves to the database (only the primary key as the target writes it).
    let written = key == KeyId::PrimaryKey
        || meta
            .key_columns(key)
            .iter()
            .all(|&c| !meta.columns[c].auto_increment);
    dialect == Dialect::Postgres && key_is_plain::<M>(key) && written
}

/// Whether a key is of plain columns (not case-insensitive, partial or nulls-not-distinct): `=` on
/// each of its columns finds exactly the stored row its index would conflict with.
pub(crate) fn key_is_plain<M: Model>(key: KeyId) -> bool {
    M::META.key_constraint(key).is_none_or(|c| c.is_plain())
}

/// SQLite, update mode counts only (see `write::update_sqlite_counts`): one row, one text, for
/// the whole chunk: `position:primary key:differs` for each of `rows` whose key is stored,
/// comma-separated, where `differs` is 1 when a column of `set` holds another value than the
/// row's (`IS NOT`, as the upsert's condition compares):
///
/// `SELECT group_concat(v.column1 || ':' || t.id || ':' || (t.c IS NOT v.column3 OR …), ',')
/// FROM (VALUES (?, ?, ?), …) AS v JOIN t ON t.k = v.column2 AND …`
///
/// Each row binds its position, its key's values and its `set` values. For a key of plain
/// columns and an integer primary key.
pub(crate) fn stored_differs<M: Model>(rows: &[&M], key: KeyId, set: &[usize]) -> Statement {
    let meta = M::META;
    let dialect = Dialect::Sqlite;
    let key_columns = meta.key_columns(key);
    let per_row = 1 + key_columns.len() + set.len();
    let values: Vec<Value> = rows
        .iter()
        .enumerate()
        .flat_map(|(n, row)| {
            std::iter::once(Value::BigInt(Some(n as i64)))
                .chain(key_columns.iter().map(|&c| row.column_value(c, dialect)))
                .chain(set.iter().map(|&c| row.column_value(c, dialect)))
        })
        .collect();
    let shape = Shape::StoredDiffs {
        key,
        set: set.to_vec(),
        rows: rows.len(),
    };
    query::cached::<M>(dialect, shape, values, |values| {
        let q = |name: &str| query::quote(dialect, name);
        let table = q(meta.table);
        // Both sides under aliases of their own: a table named like the incoming rows' alias
        // (`v`, say) would otherwise hide it (found by review).
        let (stored, incoming_rows) = (q(STORED_ALIAS), q(INCOMING_ALIAS));
        let column = |c: usize| format!("{stored}.{}", q(meta.columns[c].name));
        // SQLite names the columns of a `VALUES` list column1, column2, …
        let incoming = |j: usize| format!("{incoming_rows}.{}", q(&format!("column{}", j + 1)));
        let tuple = format!("({})", vec!["?"; per_row].join(", "));
        let tuples = vec![tuple.as_str(); rows.len()].join(", ");
        let join = key_columns
            .iter()
            .enumerate()
            .map(|(j, &c)| format!("{} = {}", column(c), incoming(1 + j)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let differs = set
            .iter()
            .enumerate()
            .map(|(j, &c)| {
                format!(
                    "{} IS NOT {}",
                    column(c),
                    incoming(1 + key_columns.len() + j)
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT group_concat({} || ':' || {} || ':' || ({differs}), ',') FROM (VALUES {tuples}) AS {incoming_rows} JOIN {table} AS {stored} ON {join}",
            incoming(0),
            column(meta.primary_key),
        );
        (sql, sea_query::Values(values))
    })
}

/// The columns a bulk insert writes: all but an auto-increment primary key, which is written only
/// when it is the conflict target (`explicit_pk`): a key given as the target is written as given.
pub(crate) fn insert_columns<M: Model>(explicit_pk: bool) -> Vec<usize> {
    let meta = M::META;
    (0..meta.columns.len())
        .filter(|&i| explicit_pk || !meta.columns[i].auto_increment)
        .collect()
}

/// A multi-row `INSERT`, with an optional `ON CONFLICT (key) …` and `RETURNING <all columns>`.
pub(crate) fn multi_insert<M: Model>(
    rows: &[&M],
    on_key: Option<OnKey<'_>>,
    explicit_pk: bool,
    returning: bool,
    dialect: Dialect,
) -> Statement {
    let returning = if returning {
        Returning::All
    } else {
        Returning::Nothing
    };
    multi_insert_with(rows, None, on_key, explicit_pk, returning, dialect)
}

/// What a bulk insert returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Returning {
    /// No `RETURNING`.
    Nothing,
    /// `RETURNING <all columns>`, in the model's order.
    All,
    /// `RETURNING <primary key>` alone: for rows that name their primary key, whose returned rows
    /// need no decoding beyond it.
    PrimaryKey,
}

/// [`multi_insert`], with `stored_pks` (one per row) written in place of the rows' own primary
/// keys: update mode's upsert of rows read as stored, which names each row's stored primary key so
/// that the insert it never performs draws no sequence value (the primary key column is then
/// written whatever `explicit_pk` says).
pub(crate) fn multi_insert_with<M: Model>(
    rows: &[&M],
    stored_pks: Option<&[Value]>,
    on_key: Option<OnKey<'_>>,
    explicit_pk: bool,
    returning: Returning,
    dialect: Dialect,
) -> Statement {
    let meta = M::META;
    let explicit_pk = explicit_pk || stored_pks.is_some();
    let columns = insert_columns::<M>(explicit_pk);
    let cell = |r: usize, row: &M, c: usize| match stored_pks {
        Some(pks) if c == meta.primary_key => pks[r].clone(),
        _ => row.column_value(c, dialect),
    };
    // PostgreSQL: one array per column, whatever the number of rows (see `column_arrays`).
    let arrays = match dialect {
        #[cfg(feature = "postgres")]
        Dialect::Postgres => column_arrays(rows, &columns, cell),
        _ => None,
    };
    let (values, element_types) = match arrays {
        Some((values, types)) => (values, Some(types)),
        None => (
            rows.iter()
                .enumerate()
                .flat_map(|(r, row)| columns.iter().map(move |&i| cell(r, row, i)))
                .collect(),
            None,
        ),
    };
    let shape = Shape::BulkInsert {
        rows: if element_types.is_some() {
            0
        } else {
            rows.len()
        },
        arrays: element_types.clone(),
        on_key: on_key.map(|on_key| match on_key {
            OnKey::DoNothing(key) | OnKey::SkipStored(key) => (key, None),
            OnKey::DoUpdate(key, update) => (key, Some(update.clone())),
        }),
        anti_join: matches!(on_key, Some(OnKey::SkipStored(_))) && element_types.is_some(),
        returning,
        explicit_pk,
    };
    // The text of a full chunk is built once and reused: building a 1000-row insert costs about as
    // much as SQLite takes to run it.
    query::cached::<M>(dialect, shape, values, |values| {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new(meta.table))
            .columns(columns.iter().map(|&i| Alias::new(meta.columns[i].name)));
        match &element_types {
            // `INSERT … SELECT unnest($1::text[]), unnest($2::int8[]), …`: the
            // arrays are unnested in step, one row per element, in order.
            Some(types) => {
                let mut select = Query::select();
                for ((value, element), &c) in values.into_iter().zip(types).zip(&columns) {
                    let array = Expr::cust_with_values(format!("unnest($1::{element}[])"), [value]);
                    match on_key {
                        // Named after their columns, for the anti-join to refer to.
                        Some(OnKey::SkipStored(_)) => {
                            select.expr_as(array, Alias::new(meta.columns[c].name))
                        }
                        _ => select.expr(array),
                    };
                }
                if let Some(OnKey::SkipStored(key)) = on_key {
                    select = anti_join::<M>(select, &columns, key);
                }
                insert
                    .select_from(select)
                    .expect("one array per column by construction");
            }
            None => {
                let mut values = values.into_iter();
                for _ in 0..rows.len() {
                    insert
                        .values(values.by_ref().take(columns.len()).map(Expr::val))
                        .expect("one value per column by construction");
                }
            }
        }
        // The conflict target names the key's index as the database spells it: its columns, or
        // for a case-insensitive or (SQLite) nulls-not-distinct constraint its expressions.
        let target = |key: KeyId| -> OnConflict {
            match meta.key_constraint(key) {
                Some(constraint) if !constraint.is_plain() => {
                    let mut target = OnConflict::new();
                    target.exprs(
                        crate::schema::index_parts(meta, constraint, dialect)
                            .into_iter()
                            .map(|part| Expr::cust(part.sql)),
                    );
                    // A partial index is named by its predicate too, inline as in the index.
                    if let Some(predicate) = query::predicate_sql(meta, key, dialect) {
                        target.target_and_where(Expr::cust(predicate));
                    }
                    target
                }
                _ => OnConflict::columns(
                    meta.key_columns(key)
                        .iter()
                        .map(|&i| Alias::new(meta.columns[i].name)),
                ),
            }
        };
        match on_key {
            None => {}
            Some(OnKey::SkipStored(_)) if element_types.is_some() => {}
            Some(OnKey::DoNothing(key) | OnKey::SkipStored(key)) => {
                insert.on_conflict(target(key).do_nothing().to_owned());
            }
            Some(OnKey::DoUpdate(key, update)) => {
                // Only a row whose listed columns differ is written (and returned): one that
                // already holds the values is left as it is, with no new row version. An increment
                // always writes; a guard refuses what it refuses.
                let q = |name: &str| query::quote(dialect, name);
                let stored = |i: usize| format!("{}.{}", q(meta.table), q(meta.columns[i].name));
                let incoming = |i: usize| format!("\"excluded\".{}", q(meta.columns[i].name));
                let mut condition = Vec::new();
                if update.increments.is_empty() {
                    let differs = update
                        .set
                        .iter()
                        .map(|&i| match dialect {
                            Dialect::Sqlite => format!("{} IS NOT {}", stored(i), incoming(i)),
                            _ => format!("{} IS DISTINCT FROM {}", stored(i), incoming(i)),
                        })
                        .collect::<Vec<_>>()
                        .join(" OR ");
                    condition.push(format!("({differs})"));
                }
                if let Some(guard) = update.guard {
                    condition.push(guard.sql(
                        &meta.columns[guard.column],
                        dialect,
                        &stored(guard.column),
                        &incoming(guard.column),
                    ));
                }
                let mut action = target(key);
                action.update_columns(update.set.iter().map(|&i| Alias::new(meta.columns[i].name)));
                for &i in &update.increments {
                    let column = &meta.columns[i];
                    let sum =
                        crate::changes::increment_sql(column, &stored(i), &incoming(i), dialect);
                    action.value(Alias::new(column.name), Expr::cust(sum));
                }
                if !condition.is_empty() {
                    action.action_and_where(Expr::cust(condition.join(" AND ")));
                }
                insert.on_conflict(action.to_owned());
            }
        }
        let (mut sql, values) = query::render(&insert, dialect);
        match returning {
            Returning::Nothing => {}
            Returning::All => sql.push_str(&query::returning_all(meta, dialect)),
            Returning::PrimaryKey => {
                sql.push_str(" RETURNING ");
                sql.push_str(&query::quote(dialect, meta.columns[meta.primary_key].name));
            }
        }
        (sql, values)
    })
}

/// `SELECT v.c, … FROM (<select>) AS v WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.k = v.k AND …)`:
/// the rows of `select` (one expression per column of `columns`, in order, named after it) whose
/// key is not stored.
fn anti_join<M: Model>(
    inner: sea_query::SelectStatement,
    columns: &[usize],
    key: KeyId,
) -> sea_query::SelectStatement {
    let meta = M::META;
    // Both sides under aliases of their own: a table named like the incoming rows' alias would
    // otherwise hide it inside the subquery, and every row would be skipped (found by review).
    let (table, v) = (Alias::new(STORED_ALIAS), Alias::new(INCOMING_ALIAS));
    let mut stored = Query::select();
    stored
        .expr(Expr::cust("1"))
        .from_as(Alias::new(meta.table), table.clone());
    for &k in meta.key_columns(key) {
        let name = Alias::new(meta.columns[k].name);
        stored.and_where(Expr::col((table.clone(), name.clone())).equals((v.clone(), name)));
    }
    let mut outer = Query::select();
    for &c in columns {
        outer.column((v.clone(), Alias::new(meta.columns[c].name)));
    }
    outer
        .from_subquery(inner, v)
        .and_where(Expr::exists(stored).not());
    outer
}

/// PostgreSQL's row source for a multi-row insert: the rows' values as one array per column, each
/// with its SQL element type, so that a statement carries as many parameters as the row has
/// columns however many rows it writes (no bind-parameter cap on a chunk, one statement text per
/// shape, and a prepared statement reused across chunk sizes). `None` when a column's values are
/// not all of one kind this binds as an array (never for the library's column types), or there
/// are no rows: then `VALUES`.
///
/// Each element type is the type sqlx gives the value bound alone, never a sized one (`text[]` for
/// a `varchar(n)` column, `numeric[]` for `numeric(p, s)`): the selected values then reach the
/// column through the same assignment coercion as `VALUES`, so an over-long text or an
/// out-of-range number fails the column's own check with the same error, and nothing is cut to
/// fit on the way.
#[cfg(feature = "postgres")]
fn column_arrays<M: Model>(
    rows: &[&M],
    columns: &[usize],
    cell: impl Fn(usize, &M, usize) -> Value,
) -> Option<(Vec<Value>, Vec<&'static str>)> {
    let first = rows.first()?;
    let mut arrays = Vec::with_capacity(columns.len());
    let mut types = Vec::with_capacity(columns.len());
    for &c in columns {
        let (kind, element) = array_element(&cell(0, first, c))?;
        let mut items = Vec::with_capacity(rows.len());
        for (r, row) in rows.iter().enumerate() {
            let value = cell(r, row, c);
            if array_element(&value)?.1 != element {
                return None;
            }
            items.push(value);
        }
        arrays.push(Value::Array(kind, Some(Box::new(items))));
        types.push(element);
    }
    Some((arrays, types))
}

/// The array kind and SQL element type for a column whose values are of `value`'s kind: the type
/// sqlx binds such a value as on its own (see `backend::PgValues`, which binds the array).
#[cfg(feature = "postgres")]
fn array_element(value: &Value) -> Option<(sea_query::ArrayType, &'static str)> {
    use sea_query::ArrayType as A;
    Some(match value {
        Value::Bool(_) => (A::Bool, "bool"),
        Value::SmallInt(_) => (A::SmallInt, "int2"),
        Value::Int(_) => (A::Int, "int4"),
        Value::BigInt(_) => (A::BigInt, "int8"),
        Value::Float(_) => (A::Float, "float4"),
        Value::Double(_) => (A::Double, "float8"),
        Value::String(_) => (A::String, "text"),
        Value::Bytes(_) => (A::Bytes, "bytea"),
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(_) => (A::Decimal, "numeric"),
        #[cfg(feature = "chrono")]
        Value::ChronoDate(_) => (A::ChronoDate, "date"),
        #[cfg(feature = "chrono")]
        Value::ChronoTime(_) => (A::ChronoTime, "time"),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTime(_) => (A::ChronoDateTime, "timestamp"),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTimeUtc(_) => (A::ChronoDateTimeUtc, "timestamptz"),
        #[cfg(feature = "uuid")]
        Value::Uuid(_) => (A::Uuid, "uuid"),
        #[cfg(feature = "json")]
        Value::Json(_) => (A::Json, "jsonb"),
        _ => return None,
    })
}

/// MySQL's `INSERT IGNORE INTO … VALUES … RETURNING <all columns>`: rows that meet a duplicate (or
/// that MySQL would refuse otherwise) are passed over with a warning instead of failing the
/// statement. The caller must check every row: see `write::skip_mysql`.
pub(crate) fn insert_ignore<M: Model>(rows: &[&M], explicit_pk: bool) -> Statement {
    let dialect = Dialect::MySql;
    let Statement { sql, values } = multi_insert(rows, None, explicit_pk, true, dialect);
    let shape = Shape::InsertIgnore {
        rows: rows.len(),
        explicit_pk,
    };
    query::cached::<M>(dialect, shape, values.0, |values| {
        (
            sql.replacen("INSERT INTO", "INSERT IGNORE INTO", 1),
            sea_query::Values(values),
        )
    })
}

/// `SELECT … FROM t WHERE (k1, k2) IN ((?, ?), …)` over `keys` (none of them NULL), whole rows or
/// just `1` per row, with `lock` (left out on SQLite, whose write transaction holds the whole
/// database); `None` when there is no key. One flat list however many rows: a chain of ORs would
/// nest, and sea-query renders nesting recursively.
pub(crate) fn existing<M: Model>(
    keys: Vec<Vec<Value>>,
    key: KeyId,
    whole_rows: bool,
    lock: Lock,
    dialect: Dialect,
) -> Option<Statement> {
    let meta = M::META;
    let key_columns = meta.key_columns(key);
    if keys.is_empty() {
        return None;
    }
    let shape = Shape::Existing {
        key,
        keys: keys.len(),
        whole_rows,
        lock,
    };
    let per_key = key_columns.len();
    Some(query::cached::<M>(
        dialect,
        shape,
        keys.concat(),
        |values| {
            let count = values.len() / per_key;
            let mut values = values.into_iter();
            let condition = query::keys_in(meta, key, count, &mut values, dialect);
            let mut select = Query::select();
            if whole_rows {
                select.columns(meta.columns.iter().map(|c| Alias::new(c.name)));
            } else {
                select.expr(Expr::cust("1"));
            }
            select.from(Alias::new(meta.table)).cond_where(condition);
            // (Not for a key whose NULLs collide: its index is over generated columns that the
            // NULL-safe comparison of the plain columns does not use.)
            if dialect == Dialect::MySql
                && !key_columns
                    .iter()
                    .any(|&c| query::nulls_collide(meta, key, c))
            {
                // Through the key's own index: for a long key list MariaDB may prefer a scan of the
                // table, which in a locking read locks every row and the end of the primary key,
                // on which concurrent inserters deadlock.
                use sea_query::extension::mysql::{IndexHintScope, MySqlSelectStatementExt};
                let index = match key {
                    KeyId::PrimaryKey => "PRIMARY",
                    KeyId::Unique(_) => meta.key_name(key),
                };
                select.force_index(Alias::new(index), IndexHintScope::All);
            }
            // PostgreSQL locks the rows in the order they leave the scan (a bitmap scan: the
            // table's order, which differs from one key list to the next): in primary key order,
            // concurrent calls over overlapping keys wait for each other instead of deadlocking.
            if dialect == Dialect::Postgres && lock != Lock::None {
                select.order_by(
                    Alias::new(meta.columns[meta.primary_key].name),
                    sea_query::Order::Asc,
                );
            }
            let (mut sql, values) = query::render(&select, dialect);
            sql.push_str(lock.clause(dialect));
            (sql, values)
        },
    ))
}

/// Whether MySQL's bulk update addresses the stored rows by primary key ([`update_by_case`]): when
/// the primary key is an integer, whose value the locked read returns exactly as stored. Another
/// type may not come back as stored (a decimal with more digits than `Decimal` holds is rounded on
/// the way; a custom column type may normalise what it reads), and a value that does not would name
/// another row, or none: those rows are addressed by their unique key, as the read found them.
pub(crate) fn updates_by_primary_key<M: Model>() -> bool {
    matches!(
        M::META.primary_key_column().kind,
        ColumnKind::SmallInt | ColumnKind::Int | ColumnKind::BigInt
    )
}

/// The columns [`update_by_case`] writes, each with whether it is incremented and how many times
/// its expression names the new value: set to the new value (once), or the stored value plus it.
fn case_columns<M: Model>(update: &Update, dialect: Dialect) -> Vec<(usize, bool, usize)> {
    let meta = M::META;
    update
        .set
        .iter()
        .map(|&c| (c, false, 1))
        .chain(update.increments.iter().map(|&c| {
            let uses = crate::changes::increment_uses(&meta.columns[c], dialect);
            (c, true, uses)
        }))
        .collect()
}

/// The values [`update_by_case`] binds per row: per written column, the row's address (its
/// primary key, or its key's values) and the new value as often as the column's expression names
/// it; then the address again, for the `IN` list. What sizes MySQL's update chunks.
pub(crate) fn update_by_case_binds<M: Model>(
    key: KeyId,
    update: &Update,
    dialect: Dialect,
) -> usize {
    let address = if updates_by_primary_key::<M>() {
        1
    } else {
        M::META.key_columns(key).len()
    };
    case_columns::<M>(update, dialect)
        .iter()
        .map(|&(_, _, uses)| address + uses)
        .sum::<usize>()
        + address
}

/// One `UPDATE` of every row of `rows` (all of them stored, none with a NULL in its key), one
/// `CASE` per written column: MySQL's update of a chunk's stored rows, which never uses `ON
/// DUPLICATE KEY UPDATE` (it reacts to a conflict on any unique key, and would update the wrong
/// row).
///
/// With `pks` (see [`updates_by_primary_key`]), each row is addressed by the primary key the
/// locked read returned for it: `SET c = (CASE id WHEN ? THEN ? … ELSE c END) WHERE id IN (…)`.
/// MariaDB tests each row's `WHEN`s in turn, so the statement makes a comparison per pair of rows,
/// and an integer compares several times faster than text under its collation (500 stored rows:
/// 4.1–4.7 ms against 6.8–11.3 ms inside MariaDB 10.11). The rows are locked by the read, so the key
/// still names the row the primary key does. Without, by the key:
/// `SET c = (CASE WHEN k = ? THEN ? … ELSE c END) WHERE (k) IN (…)`.
pub(crate) fn update_by_case<M: Model>(
    rows: &[&M],
    pks: Option<&[Value]>,
    key: KeyId,
    update: &Update,
    dialect: Dialect,
) -> Statement {
    let meta = M::META;
    let by_pk = pks.is_some();
    debug_assert_eq!(by_pk, updates_by_primary_key::<M>(), "the rows' address");
    // Each row's address: its primary key, or its key's values.
    let addresses: Vec<Vec<Value>> = match pks {
        Some(pks) => {
            debug_assert_eq!(rows.len(), pks.len(), "one primary key per row");
            pks.iter().map(|pk| vec![pk.clone()]).collect()
        }
        None => rows
            .iter()
            .map(|row| query::key_values_of(*row, key, dialect))
            .collect(),
    };
    let columns = case_columns::<M>(update, dialect);
    // Values in placeholder order: per column, per row, its address then the new value (as often
    // as the column's expression names it); then the addresses of the IN list.
    let mut values =
        Vec::with_capacity(rows.len() * update_by_case_binds::<M>(key, update, dialect));
    for &(c, _, uses) in &columns {
        for (row, address) in rows.iter().zip(&addresses) {
            values.extend(address.iter().cloned());
            let value = row.column_value(c, dialect);
            values.extend(std::iter::repeat_n(value, uses));
        }
    }
    values.extend(addresses.into_iter().flatten());
    let shape = Shape::BulkUpdate {
        key,
        by_pk,
        set: update.clone(),
        rows: rows.len(),
    };
    query::cached::<M>(dialect, shape, values, |values| {
        let quote = |c: usize| query::quote(dialect, meta.columns[c].name);
        let mut values = values.into_iter();
        let mut statement = Query::update();
        statement.table(Alias::new(meta.table));
        for &(c, increment, uses) in &columns {
            let column = quote(c);
            // What a row's `WHEN` sets the column to: the new value, or the stored one plus it.
            let then = if increment {
                crate::changes::increment_sql(&meta.columns[c], &column, "?", dialect)
            } else {
                "?".to_owned()
            };
            let expr = if by_pk {
                let mut sql = format!("(CASE {}", quote(meta.primary_key));
                let mut bound = Vec::with_capacity(rows.len() * (1 + uses));
                for _ in 0..rows.len() {
                    bound.push(values.next().expect("a primary key"));
                    sql.push_str(" WHEN ? THEN ");
                    sql.push_str(&then);
                    bound.extend(values.by_ref().take(uses));
                }
                sql.push_str(&format!(" ELSE {column} END)"));
                Expr::cust_with_values(sql, bound)
            } else {
                let mut case = sea_query::CaseStatement::new();
                for _ in 0..rows.len() {
                    let mut condition = sea_query::Condition::all();
                    for &i in meta.key_columns(key) {
                        let value = values.next().expect("a key value");
                        condition = condition.add(query::key_eq(meta, key, i, value, dialect));
                    }
                    let value = if increment {
                        Expr::cust_with_values(then.clone(), values.by_ref().take(uses))
                    } else {
                        Expr::val(values.next().expect("a new value"))
                    };
                    case = case.case(condition, value);
                }
                case.finally(Expr::col(Alias::new(meta.columns[c].name)))
                    .into()
            };
            statement.value(Alias::new(meta.columns[c].name), expr);
        }
        if by_pk {
            statement.and_where(
                Expr::col(Alias::new(meta.columns[meta.primary_key].name)).is_in(values),
            );
        } else {
            statement.cond_where(query::keys_in(meta, key, rows.len(), &mut values, dialect));
        }
        query::render(&statement, dialect)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(crate::Model, Debug)]
    #[model(table = "items")]
    struct Item {
        #[model(primary_key, auto_increment)]
        id: i64,
        #[unique]
        sku: String,
        price: i64,
    }

    fn item(id: i64, sku: &str, price: i64) -> Item {
        Item {
            id,
            sku: sku.into(),
            price,
        }
    }

    const SKU: KeyId = KeyId::Unique(0);

    #[test]
    fn inserts_read_as_expected() {
        let a = item(7, "a", 1);
        let b = item(8, "b", 2);
        let rows = [&a, &b];
        let s = multi_insert(
            &rows,
            Some(OnKey::DoNothing(SKU)),
            false,
            true,
            Dialect::Postgres,
        );
        #[cfg(not(feature = "postgres"))]
        {
            assert_eq!(
                &*s.sql,
                r#"INSERT INTO "items" ("sku", "price") VALUES ($1, $2), ($3, $4) ON CONFLICT ("sku") DO NOTHING RETURNING "id", "sku", "price""#
            );
            assert_eq!(s.values.0.len(), 4);
        }
        // One array per column, of the unsized element type, whatever the rows.
        #[cfg(feature = "postgres")]
        {
            assert_eq!(
                &*s.sql,
                r#"INSERT INTO "items" ("sku", "price") SELECT unnest($1::text[]), unnest($2::int8[]) ON CONFLICT ("sku") DO NOTHING RETURNING "id", "sku", "price""#
            );
            assert_eq!(
                s.values.0,
                vec![
                    Value::Array(
                        sea_query::ArrayType::String,
                        Some(Box::new(vec![Value::from("a"), Value::from("b")]))
                    ),
                    Value::Array(
                        sea_query::ArrayType::BigInt,
                        Some(Box::new(vec![Value::from(1i64), Value::from(2i64)]))
                    ),
                ]
            );
            // The same text for another number of rows.
            let c = item(9, "c", 3);
            let t = multi_insert(
                &[&c],
                Some(OnKey::DoNothing(SKU)),
                false,
                true,
                Dialect::Postgres,
            );
            assert!(std::sync::Arc::ptr_eq(&s.sql, &t.sql));

            // Skip mode's anti-join: no conflict clause, the same arrays.
            let a = multi_insert(
                &rows,
                Some(OnKey::SkipStored(SKU)),
                false,
                false,
                Dialect::Postgres,
            );
            assert_eq!(
                &*a.sql,
                r#"INSERT INTO "items" ("sku", "price") SELECT "model_runtime_in"."sku", "model_runtime_in"."price" FROM (SELECT unnest($1::text[]) AS "sku", unnest($2::int8[]) AS "price") AS "model_runtime_in" WHERE NOT EXISTS(SELECT 1 FROM "items" AS "model_runtime_stored" WHERE "model_runtime_stored"."sku" = "model_runtime_in"."sku")"#
            );
            assert_eq!(a.values.0, s.values.0);
            assert!(skips_by_anti_join::<Item>(SKU, Dialect::Postgres));
            assert!(!skips_by_anti_join::<Item>(SKU, Dialect::Sqlite));
        }

        // The primary key as the conflict target is written as given.
        let s = multi_insert(
            &rows,
            Some(OnKey::DoUpdate(
                KeyId::PrimaryKey,
                &Update {
                    set: vec![2],
                    ..Update::default()
                },
            )),
            true,
            false,
            Dialect::Sqlite,
        );
        assert_eq!(
            &*s.sql,
            r#"INSERT INTO "items" ("id", "sku", "price") VALUES (?, ?, ?), (?, ?, ?) ON CONFLICT ("id") DO UPDATE SET "price" = "excluded"."price" WHERE ("items"."price" IS NOT "excluded"."price")"#
        );
        assert_eq!(s.values.0[0], Value::from(7i64));

        // An increment always writes (no "differs" test); a guard compares stored and incoming.
        let s = multi_insert(
            &rows,
            Some(OnKey::DoUpdate(
                SKU,
                &Update {
                    set: vec![],
                    increments: vec![2],
                    guard: Some(crate::changes::Guard {
                        column: 0,
                        strict: true,
                    }),
                },
            )),
            false,
            false,
            Dialect::Sqlite,
        );
        assert_eq!(
            &*s.sql,
            r#"INSERT INTO "items" ("sku", "price") VALUES (?, ?), (?, ?) ON CONFLICT ("sku") DO UPDATE SET "price" = CASE WHEN typeof("items"."price" + "excluded"."price") = 'integer' AND "items"."price" + "excluded"."price" BETWEEN -9223372036854775808 AND 9223372036854775807 THEN "items"."price" + "excluded"."price" ELSE abs(-9223372036854775807 - 1) END WHERE "items"."id" < "excluded"."id""#
        );
    }

    #[test]
    fn existing_rows_are_read_with_the_lock_asked_for() {
        let keys = vec![vec![Value::from("a")], vec![Value::from("b")]];
        let s = existing::<Item>(keys.clone(), SKU, true, Lock::Update, Dialect::MySql).unwrap();
        assert_eq!(
            &*s.sql,
            "SELECT `id`, `sku`, `price` FROM `items` FORCE INDEX (`items_sku_key`) WHERE (`sku`) IN ((?), (?)) FOR UPDATE"
        );
        let s = existing::<Item>(keys.clone(), SKU, false, Lock::None, Dialect::MySql).unwrap();
        assert_eq!(
            &*s.sql,
            "SELECT 1 FROM `items` FORCE INDEX (`items_sku_key`) WHERE (`sku`) IN ((?), (?))"
        );
        let s = existing::<Item>(keys, SKU, true, Lock::Update, Dialect::Sqlite).unwrap();
        assert!(!s.sql.contains("FOR UPDATE"), "{}", s.sql);
        assert!(existing::<Item>(Vec::new(), SKU, true, Lock::None, Dialect::Sqlite).is_none());
    }

    #[test]
    fn case_update_binds_every_value_once_in_order() {
        let a = item(0, "a", 10);
        let b = item(0, "b", 20);
        let price = Update {
            set: vec![2],
            ..Update::default()
        };
        let pks = [Value::from(7i64), Value::from(9i64)];
        let s = update_by_case(&[&a, &b], Some(&pks), SKU, &price, Dialect::MySql);
        assert_eq!(
            &*s.sql,
            "UPDATE `items` SET `price` = (CASE `id` WHEN ? THEN ? WHEN ? THEN ? ELSE `price` END) WHERE `id` IN (?, ?)"
        );
        assert_eq!(
            s.values.0,
            vec![
                Value::from(7i64),
                Value::from(10i64),
                Value::from(9i64),
                Value::from(20i64),
                Value::from(7i64),
                Value::from(9i64)
            ]
        );
        // The cached text serves other rows of the same shape.
        let c = item(0, "c", 30);
        let d = item(0, "d", 40);
        let t = update_by_case(&[&c, &d], Some(&pks), SKU, &price, Dialect::MySql);
        assert!(std::sync::Arc::ptr_eq(&s.sql, &t.sql));
        assert_eq!(t.values.0[1], Value::from(30i64));
    }
}
