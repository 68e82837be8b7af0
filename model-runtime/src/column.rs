//! The Rust types a model field may have, and how each is bound and decoded on every backend.
//!
//! A field's type must implement [`Column`]: a [`SqlType`] (a `NOT NULL` column), or `Option<T>` of
//! one (nullable). The base types are the built-in ones listed on [`SqlType`] and types of yours
//! that are stored as one of them ([`StoredAs`], usually through `#[derive(Column)]`). The derive
//! checks this on each field, so an unsupported type is a compile error on that field.

use std::fmt;

use sea_query::Value;

use crate::backend::{Dialect, RowRef};
use crate::meta::ColumnKind;

/// A base type that maps to one SQL column type on every backend.
///
/// Implemented for `i16`, `i32`, `i64`, `f32`, `f64`, `bool`, `String`, `Vec<u8>`, and, behind the
/// features of the same names, `rust_decimal::Decimal`, `chrono::{NaiveDate, NaiveTime, NaiveDateTime,
/// DateTime<Utc>}`, `uuid::Uuid` and `serde_json::Value` (feature `json`); and for every [`StoredAs`]
/// type, which is stored as one of those.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in a column",
    label = "not a supported column type",
    note = "supported: i16, i32, i64, f32, f64, bool, String, Vec<u8>, rust_decimal::Decimal, chrono's dates and times, uuid::Uuid, serde_json::Value (with their features), and types of yours with #[derive(model_runtime::Column)] or an impl of model_runtime::StoredAs; a nullable column is an `Option<…>` field of the model"
)]
pub trait SqlType: Sized + Clone + Send + Sync + 'static {
    /// The built-in type the column holds: `Self` for the built-in types, and for a [`StoredAs`]
    /// type the storage of its [`StoredAs::Stored`] (`i64` for `struct StoreId(i64)`). A foreign
    /// key column must have the storage of the key it references.
    type Storage: SqlType;
    /// The SQL type family.
    const KIND: ColumnKind;
    /// The most characters a value takes when stored as text, where the type knows it (an enum
    /// stored as text: its longest stored name). A field's `max_length` must be at least this.
    const MAX_CHARS: Option<u32> = None;
    /// Every value the type can store, where it is a closed set (an enum of the user's own): its
    /// stored names, or its discriminants. A partial constraint's condition literal must be one.
    const STORED: Stored = Stored::Any;
    /// The value to bind for `value`, or SQL NULL of this type for `None`.
    fn to_value(value: Option<&Self>, dialect: Dialect) -> Value;
    /// Reads column `index` of a row; `None` for SQL NULL.
    fn decode(row: RowRef<'_>, index: usize) -> Result<Option<Self>, sqlx::Error>;
}

/// A type a model field can have: a [`SqlType`] (a `NOT NULL` column) or `Option` of one (nullable).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported column type",
    label = "this field's type cannot be stored in a column",
    note = "supported: i16, i32, i64, f32, f64, bool, String, Vec<u8>, rust_decimal::Decimal (feature `rust_decimal`), chrono::{{NaiveDate, NaiveTime, NaiveDateTime, DateTime<Utc>}} (feature `chrono`), uuid::Uuid (feature `uuid`), serde_json::Value (feature `json`), types of yours with #[derive(model_runtime::Column)] (a newtype or a fieldless enum) or an impl of model_runtime::StoredAs, and Option<T> of those for a nullable column"
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

/// Every base type is a `NOT NULL` column.
impl<T: SqlType> Column for T {
    type Base = T;
    const NULLABLE: bool = false;
    fn to_value(&self, dialect: Dialect) -> Value {
        T::to_value(Some(self), dialect)
    }
    fn decode(row: RowRef<'_>, index: usize) -> Result<Self, sqlx::Error> {
        T::decode(row, index)?.ok_or_else(|| unexpected_null(index))
    }
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

/// A column type of yours, stored as a type the library supports: a newtype such as
/// `struct Sku(String)` or `struct StoreId(i64)`, or an enum stored as text or as an integer.
///
/// `#[derive(Column)]` implements it for a struct with one field (stored as that field) and for an
/// enum without data (`#[column(text)]`: stored as each variant's name in snake_case, or the name
/// given with `#[column(rename = "…")]`; `#[column(integer)]`: stored as its discriminant, an `i32`,
/// or the `i16` / `i64` of its `#[repr]`). Implement it by hand for any other conversion.
///
/// Such a type is then a column type everywhere a built-in one is: a plain field, `Option<…>`, a
/// unique key (the generated lookups take it: `Product::by_sku(Sku("A-1".into())).get(&pool)`), a
/// foreign key (a `StoreId` field may reference a model whose key is `i64`, and the other way
/// round: the storage must match), `max_length` on one stored as text, `auto_increment` on one
/// stored as an integer. Its column has the stored type's SQL type, and it is checked, compared
/// and reported (in a [`UniqueViolation`](crate::UniqueViolation)) as that type's values are.
///
/// ```
/// use model_runtime::{Column, Key, Model, StoredAs};
///
/// /// A stock-keeping unit: text in the database, its own type in Rust.
/// #[derive(Column, Debug, Clone, PartialEq)]
/// struct Sku(String);
///
/// #[derive(Column, Debug, Clone, Copy, PartialEq)]
/// #[column(text)]
/// enum Status {
///     Active,                      // stored as "active"
///     #[column(rename = "on-hold")]
///     OnHold,                      // stored as "on-hold"
/// }
///
/// /// Cents, stored as an `i64`, but never negative: a conversion of your own.
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// struct Cents(u32);
///
/// impl StoredAs for Cents {
///     type Stored = i64;
///     fn to_stored(&self) -> i64 {
///         i64::from(self.0)
///     }
///     fn from_stored(stored: i64) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
///         Ok(Cents(u32::try_from(stored)?))
///     }
/// }
///
/// #[derive(Model, Debug)]
/// struct Product {
///     #[model(primary_key, auto_increment)]
///     id: i64,
///     #[unique]
///     #[model(max_length = 40)]
///     sku: Sku,
///     status: Status,
///     price: Option<Cents>,
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), model_runtime::Error> {
///     // One connection: each connection to `sqlite::memory:` would be a database of its own.
///     let pool = sqlx::sqlite::SqlitePoolOptions::new()
///         .max_connections(1)
///         .connect("sqlite::memory:")
///         .await?;
///     model_runtime::Schema::new().model::<Product>().create(&pool).await?;
///     let row = Product { id: 0, sku: Sku("A-1".into()), status: Status::OnHold, price: Some(Cents(250)) };
///     row.insert(&pool).await?;
///     let found = Product::by_sku(Sku("A-1".into())).get(&pool).await?.expect("stored");
///     assert_eq!((found.status, found.price), (Status::OnHold, Some(Cents(250))));
///     Ok(())
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported column type",
    label = "this type cannot be stored in a column",
    note = "for a type of yours, #[derive(model_runtime::Column)] (a struct with one field, or an enum without data) or implement model_runtime::StoredAs"
)]
pub trait StoredAs: Sized + Clone + Send + Sync + 'static {
    /// The supported type it is stored as (a built-in type, or another `StoredAs` type).
    type Stored: SqlType;
    /// The most characters [`to_stored`](Self::to_stored) gives, when it gives text and the bound
    /// is known: a field's `max_length` is checked against it at compile time.
    const MAX_CHARS: Option<u32> = None;
    /// Every value [`to_stored`](Self::to_stored) gives, where it is a closed set: see
    /// [`SqlType::STORED`].
    const STORED: Stored = Stored::Any;
    /// The value to store.
    fn to_stored(&self) -> Self::Stored;
    /// The value from what is stored; an error for a stored value that is not one of this type
    /// (an enum's unknown name), which is reported as a decode error of that column.
    fn from_stored(stored: Self::Stored) -> Result<Self, Box<dyn std::error::Error + Send + Sync>>;
}

/// The values a column type can store: any of its storage type's, or a closed set.
#[derive(Debug, Clone, Copy)]
pub enum Stored {
    /// Any value of the storage type.
    Any,
    /// These texts only (an enum stored by name).
    Texts(&'static [&'static str]),
    /// These integers only (an enum stored by discriminant).
    Ints(&'static [i64]),
}

impl Stored {
    /// Whether `text` is a value the type can store (always, unless it is a closed set of texts).
    #[doc(hidden)]
    pub const fn allows_text(self, text: &str) -> bool {
        let Stored::Texts(texts) = self else {
            return true;
        };
        let mut i = 0;
        while i < texts.len() {
            let (a, b) = (texts[i].as_bytes(), text.as_bytes());
            if a.len() == b.len() {
                let mut j = 0;
                while j < a.len() && a[j] == b[j] {
                    j += 1;
                }
                if j == a.len() {
                    return true;
                }
            }
            i += 1;
        }
        false
    }

    /// Whether `n` is a value the type can store (always, unless it is a closed set of integers).
    #[doc(hidden)]
    pub const fn allows_int(self, n: i64) -> bool {
        let Stored::Ints(ints) = self else {
            return true;
        };
        let mut i = 0;
        while i < ints.len() {
            if ints[i] == n {
                return true;
            }
            i += 1;
        }
        false
    }
}

impl<T: StoredAs> SqlType for T {
    type Storage = <T::Stored as SqlType>::Storage;
    const KIND: ColumnKind = <T::Stored as SqlType>::KIND;
    const MAX_CHARS: Option<u32> = match T::MAX_CHARS {
        Some(n) => Some(n),
        None => <T::Stored as SqlType>::MAX_CHARS,
    };
    const STORED: Stored = match T::STORED {
        Stored::Any => <T::Stored as SqlType>::STORED,
        closed => closed,
    };
    fn to_value(value: Option<&Self>, dialect: Dialect) -> Value {
        let stored = value.map(T::to_stored);
        <T::Stored as SqlType>::to_value(stored.as_ref(), dialect)
    }
    fn decode(row: RowRef<'_>, index: usize) -> Result<Option<Self>, sqlx::Error> {
        <T::Stored as SqlType>::decode(row, index)?
            .map(|stored| {
                T::from_stored(stored).map_err(|source| sqlx::Error::ColumnDecode {
                    index: index.to_string(),
                    source,
                })
            })
            .transpose()
    }
}

/// A stored value that no variant of an enum column type is stored as: the decode error of
/// `#[derive(Column)]` enums, the source of the row's [`Error::Decode`](crate::Error::Decode).
///
/// ```text
/// `Status` has no variant stored as "archived"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant {
    type_name: &'static str,
    value: String,
}

impl UnknownVariant {
    /// `value` read where a `type_name` was expected; a text value is shown quoted.
    pub fn new(type_name: &'static str, value: impl fmt::Debug) -> Self {
        UnknownVariant {
            type_name,
            value: format!("{value:?}"),
        }
    }

    /// The Rust type that has no such variant.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The stored value, as it was read (text quoted).
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` has no variant stored as {}",
            self.type_name, self.value
        )
    }
}

impl std::error::Error for UnknownVariant {}

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

/// Implements `SqlType`: bound as sea-query's own value, decoded by sqlx.
macro_rules! native_types {
    ($($ty:ty => $kind:ident),* $(,)?) => {$(
        impl SqlType for $ty {
            type Storage = $ty;
            const KIND: ColumnKind = ColumnKind::$kind;
            fn to_value(value: Option<&Self>, _dialect: Dialect) -> Value {
                value.cloned().into()
            }
            fn decode(row: RowRef<'_>, index: usize) -> Result<Option<Self>, sqlx::Error> {
                decode_native!(row, index, $ty)
            }
        }
    )*};
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
    type Storage = Self;
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

#[cfg(feature = "uuid")]
native_types! {
    uuid::Uuid => Uuid,
}

#[cfg(feature = "json")]
impl SqlType for serde_json::Value {
    type Storage = Self;
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

/// `Decimal` is exact on PostgreSQL (`NUMERIC`) and MySQL (`DECIMAL(65, 30)`). SQLite has no exact
/// decimal type (sea-query's default, `REAL`, loses digits), so there it is stored as normalized text:
/// `1.50` and `1.5` are written alike, so that a unique constraint treats them as equal, as the other
/// backends do.
#[cfg(feature = "rust_decimal")]
impl SqlType for rust_decimal::Decimal {
    type Storage = Self;
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

/// Fields that `#[model(max_length = n)]` applies to: those stored as text (`String`, a newtype of
/// it, an enum stored as text, and `Option` of those).
#[diagnostic::on_unimplemented(
    message = "`max_length` applies only to text columns, not to `{Self}`",
    label = "`max_length` needs a field stored as text",
    note = "remove `max_length`, or change the field's type to `String` (or a type of yours stored as `String`)"
)]
pub trait TextColumn {}
impl<T: Column> TextColumn for T where <T::Base as SqlType>::Storage: TextStorage {}

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

/// Fields that `#[model(auto_increment)]` applies to: those stored as `i16`, `i32` or `i64`.
#[diagnostic::on_unimplemented(
    message = "`auto_increment` applies only to `i16`, `i32` or `i64` fields, not to `{Self}`",
    label = "an auto-increment primary key must be an integer",
    note = "remove `auto_increment`, or change the field's type to `i64` (or a type of yours stored as `i64`)"
)]
pub trait IntegerColumn {}
impl<T: Column> IntegerColumn for T where <T::Base as SqlType>::Storage: IntegerStorage {}

/// Fields that `#[model(precision = p, scale = s)]` applies to: those stored as
/// `rust_decimal::Decimal` (feature `rust_decimal`).
#[diagnostic::on_unimplemented(
    message = "`precision` and `scale` apply only to decimal columns, not to `{Self}`",
    label = "`precision` needs a field stored as `rust_decimal::Decimal`",
    note = "remove `precision` and `scale`, or change the field's type to `rust_decimal::Decimal` (feature `rust_decimal`)"
)]
pub trait DecimalColumn {}
impl<T: Column> DecimalColumn for T where <T::Base as SqlType>::Storage: DecimalStorage {}

/// The storage of [`DecimalColumn`]s. Not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`precision` and `scale` apply only to decimal columns, and this field is stored as `{Self}`",
    label = "`precision` needs a field stored as `rust_decimal::Decimal`",
    note = "remove `precision` and `scale`, or store the field's type as `rust_decimal::Decimal` (feature `rust_decimal`)"
)]
pub trait DecimalStorage {}
#[cfg(feature = "rust_decimal")]
impl DecimalStorage for rust_decimal::Decimal {}

/// The storage of [`TextColumn`]s. Not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`max_length` applies only to text columns, and this field is stored as `{Self}`",
    label = "`max_length` needs a field stored as text",
    note = "remove `max_length`, or store the field's type as `String`"
)]
pub trait TextStorage {}
impl TextStorage for String {}

/// The storage of [`IntegerColumn`]s. Not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`auto_increment` applies only to integer columns, and this field is stored as `{Self}`",
    label = "an auto-increment primary key must be an integer",
    note = "remove `auto_increment`, or store the field's type as `i64`"
)]
pub trait IntegerStorage {}
impl IntegerStorage for i16 {}
impl IntegerStorage for i32 {}
impl IntegerStorage for i64 {}

/// Fails to compile (a constant's evaluation panics) when `max_length` is shorter than the longest
/// value `F` stores, an enum's longest name.
pub(crate) const fn check_fits<F: Column>(max_length: u32) {
    if let Some(longest) = <F::Base as SqlType>::MAX_CHARS
        && longest > max_length
    {
        panic!(
            "`max_length` is shorter than the longest name this field's type is stored as: raise it, or shorten that name with #[column(rename = \"…\")]"
        );
    }
}
