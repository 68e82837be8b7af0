//! Unique constraints as a typed, first-class part of your sqlx models.
//!
//! `#[derive(Model)]` reads `#[unique]` on fields and `#[unique_together(…)]` on the struct, and
//! makes each unique constraint part of the type: a **named** constraint in the DDL ([`Schema`]),
//! an entry in the model's metadata ([`Model::META`]), and a typed key with its lookups
//! (`Product::by_sku(sku).get(&pool)`, `Product::get_or_create_by_sku`, …). A lookup on columns
//! that no unique constraint covers does not compile, and a duplicate is a typed
//! [`UniqueViolation`] that names the declared constraint, on SQLite, PostgreSQL and
//! MySQL/MariaDB alike.
//!
//! # A first model
//!
//! On SQLite in memory (the default `sqlite` feature); the same calls take a PostgreSQL or
//! MySQL/MariaDB pool, connection or transaction.
//!
//! ```
//! use model_runtime::{Key, Model, Outcome, Schema};
//!
//! #[derive(Model, Debug)]
//! #[model(table = "products")]
//! #[unique_together(product_name, store_id, name = "unique_product_per_store")]
//! struct Product {
//!     #[model(primary_key, auto_increment)]
//!     id: i64,
//!     #[unique]
//!     #[model(max_length = 40)]
//!     sku: String,
//!     #[model(max_length = 100)]
//!     product_name: String,
//!     store_id: i64,
//!     price_cents: i64,
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), model_runtime::Error> {
//!     // One connection: each connection to `sqlite::memory:` would be a database of its own.
//!     let pool = sqlx::sqlite::SqlitePoolOptions::new()
//!         .max_connections(1)
//!         .connect("sqlite::memory:")
//!         .await?;
//!     // CREATE TABLE "products" ( …, CONSTRAINT "products_sku_key" UNIQUE ("sku"),
//!     //   CONSTRAINT "unique_product_per_store" UNIQUE ("product_name", "store_id") )
//!     Schema::new().model::<Product>().create(&pool).await?;
//!
//!     let phone = Product {
//!         id: 0, // auto_increment: assigned by the database
//!         sku: "IP-15".into(),
//!         product_name: "iPhone 15".into(),
//!         store_id: 1,
//!         price_cents: 99_999,
//!     };
//!     // Race-free: the key's values select the row; the other fields are used only to create it.
//!     let (stored, outcome) = Product::get_or_create_by_sku(&pool, &phone).await?;
//!     assert_eq!(outcome, Outcome::Created);
//!     let (again, outcome) = Product::get_or_create_by_sku(&pool, &phone).await?;
//!     assert_eq!((again.id, outcome), (stored.id, Outcome::Found));
//!
//!     // One typed lookup per unique constraint.
//!     let found = Product::by_product_name_and_store_id("iPhone 15", 1).get(&pool).await?;
//!     assert_eq!(found.map(|p| p.id), Some(stored.id));
//!
//!     // A plain insert of a duplicate is an error that names the declared constraint.
//!     let other_name = Product { product_name: "iPhone 15 Pro".into(), ..phone };
//!     let error = other_name.insert(&pool).await.unwrap_err();
//!     let violation = error.unique_violation().expect("a duplicate");
//!     assert!(violation.is::<ProductBySku>());
//!     assert_eq!(violation.constraint(), "products_sku_key");
//!     Ok(())
//! }
//! ```
//!
//! `product_name` alone is not unique, so there is no `by_product_name` key to look up:
//!
//! ```compile_fail,E0599
//! use model_runtime::{Key, Model};
//!
//! #[derive(Model)]
//! struct Product {
//!     #[model(primary_key, auto_increment)]
//!     id: i64,
//!     #[unique]
//!     sku: String,
//!     product_name: String,
//! }
//!
//! async fn lookup(pool: &sqlx::SqlitePool) -> Result<(), model_runtime::Error> {
//!     Product::by_product_name("iPhone 15").get(pool).await?; // no such key
//!     Ok(())
//! }
//! ```
//!
//! # Attributes
//!
//! | where | attribute | meaning |
//! |---|---|---|
//! | struct | `#[model(table = "products")]` | the table; default: the struct's name in snake_case (`ProductVariant` → `product_variant`) |
//! | struct | `#[unique_together(a, b)]` | a unique constraint over the fields listed, in that column order; repeatable |
//! | struct | `#[unique_together(a, b, name = "…")]` | the same, with the constraint's name; default `{table}_{a}_{b}_key` |
//! | field | `#[unique]`, `#[unique(name = "…")]` | a unique constraint on this field's column; default name `{table}_{column}_key` |
//! | either | `case_insensitive` (field), `case_insensitive(b)` (struct) | the listed text columns compare with ASCII `A`–`Z` folded to `a`–`z`, nothing else folded, on every backend |
//! | either | `nulls_not_distinct` | a NULL collides with a NULL: a key with NULLs identifies a row |
//! | either | `condition(deleted_at == None, kind == "x")` | a partial constraint: it covers only the rows where every term holds (`== None`, `!= None`, `== literal`, `!= literal`), each checked against the field's type |
//! | field | `#[model(primary_key)]` | the primary key: exactly one field, not an `Option` |
//! | field | `#[model(primary_key, auto_increment)]` | a database-assigned integer key (`i16`, `i32`, `i64`); its value is ignored on insert |
//! | field | `#[model(column = "db_name")]` | the column's name; default: the field's name |
//! | field | `#[model(max_length = 100)]` | `VARCHAR(100)` instead of `TEXT`, enforced on every backend (fields stored as text: `String`, your text types, and their `Option`) |
//! | field | `#[model(references = Store)]` | a foreign key to `Store`'s primary key, named `{table}_{column}_fkey`; the field is stored as that key is (`i64` and `struct StoreId(i64)` alike), or an `Option` of it |
//! | field | `#[model(precision = 10, scale = 2)]` | `NUMERIC(10, 2)` / `DECIMAL(10, 2)` for a `rust_decimal::Decimal` (SQLite keeps exact text); a value that does not fit is [`Error::InvalidValue`], never rounded; `scale` defaults to 0 |
//! | field | `#[index]`, `#[index(name = "…")]` | a plain (non-unique) index on this field's column; default name `{table}_{column}_idx` |
//! | struct | `#[index(a, b)]`, `#[index(a, b, name = "…")]` | a plain index over the fields listed, in that order; repeatable |
//!
//! Keys of `#[model(…)]` combine in one attribute or several. Table, column and constraint names
//! are ASCII letters, digits and `_`, at most 63 bytes; a generated constraint name that would be
//! longer keeps its first bytes and ends with a hash of the full name. Every mistake (an unknown
//! key, a field `unique_together` does not have, a constraint that repeats the primary key, two
//! primary keys, …) is a compile error on the offending token, all of them in one build.
//!
//! Field types: `i16`, `i32`, `i64`, `f32`, `f64`, `bool`, `String`, `Vec<u8>`, with the cargo
//! features `rust_decimal::Decimal`, `chrono::{NaiveDate, NaiveTime, NaiveDateTime, DateTime<Utc>}`,
//! `uuid::Uuid` and `serde_json::Value`, and [your own](#your-own-column-types). `Option<T>` is a
//! nullable column; every other field is `NOT NULL`. A value a backend cannot store exactly is
//! refused before any statement is sent ([`Error::InvalidValue`]).
//!
//! # Your own column types
//!
//! A newtype (`struct Sku(String)`, `struct StoreId(i64)`) or an enum without data is a column
//! type with `#[derive(Column)]`, or with an impl of [`StoredAs`] for any other conversion. It
//! goes wherever a built-in type goes: a plain or `Option` field, a unique key (the lookups take
//! it: `Product::by_sku(Sku("A-1".into())).get(&pool)`), a foreign key, a primary key with
//! `auto_increment` (stored as an integer), `max_length` (stored as text). Its column is the
//! column of what it is stored as, with the same checks, key rules and violation values.
//!
//! - `struct Sku(String)` (or `struct Sku { value: String }`): stored as its field.
//! - `#[column(text)] enum Status { Active, OnHold }`: stored as `"active"`, `"on_hold"` (the
//!   variant's name in snake_case), or as `#[column(rename = "…")]` says. A stored value that is
//!   no variant's, `"Active"` or `"archived"`, is a decode error naming the column, the type and
//!   the value ([`UnknownVariant`]), never a guess. With `max_length`, the longest name must fit:
//!   a compile error otherwise.
//! - `#[column(integer)] enum Priority { Low = 1, High = 10 }`: stored as its discriminant, an
//!   `i32` (`INTEGER`), or the `i16` / `i64` of its `#[repr]`.
//!
//! A key type derives `Debug, Clone, PartialEq`, so a type used in a key needs them too. Enums
//! with data, structs with several fields and generic types are compile errors. See [`StoredAs`]
//! for a whole example, with a hand-written conversion.
//!
//! # sqlx interop
//!
//! The library does the unique-key layer; sqlx does the rest, on the same pool. Every model
//! implements `sqlx::FromRow` for the row of each enabled backend ([`ModelRow`]), reading each
//! field from the column of its name, so `sqlx::query_as::<_, Product>("SELECT * FROM products
//! WHERE …")` works in any column order, with joins and extra columns; a column the query leaves
//! out is sqlx's `ColumnNotFound`. (Do not also `#[derive(sqlx::FromRow)]`: the impls would
//! conflict.)
//!
//! ```
//! use model_runtime::{Column, Model, Schema};
//!
//! #[derive(Column, Debug, Clone, Copy, PartialEq)]
//! struct StoreId(i64);
//!
//! #[derive(Column, Debug, Clone, Copy, PartialEq)]
//! #[column(text)]
//! enum Status {
//!     Active,
//!     Retired,
//! }
//!
//! #[derive(Model, Debug)]
//! #[model(table = "products")]
//! #[index(store_id, status)]
//! struct Product {
//!     #[model(primary_key, auto_increment)]
//!     id: i64,
//!     #[unique]
//!     #[model(max_length = 40)]
//!     sku: String,
//!     store_id: StoreId,
//!     #[model(max_length = 10)]
//!     status: Status,
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), model_runtime::Error> {
//!     // One connection: each connection to `sqlite::memory:` would be a database of its own.
//!     let pool = sqlx::sqlite::SqlitePoolOptions::new()
//!         .max_connections(1)
//!         .connect("sqlite::memory:")
//!         .await?;
//!     Schema::new().model::<Product>().create(&pool).await?;
//!     for (sku, status) in [("A-1", Status::Active), ("B-2", Status::Retired), ("C-3", Status::Active)] {
//!         let row = Product { id: 0, sku: sku.into(), store_id: StoreId(7), status };
//!         Product::get_or_create_by_sku(&pool, &row).await?; // the key layer: race-free
//!     }
//!     // The rest is sqlx's: a listing by columns no unique key covers.
//!     let active: Vec<Product> = sqlx::query_as(
//!         "SELECT * FROM products WHERE store_id = ? AND status = ? ORDER BY sku",
//!     )
//!     .bind(7_i64)
//!     .bind("active")
//!     .fetch_all(&pool)
//!     .await?;
//!     assert_eq!(active.iter().map(|p| p.sku.as_str()).collect::<Vec<_>>(), ["A-1", "C-3"]);
//!     Ok(())
//! }
//! ```
//!
//! # What each model gets
//!
//! For `struct Product` with `#[unique] sku` and `#[unique_together(product_name, store_id)]`:
//!
//! - **[`Model`]**: `Product::META`, the [`ModelMeta`] (table, [`ColumnMeta`] of each column,
//!   primary key, [`UniqueConstraint`]s and plain [`Index`]es with their names and columns), and
//!   the methods
//!   `row.insert(conn)` (returns the row as stored, with its assigned id), `row.update(conn)`,
//!   `row.delete(conn)` by primary key, `row.validate_unique(conn)` and
//!   `row.validate_unique_new(conn)` (every constraint a row would violate, in one query). They
//!   are trait methods: `use model_runtime::Model`.
//! - **`sqlx::FromRow`** for the row of each enabled backend, by column name: see
//!   [sqlx interop](#sqlx-interop).
//! - **`ProductField`**: an enum with one variant per field (`ProductField::PriceCents`), naming the
//!   columns an `update_or_create` writes.
//! - **`Product::FIELDS`** (a `ProductFields` struct): each field as a [`TypedField`] that knows its
//!   Rust type (`Product::FIELDS.price_cents`), for what only some types allow: increments
//!   ([`Changes::increment`], [`Numeric`]) and conditions ([`Changes::only_if_newer`],
//!   [`Ordered`]).
//! - **One key type per key**, for the primary key and for each unique constraint: `ProductById`,
//!   `ProductBySku`, `ProductByProductNameAndStoreId`, a struct of the key's fields implementing
//!   [`Key`] with `Model = Product`, so a call names the key and the model follows
//!   (`get_or_create::<ProductBySku>(…)`). Only these implement it, so every generic operation that takes a key
//!   ([`get`], [`get_or_create`], [`update_or_create`], [`BulkInsert::skip_conflicts`], …) is
//!   checked against the declared constraints.
//! - **For each key, associated functions** (shown for `sku`):
//!
//! | function | returns | Django |
//! |---|---|---|
//! | `Product::by_sku(sku).get(conn)` | `Option<Product>` | `get()` |
//! | `Product::by_sku(sku).exists(conn)` | `bool` | `filter().exists()` |
//! | `Product::by_sku(sku).get_for_update(conn)` | `Option<Product>`, locked until the transaction ends | `select_for_update().get()` |
//! | `Product::get_or_create_by_sku(conn, &candidate)` | `(Product, Outcome)` | `get_or_create()` |
//! | `Product::update_or_create_by_sku(conn, &candidate, &[ProductField::PriceCents])` | `(Product, Outcome)` | `update_or_create()` |
//!
//! A composite key's functions take its values in the constraint's order
//! (`by_product_name_and_store_id(name, store_id)`), each as anything `Into` the column's type. The
//! lookups are methods of [`Key`], which must be in scope (`use model_runtime::Key`); they are
//! written once in this crate rather than generated for every key. Every function and method takes
//! what you hold, a `&Pool`, a `&mut` connection or a `&mut Transaction`, and returns a `Send`
//! future of `Result<_, `[`Error`]`>`.
//!
//! - **DDL**: [`Schema`]`::new().model::<Product>()` (with the models it references, in dependency
//!   order) renders `CREATE TABLE` with every constraint and index named, for each [`Dialect`]
//!   ([`Schema::sql`]), creates the tables ([`Schema::create`]), and compares them with a live
//!   database ([`Schema::diff`], a [`migrate::Plan`] to apply or render as a migration).
//!
//! Beyond the generated functions: [`get_or_create_with`] and [`Strategy`], [`update_or_create`]
//! with different values for update and create, increments and "only if newer" ([`Changes`]), [`BulkInsert`] (insert many rows,
//! skipping or updating duplicates, with a per-row report), and [`transaction`] (a transaction
//! retried when the database asks for it).
//!
//! # Errors
//!
//! Every operation returns [`Error`]. A duplicate is [`Error::UniqueViolation`]: a
//! [`UniqueViolation`] that says which declared key (`violation.is::<ProductBySku>()`),
//! its columns and the conflicting values; its message is one line, and
//! [`UniqueViolation::advice`] says what to call instead. Deadlocks and serialization failures are
//! [`Error::is_retryable`]. Each error's cause, the sqlx error included, is its
//! [`source()`](std::error::Error::source). See [`Error`] for an example.
//!
//! # Cargo features
//! - `sqlite` (default), `postgres`, `mysql` (MySQL 8 and MariaDB 10.5+): the backends (sqlx's
//!   `Sqlite`, `Postgres`, `MySql`).
//! - `rust_decimal`, `chrono`, `uuid`, `json`: column types from those crates.

#![warn(missing_docs)]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("model-runtime needs at least one backend feature: `sqlite`, `postgres` or `mysql`");

// Lets the derive's `::model_runtime::…` paths resolve inside this crate's own tests and doc-tests.
extern crate self as model_runtime;

mod backend;
mod bulk;
mod changes;
mod check;
mod column;
mod conn;
mod error;
mod index;
pub mod meta;
pub mod migrate;
mod model;
mod ops;
mod query;
mod row;
pub mod schema;
mod tx;
mod value;
mod violation;

pub use backend::{Backend, Dialect, ExecOutcome, Isolation, RowRef};
pub use bulk::{BulkInsert, BulkReport, ConflictModeSet, NoConflictMode, RowOutcome};
pub use changes::{Changes, Numeric, Ordered, TypedField};
pub use column::{
    Column, DecimalColumn, IntegerColumn, SqlType, Stored, StoredAs, TextColumn, UnknownVariant,
};
pub use conn::{Conn, Release};
pub use error::{Error, SchemaError};
pub use meta::{
    ColumnKind, ColumnMeta, ConstraintOrigin, DecimalPrecision, Index, KeyId, Literal, ModelMeta,
    Predicate, Test, UniqueConstraint,
};
pub use model::{Key, KeyOf, Model};
pub use ops::{
    Outcome, Strategy, delete, exists, get, get_for_update, get_or_create, get_or_create_with,
    insert, update, update_or_create, validate_unique, validate_unique_new,
};
pub use row::ModelRow;
pub use schema::Schema;
pub use tx::{BoxFuture, TxOptions, transaction};
pub use violation::{IntegrityKind, UniqueViolation, Values as ViolationValues};

/// The README's examples, compiled and run as doc-tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The README's Rust blocks are read on renderers that do not hide rustdoc's `# ` lines, and are
/// copied from there: each block is a whole program as shown, run by the doc-test above.
#[cfg(test)]
mod readme {
    #[test]
    fn rust_blocks_are_complete_as_shown_and_run() {
        let readme = include_str!("../../README.md");
        let mut block: Option<(usize, &str)> = None;
        let mut rust_blocks = 0;
        for (n, line) in readme.lines().enumerate() {
            let line_no = n + 1;
            match (block, line.strip_prefix("```")) {
                (None, Some(info)) => {
                    block = Some((line_no, info));
                    if info.starts_with("rust") {
                        rust_blocks += 1;
                        assert_eq!(
                            info, "rust",
                            "README.md:{line_no}: a Rust block runs as it is (no `no_run`, `ignore`, …)"
                        );
                    }
                }
                (Some(_), Some("")) => block = None,
                (Some((start, "rust")), _) => {
                    let hidden = line == "#" || line.starts_with("# ");
                    assert!(
                        !hidden,
                        "README.md:{line_no} (block at {start}): a hidden line shows on every renderer but rustdoc: {line:?}"
                    );
                }
                _ => {}
            }
        }
        assert!(block.is_none(), "README.md: a block is not closed");
        assert!(rust_blocks > 0, "README.md: no Rust block found");
    }
}

/// Derives [`Model`](trait@Model): metadata, named unique constraints and one typed key per
/// constraint. The attributes and what each model gets are on the [crate's front page](crate#attributes).
pub use model_derive::Model;

/// Derives [`StoredAs`] for a column type of yours: a struct with one field (stored as that field),
/// or an enum without data, stored as text (`#[column(text)]`: each variant's name in snake_case,
/// or `#[column(rename = "…")]` on the variant) or as an integer (`#[column(integer)]`: its
/// discriminant, an `i32`, or the `i16` / `i64` of its `#[repr]`). See [`StoredAs`] for an example,
/// and [Your own column types](crate#your-own-column-types).
pub use model_derive::Column;

/// Re-exports for the code `#[derive(Model)]` generates. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use sea_query::{Value, Values};
    pub use sqlx;

    pub use crate::backend::{Dialect, RowRef};
    pub use crate::changes::{Changes, TypedField};
    pub use crate::column::{
        Column, DecimalColumn, DecimalStorage, IntegerColumn, IntegerStorage, SqlType, Stored,
        StoredAs, TextColumn, TextStorage, UnknownVariant,
    };
    pub use crate::conn::Conn;
    pub use crate::error::Error;
    pub use crate::meta::{
        ColumnKind, ColumnMeta, ConstraintOrigin, ForeignKey, Index, KeyId, Literal, ModelMeta,
        Predicate, Test, UniqueConstraint,
    };
    pub use crate::model::{Key, KeyOf, Model};
    pub use crate::ops::{Outcome, exists, get, get_for_update, get_or_create, update_or_create};
    pub use crate::row::{ModelRow, column_at, from_named_row, named};
    pub use crate::tx::BoxFuture;

    /// Compiles only when `F` is stored as the primary key of `M` is (`i64` for `i64` and for
    /// `struct StoreId(i64)`), so that a foreign key column has the type of the key it references.
    pub const fn assert_references<M, F>()
    where
        M: Model,
        F: Column<
            Base: SqlType<
                Storage = <<<M as Model>::PrimaryKey as Column>::Base as SqlType>::Storage,
            >,
        >,
    {
    }

    /// Compiles only for fields stored as text (`max_length`), whose values all fit in
    /// `max_length` characters where the type knows its longest (an enum stored as text).
    pub const fn assert_text<F: TextColumn + Column>(max_length: u32) {
        crate::column::check_fits::<F>(max_length);
    }

    /// Compiles only for fields stored as `rust_decimal::Decimal` (`precision`, `scale`).
    pub const fn assert_decimal<F: DecimalColumn>() {}

    /// Compiles only for `Option` fields (`condition(field == None)`).
    pub const fn assert_nullable<F: crate::column::NullableColumn>() {}

    /// Compiles only for text fields (`case_insensitive`).
    pub const fn assert_case_insensitive<F: crate::column::CaseInsensitiveColumn>() {}

    /// Compiles only for integer fields (`auto_increment`) whose type takes any integer: not an
    /// enum stored by discriminant, which the ids 1, 2, 3, … the database assigns would not
    /// decode to.
    pub const fn assert_integer<F: IntegerColumn + Column>() {
        assert!(
            matches!(<F::Base as SqlType>::STORED, crate::column::Stored::Any),
            "`auto_increment` needs a type that takes any integer the database assigns; an enum stored by discriminant does not: use i64 or a newtype over it"
        );
    }

    /// `Model::column_value` was asked for a column the model does not have.
    #[cold]
    #[track_caller]
    pub fn column_out_of_range(model: &str, index: usize) -> ! {
        panic!("model `{model}` has no column {index}: a bug in the caller of Model::column_value")
    }
}
