//! Unique constraints as a typed, first-class part of your sqlx models.
//!
//! `#[derive(Model)]` reads `#[unique]` on fields and `#[unique_together(…)]` on the struct and
//! generates the model's metadata ([`ModelMeta`]), named constraints in its DDL ([`Schema`]) and one
//! typed [`Key`] per unique constraint, so that a lookup that no constraint covers does not compile.
//!
//! ```
//! use model_runtime::{Dialect, Model, Schema};
//!
//! #[derive(Model, Debug)]
//! #[model(table = "stores")]
//! struct Store {
//!     #[model(primary_key, auto_increment)]
//!     id: i64,
//!     #[unique]
//!     #[model(max_length = 100)]
//!     name: String,
//! }
//!
//! #[derive(Model, Debug)]
//! #[unique_together(product_name, store_id, name = "unique_product_per_store")]
//! struct Product {
//!     #[model(primary_key, auto_increment)]
//!     id: i64,
//!     #[model(max_length = 100)]
//!     product_name: String,
//!     #[model(references = Store)]
//!     store_id: i64,
//! }
//!
//! for constraint in Product::META.unique_constraints() {
//!     println!("{}", constraint.name); // unique_product_per_store
//! }
//! let ddl = Schema::new().model::<Product>().sql(Dialect::Sqlite).unwrap();
//! assert_eq!(ddl.len(), 2); // `stores` first: `products` references it
//! ```
//!
//! # Cargo features
//! - `sqlite` (default), `postgres`, `mysql`: the backends (sqlx's `Sqlite`, `Postgres`, `MySql`).
//! - `rust_decimal`, `chrono`, `uuid`, `json`: column types from those crates.

#![warn(missing_docs)]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("model-runtime needs at least one backend feature: `sqlite`, `postgres` or `mysql`");

// Lets the derive's `::model_runtime::…` paths resolve inside this crate's own tests and doc-tests.
extern crate self as model_runtime;

mod backend;
mod bulk;
mod check;
mod column;
mod conn;
mod error;
pub mod meta;
pub mod migrate;
mod model;
mod ops;
mod query;
pub mod schema;
mod tx;
mod violation;

pub use backend::{Backend, Dialect, ExecOutcome, Isolation, RowRef};
pub use bulk::{BulkInsert, BulkReport, ConflictModeSet, NoConflictMode, RowOutcome};
pub use column::{Column, IntegerColumn, SqlType, TextColumn};
pub use conn::Release;
pub use error::{Error, SchemaError};
pub use meta::{ColumnKind, ColumnMeta, ConstraintOrigin, KeyId, ModelMeta, UniqueConstraint};
pub use model::{Key, Model};
pub use ops::{
    Changes, Outcome, Strategy, delete, exists, get, get_for_update, get_or_create,
    get_or_create_with, insert, update, update_or_create, validate_unique, validate_unique_new,
};
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

/// Derives [`Model`](trait@Model): metadata, named unique constraints and one typed key per constraint.
pub use model_derive::Model;

/// Re-exports for the code `#[derive(Model)]` generates. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use sea_query::{Value, Values};
    pub use sqlx;

    pub use crate::backend::{Dialect, RowRef};
    pub use crate::column::{Column, IntegerColumn, TextColumn};
    pub use crate::conn::Release;
    pub use crate::meta::{
        ColumnKind, ColumnMeta, ConstraintOrigin, ForeignKey, KeyId, ModelMeta, UniqueConstraint,
    };
    pub use crate::model::{Key, Model};

    /// Compiles only when `F`'s base type equals the primary key type of `M`, so that a foreign key
    /// column has the type of the key it references.
    pub const fn assert_references<M, F>()
    where
        M: Model,
        F: Column<Base = <<M as Model>::PrimaryKey as Column>::Base>,
    {
    }

    /// Compiles only for `String` fields (`max_length`).
    pub const fn assert_text<F: TextColumn>() {}

    /// Compiles only for integer fields (`auto_increment`).
    pub const fn assert_integer<F: IntegerColumn>() {}

    /// `Model::column_value` was asked for a column the model does not have.
    #[cold]
    #[track_caller]
    pub fn column_out_of_range(model: &str, index: usize) -> ! {
        panic!("model `{model}` has no column {index}: a bug in the caller of Model::column_value")
    }
}
