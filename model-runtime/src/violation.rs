//! Typed integrity errors: which declared constraint a duplicate violated, with its columns and
//! values, read from each backend's own report.
//!
//! | backend | what it reports | how the constraint is found |
//! |---|---|---|
//! | PostgreSQL | SQLSTATE 23505, the constraint name, `Key (a, b)=(x, y) already exists.` | by name |
//! | MySQL / MariaDB | error 1062, `Duplicate entry 'x-y' for key 'name'` (8.0.19+: `'table.name'`) | by name |
//! | SQLite | extended code 2067 (1555 for a primary key), `UNIQUE constraint failed: t.a, t.b` | by column set |

use std::fmt;

use sea_query::Value;
use sqlx::error::{DatabaseError, ErrorKind};

use crate::backend::{Backend, Dialect};
use crate::bulk::key::KeyValues;
use crate::error::Error;
use crate::meta::{ColumnKind, KeyId, ModelMeta};
use crate::model::{Key, Model};

/// A write refused because a row with the same values of a unique constraint exists: the typed
/// `IntegrityError: duplicate key value violates unique constraint`.
///
/// It comes as [`Error::UniqueViolation`] from a write, or from [`Error::unique_violation`] (which
/// also looks inside a failed bulk insert), and as the list [`crate::validate_unique`] returns
/// before writing. Its message is one line; [`UniqueViolation::advice`] says what to call instead.
///
/// ```
/// use model_runtime::{KeyId, Model, Schema, ViolationValues};
///
/// #[derive(Model, Debug)]
/// #[unique_together(product_name, store_id)]
/// struct Product {
///     #[model(primary_key, auto_increment)]
///     id: i64,
///     #[unique]
///     sku: String,
///     product_name: String,
///     store_id: i64,
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), model_runtime::Error> {
///     let pool = sqlx::sqlite::SqlitePoolOptions::new()
///         .max_connections(1)
///         .connect("sqlite::memory:")
///         .await?;
///     Schema::new().model::<Product>().create(&pool).await?;
///     let row = |sku: &str, name: &str| Product {
///         id: 0,
///         sku: sku.into(),
///         product_name: name.into(),
///         store_id: 7,
///     };
///     row("A-1", "Pixel 8").insert(&pool).await?;
///
///     let error = row("A-2", "Pixel 8").insert(&pool).await.unwrap_err();
///     let violation = error.unique_violation().expect("a duplicate");
///     // Which declared constraint, by its key type: no constraint name to compare.
///     assert!(violation.is::<ProductByProductNameAndStoreId>());
///     assert!(!violation.is::<ProductBySku>());
///     assert_eq!(violation.key(), Some(KeyId::Unique(1))); // field-level `#[unique]` first
///     assert_eq!(violation.constraint(), "product_product_name_store_id_key");
///     assert_eq!(violation.columns(), ["product_name", "store_id"]);
///     let values = ViolationValues::Known(vec!["Pixel 8".into(), "7".into()]);
///     assert_eq!(violation.values(), &values);
///     assert_eq!(
///         violation.to_string(),
///         r#"duplicate Product: unique constraint "product_product_name_store_id_key" (product_name, store_id) already has a row with product_name = "Pixel 8", store_id = "7""#
///     );
///     // For people, under the message.
///     assert!(violation
///         .advice()
///         .starts_with("Product::get_or_create_by_product_name_and_store_id returns the existing row"));
///     assert!(violation.database_error().is_some());
///
///     // The same check before writing, for every constraint at once.
///     let found = row("A-1", "Pixel 8").validate_unique(&pool).await?;
///     assert_eq!(found.len(), 2);
///     assert!(found[0].is::<ProductBySku>());
///     assert!(found[0].database_error().is_none());
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct UniqueViolation {
    meta: &'static ModelMeta,
    key: Option<KeyId>,
    constraint: String,
    columns: Vec<String>,
    values: Values,
    /// The database's error; `None` when found by [`crate::validate_unique`] before writing.
    source: Option<sqlx::Error>,
}

/// What is known of the conflicting values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// The values, one per column, as text: exactly the values of the write that collided, taken
    /// from the row the call wrote where it has one, else from the database's report when that text
    /// is provably exact. (On a collation that compares case- or pad-insensitively, MariaDB's
    /// default, the stored row's values may differ from these in case or trailing spaces.)
    Known(Vec<String>),
    /// The database's own text, which cannot be read as exact values: it would have to be split
    /// without a way to tell separators from values, or the database rendered it lossily (MariaDB
    /// cuts it at 64 bytes, prints 4-byte characters as `?` and control characters as `\XXXX`, and
    /// prints decimals, dates and floats in its own format).
    Ambiguous(String),
    /// Neither the database nor the call told them.
    Unknown,
}

impl UniqueViolation {
    /// The model's Rust name.
    pub fn model(&self) -> &'static str {
        self.meta.name
    }

    /// The table.
    pub fn table(&self) -> &'static str {
        self.meta.table
    }

    /// The constraint's name in the database (`PRIMARY KEY` for the primary key). On SQLite, which
    /// reports columns only, the name of the declared constraint over those columns, or an empty
    /// string for one the model does not declare.
    pub fn constraint(&self) -> &str {
        &self.constraint
    }

    /// Which of the model's keys was violated; `None` for a constraint the model does not declare
    /// (one added to the database by hand).
    pub fn key(&self) -> Option<KeyId> {
        self.key
    }

    /// Whether the violated constraint is the one behind key type `K`:
    /// `violation.is::<ProductBySku>()`.
    pub fn is<K: Key>(&self) -> bool {
        let meta = <K::Model as Model>::META;
        self.meta.name == meta.name && self.meta.table == meta.table && self.key == Some(K::KEY)
    }

    /// The constraint's columns, in its order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The conflicting values, where known.
    pub fn values(&self) -> &Values {
        &self.values
    }

    /// The database's own error; `None` for a violation found by [`crate::validate_unique`].
    pub fn database_error(&self) -> Option<&sqlx::Error> {
        self.source.as_ref()
    }

    /// What to call instead of a plain insert, for people (a hint under the error message, a log
    /// field): the generated `get_or_create_by_…` / `update_or_create_by_…` of the violated key and
    /// the bulk insert that skips such rows; for a constraint the model does not declare, how to
    /// declare it. Kept out of [`Display`](fmt::Display), which is one line saying what happened.
    ///
    /// ```text
    /// Product::get_or_create_by_sku returns the existing row, Product::update_or_create_by_sku updates it, and BulkInsert::skip_conflicts::<ProductBySku>() passes over it
    /// ```
    pub fn advice(&self) -> String {
        let m = self.meta.name;
        match (self.method_suffix(), self.key_type()) {
            (Some(suffix), Some(key)) => format!(
                "{m}::get_or_create_by_{suffix} returns the existing row, {m}::update_or_create_by_{suffix} updates it, and BulkInsert::skip_conflicts::<{key}>() passes over it"
            ),
            _ => format!(
                "{m} does not declare this constraint: declare it with #[unique] or #[unique_together(…)] for a typed key, get_or_create and update_or_create"
            ),
        }
    }

    /// A violation of declared key `key` by `row`, found before writing.
    pub(crate) fn predicted<M: Model>(row: &M, key: KeyId, dialect: Dialect) -> Self {
        let meta = M::META;
        let columns = meta.key_columns(key);
        UniqueViolation {
            meta,
            key: Some(key),
            constraint: meta.key_name(key).to_owned(),
            columns: columns
                .iter()
                .map(|&i| meta.columns[i].name.to_owned())
                .collect(),
            values: Values::Known(
                columns
                    .iter()
                    .map(|&i| crate::value::text(&row.column_value(i, dialect)))
                    .collect(),
            ),
            source: None,
        }
    }

    /// The key's field names, as the derive spells them in generated names.
    fn key_fields(&self) -> Option<Vec<&'static str>> {
        let key = self.key?;
        Some(
            self.meta
                .key_columns(key)
                .iter()
                .map(|&i| self.meta.columns[i].field.trim_start_matches("r#"))
                .collect(),
        )
    }

    /// `sku`, `product_name_and_store_id`: the suffix of the generated methods for this key.
    fn method_suffix(&self) -> Option<String> {
        Some(self.key_fields()?.join("_and_"))
    }

    /// `ProductBySku`, `ProductByProductNameAndStoreId`: the generated key type (the derive's
    /// `naming::camel_case` of each field).
    fn key_type(&self) -> Option<String> {
        let camel = |field: &str| -> String {
            field
                .split('_')
                .filter(|part| !part.is_empty())
                .map(|part| {
                    let mut chars = part.chars();
                    chars
                        .next()
                        .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                        .unwrap_or_default()
                })
                .collect()
        };
        let parts: Vec<String> = self.key_fields()?.into_iter().map(camel).collect();
        Some(format!("{}By{}", self.meta.name, parts.join("And")))
    }
}

impl fmt::Display for UniqueViolation {
    /// One line, for logs and for people: the model, the constraint, its columns and the values.
    /// Control characters in names and values are escaped, so the text never spans lines. What to
    /// call instead is [`UniqueViolation::advice`]; the database's own error is
    /// [`source()`](std::error::Error::source).
    ///
    /// ```text
    /// duplicate Product: unique constraint "products_sku_key" (sku) already has a row with sku = "A-1"
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "duplicate {}: ", self.meta.name)?;
        match self.key {
            Some(KeyId::PrimaryKey) => f.write_str("the primary key")?,
            _ if self.constraint.is_empty() => f.write_str("a unique constraint")?,
            _ => write!(f, "unique constraint \"{}\"", OneLine(&self.constraint))?,
        }
        if !self.columns.is_empty() {
            f.write_str(" (")?;
            for (n, column) in self.columns.iter().enumerate() {
                if n > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}", OneLine(column))?;
            }
            f.write_str(")")?;
        }
        f.write_str(" already has a row with ")?;
        match &self.values {
            Values::Known(values) => {
                for (n, (column, value)) in self.columns.iter().zip(values).enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    // `Debug` quotes the value and escapes its control characters.
                    write!(f, "{} = {value:?}", OneLine(column))?;
                }
            }
            Values::Ambiguous(raw) => write!(f, "the values the database reported as {raw:?}")?,
            Values::Unknown => f.write_str("these values")?,
        }
        Ok(())
    }
}

/// A name from the database or the model, written with its control characters (line breaks
/// included) escaped, so that a message stays on one line.
struct OneLine<'a>(&'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for UniqueViolation {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// The kind of an integrity error other than a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IntegrityKind {
    /// A NULL in a NOT NULL column.
    NotNull,
    /// A reference to a row that does not exist (or a delete of a row still referenced).
    ForeignKey,
    /// A CHECK constraint failed.
    Check,
    /// A value longer than its column allows (`max_length`, enforced on every backend: `VARCHAR(n)`,
    /// and on SQLite a CHECK on the length).
    ValueTooLong,
}

impl fmt::Display for IntegrityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IntegrityKind::NotNull => "a NOT NULL column got NULL",
            IntegrityKind::ForeignKey => "a foreign key does not match",
            IntegrityKind::Check => "a CHECK constraint failed",
            IntegrityKind::ValueTooLong => "a value is too long for its column",
        })
    }
}

/// Turns a database error met while writing `row` of model `M` into a typed one. Errors that are
/// not integrity errors pass through unchanged.
pub(crate) fn classify<M: Model>(error: Error, row: Option<&M>, dialect: Dialect) -> Error {
    let Error::Database(sqlx::Error::Database(db)) = &error else {
        return error;
    };
    let kind = match db.kind() {
        ErrorKind::UniqueViolation => None,
        ErrorKind::NotNullViolation => Some(IntegrityKind::NotNull),
        ErrorKind::ForeignKeyViolation => Some(IntegrityKind::ForeignKey),
        // SQLite enforces `max_length` with a CHECK named `{table}_{column}_max_length`.
        ErrorKind::CheckViolation if db.message().ends_with("_max_length") => {
            Some(IntegrityKind::ValueTooLong)
        }
        ErrorKind::CheckViolation => Some(IntegrityKind::Check),
        _ if value_too_long(&**db) => Some(IntegrityKind::ValueTooLong),
        _ => return error,
    };
    let Error::Database(source) = error else {
        unreachable!("matched above")
    };
    match kind {
        Some(kind) => Error::Integrity {
            kind,
            model: M::META.name,
            source,
        },
        None => Error::UniqueViolation(Box::new(unique_violation(M::META, source, row, dialect))),
    }
}

/// Whether an `update_or_create` by `key` writing `fields` on update leaves the row holding the
/// caller's values in every column of every unique constraint that the update can violate: one
/// that has a written field. Otherwise a violation raised by the update has values in part from
/// the stored row, and the caller's row is not a faithful report of them.
pub(crate) fn update_writes_whole_keys<M: Model>(key: KeyId, fields: &[M::Field]) -> bool {
    let meta = M::META;
    let written: Vec<usize> = fields
        .iter()
        .map(|&f| M::field_index(f))
        .chain(meta.key_columns(key).iter().copied())
        .collect();
    // A partial constraint's condition columns count as its own: writing one can move a row into
    // the constraint.
    meta.uniques.iter().all(|u| {
        let touched = u
            .columns
            .iter()
            .copied()
            .chain(u.condition.iter().map(|t| t.column));
        !touched
            .clone()
            .any(|c| fields.iter().any(|&f| M::field_index(f) == c))
            || touched.clone().all(|c| written.contains(&c))
    })
}

/// The error of a failed bulk statement that wrote `rows` (input index, row), in statement order:
/// the typed error, and the input row behind it where it can be found.
///
/// The row is found by the database's report where it has values (MariaDB's rendering of each
/// row, see [`mysql_rendering`], for text and integer keys; PostgreSQL's detail), and, for a plain
/// insert on SQLite and MariaDB (whose transaction survives a failed statement), among the rows
/// that match the report (every row, where the report has no values or no rendering is
/// reproduced), by which could have failed: the first row, in statement order, whose key is
/// already stored or repeats an earlier row's. Once
/// found, that row's own values are the violation's values: they are exact. PostgreSQL's aborted
/// transaction allows no such read: there, two rows that match the report leave the row unnamed.
pub(crate) async fn bulk_error<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    rows: &[(usize, &M)],
    error: Error,
    first_row: usize,
    plain_insert: bool,
) -> Error {
    let dialect = DB::DIALECT;
    let mut error = classify::<M>(error, None, dialect);
    let mut row = None;
    if let Error::UniqueViolation(violation) = &mut error
        && let Some(key) = violation.key
    {
        let (input, values) = culprit::<M, DB>(conn, rows, violation, key, plain_insert).await;
        row = input;
        if let Some(values) = values {
            violation.values = Values::Known(values);
        }
    }
    Error::Bulk {
        row,
        first_row,
        committed_rows: 0,
        source: Box::new(error),
    }
}

/// Whether a key has a text column (compared by collation on MariaDB).
fn has_text(meta: &ModelMeta, key: KeyId) -> bool {
    meta.key_columns(key)
        .iter()
        .any(|&i| meta.columns[i].kind == ColumnKind::Text)
}

/// Most candidate rows probed one by one on MariaDB before giving up.
const MAX_PROBES: usize = 16;

/// The input row behind `violation` of `key` among `rows`, and exact values for it.
async fn culprit<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    rows: &[(usize, &M)],
    violation: &UniqueViolation,
    key: KeyId,
    plain_insert: bool,
) -> (Option<usize>, Option<Vec<String>>) {
    let dialect = DB::DIALECT;
    let keys: Vec<Vec<Value>> = rows
        .iter()
        .map(|(_, row)| crate::query::key_values_of(*row, key, dialect))
        .collect();
    let reported = violation.source.as_ref().and_then(|source| match source {
        sqlx::Error::Database(db) if dialect == Dialect::MySql => {
            match mysql_report(db.message()).values {
                Values::Ambiguous(entry) => Some(entry),
                _ => None,
            }
        }
        _ => None,
    });
    // NULLs collide with nothing (unless the constraint says they do): such rows cannot be behind a
    // duplicate.
    let null_identifies = crate::query::null_identifies(M::META, key);
    let candidates: Vec<usize> = (0..rows.len())
        // A row a partial key does not cover collides with nothing under it.
        .filter(|&p| crate::query::covers(rows[p].1, key, dialect))
        .filter(|&p| null_identifies || !keys[p].iter().any(crate::value::is_null))
        .filter(|&p| match dialect {
            // Kinds whose rendering is not reproduced (decimals, dates, …) leave every row a
            // candidate; the stored-or-repeated rule below then decides, exactly, as no text
            // (and so no collation) is involved.
            Dialect::MySql => match mysql_rendering(&keys[p]) {
                Some(rendering) => Some(rendering) == reported,
                None => !has_text(M::META, key),
            },
            Dialect::Postgres => {
                // As the constraint compares (a case-insensitive index reports the fold).
                let text: Vec<String> = keys[p].iter().map(crate::value::text).collect();
                match &violation.values {
                    Values::Known(values) => text == *values,
                    Values::Ambiguous(raw) => text.join(", ") == *raw,
                    Values::Unknown => true,
                }
            }
            Dialect::Sqlite => true,
        })
        .collect();
    // In skip and update modes a row may update a stored one instead of being inserted, and the
    // row written then holds stored values in columns it does not set: its own values are exact
    // only where the report's own values matched them (PostgreSQL's detail, exactly). SQLite's
    // report has none, and MariaDB's rendering is lossy.
    if !plain_insert && dialect == Dialect::Sqlite {
        return (None, None);
    }
    let exact = |p: usize| {
        (plain_insert || dialect == Dialect::Postgres).then(|| row_values(rows[p].1, key, dialect))
    };
    match candidates.as_slice() {
        [] => return (None, None),
        [only] => return (Some(rows[*only].0), exact(*only)),
        _ => {}
    }
    if plain_insert && dialect != Dialect::Postgres {
        let stored = match stored_among::<M, DB>(conn, &keys, &candidates, key).await {
            Ok(stored) => stored,
            Err(_) => return (None, None),
        };
        // Equal keys render alike, so a repeat of a candidate's key is itself a candidate.
        let mut seen = std::collections::HashSet::with_capacity(candidates.len());
        for (n, &p) in candidates.iter().enumerate() {
            if stored[n]
                || !seen.insert(KeyValues::from_values(
                    keys[p].clone(),
                    crate::query::null_identifies(M::META, key),
                ))
            {
                return (Some(rows[p].0), exact(p));
            }
        }
        return (None, None);
    }
    // Several rows match the report: if they all hold the same values, those are exact.
    let first = candidates[0];
    if candidates.iter().all(|&p| keys[p] == keys[first]) {
        (None, exact(first))
    } else {
        (None, None)
    }
}

/// For each of `candidates` (positions in `keys`), whether a row with that key is already stored,
/// by the database's own comparison. SQLite compares exactly, and so does MariaDB on a key without
/// text: one `SELECT` of every candidate key, compared here. MariaDB compares text by collation
/// (case, trailing spaces): one existence probe per distinct key.
async fn stored_among<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    keys: &[Vec<Value>],
    candidates: &[usize],
    key: KeyId,
) -> Result<Vec<bool>, Error> {
    let dialect = DB::DIALECT;
    let meta = M::META;
    // SQLite compares exactly, and so does MariaDB where the key has no text column.
    if dialect == Dialect::Sqlite || !has_text(meta, key) {
        let wanted: Vec<Option<KeyValues>> = candidates
            .iter()
            .map(|&p| {
                KeyValues::from_values(keys[p].clone(), crate::query::null_identifies(M::META, key))
            })
            .collect();
        let stored = crate::bulk::write::stored_keys::<M, DB>(
            conn,
            key,
            wanted.iter().flatten(),
            crate::query::Lock::None,
        )
        .await?;
        return Ok(wanted
            .iter()
            .map(|k| k.as_ref().is_some_and(|k| stored.contains_key(k)))
            .collect());
    }
    let mut answers: Vec<(&Vec<Value>, bool)> = Vec::new();
    let mut out = Vec::with_capacity(candidates.len());
    for &p in candidates {
        if let Some((_, known)) = answers.iter().find(|(k, _)| **k == keys[p]) {
            out.push(*known);
            continue;
        }
        if answers.len() == MAX_PROBES {
            return Err(Error::Database(sqlx::Error::RowNotFound));
        }
        let crate::query::Statement { sql, values } =
            crate::query::exists_by_key::<M>(key, keys[p].clone(), dialect);
        let exists = DB::fetch_optional(conn, sql, values).await?.is_some();
        answers.push((&keys[p], exists));
        out.push(exists);
    }
    Ok(out)
}

/// PostgreSQL 22001 `value too long for type character varying(n)`, MySQL 1406 `Data too long`.
fn value_too_long(db: &dyn DatabaseError) -> bool {
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return my.number() == 1406;
    }
    db.code().as_deref() == Some("22001")
}

fn unique_violation<M: Model>(
    meta: &'static ModelMeta,
    source: sqlx::Error,
    row: Option<&M>,
    dialect: Dialect,
) -> UniqueViolation {
    let sqlx::Error::Database(db) = &source else {
        unreachable!("classify passes database errors only")
    };
    let report = match dialect {
        Dialect::Postgres => postgres_report(&**db),
        Dialect::MySql => mysql_report(db.message()),
        Dialect::Sqlite => sqlite_report(db.message(), db.code().as_deref()),
    };
    let key = match &report.name {
        Some(name) => key_named(meta, name),
        None => key_with_columns(meta, &report.columns),
    };
    let constraint = match (key, report.name) {
        (Some(key), _) => meta.key_name(key).to_owned(),
        (None, Some(name)) => name,
        // SQLite names columns only; a constraint the model does not declare stays unnamed.
        (None, None) => String::new(),
    };
    let columns = match key {
        Some(key) => meta
            .key_columns(key)
            .iter()
            .map(|&i| meta.columns[i].name.to_owned())
            .collect(),
        None => report.columns,
    };
    // The row this call wrote holds the exact values of the violated key: they win over any
    // parsing, on every backend. Without it, the report's text is used only where provably exact.
    // An undeclared constraint whose columns the database named (SQLite, PostgreSQL): the row the
    // call wrote holds its exact values too.
    let undeclared_columns: Option<Vec<usize>> = match (key, row) {
        (None, Some(_)) if !columns.is_empty() => columns
            .iter()
            .map(|c| meta.column_named(c))
            .collect::<Option<Vec<usize>>>(),
        _ => None,
    };
    let values = match (key, row, undeclared_columns) {
        (Some(key), Some(row), _) => Values::Known(row_values(row, key, dialect)),
        (None, Some(row), Some(indexes)) => Values::Known(
            indexes
                .iter()
                .map(|&i| crate::value::text(&row.column_value(i, dialect)))
                .collect(),
        ),
        _ => match report.values {
            Values::Ambiguous(entry) if dialect == Dialect::MySql => {
                mysql_values(&entry, key.map(|key| (meta, key)), columns.len())
            }
            values => values,
        },
    };
    UniqueViolation {
        meta,
        key,
        constraint,
        columns,
        values,
        source: Some(source),
    }
}

/// What a backend's report says: the constraint's name (not on SQLite), columns where given, values
/// where recoverable.
#[derive(Debug, PartialEq)]
struct Report {
    name: Option<String>,
    columns: Vec<String>,
    values: Values,
}

/// The key known to the database as `name`: MySQL's `PRIMARY`, PostgreSQL's generated
/// `{table}_pkey`, or a declared constraint. PostgreSQL keeps identifiers to 63 bytes, its generated
/// ones too, so names are compared as PostgreSQL stores them.
fn key_named(meta: &ModelMeta, name: &str) -> Option<KeyId> {
    if name == "PRIMARY" || name == pg_generated_name(meta.table, "pkey") {
        return Some(KeyId::PrimaryKey);
    }
    meta.uniques
        .iter()
        .position(|u| u.name == name || pg_identifier(u.name) == name)
        .map(KeyId::Unique)
}

/// The longest identifier PostgreSQL keeps, in bytes (`NAMEDATALEN - 1`).
const PG_MAX_IDENT: usize = 63;

/// `text` cut to at most `max` bytes at a character boundary (PostgreSQL's `pg_mbcliplen`).
fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An identifier as PostgreSQL stores it: cut to 63 bytes.
fn pg_identifier(name: &str) -> &str {
    clip(name, PG_MAX_IDENT)
}

/// The name PostgreSQL generates for a table's constraint, `{table}_{label}`, shortening the table
/// part so that the whole fits in 63 bytes (`makeObjectName` in PostgreSQL's `indexcmds.c`).
fn pg_generated_name(table: &str, label: &str) -> String {
    let table = clip(pg_identifier(table), PG_MAX_IDENT - label.len() - 1);
    format!("{table}_{label}")
}

fn key_with_columns(meta: &ModelMeta, columns: &[String]) -> Option<KeyId> {
    let mut wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    let matches = |key: KeyId| {
        let mut have: Vec<&str> = meta
            .key_columns(key)
            .iter()
            .map(|&i| meta.columns[i].name)
            .collect();
        have.sort_unstable();
        have == wanted
    };
    std::iter::once(KeyId::PrimaryKey)
        .chain((0..meta.uniques.len()).map(KeyId::Unique))
        .find(|&key| matches(key))
}

/// `constraint()` and the detail `Key (a, b)=(x, y) already exists.`
fn postgres_report(db: &dyn DatabaseError) -> Report {
    #[cfg(feature = "postgres")]
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        let mut report = pg.detail().map(postgres_detail).unwrap_or(Report {
            name: None,
            columns: Vec::new(),
            values: Values::Unknown,
        });
        report.name = pg.constraint().map(str::to_owned);
        return report;
    }
    let _ = db;
    Report {
        name: None,
        columns: Vec::new(),
        values: Values::Unknown,
    }
}

/// Splits PostgreSQL's `Key (a, b)=(x, y) already exists.` PostgreSQL quotes a column name that
/// needs it (`"Slug"`, with `"` doubled inside) and joins both lists with `, `; it does not quote
/// values, so the values are split only when that gives one per column.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn postgres_detail(detail: &str) -> Report {
    let unknown = Report {
        name: None,
        columns: Vec::new(),
        values: Values::Unknown,
    };
    let Some(rest) = detail.strip_prefix("Key (") else {
        return unknown;
    };
    let Some((columns, rest)) = pg_identifiers(rest) else {
        return unknown;
    };
    let Some(rest) = rest.strip_prefix(")=(") else {
        return unknown;
    };
    let Some(values) = rest.strip_suffix(") already exists.") else {
        return unknown;
    };
    let values = split_exactly(values, ", ", columns.len());
    Report {
        name: None,
        columns,
        values,
    }
}

/// Reads `a, "B c", "d""e"` up to the first character that ends the list (`)`): the identifiers,
/// unquoted, and the rest of the text. `None` when the text is not such a list.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn pg_identifiers(mut text: &str) -> Option<(Vec<String>, &str)> {
    let mut names = Vec::new();
    loop {
        if let Some(quoted) = text.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                let (at, c) = chars.next()?;
                if c != '"' {
                    name.push(c);
                } else if quoted[at + 1..].starts_with('"') {
                    name.push('"');
                    chars.next();
                } else {
                    break at + 1;
                }
            };
            names.push(name);
            text = &quoted[end..];
        } else {
            // Unquoted: lower-case letters, digits, `_` and `$` (anything else would be quoted).
            let end = text
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(text.len());
            if end == 0 {
                return None;
            }
            names.push(text[..end].to_owned());
            text = &text[end..];
        }
        match text.strip_prefix(", ") {
            Some(rest) => text = rest,
            None => return Some((names, text)),
        }
    }
}

/// `Duplicate entry 'x-y' for key 'name'`: MySQL joins a composite key's values with `-`, unquoted.
/// Read from the end: the key name cannot contain `'`, a value can.
fn mysql_report(message: &str) -> Report {
    let unknown = Report {
        name: None,
        columns: Vec::new(),
        values: Values::Unknown,
    };
    let Some(at) = message.rfind("' for key '") else {
        return unknown;
    };
    let Some(name) = message[at + "' for key '".len()..].strip_suffix('\'') else {
        return unknown;
    };
    let name = name.rsplit('.').next().unwrap_or(name).to_owned();
    let values = match message[..at].strip_prefix("Duplicate entry '") {
        Some(entry) => Values::Ambiguous(entry.to_owned()),
        None => Values::Unknown,
    };
    Report {
        name: Some(name),
        columns: Vec::new(),
        values,
    }
}

/// `UNIQUE constraint failed: t.a, t.b` (2067) or, for a primary key, the same with code 1555; for
/// an index over expressions, `UNIQUE constraint failed: index 'name'`.
fn sqlite_report(message: &str, _code: Option<&str>) -> Report {
    if let Some(name) = message
        .strip_prefix("UNIQUE constraint failed: index '")
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return Report {
            name: Some(name.to_owned()),
            columns: Vec::new(),
            values: Values::Unknown,
        };
    }
    let columns = message
        .strip_prefix("UNIQUE constraint failed: ")
        .map(|list| {
            list.split(", ")
                .map(|c| c.rsplit('.').next().unwrap_or(c).to_owned())
                .collect()
        })
        .unwrap_or_default();
    Report {
        name: None,
        columns,
        values: Values::Unknown,
    }
}

/// The longest text MariaDB prints of a key's values: longer renderings are cut to
/// [`MYSQL_CUT`] bytes (at a character boundary) and followed by `...`.
const MYSQL_SHOWN: usize = 64;
/// See [`MYSQL_SHOWN`].
const MYSQL_CUT: usize = 61;

/// The values of MariaDB's `Duplicate entry '…'` text, `Known` only when provably exact.
///
/// MariaDB renders the key lossily (measured on MariaDB 10.11): the values are joined with `-`,
/// a character outside the Basic Multilingual Plane (emoji) prints as `?`, NUL and other control
/// characters print as `\XXXX` (tab, CR and LF print as themselves), and a rendering over 64 bytes is
/// cut to 61 bytes plus `...`. Decimals print with their column's scale, dates and floats in its
/// own formats. So the text is exact only for text and integer columns, with no `?`, no `\`, no
/// trailing `...`, and a split on `-` that gives one part per column (and integers where the
/// column is one); anything else is [`Values::Ambiguous`], the raw text.
fn mysql_values(entry: &str, key: Option<(&ModelMeta, KeyId)>, count: usize) -> Values {
    let ambiguous = || Values::Ambiguous(entry.to_owned());
    let Some((meta, key)) = key else {
        return ambiguous();
    };
    let columns = meta.key_columns(key);
    let lossless_kinds = columns.iter().all(|&i| {
        matches!(
            meta.columns[i].kind,
            ColumnKind::Text | ColumnKind::SmallInt | ColumnKind::Int | ColumnKind::BigInt
        )
    });
    if !lossless_kinds
        || columns.len() != count
        || entry.contains(['?', '\\'])
        || entry.ends_with("...")
    {
        return ambiguous();
    }
    match split_exactly(entry, "-", count) {
        Values::Known(parts)
            if columns.iter().zip(&parts).all(|(&i, part)| {
                !meta.columns[i].kind.is_integer() || part.parse::<i64>().is_ok()
            }) =>
        {
            Values::Known(parts)
        }
        _ => ambiguous(),
    }
}

/// How MariaDB renders `values` in a `Duplicate entry '…'` message (see [`mysql_values`]); `None`
/// for a kind whose rendering is not reproduced here (decimals, floats, dates, …).
pub(crate) fn mysql_rendering(values: &[Value]) -> Option<String> {
    let mut out = String::new();
    for (n, value) in values.iter().enumerate() {
        if n > 0 {
            out.push('-');
        }
        match value {
            Value::String(Some(text)) => {
                for c in text.chars() {
                    let code = u32::from(c);
                    if code > 0xFFFF {
                        out.push('?');
                    } else if (code < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
                        || (0x7F..=0x9F).contains(&code)
                    {
                        out.push_str(&format!("\\{code:04X}"));
                    } else {
                        out.push(c);
                    }
                }
            }
            Value::SmallInt(Some(v)) => out.push_str(&v.to_string()),
            Value::Int(Some(v)) => out.push_str(&v.to_string()),
            Value::BigInt(Some(v)) => out.push_str(&v.to_string()),
            _ => return None,
        }
    }
    if out.len() > MYSQL_SHOWN {
        out.truncate(clip(&out, MYSQL_CUT).len());
        out.push_str("...");
    }
    Some(out)
}

/// The text of `row`'s values of `key`, one per column.
pub(crate) fn row_values<M: Model>(row: &M, key: KeyId, dialect: Dialect) -> Vec<String> {
    M::META
        .key_columns(key)
        .iter()
        .map(|&i| crate::value::text(&row.column_value(i, dialect)))
        .collect()
}

/// `text` split on `separator` into exactly `count` parts, or [`Values::Ambiguous`] when a part
/// would have to contain the separator.
fn split_exactly(text: &str, separator: &str, count: usize) -> Values {
    if count == 1 {
        return Values::Known(vec![text.to_owned()]);
    }
    let parts: Vec<String> = text.split(separator).map(str::to_owned).collect();
    if parts.len() == count {
        Values::Known(parts)
    } else {
        Values::Ambiguous(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Verbatim from the servers (PostgreSQL 15 detail, MariaDB 10.11 and SQLite 3 messages).
    #[test]
    fn postgres_details_split_only_when_unambiguous() {
        let r = postgres_detail("Key (tenant, name)=(1, first) already exists.");
        assert_eq!(r.columns, ["tenant", "name"]);
        assert_eq!(r.values, Values::Known(vec!["1".into(), "first".into()]));

        let r = postgres_detail("Key (sku)=(O'Brien (\"quoted\"), café — 日本) already exists.");
        assert_eq!(
            r.values,
            Values::Known(vec!["O'Brien (\"quoted\"), café — 日本".into()])
        );

        // Two columns, but the first value holds ", ": splitting would guess.
        let r = postgres_detail("Key (product_name, store_id)=(Pixel, 8 Pro, 1) already exists.");
        assert_eq!(r.values, Values::Ambiguous("Pixel, 8 Pro, 1".into()));

        assert_eq!(postgres_detail("something else").values, Values::Unknown);
    }

    #[test]
    fn mysql_messages_name_the_key() {
        let r = mysql_report("Duplicate entry '1-first' for key 'uq_item_tenant_name'");
        assert_eq!(r.name.as_deref(), Some("uq_item_tenant_name"));
        assert_eq!(r.values, Values::Ambiguous("1-first".into()));

        let r = mysql_report("Duplicate entry 'A-1' for key 'products.products_sku_key'");
        assert_eq!(r.name.as_deref(), Some("products_sku_key"));

        // A value that itself contains `' for key '`.
        let r = mysql_report("Duplicate entry 'x' for key 'y' for key 'per_store'");
        assert_eq!(r.name.as_deref(), Some("per_store"));
        assert_eq!(r.values, Values::Ambiguous("x' for key 'y".into()));

        let r = mysql_report("Duplicate entry '7' for key 'PRIMARY'");
        assert_eq!(r.name.as_deref(), Some("PRIMARY"));
    }

    #[test]
    fn sqlite_messages_give_columns() {
        let r = sqlite_report(
            "UNIQUE constraint failed: item.tenant, item.name",
            Some("2067"),
        );
        assert_eq!(r.columns, ["tenant", "name"]);
        assert_eq!(r.name, None);
    }

    /// Each expected text is verbatim from MariaDB 10.11 (`Duplicate entry '…'` of that value).
    #[test]
    fn mysql_rendering_matches_the_server() {
        let text = |s: &str| vec![Value::String(Some(s.to_owned()))];
        let cases: Vec<(Vec<Value>, String)> = vec![
            (text("emoji 😀🎉"), "emoji ??".into()),
            (text("nul\0x"), "nul\\0000x".into()),
            (text(&"z".repeat(64)), "z".repeat(64)),
            (text(&"w".repeat(65)), format!("{}...", "w".repeat(61))),
            (text(&"日".repeat(30)), format!("{}...", "日".repeat(20))),
            (
                text(&format!("{}😀bbb", "a".repeat(58))),
                format!("{}?bbb", "a".repeat(58)),
            ),
            (
                text(&format!("{}\0ccc", "b".repeat(59))),
                format!("{}\\0...", "b".repeat(59)),
            ),
            (
                text("x\t\n\r\u{1b}\u{1f} ~\u{7f}é\u{80}\u{200b}\u{ffff}"),
                "x\t\n\r\\001B\\001F ~\\007Fé\\0080\u{200b}\u{ffff}".into(),
            ),
            (
                text("z\u{b}\u{c}\u{85}\u{9f}\u{a0}\u{2028}"),
                "z\\000B\\000C\\0085\\009F\u{a0}\u{2028}".into(),
            ),
            (
                vec![Value::String(Some("a-b".into())), Value::BigInt(Some(-5))],
                "a-b--5".into(),
            ),
            (
                vec![
                    Value::String(Some("z".repeat(55))),
                    Value::BigInt(Some(123_456_789)),
                ],
                format!("{}-12345...", "z".repeat(55)),
            ),
        ];
        for (values, expected) in cases {
            assert_eq!(mysql_rendering(&values), Some(expected), "{values:?}");
        }
        assert_eq!(mysql_rendering(&[Value::Double(Some(0.1))]), None);
    }

    #[derive(crate::Model)]
    #[model(table = "things")]
    #[unique_together(name, n, name = "things_pair")]
    struct Thing {
        #[model(primary_key, auto_increment)]
        id: i64,
        #[unique]
        name: String,
        n: i64,
        #[unique]
        at: f64,
    }

    #[test]
    fn mysql_text_is_known_only_when_provably_exact() {
        let meta = Thing::META;
        let name = Some((meta, KeyId::Unique(0)));
        // Field-level constraints first, then `unique_together`.
        let at = Some((meta, KeyId::Unique(1)));
        let pair = Some((meta, KeyId::Unique(2)));
        let known = |v: &[&str]| Values::Known(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(mysql_values("plain", name, 1), known(&["plain"]));
        assert_eq!(mysql_values("it's \"x\"", name, 1), known(&["it's \"x\""]));
        for lossy in ["emoji ??", "nul\\0000x", &format!("{}...", "w".repeat(61))] {
            assert_eq!(
                mysql_values(lossy, name, 1),
                Values::Ambiguous(lossy.into()),
                "{lossy}"
            );
        }
        assert_eq!(mysql_values("first-7", pair, 2), known(&["first", "7"]));
        // A dash in the text, a negative number, a part that is not an integer: not split.
        for unsplittable in ["a-b-7", "a--7", "a-x"] {
            assert_eq!(
                mysql_values(unsplittable, pair, 2),
                Values::Ambiguous(unsplittable.into())
            );
        }
        // MariaDB's own float formatting is not the value.
        assert_eq!(mysql_values("0.1", at, 1), Values::Ambiguous("0.1".into()));
        assert_eq!(mysql_values("x", None, 1), Values::Ambiguous("x".into()));
    }

    #[test]
    fn display_is_one_line_and_advice_is_separate() {
        let row = Thing {
            id: 1,
            name: "two\nlines\r\u{2028}".into(),
            n: 7,
            at: 0.5,
        };
        let pair = UniqueViolation::predicted(&row, KeyId::Unique(2), Dialect::Sqlite);
        assert_eq!(
            pair.to_string(),
            r#"duplicate Thing: unique constraint "things_pair" (name, n) already has a row with name = "two\nlines\r\u{2028}", n = "7""#
        );
        assert_eq!(
            pair.advice(),
            "Thing::get_or_create_by_name_and_n returns the existing row, Thing::update_or_create_by_name_and_n updates it, and BulkInsert::skip_conflicts::<ThingByNameAndN>() passes over it"
        );
        assert!(std::error::Error::source(&pair).is_none());

        // Names from the database (a constraint made by hand) are escaped too.
        let by_hand = UniqueViolation {
            meta: Thing::META,
            key: None,
            constraint: "odd\nname".into(),
            columns: vec!["a\tb".into()],
            values: Values::Ambiguous("x\ny".into()),
            source: None,
        };
        let text = by_hand.to_string();
        assert_eq!(
            text,
            r#"duplicate Thing: unique constraint "odd\nname" (a\tb) already has a row with the values the database reported as "x\ny""#
        );
        assert!(!text.contains(['\n', '\t']), "{text}");
        assert!(
            by_hand
                .advice()
                .starts_with("Thing does not declare this constraint")
        );
    }

    #[test]
    fn postgres_names_are_matched_as_postgres_stores_them() {
        // Verified on PostgreSQL 15: a 60-byte table's primary key is named with the table cut to
        // 58 bytes, so that the name fits in 63.
        let table = "t".repeat(60);
        assert_eq!(
            pg_generated_name(&table, "pkey"),
            format!("{}_pkey", "t".repeat(58))
        );
        assert_eq!(pg_generated_name("products", "pkey"), "products_pkey");
        // Cut at a character boundary.
        let wide = format!("{}é", "t".repeat(57));
        assert_eq!(
            pg_generated_name(&wide, "pkey"),
            format!("{}_pkey", "t".repeat(57))
        );
        assert_eq!(pg_identifier(&"n".repeat(70)), "n".repeat(63));
    }

    #[test]
    fn postgres_detail_unquotes_column_names() {
        let r = postgres_detail("Key (\"Slug\")=(s-2) already exists.");
        assert_eq!(r.columns, ["Slug"]);
        assert_eq!(r.values, Values::Known(vec!["s-2".into()]));
        let r = postgres_detail(
            "Key (\"a \"\"b\"\", c\", tenant, \"X)=(y\")=(1, 2, 3) already exists.",
        );
        assert_eq!(r.columns, ["a \"b\", c", "tenant", "X)=(y"]);
        assert_eq!(
            r.values,
            Values::Known(vec!["1".into(), "2".into(), "3".into()])
        );
        assert_eq!(
            postgres_detail("Key (\"open)=(1) already exists.").values,
            Values::Unknown
        );
    }

    #[test]
    fn composite_mysql_values_split_on_dashes_only_when_unambiguous() {
        assert_eq!(
            split_exactly("1-first", "-", 2),
            Values::Known(vec!["1".into(), "first".into()])
        );
        assert_eq!(
            split_exactly("1-first-class", "-", 2),
            Values::Ambiguous("1-first-class".into())
        );
    }
}
