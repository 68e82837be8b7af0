//! Benchmark: `BulkInsert` of 100,000 rows, half already stored, in skip and update modes, against
//! hand-written sqlx multi-row inserts with the conflict clause people write by hand, in the same
//! run; and the peak memory of a counts-only import of N rows, to show it does not grow with N.
//!
//! ```sh
//! cargo run --release --example bench_bulk                       # SQLite (file, WAL)
//! cargo run --release --example bench_bulk -- postgres://postgres@127.0.0.1:5432/test mysql://root@127.0.0.1:3306/test
//! cargo run --release --example bench_bulk -- --memory 100000    # peak RSS, SQLite
//! cargo run --release --example bench_bulk -- --memory 1000000
//! ```
//!
//! A benchmark, never a test: it asserts nothing about time.

use std::time::Instant;

use model_runtime::{BulkInsert, Model, Schema};
use sqlx::{Connection, QueryBuilder};

const ROWS: usize = 100_000;
const CHUNK: usize = 1000;

#[derive(Model, Debug, Clone)]
#[model(table = "bench_bulk")]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    #[model(max_length = 100)]
    name: String,
    price_cents: i64,
}

fn row(i: usize, price: i64) -> Product {
    Product {
        id: 0,
        sku: format!("SKU-{i:08}"),
        name: format!("product {i}"),
        price_cents: price,
    }
}

/// Every row of the run; the even ones are stored beforehand.
fn all_rows(price: i64) -> impl Iterator<Item = Product> {
    (0..ROWS).map(move |i| row(i, price))
}

fn rate(rows: usize, started: Instant) -> f64 {
    rows as f64 / started.elapsed().as_secs_f64()
}

/// Peak resident memory of this process, from `/proc/self/status`.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

macro_rules! bench_backend {
    ($label:expr, $conn:expr, $db:ty, $skip_clause:expr, $update_clause:expr) => {{
        let conn = $conn;
        let table = "bench_bulk";
        let reset = async |conn: &mut <$db as sqlx::Database>::Connection| {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *conn)
                .await
                .unwrap();
            let evens = (0..ROWS).step_by(2).map(|i| row(i, 1));
            BulkInsert::<Product>::new()
                .counts_only()
                .run(&mut *conn, evens)
                .await
                .unwrap();
        };
        let handwritten =
            async |conn: &mut <$db as sqlx::Database>::Connection, clause: &str, price: i64| {
                let mut tx = conn.begin().await.unwrap();
                let rows: Vec<Product> = all_rows(price).collect();
                for chunk in rows.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new(format!(
                        "INSERT INTO {table} (sku, name, price_cents) "
                    ));
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.sku.clone())
                            .push_bind(r.name.clone())
                            .push_bind(r.price_cents);
                    });
                    q.push(clause);
                    q.build().execute(&mut *tx).await.unwrap();
                }
                tx.commit().await.unwrap();
            };

        let mut lines = Vec::new();
        for (mode, clause, per_row) in [
            ("skip, counts only", $skip_clause, false),
            ("skip, per-row report", $skip_clause, true),
            ("update, counts only", $update_clause, false),
        ] {
            let mut best_lib = 0f64;
            let mut best_sqlx = 0f64;
            for _ in 0..2 {
                reset(&mut *conn).await;
                let started = Instant::now();
                let bulk = BulkInsert::<Product>::new();
                let bulk = if per_row { bulk } else { bulk.counts_only() };
                let bulk = if mode.starts_with("skip") {
                    bulk.skip_conflicts::<ProductBySku>()
                } else {
                    bulk.update_conflicts::<ProductBySku>(&[ProductField::PriceCents])
                };
                let report = bulk.run(&mut *conn, all_rows(2)).await.unwrap();
                best_lib = best_lib.max(rate(ROWS, started));
                assert_eq!(report.inserted, (ROWS / 2) as u64);

                reset(&mut *conn).await;
                let started = Instant::now();
                handwritten(&mut *conn, clause, 2).await;
                best_sqlx = best_sqlx.max(rate(ROWS, started));
            }
            lines.push(format!(
                "| {mode} | {best_lib:.0} | {best_sqlx:.0} (`{}`) | {:.2} |",
                clause.trim(),
                best_lib / best_sqlx
            ));
        }
        println!(
            "\n{}: {ROWS} rows, half already stored, chunks of {CHUNK}",
            $label
        );
        println!("| mode | library rows/s | hand-written sqlx rows/s | library / sqlx |");
        println!("|---|---:|---:|---:|");
        for line in lines {
            println!("{line}");
        }
    }};
}

/// PostgreSQL array binding: one `INSERT … SELECT * FROM UNNEST($1::text[], …)` per chunk, three
/// parameters whatever the chunk size, against multi-row `VALUES`; both hand-written, skip mode.
async fn unnest_versus_values(
    conn: &mut sqlx::PgConnection,
) -> Result<(), Box<dyn std::error::Error>> {
    let reset = async |conn: &mut sqlx::PgConnection| -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM bench_bulk")
            .execute(&mut *conn)
            .await?;
        let evens = (0..ROWS).step_by(2).map(|i| row(i, 1));
        BulkInsert::<Product>::new()
            .counts_only()
            .run(&mut *conn, evens)
            .await
            .expect("seed");
        Ok(())
    };
    let mut best_values = 0f64;
    let mut best_unnest = 0f64;
    let rows: Vec<Product> = all_rows(2).collect();
    for _ in 0..2 {
        reset(conn).await?;
        let started = Instant::now();
        let mut tx = conn.begin().await?;
        for chunk in rows.chunks(CHUNK) {
            let mut q = QueryBuilder::<sqlx::Postgres>::new(
                "INSERT INTO bench_bulk (sku, name, price_cents) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.sku.clone())
                    .push_bind(r.name.clone())
                    .push_bind(r.price_cents);
            });
            q.push(" ON CONFLICT (sku) DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        best_values = best_values.max(rate(ROWS, started));

        reset(conn).await?;
        let started = Instant::now();
        let mut tx = conn.begin().await?;
        for chunk in rows.chunks(CHUNK) {
            let skus: Vec<&str> = chunk.iter().map(|r| r.sku.as_str()).collect();
            let names: Vec<&str> = chunk.iter().map(|r| r.name.as_str()).collect();
            let prices: Vec<i64> = chunk.iter().map(|r| r.price_cents).collect();
            sqlx::query(
                "INSERT INTO bench_bulk (sku, name, price_cents) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[]) ON CONFLICT (sku) DO NOTHING",
            )
            .bind(&skus)
            .bind(&names)
            .bind(&prices)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        best_unnest = best_unnest.max(rate(ROWS, started));
    }
    println!(
        "| PostgreSQL, hand-written skip: multi-row VALUES {best_values:.0} rows/s, UNNEST arrays {best_unnest:.0} rows/s ({:.2}×) |",
        best_unnest / best_values
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let schema = Schema::new().model::<Product>();
    let dir = std::env::temp_dir().join(format!("bench_bulk_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("bench.sqlite"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);

    if args.first().map(String::as_str) == Some("--memory") {
        let n: usize = args
            .get(1)
            .and_then(|n| n.parse().ok())
            .ok_or("--memory takes a row count")?;
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        schema.create(&mut conn).await?;
        let before = peak_rss_kib();
        let started = Instant::now();
        let rows = (0..n).map(|i| row(i, 1));
        let report = BulkInsert::<Product>::new()
            .skip_conflicts::<ProductBySku>()
            .counts_only()
            .run(&mut conn, rows)
            .await?;
        println!(
            "{n} rows streamed (counts only): {} inserted in {:.1} s; peak RSS {} KiB (before the import: {} KiB)",
            report.inserted,
            started.elapsed().as_secs_f64(),
            peak_rss_kib(),
            before
        );
        std::fs::remove_dir_all(&dir)?;
        return Ok(());
    }

    {
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        schema.create(&mut conn).await?;
        bench_backend!(
            "SQLite (file, WAL, synchronous=NORMAL)",
            &mut conn,
            sqlx::Sqlite,
            " ON CONFLICT (sku) DO NOTHING",
            " ON CONFLICT (sku) DO UPDATE SET price_cents = excluded.price_cents"
        );
    }
    std::fs::remove_dir_all(&dir)?;
    for url in args {
        if url.starts_with("postgres") {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            sqlx::query("DROP TABLE IF EXISTS bench_bulk")
                .execute(&mut conn)
                .await?;
            schema.create(&mut conn).await?;
            bench_backend!(
                "PostgreSQL",
                &mut conn,
                sqlx::Postgres,
                " ON CONFLICT (sku) DO NOTHING",
                " ON CONFLICT (sku) DO UPDATE SET price_cents = excluded.price_cents"
            );
            unnest_versus_values(&mut conn).await?;
            sqlx::query("DROP TABLE bench_bulk")
                .execute(&mut conn)
                .await?;
        } else if url.starts_with("mysql") || url.starts_with("mariadb") {
            let mut conn = sqlx::MySqlConnection::connect(&url).await?;
            sqlx::query("DROP TABLE IF EXISTS bench_bulk")
                .execute(&mut conn)
                .await?;
            schema.create(&mut conn).await?;
            // What people write by hand on MySQL; the library refuses both forms, since they react to
            // every unique key (and IGNORE also hides NOT NULL and truncation errors).
            bench_backend!(
                "MariaDB",
                &mut conn,
                sqlx::MySql,
                " ON DUPLICATE KEY UPDATE id = id",
                " ON DUPLICATE KEY UPDATE price_cents = VALUES(price_cents)"
            );
            sqlx::query("DROP TABLE bench_bulk")
                .execute(&mut conn)
                .await?;
        } else {
            return Err(
                format!("unknown database URL {url}: expected postgres://… or mysql://…").into(),
            );
        }
    }
    Ok(())
}
