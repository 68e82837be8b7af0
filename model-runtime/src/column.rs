//! The Rust types a model field may have, and how each is bound and decoded on every backend.
//!
//! A field's type must implement [`Column`]: the base types listed on [`SqlType`], and `Option<T>` of
//! any of them for a nullable column. The derive checks this on each field, so an unsupported type is a
//! compile error on that field.

use sea_query::Value;

use crate::backend::{Dialect, RowRef};
use crate::meta::ColumnKind;

/// A base type that maps to one SQL column type on every backend.
///
/// Implemented for `i16`, `i32`, `i64`, `f32`, `f64`, `bool`, `String`, `Vec<u8>`, and, behind the
/// features of the same names, `rust_decimal::Decimal`, `chrono::{NaiveDate, NaiveTime, NaiveDateTime,
/// DateTime<Utc>}`, `uuid::Uuid` and `serde_json::Value` (feature `json`).
pub trait SqlType: Sized + Clone + Send + Sync + 'static {
    /// The SQL type family.
    const KIND: ColumnKind;
    /// The value to bind for `value`, or SQL NULL of this type for `None`.
    fn to_value(value: Option<&Self>, dialect: Dialect) -> Value;
    /// Reads column `index` of a row; `None` for SQL NULL.
    fn decode(row: RowRef<'_>, index: usize) -> Result<Option<Self>, sqlx::Error>;
}

/// A type a model field can have: a [`SqlType`] (a `NOT NULL` column) or `Option` of one (nullable).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported column type",
    label = "this field's type cannot be stored in a column",
    note = "supported: i16, i32, i64, f32, f64, bool, String, Vec<u8>, rust_decimal::Decimal (feature `rust_decimal`), chrono::{{NaiveDate, NaiveTime, NaiveDateTime, DateTime<Utc>}} (feature `chrono`), uuid::Uuid (feature `uuid`), serde_json::Value (feature `json`), and Option<T> of those for a nullable column"
)]
pub trait Column: Sized + Clone + Send + Sync + 'static {
    /// The type without its `Option`.
    type Base: SqlType;
    /// Whether the column is nullable (`Option<T>`).
    const NULLABLE: bool;
    /// The SQL type family.
    const KIND: ColumnKind = <Self::Base as SqlType>::KIND;
    /// The value to bind.
    fn to_value(&self, dialect: Dialect) -> Value;
    /// Reads column `index` of a row.
    fn decode(row: RowRef<'_>, index: usize) -> Result<Self, sqlx::Error>;
}

impl<T: SqlType> Column for Option<T> {
    type Base = T;
    const NULLABLE: bool = true;
    fn to_value(&self, dialect: Dialect) -> Value {
        T::to_value(self.as_ref(), dialect)
    }
    fn decode(row: RowRef<'_>, index: usize) -> Result<Self, sqlx::Error> {
        T::decode(row, index)
    }
}

fn unexpected_null(index: usize) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source: Box::new(sqlx::error::UnexpectedNullError),
    }
}

/// Decodes with sqlx's own `Decode` impl on every enabled backend.
macro_rules! decode_native {
    ($row:expr, $index:expr, $ty:ty) => {
        match $row {
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(row) => sqlx::Row::try_get::<Option<$ty>, _>(row, $index),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(row) => sqlx::Row::try_get::<Option<$ty>, _>(row, $index),
            #[cfg(feature = "mysql")]
            RowRef::MySql(row) => sqlx::Row::try_get::<Option<$ty>, _>(row, $index),
        }
    };
}

/// Implements `SqlType` (bound as sea-query's own value, decoded by sqlx) and the NOT NULL `Column`.
macro_rules! native_types {
    ($($ty:ty => $kind:ident),* $(,)?) => {$(
        impl SqlType for $ty {
            const KIND: ColumnKind = ColumnKind::$kind;
            fn to_value(value: Option<&Self>, _dialect: Dialect) -> Value {
                value.cloned().into()
            }
            fn decode(row: RowRef<'_>, index: usize) -> Result<Option<Self>, sqlx::Error> {
                decode_native!(row, index, $ty)
            }
        }
        not_null_column!($ty);
    )*};
}

macro_rules! not_null_column {
    ($ty:ty) => {
        impl Column for $ty {
            type Base = $ty;
            const NULLABLE: bool = false;
            fn to_value(&self, dialect: Dialect) -> Value {
                <$ty as SqlType>::to_value(Some(self), dialect)
            }
            fn decode(row: RowRef<'_>, index: usize) -> Result<Self, sqlx::Error> {
                <$ty as SqlType>::decode(row, index)?.ok_or_else(|| unexpected_null(index))
            }
        }
    };
}

native_types! {
    i16 => SmallInt,
    i32 => Int,
    i64 => BigInt,
    f32 => Float,
    f64 => Double,
    bool => Bool,
    String => Text,
    Vec<u8> => Bytes,
}

#[cfg(feature = "chrono")]
native_types! {
    chrono::NaiveDate => Date,
    chrono::NaiveTime => Time,
    chrono::NaiveDateTime => DateTime,
}

/// Bound as sea-query's own value, except on MySQL: there sqlx types a `DateTime<Utc>` parameter as
/// `TIMESTAMP`, whose range is 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC, and MariaDB stores a
/// value outside it as NULL without an error. Bound as the UTC `DATETIME` it is stored in, every
/// year from 0 to 9999 is kept.
#[cfg(feature = "chrono")]
impl SqlType for chrono::DateTime<chrono::Utc> {
    const KIND: ColumnKind = ColumnKind::TimestampTz;
    fn to_value(value: Option<&Self>, dialect: Dialect) -> Value {
        match dialect {
            Dialect::MySql => Value::ChronoDateTime(value.map(|v| v.naive_utc())),
            _ => value.copied().into(),
        }
    }
    fn decode(row: RowRef<'_>, index: usize) -> Result<Option<Self>, sqlx::Error> {
        decode_native!(row, index, chrono::DateTime<chrono::Utc>)
    }
}
#[cfg(feature = "chrono")]
not_null_column!(chrono::DateTime<chrono::Utc>);

#[cfg(feature = "uuid")]
native_types! {
    uuid::Uuid => Uuid,
}

#[cfg(feature = "json")]
impl SqlType for serde_json::Value {
    const KIND: ColumnKind = ColumnKind::Json;
    fn to_value(value: Option<&Self>, _dialect: Dialect) -> Value {
        Value::Json(value.map(|v| Box::new(v.clone())))
    }
    fn decode(row: RowRef<'_>, index: usize) -> Result<Option<Self>, sqlx::Error> {
        match row {
            // MariaDB's JSON is LONGTEXT underneath and reports itself as text: parse it ourselves.
            #[cfg(feature = "mysql")]
            RowRef::MySql(row) => {
                let text: Option<String> = sqlx::Row::try_get(row, index)?;
                text.map(|text| {
                    serde_json::from_str(&text).map_err(|e| sqlx::Error::ColumnDecode {
                        index: index.to_string(),
                        source: Box::new(e),
                    })
                })
                .transpose()
            }
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(row) => sqlx::Row::try_get::<Option<Self>, _>(row, index),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(row) => sqlx::Row::try_get::<Option<Self>, _>(row, index),
        }
    }
}
#[cfg(feature = "json")]
not_null_column!(serde_json::Value);

/// `Decimal` is exact on PostgreSQL (`NUMERIC`) and MySQL (`DECIMAL(65, 30)`). SQLite has no exact
/// decimal type (sea-query's default, `REAL`, loses digits), so there it is stored as normalized text:
/// `1.50` and `1.5` are written alike, so that a unique constraint treats them as equal, as the other
/// backends do.
#[cfg(feature = "rust_decimal")]
impl SqlType for rust_decimal::Decimal {
    const KIND: ColumnKind = ColumnKind::Decimal;
    fn to_value(value: Option<&Self>, dialect: Dialect) -> Value {
        match dialect {
            Dialect::Sqlite => Value::String(value.map(|d| d.normalize().to_string())),
            _ => Value::Decimal(value.copied()),
        }
    }
    fn decode(row: RowRef<'_>, index: usize) -> Result<Option<Self>, sqlx::Error> {
        match row {
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(row) => {
                let text: Option<String> = sqlx::Row::try_get(row, index)?;
                text.map(|text| {
                    text.parse::<rust_decimal::Decimal>()
                        .map_err(|e| sqlx::Error::ColumnDecode {
                            index: index.to_string(),
                            source: Box::new(e),
                        })
                })
                .transpose()
            }
            #[cfg(feature = "postgres")]
            RowRef::Postgres(row) => sqlx::Row::try_get::<Option<Self>, _>(row, index),
            #[cfg(feature = "mysql")]
            RowRef::MySql(row) => sqlx::Row::try_get::<Option<Self>, _>(row, index),
        }
    }
}
#[cfg(feature = "rust_decimal")]
not_null_column!(rust_decimal::Decimal);

/// Fields that `#[model(max_length = n)]` applies to.
#[diagnostic::on_unimplemented(
    message = "`max_length` applies only to `String` fields, not to `{Self}`",
    label = "`max_length` needs a `String` or `Option<String>` field",
    note = "remove `max_length`, or change the field's type to `String`"
)]
pub trait TextColumn {}
impl TextColumn for String {}
impl TextColumn for Option<String> {}

/// Fields that `case_insensitive` applies to: text, whose ASCII letters the constraint folds.
#[diagnostic::on_unimplemented(
    message = "`case_insensitive` applies only to `String` fields, not to `{Self}`",
    label = "only text compares case-insensitively",
    note = "remove the field from `case_insensitive`, or change its type to `String`"
)]
pub trait CaseInsensitiveColumn {}
impl<T: TextColumn> CaseInsensitiveColumn for T {}

/// Fields a `condition(field == None)` applies to: nullable ones.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is never NULL, so `== None` / `!= None` on it in `condition(…)` is always false / true",
    label = "only an `Option` field can be NULL",
    note = "compare the field with a literal instead, or make it an `Option`"
)]
pub trait NullableColumn {}
impl<T: SqlType> NullableColumn for Option<T> {}

/// Fields that `#[model(auto_increment)]` applies to.
#[diagnostic::on_unimplemented(
    message = "`auto_increment` applies only to `i16`, `i32` or `i64` fields, not to `{Self}`",
    label = "an auto-increment primary key must be an integer",
    note = "remove `auto_increment`, or change the field's type to `i64`"
)]
pub trait IntegerColumn {}
impl IntegerColumn for i16 {}
impl IntegerColumn for i32 {}
impl IntegerColumn for i64 {}
