//! Imports a products CSV with a skip-duplicates bulk insert, and says what it skipped.
//!
//! ```sh
//! cargo run --example import_csv                                   # examples/data/products.csv → SQLite
//! cargo run --example import_csv -- products.csv postgres://postgres@127.0.0.1:5432/test
//! cargo run --release --example import_csv -- --generate 1000000 big.csv   # a large file to import
//! cargo run --release --example import_csv -- big.csv
//! ```
//!
//! Rows whose `sku` is already in the catalog are skipped, and so are repeats of a `sku` within the
//! file (the first one wins). The whole import is one transaction: a bad row leaves nothing behind.
//! On a server database the `catalog` table is dropped afterwards if the import created it (pass
//! `--keep` to keep it). `--help` says all this; a bad argument, file or line is an error message
//! and a non-zero exit.

use std::collections::HashSet;
use std::io::Write;

use indicatif::{ProgressBar, ProgressStyle};
use model_runtime::{Backend, BulkInsert, Error, Model, RowOutcome, Schema};
use rust_decimal::Decimal;
use sqlx::Pool;

/// One product of the catalog.
#[derive(Model, Debug, Clone)]
#[model(table = "catalog")]
pub struct Product {
    #[model(primary_key, auto_increment)]
    pub id: i64,
    #[unique]
    #[model(max_length = 40)]
    pub sku: String,
    #[model(max_length = 200)]
    pub product_name: String,
    #[model(max_length = 50)]
    pub category: String,
    pub price: Decimal,
}

/// Rows written per bulk call (each in a savepoint of the one transaction).
const BATCH: usize = 10_000;
/// How many skipped keys the summary lists.
const SHOWN: usize = 5;

#[derive(Default)]
struct Summary {
    inserted: u64,
    skipped_existing: u64,
    skipped_in_file: u64,
    first_skipped: Vec<String>,
}

async fn import<DB: Backend>(
    pool: &Pool<DB>,
    path: &str,
) -> Result<Summary, Box<dyn std::error::Error>> {
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let size = file.metadata()?.len();
    let mut reader = csv::Reader::from_reader(std::io::BufReader::new(file));
    let progress = ProgressBar::new(size).with_style(ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {per_sec} {msg}",
    )?);
    // Only a large file needs a bar; a small one would flash it.
    if size < 1_000_000 {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }

    let mut summary = Summary::default();
    let mut seen_in_file: HashSet<String> = HashSet::new();
    let mut tx = pool.begin().await?;
    let mut records = reader.records();
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        for record in records.by_ref().take(BATCH) {
            let record = record.map_err(|e| format!("{path}: {e}"))?;
            if record.len() != 4 {
                return Err(format!(
                    "{path}, line {}: expected 4 fields (sku, product_name, category, price), found {}",
                    record.position().map_or(0, |p| p.line()),
                    record.len()
                )
                .into());
            }
            let field = |i: usize| record.get(i).unwrap_or_default().to_owned();
            batch.push(Product {
                id: 0,
                sku: field(0),
                product_name: field(1),
                category: field(2),
                price: field(3).parse().map_err(|e| {
                    format!(
                        "{path}, line {}: price {:?}: {e}",
                        record.position().map_or(0, |p| p.line()),
                        field(3)
                    )
                })?,
            });
        }
        if batch.is_empty() {
            break;
        }
        let skus: Vec<String> = batch.iter().map(|p| p.sku.clone()).collect();
        let report = BulkInsert::<Product>::new()
            .skip_conflicts::<ProductBySku>()
            .run(&mut tx, batch)
            .await?;
        for (sku, outcome) in skus.into_iter().zip(report.rows.into_iter().flatten()) {
            let in_file = match outcome {
                RowOutcome::Inserted(_) => {
                    summary.inserted += 1;
                    seen_in_file.insert(sku);
                    continue;
                }
                RowOutcome::SkippedDuplicate { .. } => true,
                // Stored by an earlier batch of this file, or in the catalog before the import.
                _ => seen_in_file.contains(&sku),
            };
            if in_file {
                summary.skipped_in_file += 1;
            } else {
                summary.skipped_existing += 1;
            }
            if summary.first_skipped.len() < SHOWN {
                let why = if in_file {
                    "repeated in the file"
                } else {
                    "already in the catalog"
                };
                summary.first_skipped.push(format!("{sku} ({why})"));
            }
        }
        progress.set_position(records.reader().position().byte());
        progress.set_message(format!("{} inserted", summary.inserted));
    }
    tx.commit().await?;
    progress.finish_and_clear();
    Ok(summary)
}

async fn run<DB: Backend>(pool: Pool<DB>, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    Schema::new()
        .model::<Product>()
        .if_not_exists(true)
        .create(&pool)
        .await?;
    // Two products the catalog already has, so that the first import skips them.
    for (sku, name) in [("PS5", "PlayStation 5"), ("KND11", "Kindle Paperwhite")] {
        let product = Product {
            id: 0,
            sku: sku.into(),
            product_name: name.into(),
            category: "seed".into(),
            price: Decimal::ONE,
        };
        Product::get_or_create_by_sku(&pool, &product).await?;
    }
    let started = std::time::Instant::now();
    let summary = import(&pool, path).await?;
    println!(
        "imported {path} in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    println!("  inserted:                  {}", summary.inserted);
    println!("  skipped, already stored:   {}", summary.skipped_existing);
    println!("  skipped, repeated in file: {}", summary.skipped_in_file);
    if !summary.first_skipped.is_empty() {
        println!("  first skipped: {}", summary.first_skipped.join(", "));
    }
    Ok(())
}

/// Writes a CSV of `rows` products, with one row in ten repeating an earlier sku.
fn generate(rows: usize, path: &str) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "sku,product_name,category,price")?;
    for i in 0..rows {
        let n = if i % 10 == 9 { i / 2 } else { i };
        writeln!(
            out,
            "GEN{n:09},\"Generated product {n}, model {}\",generated,{}.{:02}",
            n % 97,
            n % 1000,
            n % 100
        )?;
    }
    out.flush()
}

const USAGE: &str = "\
usage: import_csv [FILE] [DATABASE_URL] [--keep]
       import_csv --generate ROWS FILE

Imports a products CSV (sku,product_name,category,price) with a skip-duplicates bulk insert and
prints what it inserted and skipped.

  FILE           the CSV to import (default: examples/data/products.csv)
  DATABASE_URL   postgres://… or mysql://… (default: an in-memory SQLite database)
  --keep         keep the catalog table on a server database (default: drop it if the import made it)
  --generate     write a CSV of ROWS products, one in ten repeating an earlier sku";

/// Whether `catalog` exists on a server database.
async fn catalog_exists<DB: Backend>(pool: &Pool<DB>) -> bool {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(_) => return false,
    };
    DB::execute(
        &mut conn,
        "SELECT 1 FROM catalog WHERE 1 = 0".into(),
        sea_query_values(),
    )
    .await
    .is_ok()
}

fn sea_query_values() -> model_runtime::__private::Values {
    model_runtime::__private::Values(Vec::new())
}

/// Imports into a server database, and drops `catalog` afterwards if this run created it.
async fn run_on_server<DB: Backend>(
    pool: Pool<DB>,
    path: &str,
    keep: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let existed = catalog_exists(&pool).await;
    let result = run(pool.clone(), path).await;
    if !existed && !keep {
        let mut conn = pool.acquire().await?;
        DB::execute(&mut conn, "DROP TABLE catalog".into(), sea_query_values()).await?;
    }
    result
}

async fn main_with(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(flag) = args
        .iter()
        .find(|a| a.starts_with('-') && !matches!(a.as_str(), "--generate" | "--keep"))
    {
        return Err(format!("unknown option {flag}\n\n{USAGE}").into());
    }
    if args.first().map(String::as_str) == Some("--generate") {
        let (Some(rows), Some(path), None) = (
            args.get(1).and_then(|n| n.parse::<usize>().ok()),
            args.get(2),
            args.get(3),
        ) else {
            return Err(format!("--generate takes a row count and a file\n\n{USAGE}").into());
        };
        generate(rows, path).map_err(|e| format!("{path}: {e}"))?;
        println!("wrote {rows} rows to {path}");
        return Ok(());
    }
    let keep = args.iter().any(|a| a == "--keep");
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if positional.len() > 2 {
        return Err(format!("too many arguments\n\n{USAGE}").into());
    }
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/products.csv");
    let path = positional.first().map(|s| s.as_str()).unwrap_or(default);
    match positional.get(1) {
        None => {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect("sqlite::memory:")
                .await?;
            run(pool, path).await
        }
        Some(url) if url.starts_with("postgres") => {
            let pool = sqlx::PgPool::connect(url)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            run_on_server(pool, path, keep).await
        }
        Some(url) if url.starts_with("mysql") || url.starts_with("mariadb") => {
            let pool = sqlx::MySqlPool::connect(url)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            run_on_server(pool, path, keep).await
        }
        Some(url) => Err(format!(
            "unknown database URL {url}: expected postgres://… or mysql://…\n\n{USAGE}"
        )
        .into()),
    }
    .map_err(|e| match e.downcast::<Error>() {
        Ok(e) => format!("import failed: {e}").into(),
        Err(e) => e,
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return std::process::ExitCode::SUCCESS;
    }
    match main_with(args).await {
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
