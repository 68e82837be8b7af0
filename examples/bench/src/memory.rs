//! `memory`: peak resident memory of a counts-only import of N rows into an empty SQLite table, to
//! show that it does not grow with N (apart from the per-key fingerprints). A process's peak is
//! for its whole life, so each row count runs in a process of its own.

use model_runtime::{BulkInsert, Schema};
use sqlx::Connection;

use crate::model::{Product, ProductBySku, bulk_row};
use crate::stats::{Stopwatch, peak_rss_kib};
use crate::{Result, ensure};

/// Each row count in a fresh process (this program's `memory --rows N`), or in this one when it is
/// the only count and `in_process` is set.
pub fn run(rows: &[usize], in_process: bool) -> Result<()> {
    if let ([n], true) = (rows, in_process) {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(measure(*n));
    }
    for n in rows {
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(["memory", "--rows", &n.to_string()])
            .status()?;
        ensure(status.success(), format!("memory --rows {n}: {status}"))?;
    }
    Ok(())
}

async fn measure(n: usize) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("model_bench_memory_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("bench.sqlite"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    Schema::new().model::<Product>().create(&mut conn).await?;
    let before = peak_rss_kib();
    let watch = Stopwatch::start();
    let report = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .counts_only()
        .run(&mut conn, (0..n).map(|i| bulk_row(i, 1)))
        .await?;
    let rate = watch.rate(n);
    let peak = peak_rss_kib();
    conn.close().await?;
    std::fs::remove_dir_all(&dir)?;
    println!(
        "SQLite, counts-only import of {n} rows: {} inserted, {rate:.0} rows/s; peak RSS {:.1} MB ({:.1} MB before the import)",
        report.inserted,
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    Ok(())
}
