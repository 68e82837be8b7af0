//! The guide's debugging checklist for a duplicate key, as a program: from the typed error to the
//! row already stored, then the model's declared constraints and the live database's, side by side.
//!
//! ```sh
//! cargo run --example debugging_checklist                 # embedded SQLite
//! ```
//!
//! The live table here has drifted from the model: an extra unique index someone added by hand,
//! and the model's per-store constraint missing. The side-by-side view shows both.

use model_runtime::{Error, Model, Schema, migrate};

/// The model: an SKU is unique, and so is a product name within its store.
#[derive(Model, Debug, Clone)]
#[model(table = "products")]
#[unique_together(product_name, store_id, name = "unique_product_per_store")]
pub struct Product {
    #[model(primary_key, auto_increment)]
    pub id: i64,
    #[unique]
    #[model(max_length = 40)]
    pub sku: String,
    #[model(max_length = 100)]
    pub product_name: String,
    pub store_id: i64,
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await?;
    // The live table: the SKU constraint as declared, no per-store constraint, and an index on the
    // product name alone that someone added by hand.
    for sql in [
        r#"CREATE TABLE "products" ("id" integer PRIMARY KEY AUTOINCREMENT, "sku" varchar(40) NOT NULL, "product_name" varchar(100) NOT NULL, "store_id" integer NOT NULL, CONSTRAINT "products_sku_key" UNIQUE ("sku"))"#,
        r#"CREATE UNIQUE INDEX "products_name_by_hand" ON "products" ("product_name")"#,
        r#"INSERT INTO "products" ("sku", "product_name", "store_id") VALUES ('PX-8', 'Pixel 8', 1)"#,
    ] {
        sqlx::query(sql).execute(&pool).await?;
    }

    // 1. The error: which constraint, which columns, which values.
    let new = Product {
        id: 0,
        sku: "PX-8-B".into(),
        product_name: "Pixel 8".into(),
        store_id: 2,
    };
    let error = new
        .insert(&pool)
        .await
        .expect_err("the hand-made index refuses it");
    println!("1. The error:\n   {error}");
    let Error::UniqueViolation(violation) = &error else {
        return Err(error.into());
    };
    println!("   hint: {}", violation.advice());
    println!(
        "   constraint {:?}, columns {:?}, values {:?}, declared by the model: {}",
        violation.constraint(),
        violation.columns(),
        violation.values(),
        violation.key().is_some()
    );

    // 2. The row already stored with those values.
    let stored: Vec<(i64, String, String, i64)> = sqlx::query_as(
        r#"SELECT "id", "sku", "product_name", "store_id" FROM "products" WHERE "product_name" = ?"#,
    )
    .bind(&new.product_name)
    .fetch_all(&pool)
    .await?;
    println!(
        "2. The stored row(s) with product_name = {:?}: {stored:?}",
        new.product_name
    );

    // 3. The model's constraints and the database's, side by side.
    let mut conn = pool.acquire().await?;
    let live = migrate::inspect::<sqlx::Sqlite>(&mut conn, Product::META.table)
        .await?
        .expect("the table exists");
    println!("3. Unique constraints of {}:", Product::META.table);
    println!("   {:<28} {:<28} columns", "model", "database");
    for constraint in Product::META.unique_constraints() {
        let columns: Vec<&str> = constraint
            .columns
            .iter()
            .map(|&i| Product::META.columns[i].name)
            .collect();
        let in_db = live.uniques.iter().find(|u| {
            u.columns
                .iter()
                .map(String::as_str)
                .eq(columns.iter().copied())
        });
        println!(
            "   {:<28} {:<28} ({})",
            constraint.name,
            in_db.map_or("— missing —", |u| u.name.as_str()),
            columns.join(", ")
        );
    }
    for unique in &live.uniques {
        if !Product::META
            .unique_constraints()
            .iter()
            .any(|c| c.name == unique.name)
        {
            println!(
                "   {:<28} {:<28} ({})",
                "— not declared —",
                unique.name,
                unique.columns.join(", ")
            );
        }
    }

    drop(conn);
    // 4. What would bring the database to the model.
    let plan = Schema::new().model::<Product>().diff(&pool).await?;
    println!("4. The plan:\n{plan}");
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if std::env::args().len() > 1 {
        println!(
            "usage: debugging_checklist (no arguments: it runs on an embedded SQLite database)"
        );
        return std::process::ExitCode::from(u8::from(
            !std::env::args().any(|a| a == "--help" || a == "-h"),
        ));
    }
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Each error's message is one line; what caused it is in its source chain.
            eprintln!("error: {error}");
            let mut cause = std::error::Error::source(&*error);
            while let Some(inner) = cause {
                eprintln!("  caused by: {inner}");
                cause = inner.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}
