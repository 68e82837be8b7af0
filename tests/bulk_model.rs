//! Bulk insert against a small in-memory model of what its modes mean, on every backend: seeded
//! random inputs (keys from a small space, so that stored keys and repeats within and across chunks
//! are common, and one round in eight wide, over a larger space in chunks of 64 rows or more;
//! random batch sizes, 1 included; skip and update modes; a natural key and the primary
//! key as the conflict target; per-row reports and counts only). A failing round is shrunk to the
//! smallest input that still fails, replayed on a table reset to the round's starting state, and
//! reported with its seed.
//!
//! Update mode also runs with a condition (only if the price rises, or does not fall) and with an
//! increment (the price is added to), where a key repeated in the input is refused.
//!
//! `BULK_MODEL_ROUNDS` (default 50) and `BULK_MODEL_SEED` change the run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use model_integration::{Rng, TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{BulkInsert, BulkReport, Model, RowOutcome, Schema};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "products")]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    #[model(max_length = 100)]
    product_name: String,
    price_cents: i64,
}

/// Rows keyed by the primary key carry ids from here on, far from the ids the database assigns.
const EXPLICIT_IDS: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Skip,
    Update,
    /// Update mode, only if the incoming price is greater (`true`) or not smaller (`false`).
    Newer(bool),
    /// Update mode, adding the incoming price to the stored one.
    Add,
}

impl Mode {
    /// Update mode with a condition or an increment: "the last wins" does not apply, and an input
    /// that repeats a key is refused.
    fn refuses_repeats(self) -> bool {
        matches!(self, Mode::Newer(_) | Mode::Add)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    /// `ProductBySku`: rows carry id 0, and the database assigns ids.
    Sku,
    /// `ProductById`: rows carry explicit ids (and the sku `I{k}` for id `EXPLICIT_IDS + k`).
    Id,
}

#[derive(Debug, Clone)]
struct Round {
    mode: Mode,
    target: Target,
    chunk: usize,
    per_row: bool,
    rows: Vec<Product>,
}

/// The stored table: sku → (id, price); the id is 0 until the database has assigned one.
type Table = BTreeMap<String, (i64, i64)>;

/// What the round must report, row by row, and the table after it. The stored row of a key ends
/// with the values of the row that wins (the first when skipping, the last when updating).
#[derive(Debug, PartialEq)]
enum Expect {
    Inserted,
    Updated(i64),
    /// Update mode: every write of the key left the stored values as they were.
    Unchanged,
    /// Update mode with a condition: the condition refused the incoming price.
    Stale,
    Existing,
    Duplicate {
        first: usize,
    },
    Superseded {
        last: usize,
    },
}

fn expected(table: &Table, round: &Round) -> (Vec<Expect>, Table) {
    // The conflict key of a row, and the stored row it meets: by sku, or by id (whatever that row's
    // sku: MariaDB and SQLite assign ids past the explicit ones, so the two kinds of row can meet).
    let key_of = |row: &Product| match round.target {
        Target::Sku => row.sku.clone(),
        Target::Id => format!("#{}", row.id),
    };
    let stored_of = |row: &Product| -> Option<(String, i64)> {
        match round.target {
            Target::Sku => table.get(&row.sku).map(|(id, _)| (row.sku.clone(), *id)),
            Target::Id => table
                .iter()
                .find(|(_, (id, _))| *id == row.id)
                .map(|(sku, (id, _))| (sku.clone(), *id)),
        }
    };
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    let mut last: BTreeMap<String, usize> = BTreeMap::new();
    for (i, row) in round.rows.iter().enumerate() {
        first.entry(key_of(row)).or_insert(i);
        last.insert(key_of(row), i);
    }
    if round.mode.refuses_repeats() {
        // No key repeats (see `check`): each row meets the stored row of its key, or none.
        let mut after = table.clone();
        let outcomes = round
            .rows
            .iter()
            .map(|row| match stored_of(row) {
                None => {
                    after.insert(row.sku.clone(), (row.id, row.price_cents));
                    Expect::Inserted
                }
                Some((sku, id)) => {
                    let price = table[&sku].1;
                    let new = row.price_cents;
                    let (outcome, stored) = match round.mode {
                        Mode::Add => (Expect::Updated(id), price + new),
                        Mode::Newer(_) if new > price => (Expect::Updated(id), new),
                        Mode::Newer(false) if new == price => (Expect::Unchanged, price),
                        _ => (Expect::Stale, price),
                    };
                    after.insert(sku, (id, stored));
                    outcome
                }
            })
            .collect();
        return (outcomes, after);
    }
    // Update mode: each chunk writes the last row of a key it holds; a stored key is updated when
    // one of those writes changes its price, unchanged when none does.
    let mut changed: BTreeMap<String, bool> = BTreeMap::new();
    if round.mode == Mode::Update {
        let mut current: BTreeMap<String, i64> = BTreeMap::new();
        for chunk in round.rows.chunks(round.chunk) {
            let mut last_in_chunk: BTreeMap<String, i64> = BTreeMap::new();
            for row in chunk {
                last_in_chunk.insert(key_of(row), row.price_cents);
            }
            for row in chunk {
                let key = key_of(row);
                let Some(&written) = last_in_chunk.get(&key) else {
                    continue;
                };
                let Some((sku, _)) = stored_of(row) else {
                    continue;
                };
                let now = current.entry(key.clone()).or_insert(table[&sku].1);
                if *now != written {
                    changed.insert(key.clone(), true);
                }
                *now = written;
                last_in_chunk.remove(&key);
            }
        }
    }
    let outcomes = round
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let key = key_of(row);
            let stored = stored_of(row);
            match round.mode {
                Mode::Skip if first[&key] != i => Expect::Duplicate { first: first[&key] },
                Mode::Skip if stored.is_some() => Expect::Existing,
                Mode::Skip => Expect::Inserted,
                _ if last[&key] != i => Expect::Superseded { last: last[&key] },
                _ if stored.is_some() && !changed.contains_key(&key) => Expect::Unchanged,
                _ if stored.is_some() => Expect::Updated(stored.unwrap().1),
                _ => Expect::Inserted,
            }
        })
        .collect::<Vec<_>>();
    let mut after = table.clone();
    for (i, row) in round.rows.iter().enumerate() {
        let key = key_of(row);
        let wins = match round.mode {
            Mode::Skip => first[&key] == i,
            _ => last[&key] == i,
        };
        match (wins, stored_of(row), round.mode) {
            (true, Some((sku, id)), mode) if mode != Mode::Skip => {
                after.insert(sku, (id, row.price_cents));
            }
            (true, None, _) => {
                after.insert(row.sku.clone(), (row.id, row.price_cents));
            }
            _ => {}
        }
    }
    (outcomes, after)
}

async fn run_bulk<DB: TestBackend>(
    db: &TestDb<DB>,
    round: &Round,
) -> Result<BulkReport<i64>, String> {
    let fields = [ProductField::PriceCents];
    let bulk = BulkInsert::<Product>::new().batch_size(round.chunk);
    let bulk = if round.per_row {
        bulk
    } else {
        bulk.counts_only()
    };
    let result = match (round.mode, round.target) {
        (Mode::Skip, Target::Sku) => {
            bulk.skip_conflicts::<ProductBySku>()
                .run(&db.pool, round.rows.clone())
                .await
        }
        (Mode::Skip, Target::Id) => {
            bulk.skip_conflicts::<ProductById>()
                .run(&db.pool, round.rows.clone())
                .await
        }
        (mode, target) => {
            let update = match target {
                Target::Sku => bulk.update_conflicts::<ProductBySku>(match mode {
                    Mode::Add => &[],
                    _ => &fields,
                }),
                Target::Id => bulk.update_conflicts::<ProductById>(match mode {
                    Mode::Add => &[],
                    _ => &fields,
                }),
            };
            let update = match mode {
                Mode::Newer(true) => update.only_if_newer(Product::FIELDS.price_cents),
                Mode::Newer(false) => update.only_if_not_older(Product::FIELDS.price_cents),
                Mode::Add => update.increment(Product::FIELDS.price_cents),
                _ => update,
            };
            update.run(&db.pool, round.rows.clone()).await
        }
    };
    result.map_err(|e| match &e {
        model_runtime::Error::Bulk { source, .. } => format!("the call failed: {e}: {source}"),
        _ => format!("the call failed: {e}"),
    })
}

/// Runs a round and compares everything with the model; `Err` describes the first difference.
async fn check<DB: TestBackend>(
    db: &TestDb<DB>,
    table: &Table,
    round: &Round,
) -> Result<Table, String> {
    if round.mode.refuses_repeats() && has_repeats(round) {
        // Refused before anything is kept: the table stays as it was.
        return match run_bulk(db, round).await {
            Ok(report) => Err(format!("a repeated key was accepted: {report:?}")),
            Err(e) if !e.contains("repeats the key") => Err(format!("the wrong error: {e}")),
            Err(_) if DB::count(&db.pool, "products").await != table.len() as i64 => {
                Err("the refused call kept rows".into())
            }
            Err(_) => Ok(table.clone()),
        };
    }
    let (expect, after) = expected(table, round);
    let report = run_bulk(db, round).await?;
    // The stored table.
    let mut stored = Table::new();
    for sku in after.keys() {
        if let Some(row) = Product::by_sku(sku.as_str())
            .get(&db.pool)
            .await
            .map_err(|e| e.to_string())?
        {
            stored.insert(sku.clone(), (row.id, row.price_cents));
        }
    }
    // Ids the database assigned are not the model's to predict: take them from the table.
    let mut after = after;
    for (sku, (id, _)) in after.iter_mut() {
        if *id == 0 {
            *id = stored.get(sku).map_or(0, |(id, _)| *id);
        }
    }
    if stored != after {
        return Err(format!("stored {stored:?}, expected {after:?}"));
    }
    let count = DB::count(&db.pool, "products").await;
    if count != after.len() as i64 {
        return Err(format!("{count} rows stored, expected {}", after.len()));
    }
    // The counts.
    let want = |f: fn(&Expect) -> bool| expect.iter().filter(|e| f(e)).count() as u64;
    let counts = (
        report.inserted,
        report.updated,
        report.unchanged,
        report.stale,
        report.skipped_existing,
        report.skipped_in_input,
    );
    let expected_counts = (
        want(|e| matches!(e, Expect::Inserted)),
        want(|e| matches!(e, Expect::Updated(_))),
        want(|e| matches!(e, Expect::Unchanged)),
        want(|e| matches!(e, Expect::Stale)),
        want(|e| matches!(e, Expect::Existing)),
        want(|e| matches!(e, Expect::Duplicate { .. } | Expect::Superseded { .. })),
    );
    if counts != expected_counts {
        return Err(format!(
            "counts (inserted, updated, unchanged, stale, existing, repeats) {counts:?}, expected {expected_counts:?}"
        ));
    }
    // The per-row report, primary keys included.
    match (&report.rows, round.per_row) {
        (None, false) => {}
        (Some(rows), true) => {
            for (i, (got, want)) in rows.iter().zip(&expect).enumerate() {
                let sku = &round.rows[i].sku;
                let ok = match (got, want) {
                    (RowOutcome::Inserted(pk), Expect::Inserted) => {
                        Some(*pk) == stored.get(sku).map(|(id, _)| *id)
                            && (round.target == Target::Sku || *pk == round.rows[i].id)
                    }
                    (RowOutcome::Updated(pk), Expect::Updated(id)) => pk == id,
                    (RowOutcome::Unchanged, Expect::Unchanged) => true,
                    (RowOutcome::Stale, Expect::Stale) => true,
                    (RowOutcome::SkippedExisting, Expect::Existing) => true,
                    (RowOutcome::SkippedDuplicate { first }, Expect::Duplicate { first: f }) => {
                        first == f
                    }
                    (RowOutcome::Superseded { last }, Expect::Superseded { last: l }) => last == l,
                    _ => false,
                };
                if !ok {
                    return Err(format!(
                        "row {i} ({sku}): reported {got:?}, expected {want:?}"
                    ));
                }
            }
            if rows.len() != expect.len() {
                return Err(format!("{} outcomes for {} rows", rows.len(), expect.len()));
            }
        }
        (rows, _) => {
            return Err(format!(
                "per-row report {rows:?} with per_row = {}",
                round.per_row
            ));
        }
    }
    Ok(stored)
}

/// Whether two input rows share a conflict key.
fn has_repeats(round: &Round) -> bool {
    let mut keys = std::collections::BTreeSet::new();
    !round.rows.iter().all(|row| match round.target {
        Target::Sku => keys.insert(row.sku.clone()),
        Target::Id => keys.insert(format!("#{}", row.id)),
    })
}

/// Puts the table back to `table` (ids included), outside the code under test.
async fn reset<DB: TestBackend>(db: &TestDb<DB>, table: &Table) {
    DB::run(&db.pool, "DELETE FROM products").await;
    if table.is_empty() {
        return;
    }
    let rows: Vec<String> = table
        .iter()
        .enumerate()
        .map(|(name, (sku, (id, price)))| format!("({id}, '{sku}', 'reset{name}', {price})"))
        .collect();
    DB::run(
        &db.pool,
        &format!(
            "INSERT INTO products (id, sku, product_name, price_cents) VALUES {}",
            rows.join(", ")
        ),
    )
    .await;
}

fn random_round(rng: &mut Rng, names: &mut u64) -> Round {
    let mode = match rng.below(6) {
        0 | 1 => Mode::Skip,
        2 | 3 => Mode::Update,
        4 => Mode::Newer(rng.below(2) == 0),
        _ => Mode::Add,
    };
    let target = if rng.below(4) == 0 {
        Target::Id
    } else {
        Target::Sku
    };
    // One round in eight is wide: 64 to 191 rows over 240 keys, in chunks of at least 64 distinct
    // keys (PostgreSQL's skip mode writes such a chunk by anti-join).
    let wide = rng.below(8) == 0;
    let (len, keys) = if wide {
        (64 + rng.below(128) as usize, 240)
    } else {
        (rng.below(40) as usize, 24)
    };
    let chunk = match rng.below(4) {
        _ if wide => 64 + rng.below(192) as usize,
        0 => 1,
        1 => 1 + rng.below(4) as usize,
        2 => 1 + rng.below(16) as usize,
        _ => 1000,
    };
    let mut rows: Vec<Product> = (0..len)
        .map(|_| {
            *names += 1;
            let k = rng.below(keys);
            let (id, sku) = match target {
                Target::Sku => (0, format!("K{k}")),
                Target::Id => (EXPLICIT_IDS + k as i64, format!("I{k}")),
            };
            Product {
                id,
                sku,
                product_name: format!("n{names}"),
                // Few prices, so that an update often meets the price already stored.
                price_cents: rng.below(3) as i64,
            }
        })
        .collect();
    // With a condition or an increment, most rounds keep one row per key (the rest are refused).
    if mode.refuses_repeats() && rng.below(5) != 0 {
        let mut keys = std::collections::BTreeSet::new();
        rows.retain(|row| keys.insert((row.id, row.sku.clone())));
    }
    Round {
        mode,
        target,
        chunk,
        per_row: rng.below(3) != 0,
        rows,
    }
}

/// Removes rows (and shrinks the chunk) while the round still fails from the same table.
async fn shrink<DB: TestBackend>(
    db: &TestDb<DB>,
    table: &Table,
    mut round: Round,
) -> (Round, String) {
    reset(db, table).await;
    let mut error = check(db, table, &round).await.err().unwrap_or_default();
    loop {
        let mut smaller = false;
        let mut candidates: Vec<Round> = (0..round.rows.len())
            .map(|i| {
                let mut r = round.clone();
                r.rows.remove(i);
                r
            })
            .collect();
        if round.chunk > 1 {
            let mut r = round.clone();
            r.chunk = (round.chunk / 2).max(1).min(round.rows.len().max(1));
            candidates.push(r);
        }
        for candidate in candidates {
            reset(db, table).await;
            if let Err(e) = check(db, table, &candidate).await {
                round = candidate;
                error = e;
                smaller = true;
                break;
            }
        }
        if !smaller {
            return (round, error);
        }
    }
}

async fn bulk_matches_the_model<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    let rounds: usize = std::env::var("BULK_MODEL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("BULK_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed);
    let mut names = 0;
    let mut table = Table::new();
    let mut stats = [0usize; 8];
    for n in 0..rounds {
        let round = random_round(&mut rng, &mut names);
        let (expect, _) = expected(&table, &round);
        stats[4] += expect
            .iter()
            .filter(|e| matches!(e, Expect::Unchanged))
            .count();
        stats[5] += expect
            .iter()
            .filter(|e| matches!(e, Expect::Updated(_)))
            .count();
        stats[6] += expect.iter().filter(|e| matches!(e, Expect::Stale)).count();
        stats[7] += usize::from(round.mode.refuses_repeats() && has_repeats(&round));
        match check(&db, &table, &round).await {
            Ok(after) => {
                stats[0] += round.rows.len();
                stats[1] += usize::from(round.chunk < round.rows.len());
                stats[2] += usize::from(round.target == Target::Id);
                stats[3] += usize::from(!round.per_row);
                table = after;
            }
            Err(first) => {
                let (small, error) = shrink(&db, &table, round.clone()).await;
                let mut rows = String::new();
                for r in &small.rows {
                    let _ = write!(
                        rows,
                        "\n    id {} sku {} price {}",
                        r.id, r.sku, r.price_cents
                    );
                }
                panic!(
                    "{}: round {n} of seed {seed:#x} failed: {first}\nsmallest failing case, from the table {table:?}: {:?} mode, {:?} key, chunk {}, per_row {}:{rows}\n  -> {error}",
                    DB::DIALECT,
                    small.mode,
                    small.target,
                    small.chunk,
                    small.per_row
                );
            }
        }
    }
    model_integration::report(&format!(
        "{} bulk model: {rounds} rounds, {} rows, {} rounds over several chunks, {} keyed by the primary key, {} counts only, {} rows unchanged, {} updated and {} stale, {} rounds refused for a repeated key",
        DB::DIALECT,
        stats[0],
        stats[1],
        stats[2],
        stats[3],
        stats[4],
        stats[5],
        stats[6],
        stats[7]
    ));
}

/// A key written three times in one chunk, and again in later chunks: every superseded row points
/// at the row that was written (the last), and counts do not depend on the chunking.
async fn superseded_rows_point_at_the_written_row<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    let row = |sku: &str, price| Product {
        id: 0,
        sku: sku.into(),
        product_name: format!("{sku}{price}"),
        price_cents: price,
    };
    for chunk in [1, 2, 3, 1000] {
        DB::run(&db.pool, "DELETE FROM products").await;
        let rows = vec![
            row("A", 1),
            row("A", 2),
            row("A", 3),
            row("B", 4),
            row("A", 5),
        ];
        let report = BulkInsert::<Product>::new()
            .batch_size(chunk)
            .update_conflicts::<ProductBySku>(&[ProductField::PriceCents])
            .run(&db.pool, rows)
            .await
            .unwrap();
        let outcomes = report.rows.unwrap();
        for (i, outcome) in outcomes.iter().enumerate().take(3) {
            assert_eq!(
                *outcome,
                RowOutcome::Superseded { last: 4 },
                "chunk {chunk}, row {i}"
            );
        }
        assert!(
            matches!(outcomes[4], RowOutcome::Inserted(_)),
            "chunk {chunk}: {outcomes:?}"
        );
        assert_eq!(
            (report.inserted, report.updated, report.skipped_in_input),
            (2, 0, 3),
            "chunk {chunk}"
        );
        let stored = Product::by_sku("A").get(&db.pool).await.unwrap().unwrap();
        assert_eq!(stored.price_cents, 5, "chunk {chunk}: the last wins");
    }
}

backend_tests!(
    bulk_matches_the_model,
    superseded_rows_point_at_the_written_row
);
