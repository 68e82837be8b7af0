//! Many tasks on the same new keys, each call in `model_runtime::transaction` (REPEATABLE READ), in
//! the caller's own transaction, or in autocommit: the workload of issue 17 (MariaDB REPEATABLE READ
//! collapsing into lock waits and deadlocks) and of the default retry budget.
//!
//! The normal suite runs one bounded round per backend and checks correctness only: one row per key,
//! each key's final value written by some task, no error surfaced by `transaction()` with its
//! default options. The timed measurement is `#[ignore]`d:
//!
//! ```text
//! TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test \
//!   cargo test --release --test contention -- --ignored --nocapture --test-threads 1
//! ```
//! (`CONTENTION_RUNS`, `CONTENTION_TASKS`, `CONTENTION_KEYS`, `CONTENTION_OP`
//! = `update`|`get`, `CONTENTION_MODES` = comma-separated `autocommit,library,caller`, and
//! `CONTENTION_LIMIT_SECS` for the cut-off of one run, change the workload; `CONTENTION_ATTEMPTS`
//! replaces the default retry budget of `transaction()` by that many attempts;
//! `CONTENTION_ORDER=same` makes every task walk the keys in the same order.)

use std::time::{Duration, Instant};

use model_integration::{Options, TestBackend, TestDb, backend_tests, report};
use model_runtime::{Dialect, Isolation, Model, Outcome, Schema, TxOptions};
use sqlx::Row;

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "items")]
struct Item {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    value: i64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    GetOrCreate,
    UpdateOrCreate,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Autocommit,
    Library,
    Caller,
}

/// What one run saw.
#[derive(Debug, Default)]
struct Run {
    elapsed: Duration,
    calls: usize,
    /// Errors returned to a caller that does not retry (caller's transaction: its own business).
    retryable: usize,
    /// Any other error, with the first one's text.
    errors: usize,
    first_error: Option<String>,
    /// The run did not finish within its limit.
    cut_off: bool,
    /// Per key: the values tasks wrote (update_or_create) and how many saw `Created`.
    written: Vec<Vec<i64>>,
    creators: Vec<usize>,
}

/// A small seeded generator (splitmix64): every run's key orders are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

fn call<'a, 'c: 'a>(
    conn: impl model_runtime::Conn<'c> + 'a,
    op: Op,
    candidate: &'a Item,
) -> model_runtime::BoxFuture<'a, Result<(Item, Outcome), model_runtime::Error>> {
    match op {
        Op::GetOrCreate => Item::get_or_create_by_sku(conn, candidate),
        Op::UpdateOrCreate => Item::update_or_create_by_sku(conn, candidate, &[ItemField::Value]),
    }
}

/// One run's workload.
#[derive(Clone, Copy)]
struct Workload {
    op: Op,
    mode: Mode,
    options: TxOptions,
    tasks: usize,
    keys: usize,
    seed: u64,
    limit: Duration,
    /// Every task walks the keys in the same order (all of them race for each key at once)
    /// instead of its own shuffled order.
    same_order: bool,
}

/// `tasks` tasks, each walking the same `keys` new keys in its own shuffled order, one call per key
/// in `mode`. Stops at `limit`. The keys are `R{seed}-K-{k}`: new to the table (never deleted
/// either: a delete-marked index record not yet purged locks differently from no record at all).
async fn run<DB: TestBackend>(pool: &sqlx::Pool<DB>, workload: Workload) -> Run {
    let Workload {
        same_order: _,
        op,
        mode,
        options,
        tasks,
        keys,
        seed,
        limit,
    } = workload;
    let start = tokio::sync::Barrier::new(tasks);
    let started = Instant::now();
    let work = futures_util::future::join_all((0..tasks).map(|task| {
        let start = &start;
        async move {
            let mut order: Vec<usize> = (0..keys).collect();
            if !workload.same_order {
                Rng(seed ^ (task as u64).wrapping_mul(0x1000_0001)).shuffle(&mut order);
            }
            start.wait().await;
            let mut results = Vec::with_capacity(keys);
            for k in order {
                let value = (task * keys + k) as i64;
                let candidate = Item {
                    id: 0,
                    sku: format!("R{seed}-K-{k}"),
                    value,
                };
                let result = match mode {
                    Mode::Autocommit => call(pool, op, &candidate).await,
                    Mode::Library => {
                        model_runtime::transaction(pool, options, async |tx| {
                            call(&mut *tx, op, &candidate).await
                        })
                        .await
                    }
                    Mode::Caller => {
                        let mut tx = pool.begin().await.expect("begin");
                        match call(&mut tx, op, &candidate).await {
                            Ok(value) => tx
                                .commit()
                                .await
                                .map(|()| value)
                                .map_err(model_runtime::Error::from),
                            Err(error) => {
                                let _ = tx.rollback().await;
                                Err(error)
                            }
                        }
                    }
                };
                results.push((k, value, result));
            }
            results
        }
    }));
    let finished = tokio::time::timeout(limit, work).await;
    let mut out = Run {
        elapsed: started.elapsed(),
        written: vec![Vec::new(); keys],
        creators: vec![0; keys],
        ..Run::default()
    };
    let Ok(finished) = finished else {
        out.cut_off = true;
        return out;
    };
    for (k, value, result) in finished.into_iter().flatten() {
        out.calls += 1;
        match result {
            Ok((row, outcome)) => {
                if outcome == Outcome::Created {
                    out.creators[k] += 1;
                }
                if op == Op::UpdateOrCreate {
                    assert_eq!(
                        row.value, value,
                        "key {k}: the row returned carries this call's write"
                    );
                    out.written[k].push(value);
                }
            }
            Err(error) if mode == Mode::Caller && error.is_retryable() => out.retryable += 1,
            Err(error) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }
    out
}

/// One row per key, each with a value some task wrote, and (when every call succeeded) exactly one
/// creator per key.
async fn check<DB: TestBackend>(pool: &sqlx::Pool<DB>, op: Op, run: &Run, keys: usize, seed: u64) {
    let mut conn = pool.acquire().await.expect("a connection");
    let rows = DB::fetch_all(
        &mut conn,
        "SELECT id, sku, value FROM items".into(),
        model_runtime::__private::Values(Vec::new()),
    )
    .await
    .expect("read back");
    let mut seen = vec![None; keys];
    for row in rows {
        let Item { sku, value, .. } = Item::from_row(DB::row_ref(&row)).expect("an item");
        let Some(k) = sku.strip_prefix(&format!("R{seed}-K-")) else {
            continue;
        };
        let k: usize = k.parse().expect("a key of the run");
        assert!(seen[k].is_none(), "two rows for {sku}");
        seen[k] = Some(value);
    }
    for (k, value) in seen.iter().enumerate() {
        match value {
            None => assert_eq!(run.creators[k], 0, "K-{k} reported created but has no row"),
            Some(value) => {
                assert!(run.creators[k] <= 1, "K-{k}: {} creators", run.creators[k]);
                let task = (*value as usize) / keys;
                assert_eq!(
                    (*value as usize) % keys,
                    k,
                    "K-{k} holds another key's value"
                );
                if op == Op::UpdateOrCreate && !run.written[k].is_empty() {
                    assert!(
                        run.written[k].contains(value),
                        "K-{k}: final value {value} (task {task}) was not written by a successful call"
                    );
                }
            }
        }
    }
    if run.errors == 0 && run.retryable == 0 {
        assert!(seen.iter().all(Option::is_some), "a key has no row");
        assert!(run.creators.iter().all(|&c| c == 1), "one creator per key");
    }
}

const SUITE_TASKS: usize = 48;
const SUITE_KEYS: usize = 60;

async fn bounded_round<DB: TestBackend>(db: TestDb<DB>, op: Op) {
    Schema::new()
        .model::<Item>()
        .create(&db.pool)
        .await
        .unwrap();
    let rr = TxOptions::default().isolation(Isolation::RepeatableRead);
    for (seed, mode) in [(17, Mode::Library), (18, Mode::Caller)] {
        let limit = Duration::from_secs(300);
        let workload = Workload {
            op,
            mode,
            options: rr,
            tasks: SUITE_TASKS,
            keys: SUITE_KEYS,
            seed,
            limit,
            same_order: false,
        };
        let run = run(&db.pool, workload).await;
        assert!(!run.cut_off, "{op:?} {mode:?}: not finished in {limit:?}");
        if mode == Mode::Library {
            assert_eq!(
                (run.errors, run.first_error.as_deref()),
                (0, None),
                "{op:?}: transaction() with its default options surfaced an error"
            );
        }
        assert_eq!(run.errors, 0, "{op:?} {mode:?}: {:?}", run.first_error);
        check(&db.pool, op, &run, SUITE_KEYS, seed).await;
        report(&format!(
            "{} {op:?} {mode:?} RR {SUITE_TASKS}x{SUITE_KEYS}: {:?}, {} retryable errors in the caller's transactions",
            DB::DIALECT,
            run.elapsed,
            run.retryable
        ));
    }
}

async fn update_or_create_under_contention<DB: TestBackend>(db: TestDb<DB>) {
    bounded_round(db, Op::UpdateOrCreate).await
}

async fn get_or_create_under_contention<DB: TestBackend>(db: TestDb<DB>) {
    bounded_round(db, Op::GetOrCreate).await
}

backend_tests!(
    @with Options {
        max_connections: Some(SUITE_TASKS as u32 + 2),
        sqlite_file: true,
        isolation: Some(Isolation::RepeatableRead),
    };
    update_or_create_under_contention,
    get_or_create_under_contention,
);

// ---------------------------------------------------------------------------------------------
// The measurement (ignored): issue 17 and the default retry budget.

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn innodb_deadlocks(pool: &sqlx::MySqlPool) -> i64 {
    let row = sqlx::query("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
        .fetch_one(pool)
        .await
        .expect("status");
    row.get::<String, _>(1).parse().unwrap_or(-1)
}

async fn measure<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Item>()
        .create(&db.pool)
        .await
        .unwrap();
    let runs = env_or("CONTENTION_RUNS", 10usize);
    let tasks = env_or("CONTENTION_TASKS", 64usize);
    let keys = env_or("CONTENTION_KEYS", 500usize);
    let limit = Duration::from_secs(env_or("CONTENTION_LIMIT_SECS", 120u64));
    let op = match std::env::var("CONTENTION_OP").as_deref() {
        Ok("get") => Op::GetOrCreate,
        _ => Op::UpdateOrCreate,
    };
    let modes: Vec<Mode> = std::env::var("CONTENTION_MODES")
        .unwrap_or_else(|_| "autocommit,library,caller".into())
        .split(',')
        .map(|m| match m {
            "autocommit" => Mode::Autocommit,
            "library" => Mode::Library,
            "caller" => Mode::Caller,
            other => panic!("unknown mode {other}"),
        })
        .collect();
    let mut rr = TxOptions::default().isolation(Isolation::RepeatableRead);
    if let Ok(attempts) = std::env::var("CONTENTION_ATTEMPTS") {
        rr = rr.max_attempts(attempts.parse().expect("a number of attempts"));
    }
    // On MariaDB, the server's deadlock counter (global: other sessions on the server count too).
    let admin: Option<sqlx::MySqlPool> = if DB::DIALECT == Dialect::MySql {
        let url = std::env::var(model_integration::MYSQL_URL).unwrap();
        Some(sqlx::MySqlPool::connect(&url).await.unwrap())
    } else {
        None
    };
    for (m, mode) in modes.into_iter().enumerate() {
        for i in 0..runs {
            let seed = (1000 * (m + 1) + i) as u64;
            let before = match &admin {
                Some(a) => innodb_deadlocks(a).await,
                None => 0,
            };
            let workload = Workload {
                op,
                mode,
                options: rr,
                tasks,
                keys,
                seed,
                limit,
                same_order: std::env::var("CONTENTION_ORDER").as_deref() == Ok("same"),
            };
            let run = run(&db.pool, workload).await;
            let deadlocks = match &admin {
                Some(a) => innodb_deadlocks(a).await - before,
                None => 0,
            };
            if run.cut_off {
                if let Some(a) = &admin {
                    let status = sqlx::query("SHOW ENGINE INNODB STATUS")
                        .fetch_one(a)
                        .await
                        .map(|r| r.get::<String, _>(2))
                        .unwrap_or_default();
                    report(&format!("cut off; SHOW ENGINE INNODB STATUS:\n{status}"));
                }
            } else {
                check(&db.pool, op, &run, keys, seed).await;
            }
            report(&format!(
                "{} {op:?} {mode:?} RR {tasks}x{keys} run {i}: {:.2} s{}, {} calls, {} errors{}, {} retryable in caller's transactions, {deadlocks} Innodb_deadlocks",
                DB::DIALECT,
                run.elapsed.as_secs_f64(),
                if run.cut_off { " (CUT OFF)" } else { "" },
                run.calls,
                run.errors,
                run.first_error
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default(),
                run.retryable,
            ));
        }
    }
}

macro_rules! measured {
    ($($module:ident, $db:ty;)*) => {$(
        mod $module {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "a timed measurement: run it with --ignored --release (see the file's doc)"]
            async fn measure_contention() {
                let tasks = env_or("CONTENTION_TASKS", 64u32);
                let options = Options {
                    max_connections: Some(tasks + 2),
                    sqlite_file: true,
                    isolation: Some(Isolation::RepeatableRead),
                };
                let test = concat!(module_path!(), "::measure_contention");
                model_integration::run_scenario::<$db, _>(test, options, measure).await;
            }
        }
    )*};
}

measured!(
    measure_sqlite, sqlx::Sqlite;
    measure_postgres, sqlx::Postgres;
    measure_mysql, sqlx::MySql;
);
