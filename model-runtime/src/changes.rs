//! What an `update_or_create` or a bulk update writes to a stored row: listed fields, increments, and
//! the condition on the stored row under which it writes at all.

use std::marker::PhantomData;

use sea_query::Value;

use crate::backend::Dialect;
use crate::column::{Column, SqlType};
use crate::meta::{ColumnKind, ColumnMeta, ModelMeta};
use crate::model::Model;

/// A field of model `M` whose Rust type is `T`: `Product::FIELDS.hits`. `#[derive(Model)]` makes one
/// for every field, so that what an increment or a condition may apply to is checked by the
/// compiler ([`Numeric`], [`Ordered`]).
pub struct TypedField<M, T> {
    index: usize,
    marker: PhantomData<fn() -> (M, T)>,
}

impl<M, T> TypedField<M, T> {
    #[doc(hidden)]
    pub const fn __new(index: usize) -> Self {
        TypedField {
            index,
            marker: PhantomData,
        }
    }

    /// The field's column index (into [`crate::ModelMeta::columns`]).
    pub const fn index(self) -> usize {
        self.index
    }
}

impl<M, T> Clone for TypedField<M, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M, T> Copy for TypedField<M, T> {}

impl<M: Model, T> std::fmt::Debug for TypedField<M, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let column = &M::META.columns[self.index];
        write!(f, "{}.{}", M::META.name, column.field)
    }
}

/// A field type an increment applies to: `NOT NULL` integers, floats and decimals. An increment of
/// a nullable field would leave NULL as NULL, which no counter means.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be incremented",
    label = "not a NOT NULL number",
    note = "increments apply to fields of type i16, i32, i64, f32, f64 or rust_decimal::Decimal (not Option<…>)"
)]
pub trait Numeric: SqlType {}

impl Numeric for i16 {}
impl Numeric for i32 {}
impl Numeric for i64 {}
impl Numeric for f32 {}
impl Numeric for f64 {}
#[cfg(feature = "rust_decimal")]
impl Numeric for rust_decimal::Decimal {}

/// A field type whose stored values are ordered the same way on every backend, as Rust orders
/// them: integers, dates and times (and `Option` of those, NULL ordered before every value, as
/// `Option`'s `None` is). A condition such as [`Changes::only_if_newer`] compares it.
///
/// Floats are not `Ordered` (NaN has no place in an order the backends agree on), nor decimals
/// (SQLite stores them as text, which orders otherwise), nor text (each column's collation orders
/// it its own way). Implement it for a type of yours (a `#[derive(Column)]` newtype over `i64`,
/// say) whose stored values order as you mean.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not ordered the same way on every backend",
    label = "not an integer, date or time",
    note = "conditions compare fields of type i16, i32, i64, chrono's NaiveDate, NaiveTime, NaiveDateTime or DateTime<Utc>, Option of those, or a type of yours that implements model_runtime::Ordered"
)]
pub trait Ordered: Column {}

impl Ordered for i16 {}
impl Ordered for i32 {}
impl Ordered for i64 {}
#[cfg(feature = "chrono")]
impl Ordered for chrono::NaiveDate {}
#[cfg(feature = "chrono")]
impl Ordered for chrono::NaiveTime {}
#[cfg(feature = "chrono")]
impl Ordered for chrono::NaiveDateTime {}
#[cfg(feature = "chrono")]
impl Ordered for chrono::DateTime<chrono::Utc> {}
impl<T: Ordered + SqlType> Ordered for Option<T> {}

/// When a stored row may be written: its field compared with the incoming value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Guard {
    /// The column compared.
    pub column: usize,
    /// `true`: the incoming value must be greater (newer); `false`: greater or equal (not older).
    pub strict: bool,
}

impl Guard {
    /// Whether the guard lets `incoming` replace `stored` (NULL is older than every value), as
    /// [`Guard::sql`] decides on `dialect`.
    pub(crate) fn admits(self, stored: &Value, incoming: &Value, dialect: Dialect) -> bool {
        if dialect == Dialect::Sqlite && (far_date(stored) || far_date(incoming)) {
            return false;
        }
        let order = match (
            crate::value::is_null(stored),
            crate::value::is_null(incoming),
        ) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (false, false) => crate::value::compare(stored, incoming),
        };
        if self.strict {
            order.is_lt()
        } else {
            order.is_le()
        }
    }

    /// The guard as SQL over the stored column `stored` and the incoming value `incoming` (each an
    /// SQL expression, `incoming` named [`Guard::incoming_uses`] times), with NULL older than every
    /// value when the column is nullable.
    ///
    /// SQLite stores dates and timestamps as text, which orders as they do only for years 0 to 9999
    /// (`+10000-01-01` and `-0001-01-01` sort before `2024-…`): there a value outside those years,
    /// stored or incoming, makes the guard refuse, never write.
    pub(crate) fn sql(
        self,
        column: &ColumnMeta,
        dialect: Dialect,
        stored: &str,
        incoming: &str,
    ) -> String {
        let compare = match (self.strict, column.nullable) {
            (true, false) => format!("{stored} < {incoming}"),
            (false, false) => format!("{stored} <= {incoming}"),
            (true, true) => {
                format!("({incoming} IS NOT NULL AND ({stored} IS NULL OR {stored} < {incoming}))")
            }
            (false, true) => {
                format!("({stored} IS NULL OR ({incoming} IS NOT NULL AND {stored} <= {incoming}))")
            }
        };
        if sqlite_text_date(column, dialect) {
            let year = |x: &str| format!("({x} IS NULL OR substr({x}, 1, 1) BETWEEN '0' AND '9')");
            return format!("({} AND {} AND {compare})", year(stored), year(incoming));
        }
        compare
    }

    /// How many times [`Guard::sql`] names the incoming value.
    pub(crate) fn incoming_uses(self, column: &ColumnMeta, dialect: Dialect) -> usize {
        let compare = if column.nullable { 2 } else { 1 };
        if sqlite_text_date(column, dialect) {
            compare + 2
        } else {
            compare
        }
    }
}

/// Whether the column holds dates as text whose order is the dates' only within years 0 to 9999.
fn sqlite_text_date(column: &ColumnMeta, dialect: Dialect) -> bool {
    dialect == Dialect::Sqlite
        && matches!(
            column.kind,
            ColumnKind::Date | ColumnKind::DateTime | ColumnKind::TimestampTz
        )
}

/// A date or timestamp outside years 0 to 9999.
fn far_date(value: &Value) -> bool {
    #[cfg(feature = "chrono")]
    {
        use chrono::Datelike;
        let year = match value {
            Value::ChronoDate(Some(d)) => d.year(),
            Value::ChronoDateTime(Some(d)) => d.year(),
            Value::ChronoDateTimeUtc(Some(d)) => d.year(),
            _ => return false,
        };
        !(0..=9999).contains(&year)
    }
    #[cfg(not(feature = "chrono"))]
    {
        let _ = value;
        false
    }
}

/// What an `update_or_create` (or a bulk update) writes when the row exists, and the row its values
/// come from: the listed fields set to the incoming values, [`increments`](Changes::increment) added
/// to the stored values, and an optional condition on the stored row
/// ([`only_if_newer`](Changes::only_if_newer)) under which anything is written at all.
///
/// With the row to create, this gives Django's three value sets: fields only in the row to create
/// (`create_defaults`), fields listed here from another row (`defaults`), and fields listed here
/// from the same row (both).
#[derive(Debug)]
pub struct Changes<'a, M: Model> {
    pub(crate) values: &'a M,
    pub(crate) fields: &'a [M::Field],
    pub(crate) increments: Vec<usize>,
    pub(crate) guard: Option<Guard>,
}

impl<'a, M: Model> Changes<'a, M> {
    /// The listed fields, with their values in `values`.
    pub fn new(values: &'a M, fields: &'a [M::Field]) -> Self {
        Changes {
            values,
            fields,
            increments: Vec::new(),
            guard: None,
        }
    }

    /// On update, adds the field's value in `values` to the stored value (`hits = hits + ?`),
    /// atomically in the database, instead of replacing it; the row created holds the created
    /// row's own value. A counter upsert is one call:
    /// `Changes::new(&page, &[]).increment(Page::FIELDS.hits)` with `page.hits == 1`.
    ///
    /// The field must not also be listed, nor be a key or primary key column
    /// ([`crate::Error::InvalidArgument`]). An increment always writes the row
    /// ([`crate::Outcome::Updated`], never `Unchanged`). An overflow is the database's error
    /// (PostgreSQL's "out of range"; MariaDB's 1690, in strict mode or not: the library checks
    /// `SMALLINT`, `INT`, sized `DECIMAL` and `FLOAT` sums itself, as MariaDB would clamp them
    /// outside strict mode; on SQLite, which would turn an integer overflow into a float, the
    /// library raises "integer overflow"), and nothing is written. A `Decimal` sum past
    /// `Decimal::MAX` is such an overflow on every backend, though the servers' unsized decimals
    /// would hold it. Decimals and `f32` cannot be incremented on SQLite
    /// ([`crate::Error::InvalidArgument`]): it stores decimals as text and has no
    /// single-precision float.
    pub fn increment<T: Numeric>(mut self, field: TypedField<M, T>) -> Self {
        if !self.increments.contains(&field.index) {
            self.increments.push(field.index);
        }
        self
    }

    /// Writes the stored row only when the field's value in `values` is greater than the stored
    /// one: the usual "only if newer" of a sync (`updated_at`, `version`). A row the condition
    /// refuses is left as it is and reported [`crate::Outcome::Stale`] (in bulk,
    /// [`crate::RowOutcome::Stale`]). NULL counts as older than every value: a stored NULL is
    /// replaced by any value, and an incoming NULL is never newer. Replaces an earlier condition.
    ///
    /// On SQLite, which stores dates and timestamps as text that orders as they do only for years
    /// 0 to 9999, a date outside those years, stored or incoming, is never replaced nor replaces
    /// (`Stale`).
    pub fn only_if_newer<T: Ordered>(mut self, field: TypedField<M, T>) -> Self {
        self.guard = Some(Guard {
            column: field.index,
            strict: true,
        });
        self
    }

    /// As [`only_if_newer`](Changes::only_if_newer), but an equal value also writes (greater or
    /// equal: "not older").
    pub fn only_if_not_older<T: Ordered>(mut self, field: TypedField<M, T>) -> Self {
        self.guard = Some(Guard {
            column: field.index,
            strict: false,
        });
        self
    }
}

impl<M: Model> Clone for Changes<'_, M> {
    fn clone(&self) -> Self {
        Changes {
            values: self.values,
            fields: self.fields,
            increments: self.increments.clone(),
            guard: self.guard,
        }
    }
}

/// An increment as SQL: the stored column plus the incoming value, which must stay within the
/// column's type on every backend and in every mode. SQLite turns an integer overflow into a float,
/// which would be stored in an integer column; MariaDB outside strict mode clamps a `SMALLINT`,
/// `INT`, sized `DECIMAL` or `FLOAT` to its limit with a warning; PostgreSQL's `NUMERIC` and
/// MariaDB's `DECIMAL(65, 30)` hold sums past `Decimal::MAX`, which would then no longer decode.
/// There the sum is checked against the type's range, and an overflow is raised on purpose:
/// SQLite's `abs(-9223372036854775808)` ("integer overflow"), MariaDB's `9223372036854775807 + 1`
/// (error 1690, "BIGINT value is out of range", in any mode), PostgreSQL's `bigint` addition of the
/// same (22003, "bigint out of range"; it names the stored column so that the planner cannot fold
/// it into an error at plan time). SQLite's float sums are checked the same way: past the type's
/// largest value it would store infinity (or, in an `f32` column, a value no `f32` holds) where the
/// servers refuse the sum. `incoming` is named [`increment_uses`] times.
pub(crate) fn increment_sql(
    column: &ColumnMeta,
    stored: &str,
    incoming: &str,
    dialect: Dialect,
) -> String {
    // The expressions that raise an overflow on purpose, wherever they stand.
    const SQLITE_OVERFLOW: &str = "abs(-9223372036854775807 - 1)";
    const MYSQL_OVERFLOW: &str = "9223372036854775807 + 1";
    let kind = column.kind;
    let sum = format!("{stored} + {incoming}");
    match (dialect, kind) {
        // SQLite stores a float sum past the type's range as infinity (or, for an `f32` column, a
        // value that no `f32` holds): refused the same way (found by an adversarial test).
        (Dialect::Sqlite, ColumnKind::Float | ColumnKind::Double) => {
            let max = float_max(kind);
            format!(
                "CASE WHEN {sum} BETWEEN -{max} AND {max} THEN {sum} ELSE {SQLITE_OVERFLOW} END"
            )
        }
        // Outside strict mode MariaDB clamps a `FLOAT` or sized `DECIMAL` sum to its limit; and
        // neither server's unsized decimal refuses a sum past `Decimal::MAX` (found by an
        // adversarial test). PostgreSQL refuses a sized `NUMERIC`'s overflow itself.
        (Dialect::MySql, ColumnKind::Float | ColumnKind::Decimal) => {
            let max = match kind {
                ColumnKind::Float => float_max(kind).to_owned(),
                _ => decimal_max(column),
            };
            format!("IF(abs({sum}) <= {max}, {sum}, {MYSQL_OVERFLOW})")
        }
        (Dialect::Postgres, ColumnKind::Decimal) if column.decimal.is_none() => {
            let max = decimal_max(column);
            format!(
                "CASE WHEN abs({sum}) <= {max} THEN {sum} ELSE ({stored} * 0)::int8 + {MYSQL_OVERFLOW} END"
            )
        }
        _ => match (dialect, int_range(kind)) {
            (Dialect::Sqlite, Some((min, max))) => format!(
                "CASE WHEN typeof({sum}) = 'integer' AND {sum} BETWEEN {min} AND {max} THEN {sum} ELSE {SQLITE_OVERFLOW} END"
            ),
            (Dialect::MySql, Some((min, max))) if kind != ColumnKind::BigInt => {
                format!("IF({sum} BETWEEN {min} AND {max}, {sum}, {MYSQL_OVERFLOW})")
            }
            _ => sum,
        },
    }
}

/// How many times [`increment_sql`] names the incoming value: counted in the SQL itself, so that
/// the two never disagree (the values bound must match the placeholders, one per naming).
pub(crate) fn increment_uses(column: &ColumnMeta, dialect: Dialect) -> usize {
    const MARK: &str = "\u{1}";
    increment_sql(column, "s", MARK, dialect)
        .matches(MARK)
        .count()
}

/// The largest finite value of a float column's type, as SQL text that reads back exactly.
fn float_max(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Float => "3.4028234663852886e38",
        _ => "1.7976931348623157e308",
    }
}

/// The largest value a decimal column holds that decodes: its declared size's
/// (`NUMERIC(p, s)`: `p - s` nines, a point, `s` nines), or `Decimal::MAX` for an unsized one.
fn decimal_max(column: &ColumnMeta) -> String {
    match column.decimal {
        Some(size) => {
            let whole = size.precision.saturating_sub(size.scale) as usize;
            let mut max = if whole == 0 {
                "0".to_owned()
            } else {
                "9".repeat(whole)
            };
            if size.scale > 0 {
                max.push('.');
                max.push_str(&"9".repeat(size.scale as usize));
            }
            max
        }
        // `rust_decimal::Decimal::MAX`, 2^96 - 1.
        None => "79228162514264337593543950335".to_owned(),
    }
}

fn int_range(kind: ColumnKind) -> Option<(i64, i64)> {
    match kind {
        ColumnKind::SmallInt => Some((i16::MIN.into(), i16::MAX.into())),
        ColumnKind::Int => Some((i32::MIN.into(), i32::MAX.into())),
        ColumnKind::BigInt => Some((i64::MIN, i64::MAX)),
        _ => None,
    }
}

/// Why one of `increments` cannot be written, if one cannot: it is also among the `listed`
/// columns (set or add?), it is a column of `key` or of the primary key (the row would move to
/// another key), or `dialect` cannot add it ([`increment_refused`]). `update_or_create` and bulk
/// update mode refuse the same increments with the same words.
pub(crate) fn refused_increment(
    meta: &ModelMeta,
    increments: &[usize],
    listed: &[usize],
    key: crate::meta::KeyId,
    dialect: Dialect,
) -> Option<String> {
    increments.iter().find_map(|&i| {
        let field = meta.columns[i].field;
        if listed.contains(&i) {
            Some(format!(
                "`{field}` is both listed among the fields to update and incremented: list it, or increment it, not both"
            ))
        } else if i == meta.primary_key || meta.key_columns(key).contains(&i) {
            Some(format!(
                "`{field}` is incremented, but it is a column of the key or the primary key, which a stored row keeps: increment another field"
            ))
        } else {
            increment_refused(meta.columns[i].kind, dialect)
                .map(|why| format!("`{field}` cannot be incremented here: it is {why}"))
        }
    })
}

/// Why the column cannot be incremented on `dialect`, if it cannot: SQLite stores decimals as text
/// (it would add them as floats) and has no single-precision float (it would add `f32`s as
/// `f64`s, and store a value no `f32` holds).
pub(crate) fn increment_refused(kind: ColumnKind, dialect: Dialect) -> Option<&'static str> {
    match (dialect, kind) {
        (Dialect::Sqlite, ColumnKind::Decimal) => Some(
            "a decimal, which SQLite stores as text and would add as a float: increments of decimals need PostgreSQL or MariaDB",
        ),
        (Dialect::Sqlite, ColumnKind::Float) => Some(
            "an f32, which SQLite would add and store as an f64: increment an f64 field, or use PostgreSQL or MariaDB",
        ),
        _ => None,
    }
}

/// A call's increments and guard with their incoming values, as the statements bind them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extra {
    /// Columns incremented, with the amount (the incoming value).
    pub increments: Vec<(usize, Value)>,
    /// The guard, with the incoming value of its column.
    pub guard: Option<(Guard, Value)>,
}

impl Extra {
    /// What `changes` adds to the listed fields, with its values from `changes.values`.
    pub(crate) fn of<M: Model>(changes: &Changes<'_, M>, dialect: Dialect) -> Extra {
        Extra {
            increments: changes
                .increments
                .iter()
                .map(|&i| (i, changes.values.column_value(i, dialect)))
                .collect(),
            guard: changes
                .guard
                .map(|guard| (guard, changes.values.column_value(guard.column, dialect))),
        }
    }

    /// The part of a statement's shape (cache key) that this gives.
    pub(crate) fn shape(&self) -> (Vec<usize>, Option<Guard>) {
        (
            self.increments.iter().map(|(i, _)| *i).collect(),
            self.guard.as_ref().map(|(guard, _)| *guard),
        )
    }

    /// The increments' values, as many times as [`increment_sql`] names each.
    pub(crate) fn push_increments(
        &self,
        meta: &ModelMeta,
        values: &mut Vec<Value>,
        dialect: Dialect,
    ) {
        for (i, value) in &self.increments {
            let uses = increment_uses(&meta.columns[*i], dialect);
            values.extend(std::iter::repeat_n(value, uses).cloned());
        }
    }

    /// The guard's value, as many times as [`Guard::sql`] names it.
    pub(crate) fn push_guard(&self, meta: &ModelMeta, values: &mut Vec<Value>, dialect: Dialect) {
        if let Some((guard, value)) = &self.guard {
            let uses = guard.incoming_uses(&meta.columns[guard.column], dialect);
            values.extend(std::iter::repeat_n(value, uses).cloned());
        }
    }

    /// The guard over the stored column (qualified by `table` if given) and its bound value, taken
    /// from `values` as [`Extra::push_guard`] put it there.
    pub(crate) fn guard_expr(
        &self,
        meta: &ModelMeta,
        table: Option<&str>,
        values: &mut impl Iterator<Item = Value>,
        dialect: Dialect,
    ) -> Option<sea_query::Expr> {
        let (guard, _) = self.guard.as_ref()?;
        let column = &meta.columns[guard.column];
        let stored = match table {
            Some(table) => format!(
                "{}.{}",
                crate::query::quote(dialect, table),
                crate::query::quote(dialect, column.name)
            ),
            None => crate::query::quote(dialect, column.name),
        };
        let uses = guard.incoming_uses(column, dialect);
        Some(crate::query::with_value(
            |p| guard.sql(column, dialect, &stored, p),
            values,
            uses,
            dialect,
        ))
    }
}
