//! Statement building: model metadata and values in, SQL text and bound values out. Knows nothing of
//! connections.

use sea_query::{Alias, Expr, ExprTrait, OnConflict, Query, SelectStatement, Value, Values};

use crate::backend::Dialect;
use crate::meta::{KeyId, ModelMeta};
use crate::model::Model;

/// Renders any sea-query statement for a dialect, with its values to bind.
macro_rules! build {
    ($statement:expr, $dialect:expr) => {
        match $dialect {
            Dialect::Sqlite => $statement.build(sea_query::SqliteQueryBuilder),
            Dialect::Postgres => $statement.build(sea_query::PostgresQueryBuilder),
            Dialect::MySql => $statement.build(sea_query::MysqlQueryBuilder),
        }
    };
}

/// Quotes an identifier for a dialect, doubling any quote character inside it.
pub(crate) fn quote(dialect: Dialect, ident: &str) -> String {
    let q = if dialect == Dialect::MySql { '`' } else { '"' };
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

/// The columns an insert writes: all but an auto-increment primary key, which the database assigns.
pub(crate) fn insert_columns(meta: &ModelMeta) -> impl Iterator<Item = usize> + '_ {
    meta.columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.auto_increment)
        .map(|(i, _)| i)
}

/// `INSERT INTO t (…) VALUES (…) RETURNING …` for one row.
pub(crate) fn insert_returning<M: Model>(row: &M, dialect: Dialect) -> (String, Values) {
    insert_returning_on_conflict(row, None, dialect)
}

/// The insert of [`insert_returning`], with `ON CONFLICT (key) DO NOTHING` when `key` is given
/// (SQLite and PostgreSQL only: MySQL has no conflict target). A conflict on any other constraint
/// still raises, as it must.
pub(crate) fn insert_returning_on_conflict<M: Model>(
    row: &M,
    key: Option<KeyId>,
    dialect: Dialect,
) -> (String, Values) {
    let meta = M::META;
    let mut insert = Query::insert();
    insert.into_table(Alias::new(meta.table));
    let columns: Vec<usize> = insert_columns(meta).collect();
    insert.columns(columns.iter().map(|&i| Alias::new(meta.columns[i].name)));
    let values: Vec<Value> = columns
        .iter()
        .map(|&i| row.column_value(i, dialect))
        .collect();
    insert
        .values(values.into_iter().map(Expr::val))
        .expect("one value per column by construction");
    if let Some(key) = key {
        debug_assert!(dialect != Dialect::MySql, "MySQL has no ON CONFLICT target");
        let columns = meta
            .key_columns(key)
            .iter()
            .map(|&i| Alias::new(meta.columns[i].name));
        insert.on_conflict(OnConflict::columns(columns).do_nothing().to_owned());
    }
    let (mut sql, values) = build!(insert, dialect);
    sql.push_str(&returning_all(meta, dialect));
    (sql, values)
}

/// `SELECT <all columns> FROM t WHERE k1 = ? AND k2 = ?`: a lookup by key. A NULL key value matches
/// rows where the column IS NULL, as Django's `filter(col=None)` does.
pub(crate) fn select_by_key(meta: &ModelMeta, key: KeyId, values: Vec<Value>) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(meta.columns.iter().map(|c| Alias::new(c.name)))
        .from(Alias::new(meta.table));
    for (&column, value) in meta.key_columns(key).iter().zip(values) {
        let col = Expr::col(Alias::new(meta.columns[column].name));
        if is_null(&value) {
            select.and_where(col.is_null());
        } else {
            select.and_where(col.eq(value));
        }
    }
    select
}

/// Renders a select for a dialect; `locking` adds `FOR SHARE` (`LOCK IN SHARE MODE` on MySQL), a read
/// that sees the latest committed row even inside a REPEATABLE READ snapshot on MySQL.
pub(crate) fn render_select(
    select: &SelectStatement,
    dialect: Dialect,
    locking: bool,
) -> (String, Values) {
    let (mut sql, values) = build!(select, dialect);
    if locking {
        match dialect {
            Dialect::MySql => sql.push_str(" LOCK IN SHARE MODE"),
            Dialect::Postgres => sql.push_str(" FOR SHARE"),
            // SQLite has no row locks: a write transaction locks the whole database.
            Dialect::Sqlite => {}
        }
    }
    (sql, values)
}

/// The key's values taken from a model row.
pub(crate) fn key_values_of<M: Model>(row: &M, key: KeyId, dialect: Dialect) -> Vec<Value> {
    M::META
        .key_columns(key)
        .iter()
        .map(|&i| row.column_value(i, dialect))
        .collect()
}

/// Whether a value is SQL NULL. Covers every variant a [`crate::Column`] produces.
fn is_null(value: &Value) -> bool {
    match value {
        Value::Bool(v) => v.is_none(),
        Value::SmallInt(v) => v.is_none(),
        Value::Int(v) => v.is_none(),
        Value::BigInt(v) => v.is_none(),
        Value::Float(v) => v.is_none(),
        Value::Double(v) => v.is_none(),
        Value::String(v) => v.is_none(),
        Value::Bytes(v) => v.is_none(),
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(v) => v.is_none(),
        #[cfg(feature = "chrono")]
        Value::ChronoDate(v) => v.is_none(),
        #[cfg(feature = "chrono")]
        Value::ChronoTime(v) => v.is_none(),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTime(v) => v.is_none(),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTimeUtc(v) => v.is_none(),
        #[cfg(feature = "uuid")]
        Value::Uuid(v) => v.is_none(),
        #[cfg(feature = "json")]
        Value::Json(v) => v.is_none(),
        _ => false,
    }
}
