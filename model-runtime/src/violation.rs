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

use crate::backend::Dialect;
use crate::error::Error;
use crate::meta::{KeyId, ModelMeta};
use crate::model::{Key, Model};

/// A write refused because a row with the same values of a unique constraint exists: the typed
/// `IntegrityError: duplicate key value violates unique constraint`.
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
    /// The values, one per column, as text.
    Known(Vec<String>),
    /// The database's message cannot be split into one value per column without guessing (a value
    /// contains the separator the database joins them with).
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
    /// `violation.is::<Product, ProductBySku>()`.
    pub fn is<M: Model, K: Key<M>>(&self) -> bool {
        self.meta.name == M::META.name
            && self.meta.table == M::META.table
            && self.key == Some(K::KEY)
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

    /// Whether `row` holds the values this violation reports for `key` (to find the input row behind a
    /// bulk insert's error).
    pub(crate) fn matches_row<M: Model>(&self, row: &M, key: KeyId, dialect: Dialect) -> bool {
        let Values::Known(values) = &self.values else {
            return false;
        };
        let columns = M::META.key_columns(key);
        values.len() == columns.len()
            && columns
                .iter()
                .zip(values)
                .all(|(&i, v)| value_text(&row.column_value(i, dialect)) == *v)
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
                    .map(|&i| value_text(&row.column_value(i, dialect)))
                    .collect(),
            ),
            source: None,
        }
    }

    /// `sku`, `product_name_and_store_id`: the suffix of the generated methods for this key.
    fn method_suffix(&self) -> Option<String> {
        let key = self.key?;
        let fields: Vec<&str> = self
            .meta
            .key_columns(key)
            .iter()
            .map(|&i| self.meta.columns[i].field.trim_start_matches("r#"))
            .collect();
        Some(fields.join("_and_"))
    }
}

impl fmt::Display for UniqueViolation {
    /// ```text
    /// duplicate Product: unique constraint "products_sku_key" (sku) already has a row with sku = "A-1"; Product::get_or_create_by_sku returns that row, Product::update_or_create_by_sku updates it, and a skip-duplicates bulk insert passes over it
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "duplicate {}: ", self.meta.name)?;
        match self.key {
            Some(KeyId::PrimaryKey) => f.write_str("the primary key")?,
            _ if self.constraint.is_empty() => f.write_str("a unique constraint")?,
            _ => write!(f, "unique constraint \"{}\"", self.constraint)?,
        }
        if !self.columns.is_empty() {
            write!(f, " ({})", self.columns.join(", "))?;
        }
        f.write_str(" already has a row with ")?;
        match &self.values {
            Values::Known(values) => {
                for (n, (column, value)) in self.columns.iter().zip(values).enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{column} = {value:?}")?;
                }
            }
            Values::Ambiguous(raw) => write!(f, "the values {raw:?}")?,
            Values::Unknown => f.write_str("these values")?,
        }
        match self.method_suffix() {
            Some(suffix) => write!(
                f,
                "; {m}::get_or_create_by_{suffix} returns that row, {m}::update_or_create_by_{suffix} updates it, and a skip-duplicates bulk insert passes over it",
                m = self.meta.name
            ),
            None => write!(
                f,
                "; the model does not declare this constraint: declare it on {} with #[unique] or #[unique_together(…)] for typed lookups and get_or_create",
                self.meta.name
            ),
        }
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
    let reported = match report.values {
        // MySQL joins a composite key's values with `-`; only the column count tells them apart.
        Values::Ambiguous(entry) if dialect == Dialect::MySql => {
            split_exactly(&entry, "-", columns.len())
        }
        values => values,
    };
    // Where the report is not enough, the values this call wrote are exact: a duplicate means the
    // existing row holds the same ones.
    let values = match (reported, key, row) {
        (Values::Known(values), _, _) => Values::Known(values),
        (_, Some(key), Some(row)) => Values::Known(
            meta.key_columns(key)
                .iter()
                .map(|&i| value_text(&row.column_value(i, dialect)))
                .collect(),
        ),
        (values, _, _) => values,
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

fn key_named(meta: &ModelMeta, name: &str) -> Option<KeyId> {
    if name == "PRIMARY" || name == format!("{}_pkey", meta.table) {
        return Some(KeyId::PrimaryKey);
    }
    meta.uniques
        .iter()
        .position(|u| u.name == name)
        .map(KeyId::Unique)
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

/// Splits PostgreSQL's `Key (a, b)=(x, y) already exists.` PostgreSQL joins both lists with `, `
/// and does not quote values, so the values are split only when that gives one per column.
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
    let Some((columns, rest)) = rest.split_once(")=(") else {
        return unknown;
    };
    let Some(values) = rest.strip_suffix(") already exists.") else {
        return unknown;
    };
    let columns: Vec<String> = columns.split(", ").map(str::to_owned).collect();
    let values = split_exactly(values, ", ", columns.len());
    Report {
        name: None,
        columns,
        values,
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

/// `UNIQUE constraint failed: t.a, t.b` (2067) or, for a primary key, the same with code 1555.
fn sqlite_report(message: &str, _code: Option<&str>) -> Report {
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

/// A bound value as text, for messages.
fn value_text(value: &Value) -> String {
    fn show<T: fmt::Display>(v: &Option<T>) -> String {
        v.as_ref()
            .map_or_else(|| "NULL".to_owned(), |v| v.to_string())
    }
    match value {
        Value::Bool(v) => show(v),
        Value::SmallInt(v) => show(v),
        Value::Int(v) => show(v),
        Value::BigInt(v) => show(v),
        Value::Float(v) => show(v),
        Value::Double(v) => show(v),
        Value::String(v) => show(v),
        Value::Bytes(v) => v.as_ref().map_or_else(
            || "NULL".to_owned(),
            |b| b.iter().map(|x| format!("{x:02x}")).collect::<String>(),
        ),
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(v) => show(v),
        #[cfg(feature = "chrono")]
        Value::ChronoDate(v) => show(v),
        #[cfg(feature = "chrono")]
        Value::ChronoTime(v) => show(v),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTime(v) => show(v),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTimeUtc(v) => show(v),
        #[cfg(feature = "uuid")]
        Value::Uuid(v) => show(v),
        #[cfg(feature = "json")]
        Value::Json(v) => show(v),
        other => format!("{other:?}"),
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
