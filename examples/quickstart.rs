//! The models of the Django duplicate-key guide, as typed Rust models on embedded SQLite.
//!
//! Run it with `cargo run --example quickstart`. It prints the DDL for all three backends, creates the
//! schema in an in-memory SQLite database, inserts rows, shows the database refusing a duplicate,
//! lists a store's products with a plain sqlx query, and lists each model's unique constraints and
//! indexes.

use model_runtime::Key;
use model_runtime::{Column, Dialect, Error, Model, Schema};
use rust_decimal::Decimal;
use sqlx::sqlite::SqlitePoolOptions;

/// A store's id: its own type, so that it is never mixed up with another number.
#[derive(Column, Debug, Clone, Copy, PartialEq)]
pub struct StoreId(pub i64);

/// Whether a store has a product on its shelves, stored as `"in_stock"` / `"sold_out"`.
#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(text)]
pub enum Availability {
    InStock,
    SoldOut,
}

/// A shop.
#[derive(Model, Debug)]
#[model(table = "stores")]
pub struct Store {
    #[model(primary_key, auto_increment)]
    pub id: StoreId,
    #[unique]
    #[model(max_length = 100)]
    pub name: String,
}

/// The guide's first model: `product_name` is unique across all stores (`unique=True`).
#[derive(Model, Debug)]
#[model(table = "products")]
pub struct Product {
    #[model(primary_key, auto_increment)]
    pub id: i64,
    #[unique]
    #[model(max_length = 100)]
    pub product_name: String,
    pub price: Decimal,
    #[model(max_length = 50)]
    pub category: String,
}

/// The guide's fix: a product name is unique per store, not globally (`UniqueConstraint(fields=…)`).
/// The key's `store_id` is a `StoreId`; listings by store and availability have an index.
#[derive(Model, Debug)]
#[model(table = "store_products")]
#[unique_together(product_name, store_id, name = "unique_product_per_store")]
#[index(store_id, availability)]
pub struct StoreProduct {
    #[model(primary_key, auto_increment)]
    pub id: i64,
    #[model(max_length = 100)]
    pub product_name: String,
    #[model(references = Store)]
    pub store_id: StoreId,
    #[model(precision = 10, scale = 2)]
    pub price: Decimal,
    #[model(max_length = 20)]
    pub availability: Availability,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schema = Schema::new()
        .model::<Store>()
        .model::<Product>()
        .model::<StoreProduct>();

    for dialect in Dialect::ALL {
        println!("-- {dialect}");
        for statement in schema.sql(dialect)? {
            println!("{statement};");
        }
        println!();
    }

    // One connection: every connection to `sqlite::memory:` is a database of its own.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await?;
    schema.create(&pool).await?;

    let downtown = Store {
        id: StoreId(0), // auto_increment: assigned by the database
        name: "Downtown".into(),
    }
    .insert(&pool)
    .await?;
    let airport = Store {
        id: StoreId(0),
        name: "Airport".into(),
    }
    .insert(&pool)
    .await?;
    println!("inserted {downtown:?} and {airport:?}");

    let iphone = Product {
        id: 0,
        product_name: "iPhone 15".into(),
        price: "999.99".parse()?,
        category: "smartphones".into(),
    };
    let stored = iphone.insert(&pool).await?;
    println!("inserted {stored:?}");

    // The same product name again: the database refuses it, and the error says which declared
    // constraint, with which values, instead of a string to match.
    match iphone.insert(&pool).await {
        Ok(row) => println!("unexpected: a second {row:?} was inserted"),
        Err(Error::UniqueViolation(violation)) if violation.is::<ProductByProductName>() => {
            println!("second insert refused: {violation}");
            println!(
                "  constraint {:?}, columns {:?}",
                violation.constraint(),
                violation.columns()
            );
        }
        Err(other) => return Err(other.into()),
    }

    // Per store: the same name in two stores is fine.
    for (store, availability) in [
        (&downtown, Availability::InStock),
        (&airport, Availability::SoldOut),
    ] {
        let row = StoreProduct {
            id: 0,
            product_name: "iPhone 15".into(),
            store_id: store.id,
            price: "949.00".parse()?,
            availability,
        }
        .insert(&pool)
        .await?;
        println!("inserted {row:?}");
    }
    let pixel = StoreProduct {
        id: 0,
        product_name: "Pixel 8".into(),
        store_id: airport.id,
        price: "699.00".parse()?,
        availability: Availability::InStock,
    };
    StoreProduct::get_or_create_by_product_name_and_store_id(&pool, &pixel).await?;

    // The typed lookup takes the store's own id type.
    let found = StoreProduct::by_product_name_and_store_id("iPhone 15", airport.id)
        .get(&pool)
        .await?;
    println!("looked up by (product_name, store_id): {found:?}");

    // What no unique key covers is plain sqlx, reading the same models: the airport's products
    // in stock.
    let in_stock: Vec<StoreProduct> = sqlx::query_as(
        "SELECT * FROM store_products WHERE store_id = ? AND availability = ? ORDER BY product_name",
    )
    .bind(airport.id.0)
    .bind("in_stock")
    .fetch_all(&pool)
    .await?;
    println!("in stock at the airport (sqlx::query_as): {in_stock:?}");
    assert_eq!(in_stock.len(), 1);

    // Django's get_or_create and update_or_create, race-free, keyed by a declared constraint.
    let galaxy = Product {
        id: 0,
        product_name: "Galaxy S24".into(),
        price: "799.99".parse()?,
        category: "smartphones".into(),
    };
    let (row, outcome) = Product::get_or_create_by_product_name(&pool, &galaxy).await?;
    println!("get_or_create: {outcome:?} {row:?}");
    let (row, outcome) = Product::get_or_create_by_product_name(&pool, &galaxy).await?;
    println!("get_or_create again: {outcome:?} {row:?}");
    let cheaper = Product {
        price: "749.99".parse()?,
        ..galaxy
    };
    let (row, outcome) =
        Product::update_or_create_by_product_name(&pool, &cheaper, &[ProductField::Price]).await?;
    println!("update_or_create: {outcome:?} {row:?}");

    println!();
    for meta in [Store::META, Product::META, StoreProduct::META] {
        println!("{meta}");
    }
    Ok(())
}
