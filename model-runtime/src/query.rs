//! Statement building: model metadata and values in, SQL text and bound values out. Knows nothing of
//! connections.

use sea_query::{
    Alias, Condition, Expr, ExprTrait, OnConflict, Query, SelectStatement, Value, Values,
};

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
) -> (String, Values) {
    let meta = M::META;
    let explicit_pk = key == Some(KeyId::PrimaryKey);
    let columns: Vec<usize> = (0..meta.columns.len())
        .filter(|&i| explicit_pk || !meta.columns[i].auto_increment)
        .collect();
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new(meta.table))
        .columns(columns.iter().map(|&i| Alias::new(meta.columns[i].name)));
    insert
        .values(
            columns
                .iter()
                .map(|&i| Expr::val(row.column_value(i, dialect))),
        )
        .expect("one value per column by construction");
    if do_nothing && dialect != Dialect::MySql {
        insert.on_conflict(OnConflict::new().do_nothing().to_owned());
    }
    let (mut sql, values) = build!(insert, dialect);
    sql.push_str(&returning_all(meta, dialect));
    (sql, values)
}

/// `WHERE k1 = ? AND k2 = ?` for a key. A NULL value matches nothing, as in the unique constraint
/// itself: NULLs never collide, so a key with a NULL identifies no row.
fn key_condition(meta: &ModelMeta, key: KeyId, values: Vec<Value>) -> Condition {
    let mut condition = Condition::all();
    for (&column, value) in meta.key_columns(key).iter().zip(values) {
        condition = condition.add(Expr::col(Alias::new(meta.columns[column].name)).eq(value));
    }
    condition
}

/// `SELECT <all columns> FROM t WHERE <key>`: a lookup by key.
pub(crate) fn select_by_key(meta: &ModelMeta, key: KeyId, values: Vec<Value>) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(meta.columns.iter().map(|c| Alias::new(c.name)))
        .from(Alias::new(meta.table))
        .cond_where(key_condition(meta, key, values));
    select
}

/// `SELECT 1 FROM t WHERE <key> LIMIT 1`.
pub(crate) fn exists_by_key(
    meta: &ModelMeta,
    key: KeyId,
    values: Vec<Value>,
    dialect: Dialect,
) -> (String, Values) {
    let mut select = Query::select();
    select
        .expr(Expr::val(1))
        .from(Alias::new(meta.table))
        .cond_where(key_condition(meta, key, values))
        .limit(1);
    build!(select, dialect)
}

/// `UPDATE t SET c = ?, … WHERE <key>`, with `RETURNING <all columns>` except on MySQL (MariaDB has
/// no `UPDATE … RETURNING`).
pub(crate) fn update_by_key(
    meta: &ModelMeta,
    key: KeyId,
    key_values: Vec<Value>,
    set: Vec<(usize, Value)>,
    dialect: Dialect,
) -> (String, Values) {
    let mut update = Query::update();
    update
        .table(Alias::new(meta.table))
        .values(
            set.into_iter()
                .map(|(i, v)| (Alias::new(meta.columns[i].name), Expr::val(v))),
        )
        .cond_where(key_condition(meta, key, key_values));
    let (mut sql, values) = build!(update, dialect);
    if dialect != Dialect::MySql {
        sql.push_str(&returning_all(meta, dialect));
    }
    (sql, values)
}

/// `DELETE FROM t WHERE <key>`.
pub(crate) fn delete_by_key(
    meta: &ModelMeta,
    key: KeyId,
    key_values: Vec<Value>,
    dialect: Dialect,
) -> (String, Values) {
    let mut delete = Query::delete();
    delete
        .from_table(Alias::new(meta.table))
        .cond_where(key_condition(meta, key, key_values));
    build!(delete, dialect)
}

/// How a select locks the rows it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// A plain read.
    None,
    /// `FOR SHARE` (`LOCK IN SHARE MODE` on MySQL): a read that sees the latest committed row even
    /// inside a MySQL REPEATABLE READ snapshot, and keeps it from changing until the transaction ends.
    Share,
    /// `FOR UPDATE`: Django's `select_for_update()`.
    Update,
}

/// Renders a select for a dialect, with its lock. SQLite has no row locks (a write transaction locks
/// the whole database), so there the lock clause is left out.
pub(crate) fn render_select(
    select: &SelectStatement,
    dialect: Dialect,
    lock: Lock,
) -> (String, Values) {
    let (mut sql, values) = build!(select, dialect);
    match (dialect, lock) {
        (Dialect::Sqlite, _) | (_, Lock::None) => {}
        (Dialect::MySql, Lock::Share) => sql.push_str(" LOCK IN SHARE MODE"),
        (Dialect::Postgres, Lock::Share) => sql.push_str(" FOR SHARE"),
        (_, Lock::Update) => sql.push_str(" FOR UPDATE"),
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
