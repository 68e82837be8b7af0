//! `concurrency`: many tasks share a pool of 16 connections and call get_or_create over a key
//! space half stored: operations per second and latency quantiles.

use model_runtime::BulkInsert;

use crate::Result;
use crate::args;
use crate::model::{Product, candidate};
use crate::stats::{Stopwatch, quantile};
use crate::target::{Db, Target, Visit};

pub struct Concurrency<'a>(pub &'a args::Concurrency);

impl Visit for Concurrency<'_> {
    async fn visit<DB: Db>(&mut self, target: &Target<DB>) -> Result<()> {
        let opts = self.0;
        let keys = opts.keys;
        BulkInsert::<Product>::new()
            .counts_only()
            .run(
                &target.timed.pool,
                (0..keys).map(|k| candidate(format!("seed-{k}"), 1)),
            )
            .await?;
        let pool = target.pool(16).await?;
        println!(
            "\n{}, a pool of 16 connections: get_or_create over {} keys, half stored, {} calls per task",
            target.label,
            2 * keys,
            opts.calls
        );
        println!("| tasks | ops/s | p50 ms | p99 ms |");
        println!("|---:|---:|---:|---:|");
        for (round, &tasks) in opts.tasks.iter().enumerate() {
            let watch = Stopwatch::start();
            let mut handles = Vec::new();
            for t in 0..tasks {
                let pool = pool.clone();
                let calls = opts.calls;
                handles.push(tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(calls);
                    // Wrapping, as the release build (which these figures come from) computes it.
                    let mut x = (t as u64 + 1)
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        .wrapping_add(round as u64);
                    for _ in 0..calls {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let k = (x % (2 * keys as u64)) as usize;
                        let sku = if k < keys {
                            format!("seed-{k}")
                        } else {
                            format!("conc-{round}-{k}")
                        };
                        let started = std::time::Instant::now();
                        Product::get_or_create_by_sku(&pool, &candidate(sku, 1)).await?;
                        latencies.push(started.elapsed());
                    }
                    Ok::<_, model_runtime::Error>(latencies)
                }));
            }
            let mut latencies = Vec::new();
            for handle in handles {
                latencies.extend(handle.await??);
            }
            let rate = watch.rate(latencies.len());
            latencies.sort();
            println!(
                "| {tasks} | {rate:.0} | {:.2} | {:.2} |",
                quantile(&latencies, 0.5).as_secs_f64() * 1e3,
                quantile(&latencies, 0.99).as_secs_f64() * 1e3
            );
        }
        pool.close().await;
        Ok(())
    }
}
