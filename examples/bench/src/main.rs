//! Benchmarks of model-runtime against hand-written sqlx, naive check-then-insert and SeaORM 2.x, in
//! one run, side by side, with the statements each call sends (counted from sqlx's own per-query
//! `tracing` events, so every contender is counted the same way).
//!
//! ```sh
//! cargo run --release -p model-bench -- postgres://postgres@127.0.0.1:5432/test mysql://root@127.0.0.1:3306/test
//! cargo run --release -p model-bench -- compile-cost   # only the compile-cost comparison
//! ```
//!
//! The first command runs everything, the compile-cost comparison last.
//!
//! SQLite (a file in WAL mode) always runs. Also measured: bulk insert against SeaORM's
//! `insert_many` and PostgreSQL `COPY`, a 16/64-task pool, and (`compile-cost`) the build time of 50
//! models deriving `Model` against 50 structs deriving serde.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use model_runtime::{Model, Outcome, Schema};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

const N: usize = 2000;

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

/// The same table as a SeaORM entity.
mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "bench_products")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub sku: String,
        pub name: String,
        pub price_cents: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

fn candidate(sku: String, price_cents: i64) -> Product {
    Product {
        id: 0,
        name: format!("name of {sku}"),
        sku,
        price_cents,
    }
}

/// Counts the statements sqlx sends (one `sqlx::query` event each), whoever sends them.
struct StatementCounter;
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

impl tracing::Subscriber for StatementCounter {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

struct Figure {
    name: &'static str,
    ops_per_sec: f64,
    statements_per_op: f64,
}

async fn measure<F>(name: &'static str, next: &mut usize, mut op: F) -> Figure
where
    F: AsyncFnMut(usize),
{
    let mut best = 0f64;
    let mut statements = 0;
    for _ in 0..2 {
        let first = *next;
        *next += N;
        let before = STATEMENTS.load(Ordering::Relaxed);
        let started = Instant::now();
        for i in first..first + N {
            op(i).await;
        }
        best = best.max(N as f64 / started.elapsed().as_secs_f64());
        statements = STATEMENTS.load(Ordering::Relaxed) - before;
    }
    Figure {
        name,
        ops_per_sec: best,
        statements_per_op: statements as f64 / N as f64,
    }
}

/// SeaORM's idiomatic get_or_create: find by the unique column, else insert with ON CONFLICT DO
/// NOTHING, else find again.
async fn seaorm_get_or_create(db: &DatabaseConnection, c: &Product) -> (entity::Model, bool) {
    let find = || entity::Entity::find().filter(entity::Column::Sku.eq(c.sku.clone()));
    if let Some(found) = find().one(db).await.unwrap() {
        return (found, false);
    }
    let row = entity::ActiveModel {
        sku: Set(c.sku.clone()),
        name: Set(c.name.clone()),
        price_cents: Set(c.price_cents),
        ..Default::default()
    };
    // `do_nothing_on` rather than `do_nothing`: on MySQL sea-query renders the latter as invalid
    // SQL, and polyfills the former as `ON DUPLICATE KEY UPDATE id = id`.
    let insert = entity::Entity::insert(row).on_conflict(
        sea_orm::sea_query::OnConflict::column(entity::Column::Sku)
            .do_nothing_on([entity::Column::Id])
            .to_owned(),
    );
    match insert.exec_with_returning(db).await {
        Ok(created) => (created, true),
        Err(error) => match find().one(db).await.unwrap() {
            Some(found) => (found, false),
            None => panic!("SeaORM insert failed and no row exists: {error}"),
        },
    }
}

/// SeaORM's idiomatic update_or_create: find, then update the active model or insert a new one.
async fn seaorm_update_or_create(db: &DatabaseConnection, c: &Product) -> (entity::Model, bool) {
    match entity::Entity::find()
        .filter(entity::Column::Sku.eq(c.sku.clone()))
        .one(db)
        .await
        .unwrap()
    {
        Some(found) => {
            let mut row: entity::ActiveModel = found.into();
            row.price_cents = Set(c.price_cents);
            (row.update(db).await.unwrap(), false)
        }
        None => {
            let row = entity::ActiveModel {
                sku: Set(c.sku.clone()),
                name: Set(c.name.clone()),
                price_cents: Set(c.price_cents),
                ..Default::default()
            };
            (row.insert(db).await.unwrap(), true)
        }
    }
}

fn print_table(label: &str, figures: &[Figure]) {
    println!("\n{label}");
    println!("| path | ops/s | statements/op | library / this |");
    println!("|---|---:|---:|---:|");
    let mut library = 0f64;
    for f in figures {
        if f.name.ends_with("library") {
            library = f.ops_per_sec;
        }
        let ratio = if f.name.ends_with("library") {
            String::new()
        } else {
            format!("{:.2}", library / f.ops_per_sec)
        };
        println!(
            "| {} | {:.0} | {:.2} | {ratio} |",
            f.name, f.ops_per_sec, f.statements_per_op
        );
    }
}

/// Sorted latencies' `q` quantile.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

macro_rules! bench_backend {
    ($label:expr, $pool:expr, $db:ty, $seaorm:expr, $placeholder:expr, $q:expr) => {{
        let pool = $pool;
        let seaorm: DatabaseConnection = $seaorm;
        let q = $q;
        let p = |i: usize| $placeholder(i);
        let select: std::sync::Arc<str> =
            format!("SELECT {q}id{q}, {q}sku{q}, {q}name{q}, {q}price_cents{q} FROM {q}bench_products{q} WHERE {q}sku{q} = {}", p(1)).into();
        let insert_plain: std::sync::Arc<str> = format!(
            "INSERT INTO {q}bench_products{q} ({q}sku{q}, {q}name{q}, {q}price_cents{q}) VALUES ({}, {}, {}) RETURNING {q}id{q}, {q}sku{q}, {q}name{q}, {q}price_cents{q}",
            p(1), p(2), p(3)
        ).into();
        type Row4 = (i64, String, String, i64);
        let mysql = q == '`';
        let cols = format!("{q}id{q}, {q}sku{q}, {q}name{q}, {q}price_cents{q}");
        let update_plain: std::sync::Arc<str> =
            format!("UPDATE {q}bench_products{q} SET {q}price_cents{q} = {} WHERE {q}sku{q} = {}", p(1), p(2)).into();
        let update: std::sync::Arc<str> = if mysql {
            std::sync::Arc::clone(&update_plain)
        } else {
            format!("{update_plain} RETURNING {cols}").into()
        };
        let select_for_update: std::sync::Arc<str> = if q == '"' && p(1) == "?" {
            // SQLite has no FOR UPDATE.
            std::sync::Arc::clone(&select)
        } else {
            format!("{select} FOR UPDATE").into()
        };
        let mut next = 0usize;
        for i in 0..N {
            candidate(format!("seed-{i}"), 1).insert(&pool).await.unwrap();
        }
        let hit = |i: usize| format!("seed-{}", i % N);
        let mut figures = Vec::new();

        figures.push(measure("get_or_create found: library", &mut next, async |i| {
            let (_, o) = Product::get_or_create_by_sku(&pool, &candidate(hit(i), 1)).await.unwrap();
            assert_eq!(o, Outcome::Found);
        }).await);
        figures.push(measure("get_or_create found: sqlx, same statements", &mut next, async |i| {
            let row: Option<Row4> = sqlx::query_as(sqlx::AssertSqlSafe(std::sync::Arc::clone(&select))).bind(hit(i)).fetch_optional(&pool).await.unwrap();
            assert!(row.is_some());
        }).await);
        figures.push(measure("get_or_create found: SeaORM", &mut next, async |i| {
            let (_, created) = seaorm_get_or_create(&seaorm, &candidate(hit(i), 1)).await;
            assert!(!created);
        }).await);

        figures.push(measure("get_or_create created: library", &mut next, async |i| {
            let (_, o) = Product::get_or_create_by_sku(&pool, &candidate(format!("new-{i}"), 1)).await.unwrap();
            assert_eq!(o, Outcome::Created);
        }).await);
        figures.push(measure("get_or_create created: naive check-then-insert (Django)", &mut next, async |i| {
            let c = candidate(format!("new-{i}"), 1);
            let row: Option<Row4> = sqlx::query_as(sqlx::AssertSqlSafe(std::sync::Arc::clone(&select))).bind(&c.sku).fetch_optional(&pool).await.unwrap();
            assert!(row.is_none());
            let mut tx = pool.begin().await.unwrap();
            let _: Row4 = sqlx::query_as(sqlx::AssertSqlSafe(std::sync::Arc::clone(&insert_plain)))
                .bind(&c.sku).bind(&c.name).bind(c.price_cents).fetch_one(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }).await);
        figures.push(measure("get_or_create created: SeaORM", &mut next, async |i| {
            let (_, created) = seaorm_get_or_create(&seaorm, &candidate(format!("new-{i}"), 1)).await;
            assert!(created);
        }).await);

        let fields = [ProductField::PriceCents];
        figures.push(measure("update_or_create updated: library", &mut next, async |i| {
            let (_, o) = Product::update_or_create_by_sku(&pool, &candidate(hit(i), i as i64), &fields).await.unwrap();
            assert_eq!(o, Outcome::Found);
        }).await);
        figures.push(measure("update_or_create updated: sqlx, same statements", &mut next, async |i| {
            let c = candidate(hit(i), i as i64);
            if mysql {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(std::sync::Arc::clone(&update))).bind(c.price_cents).bind(&c.sku).execute(&mut *tx).await.unwrap();
                let _: Row4 = sqlx::query_as(sqlx::AssertSqlSafe(std::sync::Arc::clone(&select))).bind(&c.sku).fetch_one(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
            } else {
                let row: Option<Row4> = sqlx::query_as(sqlx::AssertSqlSafe(std::sync::Arc::clone(&update))).bind(c.price_cents).bind(&c.sku).fetch_optional(&pool).await.unwrap();
                assert!(row.is_some());
            }
        }).await);
        figures.push(measure("update_or_create updated: naive locked read then update (Django)", &mut next, async |i| {
            let c = candidate(hit(i), i as i64);
            let mut tx = pool.begin().await.unwrap();
            let row: Option<Row4> = sqlx::query_as(sqlx::AssertSqlSafe(std::sync::Arc::clone(&select_for_update))).bind(&c.sku).fetch_optional(&mut *tx).await.unwrap();
            assert!(row.is_some());
            sqlx::query(sqlx::AssertSqlSafe(std::sync::Arc::clone(&update_plain))).bind(c.price_cents).bind(&c.sku).execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }).await);
        figures.push(measure("update_or_create updated: SeaORM", &mut next, async |i| {
            let (_, created) = seaorm_update_or_create(&seaorm, &candidate(hit(i), i as i64)).await;
            assert!(!created);
        }).await);
        figures.push(measure("update_or_create created: library", &mut next, async |i| {
            let (_, o) = Product::update_or_create_by_sku(&pool, &candidate(format!("up-{i}"), 1), &fields).await.unwrap();
            assert_eq!(o, Outcome::Created);
        }).await);
        figures.push(measure("update_or_create created: sqlx, same statements", &mut next, async |i| {
            let c = candidate(format!("up-sqlx-{i}"), 1);
            if mysql {
                let mut tx = pool.begin().await.unwrap();
                let done = sqlx::query(sqlx::AssertSqlSafe(std::sync::Arc::clone(&update))).bind(c.price_cents).bind(&c.sku).execute(&mut *tx).await.unwrap();
                assert_eq!(done.rows_affected(), 0);
                tx.commit().await.unwrap();
            } else {
                let row: Option<Row4> = sqlx::query_as(sqlx::AssertSqlSafe(std::sync::Arc::clone(&update))).bind(c.price_cents).bind(&c.sku).fetch_optional(&pool).await.unwrap();
                assert!(row.is_none());
            }
            let _: Row4 = sqlx::query_as(sqlx::AssertSqlSafe(std::sync::Arc::clone(&insert_plain)))
                .bind(&c.sku).bind(&c.name).bind(c.price_cents).fetch_one(&pool).await.unwrap();
        }).await);
        figures.push(measure("update_or_create created: naive locked read then insert (Django)", &mut next, async |i| {
            let c = candidate(format!("up-naive-{i}"), 1);
            let mut tx = pool.begin().await.unwrap();
            let row: Option<Row4> = sqlx::query_as(sqlx::AssertSqlSafe(std::sync::Arc::clone(&select_for_update))).bind(&c.sku).fetch_optional(&mut *tx).await.unwrap();
            assert!(row.is_none());
            let _: Row4 = sqlx::query_as(sqlx::AssertSqlSafe(std::sync::Arc::clone(&insert_plain)))
                .bind(&c.sku).bind(&c.name).bind(c.price_cents).fetch_one(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }).await);
        figures.push(measure("update_or_create created: SeaORM", &mut next, async |i| {
            let (_, created) = seaorm_update_or_create(&seaorm, &candidate(format!("up-{i}"), 1)).await;
            assert!(created);
        }).await);
        print_table($label, &figures);
    }};
}

/// `tasks` tasks share a pool of 16 connections and call get_or_create over 2N keys, half of them
/// stored: operations per second and latency quantiles.
async fn concurrency<DB: model_runtime::Backend>(
    label: &str,
    pool: &sqlx::Pool<DB>,
    tasks: usize,
    round: usize,
) {
    let per_task = 400;
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task);
            let mut x = (t as u64 + 1) * 0x9e37_79b9_7f4a_7c15 + round as u64;
            for _ in 0..per_task {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = (x % (2 * N as u64)) as usize;
                let sku = if k < N {
                    format!("seed-{k}")
                } else {
                    format!("conc-{round}-{k}")
                };
                let started = Instant::now();
                Product::get_or_create_by_sku(&pool, &candidate(sku, 1))
                    .await
                    .unwrap();
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "| {label} | {tasks} | {:.0} | {:.2} | {:.2} |",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        quantile(&latencies, 0.5).as_secs_f64() * 1e3,
        quantile(&latencies, 0.99).as_secs_f64() * 1e3
    );
}

/// Bulk insert of `BULK_ROWS` rows, half of them stored, in chunks of 1000: the library (counts
/// only) against SeaORM's `insert_many(…).on_conflict(…)` per chunk, skip and update modes; rows/s.
const BULK_ROWS: usize = 100_000;

fn bulk_row(i: usize, price: i64) -> Product {
    Product {
        id: 0,
        sku: format!("B{i:08}"),
        name: format!("bulk {i}"),
        price_cents: price,
    }
}

async fn bulk_reset<DB: model_runtime::Backend>(
    pool: &sqlx::Pool<DB>,
    seaorm: &DatabaseConnection,
) {
    entity::Entity::delete_many().exec(seaorm).await.unwrap();
    let evens = (0..BULK_ROWS).step_by(2).map(|i| bulk_row(i, 1));
    model_runtime::BulkInsert::<Product>::new()
        .counts_only()
        .run(pool, evens)
        .await
        .unwrap();
}

async fn bulk<DB: model_runtime::Backend>(
    label: &str,
    pool: &sqlx::Pool<DB>,
    seaorm: &DatabaseConnection,
    handwritten: [f64; 2],
) -> Vec<String> {
    use sea_orm::sea_query::OnConflict;
    let mut lines = Vec::new();
    for update in [false, true] {
        let mut best_lib = 0f64;
        let mut best_orm = 0f64;
        let mut statements = 0;
        for _ in 0..2 {
            bulk_reset(pool, seaorm).await;
            let started = Instant::now();
            let bulk = model_runtime::BulkInsert::<Product>::new().counts_only();
            let bulk = if update {
                bulk.update_conflicts::<ProductBySku>(&[ProductField::PriceCents])
            } else {
                bulk.skip_conflicts::<ProductBySku>()
            };
            let before = STATEMENTS.load(Ordering::Relaxed);
            bulk.run(pool, (0..BULK_ROWS).map(|i| bulk_row(i, 2)))
                .await
                .unwrap();
            statements = STATEMENTS.load(Ordering::Relaxed) - before;
            best_lib = best_lib.max(BULK_ROWS as f64 / started.elapsed().as_secs_f64());

            bulk_reset(pool, seaorm).await;
            let started = Instant::now();
            let rows: Vec<Product> = (0..BULK_ROWS).map(|i| bulk_row(i, 2)).collect();
            let tx = sea_orm::TransactionTrait::begin(seaorm).await.unwrap();
            for chunk in rows.chunks(1000) {
                let models = chunk.iter().map(|r| entity::ActiveModel {
                    sku: Set(r.sku.clone()),
                    name: Set(r.name.clone()),
                    price_cents: Set(r.price_cents),
                    ..Default::default()
                });
                let conflict = if update {
                    OnConflict::column(entity::Column::Sku)
                        .update_column(entity::Column::PriceCents)
                        .to_owned()
                } else {
                    OnConflict::column(entity::Column::Sku)
                        .do_nothing_on([entity::Column::Id])
                        .to_owned()
                };
                entity::Entity::insert_many(models)
                    .on_conflict(conflict)
                    .exec_without_returning(&tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            best_orm = best_orm.max(BULK_ROWS as f64 / started.elapsed().as_secs_f64());
        }
        let sqlx_rate = handwritten[usize::from(update)];
        lines.push(format!(
            "| {label} | {} | {best_lib:.0} | {statements} | {sqlx_rate:.0} | {:.2} | {best_orm:.0} | {:.2} |",
            if update { "update" } else { "skip" },
            best_lib / sqlx_rate,
            best_lib / best_orm
        ));
    }
    lines
}

/// PostgreSQL's physical floor: `COPY` of just the rows a skip-mode import must add (the other half
/// is stored), timed over the whole input, as rows of input per second.
async fn copy_floor(pool: &sqlx::PgPool, seaorm: &DatabaseConnection) -> f64 {
    let mut best = 0f64;
    for _ in 0..2 {
        bulk_reset(pool, seaorm).await;
        let mut csv = String::new();
        for i in (1..BULK_ROWS).step_by(2) {
            let r = bulk_row(i, 2);
            csv.push_str(&format!("{},{},{}\n", r.sku, r.name, r.price_cents));
        }
        let started = Instant::now();
        let mut conn = pool.acquire().await.unwrap();
        let mut copy = conn
            .copy_in_raw("COPY bench_products (sku, name, price_cents) FROM STDIN (FORMAT csv)")
            .await
            .unwrap();
        copy.send(csv.as_bytes()).await.unwrap();
        copy.finish().await.unwrap();
        best = best.max(BULK_ROWS as f64 / started.elapsed().as_secs_f64());
    }
    best
}

/// Hand-written sqlx: a multi-row `INSERT … VALUES` per 1000 rows with the conflict clause people
/// write by hand, in one transaction; [skip rows/s, update rows/s].
macro_rules! handwritten_bulk {
    ($pool:expr, $seaorm:expr, $db:ty, $skip:expr, $update:expr) => {{
        let mut rates = [0f64; 2];
        let rows: Vec<Product> = (0..BULK_ROWS).map(|i| bulk_row(i, 2)).collect();
        for (slot, clause) in [(0usize, $skip), (1, $update)] {
            for _ in 0..2 {
                bulk_reset($pool, $seaorm).await;
                let started = Instant::now();
                let mut tx = $pool.begin().await.unwrap();
                for chunk in rows.chunks(1000) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO bench_products (sku, name, price_cents) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.sku.clone())
                            .push_bind(r.name.clone())
                            .push_bind(r.price_cents);
                    });
                    q.push(clause);
                    q.build().execute(&mut *tx).await.unwrap();
                }
                tx.commit().await.unwrap();
                rates[slot] = rates[slot].max(BULK_ROWS as f64 / started.elapsed().as_secs_f64());
            }
        }
        rates
    }};
}

fn concurrency_header() {
    println!("\n| backend | tasks | ops/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|");
}

/// Build time of a crate of 50 models deriving `Model`, against the same 50 structs deriving serde's
/// `Serialize` and `Deserialize`: dependencies are built first, then only the crate itself is rebuilt
/// (best of 3), in a target directory of its own under `target/`.
fn compile_cost() -> Result<(), Box<dyn std::error::Error>> {
    use std::process::Command;
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()?;
    let root = workspace.join("target/compile-cost");
    let runtime = workspace.join("model-runtime");
    // The toolchain building this binary, by absolute path: a rustup proxy would obey any
    // `rust-toolchain` file it meets in a dependency's directory.
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(&workspace)
        .output()?;
    let rustc =
        std::path::PathBuf::from(String::from_utf8(sysroot.stdout)?.trim()).join("bin/rustc");
    let mut results = Vec::new();
    for (name, deps, derive, attrs) in [
        (
            "fifty_models",
            format!(
                "model-runtime = {{ path = {:?} }}",
                runtime.display().to_string()
            ),
            "model_runtime::Model",
            true,
        ),
        (
            "fifty_serde",
            "serde = { version = \"1\", features = [\"derive\"] }".to_owned(),
            "serde::Serialize, serde::Deserialize",
            false,
        ),
    ] {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("src"))?;
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n\n[dependencies]\n{deps}\n"
            ),
        )?;
        let mut src = String::new();
        for i in 0..50 {
            src.push_str(&format!("#[derive({derive})]\n"));
            if attrs {
                src.push_str(&format!(
                    "#[model(table = \"t{i}\")]\n#[unique_together(name, group_id)]\n"
                ));
            }
            src.push_str(&format!("pub struct Model{i} {{\n"));
            if attrs {
                src.push_str("    #[model(primary_key, auto_increment)]\n");
            }
            src.push_str("    pub id: i64,\n");
            if attrs {
                src.push_str("    #[unique]\n    #[model(max_length = 40)]\n");
            }
            src.push_str("    pub code: String,\n");
            if attrs {
                src.push_str("    #[model(max_length = 100)]\n");
            }
            src.push_str("    pub name: String,\n    pub group_id: i32,\n    pub price: f64,\n    pub note: Option<String>,\n}\n\n");
        }
        std::fs::write(dir.join("src/lib.rs"), &src)?;
        let build = || {
            Command::new(env!("CARGO"))
                .args(["build", "--quiet"])
                .current_dir(&dir)
                .env("CARGO_TARGET_DIR", root.join("target"))
                .env("RUSTC", &rustc)
                .status()
        };
        if !build()?.success() {
            return Err(format!("building {name} failed").into());
        }
        let mut best = f64::MAX;
        for _ in 0..3 {
            std::fs::write(dir.join("src/lib.rs"), format!("{src}\n"))?;
            let started = Instant::now();
            if !build()?.success() {
                return Err(format!("rebuilding {name} failed").into());
            }
            best = best.min(started.elapsed().as_secs_f64());
            // Make the next write a change, so that cargo rebuilds.
            std::fs::write(dir.join("src/lib.rs"), &src)?;
        }
        results.push((name, best));
    }
    println!("| crate | debug build of the crate alone, s |");
    println!("|---|---:|");
    for (name, secs) in &results {
        println!("| {name} | {secs:.2} |");
    }
    println!("ratio Model / serde: {:.2}", results[0].1 / results[1].1);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("compile-cost") {
        return compile_cost();
    }
    tracing::subscriber::set_global_default(StatementCounter)?;
    let schema = Schema::new().model::<Product>();
    let urls: Vec<String> = std::env::args().skip(1).collect();
    let mut bulk_lines: Vec<String> = Vec::new();
    let mut copy_rate: Option<f64> = None;

    let dir = std::env::temp_dir().join(format!("model_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("bench.sqlite"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30));
    {
        let one = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        schema.create(&one).await?;
        let seaorm = sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(one.clone());
        bench_backend!(
            "SQLite (file, WAL), one connection",
            one.clone(),
            sqlx::Sqlite,
            seaorm.clone(),
            |_| "?".to_owned(),
            '"'
        );
        let handwritten = handwritten_bulk!(
            &one,
            &seaorm,
            sqlx::Sqlite,
            " ON CONFLICT (sku) DO NOTHING",
            " ON CONFLICT (sku) DO UPDATE SET price_cents = excluded.price_cents"
        );
        bulk_lines.extend(bulk("SQLite", &one, &seaorm, handwritten).await);
        one.close().await;
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await?;
        concurrency_header();
        for (round, tasks) in [16, 64].into_iter().enumerate() {
            concurrency("SQLite", &pool, tasks, round).await;
        }
    }
    std::fs::remove_dir_all(&dir)?;
    for url in urls {
        if url.starts_with("postgres") {
            let one = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await?;
            sqlx::query("DROP TABLE IF EXISTS bench_products")
                .execute(&one)
                .await?;
            schema.create(&one).await?;
            let seaorm = sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(one.clone());
            bench_backend!(
                "PostgreSQL, one connection",
                one.clone(),
                sqlx::Postgres,
                seaorm.clone(),
                |i| format!("${i}"),
                '"'
            );
            let handwritten = handwritten_bulk!(
                &one,
                &seaorm,
                sqlx::Postgres,
                " ON CONFLICT (sku) DO NOTHING",
                " ON CONFLICT (sku) DO UPDATE SET price_cents = excluded.price_cents"
            );
            bulk_lines.extend(bulk("PostgreSQL", &one, &seaorm, handwritten).await);
            copy_rate = Some(copy_floor(&one, &seaorm).await);
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(&url)
                .await?;
            concurrency_header();
            for (round, tasks) in [16, 64].into_iter().enumerate() {
                concurrency("PostgreSQL", &pool, tasks, round).await;
            }
            sqlx::query("DROP TABLE bench_products")
                .execute(&pool)
                .await?;
        } else if url.starts_with("mysql") || url.starts_with("mariadb") {
            let one = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await?;
            sqlx::query("DROP TABLE IF EXISTS bench_products")
                .execute(&one)
                .await?;
            schema.create(&one).await?;
            let seaorm = sea_orm::SqlxMySqlConnector::from_sqlx_mysql_pool(one.clone());
            bench_backend!(
                "MariaDB, one connection",
                one.clone(),
                sqlx::MySql,
                seaorm.clone(),
                |_| "?".to_owned(),
                '`'
            );
            // What people write by hand on MySQL; the library refuses both, as they react to any key.
            let handwritten = handwritten_bulk!(
                &one,
                &seaorm,
                sqlx::MySql,
                " ON DUPLICATE KEY UPDATE id = id",
                " ON DUPLICATE KEY UPDATE price_cents = VALUES(price_cents)"
            );
            bulk_lines.extend(bulk("MariaDB", &one, &seaorm, handwritten).await);
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(16)
                .connect(&url)
                .await?;
            concurrency_header();
            for (round, tasks) in [16, 64].into_iter().enumerate() {
                concurrency("MariaDB", &pool, tasks, round).await;
            }
            sqlx::query("DROP TABLE bench_products")
                .execute(&pool)
                .await?;
        } else {
            return Err(
                format!("unknown database URL {url}: expected postgres://… or mysql://…").into(),
            );
        }
    }
    println!("\nBulk insert, {BULK_ROWS} rows, half already stored, chunks of 1000 (counts only)");
    println!(
        "| backend | mode | library rows/s | library statements (100 chunks) | hand-written sqlx rows/s | library / sqlx | SeaORM insert_many rows/s | library / SeaORM |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for line in bulk_lines {
        println!("{line}");
    }
    if let Some(rate) = copy_rate {
        println!("PostgreSQL COPY of the missing half, as input rows/s: {rate:.0}");
    }
    println!("\nCompile cost");
    compile_cost()?;
    Ok(())
}
