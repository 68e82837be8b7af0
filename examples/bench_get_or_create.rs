//! Benchmark: `get_or_create` / `update_or_create` against hand-written sqlx sending the same
//! statements, against naive check-then-insert, and against insert-first, on one connection; with
//! the statements each call sends, counted from the runtime's own `tracing` events.
//!
//! ```sh
//! cargo run --release --example bench_get_or_create                     # SQLite (file, WAL)
//! cargo run --release --example bench_get_or_create -- \
//!     postgres://postgres@127.0.0.1:5432/test mysql://root@127.0.0.1:3306/test
//! ```
//!
//! Each figure is the best of 6 rounds of `N` calls, spread over 3 passes of the whole table; the table prints ops/s and the ratio of the
//! library to hand-written sqlx measured in the same run (machines here are noisy: the ratio is
//! what counts). A benchmark, never a test: it asserts nothing about time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use model_runtime::{Model, Outcome, Schema, Strategy};
use std::sync::Arc;

use sqlx::Connection;

const N: usize = 3000;
const ROUNDS: usize = 2;
/// The whole table is measured this many times, each row keeping its best: drift on a noisy machine
/// then touches the library and the hand-written side alike.
const PASSES: usize = 3;

#[derive(Model, Debug, Clone)]
#[model(table = "bench_products")]
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

fn candidate(sku: String, price_cents: i64) -> Product {
    Product {
        id: 0,
        name: format!("name of {sku}"),
        sku,
        price_cents,
    }
}

/// Counts the statements the runtime logs (target `model_runtime::sql`, one event per statement).
struct StatementCounter;
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

impl tracing::Subscriber for StatementCounter {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "model_runtime::sql"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        // The transaction helper's retry notes are not statements.
        if event.metadata().fields().field("elapsed_us").is_some() {
            STATEMENTS.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

struct Figure {
    name: String,
    ops_per_sec: f64,
    /// This process's CPU time per call (all threads: SQLite runs on sqlx's worker thread), in µs:
    /// far steadier than wall time on a shared machine, and what the library itself adds.
    cpu_us_per_op: f64,
    statements_per_op: f64,
}

/// CPU time this process has used, all threads.
fn process_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_PROCESS_CPUTIME_ID exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `op(i)` for `N` fresh indexes per round and keeps the best round.
async fn measure<F>(name: &str, next_index: &mut usize, mut op: F) -> Figure
where
    F: AsyncFnMut(usize),
{
    let mut best = 0f64;
    let mut best_cpu = f64::MAX;
    let mut statements = 0;
    for _ in 0..ROUNDS {
        let first = *next_index;
        *next_index += N;
        let before = STATEMENTS.load(Ordering::Relaxed);
        let started = Instant::now();
        let cpu = process_cpu();
        for i in first..first + N {
            op(i).await;
        }
        let rate = N as f64 / started.elapsed().as_secs_f64();
        best_cpu = best_cpu.min((process_cpu() - cpu).as_secs_f64() * 1e6 / N as f64);
        statements = STATEMENTS.load(Ordering::Relaxed) - before;
        best = best.max(rate);
    }
    Figure {
        name: name.to_owned(),
        ops_per_sec: best,
        cpu_us_per_op: best_cpu,
        statements_per_op: statements as f64 / N as f64,
    }
}

/// Hand-written SQL for one dialect: the same statements the library sends.
struct Sql {
    select: Arc<str>,
    insert_do_nothing: Arc<str>,
    insert_plain: Arc<str>,
    update: Arc<str>,
    update_then_select: bool,
}

/// What the hand-written side decodes each row into, as the library decodes into `Product`.
type Row4 = (i64, String, String, i64);

fn sql_for(dialect: model_runtime::Dialect) -> Sql {
    use model_runtime::Dialect::*;
    let (q, p): (char, fn(usize) -> String) = match dialect {
        MySql => ('`', |_| "?".to_owned()),
        Postgres => ('"', |i| format!("${i}")),
        Sqlite => ('"', |_| "?".to_owned()),
    };
    let cols = format!("{q}id{q}, {q}sku{q}, {q}name{q}, {q}price_cents{q}");
    let table = format!("{q}bench_products{q}");
    let insert = format!(
        "INSERT INTO {table} ({q}sku{q}, {q}name{q}, {q}price_cents{q}) VALUES ({}, {}, {})",
        p(1),
        p(2),
        p(3)
    );
    Sql {
        select: format!("SELECT {cols} FROM {table} WHERE {q}sku{q} = {}", p(1)).into(),
        insert_do_nothing: format!("{insert} ON CONFLICT DO NOTHING RETURNING {cols}").into(),
        insert_plain: format!("{insert} RETURNING {cols}").into(),
        update: if dialect == MySql {
            format!("UPDATE {table} SET {q}price_cents{q} = ? WHERE {q}sku{q} = ?").into()
        } else {
            format!(
                "UPDATE {table} SET {q}price_cents{q} = {} WHERE {q}sku{q} = {} RETURNING {cols}",
                p(1),
                p(2)
            )
            .into()
        },
        update_then_select: dialect == MySql,
    }
}

macro_rules! bench_backend {
    ($label:expr, $conn:expr, $db:ty) => {{
        let conn = $conn;
        let dialect = <$db as model_runtime::Backend>::DIALECT;
        let sql = sql_for(dialect);
        let mut figures = Vec::new();
        let mut next = 0usize;
        let sku = |prefix: &str, i: usize| format!("{prefix}-{i}");

        // Seed the keys the found paths will hit.
        let seeded = N;
        for i in 0..seeded {
            candidate(sku("seed", i), 1).insert(&mut *conn).await.unwrap();
        }
        let hit = |i: usize| sku("seed", i % seeded);

        for _pass in 0..PASSES {
        // get_or_create, found.
        figures.push(measure("get_or_create found: library", &mut next, async |i| {
            let c = candidate(hit(i), 1);
                let (_, o) = Product::get_or_create_by_sku(&mut *conn, &c).await.unwrap();
                assert_eq!(o, Outcome::Found);
        }).await);
        figures.push(measure("get_or_create found: sqlx, same statements", &mut next, async |i| {
            let c = candidate(hit(i), 1);
                let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.select))).bind(&c.sku).fetch_optional(&mut *conn).await.unwrap();
                assert!(row.is_some());
        }).await);
        figures.push(measure("get_or_create found: library, insert-first strategy", &mut next, async |i| {
            let c = candidate(hit(i), 1);
            let (_, o) = model_runtime::get_or_create_with::<ProductBySku>(&mut *conn, &c, Strategy::InsertFirst).await.unwrap();
            assert_eq!(o, Outcome::Found);
        }).await);
        if dialect != model_runtime::Dialect::MySql {
            figures.push(measure("get_or_create found: sqlx, insert-first", &mut next, async |i| {
                let c = candidate(hit(i), 1);
                    let inserted = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.insert_do_nothing)))
                        .bind(&c.sku).bind(&c.name).bind(c.price_cents)
                        .fetch_optional(&mut *conn).await.unwrap();
                    assert!(inserted.is_none());
                    let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.select))).bind(&c.sku).fetch_optional(&mut *conn).await.unwrap();
                    assert!(row.is_some());
            }).await);
        }

        // get_or_create, created.
        figures.push(measure("get_or_create created: library", &mut next, async |i| {
            let c = candidate(sku("new", i), 1);
                let (_, o) = Product::get_or_create_by_sku(&mut *conn, &c).await.unwrap();
                assert_eq!(o, Outcome::Created);
        }).await);
        figures.push(measure("get_or_create created: sqlx, same statements", &mut next, async |i| {
            let c = candidate(sku("new", i), 1);
                let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.select))).bind(&c.sku).fetch_optional(&mut *conn).await.unwrap();
                assert!(row.is_none());
                let insert = if dialect == model_runtime::Dialect::MySql { &sql.insert_plain } else { &sql.insert_do_nothing };
                let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(insert)))
                    .bind(&c.sku).bind(&c.name).bind(c.price_cents)
                    .fetch_optional(&mut *conn).await.unwrap();
                assert!(row.is_some());
        }).await);
        figures.push(measure("get_or_create created: sqlx, naive check-then-insert in a transaction (Django)", &mut next, async |i| {
            let c = candidate(sku("new", i), 1);
                let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.select))).bind(&c.sku).fetch_optional(&mut *conn).await.unwrap();
                assert!(row.is_none());
                let mut tx = conn.begin().await.unwrap();
                let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.insert_plain)))
                    .bind(&c.sku).bind(&c.name).bind(c.price_cents)
                    .fetch_optional(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
                assert!(row.is_some());
        }).await);
        figures.push(measure("get_or_create created: library, insert-first strategy", &mut next, async |i| {
            let c = candidate(sku("new", i), 1);
            let (_, o) = model_runtime::get_or_create_with::<ProductBySku>(&mut *conn, &c, Strategy::InsertFirst).await.unwrap();
            assert_eq!(o, Outcome::Created);
        }).await);
        if dialect != model_runtime::Dialect::MySql {
            figures.push(measure("get_or_create created: sqlx, insert-first", &mut next, async |i| {
                let c = candidate(sku("new", i), 1);
                    let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.insert_do_nothing)))
                        .bind(&c.sku).bind(&c.name).bind(c.price_cents)
                        .fetch_optional(&mut *conn).await.unwrap();
                    assert!(row.is_some());
            }).await);
        }

        // update_or_create, updated.
        let fields = [ProductField::PriceCents];
        figures.push(measure("update_or_create updated: library", &mut next, async |i| {
            let c = candidate(hit(i), i as i64);
                let (row, o) = Product::update_or_create_by_sku(&mut *conn, &c, &fields).await.unwrap();
                assert_eq!((o, row.price_cents), (Outcome::Found, i as i64));
        }).await);
        figures.push(measure("update_or_create updated: sqlx, same statements", &mut next, async |i| {
            let c = candidate(hit(i), i as i64);
                if sql.update_then_select {
                    let mut tx = conn.begin().await.unwrap();
                    let done = sqlx::query(sqlx::AssertSqlSafe(Arc::clone(&sql.update))).bind(c.price_cents).bind(&c.sku).execute(&mut *tx).await.unwrap();
                    assert_eq!(done.rows_affected(), 1);
                    let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.select))).bind(&c.sku).fetch_one(&mut *tx).await.unwrap();
                    tx.commit().await.unwrap();
                    assert_eq!(row.3, i as i64);
                } else {
                    let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.update))).bind(c.price_cents).bind(&c.sku).fetch_optional(&mut *conn).await.unwrap();
                    assert!(row.is_some());
                }
        }).await);

        // update_or_create, created.
        figures.push(measure("update_or_create created: library", &mut next, async |i| {
            let c = candidate(sku("upsert", i), 1);
                let (_, o) = Product::update_or_create_by_sku(&mut *conn, &c, &fields).await.unwrap();
                assert_eq!(o, Outcome::Created);
        }).await);
        figures.push(measure("update_or_create created: sqlx, same statements", &mut next, async |i| {
            let c = candidate(sku("upsert", i), 1);
                if sql.update_then_select {
                    let mut tx = conn.begin().await.unwrap();
                    let done = sqlx::query(sqlx::AssertSqlSafe(Arc::clone(&sql.update))).bind(c.price_cents).bind(&c.sku).execute(&mut *tx).await.unwrap();
                    assert_eq!(done.rows_affected(), 0);
                    tx.commit().await.unwrap();
                    let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.insert_plain)))
                        .bind(&c.sku).bind(&c.name).bind(c.price_cents)
                        .fetch_optional(&mut *conn).await.unwrap();
                    assert!(row.is_some());
                } else {
                    let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.update))).bind(c.price_cents).bind(&c.sku).fetch_optional(&mut *conn).await.unwrap();
                    assert!(row.is_none());
                    let row = sqlx::query_as::<_, Row4>(sqlx::AssertSqlSafe(Arc::clone(&sql.insert_do_nothing)))
                        .bind(&c.sku).bind(&c.name).bind(c.price_cents)
                        .fetch_optional(&mut *conn).await.unwrap();
                    assert!(row.is_some());
                }
        }).await);

        }
        print_table($label, &best_of(figures));
    }};
}

/// Keeps, for each row name, its best figure, in first-seen order.
fn best_of(figures: Vec<Figure>) -> Vec<Figure> {
    let mut out: Vec<Figure> = Vec::new();
    for f in figures {
        match out.iter_mut().find(|o| o.name == f.name) {
            Some(o) => {
                o.ops_per_sec = o.ops_per_sec.max(f.ops_per_sec);
                o.cpu_us_per_op = o.cpu_us_per_op.min(f.cpu_us_per_op);
            }
            None => out.push(f),
        }
    }
    out
}

fn print_table(label: &str, figures: &[Figure]) {
    println!("\n{label}");
    println!(
        "| path | ops/s | CPU µs/op | statements/op | ops/s library / sqlx | CPU µs/op library − sqlx |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut library: Option<&Figure> = None;
    for f in figures {
        let is_library = f.name.ends_with("library");
        let (ratio, extra) = match library {
            Some(lib) if f.name.ends_with("same statements") => (
                format!("{:.2}", lib.ops_per_sec / f.ops_per_sec),
                format!("{:+.1}", lib.cpu_us_per_op - f.cpu_us_per_op),
            ),
            _ => (String::new(), String::new()),
        };
        if is_library {
            library = Some(f);
        }
        let statements = if is_library {
            format!("{:.2}", f.statements_per_op)
        } else {
            String::new()
        };
        println!(
            "| {} | {:.0} | {:.1} | {statements} | {ratio} | {extra} |",
            f.name, f.ops_per_sec, f.cpu_us_per_op
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing::subscriber::set_global_default(StatementCounter)?;
    let schema = Schema::new().model::<Product>();
    let urls: Vec<String> = std::env::args().skip(1).collect();

    {
        let dir = std::env::temp_dir().join(format!("bench_get_or_create_{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("bench.sqlite"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        schema.create(&mut conn).await?;
        bench_backend!(
            "SQLite (file, WAL, synchronous=NORMAL)",
            &mut conn,
            sqlx::Sqlite
        );
        std::fs::remove_dir_all(&dir)?;
    }
    for url in urls {
        if url.starts_with("postgres") {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            sqlx::query("DROP TABLE IF EXISTS bench_products")
                .execute(&mut conn)
                .await?;
            schema.create(&mut conn).await?;
            bench_backend!("PostgreSQL", &mut conn, sqlx::Postgres);
            sqlx::query("DROP TABLE bench_products")
                .execute(&mut conn)
                .await?;
        } else if url.starts_with("mysql") || url.starts_with("mariadb") {
            let mut conn = sqlx::MySqlConnection::connect(&url).await?;
            sqlx::query("DROP TABLE IF EXISTS bench_products")
                .execute(&mut conn)
                .await?;
            schema.create(&mut conn).await?;
            bench_backend!("MariaDB", &mut conn, sqlx::MySql);
            sqlx::query("DROP TABLE bench_products")
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
