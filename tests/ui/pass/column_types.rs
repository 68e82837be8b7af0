// Must compile: own column types in every position (plain, nullable, keys, foreign keys in both
// directions, auto_increment), a hand-written StoredAs, and sqlx's query_as on every backend.
use model_runtime::Key;
use model_runtime::{Column, Model, StoredAs};

#[derive(Column, Debug, Clone, Copy, PartialEq)]
pub struct StoreId(i64);

#[derive(Column, Debug, Clone, PartialEq)]
pub struct Sku {
    value: String,
}

#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(integer)]
#[repr(i64)]
pub enum Big {
    Min = i64::MIN,
    Max = i64::MAX,
}

#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(text)]
pub enum Status {
    Active,
    #[column(rename = "on-hold")]
    OnHold,
}

/// A conversion of one's own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Celsius(f64);

impl StoredAs for Celsius {
    type Stored = f64;
    fn to_stored(&self) -> f64 {
        self.0
    }
    fn from_stored(stored: f64) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Celsius(stored))
    }
}

#[derive(Model, Debug)]
pub struct Store {
    #[model(primary_key, auto_increment)]
    id: StoreId,
}

#[derive(Model, Debug)]
pub struct LegacyStore {
    #[model(primary_key)]
    id: i64,
}

#[derive(Model, Debug)]
#[unique_together(store, sku)]
pub struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[model(references = Store)]
    store: i64,
    #[model(references = LegacyStore)]
    legacy: Option<StoreId>,
    #[model(max_length = 40)]
    sku: Sku,
    #[unique]
    big: Big,
    #[model(max_length = 7)]
    status: Option<Status>,
    temperature: Option<Celsius>,
}

#[allow(dead_code)]
async fn lookups(pool: &sqlx::SqlitePool) -> Result<(), model_runtime::Error> {
    let sku = Sku { value: "A-1".into() };
    Product::by_store_and_sku(1, sku).get(pool).await?;
    Product::by_big(Big::Max).get(pool).await?;
    Store::by_id(StoreId(1)).get(pool).await?;
    Ok(())
}

#[allow(dead_code)]
async fn listings(
    sqlite: &sqlx::SqlitePool,
    postgres: &sqlx::PgPool,
    mysql: &sqlx::MySqlPool,
) -> Result<(), sqlx::Error> {
    let _: Vec<Product> = sqlx::query_as("SELECT * FROM product").fetch_all(sqlite).await?;
    let _: Vec<Product> = sqlx::query_as("SELECT * FROM product").fetch_all(postgres).await?;
    let _: Option<Product> = sqlx::query_as("SELECT * FROM product").fetch_optional(mysql).await?;
    Ok(())
}

/// Generic over the backend: every `Backend`'s rows are `ModelRow`s.
#[allow(dead_code)]
async fn generic<DB: model_runtime::Backend>(pool: &sqlx::Pool<DB>) -> Result<Vec<Product>, sqlx::Error>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    sqlx::query_as("SELECT * FROM product").fetch_all(pool).await
}

fn main() {
    let meta = Product::META;
    assert_eq!(meta.columns[1].kind, model_runtime::ColumnKind::BigInt);
    assert_eq!(meta.columns[4].kind, model_runtime::ColumnKind::BigInt);
    assert_eq!(meta.columns[5].kind, model_runtime::ColumnKind::Text);
    assert!(meta.columns[5].nullable);
}
