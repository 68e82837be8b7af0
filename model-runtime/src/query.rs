//! Statement building: model metadata and values in, SQL text and bound values out. Knows nothing of
//! connections.
//!
//! Every statement is built with sea-query, once per shape (model, dialect, statement kind, key,
//! columns): the SQL text is cached, and later calls only gather their values. Building a statement
//! costs microseconds, a visible share of a call that finds its row in a few dozen.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use sea_query::{Alias, Condition, Expr, ExprTrait, OnConflict, Query, Value, Values};

use crate::backend::Dialect;
use crate::changes::{Extra, Guard};
use crate::meta::{KeyId, Literal, ModelMeta, Test};
use crate::model::Model;

/// Renders a sea-query statement for a dialect, with its values to bind.
pub(crate) fn render(
    statement: &impl sea_query::QueryStatementBuilder,
    dialect: Dialect,
) -> (String, Values) {
    match dialect {
        Dialect::Sqlite => statement.build_any(&sea_query::SqliteQueryBuilder),
        Dialect::Postgres => statement.build_any(&sea_query::PostgresQueryBuilder),
        Dialect::MySql => statement.build_any(&sea_query::MysqlQueryBuilder),
    }
}

/// A statement ready to run: SQL text and the values to bind, in placeholder order.
#[derive(Debug)]
pub(crate) struct Statement {
    pub(crate) sql: Arc<str>,
    pub(crate) values: Values,
}

/// How a select locks the rows it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lock {
    /// A plain read.
    None,
    /// `FOR SHARE` (`LOCK IN SHARE MODE` on MySQL): a read that sees the latest committed row even
    /// inside a MySQL REPEATABLE READ snapshot, and keeps it from changing until the transaction ends.
    Share,
    /// `FOR UPDATE`: Django's `select_for_update()`.
    Update,
}

impl Lock {
    /// The clause that ends a locking `SELECT` (with its leading space), or nothing where the
    /// dialect has no row locks.
    pub(crate) fn clause(self, dialect: Dialect) -> &'static str {
        match self {
            _ if !dialect.has_row_locks() => "",
            Lock::None => "",
            Lock::Share if dialect == Dialect::MySql => " LOCK IN SHARE MODE",
            Lock::Share => " FOR SHARE",
            Lock::Update => " FOR UPDATE",
        }
    }
}

/// What distinguishes one statement text from another of the same model and dialect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Shape {
    Select(KeyId, Lock),
    Exists(KeyId),
    Insert {
        explicit_pk: bool,
        do_nothing: bool,
    },
    /// Key, columns set, increments and guard, and whether only a row whose values differ is
    /// written.
    Update {
        key: KeyId,
        set: Vec<usize>,
        extra: (Vec<usize>, Option<Guard>),
        only_if_changed: bool,
    },
    /// The row with a key, whether the guard admits the incoming values, and whether its listed
    /// columns already hold them.
    Probe(KeyId, Vec<usize>, Option<Guard>),
    Delete(KeyId),
    /// The keys checked, and whether the row's own primary key is excluded.
    Validate(Vec<KeyId>, bool),
    /// The stored rows among a chunk's keys: key, number of keys, whole rows or just `1`, lock.
    Existing {
        key: KeyId,
        keys: usize,
        whole_rows: bool,
        lock: Lock,
    },
    /// A multi-row insert: rows (or arrays), conflict clause (key and updated columns),
    /// `RETURNING` or not, primary key written or left to the database.
    BulkInsert {
        rows: usize,
        /// PostgreSQL's array source: each column's element type (and `rows` is 0: one text for
        /// any number of rows).
        arrays: Option<Vec<&'static str>>,
        on_key: Option<(KeyId, Option<crate::bulk::Update>)>,
        returning: crate::bulk::Returning,
        explicit_pk: bool,
        /// PostgreSQL's anti-join in place of the conflict clause (`OnKey::SkipStored`).
        anti_join: bool,
    },
    /// SQLite's aggregated read of a chunk's stored rows and whether they differ
    /// (`bulk::statements::stored_differs`): key, listed columns, rows.
    StoredDiffs {
        key: KeyId,
        set: Vec<usize>,
        rows: usize,
    },
    /// MySQL's multi-row `INSERT IGNORE … RETURNING`: rows, primary key written or not.
    InsertIgnore {
        rows: usize,
        explicit_pk: bool,
    },
    /// A bulk update of stored rows, one `CASE` per column: key, whether the rows are addressed by
    /// primary key, columns, rows.
    BulkUpdate {
        key: KeyId,
        by_pk: bool,
        set: crate::bulk::Update,
        rows: usize,
    },
}

type CacheKey = (TypeId, Dialect, Shape);

fn cache() -> &'static RwLock<HashMap<CacheKey, Arc<str>>> {
    static CACHE: OnceLock<RwLock<HashMap<CacheKey, Arc<str>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The statement of this shape with these values: the cached text, or one built by `build`. A
/// built text is cached only when sea-query bound exactly `values`, in order, so that the text fits
/// every later call's values.
pub(crate) fn cached<M: Model>(
    dialect: Dialect,
    shape: Shape,
    values: Vec<Value>,
    build: impl FnOnce(Vec<Value>) -> (String, Values),
) -> Statement {
    let key = (TypeId::of::<M>(), dialect, shape);
    // A poisoned lock only means another thread panicked while holding it; the map is still whole.
    let hit = cache()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    if let Some(sql) = hit {
        return Statement {
            sql,
            values: Values(values),
        };
    }
    let (sql, built) = build(values.clone());
    let sql: Arc<str> = sql.into();
    // Bulk statements come in every size a chunk can have after deduplication: the cache keeps texts
    // up to a budget, and builds anything past it each time instead of growing without bound.
    if built.0 == values && reserve(sql.len()) {
        cache()
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Arc::clone(&sql));
    }
    Statement { sql, values: built }
}

/// Bytes of statement text the cache may hold in all.
const CACHE_BUDGET: usize = 16 << 20;

/// Takes `bytes` of the cache's budget; `false` when they do not fit.
fn reserve(bytes: usize) -> bool {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static USED: AtomicUsize = AtomicUsize::new(0);
    USED.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
        (used + bytes <= CACHE_BUDGET).then_some(used + bytes)
    })
    .is_ok()
}

/// Quotes an identifier for a dialect, doubling any quote character inside it.
pub(crate) fn quote(dialect: Dialect, ident: &str) -> String {
    let q = dialect.identifier_quote();
    let mut out = String::with_capacity(ident.len() + 2);
    out.push(q);
    for c in ident.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

/// ` RETURNING "a", "b", …` over every column, in model order. Written by hand because sea-query's
/// MySQL builder drops `RETURNING` (MariaDB 10.5+ supports it on `INSERT`).
pub(crate) fn returning_all(meta: &ModelMeta, dialect: Dialect) -> String {
    let mut sql = String::from(" RETURNING ");
    for (n, column) in meta.columns.iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&quote(dialect, column.name));
    }
    sql
}

/// `WHERE k1 = ? AND k2 = ?` for a key, compared as the constraint compares: through
/// [`key_expr`] (a case-insensitive column's ASCII fold, against the value folded by
/// [`compared_values`] before the statement is looked up in the cache), and with a
/// NULL-safe equality where the constraint makes NULLs collide (`nulls_not_distinct`). Elsewhere a
/// NULL value matches nothing, as in the unique constraint itself: NULLs never collide, so a key
/// with a NULL identifies no row.
pub(crate) fn key_condition(
    meta: &ModelMeta,
    key: KeyId,
    values: Vec<Value>,
    dialect: Dialect,
) -> Condition {
    // The values come compared already (folded where the key folds): a cached statement's later
    // uses bind their values without coming here.
    let mut condition = Condition::all();
    for (&column, value) in meta.key_columns(key).iter().zip(values) {
        condition = condition.add(key_eq(meta, key, column, value, dialect));
    }
    if let Some(predicate) = predicate_sql(meta, key, dialect) {
        condition = condition.add(Expr::cust(predicate));
    }
    condition
}

/// The rows a partial constraint covers, as SQL with its literals inline (a bound predicate
/// would not match the index's: PostgreSQL then refuses the conflict target, 42P10, once it
/// switches to a generic plan); `None` for a key over every row.
pub(crate) fn predicate_sql(meta: &ModelMeta, key: KeyId, dialect: Dialect) -> Option<String> {
    let constraint = meta.key_constraint(key)?;
    if constraint.condition.is_empty() {
        return None;
    }
    let terms: Vec<String> = constraint
        .condition
        .iter()
        .map(|term| {
            let mut column = quote(dialect, meta.columns[term.column].name);
            // MariaDB compares text by the column's collation, which by default folds case and
            // pads with spaces: compare the bytes, as the other two do.
            if dialect == Dialect::MySql
                && matches!(
                    term.test,
                    Test::Equals(Literal::Text(_)) | Test::NotEquals(Literal::Text(_))
                )
            {
                column = format!("CAST({column} AS BINARY)");
            }
            match term.test {
                Test::IsNull => format!("{column} IS NULL"),
                Test::IsNotNull => format!("{column} IS NOT NULL"),
                Test::Equals(literal) => format!("{column} = {}", literal_sql(literal, dialect)),
                Test::NotEquals(literal) => {
                    format!("{column} <> {}", literal_sql(literal, dialect))
                }
            }
        })
        .collect();
    Some(terms.join(" AND "))
}

/// A literal as SQL text: strings quoted with `'` doubled (and `\` doubled on MySQL, whose default
/// mode treats it as an escape), booleans as PostgreSQL's `TRUE`/`FALSE` or the others' 1/0.
fn literal_sql(literal: Literal, dialect: Dialect) -> String {
    match literal {
        Literal::Bool(b) if dialect == Dialect::Postgres => {
            if b { "TRUE" } else { "FALSE" }.to_owned()
        }
        Literal::Bool(b) => u8::from(b).to_string(),
        Literal::Int(n) => n.to_string(),
        Literal::Text(text) => {
            let mut escaped = text.replace('\'', "''");
            if dialect == Dialect::MySql {
                escaped = escaped.replace('\\', "\\\\");
            }
            format!("'{escaped}'")
        }
    }
}

/// Whether a partial key covers `row` (its values satisfy the constraint's condition); always for
/// a key over every row. A row the key does not cover is not identified by it: no lookup by the key
/// can find it, and it never collides under the key.
pub(crate) fn covers<M: Model>(row: &M, key: KeyId, dialect: Dialect) -> bool {
    let Some(constraint) = M::META.key_constraint(key) else {
        return true;
    };
    constraint.condition.iter().all(|term| {
        let value = row.column_value(term.column, dialect);
        let null = crate::value::is_null(&value);
        match term.test {
            Test::IsNull => null,
            Test::IsNotNull => !null,
            Test::Equals(literal) => !null && literal_matches(&value, literal),
            Test::NotEquals(literal) => !null && !literal_matches(&value, literal),
        }
    })
}

fn literal_matches(value: &Value, literal: Literal) -> bool {
    match (value, literal) {
        (Value::Bool(Some(v)), Literal::Bool(b)) => *v == b,
        (Value::SmallInt(Some(v)), Literal::Int(n)) => i64::from(*v) == n,
        (Value::Int(Some(v)), Literal::Int(n)) => i64::from(*v) == n,
        (Value::BigInt(Some(v)), Literal::Int(n)) => *v == n,
        (Value::String(Some(v)), Literal::Text(t)) => v == t,
        _ => false,
    }
}

/// `(k1, k2) IN ((?, ?), …)` for `count` keys whose compared values come from `values` in order,
/// each column through [`key_expr`]; where the key's constraint makes NULLs collide, the OR of
/// each key's [`key_eq`]s instead (a tuple `IN` never matches a NULL).
pub(crate) fn keys_in(
    meta: &ModelMeta,
    key: KeyId,
    count: usize,
    values: &mut impl Iterator<Item = Value>,
    dialect: Dialect,
) -> Condition {
    let columns = meta.key_columns(key);
    if columns.iter().any(|&c| nulls_collide(meta, key, c)) {
        let mut any = Condition::any();
        for _ in 0..count {
            let mut all = Condition::all();
            for &c in columns {
                let value = values.next().expect("a value per key column");
                all = all.add(key_eq(meta, key, c, value, dialect));
            }
            any = any.add(all);
        }
        return any;
    }
    let target = Expr::tuple(columns.iter().map(|&c| key_expr(meta, key, c, dialect)));
    let tuples: Vec<Expr> = (0..count)
        .map(|_| Expr::tuple(values.by_ref().take(columns.len()).map(Expr::val)))
        .collect();
    let mut condition = Condition::all().add(target.is_in(tuples));
    if let Some(predicate) = predicate_sql(meta, key, dialect) {
        condition = condition.add(Expr::cust(predicate));
    }
    condition
}

/// `expr = value` for one column of a key, or the dialect's NULL-safe equality where the key's
/// constraint makes NULLs collide and the column can hold one.
pub(crate) fn key_eq(
    meta: &ModelMeta,
    key: KeyId,
    column: usize,
    value: impl Into<Expr>,
    dialect: Dialect,
) -> Expr {
    let expr = key_expr(meta, key, column, dialect);
    if !nulls_collide(meta, key, column) {
        return expr.eq(value);
    }
    null_safe_eq(expr, value.into(), false, dialect)
}

/// `left = right` where NULL equals NULL: `IS NOT DISTINCT FROM` (PostgreSQL), `IS` (SQLite), `<=>`
/// (MySQL; with `bytes`, of both sides cast to binary, so that text compares as stored bytes rather
/// than by its collation).
fn null_safe_eq(left: Expr, right: Expr, bytes: bool, dialect: Dialect) -> Expr {
    let template = match dialect {
        Dialect::Sqlite => "? IS ?",
        Dialect::Postgres => "$1 IS NOT DISTINCT FROM $2",
        Dialect::MySql if bytes => "CAST(? AS BINARY) <=> CAST(? AS BINARY)",
        Dialect::MySql => "? <=> ?",
    };
    Expr::cust_with_exprs(template, [left, right])
}

/// Whether a NULL in column `column` of key `key` is a value that collides with another NULL.
pub(crate) fn nulls_collide(meta: &ModelMeta, key: KeyId, column: usize) -> bool {
    meta.key_constraint(key)
        .is_some_and(|constraint| constraint.nulls_collide_in(&meta.columns[column]))
}

/// Whether a key whose values include a NULL identifies a row: never under SQL's default (NULLs
/// never collide), always under `nulls_not_distinct`.
pub(crate) fn null_identifies(meta: &ModelMeta, key: KeyId) -> bool {
    meta.key_constraint(key)
        .is_some_and(|constraint| !constraint.nulls_distinct)
}

/// The expression key `key` compares for its column `column`: the column itself, or for a
/// `case_insensitive` column its ASCII fold, spelt as the constraint's index spells it (so that the
/// database uses that index): `lower("c")` on SQLite (whose `lower()` folds ASCII only),
/// `lower("c" COLLATE "C")` on PostgreSQL (the C collation folds ASCII only, whatever the
/// database's locale), and the generated column `c__ci` on MariaDB, which has no expression indexes.
pub(crate) fn key_expr(meta: &ModelMeta, key: KeyId, column: usize, dialect: Dialect) -> Expr {
    let name = meta.columns[column].name;
    if dialect == Dialect::MySql
        && let KeyId::Unique(k) = key
        && !meta.uniques[k].condition.is_empty()
    {
        return Expr::col(Alias::new(partial_column(meta, k, column)));
    }
    let folds = meta
        .key_constraint(key)
        .is_some_and(|constraint| constraint.folds(column));
    if !folds {
        return Expr::col(Alias::new(name));
    }
    match dialect {
        Dialect::MySql => Expr::col(Alias::new(folded_column(name))),
        _ => Expr::cust(fold_sql(name, dialect)),
    }
}

/// The SQL text of a column's ASCII fold on SQLite and PostgreSQL (see [`key_expr`]), and on
/// MariaDB the expression of its generated column: `A`–`Z` replaced one by one (`REPLACE` compares
/// bytes), so that nothing else folds, as on the other two.
pub(crate) fn fold_sql(column: &str, dialect: Dialect) -> String {
    fold_of(&quote(dialect, column), dialect)
}

/// The ASCII fold of an SQL expression (see [`fold_sql`]).
pub(crate) fn fold_of(expr: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => format!("lower({expr})"),
        Dialect::Postgres => format!("lower({expr} COLLATE \"C\")"),
        Dialect::MySql => {
            let mut sql = expr.to_owned();
            for upper in b'A'..=b'Z' {
                let (upper, lower) = (upper as char, upper.to_ascii_lowercase() as char);
                sql = format!("replace({sql}, '{upper}', '{lower}')");
            }
            sql
        }
    }
}

/// The name of the generated column that holds column `column` of partial constraint `k` on
/// MariaDB: the column's value (folded where the constraint folds it) in the rows the constraint
/// covers, NULL elsewhere, so that those rows never collide. Named by what it holds (the
/// constraint's name, condition and fold, hashed), so that a changed constraint gets a column of
/// its own rather than a stale one of the same name.
pub(crate) fn partial_column(meta: &ModelMeta, k: usize, column: usize) -> String {
    let constraint = &meta.uniques[k];
    let what = format!(
        "{}\u{0}{}\u{0}{}",
        constraint.name,
        predicate_sql(meta, KeyId::Unique(k), Dialect::MySql).unwrap_or_default(),
        constraint.folds(column)
    );
    // FNV-1a, 32 bits: stable across builds and releases, unlike the standard hasher.
    let hash = what.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{}__p{hash:08x}", meta.columns[column].name)
}

/// The name of the generated column that holds a case-insensitive key column's fold on MariaDB.
pub(crate) fn folded_column(column: &str) -> String {
    format!("{column}__ci")
}

/// A key's values as its constraint compares them: the text of a `case_insensitive` column with its
/// ASCII letters folded, as the database folds the column ([`key_expr`]). Folding twice changes
/// nothing.
pub(crate) fn compared_values(meta: &ModelMeta, key: KeyId, mut values: Vec<Value>) -> Vec<Value> {
    if let Some(constraint) = meta.key_constraint(key)
        && !constraint.folded.is_empty()
    {
        for (&column, value) in meta.key_columns(key).iter().zip(&mut values) {
            if constraint.folds(column)
                && let Value::String(Some(text)) = value
            {
                text.make_ascii_lowercase();
            }
        }
    }
    values
}

/// `INSERT INTO t (…) VALUES (…) RETURNING <all columns>` for one row.
///
/// An auto-increment primary key is left to the database, unless `key` is the primary key: a lookup
/// by id must insert that id. With `do_nothing`, SQLite and PostgreSQL get an untargeted
/// `ON CONFLICT DO NOTHING`: a conflict on any unique constraint inserts nothing and returns no row
/// (MySQL has no such form; the flag is ignored there).
pub(crate) fn insert_returning<M: Model>(
    row: &M,
    key: Option<KeyId>,
    do_nothing: bool,
    dialect: Dialect,
) -> Statement {
    let meta = M::META;
    let explicit_pk = key == Some(KeyId::PrimaryKey);
    let do_nothing = do_nothing && dialect.has_on_conflict();
    let columns: Vec<usize> = (0..meta.columns.len())
        .filter(|&i| explicit_pk || !meta.columns[i].auto_increment)
        .collect();
    let values = columns
        .iter()
        .map(|&i| row.column_value(i, dialect))
        .collect();
    cached::<M>(
        dialect,
        Shape::Insert {
            explicit_pk,
            do_nothing,
        },
        values,
        |values| {
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new(meta.table))
                .columns(columns.iter().map(|&i| Alias::new(meta.columns[i].name)));
            insert
                .values(values.into_iter().map(Expr::val))
                .expect("one value per column by construction");
            if do_nothing {
                insert.on_conflict(OnConflict::new().do_nothing().to_owned());
            }
            let (mut sql, values) = render(&insert, dialect);
            sql.push_str(&returning_all(meta, dialect));
            (sql, values)
        },
    )
}

/// `SELECT <all columns> FROM t WHERE <key>`, with its lock. SQLite has no row locks (a write
/// transaction locks the whole database), so there the lock clause is left out.
pub(crate) fn select_by_key<M: Model>(
    key: KeyId,
    values: Vec<Value>,
    lock: Lock,
    dialect: Dialect,
) -> Statement {
    let meta = M::META;
    let values = compared_values(meta, key, values);
    cached::<M>(dialect, Shape::Select(key, lock), values, |values| {
        let mut select = Query::select();
        select
            .columns(meta.columns.iter().map(|c| Alias::new(c.name)))
            .from(Alias::new(meta.table))
            .cond_where(key_condition(meta, key, values, dialect));
        let (mut sql, values) = render(&select, dialect);
        sql.push_str(lock.clause(dialect));
        (sql, values)
    })
}

/// `SELECT 1 FROM t WHERE <key> LIMIT 1`.
pub(crate) fn exists_by_key<M: Model>(
    key: KeyId,
    values: Vec<Value>,
    dialect: Dialect,
) -> Statement {
    let meta = M::META;
    let values = compared_values(meta, key, values);
    cached::<M>(dialect, Shape::Exists(key), values, |values| {
        let mut select = Query::select();
        select
            .expr(Expr::cust("1"))
            .from(Alias::new(meta.table))
            .cond_where(key_condition(meta, key, values, dialect));
        let (mut sql, values) = render(&select, dialect);
        sql.push_str(" LIMIT 1");
        (sql, values)
    })
}

/// `UPDATE t SET c = ?, …, n = n + ?, … WHERE <key> [AND <guard>] [AND <a listed column differs>]`,
/// with `RETURNING <all columns>` except on MySQL (MariaDB has no `UPDATE … RETURNING`). With
/// increments, the row is written whatever its listed columns hold.
pub(crate) fn update_by_key<M: Model>(
    key: KeyId,
    key_values: Vec<Value>,
    set: Vec<(usize, Value)>,
    extra: &Extra,
    only_if_changed: bool,
    dialect: Dialect,
) -> Statement {
    let meta = M::META;
    let only_if_changed = only_if_changed && extra.increments.is_empty();
    let key_values = compared_values(meta, key, key_values);
    let columns: Vec<usize> = set.iter().map(|(i, _)| *i).collect();
    let key_count = key_values.len();
    let set_values: Vec<Value> = set.into_iter().map(|(_, v)| v).collect();
    // The values in placeholder order: the new values, the increments, the key's, the guard's, and
    // again the new values for the test that the row differs.
    let mut values = set_values.clone();
    extra.push_increments(meta, &mut values, dialect);
    values.extend(key_values);
    extra.push_guard(meta, &mut values, dialect);
    if only_if_changed {
        values.extend(set_values);
    }
    cached::<M>(
        dialect,
        Shape::Update {
            key,
            set: columns.clone(),
            extra: extra.shape(),
            only_if_changed,
        },
        values,
        |values| {
            let mut values = values.into_iter();
            let mut update = Query::update();
            update.table(Alias::new(meta.table)).values(
                columns
                    .iter()
                    .zip(values.by_ref().take(columns.len()).collect::<Vec<_>>())
                    .map(|(&i, v)| (Alias::new(meta.columns[i].name), Expr::val(v))),
            );
            for &(i, _) in &extra.increments {
                let column = &meta.columns[i];
                let stored = quote(dialect, column.name);
                let uses = crate::changes::increment_uses(column, dialect);
                let sum = with_value(
                    |p| crate::changes::increment_sql(column, &stored, p, dialect),
                    &mut values,
                    uses,
                    dialect,
                );
                update.value(Alias::new(column.name), sum);
            }
            let key_values: Vec<Value> = values.by_ref().take(key_count).collect();
            update.cond_where(key_condition(meta, key, key_values, dialect));
            if let Some(guard) = extra.guard_expr(meta, None, &mut values, dialect) {
                update.and_where(guard);
            }
            if only_if_changed {
                let mut differs = Condition::any();
                for (&i, value) in columns.iter().zip(values.by_ref()) {
                    differs = differs.add(same_value(meta, i, value, dialect).not());
                }
                update.cond_where(differs);
            }
            let (mut sql, values) = render(&update, dialect);
            if dialect.has_update_returning() {
                sql.push_str(&returning_all(meta, dialect));
            }
            (sql, values)
        },
    )
}

/// `SELECT <all columns>, <guard admits>, <listed columns hold the values> FROM t WHERE <key> FOR
/// UPDATE`: the row with the key, whether the guard lets the incoming values replace it (`1` without
/// a guard), and whether its listed columns already hold these values, compared as the database
/// compares them (NULL-safe). Both flags are read as `i64` after the row's columns.
pub(crate) fn select_probe<M: Model>(
    key: KeyId,
    key_values: Vec<Value>,
    set: Vec<(usize, Value)>,
    extra: &Extra,
    dialect: Dialect,
) -> Statement {
    let meta = M::META;
    let key_values = compared_values(meta, key, key_values);
    let columns: Vec<usize> = set.iter().map(|(i, _)| *i).collect();
    let key_count = key_values.len();
    let mut values = Vec::new();
    extra.push_guard(meta, &mut values, dialect);
    values.extend(set.into_iter().map(|(_, v)| v));
    values.extend(key_values);
    cached::<M>(
        dialect,
        Shape::Probe(
            key,
            columns.clone(),
            extra.guard.as_ref().map(|(guard, _)| *guard),
        ),
        values,
        |values| {
            let mut values = values.into_iter();
            let admits = extra
                .guard_expr(meta, None, &mut values, dialect)
                .unwrap_or_else(|| Expr::cust("1 = 1"));
            let mut same = Condition::all().add(Expr::cust("1 = 1"));
            for (&i, value) in columns
                .iter()
                .zip(values.by_ref().take(columns.len()).collect::<Vec<_>>())
            {
                same = same.add(same_value(meta, i, value, dialect));
            }
            let key_values: Vec<Value> = values.collect();
            debug_assert_eq!(key_values.len(), key_count);
            let mut select = Query::select();
            select
                .columns(meta.columns.iter().map(|c| Alias::new(c.name)))
                .expr(flag(admits.into(), dialect))
                .expr(flag(same, dialect))
                .from(Alias::new(meta.table))
                .cond_where(key_condition(meta, key, key_values, dialect));
            // Locked, as the update would have locked it: the row stays as found until the
            // transaction ends, and a row changed after a REPEATABLE READ snapshot is a retryable
            // error rather than an answer from the snapshot.
            let (mut sql, values) = render(&select, dialect);
            sql.push_str(Lock::Update.clause(dialect));
            (sql, values)
        },
    )
}

/// `1` when the condition holds, else `0`, as a 64-bit integer on every backend.
fn flag(condition: Condition, dialect: Dialect) -> Expr {
    let case = Expr::case(condition, 1i64).finally(0i64);
    match dialect {
        Dialect::Postgres => Expr::cust_with_exprs("CAST($1 AS BIGINT)", [case.into()]),
        Dialect::MySql => Expr::cust_with_exprs("CAST(? AS SIGNED)", [case.into()]),
        Dialect::Sqlite => case.into(),
    }
}

/// An SQL expression that names one bound value `uses` times: `make(p)` spells it with `p` as that
/// value's placeholder. The value is taken `uses` times from `values` (each use binds it once).
pub(crate) fn with_value(
    make: impl FnOnce(&str) -> String,
    values: &mut impl Iterator<Item = Value>,
    uses: usize,
    dialect: Dialect,
) -> Expr {
    let taken: Vec<Value> = values.by_ref().take(uses).collect();
    match dialect {
        Dialect::Postgres => {
            let first = taken
                .into_iter()
                .next()
                .expect("a value for the expression");
            Expr::cust_with_values(make("$1"), [first])
        }
        _ => Expr::cust_with_values(make("?"), taken),
    }
}

/// Column `column` holds `value`, NULL-safe: `IS NOT DISTINCT FROM` (PostgreSQL), `IS` (SQLite),
/// `<=>` (MySQL, comparing text by its bytes: a column that is no key has the table's collation,
/// which may fold case and accents and pad spaces, while MariaDB writes a row whose bytes change).
fn same_value(meta: &ModelMeta, column: usize, value: Value, dialect: Dialect) -> Expr {
    null_safe_eq(
        Expr::col(Alias::new(meta.columns[column].name)),
        Expr::val(value),
        compares_bytes(meta, column),
        dialect,
    )
}

/// Whether MySQL must compare column `column` as bytes for "the same value" (text and JSON, which
/// MariaDB stores as text).
pub(crate) fn compares_bytes(meta: &ModelMeta, column: usize) -> bool {
    matches!(
        meta.columns[column].kind,
        crate::meta::ColumnKind::Text | crate::meta::ColumnKind::Json
    )
}

/// `DELETE FROM t WHERE <key>`.
pub(crate) fn delete_by_key<M: Model>(
    key: KeyId,
    key_values: Vec<Value>,
    dialect: Dialect,
) -> Statement {
    let meta = M::META;
    let key_values = compared_values(meta, key, key_values);
    cached::<M>(dialect, Shape::Delete(key), key_values, |key_values| {
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new(meta.table))
            .cond_where(key_condition(meta, key, key_values, dialect));
        render(&delete, dialect)
    })
}

/// `SELECT EXISTS(SELECT 1 FROM t WHERE <key> [AND <pk> <> ?]) AS "k0", …`: one query, one row, a
/// flag per key listed in `keys`, each answered by that key's own index. With `exclude_own`, the row
/// with `row`'s own primary key is not counted (a stored row validates against itself).
pub(crate) fn validate_keys<M: Model>(
    row: &M,
    keys: &[KeyId],
    exclude_own: bool,
    dialect: Dialect,
) -> Statement {
    let meta = M::META;
    let pk = meta.primary_key;
    let mut values = Vec::new();
    for &key in keys {
        values.extend(key_values_of(row, key, dialect));
        if exclude_own {
            values.push(row.column_value(pk, dialect));
        }
    }
    cached::<M>(
        dialect,
        Shape::Validate(keys.to_vec(), exclude_own),
        values,
        |values| {
            let mut values = values.into_iter();
            let mut select = Query::select();
            for (n, &key) in keys.iter().enumerate() {
                let key_values: Vec<Value> =
                    values.by_ref().take(meta.key_columns(key).len()).collect();
                let mut sub = Query::select();
                sub.expr(Expr::cust("1"))
                    .from(Alias::new(meta.table))
                    .cond_where(key_condition(meta, key, key_values, dialect));
                if exclude_own {
                    let pk_value = values.next().expect("a primary key value per key");
                    sub.and_where(Expr::col(Alias::new(meta.columns[pk].name)).ne(pk_value));
                }
                select.expr_as(Expr::exists(sub), Alias::new(format!("k{n}")));
            }
            render(&select, dialect)
        },
    )
}

/// The key's values taken from a model row, as the key's constraint compares them
/// ([`compared_values`]).
pub(crate) fn key_values_of<M: Model>(row: &M, key: KeyId, dialect: Dialect) -> Vec<Value> {
    let values = M::META
        .key_columns(key)
        .iter()
        .map(|&i| row.column_value(i, dialect))
        .collect();
    compared_values(M::META, key, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(crate::Model)]
    #[model(table = "items")]
    #[unique_together(tenant, name)]
    struct Item {
        #[model(primary_key, auto_increment)]
        id: i64,
        tenant: Option<i32>,
        name: String,
    }

    fn item(tenant: Option<i32>, name: &str) -> Item {
        Item {
            id: 0,
            tenant,
            name: name.into(),
        }
    }

    /// The cached text serves values it was not built from, NULLs included: every value is bound.
    #[test]
    fn cached_text_fits_later_values() {
        for dialect in Dialect::ALL {
            let first = insert_returning(&item(Some(1), "a"), None, true, dialect);
            let later = insert_returning(&item(None, "b"), None, true, dialect);
            assert!(
                Arc::ptr_eq(&first.sql, &later.sql),
                "{dialect}: the text is reused"
            );
            assert_eq!(later.values.0.len(), 2);
            assert_eq!(later.values.0[0], Value::Int(None));

            let key = KeyId::Unique(0);
            let a = select_by_key::<Item>(
                key,
                key_values_of(&item(Some(1), "a"), key, dialect),
                Lock::None,
                dialect,
            );
            let b = select_by_key::<Item>(
                key,
                key_values_of(&item(None, "b"), key, dialect),
                Lock::None,
                dialect,
            );
            assert!(Arc::ptr_eq(&a.sql, &b.sql));
            assert_eq!(
                b.values.0,
                vec![Value::Int(None), Value::String(Some("b".into()))]
            );
        }
    }

    #[test]
    fn statements_read_as_expected() {
        let d = Dialect::Postgres;
        let key = KeyId::Unique(0);
        let kv = key_values_of(&item(Some(1), "a"), key, d);
        assert_eq!(
            &*select_by_key::<Item>(key, kv.clone(), Lock::Update, d).sql,
            r#"SELECT "id", "tenant", "name" FROM "items" WHERE "tenant" = $1 AND "name" = $2 FOR UPDATE"#
        );
        assert_eq!(
            &*insert_returning(&item(Some(1), "a"), None, true, d).sql,
            r#"INSERT INTO "items" ("tenant", "name") VALUES ($1, $2) ON CONFLICT  DO NOTHING RETURNING "id", "tenant", "name""#
        );
        let update = update_by_key::<Item>(
            key,
            kv.clone(),
            vec![(2, Value::from("z"))],
            &Extra::default(),
            false,
            d,
        );
        assert_eq!(
            &*update.sql,
            r#"UPDATE "items" SET "name" = $1 WHERE "tenant" = $2 AND "name" = $3 RETURNING "id", "tenant", "name""#
        );
        assert_eq!(update.values.0[0], Value::from("z"));
        assert_eq!(
            &*exists_by_key::<Item>(key, kv.clone(), Dialect::MySql).sql,
            "SELECT 1 FROM `items` WHERE `tenant` = ? AND `name` = ? LIMIT 1"
        );
        assert_eq!(
            &*insert_returning(
                &item(Some(1), "a"),
                Some(KeyId::PrimaryKey),
                true,
                Dialect::MySql
            )
            .sql,
            "INSERT INTO `items` (`id`, `tenant`, `name`) VALUES (?, ?, ?) RETURNING `id`, `tenant`, `name`"
        );
    }
}
