//! Plain (non-unique) indexes, declared with `#[index]`: their DDL on each dialect, their live
//! catalog, and the steps a migration plan takes for them.
//!
//! | | PostgreSQL, SQLite | MySQL / MariaDB |
//! |---|---|---|
//! | DDL | `CREATE INDEX "name" ON "table" (…)` after the table | `KEY name (…)` inside the `CREATE TABLE`, which MySQL commits as one statement (and `IF NOT EXISTS` covers) |
//! | catalog | `pg_index` / `pragma_index_list`: non-unique, not partial, no expression | `information_schema.STATISTICS`; an index named after a foreign key is MySQL's own for it |
//! | diff | create a missing one, drop one no model declares | the same, never MySQL's own foreign key indexes, and one made first where a drop would leave a foreign key without an index |

use sea_query::{Alias, IndexCreateStatement, TableCreateStatement};

use crate::backend::{Backend, Dialect};
use crate::error::{Error, SchemaError};
use crate::meta::{ColumnKind, Index, ModelMeta};
use crate::migrate::{LiveIndex, Step, int, text, text_param};
use crate::query::quote;

/// MySQL: the model's indexes as `KEY` clauses of its `CREATE TABLE`.
pub(crate) fn add_to_table(
    meta: &ModelMeta,
    table: &mut TableCreateStatement,
    dialect: Dialect,
) -> Result<(), SchemaError> {
    if dialect != Dialect::MySql {
        return Ok(());
    }
    for index in meta.indexes {
        check_indexable(meta, index)?;
        table.index(&mut statement(meta, index));
    }
    Ok(())
}

/// PostgreSQL and SQLite: one `CREATE INDEX` per declared index, to run after the model's table
/// (none on MySQL, where they are part of the table).
pub(crate) fn create_statements(
    meta: &ModelMeta,
    dialect: Dialect,
    if_not_exists: bool,
) -> Vec<IndexCreateStatement> {
    if dialect == Dialect::MySql {
        return Vec::new();
    }
    meta.indexes
        .iter()
        .map(|index| {
            let mut statement = statement(meta, index);
            statement.table(Alias::new(meta.table));
            if if_not_exists {
                statement.if_not_exists();
            }
            statement
        })
        .collect()
}

fn statement(meta: &ModelMeta, index: &Index) -> IndexCreateStatement {
    let mut statement = sea_query::Index::create();
    statement.name(index.name);
    for column in meta.index_columns(index) {
        statement.col(Alias::new(column.name));
    }
    statement
}

/// A `CREATE INDEX` as one dialect's text.
pub(crate) fn render(statement: &IndexCreateStatement, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => statement.to_string(sea_query::SqliteQueryBuilder),
        Dialect::Postgres => statement.to_string(sea_query::PostgresQueryBuilder),
        Dialect::MySql => statement.to_string(sea_query::MysqlQueryBuilder),
    }
}

/// MySQL and MariaDB index an unbounded column only by a prefix: refuse, as for unique keys,
/// rather than index something else than the column.
fn check_indexable(meta: &ModelMeta, index: &Index) -> Result<(), SchemaError> {
    for column in meta.index_columns(index) {
        let unbounded = match column.kind {
            ColumnKind::Text => column.max_length.is_none(),
            ColumnKind::Bytes | ColumnKind::Json => true,
            _ => false,
        };
        if unbounded {
            return Err(SchemaError::Unsupported {
                model: meta.name,
                column: column.name,
                dialect: Dialect::MySql,
                reason: "MariaDB and MySQL cannot index an unbounded TEXT, BLOB or JSON column whole",
                hint: "give the field #[model(max_length = N)] so that it becomes VARCHAR(N)",
            });
        }
    }
    Ok(())
}

/// `CREATE INDEX` for a migration step.
pub(crate) fn create_sql(d: Dialect, table: &str, name: &str, columns: &[String]) -> String {
    let list = columns
        .iter()
        .map(|c| quote(d, c))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "CREATE INDEX {} ON {} ({list})",
        quote(d, name),
        quote(d, table)
    )
}

/// `DROP INDEX` for a migration step: by name on PostgreSQL and SQLite, where index names are the
/// schema's; MySQL's are the table's.
pub(crate) fn drop_sql(d: Dialect, table: &str, name: &str) -> String {
    match d {
        Dialect::MySql => format!("DROP INDEX {} ON {}", quote(d, name), quote(d, table)),
        Dialect::Postgres | Dialect::Sqlite => format!("DROP INDEX {}", quote(d, name)),
    }
}

/// The plain indexes of `table` as the database has them, sorted by name. Partial and expression
/// indexes are left out (no model declares one), and so are the indexes MySQL makes by itself for
/// a foreign key (named after the constraint).
pub(crate) async fn live<DB: Backend>(
    conn: &mut DB::Connection,
    table: &str,
) -> Result<Vec<LiveIndex>, Error> {
    let sql = match DB::DIALECT {
        Dialect::Postgres => {
            "SELECT idx.relname::text, att.attname::text, 0::int8 FROM pg_index i \
             JOIN pg_class idx ON idx.oid = i.indexrelid \
             JOIN pg_class rel ON rel.oid = i.indrelid \
             JOIN pg_namespace ns ON ns.oid = rel.relnamespace \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute att ON att.attrelid = rel.oid AND att.attnum = k.attnum \
             WHERE NOT i.indisunique AND NOT i.indisprimary AND i.indpred IS NULL AND i.indexprs IS NULL \
             AND rel.relname = $1 AND ns.nspname = current_schema() \
             ORDER BY idx.relname, k.ord"
        }
        Dialect::MySql => {
            "SELECT CAST(s.INDEX_NAME AS CHAR), CAST(s.COLUMN_NAME AS CHAR), \
             CAST(EXISTS (SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c \
             WHERE c.CONSTRAINT_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME \
             AND c.CONSTRAINT_NAME = s.INDEX_NAME AND c.CONSTRAINT_TYPE = 'FOREIGN KEY') AS SIGNED) \
             FROM information_schema.STATISTICS s \
             WHERE s.TABLE_SCHEMA = DATABASE() AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 1 AND s.INDEX_TYPE = 'BTREE' \
             ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX"
        }
        Dialect::Sqlite => {
            "SELECT il.name, ii.name, 0 FROM pragma_index_list(?) il \
             JOIN pragma_index_info(il.name) ii \
             WHERE il.\"unique\" = 0 AND il.origin = 'c' AND il.partial = 0 \
             ORDER BY il.name, ii.seqno"
        }
    };
    let values = text_param(table);
    let mut out: Vec<LiveIndex> = Vec::new();
    for row in DB::fetch_all(conn, sql.into(), values).await? {
        let row = DB::row_ref(&row);
        let (name, column) = (text(row, 0)?, text(row, 1)?);
        match out.last_mut() {
            Some(last) if last.name == name => last.columns.push(column),
            _ => out.push(LiveIndex {
                name,
                columns: vec![column],
                for_foreign_key: int(row, 2)? == 1,
            }),
        }
    }
    // A SQLite expression column has no name.
    out.retain(|index| index.columns.iter().all(|c| !c.is_empty()));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The steps that bring a table's live indexes to the model's: drops of those no declared index
/// is (by name and columns), and creates of the declared ones missing.
///
/// MySQL needs an index that leads with a foreign key's columns as long as the key exists, and
/// refuses to drop the last one (error 1553). Where a drop would take the last, the index MySQL
/// would have made for the key (named after it) is created first, among the drops.
pub(crate) fn steps(
    meta: &ModelMeta,
    live: &[LiveIndex],
    dialect: Dialect,
) -> (Vec<Step>, Vec<Step>) {
    let table = meta.table.to_owned();
    let declared: Vec<(&str, Vec<String>)> = meta
        .indexes
        .iter()
        .map(|index| {
            let columns = meta
                .index_columns(index)
                .map(|c| c.name.to_owned())
                .collect();
            (index.name, columns)
        })
        .collect();
    let undeclared: Vec<&LiveIndex> = live
        .iter()
        .filter(|l| !l.for_foreign_key)
        .filter(|l| {
            !declared
                .iter()
                .any(|(n, c)| l.name == *n && l.columns == *c)
        })
        .collect();
    let mut drops = Vec::new();
    if dialect == Dialect::MySql {
        for column in meta.columns {
            let Some(fk) = column.references else {
                continue;
            };
            let leads = |columns: &[String]| columns.first().is_some_and(|c| c == column.name);
            let dropped = undeclared.iter().any(|l| leads(&l.columns));
            let kept = declared.iter().any(|(_, c)| leads(c))
                || live.iter().any(|l| l.for_foreign_key && leads(&l.columns))
                || meta.primary_key_column().name == column.name
                || meta.uniques.iter().any(|u| {
                    meta.constraint_columns(u)
                        .next()
                        .is_some_and(|c| c.name == column.name)
                });
            if dropped && !kept {
                drops.push(Step::CreateIndex {
                    table: table.clone(),
                    name: fk.name.to_owned(),
                    columns: vec![column.name.to_owned()],
                });
            }
        }
    }
    drops.extend(undeclared.into_iter().map(|l| Step::DropIndex {
        table: table.clone(),
        index: l.clone(),
    }));
    let creates = declared
        .into_iter()
        .filter(|(n, c)| !live.iter().any(|l| l.name == *n && l.columns == *c))
        .map(|(name, columns)| Step::CreateIndex {
            table: table.clone(),
            name: name.to_owned(),
            columns,
        })
        .collect();
    (drops, creates)
}
