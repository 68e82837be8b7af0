//! The constraint half of migrations: compare the models with the live database, see the rows that
//! would block a new unique constraint before adding it, apply the plan, or render it as SQL.
//!
//! ```no_run
//! # use model_runtime::{Model, Schema};
//! # #[derive(Model)] struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String }
//! # async fn demo(pool: sqlx::SqlitePool) -> Result<(), model_runtime::Error> {
//! let plan = Schema::new().model::<Product>().diff(&pool).await?;
//! println!("{plan}"); // what differs, step by step
//! let blocking = plan.duplicates(&pool, 10).await?;
//! if blocking.is_empty() {
//!     plan.apply(&pool).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! | step | PostgreSQL | MySQL / MariaDB | SQLite |
//! |---|---|---|---|
//! | add a unique constraint | `ALTER TABLE … ADD CONSTRAINT … UNIQUE` | `ALTER TABLE … ADD CONSTRAINT … UNIQUE` | `CREATE UNIQUE INDEX` (SQLite cannot add a table constraint) |
//! | drop one | `ALTER TABLE … DROP CONSTRAINT` | `ALTER TABLE … DROP INDEX` | `DROP INDEX` (a constraint written in `CREATE TABLE` cannot be dropped without rebuilding the table: refused) |
//! | rename one | `ALTER TABLE … RENAME CONSTRAINT` | `ALTER TABLE … RENAME INDEX` | drop and create the index |
//! | create a plain index (`#[index]`) | `CREATE INDEX` | `CREATE INDEX` | `CREATE INDEX` (and again after a rebuild, which drops the table's indexes) |
//! | drop one no model declares | `DROP INDEX` | `DROP INDEX … ON …` | `DROP INDEX` |
//! | all steps | one transaction | one step at a time (MySQL commits each DDL statement); a failure says which steps were applied | one transaction |

use std::fmt;

use sea_query::{Value, Values};

use crate::backend::{Backend, Dialect, RowRef};
use crate::column::SqlType;
use crate::conn::Conn;
use crate::error::Error;
use crate::meta::{ColumnKind, ColumnMeta, ModelMeta};
use crate::ops::Op;
use crate::query::quote;
use crate::schema::{self, Schema};

/// A unique constraint as the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveUnique {
    /// Its name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<String>,
    /// Whether it is a unique index rather than a table constraint: on SQLite as migrations add them
    /// (a table constraint there is written in `CREATE TABLE`), on PostgreSQL one made with
    /// `CREATE UNIQUE INDEX`. Always `false` on MySQL, where the two are the same.
    pub is_index: bool,
    /// Whether it compares plain columns: no expression, no predicate, NULLs distinct, no
    /// generated column (on MariaDB). `false` for what a case-insensitive, nulls-not-distinct or
    /// partial constraint is made of; such a constraint is matched by its name and this flag.
    pub plain: bool,
}

/// A plain (non-unique) index as the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveIndex {
    /// Its name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<String>,
    /// MySQL: the index is named after a foreign key constraint of the table, as the one MySQL
    /// makes for a foreign key that no other index serves. A plan never drops it, and makes one
    /// before dropping an index that was the foreign key's last.
    pub for_foreign_key: bool,
}

/// A column as the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveColumn {
    /// Its name.
    pub name: String,
    /// The type, as the catalog spells it.
    pub sql_type: String,
    /// Whether it accepts NULL.
    pub nullable: bool,
    /// The declared length of a `VARCHAR(n)`; `None` for other types.
    pub max_length: Option<u32>,
}

/// A table as the database has it: its columns and unique constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTable {
    /// Its name.
    pub name: String,
    /// Its columns, in table order.
    pub columns: Vec<LiveColumn>,
    /// Its unique constraints (not the primary key), sorted by name.
    pub uniques: Vec<LiveUnique>,
    /// Its plain indexes, sorted by name: not unique, not partial, on columns (not expressions).
    pub indexes: Vec<LiveIndex>,
}

/// One change a [`Plan`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Create a model's missing table, with all its constraints.
    CreateTable {
        /// The model's table.
        table: &'static str,
    },
    /// Add a declared unique constraint.
    AddUnique {
        /// The table.
        table: String,
        /// The constraint's name.
        name: String,
        /// Its columns.
        columns: Vec<String>,
    },
    /// Drop a unique constraint no model declares.
    DropUnique {
        /// The table.
        table: String,
        /// The constraint as the database has it.
        unique: LiveUnique,
    },
    /// SQLite: rebuild a table whose table constraints must change (SQLite can neither drop nor
    /// rename one): create the model's table under a scratch name, copy the rows, drop the old
    /// table and rename the new one. The constraints it gains are in `adds` (for the duplicate
    /// check); it loses every constraint the model does not declare.
    RebuildTable {
        /// The table.
        table: &'static str,
        /// The declared constraints the live table lacks: name and columns.
        adds: Vec<(String, Vec<String>)>,
        /// The live table's unique constraints, for the record.
        live: Vec<LiveUnique>,
        /// The columns copied: those both the model and the live table have.
        columns: Vec<String>,
        /// Why the rebuild cannot run as planned, if it cannot: the live table has columns the
        /// model lacks (their data would be lost) or columns that differ from the model's (the copy
        /// would convert them). `apply` and `sql` refuse such a plan.
        blocked: Option<String>,
    },
    /// Rename a constraint whose columns match a declared one of another name.
    RenameUnique {
        /// The table.
        table: String,
        /// The constraint as the database has it.
        from: LiveUnique,
        /// The declared name.
        to: String,
    },
    /// Create a declared plain index (`#[index]`).
    CreateIndex {
        /// The table.
        table: String,
        /// The index's name.
        name: String,
        /// Its columns.
        columns: Vec<String>,
    },
    /// Drop a plain index no model declares (or declares over other columns).
    DropIndex {
        /// The table.
        table: String,
        /// The index as the database has it.
        index: LiveIndex,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CreateTable { table } => write!(f, "create table {table}"),
            Step::CreateIndex {
                table,
                name,
                columns,
            } => write!(f, "create index {name} ({}) on {table}", columns.join(", ")),
            Step::DropIndex { table, index } => write!(
                f,
                "drop index {} ({}) from {table}: no model declares it",
                index.name,
                index.columns.join(", ")
            ),
            Step::AddUnique {
                table,
                name,
                columns,
            } => write!(
                f,
                "add unique constraint {name} ({}) to {table}",
                columns.join(", ")
            ),
            Step::DropUnique { table, unique } => write!(
                f,
                "drop unique constraint {} ({}) from {table}: no model declares it",
                unique.name,
                unique.columns.join(", ")
            ),
            Step::RenameUnique { table, from, to } => write!(
                f,
                "rename unique constraint {} ({}) of {table} to {to}",
                from.name,
                from.columns.join(", ")
            ),
            Step::RebuildTable {
                table, adds, live, ..
            } => write!(
                f,
                "rebuild table {table} (SQLite cannot drop or rename a table constraint): from unique ({}) to the model's{}",
                live.iter()
                    .map(|u| u.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if adds.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", adding {}",
                        adds.iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        }
    }
}

/// A column whose type, nullability or length differs from the model: reported, never altered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDifference {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// What differs, and what the model declares.
    pub what: String,
    /// What would fix it, in words or SQL.
    pub fix: String,
}

impl fmt::Display for ColumnDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}: {}; to fix: {}",
            self.table, self.column, self.what, self.fix
        )
    }
}

/// What differs between the models and a live database, as steps to take and differences to see.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The dialect the plan was made for.
    pub dialect: Dialect,
    /// The steps, in order: plain indexes to drop, tables to create (or rebuild), constraints to
    /// rename, to drop, to add, then plain indexes to create.
    pub steps: Vec<Step>,
    /// Columns that differ (missing columns included); [`Plan::apply`] does not change them.
    pub columns: Vec<ColumnDifference>,
    models: Vec<&'static ModelMeta>,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() && self.columns.is_empty() {
            return f.write_str("the database matches the models");
        }
        for (n, step) in self.steps.iter().enumerate() {
            writeln!(f, "{}. {step}", n + 1)?;
        }
        for difference in &self.columns {
            writeln!(f, "column {difference}")?;
        }
        Ok(())
    }
}

/// Rows that share the values of a unique constraint about to be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateGroup {
    /// The table.
    pub table: String,
    /// The constraint to be added.
    pub constraint: String,
    /// Its columns.
    pub columns: Vec<String>,
    /// The shared values, as text, one per column.
    pub values: Vec<String>,
    /// How many rows share them.
    pub count: u64,
    /// Their primary keys, as text, lowest first; at most the cap asked for.
    pub primary_keys: Vec<String>,
}

impl fmt::Display for DuplicateGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows of {} share ({}) = ({}), blocking {}: primary keys {}",
            self.count,
            self.table,
            self.columns.join(", "),
            self.values.join(", "),
            self.constraint,
            self.primary_keys.join(", ")
        )
    }
}

/// Which row of a duplicate group [`Plan::resolve_duplicates`] keeps; the others are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The row with the lowest primary key (usually the oldest).
    LowestPrimaryKey,
    /// The row with the highest primary key (usually the newest).
    HighestPrimaryKey,
}

/// What [`Plan::resolve_duplicates`] deleted for one constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The table.
    pub table: String,
    /// The constraint that was blocked.
    pub constraint: String,
    /// The primary keys deleted, as text.
    pub primary_keys: Vec<String>,
}

/// A migration rendered as SQL: `up` applies the plan, `down` undoes it where that can be derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The statements that apply the plan, in order.
    pub up: Vec<String>,
    /// The statements that undo it, in order; a step that cannot be undone (a created table's data)
    /// is undone by dropping what it created.
    pub down: Vec<String>,
}

impl Schema {
    /// Reads the live catalog of every model's table and compares it with the models: a
    /// [`Plan`] of the steps that bring the database's unique constraints and plain indexes to the
    /// models', and the columns that differ.
    pub async fn diff<'c>(&self, conn: impl Conn<'c>) -> Result<Plan, Error> {
        crate::ops::run(conn, Diff(self)).await
    }

    /// Drops every model's table, if it exists, tables that reference others first.
    pub async fn drop<'c>(&self, conn: impl Conn<'c>) -> Result<(), Error> {
        crate::ops::run(conn, DropTables(self)).await
    }
}

/// The catalog of one table; `None` when it does not exist.
pub async fn inspect<DB: Backend>(
    conn: &mut DB::Connection,
    table: &str,
) -> Result<Option<LiveTable>, Error> {
    let dialect = DB::DIALECT;
    let columns_sql = match dialect {
        Dialect::Postgres => {
            "SELECT column_name::text, \
             CASE WHEN data_type = 'numeric' AND numeric_precision IS NOT NULL \
             THEN 'numeric(' || numeric_precision || ',' || numeric_scale || ')' ELSE data_type END::text, \
             is_nullable::text, COALESCE(character_maximum_length, -1)::int8 \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
        Dialect::MySql => {
            "SELECT CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR), CAST(IS_NULLABLE AS CHAR), CAST(COALESCE(IF(DATA_TYPE = 'varchar', CHARACTER_MAXIMUM_LENGTH, NULL), -1) AS SIGNED) \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
        }
        Dialect::Sqlite => {
            "SELECT name, type, CASE WHEN \"notnull\" = 0 AND pk = 0 THEN 'YES' ELSE 'NO' END, -1 FROM pragma_table_info(?)"
        }
    };
    let rows = DB::fetch_all(conn, columns_sql.into(), text_param(table)).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut columns = Vec::with_capacity(rows.len());
    for row in &rows {
        let row = DB::row_ref(row);
        let name = text(row, 0)?;
        let sql_type = text(row, 1)?;
        let length = int(row, 3)?;
        let max_length = match dialect {
            Dialect::Sqlite => varchar_length(&sql_type),
            _ => u32::try_from(length).ok(),
        };
        columns.push(LiveColumn {
            name,
            sql_type,
            nullable: text(row, 2)? == "YES",
            max_length,
        });
    }
    let mut uniques = match dialect {
        Dialect::Postgres => {
            // (`indnullsnotdistinct` is PostgreSQL 15's; read through JSON so that older servers
            // answer too.)
            let sql = "SELECT con.conname::text, att.attname::text, \
                 CASE WHEN COALESCE((to_jsonb(i) ->> 'indnullsnotdistinct')::bool, false) THEN 0 ELSE 1 END::int8 \
                 FROM pg_constraint con \
                 JOIN pg_index i ON i.indexrelid = con.conindid \
                 JOIN pg_class rel ON rel.oid = con.conrelid \
                 JOIN pg_namespace ns ON ns.oid = rel.relnamespace \
                 CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute att ON att.attrelid = rel.oid AND att.attnum = k.attnum \
                 WHERE con.contype = 'u' AND rel.relname = $1 AND ns.nspname = current_schema() \
                 ORDER BY con.conname, k.ord";
            let mut uniques = grouped::<DB>(conn, sql, table, false).await?;
            // Unique indexes made with `CREATE UNIQUE INDEX`, which enforce the same but are no
            // constraint; an expression part (a case-insensitive key's fold) as PostgreSQL prints
            // it. Partial ones too: a model's partial constraint is matched by its name.
            let sql = "SELECT idx.relname::text, COALESCE(att.attname::text, pg_get_indexdef(i.indexrelid, k.ord::int, true)), \
                 CASE WHEN i.indexprs IS NULL AND i.indpred IS NULL AND NOT COALESCE((to_jsonb(i) ->> 'indnullsnotdistinct')::bool, false) THEN 1 ELSE 0 END::int8 \
                 FROM pg_index i \
                 JOIN pg_class idx ON idx.oid = i.indexrelid \
                 JOIN pg_class rel ON rel.oid = i.indrelid \
                 JOIN pg_namespace ns ON ns.oid = rel.relnamespace \
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
                 LEFT JOIN pg_attribute att ON att.attrelid = rel.oid AND att.attnum = k.attnum AND k.attnum <> 0 \
                 WHERE i.indisunique AND NOT i.indisprimary \
                 AND rel.relname = $1 AND ns.nspname = current_schema() \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid) \
                 ORDER BY idx.relname, k.ord";
            uniques.extend(grouped::<DB>(conn, sql, table, true).await?);
            uniques
        }
        Dialect::MySql => {
            let sql = "SELECT CAST(s.INDEX_NAME AS CHAR), CAST(s.COLUMN_NAME AS CHAR), \
                 CAST(IF(c.IS_GENERATED = 'NEVER', 1, 0) AS SIGNED) FROM information_schema.STATISTICS s \
                 JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME \
                 WHERE s.TABLE_SCHEMA = DATABASE() AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0 AND s.INDEX_NAME <> 'PRIMARY' \
                 ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX";
            grouped::<DB>(conn, sql, table, false).await?
        }
        Dialect::Sqlite => {
            // Unique indexes made by `CREATE UNIQUE INDEX`, and the named table constraints of the
            // `CREATE TABLE` text (SQLite's catalog keeps their names nowhere else).
            let sql = "SELECT il.name, COALESCE(ii.name, ''), \
                 CASE WHEN il.partial = 0 AND ii.name IS NOT NULL THEN 1 ELSE 0 END FROM pragma_index_list(?) il \
                 JOIN pragma_index_xinfo(il.name) ii WHERE il.\"unique\" = 1 AND il.origin = 'c' AND ii.key = 1 \
                 ORDER BY il.name, ii.seqno";
            let mut uniques = grouped::<DB>(conn, sql, table, true).await?;
            let create = DB::fetch_all(
                conn,
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?".into(),
                text_param(table),
            )
            .await?;
            if let Some(row) = create.first() {
                uniques.extend(sqlite_table_constraints(&text(DB::row_ref(row), 0)?));
            }
            uniques
        }
    };
    uniques.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(LiveTable {
        name: table.to_owned(),
        columns,
        uniques,
        indexes: crate::index::live::<DB>(conn, table).await?,
    }))
}

async fn grouped<DB: Backend>(
    conn: &mut DB::Connection,
    sql: &'static str,
    table: &str,
    is_index: bool,
) -> Result<Vec<LiveUnique>, Error> {
    let mut out: Vec<LiveUnique> = Vec::new();
    for row in DB::fetch_all(conn, sql.into(), text_param(table)).await? {
        let row = DB::row_ref(&row);
        let (name, column) = (text(row, 0)?, text(row, 1)?);
        // The third column: whether this part is a plain column of a plain index.
        let plain = int(row, 2)? != 0;
        match out.last_mut() {
            Some(last) if last.name == name => {
                last.columns.push(column);
                last.plain &= plain;
            }
            _ => out.push(LiveUnique {
                name,
                columns: vec![column],
                is_index,
                plain,
            }),
        }
    }
    Ok(out)
}

/// `CONSTRAINT "name" UNIQUE ("a", "b")` in a `CREATE TABLE` text as [`crate::Schema`] writes it.
fn sqlite_table_constraints(create: &str) -> Vec<LiveUnique> {
    let mut out = Vec::new();
    let mut rest = create;
    while let Some(at) = rest.find("CONSTRAINT \"") {
        rest = &rest[at + "CONSTRAINT \"".len()..];
        let Some(end) = rest.find('"') else { break };
        let name = rest[..end].to_owned();
        let after = &rest[end + 1..];
        if let Some(list) = after.strip_prefix(" UNIQUE (")
            && let Some(close) = list.find(')')
        {
            out.push(LiveUnique {
                name,
                columns: list[..close]
                    .split(", ")
                    .map(|c| c.trim_matches('"').replace("\"\"", "\""))
                    .collect(),
                is_index: false,
                plain: true,
            });
        }
    }
    out
}

/// A type's family, so that spellings of one type compare equal (`character varying(40)` and
/// `varchar(40)`, `int(11)` and `integer`, MariaDB's `longtext` for `json`); lengths are compared
/// on their own.
fn type_family(dialect: Dialect, sql_type: &str) -> String {
    let t = sql_type.trim().to_ascii_lowercase();
    if t.starts_with("tinyint(1)") {
        return "bool".into();
    }
    // What follows the type proper: lengths, `CHARACTER SET …`, `unsigned`.
    let base = t.split('(').next().unwrap_or(&t).trim();
    let base = base.split(" character set").next().unwrap_or(base).trim();
    let family = match base {
        "bool" | "boolean" => "bool",
        "smallint" | "int2" => "smallint",
        "int" | "integer" | "int4" | "mediumint" => "integer",
        "bigint" | "int8" => "bigint",
        "real" | "float" | "float4" => "real",
        "double" | "double precision" | "float8" => "double",
        "varchar" | "character varying" | "text" | "longtext" | "mediumtext" | "char"
        | "character" => "text",
        "json" if dialect == Dialect::MySql => "text",
        "blob" | "longblob" | "bytea" | "varbinary" => "bytes",
        "numeric" | "decimal" | "decimal_text" => "decimal",
        "timestamp without time zone" | "timestamp" | "datetime" | "datetime_text" => "datetime",
        "timestamp with time zone" | "timestamptz" | "timestamp_with_timezone_text" => {
            "timestamptz"
        }
        "time without time zone" | "time" | "time_text" => "time",
        "date" | "date_text" => "date",
        other => other,
    };
    // SQLite: every integer type is the same 64-bit integer.
    match (dialect, family) {
        (Dialect::Sqlite, "smallint" | "integer" | "bigint") => "integer".into(),
        (Dialect::MySql, "timestamptz") => "datetime".into(),
        _ => family.into(),
    }
}

/// The statement that gives a column the model's type, or what to do where there is none.
fn retype(dialect: Dialect, meta: &ModelMeta, column: &ColumnMeta, declared: &str) -> String {
    match dialect {
        Dialect::Sqlite => "rebuild the table (SQLite cannot alter a column)".into(),
        Dialect::Postgres => format!(
            "ALTER TABLE {} ALTER COLUMN {} TYPE {declared}",
            quote(dialect, meta.table),
            quote(dialect, column.name)
        ),
        Dialect::MySql => format!(
            "ALTER TABLE {} MODIFY COLUMN {} {declared} {}",
            quote(dialect, meta.table),
            quote(dialect, column.name),
            if column.nullable { "NULL" } else { "NOT NULL" }
        ),
    }
}

/// `(precision, scale)` of a sized decimal type as a catalog spells it (`numeric(10,2)`,
/// `decimal(10,2)`, `decimal_text(10, 2)`); `None` for an unsized one.
fn decimal_size(sql_type: &str) -> Option<(u32, u32)> {
    let lower = sql_type.to_ascii_lowercase();
    let inner = lower.split_once('(')?.1.split_once(')')?.0;
    let (p, s) = inner.split_once(',')?;
    Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
}

fn varchar_length(sql_type: &str) -> Option<u32> {
    let lower = sql_type.to_ascii_lowercase();
    let inner = lower.strip_prefix("varchar(")?.strip_suffix(')')?;
    inner.trim().parse().ok()
}

/// The one value a catalog query binds: a table's name.
pub(crate) fn text_param(value: &str) -> Values {
    Values(vec![Value::String(Some(value.to_owned()))])
}

/// A catalog row's text column (`""` for NULL).
pub(crate) fn text(row: RowRef<'_>, index: usize) -> Result<String, Error> {
    <String as SqlType>::decode(row, index)
        .map_err(|source| Error::Decode {
            model: "catalog",
            source,
        })
        .map(Option::unwrap_or_default)
}

/// A catalog row's integer column (`-1` for NULL).
pub(crate) fn int(row: RowRef<'_>, index: usize) -> Result<i64, Error> {
    <i64 as SqlType>::decode(row, index)
        .map_err(|source| Error::Decode {
            model: "catalog",
            source,
        })
        .map(|v| v.unwrap_or(-1))
}

/// The steps that bring a table's live unique constraints to the model's: renames (same columns,
/// another name), drops (no declared constraint has them), adds.
fn unique_steps(
    dialect: Dialect,
    meta: &ModelMeta,
    live: &[LiveUnique],
) -> (Vec<Step>, Vec<Step>, Vec<Step>) {
    let table = meta.table.to_owned();
    let (mut renames, mut adds) = (Vec::new(), Vec::new());
    let mut unmatched: Vec<&LiveUnique> = live.iter().collect();
    let mut missing = Vec::new();
    for constraint in meta.uniques {
        let wanted: Vec<String> = constraint
            .columns
            .iter()
            .map(|&i| meta.columns[i].name.to_owned())
            .collect();
        // A case-insensitive, nulls-not-distinct or partial constraint is an index over
        // expressions, with a predicate, or over generated columns, which no column list says: it
        // is known by its name and by not being plain (so that a plain constraint turned into
        // one of these kinds, or back, is dropped and added; a change from one of these kinds to
        // another under the same name is not seen: give the changed constraint a new name).
        let plain = schema::is_plain_on(meta, constraint, dialect);
        if let Some(at) = unmatched.iter().position(|u| {
            u.name == constraint.name && u.plain == plain && (!plain || u.columns == wanted)
        }) {
            unmatched.remove(at);
        } else {
            missing.push((constraint.name, wanted, plain));
        }
    }
    for (name, wanted, plain) in missing {
        // Same columns under another name: a rename, not a drop and an add.
        match unmatched
            .iter()
            .position(|u| plain && u.plain && u.columns == wanted)
        {
            Some(at) => renames.push(Step::RenameUnique {
                table: table.clone(),
                from: unmatched.remove(at).clone(),
                to: name.to_owned(),
            }),
            None => adds.push(Step::AddUnique {
                table: table.clone(),
                name: name.to_owned(),
                columns: wanted,
            }),
        }
    }
    let drops = unmatched
        .into_iter()
        .map(|u| Step::DropUnique {
            table: table.clone(),
            unique: u.clone(),
        })
        .collect();
    (renames, drops, adds)
}

/// Compares models and live tables.
fn plan(dialect: Dialect, models: &[&'static ModelMeta], live: &[Option<LiveTable>]) -> Plan {
    let mut creates = Vec::new();
    let mut renames = Vec::new();
    let mut drops = Vec::new();
    let mut adds = Vec::new();
    let mut columns = Vec::new();
    let (mut index_drops, mut index_creates) = (Vec::new(), Vec::new());
    for (meta, live) in models.iter().zip(live) {
        let Some(live) = live else {
            creates.push(Step::CreateTable { table: meta.table });
            continue;
        };
        let table = meta.table.to_owned();
        let (drop_indexes, create_indexes) = crate::index::steps(meta, &live.indexes, dialect);
        index_drops.extend(drop_indexes);
        index_creates.extend(create_indexes);
        let (r, d, a) = unique_steps(dialect, meta, &live.uniques);
        renames.extend(r);
        drops.extend(d);
        adds.extend(a);
        // SQLite can neither drop nor rename a table constraint: rebuild the table instead of
        // this table's steps.
        let needs_rebuild = |step: &Step| match step {
            Step::DropUnique { table: t, unique } => *t == table && !unique.is_index,
            Step::RenameUnique { table: t, from, .. } => *t == table && !from.is_index,
            _ => false,
        };
        if dialect == Dialect::Sqlite
            && (renames.iter().any(needs_rebuild) || drops.iter().any(needs_rebuild))
        {
            let mine = |step: &Step| match step {
                Step::AddUnique { table: t, .. }
                | Step::DropUnique { table: t, .. }
                | Step::RenameUnique { table: t, .. } => *t == table,
                _ => false,
            };
            renames.retain(|s| !mine(s));
            drops.retain(|s| !mine(s));
            adds.retain(|s| !mine(s));
            let adds_here = meta
                .uniques
                .iter()
                .filter(|c| {
                    // As in `unique_steps`: a constraint of another kind is known by its name.
                    if !schema::is_plain_on(meta, c, dialect) {
                        return !live.uniques.iter().any(|u| u.name == c.name && !u.plain);
                    }
                    let cols: Vec<&str> = c.columns.iter().map(|&i| meta.columns[i].name).collect();
                    !live.uniques.iter().any(|u| {
                        u.plain
                            && u.columns
                                .iter()
                                .map(String::as_str)
                                .eq(cols.iter().copied())
                    })
                })
                .map(|c| {
                    (
                        c.name.to_owned(),
                        c.columns
                            .iter()
                            .map(|&i| meta.columns[i].name.to_owned())
                            .collect(),
                    )
                })
                .collect();
            creates.push(Step::RebuildTable {
                table: meta.table,
                adds: adds_here,
                live: live.uniques.clone(),
                columns: meta
                    .columns
                    .iter()
                    .filter(|c| live.columns.iter().any(|l| l.name == c.name))
                    .map(|c| c.name.to_owned())
                    .collect(),
                blocked: None,
            });
        }
        let differences_before = columns.len();
        for column in meta.columns {
            let Some(found) = live.columns.iter().find(|c| c.name == column.name) else {
                columns.push(ColumnDifference {
                    table: table.clone(),
                    column: column.name.to_owned(),
                    what: "missing from the table".into(),
                    fix: format!(
                        "ALTER TABLE {} ADD COLUMN {} (with a default or a backfill for existing rows)",
                        quote(dialect, meta.table),
                        quote(dialect, column.name)
                    ),
                });
                continue;
            };
            if found.nullable != column.nullable {
                columns.push(ColumnDifference {
                    table: table.clone(),
                    column: column.name.to_owned(),
                    what: format!(
                        "is {}, the model declares it {}",
                        if found.nullable { "NULL" } else { "NOT NULL" },
                        if column.nullable {
                            "NULL (Option<…>)"
                        } else {
                            "NOT NULL"
                        }
                    ),
                    fix: match dialect {
                        Dialect::Sqlite => {
                            "rebuild the table (SQLite cannot alter a column)".into()
                        }
                        _ => format!(
                            "ALTER TABLE {} ALTER/MODIFY COLUMN {} … {}",
                            quote(dialect, meta.table),
                            quote(dialect, column.name),
                            if column.nullable { "NULL" } else { "NOT NULL" }
                        ),
                    },
                });
            }
            let is_key = meta.primary_key_column().name == column.name
                || meta.uniques.iter().any(|u| {
                    u.columns
                        .iter()
                        .any(|&i| meta.columns[i].name == column.name)
                });
            let declared = schema::declared_type(column, is_key, dialect);
            if type_family(dialect, &declared) != type_family(dialect, &found.sql_type) {
                columns.push(ColumnDifference {
                    table: table.clone(),
                    column: column.name.to_owned(),
                    what: format!(
                        "is {}, the model's {:?} field is {declared}",
                        found.sql_type, column.kind
                    ),
                    fix: retype(dialect, meta, column, &declared),
                });
            }
            // A decimal column narrower than the model's (fewer digits after the point, or before
            // it) rounds or refuses values the model's own check lets through.
            if column.kind == ColumnKind::Decimal
                && let Some((live_p, live_s)) = decimal_size(&found.sql_type)
            {
                let model = column
                    .decimal
                    .map(|d| (d.precision, d.scale))
                    .or((dialect == Dialect::MySql).then_some((65, 30)));
                let narrower = match model {
                    None => true,
                    Some((p, s)) => live_s < s || live_p.saturating_sub(live_s) < p - s,
                };
                if narrower {
                    let declared = schema::declared_type(column, false, dialect);
                    columns.push(ColumnDifference {
                        table: table.clone(),
                        column: column.name.to_owned(),
                        what: format!(
                            "is {}, narrower than the model's {declared}: values the model accepts would be rounded or refused",
                            found.sql_type
                        ),
                        fix: retype(dialect, meta, column, &declared),
                    });
                }
            }
            if column.kind == ColumnKind::Text && found.max_length != column.max_length {
                let show = |n: Option<u32>| {
                    n.map_or_else(
                        || "unbounded".to_owned(),
                        |n| format!("at most {n} characters"),
                    )
                };
                columns.push(ColumnDifference {
                    table: table.clone(),
                    column: column.name.to_owned(),
                    what: format!(
                        "holds {} ({}), the model declares {}",
                        show(found.max_length),
                        found.sql_type,
                        show(column.max_length)
                    ),
                    fix: match dialect {
                        Dialect::Sqlite => {
                            "rebuild the table (SQLite cannot alter a column)".into()
                        }
                        _ => format!(
                            "ALTER TABLE {} ALTER/MODIFY COLUMN {} to the model's type",
                            quote(dialect, meta.table),
                            quote(dialect, column.name)
                        ),
                    },
                });
            }
        }
        // A rebuild copies the columns the model declares: refuse it where that would lose data
        // or convert it.
        let extra: Vec<&str> = live
            .columns
            .iter()
            .filter(|l| !meta.columns.iter().any(|c| c.name == l.name))
            .map(|l| l.name.as_str())
            .collect();
        let differs = columns.len() > differences_before;
        if let Some(Step::RebuildTable {
            table: t, blocked, ..
        }) = creates.last_mut()
            && *t == meta.table
            && (!extra.is_empty() || differs)
        {
            *blocked = Some(format!(
                "SQLite must rebuild {t} to change its unique constraints, and the rebuild copies only the model's columns as the model declares them: {}; bring the columns in line first (or rebuild by hand)",
                if extra.is_empty() {
                    "some columns differ from the model (see the column differences)".to_owned()
                } else {
                    format!("the table's columns {} would be lost", extra.join(", "))
                }
            ));
        }
    }
    // Indexes are dropped first, before a SQLite rebuild can drop them with their table, and
    // created last, on the tables as they end up. On MySQL, which rebuilds nothing but refuses to
    // drop the last index a foreign key can use (1553) and commits each step, the new indexes come
    // before the old ones go (but for an index dropped to be made again under its own name), so
    // that a foreign key always has one.
    let mut steps = Vec::new();
    if dialect == Dialect::MySql {
        let remade = |step: &Step| {
            match step {
            Step::DropIndex { table, index } => index_creates.iter().any(|c| {
                matches!(c, Step::CreateIndex { table: t, name, .. } if t == table && *name == index.name)
            }),
            _ => false,
        }
        };
        let (first, last): (Vec<Step>, Vec<Step>) = index_drops.into_iter().partition(remade);
        steps.extend(first);
        steps.extend(creates);
        steps.extend(renames);
        steps.extend(drops);
        steps.extend(adds);
        steps.extend(index_creates);
        steps.extend(last);
    } else {
        steps.extend(index_drops);
        steps.extend(creates);
        steps.extend(renames);
        steps.extend(drops);
        steps.extend(adds);
        steps.extend(index_creates);
    }
    Plan {
        dialect,
        steps,
        columns,
        models: models.to_vec(),
    }
}

impl Plan {
    /// Whether the database's unique constraints and plain indexes already match the models
    /// (columns aside).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The rows that would make each constraint the plan adds fail: for each group of rows that
    /// share its values (none of them NULL: NULLs never collide), the values, the count and up to
    /// `cap` primary keys; at most `cap` groups per constraint. Empty when nothing blocks the plan.
    pub async fn duplicates<'c>(
        &self,
        conn: impl Conn<'c>,
        cap: usize,
    ) -> Result<Vec<DuplicateGroup>, Error> {
        crate::ops::run(conn, Duplicates(self, cap)).await
    }

    async fn duplicates_on<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        cap: usize,
    ) -> Result<Vec<DuplicateGroup>, Error> {
        let dialect = DB::DIALECT;
        let cap = cap.max(1);
        let bigint = if dialect == Dialect::MySql {
            "SIGNED"
        } else {
            "BIGINT"
        };
        let mut groups: Vec<DuplicateGroup> = Vec::new();
        for (table, name, columns) in self.added() {
            let pk = quote(dialect, self.primary_key_of(table));
            let (cols, not_null) = self.compared(table, name, columns, dialect);
            let list = cols.join(", ");
            // The compared values under plain names, for the queries around the innermost.
            let named: Vec<String> = (0..cols.len()).map(|i| format!("k{i}")).collect();
            let aliased = cols
                .iter()
                .zip(&named)
                .map(|(c, k)| format!("{c} AS {k}"))
                .collect::<Vec<_>>()
                .join(", ");
            let keys = named.join(", ");
            // Groups and their rows in one query, compared as the constraint will compare them
            // (the columns' own types and collations), never through text: the number of rows
            // sharing the values, and a group number in value order.
            let sql = format!(
                "SELECT CAST(g AS {bigint}), CAST(n AS {bigint}), {pk_text}, {values} FROM (\
                 SELECT {pk}, {keys}, n, DENSE_RANK() OVER (ORDER BY {keys}) AS g FROM (\
                 SELECT {pk}, {aliased}, COUNT(*) OVER (PARTITION BY {list}) AS n FROM {t} WHERE {not_null}\
                 ) counted WHERE n > 1) ranked WHERE g <= {cap} ORDER BY g, {pk}",
                pk_text = cast_text(dialect, &pk),
                values = named
                    .iter()
                    .map(|c| cast_text(dialect, c))
                    .collect::<Vec<_>>()
                    .join(", "),
                t = quote(dialect, table),
            );
            let rows = DB::fetch_all(conn, sql.into(), Values(Vec::new())).await?;
            let mut current = -1;
            for row in &rows {
                let r = DB::row_ref(row);
                let g = int(r, 0)?;
                if g != current {
                    current = g;
                    groups.push(DuplicateGroup {
                        table: table.to_owned(),
                        constraint: name.to_owned(),
                        columns: columns.to_vec(),
                        values: (0..cols.len())
                            .map(|i| text(r, 3 + i))
                            .collect::<Result<_, _>>()?,
                        count: int(r, 1)?.max(0) as u64,
                        primary_keys: Vec::new(),
                    });
                }
                let group = groups.last_mut().expect("pushed above");
                if group.primary_keys.len() < cap {
                    group.primary_keys.push(text(r, 2)?);
                }
            }
        }
        Ok(groups)
    }

    /// Deletes, for each constraint the plan adds, every row of a duplicate group but the one
    /// `keep` names, in one transaction, and reports what it deleted. Never called by
    /// [`Plan::apply`]: a choice the caller makes.
    pub async fn resolve_duplicates<'c>(
        &self,
        conn: impl Conn<'c>,
        keep: Keep,
    ) -> Result<Vec<Deleted>, Error> {
        crate::ops::run(conn, ResolveDuplicates(self, keep)).await
    }

    async fn resolve_duplicates_on<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        keep: Keep,
    ) -> Result<Vec<Deleted>, Error> {
        let dialect = DB::DIALECT;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let mut deleted = Vec::new();
        for (table, name, columns) in self.added() {
            let pk = quote(dialect, self.primary_key_of(table));
            let (cols, not_null) = self.compared(table, name, columns, dialect);
            let order = match keep {
                Keep::LowestPrimaryKey => "ASC",
                Keep::HighestPrimaryKey => "DESC",
            };
            let t = quote(dialect, table);
            // Every row but the first of its group, in the order that puts the kept row first.
            let doomed = format!(
                "SELECT {pk} FROM (SELECT {pk}, ROW_NUMBER() OVER (PARTITION BY {cols} ORDER BY {pk} {order}) AS model_runtime_rn FROM {t} WHERE {not_null}) ranked WHERE model_runtime_rn > 1",
                cols = cols.join(", ")
            );
            let select = format!(
                "SELECT {} FROM ({doomed}) doomed ORDER BY 1",
                cast_text(dialect, &pk)
            );
            let rows = DB::fetch_all(&mut tx, select.into(), Values(Vec::new())).await?;
            let primary_keys: Vec<String> = rows
                .iter()
                .map(|r| text(DB::row_ref(r), 0))
                .collect::<Result<_, _>>()?;
            // Exactly the rows read, whatever was inserted since: compared by the primary key's
            // text, byte for byte on MySQL (its text comparison follows a collation).
            let key_text = match dialect {
                Dialect::MySql => format!("CAST({pk} AS BINARY)"),
                _ => cast_text(dialect, &pk),
            };
            for keys in primary_keys.chunks(1000) {
                let placeholders = (1..=keys.len())
                    .map(|n| placeholder(dialect, n))
                    .collect::<Vec<_>>()
                    .join(", ");
                let delete = format!("DELETE FROM {t} WHERE {key_text} IN ({placeholders})");
                let bound = Values(
                    keys.iter()
                        .map(|k| Value::String(Some(k.clone())))
                        .collect(),
                );
                DB::execute(&mut tx, delete.into(), bound).await?;
            }
            deleted.push(Deleted {
                table: table.to_owned(),
                constraint: name.to_owned(),
                primary_keys,
            });
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Applies the plan: in one transaction on PostgreSQL and SQLite; on MySQL, which commits each
    /// DDL statement, one step at a time, and a failure is [`Error::Migration`] with the steps
    /// applied before it. Refuses, before any change, while [`Plan::duplicates`] finds rows that
    /// would block a constraint it adds ([`Error::Migration`] naming the groups).
    pub async fn apply<'c>(&self, conn: impl Conn<'c>) -> Result<(), Error> {
        crate::ops::run(conn, Apply(self)).await
    }

    async fn apply_on<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<(), Error> {
        let dialect = DB::DIALECT;
        if dialect != self.dialect {
            return Err(Error::InvalidArgument {
                model: "Plan",
                reason: format!("the plan was made for {}, not {dialect}", self.dialect),
            });
        }
        let blocking = self.duplicates_on::<DB>(conn, 5).await?;
        if !blocking.is_empty() {
            return Err(Error::Migration {
                applied: Vec::new(),
                failed: format!(
                    "{} group(s) of duplicate rows block the plan: {}; resolve them (Plan::resolve_duplicates, or by hand) and apply again",
                    blocking.len(),
                    blocking
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                source: None,
            });
        }
        let up = self.sql_up()?;
        if dialect == Dialect::MySql {
            let mut applied = Vec::new();
            for (step, statements) in self.steps.iter().zip(up) {
                for sql in statements {
                    if let Err(error) =
                        DB::execute(conn, sql.clone().into(), Values(Vec::new())).await
                    {
                        return Err(Error::Migration {
                            applied,
                            failed: format!("{step}: {sql}"),
                            source: Some(Box::new(error.into())),
                        });
                    }
                }
                applied.push(step.to_string());
            }
            return Ok(());
        }
        // A SQLite table rebuild drops the old table, which with foreign keys on deletes its rows
        // first (and runs the children's ON DELETE actions): SQLite's own procedure turns foreign
        // keys off around the transaction, and checks them before the commit.
        let rebuild = dialect == Dialect::Sqlite
            && self
                .steps
                .iter()
                .any(|s| matches!(s, Step::RebuildTable { .. }));
        let mut restore = None;
        if rebuild {
            let on = DB::fetch_optional(conn, "PRAGMA foreign_keys".into(), Values(Vec::new()))
                .await?
                .map(|row| int(DB::row_ref(&row), 0))
                .transpose()?
                .unwrap_or(0);
            crate::ops::execute_plain::<DB>(conn, "PRAGMA foreign_keys = OFF").await?;
            restore = Some(if on == 1 {
                "PRAGMA foreign_keys = ON"
            } else {
                "PRAGMA foreign_keys = OFF"
            });
        }
        let result = self.apply_in_transaction::<DB>(conn, up, rebuild).await;
        if let Some(restore) = restore {
            // As it was, whatever happened: a pooled connection must not keep them off.
            crate::ops::execute_plain::<DB>(conn, restore).await?;
        }
        result
    }

    async fn apply_in_transaction<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        up: Vec<Vec<String>>,
        check_foreign_keys: bool,
    ) -> Result<(), Error> {
        let mut tx = sqlx::Connection::begin(conn).await?;
        for (step, statements) in self.steps.iter().zip(up) {
            for sql in statements {
                if let Err(error) =
                    DB::execute(&mut tx, sql.clone().into(), Values(Vec::new())).await
                {
                    return Err(Error::Migration {
                        applied: Vec::new(),
                        failed: format!(
                            "{step}: {sql} (the transaction was rolled back: nothing applied)"
                        ),
                        source: Some(Box::new(error.into())),
                    });
                }
            }
        }
        if check_foreign_keys {
            let broken = DB::fetch_all(
                &mut tx,
                "PRAGMA foreign_key_check".into(),
                Values(Vec::new()),
            )
            .await?;
            if !broken.is_empty() {
                return Err(Error::Migration {
                    applied: Vec::new(),
                    failed: format!(
                        "after the rebuild, {} row(s) break a foreign key (PRAGMA foreign_key_check); the transaction was rolled back: nothing applied",
                        broken.len()
                    ),
                    source: None,
                });
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The same steps as SQL for another dialect, to write migration files for every backend from
    /// one database's diff. A SQLite table rebuild becomes, elsewhere, the drops and adds it stands
    /// for; a table constraint SQLite cannot drop is dropped normally elsewhere.
    pub fn sql_for(&self, dialect: Dialect) -> Result<Migration, Error> {
        let mut steps = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            match step {
                Step::RebuildTable { table, live, .. } if dialect != Dialect::Sqlite => {
                    // Elsewhere the rebuild is what it stands for: the renames, drops and adds
                    // that bring the live constraints to the model's.
                    let meta = self
                        .models
                        .iter()
                        .find(|m| m.table == *table)
                        .expect("the plan's own model");
                    let live: Vec<LiveUnique> = live
                        .iter()
                        .map(|u| LiveUnique {
                            is_index: false,
                            ..u.clone()
                        })
                        .collect();
                    let (renames, drops, adds) = unique_steps(dialect, meta, &live);
                    steps.extend(renames);
                    steps.extend(drops);
                    steps.extend(adds);
                }
                Step::DropUnique { table, unique } if dialect == Dialect::Sqlite => {
                    steps.push(Step::DropUnique {
                        table: table.clone(),
                        unique: LiveUnique {
                            is_index: true,
                            ..unique.clone()
                        },
                    })
                }
                // Another backend's indexes are that backend's: elsewhere the model's constraints
                // are constraints.
                Step::DropUnique { table, unique } if dialect != self.dialect => {
                    steps.push(Step::DropUnique {
                        table: table.clone(),
                        unique: LiveUnique {
                            is_index: false,
                            ..unique.clone()
                        },
                    })
                }
                Step::RenameUnique { table, from, to } if dialect != self.dialect => {
                    steps.push(Step::RenameUnique {
                        table: table.clone(),
                        from: LiveUnique {
                            is_index: dialect == Dialect::Sqlite,
                            ..from.clone()
                        },
                        to: to.clone(),
                    })
                }
                step => steps.push(step.clone()),
            }
        }
        Plan {
            dialect,
            steps,
            columns: self.columns.clone(),
            models: self.models.clone(),
        }
        .sql()
    }

    /// The plan as SQL for its dialect, to write to a migration file.
    pub fn sql(&self) -> Result<Migration, Error> {
        let up = self.sql_up()?.into_iter().flatten().collect();
        let mut down = Vec::new();
        for step in self.steps.iter().rev() {
            down.extend(self.undo(step)?);
        }
        Ok(Migration { up, down })
    }

    /// The statements of each step.
    fn sql_up(&self) -> Result<Vec<Vec<String>>, Error> {
        self.steps
            .iter()
            .map(|step| self.statements(step))
            .collect()
    }

    fn statements(&self, step: &Step) -> Result<Vec<String>, Error> {
        let d = self.dialect;
        let q = |s: &str| quote(d, s);
        let list = |columns: &[String]| columns.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
        Ok(match step {
            Step::CreateTable { table } => {
                let meta = self
                    .models
                    .iter()
                    .find(|m| m.table == *table)
                    .expect("the plan's own model");
                let mut statements = vec![schema::render_table(&schema::create_table(meta, d)?, d)];
                statements.extend(schema::expression_indexes(meta, d, false));
                statements.extend(
                    crate::index::create_statements(meta, d, false)
                        .iter()
                        .map(|index| crate::index::render(index, d)),
                );
                statements
            }
            Step::CreateIndex {
                table,
                name,
                columns,
            } => vec![crate::index::create_sql(d, table, name, columns)],
            Step::DropIndex { table, index } => {
                vec![crate::index::drop_sql(d, table, &index.name)]
            }
            Step::AddUnique {
                table,
                name,
                columns,
            } => match self.constraint(table, name) {
                Some((meta, constraint)) if !schema::is_plain_on(meta, constraint, d) => {
                    add_unique_kind(d, meta, constraint)
                }
                _ => vec![add_unique(d, table, name, columns)],
            },
            Step::RebuildTable {
                table,
                columns,
                blocked,
                ..
            } => {
                if let Some(reason) = blocked {
                    return Err(Error::Migration {
                        applied: Vec::new(),
                        failed: reason.clone(),
                        source: None,
                    });
                }
                let meta = self
                    .models
                    .iter()
                    .find(|m| m.table == *table)
                    .expect("the plan's own model");
                let scratch = format!("{table}__model_runtime_rebuild");
                let mut statement = schema::create_table(meta, d)?;
                statement.table(sea_query::Alias::new(scratch.as_str()));
                let list = columns.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
                let literal = |name: &str| format!("'{}'", name.replace('\'', "''"));
                let mut statements = vec![
                    schema::render_table(&statement, d),
                    format!(
                        "INSERT INTO {} ({list}) SELECT {list} FROM {}",
                        q(&scratch),
                        q(table)
                    ),
                ];
                if meta.primary_key_column().auto_increment {
                    // AUTOINCREMENT never reuses an id: carry the old table's counter over.
                    statements.push(format!(
                        "DELETE FROM sqlite_sequence WHERE name = {}",
                        literal(&scratch)
                    ));
                    statements.push(format!(
                        "INSERT INTO sqlite_sequence (name, seq) SELECT {}, seq FROM sqlite_sequence WHERE name = {}",
                        literal(&scratch),
                        literal(table)
                    ));
                }
                statements.push(format!("DROP TABLE {}", q(table)));
                statements.push(format!(
                    "ALTER TABLE {} RENAME TO {}",
                    q(&scratch),
                    q(table)
                ));
                // The indexes over expressions went with the old table.
                statements.extend(schema::expression_indexes(meta, d, false));
                // Dropping the old table dropped its indexes: the declared ones it had come back
                // (those it lacked are the plan's own later steps).
                for index in meta.indexes {
                    let created_later = self.steps.iter().any(|s| {
                        matches!(s, Step::CreateIndex { table: t, name, .. } if t == table && name == index.name)
                    });
                    if !created_later {
                        let columns: Vec<String> = meta
                            .index_columns(index)
                            .map(|c| c.name.to_owned())
                            .collect();
                        statements.push(crate::index::create_sql(d, table, index.name, &columns));
                    }
                }
                statements
            }
            Step::DropUnique { table, unique } => vec![drop_unique(d, table, unique)?],
            Step::RenameUnique { table, from, to } => match d {
                Dialect::Postgres if from.is_index => {
                    vec![format!("ALTER INDEX {} RENAME TO {}", q(&from.name), q(to))]
                }
                Dialect::Postgres => vec![format!(
                    "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                    q(table),
                    q(&from.name),
                    q(to)
                )],
                Dialect::MySql => vec![format!(
                    "ALTER TABLE {} RENAME INDEX {} TO {}",
                    q(table),
                    q(&from.name),
                    q(to)
                )],
                Dialect::Sqlite => vec![
                    drop_unique(d, table, from)?,
                    format!(
                        "CREATE UNIQUE INDEX {} ON {} ({})",
                        q(to),
                        q(table),
                        list(&from.columns)
                    ),
                ],
            },
        })
    }

    fn undo(&self, step: &Step) -> Result<Vec<String>, Error> {
        let d = self.dialect;
        Ok(match step {
            Step::CreateTable { table } => vec![format!("DROP TABLE {}", quote(d, table))],
            Step::CreateIndex { table, name, .. } => {
                vec![crate::index::drop_sql(d, table, name)]
            }
            Step::DropIndex { table, index } => vec![crate::index::create_sql(
                d,
                table,
                &index.name,
                &index.columns,
            )],
            Step::RebuildTable { table, .. } => vec![format!(
                "-- {table} was rebuilt with the model's constraints; undoing that is another rebuild, with the previous model"
            )],
            Step::AddUnique {
                table,
                name,
                columns,
            } => vec![drop_unique(
                d,
                table,
                &LiveUnique {
                    name: name.clone(),
                    columns: columns.clone(),
                    // What `add_unique` makes on SQLite, and a constraint of another kind on
                    // PostgreSQL: an index.
                    is_index: d == Dialect::Sqlite
                        || self
                            .constraint(table, name)
                            .is_some_and(|(meta, c)| !schema::is_table_constraint(meta, c, d)),
                    plain: true,
                },
            )?],
            Step::DropUnique { table, unique } => {
                vec![add_unique(d, table, &unique.name, &unique.columns)]
            }
            Step::RenameUnique { table, from, to } => self.statements(&Step::RenameUnique {
                table: table.clone(),
                from: LiveUnique {
                    name: to.clone(),
                    columns: from.columns.clone(),
                    is_index: d == Dialect::Sqlite,
                    plain: from.plain,
                },
                to: from.name.clone(),
            })?,
        })
    }

    /// The table, name and columns of each constraint the steps add.
    fn added(&self) -> Vec<(&str, &str, &[String])> {
        let mut out = Vec::new();
        for step in &self.steps {
            match step {
                Step::AddUnique {
                    table,
                    name,
                    columns,
                } => out.push((table.as_str(), name.as_str(), columns.as_slice())),
                Step::RebuildTable { table, adds, .. } => {
                    for (name, columns) in adds {
                        out.push((*table, name.as_str(), columns.as_slice()));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The columns of an added constraint as it will compare them, and the condition that keeps
    /// the rows it constrains: a case-insensitive column by its fold; NULLs left out unless the
    /// constraint makes them collide (window partitions group NULLs together, as
    /// `nulls_not_distinct` does).
    fn compared(
        &self,
        table: &str,
        name: &str,
        columns: &[String],
        dialect: Dialect,
    ) -> (Vec<String>, String) {
        let declared = self.constraint(table, name);
        let mut compared = Vec::with_capacity(columns.len());
        let mut not_null = Vec::with_capacity(columns.len());
        for column in columns {
            let quoted = quote(dialect, column);
            let folds = declared.is_some_and(|(meta, constraint)| {
                meta.column_named(column)
                    .is_some_and(|i| constraint.folds(i))
            });
            if declared.is_none_or(|(_, constraint)| constraint.nulls_distinct) {
                not_null.push(format!("{quoted} IS NOT NULL"));
            }
            let expr = if folds {
                crate::query::fold_sql(column, dialect)
            } else {
                quoted
            };
            // MariaDB groups text by its collation, which for a column that was no key may fold
            // case and accents and pad spaces: group by the bytes, as the new index compares.
            let text = declared.is_some_and(|(meta, _)| {
                meta.column_named(column)
                    .is_some_and(|i| meta.columns[i].kind == crate::meta::ColumnKind::Text)
            });
            compared.push(if dialect == Dialect::MySql && text {
                format!("CAST({expr} AS BINARY)")
            } else {
                expr
            });
        }
        // A partial constraint constrains only the rows its condition covers.
        if let Some((meta, constraint)) = declared
            && let Some(k) = schema::position(meta, constraint)
            && let Some(predicate) =
                crate::query::predicate_sql(meta, crate::KeyId::Unique(k), dialect)
        {
            not_null.push(format!("({predicate})"));
        }
        let not_null = if not_null.is_empty() {
            "1 = 1".to_owned()
        } else {
            not_null.join(" AND ")
        };
        (compared, not_null)
    }

    /// The declared constraint `name` of the model of `table`.
    fn constraint(
        &self,
        table: &str,
        name: &str,
    ) -> Option<(&'static ModelMeta, &'static crate::meta::UniqueConstraint)> {
        let meta = self.models.iter().find(|m| m.table == table)?;
        let constraint = meta.uniques.iter().find(|u| u.name == name)?;
        Some((*meta, constraint))
    }

    fn primary_key_of(&self, table: &str) -> &'static str {
        self.models
            .iter()
            .find(|m| m.table == table)
            .map_or("id", |m| m.primary_key_column().name)
    }
}

fn add_unique(d: Dialect, table: &str, name: &str, columns: &[String]) -> String {
    let list = columns
        .iter()
        .map(|c| quote(d, c))
        .collect::<Vec<_>>()
        .join(", ");
    match d {
        // SQLite cannot add a table constraint: a named unique index enforces the same, and the
        // library reads it back as the constraint.
        Dialect::Sqlite => format!(
            "CREATE UNIQUE INDEX {} ON {} ({list})",
            quote(d, name),
            quote(d, table)
        ),
        _ => format!(
            "ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({list})",
            quote(d, table),
            quote(d, name)
        ),
    }
}

/// Adds a constraint of a kind a column list does not say: an index over expressions on PostgreSQL
/// and SQLite (or PostgreSQL's own `UNIQUE NULLS NOT DISTINCT`), the generated columns and a unique
/// key over them on MariaDB, exactly as [`crate::Schema`] creates it.
fn add_unique_kind(
    d: Dialect,
    meta: &ModelMeta,
    constraint: &'static crate::meta::UniqueConstraint,
) -> Vec<String> {
    let q = |s: &str| quote(d, s);
    if d != Dialect::MySql && !schema::is_table_constraint(meta, constraint, d) {
        return vec![schema::expression_index(meta, constraint, d, false)];
    }
    let parts = schema::index_parts(meta, constraint, d);
    let list = parts
        .iter()
        .map(|p| p.sql.clone())
        .collect::<Vec<_>>()
        .join(", ");
    if d == Dialect::Postgres {
        return vec![format!(
            "ALTER TABLE {} ADD CONSTRAINT {} UNIQUE NULLS NOT DISTINCT ({list})",
            q(meta.table),
            q(constraint.name)
        )];
    }
    let mut out: Vec<String> = schema::generated_columns(meta)
        .into_iter()
        .filter(|g| {
            parts.iter().any(|p| p.column == g.name)
                || constraint
                    .folded
                    .iter()
                    .any(|&c| crate::query::folded_column(meta.columns[c].name) == g.name)
        })
        .map(|g| {
            format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {} AS ({}) STORED",
                q(meta.table),
                q(&g.name),
                g.sql_type,
                g.expr
            )
        })
        .collect();
    out.push(format!(
        "ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({list})",
        q(meta.table),
        q(constraint.name)
    ));
    out
}

fn drop_unique(d: Dialect, table: &str, unique: &LiveUnique) -> Result<String, Error> {
    Ok(match d {
        Dialect::Postgres if unique.is_index => format!("DROP INDEX {}", quote(d, &unique.name)),
        Dialect::Postgres => format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            quote(d, table),
            quote(d, &unique.name)
        ),
        Dialect::MySql => format!(
            "ALTER TABLE {} DROP INDEX {}",
            quote(d, table),
            quote(d, &unique.name)
        ),
        Dialect::Sqlite if unique.is_index => format!("DROP INDEX {}", quote(d, &unique.name)),
        Dialect::Sqlite => {
            return Err(Error::Migration {
                applied: Vec::new(),
                failed: format!(
                    "SQLite cannot drop the table constraint {} of {table}: it is part of the CREATE TABLE; rebuild the table (create the new one, copy the rows, drop the old, rename) to remove it",
                    unique.name
                ),
                source: None,
            });
        }
    })
}

fn cast_text(d: Dialect, expr: &str) -> String {
    match d {
        Dialect::Postgres => format!("CAST({expr} AS TEXT)"),
        Dialect::MySql => format!("CAST({expr} AS CHAR)"),
        Dialect::Sqlite => format!("CAST({expr} AS TEXT)"),
    }
}

fn placeholder(d: Dialect, n: usize) -> String {
    match d {
        Dialect::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// [`Schema::diff`].
struct Diff<'x>(&'x Schema);

impl Op for Diff<'_> {
    type Output = Plan;

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<Plan, Error> {
        let models = self.0.ordered()?;
        let mut live = Vec::with_capacity(models.len());
        for meta in &models {
            live.push(inspect::<DB>(conn, meta.table).await?);
        }
        Ok(plan(DB::DIALECT, &models, &live))
    }
}

/// [`Schema::drop`].
struct DropTables<'x>(&'x Schema);

impl Op for DropTables<'_> {
    type Output = ();

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<(), Error> {
        for meta in self.0.ordered()?.into_iter().rev() {
            let sql = format!("DROP TABLE IF EXISTS {}", quote(DB::DIALECT, meta.table));
            crate::ops::execute_plain::<DB>(conn, &sql).await?;
        }
        Ok(())
    }
}

/// [`Plan::duplicates`].
struct Duplicates<'x>(&'x Plan, usize);

impl Op for Duplicates<'_> {
    type Output = Vec<DuplicateGroup>;

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<Self::Output, Error> {
        self.0.duplicates_on::<DB>(conn, self.1).await
    }
}

/// [`Plan::resolve_duplicates`].
struct ResolveDuplicates<'x>(&'x Plan, Keep);

impl Op for ResolveDuplicates<'_> {
    type Output = Vec<Deleted>;

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<Self::Output, Error> {
        self.0.resolve_duplicates_on::<DB>(conn, self.1).await
    }
}

/// [`Plan::apply`].
struct Apply<'x>(&'x Plan);

impl Op for Apply<'_> {
    type Output = ();

    async fn run<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<(), Error> {
        self.0.apply_on::<DB>(conn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_constraints_are_read_from_the_create_text() {
        let create = r#"CREATE TABLE "p" ( "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "a" text NOT NULL, "b" text, CONSTRAINT "p_a_key" UNIQUE ("a"), CONSTRAINT "per_b" UNIQUE ("a", "b") )"#;
        let found = sqlite_table_constraints(create);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "p_a_key");
        assert_eq!(found[1].columns, ["a", "b"]);
        assert_eq!(varchar_length("varchar(40)"), Some(40));
        assert_eq!(varchar_length("text"), None);
    }
}
