//! The six answers to a duplicate key from the Django guide ("How to Resolve DuplicateKeyError"),
//! one function each, on the guide's own `Product` model and its per-store variant.
//!
//! ```sh
//! cargo run --example duplicate_keys                                        # embedded SQLite
//! cargo run --example duplicate_keys -- postgres://postgres@127.0.0.1:5432/test
//! cargo run --example duplicate_keys -- mysql://root@127.0.0.1:3306/test
//! ```
//!
//! Each prints what happened, so a reader can compare it with the guide.

use model_runtime::Key;
use model_runtime::{
    Backend, BulkInsert, Error, Isolation, Model, Outcome, RowOutcome, Schema, TxOptions,
};
use rust_decimal::Decimal;
use sqlx::Pool;

/// The guide's first model: `product_name = CharField(max_length=100, unique=True)`.
#[derive(Model, Debug, Clone)]
#[model(table = "guide_products")]
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

/// A store, for the per-store variant.
#[derive(Model, Debug, Clone)]
#[model(table = "guide_stores")]
pub struct Store {
    #[model(primary_key, auto_increment)]
    pub id: i64,
    #[unique]
    #[model(max_length = 100)]
    pub name: String,
}

/// The guide's fix (solution 6): unique per store, `UniqueConstraint(fields=['product_name',
/// 'store'], name='unique_product_per_store')`.
#[derive(Model, Debug, Clone)]
#[model(table = "guide_store_products")]
#[unique_together(product_name, store_id, name = "unique_product_per_store")]
pub struct StoreProduct {
    #[model(primary_key, auto_increment)]
    pub id: i64,
    #[model(max_length = 100)]
    pub product_name: String,
    #[model(references = Store)]
    pub store_id: i64,
    pub price: Decimal,
}

fn iphone(price: &str) -> Product {
    Product {
        id: 0,
        product_name: "iPhone 15".into(),
        price: price.parse().expect("a decimal"),
        category: "smartphones".into(),
    }
}

/// Solution 1: get_or_create. The lookup is the unique key; the other fields are defaults.
async fn solution_1_get_or_create<DB: Backend>(pool: &Pool<DB>) -> Result<(), Error> {
    let (product, outcome) =
        Product::get_or_create_by_product_name(pool, &iphone("999.99")).await?;
    if outcome.created() {
        println!("  New product created: {}", product.product_name);
    } else {
        println!("  Existing product found: {}", product.product_name);
    }
    let (product, outcome) = Product::get_or_create_by_product_name(pool, &iphone("1.00")).await?;
    println!(
        "  again: {outcome:?}, price still {} (defaults are used only when creating)",
        product.price
    );
    Ok(())
}

/// Solution 2: update_or_create, writing only the fields listed.
async fn solution_2_update_or_create<DB: Backend>(pool: &Pool<DB>) -> Result<(), Error> {
    let (product, outcome) =
        Product::update_or_create_by_product_name(pool, &iphone("899.99"), &[ProductField::Price])
            .await?;
    match outcome {
        Outcome::Created => println!(
            "  New product created: {} at ${}",
            product.product_name, product.price
        ),
        Outcome::Updated => println!(
            "  Product updated: {} - new price: ${}",
            product.product_name, product.price
        ),
        Outcome::Unchanged | Outcome::Found | Outcome::Stale => println!(
            "  Product already at that price: {} - ${}",
            product.product_name, product.price
        ),
    }
    Ok(())
}

/// Solution 3: check, then create. Two callers that check at once both see "absent"; one insert
/// then fails. get_or_create holds where check-then-create does not.
async fn solution_3_check_then_create<DB: Backend>(pool: &Pool<DB>) -> Result<(), Error> {
    let galaxy = Product {
        id: 0,
        product_name: "Galaxy S24".into(),
        price: "799.99".parse().expect("a decimal"),
        category: "smartphones".into(),
    };
    // Both "requests" check first, as the guide's code does...
    let a = Product::by_product_name("Galaxy S24").exists(pool).await?;
    let b = Product::by_product_name("Galaxy S24").exists(pool).await?;
    println!("  request A sees exists={a}, request B sees exists={b}");
    // ...then both create.
    let first = galaxy.insert(pool).await;
    let second = galaxy.insert(pool).await;
    println!(
        "  request A: {}",
        first
            .as_ref()
            .map(|_| "created".to_owned())
            .unwrap_or_else(|e| e.to_string())
    );
    println!(
        "  request B: {}",
        second
            .as_ref()
            .map(|_| "created".to_owned())
            .unwrap_or_else(|e| e.to_string())
    );
    // The typed alternative: both calls succeed, one creates, both get the row.
    let pixel = Product {
        product_name: "Pixel 8".into(),
        ..galaxy
    };
    let (a, b) = tokio::join!(
        Product::get_or_create_by_product_name(pool, &pixel),
        Product::get_or_create_by_product_name(pool, &pixel)
    );
    let (a, b) = (a?, b?);
    println!(
        "  with get_or_create: A {:?}, B {:?}, same row: {}",
        a.1,
        b.1,
        a.0.id == b.0.id
    );
    Ok(())
}

/// Solution 4: catch the duplicate, as a typed error instead of a string to match.
async fn solution_4_catch_the_error<DB: Backend>(pool: &Pool<DB>) -> Result<(), Error> {
    match iphone("999.99").insert(pool).await {
        Ok(_) => println!("  Product created successfully."),
        Err(Error::UniqueViolation(v)) if v.is::<ProductByProductName>() => {
            println!("  Product with this name already exists. Skipping.");
            println!("  ({v})");
            println!("  Instead: {}", v.advice());
        }
        Err(other) => return Err(other),
    }
    Ok(())
}

/// Solution 4, bulk: `bulk_create(ignore_conflicts=True)`, with a report of what was skipped.
async fn solution_4_bulk_skip_duplicates<DB: Backend>(pool: &Pool<DB>) -> Result<(), Error> {
    let rows = vec![
        Product {
            product_name: "Galaxy S24".into(),
            ..iphone("799.99")
        },
        iphone("999.99"), // might exist: it does
        Product {
            product_name: "Pixel 9".into(),
            ..iphone("699.99")
        },
    ];
    let names: Vec<String> = rows.iter().map(|r| r.product_name.clone()).collect();
    let report = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductByProductName>()
        .run(pool, rows)
        .await?;
    println!(
        "  Bulk insert completed: {} inserted, {} skipped as existing",
        report.inserted, report.skipped_existing
    );
    for (name, outcome) in names.iter().zip(report.rows.iter().flatten()) {
        let what = match outcome {
            RowOutcome::Inserted(id) => format!("inserted with id {id}"),
            RowOutcome::SkippedExisting => "skipped: already stored".to_owned(),
            other => format!("{other:?}"),
        };
        println!("    {name}: {what}");
    }
    Ok(())
}

/// Solution 5: select_for_update in a transaction: lock the row, then update or create it. The
/// library's transaction retries when the database asks for it.
async fn solution_5_locking_read<DB: Backend>(pool: &Pool<DB>) -> Result<(), Error> {
    let options = TxOptions::default().isolation(Isolation::ReadCommitted);
    let message = model_runtime::transaction(pool, options, async |tx| {
        match Product::by_product_name("iPhone 15")
            .get_for_update(&mut *tx)
            .await?
        {
            Some(product) => {
                let price = "849.99".parse().expect("a decimal");
                Product { price, ..product }.update(&mut *tx).await?;
                Ok("Product updated.")
            }
            None => {
                iphone("999.99").insert(&mut *tx).await?;
                Ok("Product created.")
            }
        }
    })
    .await?;
    println!("  {message}");
    Ok(())
}

/// Solution 6: the constraint was too strict. Unique per store, the same name is fine in two stores.
async fn solution_6_per_store<DB: Backend>(pool: &Pool<DB>) -> Result<(), Error> {
    let (downtown, _) = Store::get_or_create_by_name(
        pool,
        &Store {
            id: 0,
            name: "Downtown".into(),
        },
    )
    .await?;
    let (airport, _) = Store::get_or_create_by_name(
        pool,
        &Store {
            id: 0,
            name: "Airport".into(),
        },
    )
    .await?;
    for store in [&downtown, &airport] {
        let row = StoreProduct {
            id: 0,
            product_name: "iPhone 15".into(),
            store_id: store.id,
            price: "949.00".parse().expect("a decimal"),
        };
        let (row, outcome) =
            StoreProduct::get_or_create_by_product_name_and_store_id(pool, &row).await?;
        println!(
            "  {} in store {}: {outcome:?} (id {})",
            row.product_name, store.name, row.id
        );
    }
    for constraint in StoreProduct::META.unique_constraints() {
        println!("  StoreProduct constraint: {}", constraint.name);
    }
    Ok(())
}

async fn run<DB: Backend>(pool: Pool<DB>) -> Result<(), Error> {
    println!("Solution 1: get_or_create()");
    solution_1_get_or_create(&pool).await?;
    println!("Solution 2: update_or_create()");
    solution_2_update_or_create(&pool).await?;
    println!("Solution 3: check for existence before saving");
    solution_3_check_then_create(&pool).await?;
    println!("Solution 4: catch the duplicate-key error");
    solution_4_catch_the_error(&pool).await?;
    solution_4_bulk_skip_duplicates(&pool).await?;
    println!("Solution 5: select_for_update() in a transaction");
    solution_5_locking_read(&pool).await?;
    println!("Solution 6: review the constraints (unique per store)");
    solution_6_per_store(&pool).await?;
    Ok(())
}

const TABLES: [&str; 3] = ["guide_store_products", "guide_stores", "guide_products"];

const USAGE: &str = "\
usage: duplicate_keys [DATABASE_URL]

Walks through the guide's six answers to a duplicate key, printing what each does.

  DATABASE_URL   postgres://… or mysql://… (default: an SQLite file in a temporary directory)

On a server database the guide's tables (guide_products, guide_stores, guide_store_products) are
created, and dropped again at the end.";

/// Drops the guide's tables, children first.
async fn drop_tables<DB: Backend>(pool: &Pool<DB>) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = pool.acquire().await?;
    for table in TABLES {
        let sql = format!("DROP TABLE IF EXISTS {table}");
        DB::execute(
            &mut conn,
            sql.into(),
            model_runtime::__private::Values(Vec::new()),
        )
        .await?;
    }
    Ok(())
}

/// Runs the walk-through on a server database, with the guide's tables made for it and dropped
/// after it, whether it succeeded or not.
async fn on_server<DB: Backend>(pool: Pool<DB>) -> Result<(), Box<dyn std::error::Error>> {
    drop_tables(&pool).await?;
    let schema = Schema::new().model::<Product>().model::<StoreProduct>();
    let result = match schema.create(&pool).await {
        Ok(()) => run(pool.clone()).await.map_err(Into::into),
        Err(e) => Err(e.into()),
    };
    drop_tables(&pool).await?;
    result
}

async fn main_with(url: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    match url {
        None => {
            // A file, so that the race in solution 3 has two connections to race on.
            let dir = std::env::temp_dir().join(format!("duplicate_keys_{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.join("guide.sqlite"))
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
            let pool = sqlx::SqlitePool::connect_with(options).await?;
            let schema = Schema::new().model::<Product>().model::<StoreProduct>();
            let result = match schema.create(&pool).await {
                Ok(()) => run(pool.clone()).await.map_err(Into::into),
                Err(e) => Err(e.into()),
            };
            pool.close().await;
            std::fs::remove_dir_all(&dir)?;
            result
        }
        Some(url) if url.starts_with("postgres") => {
            let pool = sqlx::PgPool::connect(&url)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            on_server(pool).await
        }
        Some(url) if url.starts_with("mysql") || url.starts_with("mariadb") => {
            let pool = sqlx::MySqlPool::connect(&url)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            on_server(pool).await
        }
        Some(url) => Err(format!(
            "unknown database URL {url}: expected postgres://… or mysql://…\n\n{USAGE}"
        )
        .into()),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return std::process::ExitCode::SUCCESS;
    }
    if args.len() > 1 || args.iter().any(|a| a.starts_with('-')) {
        eprintln!("error: unexpected arguments {args:?}\n\n{USAGE}");
        return std::process::ExitCode::FAILURE;
    }
    match main_with(args.into_iter().next()).await {
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
