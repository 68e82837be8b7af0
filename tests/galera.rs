//! A 3-node MariaDB Galera cluster (`.ci/galera start`): tasks spread over the three nodes write the
//! same keys, and the library's guarantees must hold as on one server.
//!
//! - get_or_create and update_or_create in autocommit, in `transaction()` and in the caller's own
//!   transaction; overlapping bulk calls (skip with get-or-create report, and update); a node paused
//!   (SIGSTOP) and later killed mid-run, then restarted.
//! - Checked: exactly one row per key, the same on every node, and exactly one `Created` per key
//!   (with node loss: at most one, and none only for a key whose creating call lost its node); no
//!   lost update and no write reported that is not stored (each task writes only its own column of
//!   a row, with increasing values, so the stored value must be the last one the task was told was
//!   written); the row a call returns holds its own values; no error in autocommit and
//!   `transaction()` but node loss; only retryable errors in the caller's transaction; and the
//!   pooled connection answers `SELECT 1` after every call (nothing unread handed back: the pools
//!   do not test connections before handing them out).
//!
//! Needs `TEST_GALERA_URLS` (comma-separated node URLs) when built, and `TEST_GALERA_DIR` (the
//! directory `.ci/galera` writes each node's `pid` and `start` to) for the node-loss test. Every
//! scenario prints its counts (`report:` lines). The scenarios run one at a time (they share the
//! cluster), and each leaves the cluster with 3 nodes Synced.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use model_integration::{Rng, report};
use model_runtime::{BulkInsert, Error, Model, Outcome, RowOutcome, Schema, TxOptions};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{Connection, Row};

/// The environment variable naming the cluster's nodes.
const URLS: &str = "TEST_GALERA_URLS";
/// The environment variable naming `.ci/galera`'s directory (`node{i}/pid`, `node{i}/start`).
const DIR: &str = "TEST_GALERA_DIR";
/// Tasks per scenario, spread over the nodes (task `t` on node `t % 3`); each owns column `t{t}`.
const TASKS: usize = 6;

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "galera_items")]
struct Item {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    /// The same text as `sku`, under a partial unique constraint: `update_or_create_by_code` takes
    /// MariaDB's general path (`UPDATE`, then a `SELECT` of the row), not the one-statement upsert.
    #[unique(condition(deleted == None))]
    #[model(max_length = 40)]
    code: String,
    deleted: Option<i64>,
    /// The task whose call created the row.
    creator: i64,
    t0: i64,
    t1: i64,
    t2: i64,
    t3: i64,
    t4: i64,
    t5: i64,
}

impl Item {
    /// A row for `key`, created by `task`, with `value` in the task's own column.
    fn new(key: usize, task: usize, value: i64) -> Item {
        let mut item = Item {
            id: 0,
            sku: sku(key),
            code: sku(key),
            deleted: None,
            creator: task as i64,
            t0: 0,
            t1: 0,
            t2: 0,
            t3: 0,
            t4: 0,
            t5: 0,
        };
        *item.column(task) = value;
        item
    }

    fn column(&mut self, task: usize) -> &mut i64 {
        match task {
            0 => &mut self.t0,
            1 => &mut self.t1,
            2 => &mut self.t2,
            3 => &mut self.t3,
            4 => &mut self.t4,
            _ => &mut self.t5,
        }
    }

    fn value(&self, task: usize) -> i64 {
        [self.t0, self.t1, self.t2, self.t3, self.t4, self.t5][task]
    }
}

fn field(task: usize) -> ItemField {
    [
        ItemField::T0,
        ItemField::T1,
        ItemField::T2,
        ItemField::T3,
        ItemField::T4,
        ItemField::T5,
    ][task]
}

fn sku(key: usize) -> String {
    format!("key-{key:04}")
}

/// The cluster tests share one cluster: one scenario at a time.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn urls() -> Vec<String> {
    let urls = std::env::var(URLS).unwrap_or_else(|_| {
        panic!("the Galera tests were built with {URLS} set, but it is not set now: run `.ci/galera start` and export what it prints")
    });
    let urls: Vec<String> = urls.split(',').map(str::to_owned).collect();
    assert_eq!(urls.len(), 3, "{URLS} must name 3 nodes: {urls:?}");
    urls
}

/// A scratch database on the cluster, and the URLs of its nodes.
struct Cluster {
    urls: Vec<String>,
    name: String,
}

impl Cluster {
    fn options(&self, node: usize) -> MySqlConnectOptions {
        MySqlConnectOptions::from_str(&self.urls[node])
            .expect("a MySQL URL")
            .database(&self.name)
    }

    /// A task's pool: one connection, not tested before it is handed out, so that a connection
    /// left with an unread result would be handed to the next call, and fail it.
    async fn pool(&self, node: usize) -> MySqlPool {
        MySqlPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(self.options(node))
            .await
            .unwrap_or_else(|e| panic!("{URLS}: node {node} is unreachable: {e}"))
    }

    /// Every row on `node`, after the node has applied every write the cluster committed before
    /// this read (`wsrep_sync_wait`), by key.
    async fn rows(&self, node: usize) -> HashMap<String, Item> {
        // Not connected to the scratch database: the node may not have applied its creation yet.
        let mut conn = admin(&self.urls[node]).await;
        sqlx::query("SET SESSION wsrep_sync_wait = 1")
            .execute(&mut conn)
            .await
            .expect("wsrep_sync_wait");
        let sql = format!("SELECT * FROM `{}`.galera_items", self.name);
        let rows: Vec<Item> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("node {node}: {e}"));
        let _ = conn.close().await;
        rows.into_iter().map(|r| (r.sku.clone(), r)).collect()
    }

    /// The rows, which must be the same on every node.
    async fn agreed_rows(&self) -> HashMap<String, Item> {
        let first = self.rows(0).await;
        for node in 1..3 {
            let other = self.rows(node).await;
            assert_eq!(
                sorted(&other),
                sorted(&first),
                "node {node} holds other rows than node 0"
            );
        }
        first
    }
}

fn sorted(rows: &HashMap<String, Item>) -> Vec<&Item> {
    let mut all: Vec<&Item> = rows.values().collect();
    all.sort_by(|a, b| a.sku.cmp(&b.sku));
    all
}

async fn admin(url: &str) -> sqlx::MySqlConnection {
    sqlx::MySqlConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{URLS}={url} is set but unreachable: {e}"))
}

/// Each node's `(wsrep_local_state_comment, wsrep_cluster_size)`, `None` when unreachable.
async fn node_state(url: &str) -> Option<(String, i64)> {
    let mut conn =
        tokio::time::timeout(Duration::from_secs(3), sqlx::MySqlConnection::connect(url))
            .await
            .ok()?
            .ok()?;
    let rows = sqlx::query(
        "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
         WHERE VARIABLE_NAME IN ('WSREP_LOCAL_STATE_COMMENT', 'WSREP_CLUSTER_SIZE')",
    )
    .fetch_all(&mut conn)
    .await
    .ok()?;
    let _ = conn.close().await;
    let mut state = String::new();
    let mut size = 0;
    for row in rows {
        let name: String = row.get(0);
        let value: String = row.get(1);
        if name.eq_ignore_ascii_case("WSREP_LOCAL_STATE_COMMENT") {
            state = value;
        } else {
            size = value.parse().unwrap_or(0);
        }
    }
    Some((state, size))
}

/// Waits until all three nodes are Synced in a cluster of 3; panics after `limit`.
async fn wait_healthy(limit: Duration) {
    let urls = urls();
    let started = std::time::Instant::now();
    loop {
        let mut states = Vec::new();
        for url in &urls {
            states.push(node_state(url).await);
        }
        if states
            .iter()
            .all(|s| matches!(s, Some((state, 3)) if state == "Synced"))
        {
            return;
        }
        if let Some(crashed) = exited_node() {
            panic!("{crashed}");
        }
        assert!(
            started.elapsed() < limit,
            "the Galera cluster is not healthy (3 nodes Synced) after {limit:?}: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A node of `.ci/galera` whose recorded mariadbd is gone (it crashed, or was killed and not
/// restarted), with the end of its error log; `None` when all run or `TEST_GALERA_DIR` is unset.
fn exited_node() -> Option<String> {
    let dir = std::env::var(DIR).ok()?;
    for index in 0..3 {
        let node = std::path::Path::new(&dir).join(format!("node{index}"));
        let pid = std::fs::read_to_string(node.join("pid")).ok()?;
        let comm =
            std::fs::read_to_string(format!("/proc/{}/comm", pid.trim())).unwrap_or_default();
        if comm.trim() != "mariadbd" {
            let log = std::fs::read_to_string(node.join("error.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Some(format!(
                "Galera node{index} (pid {}) is not running; the end of its error log:\n{}",
                pid.trim(),
                tail.join("\n")
            ));
        }
    }
    None
}

/// Runs a scenario on a fresh database of the cluster (created through node 0, its table seen on
/// every node), then drops it, also when the scenario panicked.
async fn scenario<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Arc<Cluster>) -> Fut,
    Fut: Future<Output = ()>,
{
    use futures_util::FutureExt;
    let _one_at_a_time = CLUSTER.lock().await;
    wait_healthy(Duration::from_secs(60)).await;
    let urls = urls();
    let name = model_integration::database_name(&format!("galera::{test}"));
    let mut conn = admin(&urls[0]).await;
    for sql in [
        format!("DROP DATABASE IF EXISTS `{name}`"),
        format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("create the scratch database");
    }
    let cluster = Arc::new(Cluster { urls, name });
    let pool = cluster.pool(0).await;
    Schema::new()
        .model::<Item>()
        .create(&pool)
        .await
        .expect("create the table");
    pool.close().await;
    // The table exists on every node before the tasks start.
    for node in 0..3 {
        assert!(cluster.rows(node).await.is_empty());
    }
    let outcome = std::panic::AssertUnwindSafe(body(Arc::clone(&cluster)))
        .catch_unwind()
        .await;
    let drop = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS `{}`",
        cluster.name
    )))
    .execute(&mut admin(&cluster.urls[0]).await)
    .await;
    if let Err(error) = drop {
        eprintln!("warning: dropping {}: {error}", cluster.name);
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Each call on the pool.
    Autocommit,
    /// Each call in `model_runtime::transaction` with default options.
    Library,
    /// Calls in the caller's own transaction (`pool.begin()` … `commit()`), retried by the caller.
    Caller,
}

/// A successful call: (task, key, value written, outcome, returned row).
type Done = (usize, usize, i64, Outcome, Item);

/// What a scenario's tasks saw.
#[derive(Debug, Default)]
struct Seen {
    /// Successful calls.
    calls: Vec<Done>,
    /// Calls whose node was lost: (task, key, value it tried to write).
    lost: Vec<(usize, usize, i64)>,
    /// Retryable errors the caller's own transactions met (and ran again).
    retried: usize,
    /// Errors that break the guarantees, with their text.
    errors: Vec<String>,
    node_unavailable: usize,
    /// Node-loss errors by message.
    losses: std::collections::BTreeMap<String, usize>,
}

impl Seen {
    fn merge(&mut self, other: Seen) {
        self.calls.extend(other.calls);
        self.lost.extend(other.lost);
        self.retried += other.retried;
        self.errors.extend(other.errors);
        self.node_unavailable += other.node_unavailable;
        for (text, n) in other.losses {
            *self.losses.entry(text).or_default() += n;
        }
    }

    fn lost_node(&mut self, error: &Error) {
        self.node_unavailable += 1;
        *self.losses.entry(error.to_string()).or_default() += 1;
    }
}

/// The whole chain of an error, for a failure message.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Node loss: the library's class, or a pool that could not open a connection to a stopped node.
fn is_node_loss(error: &Error) -> bool {
    error.is_node_unavailable()
        || matches!(error, Error::Database(sqlx::Error::PoolTimedOut))
        || matches!(error, Error::Bulk { source, .. } if is_node_loss(source))
}

/// The pooled connection must answer a plain statement after every call.
async fn connection_is_clean(pool: &MySqlPool, seen: &mut Seen, after: &str, node_loss: bool) {
    if let Err(error) = sqlx::query("SELECT 1").execute(pool).await {
        let error = Error::from(error);
        if node_loss && is_node_loss(&error) {
            return;
        }
        seen.errors.push(format!(
            "the connection handed back after {after} fails the next statement: {}",
            chain(&error)
        ));
    }
}

enum Op {
    GetOrCreate,
    UpdateOrCreate,
    /// update_or_create by the partial key `code`.
    UpdateOrCreatePartial,
}

async fn call<'c>(
    conn: impl model_runtime::Conn<'c>,
    op: &Op,
    task: usize,
    row: &Item,
) -> Result<(Item, Outcome), Error> {
    match op {
        Op::GetOrCreate => Item::get_or_create_by_sku(conn, row).await,
        Op::UpdateOrCreate => Item::update_or_create_by_sku(conn, row, &[field(task)]).await,
        Op::UpdateOrCreatePartial => {
            Item::update_or_create_by_code(conn, row, &[field(task)]).await
        }
    }
}

/// One task: `work` is its list of transactions, each a list of (key, value) calls (one call per
/// transaction but in the caller mode). `node_loss`: errors of the node-loss class are recorded,
/// not failures; `stop` ends the task early.
async fn task(
    cluster: Arc<Cluster>,
    op: Op,
    mode: Mode,
    task: usize,
    work: Vec<Vec<(usize, i64)>>,
    node_loss: bool,
    stop: Arc<AtomicBool>,
) -> Seen {
    let pool = cluster.pool(task % 3).await;
    let mut seen = Seen::default();
    for unit in work {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match mode {
            Mode::Autocommit | Mode::Library => {
                let (key, value) = unit[0];
                let row = Item::new(key, task, value);
                let result = if mode == Mode::Autocommit {
                    call(&pool, &op, task, &row).await
                } else {
                    model_runtime::transaction(&pool, TxOptions::default(), async |tx| {
                        call(&mut *tx, &op, task, &row).await
                    })
                    .await
                };
                match result {
                    Ok((stored, outcome)) => seen.calls.push((task, key, value, outcome, stored)),
                    Err(error) if node_loss && is_node_loss(&error) => {
                        seen.lost_node(&error);
                        seen.lost.push((task, key, value));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => seen
                        .errors
                        .push(format!("{mode:?} task {task} key {key}: {}", chain(&error))),
                }
                connection_is_clean(&pool, &mut seen, &format!("{mode:?}"), node_loss).await;
            }
            Mode::Caller => loop {
                let mut conn = match pool.acquire().await {
                    Ok(conn) => conn,
                    Err(error) if node_loss => {
                        seen.lost_node(&error.into());
                        seen.lost
                            .extend(unit.iter().map(|&(key, value)| (task, key, value)));
                        break;
                    }
                    Err(error) => panic!("task {task}: {error}"),
                };
                let attempt = async {
                    let mut tx = conn.begin().await?;
                    let mut done = Vec::new();
                    for &(key, value) in &unit {
                        let row = Item::new(key, task, value);
                        let (stored, outcome) = call(&mut *tx, &op, task, &row).await?;
                        done.push((task, key, value, outcome, stored));
                    }
                    tx.commit().await?;
                    Ok::<_, Error>(done)
                }
                .await;
                // The caller's own connection: after node loss, the caller closes it.
                if attempt.as_ref().is_err_and(is_node_loss) {
                    conn.close_on_drop();
                }
                drop(conn);
                connection_is_clean(&pool, &mut seen, "a caller's transaction", node_loss).await;
                match attempt {
                    Ok(done) => {
                        seen.calls.extend(done);
                        break;
                    }
                    Err(error) if error.is_retryable() => seen.retried += 1,
                    Err(error) if node_loss && is_node_loss(&error) => {
                        seen.lost_node(&error);
                        seen.lost
                            .extend(unit.iter().map(|&(key, value)| (task, key, value)));
                        break;
                    }
                    Err(error) => {
                        seen.errors.push(format!(
                            "caller's transaction, task {task}: a non-retryable error: {}",
                            chain(&error)
                        ));
                        break;
                    }
                }
            },
        }
    }
    pool.close().await;
    seen
}

/// Checks what the tasks saw against the rows every node holds; returns a one-line summary.
fn check(seen: &Seen, rows: &HashMap<String, Item>, keys: usize, node_loss: bool) -> String {
    assert!(
        seen.errors.is_empty(),
        "{} errors, first ones: {:#?}",
        seen.errors.len(),
        &seen.errors[..seen.errors.len().min(5)]
    );
    let mut creators: HashMap<usize, Vec<&Done>> = HashMap::new();
    let mut touched = std::collections::BTreeSet::new();
    let mut counts: HashMap<Outcome, usize> = HashMap::new();
    for call in &seen.calls {
        let (task, key, value, outcome, returned) = call;
        touched.insert(*key);
        *counts.entry(*outcome).or_default() += 1;
        let stored = rows.get(&sku(*key)).unwrap_or_else(|| {
            panic!("task {task} was told {outcome:?} for key {key}, but no node stores it")
        });
        assert_eq!(
            returned.id, stored.id,
            "key {key}: task {task} got id {} ({outcome:?}), the nodes store id {}",
            returned.id, stored.id
        );
        if outcome.created() {
            creators.entry(*key).or_default().push(call);
            assert_eq!(
                (stored.creator, returned.creator),
                (*task as i64, *task as i64),
                "key {key}: task {task} was told Created, the row's creator is {}",
                stored.creator
            );
        }
        if outcome.written() {
            assert_eq!(
                returned.value(*task),
                *value,
                "key {key}: task {task} was told {outcome:?} with a row holding another value than its own ({} instead of {value})",
                returned.value(*task)
            );
        }
        assert!(
            *outcome != Outcome::Unchanged,
            "key {key}: task {task} was told Unchanged, but no row held its new value {value}"
        );
    }
    for key in touched.iter().copied() {
        let made = creators.get(&key).map_or(0, Vec::len);
        let lost_here = seen.lost.iter().any(|&(_, k, _)| k == key);
        assert!(
            made == 1 || (made == 0 && node_loss && lost_here),
            "key {key}: {made} calls were told Created"
        );
    }
    for key in seen.lost.iter().map(|&(_, k, _)| k) {
        touched.insert(key);
    }
    let stored_keys: std::collections::BTreeSet<String> = rows.keys().cloned().collect();
    let expected: std::collections::BTreeSet<String> = touched.iter().map(|&k| sku(k)).collect();
    assert!(
        stored_keys.is_subset(&expected) && rows.len() <= keys,
        "rows stored for keys no call touched: {:?}",
        stored_keys.difference(&expected).collect::<Vec<_>>()
    );
    // No lost update, nothing reported written that is not stored: each task's column holds the
    // last value it was told was written (its values grow), or, with node loss, a later value
    // whose call lost its node.
    for (sku_text, stored) in rows {
        let key: usize = sku_text["key-".len()..].parse().unwrap();
        for t in 0..TASKS {
            let told = seen
                .calls
                .iter()
                .filter(|c| c.0 == t && c.1 == key && c.3.written())
                .map(|c| c.2)
                .max()
                .unwrap_or(0);
            let value = stored.value(t);
            let lost_later = seen
                .lost
                .iter()
                .any(|&(lt, lk, lv)| lt == t && lk == key && lv == value && lv > told);
            assert!(
                value == told || (node_loss && lost_later),
                "key {key}, column t{t}: stored {value}, but task {t} was last told it wrote {told}"
            );
        }
    }
    format!(
        "{} calls ({} created, {} found, {} updated), {} rows, {} retried by the caller, {} node-unavailable errors",
        seen.calls.len(),
        counts.get(&Outcome::Created).unwrap_or(&0),
        counts.get(&Outcome::Found).unwrap_or(&0),
        counts.get(&Outcome::Updated).unwrap_or(&0),
        rows.len(),
        seen.retried,
        seen.node_unavailable,
    )
}

/// get_or_create: every task asks for every key, in its own order, so every key has six
/// contenders on three nodes. The caller's transactions hold three calls each.
async fn get_or_create_everywhere(cluster: Arc<Cluster>, mode: Mode) {
    const KEYS: usize = 120;
    let per_tx = if mode == Mode::Caller { 3 } else { 1 };
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let mut rng = Rng(0x9e37_79b9 + t as u64 * 7919);
        let mut keys: Vec<usize> = (0..KEYS).collect();
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let work = keys
            .chunks(per_tx)
            .map(|c| c.iter().map(|&k| (k, 0)).collect())
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        handles.push(task(
            Arc::clone(&cluster),
            Op::GetOrCreate,
            mode,
            t,
            work,
            false,
            stop,
        ));
    }
    let mut seen = Seen::default();
    for one in futures_util::future::join_all(handles).await {
        seen.merge(one);
    }
    let rows = cluster.agreed_rows().await;
    assert_eq!(rows.len(), KEYS, "every key stored once");
    let summary = check(&seen, &rows, KEYS, false);
    report(&format!("galera get_or_create {mode:?}: {summary}"));
}

/// update_or_create on few hot keys: each task writes its own column with growing values. By
/// `sku` (MariaDB: one `INSERT … ON DUPLICATE KEY UPDATE … RETURNING`), or by the partial key
/// `code` (`partial`: `UPDATE`, then `SELECT`).
async fn update_or_create_everywhere(cluster: Arc<Cluster>, mode: Mode, partial: bool) {
    const KEYS: usize = 30;
    const CALLS: usize = 100;
    let per_tx = if mode == Mode::Caller { 2 } else { 1 };
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let mut rng = Rng(0x5151 + t as u64 * 104_729);
        let mut value = 0;
        let mut work = Vec::new();
        for _ in 0..CALLS / per_tx {
            let mut unit = Vec::new();
            while unit.len() < per_tx {
                let key = rng.below(KEYS as u64) as usize;
                if unit.iter().all(|&(k, _)| k != key) {
                    value += 1;
                    unit.push((key, value));
                }
            }
            work.push(unit);
        }
        handles.push(task(
            Arc::clone(&cluster),
            if partial {
                Op::UpdateOrCreatePartial
            } else {
                Op::UpdateOrCreate
            },
            mode,
            t,
            work,
            false,
            Arc::new(AtomicBool::new(false)),
        ));
    }
    let mut seen = Seen::default();
    for one in futures_util::future::join_all(handles).await {
        seen.merge(one);
    }
    let rows = cluster.agreed_rows().await;
    let summary = check(&seen, &rows, KEYS, false);
    let key = if partial { "partial key" } else { "key" };
    report(&format!(
        "galera update_or_create by {key} {mode:?}: {summary}"
    ));
}

macro_rules! galera_tests {
    ($($name:ident => $body:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(skip_galera, ignore = "Galera: run `.ci/galera start` and set TEST_GALERA_URLS (and TEST_GALERA_DIR) as it prints, when building and running the tests")]
            async fn $name() {
                scenario(stringify!($name), $body).await;
            }
        )*
    };
}

galera_tests! {
    get_or_create_autocommit => |c| get_or_create_everywhere(c, Mode::Autocommit);
    get_or_create_library_transaction => |c| get_or_create_everywhere(c, Mode::Library);
    get_or_create_caller_transaction => |c| get_or_create_everywhere(c, Mode::Caller);
    update_or_create_autocommit => |c| update_or_create_everywhere(c, Mode::Autocommit, false);
    update_or_create_library_transaction => |c| update_or_create_everywhere(c, Mode::Library, false);
    update_or_create_caller_transaction => |c| update_or_create_everywhere(c, Mode::Caller, false);
    update_or_create_partial_key_autocommit => |c| update_or_create_everywhere(c, Mode::Autocommit, true);
    update_or_create_partial_key_library_transaction => |c| update_or_create_everywhere(c, Mode::Library, true);
    update_or_create_partial_key_caller_transaction => |c| update_or_create_everywhere(c, Mode::Caller, true);
    bulk_get_or_create_overlapping => |c| bulk_overlapping(c, false);
    bulk_update_overlapping => |c| bulk_overlapping(c, true);
    node_paused_and_killed => node_loss;
}

/// Overlapping bulk calls from every node: each call writes 25 rows drawn from 80 keys (for
/// get-or-create, 80 keys no earlier call wrote, so that every call races to create). Skip mode
/// with the get-or-create report (each row Inserted or Found, with its id), or update mode (each
/// task's own column, one growing value per call).
async fn bulk_overlapping(cluster: Arc<Cluster>, update: bool) {
    const KEYS: usize = 80;
    const CALLS: usize = 12;
    const ROWS: usize = 25;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let cluster = Arc::clone(&cluster);
        handles.push(async move {
            let pool = cluster.pool(t % 3).await;
            let mut rng = Rng(0xb01c + t as u64 * 31);
            let mut seen = Seen::default();
            for value in 1..=CALLS as i64 {
                let mut keys: Vec<usize> = (0..KEYS).collect();
                for i in (1..keys.len()).rev() {
                    keys.swap(i, rng.below(i as u64 + 1) as usize);
                }
                keys.truncate(ROWS);
                // Sorted: the same rows in one order wait on each other instead of deadlocking.
                keys.sort_unstable();
                // Get-or-create races to create: each call draws from keys none has written yet
                // (the tasks' `value`-th calls share a range).
                if !update {
                    for key in &mut keys {
                        *key += (value as usize - 1) * KEYS;
                    }
                }
                let rows: Vec<Item> = keys.iter().map(|&k| Item::new(k, t, value)).collect();
                let result = if update {
                    BulkInsert::<Item>::new()
                        .update_conflicts::<ItemBySku>(&[field(t)])
                        .run(&pool, rows)
                        .await
                } else {
                    BulkInsert::<Item>::new()
                        .get_or_create::<ItemBySku>()
                        .run(&pool, rows)
                        .await
                };
                match result {
                    Ok(report) => {
                        for (&key, outcome) in keys.iter().zip(report.rows.expect("per row")) {
                            let (outcome, id) = match outcome {
                                RowOutcome::Inserted(id) => (Outcome::Created, id),
                                RowOutcome::Found(id) => (Outcome::Found, id),
                                RowOutcome::Updated(id) => (Outcome::Updated, id),
                                other => {
                                    seen.errors.push(format!(
                                        "task {t} key {key}: unexpected outcome {other:?}"
                                    ));
                                    continue;
                                }
                            };
                            // The bulk report has no row: the checker compares ids, and the
                            // value this call wrote.
                            let mut row = Item::new(key, t, value);
                            row.id = id;
                            seen.calls.push((t, key, value, outcome, row));
                        }
                    }
                    Err(error) => seen
                        .errors
                        .push(format!("bulk call of task {t}: {}", chain(&error))),
                }
                connection_is_clean(&pool, &mut seen, "a bulk call", false).await;
            }
            pool.close().await;
            seen
        });
    }
    let mut seen = Seen::default();
    for one in futures_util::future::join_all(handles).await {
        seen.merge(one);
    }
    let rows = cluster.agreed_rows().await;
    let summary = check(
        &seen,
        &rows,
        if update { KEYS } else { KEYS * CALLS },
        false,
    );
    let mode = if update { "update" } else { "get_or_create" };
    report(&format!("galera bulk {mode}: {summary}"));
}

/// A node of `.ci/galera`: its recorded pid and its start command.
struct Node {
    dir: std::path::PathBuf,
}

impl Node {
    fn new(index: usize) -> Node {
        let dir = std::env::var(DIR).unwrap_or_else(|_| {
            panic!("the node-loss test needs {DIR} (the directory `.ci/galera start` prints)")
        });
        Node {
            dir: std::path::Path::new(&dir).join(format!("node{index}")),
        }
    }

    /// The node's mariadbd pid, checked to be one.
    fn pid(&self) -> String {
        let pid = std::fs::read_to_string(self.dir.join("pid"))
            .unwrap_or_else(|e| panic!("{}/pid: {e}", self.dir.display()));
        let pid = pid.trim().to_owned();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert_eq!(
            comm.trim(),
            "mariadbd",
            "pid {pid} is not a running mariadbd"
        );
        pid
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid();
        let status = std::process::Command::new("kill")
            .args([signal, pid.as_str()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    async fn kill_and_wait(&self) {
        let pid = self.pid();
        self.signal("-KILL");
        while std::path::Path::new(&format!("/proc/{pid}/comm")).exists()
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z "))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn restart(&self) {
        let status = std::process::Command::new("sh")
            .arg(self.dir.join("start"))
            .status()
            .expect("run the node's start command");
        assert!(status.success(), "{}/start failed", self.dir.display());
    }
}

/// Puts a paused or killed node back, if the scenario failed half-way.
struct Revive(Node);

impl Drop for Revive {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.0.dir.join("pid")).unwrap_or_default();
        let alive = std::fs::read_to_string(format!("/proc/{}/comm", pid.trim()))
            .is_ok_and(|c| c.trim() == "mariadbd");
        if alive {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", pid.trim()])
                .status();
        } else {
            self.0.restart();
        }
    }
}

/// Tasks on all three nodes run get_or_create (autocommit and caller's transactions) and
/// update_or_create (`transaction()`) on hot keys while node 2 is paused for 8 s (longer than
/// the cluster's suspect timeout: it is evicted, then rejoins), and later killed and restarted.
async fn node_loss(cluster: Arc<Cluster>) {
    const KEYS: usize = 40;
    let node = Node::new(2);
    node.pid();
    let _revive = Revive(Node::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let mut rng = Rng(0x10_55 + t as u64 * 13);
        // Long enough for the whole run; the tasks stop when told.
        let (op, mode, per_tx) = match t / 3 {
            0 => (Op::UpdateOrCreate, Mode::Library, 1),
            _ if t == 4 => (Op::GetOrCreate, Mode::Caller, 2),
            _ => (Op::GetOrCreate, Mode::Autocommit, 1),
        };
        let mut value = 0;
        let work = (0..200_000)
            .map(|_| {
                (0..per_tx)
                    .map(|_| {
                        value += 1;
                        (rng.below(KEYS as u64) as usize, value)
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|unit: &Vec<(usize, i64)>| unit.len() < 2 || unit[0].0 != unit[1].0)
            .collect();
        handles.push(task(
            Arc::clone(&cluster),
            op,
            mode,
            t,
            work,
            true,
            Arc::clone(&stop),
        ));
    }
    let control = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        node.signal("-STOP");
        tokio::time::sleep(Duration::from_secs(8)).await;
        node.signal("-CONT");
        wait_healthy(Duration::from_secs(90)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        node.kill_and_wait().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        node.restart();
        wait_healthy(Duration::from_secs(120)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
    };
    let (all, ()) = tokio::join!(futures_util::future::join_all(handles), control);
    let mut seen = Seen::default();
    for one in all {
        seen.merge(one);
    }
    let rows = cluster.agreed_rows().await;
    let summary = check(&seen, &rows, KEYS, true);
    report(&format!(
        "galera node paused 8 s, then killed and restarted: {summary}; {} calls lost their node: {:?}",
        seen.lost.len(),
        seen.losses
    ));
}
