//! The traits `#[derive(Model)]` implements.

use sea_query::Value;

use crate::backend::{Dialect, RowRef};
use crate::column::Column;
use crate::conn::Conn;
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

    /// Builds the model from a row: field `i` from column `at[i]`, or, when `at` is empty, from
    /// column `i` (a row whose columns are in [`ModelMeta::columns`] order).
    fn from_row_at(row: RowRef<'_>, at: &[usize]) -> Result<Self, sqlx::Error>;

    /// Builds the model from a row whose columns are in [`ModelMeta::columns`] order.
    #[inline]
    fn from_row(row: RowRef<'_>) -> Result<Self, sqlx::Error> {
        Self::from_row_at(row, &[])
    }

    /// Inserts this row on the caller's pool, connection or transaction and returns it as stored,
    /// with its database-assigned primary key. The value of an auto-increment primary key field is
    /// ignored. A duplicate key is an error.
    fn insert<'a, 'c: 'a>(
        &'a self,
        conn: impl Conn<'c> + 'a,
    ) -> BoxFuture<'a, Result<Self, Error>> {
        crate::ops::insert(conn, self)
    }

    /// Writes every column but the primary key to the row with this primary key, and returns the row
    /// as stored; [`Error::NotFound`] when there is none.
    fn update<'a, 'c: 'a>(
        &'a self,
        conn: impl Conn<'c> + 'a,
    ) -> BoxFuture<'a, Result<Self, Error>> {
        crate::ops::update(conn, self)
    }

    /// Checks every unique constraint against the stored rows in one query: see
    /// [`crate::validate_unique`].
    fn validate_unique<'a, 'c: 'a>(
        &'a self,
        conn: impl Conn<'c> + 'a,
    ) -> BoxFuture<'a, Result<Vec<crate::UniqueViolation>, Error>> {
        crate::ops::validate_unique(conn, self)
    }

    /// Checks every unique constraint, and the primary key unless it is `auto_increment`, against
    /// the stored rows, for a row about to be inserted: see [`crate::validate_unique_new`].
    fn validate_unique_new<'a, 'c: 'a>(
        &'a self,
        conn: impl Conn<'c> + 'a,
    ) -> BoxFuture<'a, Result<Vec<crate::UniqueViolation>, Error>> {
        crate::ops::validate_unique_new(conn, self)
    }

    /// Deletes the row with this primary key; `false` when there was none.
    fn delete<'a, 'c: 'a>(
        &'a self,
        conn: impl Conn<'c> + 'a,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        crate::ops::delete(conn, self)
    }
}

/// The values of a key that identifies at most one row of its [`Key::Model`]: its primary key or one
/// of its declared unique constraints.
///
/// `#[derive(Model)]` generates one key type per constraint (`ProductBySku`, `ProductById`, …) and
/// nothing else implements it, so an operation that takes a `Key` cannot be called with columns
/// that no unique constraint covers: the compiler checks it. The key names its model, so calls
/// need no turbofish for it: `model_runtime::get(&pool, ProductBySku { sku })` returns a `Product`.
///
/// The derive also gives each model a constructor per key (`Product::by_sku(sku)`,
/// `Product::by_name_and_store_id(name, store_id)`, taking anything `Into` each column's type), and
/// this trait the lookups as methods: `Product::by_sku("A-1").get(&pool)`, `.exists(&pool)`,
/// `.get_for_update(&mut *tx)`. They are written once, here, rather than generated for every key of
/// every model, which keeps the derive cheap to compile; bring the trait into scope with
/// `use model_runtime::Key`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a unique key of a model",
    label = "not a key generated for a unique constraint",
    note = "lookups take a key type that #[derive(Model)] generates for the primary key and for each declared unique constraint (`ProductBySku`, …); to look up by other columns, declare them unique with #[unique] or #[unique_together(…)]"
)]
pub trait Key: Send + Sync {
    /// The model whose rows this key identifies.
    type Model: Model;

    /// Which key of the model this is.
    const KEY: KeyId;

    /// The key's values, in the order of the constraint's columns.
    fn values(&self, dialect: Dialect) -> Vec<Value>;

    /// The key of an existing model value.
    fn of(model: &Self::Model) -> Self;

    /// Finds the row with this key; `None` when there is none. One
    /// `SELECT … FROM table WHERE key = ?`; the same as [`crate::get`]. A key with a NULL value
    /// finds nothing; a key value the backend cannot store exactly (a time with nanoseconds on
    /// PostgreSQL or MariaDB) is [`Error::InvalidValue`], as its write would be.
    ///
    /// ```
    /// # use model_runtime::Model;
    /// # #[derive(Model, Debug, Clone, PartialEq)]
    /// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
    /// # model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
    /// use model_runtime::Key;
    ///
    /// let found = Product::by_sku("A-1").get(&pool).await?;
    /// assert_eq!(found.map(|p| p.price), Some(10));
    /// assert_eq!(Product::by_sku("B-2").get(&pool).await?, None);
    /// # Ok::<(), model_runtime::Error>(()) }).unwrap();
    /// ```
    fn get<'a, 'c: 'a>(
        self,
        conn: impl Conn<'c> + 'a,
    ) -> BoxFuture<'a, Result<Option<Self::Model>, Error>>
    where
        Self: Sized + 'a,
    {
        crate::ops::get(conn, self)
    }

    /// Finds the row with this key and locks it until the transaction ends; the same as
    /// [`crate::get_for_update`], which says what it sends on each backend.
    ///
    /// ```
    /// # use model_runtime::Model;
    /// # #[derive(Model, Debug, Clone, PartialEq)]
    /// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
    /// # model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
    /// use model_runtime::Key;
    ///
    /// let mut tx = pool.begin().await?;
    /// if let Some(product) = Product::by_sku("A-1").get_for_update(&mut *tx).await? {
    ///     Product { price: product.price + 1, ..product }.update(&mut *tx).await?;
    /// }
    /// tx.commit().await?;
    /// # Ok::<(), model_runtime::Error>(()) }).unwrap();
    /// ```
    fn get_for_update<'a, 'c: 'a>(
        self,
        conn: impl Conn<'c> + 'a,
    ) -> BoxFuture<'a, Result<Option<Self::Model>, Error>>
    where
        Self: Sized + 'a,
    {
        crate::ops::get_for_update(conn, self)
    }

    /// Whether a row with this key exists: one `SELECT 1 … LIMIT 1`; the same as
    /// [`crate::exists`].
    ///
    /// ```
    /// # use model_runtime::Model;
    /// # #[derive(Model, Debug, Clone, PartialEq)]
    /// # struct Product { #[model(primary_key, auto_increment)] id: i64, #[unique] sku: String, price: i64 }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// # model_runtime::Schema::new().model::<Product>().create(&pool).await?;
    /// # model_runtime::insert(&pool, &Product { id: 0, sku: "A-1".into(), price: 10 }).await?;
    /// use model_runtime::Key;
    ///
    /// assert!(Product::by_sku("A-1").exists(&pool).await?);
    /// assert!(!Product::by_sku("B-2").exists(&pool).await?);
    /// # Ok::<(), model_runtime::Error>(()) }).unwrap();
    /// ```
    fn exists<'a, 'c: 'a>(self, conn: impl Conn<'c> + 'a) -> BoxFuture<'a, Result<bool, Error>>
    where
        Self: Sized + 'a,
    {
        crate::ops::exists(conn, self)
    }
}

/// A [`Key`] of `M` (whose [`Key::Model`] is `M`): the bound where the model is already known
/// ([`crate::BulkInsert`]'s conflict modes), so that a key of another model is refused with this
/// message. `#[derive(Model)]` implements it next to [`Key`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a unique key of `{M}`",
    label = "not a key generated for a unique constraint of `{M}`",
    note = "each model has its own key types (`{M}By…`), generated by #[derive(Model)] for its primary key and each declared unique constraint"
)]
pub trait KeyOf<M: Model>: Key {}
