//! The traits `#[derive(Model)]` implements.

use sea_query::Value;
use sqlx::Acquire;

use crate::backend::{Backend, Dialect, RowRef};
use crate::column::Column;
use crate::error::Error;
use crate::meta::{KeyId, ModelMeta};
use crate::tx::BoxFuture;

/// A struct mapped to a table, with its unique constraints. Implement it with `#[derive(Model)]`.
pub trait Model: Sized + Send + Sync + Unpin + 'static {
    /// The table, columns, primary key and unique constraints.
    const META: &'static ModelMeta;

    /// The type of the primary key field.
    type PrimaryKey: Column;

    /// The model's fields as values (`ProductField::Price`), for naming the columns an
    /// `update_or_create` writes.
    type Field: Copy + Eq + std::fmt::Debug + Send + Sync + 'static;

    /// The column index of a field.
    fn field_index(field: Self::Field) -> usize;

    /// The value of column `index` (an index into [`ModelMeta::columns`]), ready to bind.
    ///
    /// # Panics
    /// When `index` is not a column index of this model: a bug in the caller, never in user input.
    fn column_value(&self, index: usize, dialect: Dialect) -> Value;

    /// Builds the model from a row whose columns are in [`ModelMeta::columns`] order.
    fn from_row(row: RowRef<'_>) -> Result<Self, sqlx::Error>;

    /// Inserts this row on the caller's pool, connection or transaction and returns it as stored,
    /// with its database-assigned primary key. The value of an auto-increment primary key field is
    /// ignored. A duplicate key is an error.
    fn insert<'a, 'c: 'a, A>(&'a self, conn: A) -> BoxFuture<'a, Result<Self, Error>>
    where
        A: Acquire<'c> + Send + 'a,
        A::Database: Backend,
        A::Connection: crate::Release,
    {
        crate::ops::insert(conn, self)
    }

    /// Writes every column but the primary key to the row with this primary key, and returns the row
    /// as stored; [`Error::NotFound`] when there is none.
    fn update<'a, 'c: 'a, A>(&'a self, conn: A) -> BoxFuture<'a, Result<Self, Error>>
    where
        A: Acquire<'c> + Send + 'a,
        A::Database: Backend,
        A::Connection: crate::Release,
    {
        crate::ops::update(conn, self)
    }

    /// Checks every unique constraint against the stored rows in one query: see
    /// [`crate::validate_unique`].
    fn validate_unique<'a, 'c: 'a, A>(
        &'a self,
        conn: A,
    ) -> BoxFuture<'a, Result<Vec<crate::UniqueViolation>, Error>>
    where
        A: Acquire<'c> + Send + 'a,
        A::Database: Backend,
        A::Connection: crate::Release,
    {
        crate::ops::validate_unique(conn, self)
    }

    /// Checks every unique constraint, and the primary key unless it is `auto_increment`, against
    /// the stored rows, for a row about to be inserted: see [`crate::validate_unique_new`].
    fn validate_unique_new<'a, 'c: 'a, A>(
        &'a self,
        conn: A,
    ) -> BoxFuture<'a, Result<Vec<crate::UniqueViolation>, Error>>
    where
        A: Acquire<'c> + Send + 'a,
        A::Database: Backend,
        A::Connection: crate::Release,
    {
        crate::ops::validate_unique_new(conn, self)
    }

    /// Deletes the row with this primary key; `false` when there was none.
    fn delete<'a, 'c: 'a, A>(&'a self, conn: A) -> BoxFuture<'a, Result<bool, Error>>
    where
        A: Acquire<'c> + Send + 'a,
        A::Database: Backend,
        A::Connection: crate::Release,
    {
        crate::ops::delete(conn, self)
    }
}

/// The values of a key that identifies at most one row of `M`: its primary key or one of its declared
/// unique constraints.
///
/// `#[derive(Model)]` generates one key type per constraint (`ProductBySku`, `ProductById`, …) and
/// nothing else implements it, so an operation that takes a `Key<M>` cannot be called with columns
/// that no unique constraint covers: the compiler checks it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a unique key of `{M}`",
    label = "not a key generated for a unique constraint of `{M}`",
    note = "lookups take a key type that #[derive(Model)] generates for the primary key and for each declared unique constraint (`{M}By…`); to look up by other columns, declare them unique with #[unique] or #[unique_together(…)]"
)]
pub trait Key<M: Model>: Send + Sync {
    /// Which key of `M` this is.
    const KEY: KeyId;

    /// The key's values, in the order of the constraint's columns.
    fn values(&self, dialect: Dialect) -> Vec<Value>;

    /// The key of an existing model value.
    fn of(model: &M) -> Self;
}
