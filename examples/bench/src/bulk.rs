//! `bulk`: `BulkInsert` of `--rows` rows, half of them already stored, in chunks of its default
//! size (or `--batch`) in one transaction; skip and update modes, counts only and per-row report; against a hand-written
//! multi-row `INSERT … VALUES` with the conflict clause people write by hand, SeaORM's
//! `insert_many(…).on_conflict(…)`, and on PostgreSQL `UNNEST` arrays and `COPY`.

use std::any::Any;

use model_runtime::BulkInsert;

use crate::args;
use crate::contenders;
use crate::counter;
use crate::model::{Product, ProductBySku, ProductField, TABLE, bulk_row};
use crate::stats::Stopwatch;
use crate::target::{Db, Side, Target, Visit};
use crate::{Result, ensure};

pub struct Bulk<'a>(pub &'a args::Bulk);

struct Line {
    mode: &'static str,
    path: String,
    rows_per_sec: f64,
    statements: u64,
}

struct Lines<'t, DB: Db> {
    target: &'t Target<DB>,
    opts: &'t args::Bulk,
    lines: Vec<Line>,
}

impl<DB: Db> Lines<'_, DB> {
    /// Empties the table and stores the even rows (price 1), uncounted.
    async fn reset(&self) -> Result<()> {
        let pool = &self.target.timed.pool;
        DB::plain(pool, format!("DELETE FROM {TABLE}")).await?;
        let evens = (0..self.opts.rows).step_by(2).map(|i| bulk_row(i, 1));
        BulkInsert::<Product>::new()
            .counts_only()
            .run(pool, evens)
            .await?;
        Ok(())
    }

    /// One timed import from a reset table, kept if it is the path's best so far; the first time a
    /// path is measured, one more import on the counted connection for its statements. `visit`
    /// runs every path once per round, so that a slow spell of the machine falls on every path
    /// alike rather than on whichever ran during it.
    async fn measure<F>(&mut self, mode: &'static str, path: String, mut import: F) -> Result<()>
    where
        F: AsyncFnMut(&Side<DB>) -> Result<()>,
    {
        let rows = self.opts.rows;
        self.reset().await?;
        let watch = Stopwatch::start();
        import(&self.target.timed).await?;
        let rows_per_sec = watch.rate(rows);
        if let Some(line) = self
            .lines
            .iter_mut()
            .find(|l| l.mode == mode && l.path == path)
        {
            line.rows_per_sec = line.rows_per_sec.max(rows_per_sec);
            return Ok(());
        }
        self.reset().await?;
        let before = counter::statements();
        import(&self.target.counted).await?;
        let statements = counter::statements() - before;
        self.lines.push(Line {
            mode,
            path,
            rows_per_sec,
            statements,
        });
        Ok(())
    }

    fn print(&self) {
        println!(
            "\n{}: bulk insert of {} rows, half already stored, in one transaction, best of {} rounds (each runs every path once, in turn); the library in chunks of {} (batch_size), the others of 1000 unless said",
            self.target.label,
            self.opts.rows,
            self.opts.rounds,
            self.opts
                .batch
                .map_or_else(|| "its default".to_owned(), |n| n.to_string())
        );
        println!("| mode | path | rows/s | statements | library (counts only) ÷ this |");
        println!("|---|---|---:|---:|---:|");
        let mut library = 0f64;
        for l in &self.lines {
            let ratio = if l.path == LIBRARY {
                library = l.rows_per_sec;
                String::new()
            } else {
                format!("{:.2}", library / l.rows_per_sec)
            };
            println!(
                "| {} | {} | {:.0} | {} | {ratio} |",
                l.mode, l.path, l.rows_per_sec, l.statements
            );
        }
    }
}

const LIBRARY: &str = "library, counts only";

/// The library's import of every row (price 2): the odd rows are new.
async fn library<DB: Db>(
    pool: &sqlx::Pool<DB>,
    rows: usize,
    update: bool,
    per_row: bool,
    batch: Option<usize>,
) -> Result<()> {
    let bulk = BulkInsert::<Product>::new();
    let bulk = match batch {
        Some(n) => bulk.batch_size(n),
        None => bulk,
    };
    let bulk = if per_row { bulk } else { bulk.counts_only() };
    let bulk = if update {
        bulk.update_conflicts::<ProductBySku>(&[ProductField::PriceCents])
    } else {
        bulk.skip_conflicts::<ProductBySku>()
    };
    let report = bulk.run(pool, (0..rows).map(|i| bulk_row(i, 2))).await?;
    ensure(
        report.inserted == (rows / 2) as u64,
        format!(
            "library inserted {} rows, not {}",
            report.inserted,
            rows / 2
        ),
    )
}

/// Hand-written sqlx: one multi-row insert per 1000 rows, followed by `clause`, in a transaction.
async fn handwritten<DB: Db>(pool: &sqlx::Pool<DB>, rows: usize, clause: &str) -> Result<()> {
    let rows: Vec<Product> = (0..rows).map(|i| bulk_row(i, 2)).collect();
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(1000) {
        DB::insert_values(&mut tx, chunk, clause).await?;
    }
    tx.commit().await?;
    Ok(())
}

impl Visit for Bulk<'_> {
    async fn visit<DB: Db>(&mut self, target: &Target<DB>) -> Result<()> {
        let rows = self.0.rows;
        let batch = self.0.batch;
        let sql = &target.sql;
        let mut l = Lines {
            target,
            opts: self.0,
            lines: Vec::new(),
        };
        for _ in 0..self.0.rounds {
            for (mode, update) in [("skip", false), ("update", true)] {
                let clause = if update {
                    sql.bulk_update
                } else {
                    sql.bulk_skip
                };
                l.measure(mode, LIBRARY.into(), async |s| {
                    library(&s.pool, rows, update, false, batch).await
                })
                .await?;
                if !update {
                    l.measure(mode, "library, per-row report".into(), async |s| {
                        library(&s.pool, rows, update, true, batch).await
                    })
                    .await?;
                }
                let path = format!("hand-written sqlx, multi-row INSERT … `{}`", clause.trim());
                l.measure(mode, path, async |s| {
                    handwritten(&s.pool, rows, clause).await
                })
                .await?;
                l.measure(
                    mode,
                    "SeaORM insert_many(…).on_conflict(…)".into(),
                    async |s| {
                        let rows: Vec<Product> = (0..rows).map(|i| bulk_row(i, 2)).collect();
                        contenders::insert_many(&s.seaorm, &rows, update).await
                    },
                )
                .await?;
            }
            if let Some(target) = (target as &dyn Any).downcast_ref::<Target<sqlx::Postgres>>() {
                let mut pg = Lines {
                    target,
                    opts: self.0,
                    lines: std::mem::take(&mut l.lines),
                };
                postgres(&mut pg).await?;
                l.lines = pg.lines;
            }
        }
        // Skip mode's lines together, the library's first.
        l.lines.sort_by_key(|line| line.mode != "skip");
        l.print();
        Ok(())
    }
}

/// PostgreSQL only: hand-written `INSERT … SELECT * FROM UNNEST(…)` (three array parameters
/// whatever the chunk size) at 1000 and 10,000 rows a statement, in skip mode and in update mode
/// (`ON CONFLICT (sku) DO UPDATE SET price_cents = excluded.price_cents`); and the physical floor:
/// `COPY` of just the rows the import must add, timed as rows of input per second.
async fn postgres(l: &mut Lines<'_, sqlx::Postgres>) -> Result<()> {
    let rows = l.opts.rows;
    for (mode, clause) in [
        ("skip", "DO NOTHING"),
        ("update", "DO UPDATE SET price_cents = excluded.price_cents"),
    ] {
        for chunk_rows in [1000, 10_000] {
            let path = format!(
                "hand-written sqlx, INSERT … SELECT * FROM UNNEST(arrays) … ON CONFLICT (sku) {clause}, {chunk_rows} rows a statement"
            );
            let sql = format!(
                "INSERT INTO bench_products (sku, name, price_cents) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[]) ON CONFLICT (sku) {clause}"
            );
            l.measure(mode, path, async |s| {
                let rows: Vec<Product> = (0..rows).map(|i| bulk_row(i, 2)).collect();
                let mut tx = s.pool.begin().await?;
                for chunk in rows.chunks(chunk_rows) {
                    let skus: Vec<&str> = chunk.iter().map(|r| r.sku.as_str()).collect();
                    let names: Vec<&str> = chunk.iter().map(|r| r.name.as_str()).collect();
                    let prices: Vec<i64> = chunk.iter().map(|r| r.price_cents).collect();
                    sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(&skus)
                        .bind(&names)
                        .bind(&prices)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            })
            .await?;
        }
    }
    // The CSV text is built beforehand, untimed: a floor, not a contender.
    let mut csv = String::new();
    for i in (1..rows).step_by(2) {
        let r = bulk_row(i, 2);
        csv.push_str(&format!("{},{},{}\n", r.sku, r.name, r.price_cents));
    }
    let path = "COPY of just the missing half (the floor), as input rows/s";
    l.measure("skip", path.into(), async |s| {
        let mut conn = s.pool.acquire().await?;
        let mut copy = conn
            .copy_in_raw("COPY bench_products (sku, name, price_cents) FROM STDIN (FORMAT csv)")
            .await?;
        copy.send(csv.as_bytes()).await?;
        copy.finish().await?;
        Ok(())
    })
    .await
}
