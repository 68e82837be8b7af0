//! Models read from rows of your own sqlx queries: every model implements `sqlx::FromRow` for the
//! row of each enabled backend, decoding its fields by column name.
//!
//! ```
//! use model_runtime::{Column, Model, Schema};
//!
//! #[derive(Column, Debug, Clone, Copy, PartialEq)]
//! struct StoreId(i64);
//!
//! #[derive(Model, Debug)]
//! #[model(table = "products")]
//! struct Product {
//!     #[model(primary_key, auto_increment)]
//!     id: i64,
//!     #[unique]
//!     sku: String,
//!     store_id: StoreId,
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
//!     for sku in ["A-1", "B-2"] {
//!         Product { id: 0, sku: sku.into(), store_id: StoreId(7) }.insert(&pool).await?;
//!     }
//!     // Any column order, and any query: the fields are found by name.
//!     let listed: Vec<Product> =
//!         sqlx::query_as("SELECT sku, store_id, id FROM products WHERE store_id = ? ORDER BY sku")
//!             .bind(7_i64)
//!             .fetch_all(&pool)
//!             .await?;
//!     assert_eq!(listed.len(), 2);
//!     assert_eq!(listed[0].store_id, StoreId(7));
//!     // A column the query does not return is sqlx's own error.
//!     let missing = sqlx::query_as::<_, Product>("SELECT id, sku FROM products")
//!         .fetch_one(&pool)
//!         .await
//!         .unwrap_err();
//!     assert!(matches!(missing, sqlx::Error::ColumnNotFound(name) if name == "store_id"));
//!     Ok(())
//! }
//! ```

use crate::backend::RowRef;
use crate::model::Model;

mod sealed {
    pub trait Sealed {}
}

/// A row of a backend model-runtime was built with: sqlx's `SqliteRow`, `PgRow` or `MySqlRow`
/// (features `sqlite`, `postgres`, `mysql`). Every model implements `sqlx::FromRow` for each of
/// them, so that `sqlx::query_as::<_, Product>(…)` reads models from your own queries. Sealed: it
/// cannot be implemented elsewhere.
#[diagnostic::on_unimplemented(
    message = "models cannot be read from a `{Self}`",
    label = "not a row of a backend model-runtime was built with",
    note = "models implement sqlx::FromRow for SqliteRow, PgRow and MySqlRow, with model-runtime's features `sqlite`, `postgres` and `mysql`"
)]
pub trait ModelRow: sqlx::Row + sealed::Sealed {
    /// Borrows the row for [`Column::decode`](crate::Column::decode).
    fn row_ref(&self) -> RowRef<'_>;
}

macro_rules! impl_model_row {
    ($feature:literal, $row:ty, $variant:ident) => {
        #[cfg(feature = $feature)]
        impl sealed::Sealed for $row {}

        #[cfg(feature = $feature)]
        impl ModelRow for $row {
            fn row_ref(&self) -> RowRef<'_> {
                RowRef::$variant(self)
            }
        }
    };
}

impl_model_row!("sqlite", sqlx::sqlite::SqliteRow, Sqlite);
impl_model_row!("postgres", sqlx::postgres::PgRow, Postgres);
impl_model_row!("mysql", sqlx::mysql::MySqlRow, MySql);

impl RowRef<'_> {
    /// The position of the column called `name`; sqlx's `ColumnNotFound` when there is none, and
    /// an error when several columns have that name (a join of two tables with an `id` each:
    /// sqlx's own lookup by name would silently take the last of them).
    fn ordinal(self, name: &str) -> Result<usize, sqlx::Error> {
        fn find<R: sqlx::Row>(row: &R, name: &str) -> Result<usize, sqlx::Error> {
            use sqlx::Column;
            let mut found = row
                .columns()
                .iter()
                .filter(|c| c.name() == name)
                .map(|c| c.ordinal());
            match (found.next(), found.next()) {
                (Some(ordinal), None) => Ok(ordinal),
                (None, _) => Err(sqlx::Error::ColumnNotFound(name.to_owned())),
                (Some(_), Some(_)) => Err(sqlx::Error::ColumnDecode {
                    index: format!("{name:?}"),
                    source: format!(
                        "the query returns several columns named {name:?}: select or alias the one this model reads (`SELECT p.*` or `s.id AS store_id`)"
                    )
                    .into(),
                }),
            }
        }
        match self {
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(row) => find(row, name),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(row) => find(row, name),
            #[cfg(feature = "mysql")]
            RowRef::MySql(row) => find(row, name),
        }
    }
}

/// The column that field `index` is read from: `at[index]`, or `index` itself when `at` is empty
/// (see [`Model::from_row_at`]).
#[inline]
pub fn column_at(at: &[usize], index: usize) -> usize {
    at.get(index).copied().unwrap_or(index)
}

/// A model read from a row of any query, each field from the column of its name (a model's
/// `sqlx::FromRow`): sqlx's `ColumnNotFound` when the query did not return one, an error naming it
/// when it returned several of that name.
pub fn from_named_row<M: Model>(row: RowRef<'_>) -> Result<M, sqlx::Error> {
    let columns = M::META.columns;
    // The common case, a model's own columns in order (`SELECT *` of its table), reads by position.
    let mut at = Vec::new();
    let mut in_order = true;
    for (i, column) in columns.iter().enumerate() {
        let ordinal = row.ordinal(column.name)?;
        if in_order && ordinal != i {
            in_order = false;
            at.reserve(columns.len());
            at.extend(0..i);
        }
        if !in_order {
            at.push(ordinal);
        }
    }
    M::from_row_at(row, &at)
}

/// A column's decode result, whose error names the column (`"sku"`) as sqlx's own errors for a
/// column read by name do, rather than its position.
pub fn named<C>(decoded: Result<C, sqlx::Error>, name: &str) -> Result<C, sqlx::Error> {
    decoded.map_err(|error| match error {
        sqlx::Error::ColumnDecode { source, .. } => sqlx::Error::ColumnDecode {
            index: format!("{name:?}"),
            source,
        },
        other => other,
    })
}
