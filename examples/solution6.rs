//! The guide's Solution 6 on a database that already holds duplicates: a legacy `products` table
//! without any constraint gets the model's "product name unique per store". The diff says what
//! changes, the pre-check shows the groups of rows that block the new constraint, they are resolved
//! the way you choose, the plan is applied, and the migration SQL is printed for all three backends.
//!
//! ```sh
//! cargo run --example solution6                      # embedded SQLite, keep the oldest row of each group
//! cargo run --example solution6 -- --keep newest
//! cargo run --example solution6 -- --keep none        # show what blocks the plan, change nothing
//! ```

use model_runtime::migrate::Keep;
use model_runtime::{Dialect, Model, Schema};

/// The model as it is now: a product name is unique within its store.
#[derive(Model, Debug, Clone)]
#[model(table = "products")]
#[unique_together(product_name, store_id, name = "unique_product_per_store")]
pub struct Product {
    #[model(primary_key, auto_increment)]
    pub id: i64,
    #[model(max_length = 100)]
    pub product_name: String,
    pub store_id: i64,
}

const USAGE: &str = "usage: solution6 [--keep oldest|newest|none]";

async fn run(keep: Option<Keep>) -> Result<(), Box<dyn std::error::Error>> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await?;
    // The legacy table: no constraint, and data entered over the years.
    sqlx::query(
        "CREATE TABLE products (id INTEGER PRIMARY KEY AUTOINCREMENT, product_name varchar(100) NOT NULL, store_id integer NOT NULL)",
    )
    .execute(&pool)
    .await?;
    for (name, store) in [
        ("Pixel 8", 1),
        ("Pixel 8", 2),
        ("Pixel 8", 1), // a duplicate within store 1
        ("Galaxy S24", 1),
        ("Galaxy S24", 1), // and another
        ("Galaxy S24", 1),
        ("iPhone 15", 3),
    ] {
        sqlx::query("INSERT INTO products (product_name, store_id) VALUES (?, ?)")
            .bind(name)
            .bind(store)
            .execute(&pool)
            .await?;
    }

    let schema = Schema::new().model::<Product>();
    let plan = schema.diff(&pool).await?;
    println!("What the model wants:\n{plan}");

    let groups = plan.duplicates(&pool, 10).await?;
    println!("Rows that block it:");
    for group in &groups {
        println!("  {group}");
    }
    let Some(keep) = keep else {
        println!("--keep none: nothing changed; resolve the groups, then apply.");
        return Ok(());
    };
    if let Err(error) = plan.apply(&pool).await {
        println!("Applying before resolving is refused:\n  {error}");
    }
    for deleted in plan.resolve_duplicates(&pool, keep).await? {
        println!(
            "Deleted from {} for {} ({keep:?}): ids {}",
            deleted.table,
            deleted.constraint,
            deleted.primary_keys.join(", ")
        );
    }
    plan.apply(&pool).await?;
    println!(
        "Applied. Left to do: {}",
        schema.diff(&pool).await?.to_string().trim()
    );

    for dialect in Dialect::ALL {
        let migration = plan.sql_for(dialect)?;
        println!("-- {dialect}, up:");
        for sql in &migration.up {
            println!("{sql};");
        }
        println!("-- {dialect}, down:");
        for sql in &migration.down {
            println!("{sql};");
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keep = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["--keep", "oldest"] => Some(Keep::LowestPrimaryKey),
        ["--keep", "newest"] => Some(Keep::HighestPrimaryKey),
        ["--keep", "none"] => None,
        ["--help" | "-h"] => {
            println!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("error: unexpected arguments {args:?}\n{USAGE}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match run(keep).await {
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
