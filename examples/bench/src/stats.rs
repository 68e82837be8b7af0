//! Clocks and figures: wall time, this process's CPU time, peak memory, quantiles.

use std::time::{Duration, Instant};

/// CPU time this process has used, all threads (SQLite runs on sqlx's worker thread).
pub fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_PROCESS_CPUTIME_ID exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall time and CPU time since it was started.
pub struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch {
            cpu: process_cpu(),
            wall: Instant::now(),
        }
    }

    /// Operations per second of wall time.
    pub fn rate(&self, ops: usize) -> f64 {
        ops as f64 / self.wall.elapsed().as_secs_f64()
    }

    /// CPU µs per operation.
    pub fn cpu_us(&self, ops: usize) -> f64 {
        (process_cpu() - self.cpu).as_secs_f64() * 1e6 / ops as f64
    }
}

/// Peak resident memory of this process (`VmHWM` in `/proc/self/status`), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The `q` quantile of sorted latencies.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}
