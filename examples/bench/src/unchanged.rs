//! `unchanged`: what skipping unchanged rows is worth. Every row of the import is already stored;
//! the library's update mode writes only the rows whose listed fields differ, so an import of the
//! values already there writes nothing. Against a hand-written multi-row insert whose conflict
//! clause always writes, and against the library's own import where every row differs.

use model_runtime::BulkInsert;

use crate::args;
use crate::counter;
use crate::model::{Product, ProductBySku, ProductField, TABLE, bulk_row};
use crate::stats::Stopwatch;
use crate::target::{Db, Side, Target, Visit};
use crate::{Result, ensure};

pub struct Unchanged<'a>(pub &'a args::Unchanged);

struct Line {
    path: &'static str,
    rows_per_sec: f64,
    statements: u64,
}

/// Stores every row with price 1, uncounted.
async fn reset<DB: Db>(pool: &sqlx::Pool<DB>, rows: usize) -> Result<()> {
    DB::plain(pool, format!("DELETE FROM {TABLE}")).await?;
    BulkInsert::<Product>::new()
        .counts_only()
        .run(pool, (0..rows).map(|i| bulk_row(i, 1)))
        .await?;
    Ok(())
}

/// The library's update-mode import of every row at `price`; checks what it reports.
async fn library<DB: Db>(pool: &sqlx::Pool<DB>, rows: usize, price: i64) -> Result<()> {
    let report = BulkInsert::<Product>::new()
        .counts_only()
        .update_conflicts::<ProductBySku>(&[ProductField::PriceCents])
        .run(pool, (0..rows).map(|i| bulk_row(i, price)))
        .await?;
    let (updated, unchanged) = if price == 1 { (0, rows) } else { (rows, 0) };
    ensure(
        (report.updated, report.unchanged) == (updated as u64, unchanged as u64),
        format!(
            "the library reported {} updated and {} unchanged, not {updated} and {unchanged}",
            report.updated, report.unchanged
        ),
    )
}

/// Hand-written: a multi-row insert per 1000 rows with the conflict clause that always writes.
async fn always_writing<DB: Db>(pool: &sqlx::Pool<DB>, rows: usize, clause: &str) -> Result<()> {
    let rows: Vec<Product> = (0..rows).map(|i| bulk_row(i, 1)).collect();
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(1000) {
        DB::insert_values(&mut tx, chunk, clause).await?;
    }
    tx.commit().await?;
    Ok(())
}

impl Visit for Unchanged<'_> {
    async fn visit<DB: Db>(&mut self, target: &Target<DB>) -> Result<()> {
        let (rows, rounds) = (self.0.rows, self.0.rounds);
        let clause = target.sql.bulk_update;
        let mut lines = Vec::new();
        let paths: [(&'static str, i64); 3] = [
            ("library, every row unchanged (nothing written)", 1),
            ("library, every row changed (all written)", 2),
            ("hand-written sqlx, every row written again", 0),
        ];
        for (path, price) in paths {
            let import = async |side: &Side<DB>| -> Result<()> {
                match price {
                    0 => always_writing(&side.pool, rows, clause).await,
                    _ => library(&side.pool, rows, price).await,
                }
            };
            let mut rows_per_sec = 0f64;
            for _ in 0..rounds {
                reset(&target.timed.pool, rows).await?;
                let watch = Stopwatch::start();
                import(&target.timed).await?;
                rows_per_sec = rows_per_sec.max(watch.rate(rows));
            }
            reset(&target.timed.pool, rows).await?;
            let before = counter::statements();
            import(&target.counted).await?;
            lines.push(Line {
                path,
                rows_per_sec,
                statements: counter::statements() - before,
            });
        }
        println!(
            "\n{}: update-mode import of {rows} rows, every one already stored, chunks of 1000 in one transaction, best of {rounds}",
            target.label
        );
        println!("hand-written clause: `{}`", clause.trim());
        println!("| path | rows/s | statements | this ÷ hand-written |");
        println!("|---|---:|---:|---:|");
        let hand = lines[2].rows_per_sec;
        for l in &lines {
            println!(
                "| {} | {:.0} | {} | {:.2} |",
                l.path,
                l.rows_per_sec,
                l.statements,
                l.rows_per_sec / hand
            );
        }
        Ok(())
    }
}
