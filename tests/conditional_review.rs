//! Adversarial review of conditional updates and increments (`Changes::increment`,
//! `only_if_newer`, `only_if_not_older`, and their bulk forms): every outcome and stored row is
//! compared with a tiny in-memory model, over every key kind (primary key, composite
//! case-insensitive, nulls_not_distinct, partial), caller transactions, the MariaDB fallback path,
//! type limits, and races.

use std::collections::HashMap;

use model_integration::{Rng, TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{
    BulkInsert, Changes, Dialect, Error, Model, Outcome, RowOutcome, Schema, update_or_create,
};

// ---------------------------------------------------------------------------------------------
// The model under test: one entity is identified alike by its primary key, by (tenant, code)
// compared case-insensitively, and by `ext` under nulls_not_distinct (one entity has ext NULL).

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "acc")]
#[unique_together(tenant, code, case_insensitive(code))]
struct Acc {
    #[model(primary_key)]
    id: i64,
    tenant: i64,
    #[model(max_length = 20)]
    code: String,
    #[unique(nulls_not_distinct)]
    ext: Option<i64>,
    ver: i64,
    seen: Option<i64>,
    a: i16,
    b: i32,
    c: i64,
    f: f64,
    #[model(max_length = 20)]
    note: String,
    #[model(max_length = 20)]
    tag: Option<String>,
}

const ENTITIES: u64 = 5;

fn seed(d: Dialect) -> u64 {
    match d {
        Dialect::Sqlite => 1,
        Dialect::Postgres => 2,
        Dialect::MySql => 3,
    }
}

fn identity(e: u64, rng: &mut Rng) -> Acc {
    let code = if rng.below(2) == 0 {
        format!("k{e}")
    } else {
        format!("K{e}")
    };
    Acc {
        id: e as i64 + 1,
        tenant: (e % 2) as i64,
        code,
        ext: if e == 0 { None } else { Some(100 + e as i64) },
        ver: 0,
        seen: None,
        a: 0,
        b: 0,
        c: 0,
        f: 0.0,
        note: String::new(),
        tag: None,
    }
}

fn random_row(e: u64, rng: &mut Rng) -> Acc {
    let mut row = identity(e, rng);
    row.ver = rng.below(6) as i64;
    row.seen = match rng.below(3) {
        0 => None,
        _ => Some(rng.below(6) as i64 - 1),
    };
    row.a = rng.below(7) as i16 - 3;
    row.b = rng.below(7) as i32 - 3;
    row.c = rng.below(7) as i64 - 3;
    row.f = (rng.below(9) as f64 - 4.0) / 4.0;
    row.note = ["x", "y", "X", "x "][rng.below(4) as usize].into();
    row.tag = [None, Some("t"), Some("T")][rng.below(3) as usize].map(Into::into);
    row
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum KeyKind {
    Pk,
    TenantCode,
    Ext,
}

impl KeyKind {
    fn columns(self) -> &'static [AccField] {
        match self {
            KeyKind::Pk => &[AccField::Id],
            KeyKind::TenantCode => &[AccField::Tenant, AccField::Code],
            KeyKind::Ext => &[AccField::Ext],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Inc {
    A,
    B,
    C,
    F,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum G {
    NewerVer,
    NotOlderVer,
    NewerSeen,
    NotOlderSeen,
    NewerC,
    NotOlderA,
    NewerB,
    NewerTenant,
    NotOlderId,
}

impl Inc {
    fn field(self) -> AccField {
        match self {
            Inc::A => AccField::A,
            Inc::B => AccField::B,
            Inc::C => AccField::C,
            Inc::F => AccField::F,
        }
    }
}

fn with_extra<'a>(
    mut changes: Changes<'a, Acc>,
    incs: &[Inc],
    guard: Option<G>,
) -> Changes<'a, Acc> {
    for inc in incs {
        changes = match inc {
            Inc::A => changes.increment(Acc::FIELDS.a),
            Inc::B => changes.increment(Acc::FIELDS.b),
            Inc::C => changes.increment(Acc::FIELDS.c),
            Inc::F => changes.increment(Acc::FIELDS.f),
        };
    }
    match guard {
        None => changes,
        Some(G::NewerVer) => changes.only_if_newer(Acc::FIELDS.ver),
        Some(G::NotOlderVer) => changes.only_if_not_older(Acc::FIELDS.ver),
        Some(G::NewerSeen) => changes.only_if_newer(Acc::FIELDS.seen),
        Some(G::NotOlderSeen) => changes.only_if_not_older(Acc::FIELDS.seen),
        Some(G::NewerC) => changes.only_if_newer(Acc::FIELDS.c),
        Some(G::NotOlderA) => changes.only_if_not_older(Acc::FIELDS.a),
        Some(G::NewerB) => changes.only_if_newer(Acc::FIELDS.b),
        Some(G::NewerTenant) => changes.only_if_newer(Acc::FIELDS.tenant),
        Some(G::NotOlderId) => changes.only_if_not_older(Acc::FIELDS.id),
    }
}

fn bulk_extra(
    mut bulk: BulkInsert<Acc, model_runtime::ConflictModeSet>,
    incs: &[Inc],
    guard: Option<G>,
) -> BulkInsert<Acc, model_runtime::ConflictModeSet> {
    for inc in incs {
        bulk = match inc {
            Inc::A => bulk.increment(Acc::FIELDS.a),
            Inc::B => bulk.increment(Acc::FIELDS.b),
            Inc::C => bulk.increment(Acc::FIELDS.c),
            Inc::F => bulk.increment(Acc::FIELDS.f),
        };
    }
    match guard {
        None => bulk,
        Some(G::NewerVer) => bulk.only_if_newer(Acc::FIELDS.ver),
        Some(G::NotOlderVer) => bulk.only_if_not_older(Acc::FIELDS.ver),
        Some(G::NewerSeen) => bulk.only_if_newer(Acc::FIELDS.seen),
        Some(G::NotOlderSeen) => bulk.only_if_not_older(Acc::FIELDS.seen),
        Some(G::NewerC) => bulk.only_if_newer(Acc::FIELDS.c),
        Some(G::NotOlderA) => bulk.only_if_not_older(Acc::FIELDS.a),
        Some(G::NewerB) => bulk.only_if_newer(Acc::FIELDS.b),
        Some(G::NewerTenant) => bulk.only_if_newer(Acc::FIELDS.tenant),
        Some(G::NotOlderId) => bulk.only_if_not_older(Acc::FIELDS.id),
    }
}

/// The model's guard: `Option`'s order (None first), strict or not.
fn admits(guard: G, stored: &Acc, incoming: &Acc) -> bool {
    let (s, i, strict): (Option<i64>, Option<i64>, bool) = match guard {
        G::NewerVer => (Some(stored.ver), Some(incoming.ver), true),
        G::NotOlderVer => (Some(stored.ver), Some(incoming.ver), false),
        G::NewerSeen => (stored.seen, incoming.seen, true),
        G::NotOlderSeen => (stored.seen, incoming.seen, false),
        G::NewerC => (Some(stored.c), Some(incoming.c), true),
        G::NotOlderA => (Some(stored.a as i64), Some(incoming.a as i64), false),
        G::NewerB => (Some(stored.b as i64), Some(incoming.b as i64), true),
        G::NewerTenant => (Some(stored.tenant), Some(incoming.tenant), true),
        G::NotOlderId => (Some(stored.id), Some(incoming.id), false),
    };
    if strict { s < i } else { s <= i }
}

fn set_field(row: &mut Acc, from: &Acc, field: AccField) {
    match field {
        AccField::Id => row.id = from.id,
        AccField::Tenant => row.tenant = from.tenant,
        AccField::Code => row.code = from.code.clone(),
        AccField::Ext => row.ext = from.ext,
        AccField::Ver => row.ver = from.ver,
        AccField::Seen => row.seen = from.seen,
        AccField::A => row.a = from.a,
        AccField::B => row.b = from.b,
        AccField::C => row.c = from.c,
        AccField::F => row.f = from.f,
        AccField::Note => row.note = from.note.clone(),
        AccField::Tag => row.tag = from.tag.clone(),
    }
}

fn field_same(row: &Acc, from: &Acc, field: AccField) -> bool {
    let mut copy = row.clone();
    set_field(&mut copy, from, field);
    copy == *row
}

/// What the call should do, by the documented semantics.
fn expect(
    stored: Option<&Acc>,
    create: &Acc,
    values: &Acc,
    fields: &[AccField],
    key: KeyKind,
    incs: &[Inc],
    guard: Option<G>,
) -> (Acc, Outcome) {
    let Some(stored) = stored else {
        return (create.clone(), Outcome::Created);
    };
    if let Some(g) = guard
        && !admits(g, stored, values)
    {
        return (stored.clone(), Outcome::Stale);
    }
    let set: Vec<AccField> = fields
        .iter()
        .copied()
        .filter(|f| !key.columns().contains(f))
        .collect();
    if incs.is_empty() && set.iter().all(|&f| field_same(stored, values, f)) {
        return (stored.clone(), Outcome::Unchanged);
    }
    let mut row = stored.clone();
    for &f in &set {
        set_field(&mut row, values, f);
    }
    for inc in incs {
        match inc {
            Inc::A => row.a += values.a,
            Inc::B => row.b += values.b,
            Inc::C => row.c += values.c,
            Inc::F => row.f += values.f,
        }
    }
    (row, Outcome::Updated)
}

macro_rules! uoc {
    ($k:ty, $conn:expr, $create:expr, $changes:expr) => {
        update_or_create::<$k>($conn, $create, $changes).await
    };
}

async fn call_kind<DB: TestBackend>(
    db: &TestDb<DB>,
    in_tx: bool,
    key: KeyKind,
    create: &Acc,
    changes: Changes<'_, Acc>,
) -> Result<(Acc, Outcome), Error> {
    if in_tx {
        let mut tx = db.pool.begin().await.unwrap();
        let result = match key {
            KeyKind::Pk => uoc!(AccById, &mut tx, create, changes),
            KeyKind::TenantCode => uoc!(AccByTenantAndCode, &mut tx, create, changes),
            KeyKind::Ext => uoc!(AccByExt, &mut tx, create, changes),
        };
        tx.commit().await.unwrap();
        result
    } else {
        match key {
            KeyKind::Pk => uoc!(AccById, &db.pool, create, changes),
            KeyKind::TenantCode => uoc!(AccByTenantAndCode, &db.pool, create, changes),
            KeyKind::Ext => uoc!(AccByExt, &db.pool, create, changes),
        }
    }
}

fn pick_fields(rng: &mut Rng, key: KeyKind) -> Vec<AccField> {
    let mut pool = vec![
        AccField::Tenant,
        AccField::Code,
        AccField::Ext,
        AccField::Ver,
        AccField::Seen,
        AccField::A,
        AccField::B,
        AccField::C,
        AccField::F,
        AccField::Note,
        AccField::Tag,
    ];
    if key == KeyKind::Pk {
        pool.push(AccField::Id);
    }
    let mut fields = Vec::new();
    for f in pool {
        if rng.below(3) == 0 {
            fields.push(f);
        }
    }
    // Shuffle, and now and then repeat one.
    for i in (1..fields.len()).rev() {
        fields.swap(i, rng.below(i as u64 + 1) as usize);
    }
    if !fields.is_empty() && rng.below(5) == 0 {
        fields.push(fields[0]);
    }
    fields
}

fn pick_incs(rng: &mut Rng, fields: &[AccField]) -> Vec<Inc> {
    let mut incs = Vec::new();
    for inc in [Inc::A, Inc::B, Inc::C, Inc::F] {
        if !fields.contains(&inc.field()) && rng.below(3) == 0 {
            incs.push(inc);
        }
    }
    incs
}

fn pick_guard(rng: &mut Rng) -> Option<G> {
    [
        None,
        Some(G::NewerVer),
        Some(G::NotOlderVer),
        Some(G::NewerSeen),
        Some(G::NotOlderSeen),
        Some(G::NewerC),
        Some(G::NotOlderA),
        Some(G::NewerB),
        Some(G::NewerTenant),
        Some(G::NotOlderId),
    ][rng.below(10) as usize]
}

/// 400 random single-row calls, each compared with the model: outcome, returned row, stored row.
/// Every key kind, set + increments + guard in every combination, values from the create row or
/// from another row, on the pool or in the caller's transaction.
async fn random_single_calls_match_the_model<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Acc>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let mut rng = Rng(0x1234_5678 ^ seed(d));
    let mut model: HashMap<u64, Acc> = HashMap::new();
    let mut failures = Vec::new();
    for step in 0..1500 {
        let e = rng.below(ENTITIES);
        let key = [KeyKind::Pk, KeyKind::TenantCode, KeyKind::Ext][rng.below(3) as usize];
        let create = random_row(e, &mut rng);
        let other = random_row(e, &mut rng);
        let same_row = rng.below(2) == 0;
        let values = if same_row { &create } else { &other };
        let fields = pick_fields(&mut rng, key);
        let incs = pick_incs(&mut rng, &fields);
        let guard = pick_guard(&mut rng);
        let in_tx = rng.below(3) == 0;
        let changes = with_extra(Changes::new(values, &fields), &incs, guard);
        let (want_row, want) = expect(model.get(&e), &create, values, &fields, key, &incs, guard);
        let got = call_kind(&db, in_tx, key, &create, changes).await;
        let what = format!(
            "{d} step {step}: e{e} key {key:?} fields {fields:?} incs {incs:?} guard {guard:?} same_row {same_row} tx {in_tx}\n  stored {:?}\n  create {create:?}\n  values {values:?}",
            model.get(&e)
        );
        match got {
            Err(error) => {
                failures.push(format!("{what}\n  error {error}"));
                break;
            }
            Ok((row, outcome)) => {
                let stored = Acc::by_id(e as i64 + 1).get(&db.pool).await.unwrap();
                if outcome != want || row != want_row || stored.as_ref() != Some(&want_row) {
                    failures.push(format!(
                        "{what}\n  want {want:?} {want_row:?}\n  got  {outcome:?} {row:?}\n  now stored {stored:?}"
                    ));
                    if failures.len() > 3 {
                        break;
                    }
                }
                // Continue from what the database holds, to find more than one failure.
                if let Some(stored) = stored {
                    model.insert(e, stored);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random bulk calls (update_conflicts with increments and guards), chunked in every way, per row
/// and counts only, compared with the model.
async fn random_bulk_calls_match_the_model<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Acc>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let mut rng = Rng(0xfeed_beef ^ seed(d));
    let mut model: HashMap<u64, Acc> = HashMap::new();
    let mut failures = Vec::new();
    for step in 0..300 {
        let key = [KeyKind::Pk, KeyKind::TenantCode, KeyKind::Ext][rng.below(3) as usize];
        let mut fields: Vec<AccField> = pick_fields(&mut rng, key)
            .into_iter()
            .filter(|f| !key.columns().contains(f) && *f != AccField::Id)
            .collect();
        fields.dedup();
        let incs = pick_incs(&mut rng, &fields);
        if fields.is_empty() && incs.is_empty() {
            fields.push(AccField::Note);
        }
        let guard = pick_guard(&mut rng);
        // Distinct entities, in random order.
        let mut entities: Vec<u64> = (0..ENTITIES).filter(|_| rng.below(3) != 0).collect();
        for i in (1..entities.len()).rev() {
            entities.swap(i, rng.below(i as u64 + 1) as usize);
        }
        if entities.is_empty() {
            continue;
        }
        let rows: Vec<Acc> = entities.iter().map(|&e| random_row(e, &mut rng)).collect();
        let batch = [1usize, 2, 3, 1000][rng.below(4) as usize];
        let counts_only = rng.below(3) == 0;
        let each_chunk = rng.below(3) == 0;
        let want: Vec<(Acc, Outcome)> = entities
            .iter()
            .zip(&rows)
            .map(|(e, row)| expect(model.get(e), row, row, &fields, key, &incs, guard))
            .collect();
        macro_rules! run_bulk {
            ($k:ty) => {{
                let mut bulk = bulk_extra(
                    BulkInsert::<Acc>::new().update_conflicts::<$k>(&fields),
                    &incs,
                    guard,
                )
                .batch_size(batch);
                if counts_only {
                    bulk = bulk.counts_only();
                }
                if each_chunk {
                    bulk = bulk.commit_each_chunk();
                }
                bulk.run(&db.pool, rows.clone()).await
            }};
        }
        let report = match key {
            KeyKind::Pk => run_bulk!(AccById),
            KeyKind::TenantCode => run_bulk!(AccByTenantAndCode),
            KeyKind::Ext => run_bulk!(AccByExt),
        };
        let what = format!(
            "{d} bulk step {step}: key {key:?} fields {fields:?} incs {incs:?} guard {guard:?} batch {batch} counts_only {counts_only} each_chunk {each_chunk}\n  entities {entities:?}"
        );
        let report = match report {
            Ok(report) => report,
            Err(error) => {
                failures.push(format!("{what}\n  error {error:?}"));
                break;
            }
        };
        let count = |o: Outcome| want.iter().filter(|(_, w)| *w == o).count() as u64;
        let counts = (
            report.inserted,
            report.updated,
            report.unchanged,
            report.stale,
        );
        let want_counts = (
            count(Outcome::Created),
            count(Outcome::Updated),
            count(Outcome::Unchanged),
            count(Outcome::Stale),
        );
        if counts != want_counts {
            failures.push(format!(
                "{what}\n  counts (ins, upd, unch, stale) want {want_counts:?} got {counts:?}"
            ));
        }
        if let Some(outcomes) = &report.rows {
            for (i, (o, (_, w))) in outcomes.iter().zip(&want).enumerate() {
                let same = matches!(
                    (o, w),
                    (RowOutcome::Inserted(_), Outcome::Created)
                        | (RowOutcome::Updated(_), Outcome::Updated)
                        | (RowOutcome::Unchanged, Outcome::Unchanged)
                        | (RowOutcome::Stale, Outcome::Stale)
                );
                if !same {
                    failures.push(format!("{what}\n  row {i}: want {w:?} got {o:?}"));
                }
            }
        }
        for (&e, (want_row, _)) in entities.iter().zip(&want) {
            let stored = Acc::by_id(e as i64 + 1).get(&db.pool).await.unwrap();
            if stored.as_ref() != Some(want_row) {
                failures.push(format!(
                    "{what}\n  e{e} stored {stored:?}\n  want      {want_row:?}\n  previous  {:?}",
                    model.get(&e)
                ));
            }
            if let Some(stored) = stored {
                model.insert(e, stored);
            }
        }
        if failures.len() > 3 {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// MariaDB's fallback path: the insert meets another row on another constraint (here the primary
// key and `ext`), so that `ON DUPLICATE KEY UPDATE` reports OtherRow and the general path runs.
// The guard and the increments must hold there as in the one-statement path.

fn acc(id: i64, code: &str, ext: Option<i64>, ver: i64, c: i64, note: &str) -> Acc {
    Acc {
        id,
        tenant: 0,
        code: code.into(),
        ext,
        ver,
        seen: None,
        a: 0,
        b: 0,
        c,
        f: 0.0,
        note: note.into(),
        tag: None,
    }
}

async fn other_constraint_duplicate_honours_guard_and_increments<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Acc>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let mine = acc(1, "mine", Some(11), 5, 10, "m5");
    let other = acc(2, "other", Some(22), 50, 100, "o50");
    model_runtime::insert(&db.pool, &mine).await.unwrap();
    model_runtime::insert(&db.pool, &other).await.unwrap();
    let fields = [AccField::Ver, AccField::Note];
    // Create rows that collide with `other` on the primary key, or on ext, or both; looked up by
    // (tenant, code), which finds `mine`.
    let creates = [
        acc(2, "MINE", Some(11), 0, 1, "x"),
        acc(1, "Mine", Some(22), 0, 1, "x"),
        acc(2, "mine", Some(22), 0, 1, "x"),
    ];
    let mut expect_ver = 5;
    let mut expect_c = 10;
    let mut expect_note = "m5".to_owned();
    for (n, create) in creates.iter().enumerate() {
        for (ver, want) in [
            (expect_ver - 1, Outcome::Stale),
            (expect_ver, Outcome::Stale),
            (expect_ver + 1, Outcome::Updated),
        ] {
            let values = acc(0, "", None, ver, 3, &format!("v{ver}"));
            let changes = Changes::new(&values, &fields)
                .increment(Acc::FIELDS.c)
                .only_if_newer(Acc::FIELDS.ver);
            let result = update_or_create::<AccByTenantAndCode>(&db.pool, create, changes).await;
            let (row, outcome) = result.unwrap_or_else(|e| panic!("{d} create {n} ver {ver}: {e}"));
            if want == Outcome::Updated {
                expect_ver = ver;
                expect_c += 3;
                expect_note = format!("v{ver}");
            }
            let stored_mine = Acc::by_id(1).get(&db.pool).await.unwrap().unwrap();
            assert_eq!(
                (
                    outcome,
                    stored_mine.ver,
                    stored_mine.c,
                    stored_mine.note.as_str()
                ),
                (want, expect_ver, expect_c, expect_note.as_str()),
                "{d} create {n} ver {ver}: returned {row:?}"
            );
            assert_eq!(row, stored_mine, "{d}: the row returned is the row stored");
            assert_eq!(
                Acc::by_id(2).get(&db.pool).await.unwrap().unwrap(),
                other,
                "{d}: the other row is left alone"
            );
        }
        // Not older, with equal values: Unchanged (no increments), nothing written.
        let values = acc(0, "", None, expect_ver, 0, &expect_note);
        let (_, outcome) = update_or_create::<AccByTenantAndCode>(
            &db.pool,
            create,
            Changes::new(&values, &fields).only_if_not_older(Acc::FIELDS.ver),
        )
        .await
        .unwrap();
        assert_eq!(outcome, Outcome::Unchanged, "{d} create {n}");
    }
    // Same in the caller's transaction.
    let mut tx = db.pool.begin().await.unwrap();
    let values = acc(0, "", None, expect_ver + 1, 7, "tx");
    let (row, outcome) = update_or_create::<AccByTenantAndCode>(
        &mut tx,
        &creates[0],
        Changes::new(&values, &fields)
            .increment(Acc::FIELDS.c)
            .only_if_newer(Acc::FIELDS.ver),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (outcome, row.c, row.note.as_str()),
        (Outcome::Updated, expect_c + 7, "tx"),
        "{d}"
    );
}

// ---------------------------------------------------------------------------------------------
// A NULL under nulls_not_distinct (MariaDB: the general path) and the ext key.

async fn null_key_under_nulls_not_distinct_increments_and_guards<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Acc>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let base = acc(1, "n", None, 1, 0, "n1");
    let mut want_c = 0;
    for step in 0..6i64 {
        let values = acc(1, "n", None, step, 2, &format!("s{step}"));
        let changes = Changes::new(&values, &[AccField::Ver, AccField::Note])
            .increment(Acc::FIELDS.c)
            .only_if_not_older(Acc::FIELDS.ver);
        let (row, outcome) = update_or_create::<AccByExt>(&db.pool, &base, changes)
            .await
            .unwrap_or_else(|e| panic!("{d} step {step}: {e}"));
        let want = match step {
            0 => Outcome::Created,
            s if s < 1 => Outcome::Stale,
            _ => Outcome::Updated,
        };
        if step == 0 {
            assert_eq!((outcome, row.c, row.ver), (Outcome::Created, 0, 1), "{d}");
            continue;
        }
        // step 1.. : ver step >= stored ver (step-1 or 1) → updated
        want_c += 2;
        assert_eq!(
            (outcome, row.c, row.ver),
            (want, want_c, step),
            "{d} step {step}"
        );
    }
    assert_eq!(DB::count(&db.pool, "acc").await, 1, "{d}");
}

// ---------------------------------------------------------------------------------------------
// Numbers at their limits.

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "nums")]
struct Num {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    name: String,
    small: i16,
    mid: i32,
    big: i64,
    single: f32,
    double: f64,
}

fn num(name: &str, small: i16, mid: i32, big: i64) -> Num {
    Num {
        id: 0,
        name: name.into(),
        small,
        mid,
        big,
        single: 0.0,
        double: 0.0,
    }
}

async fn narrow_integers_at_their_limits<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Num>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let top = num("top", i16::MAX - 1, i32::MAX - 1, i64::MAX - 1);
    model_runtime::insert(&db.pool, &top).await.unwrap();
    let one = num("top", 1, 1, 1);
    // Each up to its maximum: fine.
    for (label, changes) in [
        (
            "small",
            Changes::new(&one, &[]).increment(Num::FIELDS.small),
        ),
        ("mid", Changes::new(&one, &[]).increment(Num::FIELDS.mid)),
        ("big", Changes::new(&one, &[]).increment(Num::FIELDS.big)),
    ] {
        let (row, outcome) = update_or_create::<NumByName>(&db.pool, &top, changes)
            .await
            .unwrap_or_else(|e| panic!("{d} {label}: {e}"));
        assert_eq!(outcome, Outcome::Updated, "{d} {label}");
        let _ = row;
    }
    let row = Num::by_name("top").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(
        (row.small, row.mid, row.big),
        (i16::MAX, i32::MAX, i64::MAX),
        "{d}"
    );
    // One past: an error, nothing written, for each of them, also together with another
    // increment that would fit.
    for (label, changes) in [
        (
            "small",
            Changes::new(&one, &[]).increment(Num::FIELDS.small),
        ),
        ("mid", Changes::new(&one, &[]).increment(Num::FIELDS.mid)),
        (
            "small with double",
            Changes::new(&one, &[NumField::Double]).increment(Num::FIELDS.small),
        ),
    ] {
        let result = update_or_create::<NumByName>(&db.pool, &top, changes).await;
        assert!(result.is_err(), "{d} {label}: {result:?}");
        let row = Num::by_name("top").get(&db.pool).await.unwrap().unwrap();
        assert_eq!(
            (row.small, row.mid, row.big, row.double),
            (i16::MAX, i32::MAX, i64::MAX, 0.0),
            "{d} {label}: nothing written"
        );
    }
    // Down past the minimum of i16 by a big negative step.
    let low = num("low", i16::MIN + 5, i32::MIN + 5, i64::MIN + 5);
    model_runtime::insert(&db.pool, &low).await.unwrap();
    let minus = num("low", -6, -6, -6);
    for (label, changes) in [
        (
            "small",
            Changes::new(&minus, &[]).increment(Num::FIELDS.small),
        ),
        ("mid", Changes::new(&minus, &[]).increment(Num::FIELDS.mid)),
        ("big", Changes::new(&minus, &[]).increment(Num::FIELDS.big)),
    ] {
        let result = update_or_create::<NumByName>(&db.pool, &low, changes).await;
        assert!(result.is_err(), "{d} {label}: {result:?}");
    }
    let row = Num::by_name("low").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(
        (row.small, row.mid, row.big),
        (i16::MIN + 5, i32::MIN + 5, i64::MIN + 5),
        "{d}"
    );
    // Bulk: one row of the chunk overflows: an error, and the other rows are not written either.
    let rows = vec![
        num("top", 0, 0, 0),
        num("low", -6, 0, 0),
        num("new", 1, 1, 1),
    ];
    let result = BulkInsert::<Num>::new()
        .update_conflicts::<NumByName>(&[])
        .increment(Num::FIELDS.small)
        .increment(Num::FIELDS.mid)
        .run(&db.pool, rows)
        .await;
    assert!(result.is_err(), "{d}: {result:?}");
    assert!(
        Num::by_name("new").get(&db.pool).await.unwrap().is_none(),
        "{d}: all or nothing"
    );
    // Bulk at exactly the limits: fine.
    let rows = vec![num("top", 0, 0, 0), num("low", -5, -5, -5)];
    let report = BulkInsert::<Num>::new()
        .update_conflicts::<NumByName>(&[])
        .increment(Num::FIELDS.small)
        .increment(Num::FIELDS.mid)
        .increment(Num::FIELDS.big)
        .run(&db.pool, rows)
        .await
        .unwrap_or_else(|e| panic!("{d}: {e:?}"));
    assert_eq!(report.updated, 2, "{d}");
    let row = Num::by_name("low").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(
        (row.small, row.mid, row.big),
        (i16::MIN, i32::MIN, i64::MIN),
        "{d}"
    );
    let row = Num::by_name("top").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(
        (row.small, row.mid, row.big),
        (i16::MAX, i32::MAX, i64::MAX),
        "{d}"
    );
}

/// An `f32` counter adds as `f32` does: 1.0 + 1e-8 is 1.0 in `f32` (and in PostgreSQL's `real`,
/// and MariaDB's `FLOAT`). A hundred such increments leave it 1.0; the stored value is an f32.
async fn f32_increments_add_as_f32<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Num>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let mut start = num("f", 0, 0, 0);
    start.single = 1.0;
    model_runtime::insert(&db.pool, &start).await.unwrap();
    let mut tiny = num("f", 0, 0, 0);
    tiny.single = 1e-8;
    let mut model = 1.0f32;
    if d == model_runtime::Dialect::Sqlite {
        // SQLite has no single-precision float: an f32 increment is refused there.
        let error = update_or_create::<NumByName>(
            &db.pool,
            &start,
            Changes::new(&tiny, &[]).increment(Num::FIELDS.single),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, model_runtime::Error::InvalidArgument { .. }),
            "{error:?}"
        );
        return;
    }
    for _ in 0..100 {
        update_or_create::<NumByName>(
            &db.pool,
            &start,
            Changes::new(&tiny, &[]).increment(Num::FIELDS.single),
        )
        .await
        .unwrap();
        model += 1e-8f32;
    }
    let row = Num::by_name("f").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(row.single, model, "{d}: f32 arithmetic");
    // Listing the value read back finds the row unchanged.
    let again = Num {
        single: row.single,
        ..start.clone()
    };
    let (_, outcome) =
        update_or_create::<NumByName>(&db.pool, &start, Changes::new(&again, &[NumField::Single]))
            .await
            .unwrap();
    assert_eq!(
        outcome,
        Outcome::Unchanged,
        "{d}: the stored value is the f32 read back"
    );
}

// ---------------------------------------------------------------------------------------------
// Dates and times as guards.

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "events")]
struct Event {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    name: String,
    at: chrono::DateTime<chrono::Utc>,
    day: chrono::NaiveDate,
    when: Option<chrono::NaiveDateTime>,
    #[model(max_length = 40)]
    note: String,
}

fn utc(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().unwrap()
}

fn date(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn event(name: &str, at: &str, day: chrono::NaiveDate, note: &str) -> Event {
    Event {
        id: 0,
        name: name.into(),
        at: utc(at),
        day,
        when: None,
        note: note.into(),
    }
}

/// Fractional seconds and their absence order as times do (single row and bulk).
async fn datetime_guards_order_as_time_does<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Event>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    let stored = event("e", "2024-01-01T10:00:00.5Z", date(2024, 1, 1), "s");
    model_runtime::insert(&db.pool, &stored).await.unwrap();
    let cases = [
        ("2024-01-01T10:00:00Z", Outcome::Stale),
        ("2024-01-01T10:00:00.499999Z", Outcome::Stale),
        ("2024-01-01T10:00:00.5Z", Outcome::Stale),
        ("2024-01-01T09:59:59.999999Z", Outcome::Stale),
        ("2024-01-01T10:00:00.500001Z", Outcome::Updated),
        ("2024-01-01T10:00:01Z", Outcome::Updated),
        ("2024-01-01T10:00:01.1Z", Outcome::Updated),
    ];
    let mut current = stored.at;
    for (at, _) in cases {
        let incoming = event("e", at, date(2024, 1, 1), at);
        let want = if incoming.at > current {
            Outcome::Updated
        } else {
            Outcome::Stale
        };
        let (row, outcome) = update_or_create::<EventByName>(
            &db.pool,
            &incoming,
            Changes::new(&incoming, &[EventField::At, EventField::Note])
                .only_if_newer(Event::FIELDS.at),
        )
        .await
        .unwrap();
        assert_eq!(outcome, want, "{d}: {at} against {current}");
        if want == Outcome::Updated {
            current = incoming.at;
        }
        assert_eq!(row.at, current, "{d}");
    }
    // Bulk: the same order.
    let rows = vec![event("e", "2024-01-01T10:00:01.09Z", date(2024, 1, 1), "b")];
    let report = BulkInsert::<Event>::new()
        .update_conflicts::<EventByName>(&[EventField::At, EventField::Note])
        .only_if_newer(Event::FIELDS.at)
        .run(&db.pool, rows)
        .await
        .unwrap();
    assert_eq!(report.stale, 1, "{d}: {:?}", report.rows);
    let rows = vec![event(
        "e",
        "2024-01-01T10:00:01.100001Z",
        date(2024, 1, 1),
        "b",
    )];
    let report = BulkInsert::<Event>::new()
        .update_conflicts::<EventByName>(&[EventField::At, EventField::Note])
        .only_if_newer(Event::FIELDS.at)
        .run(&db.pool, rows)
        .await
        .unwrap();
    assert_eq!(report.updated, 1, "{d}: {:?}", report.rows);
    // Nullable NaiveDateTime guard: NULL older, then fractional ordering.
    let mut w = event("w", "2024-01-01T00:00:00Z", date(2024, 1, 1), "w");
    model_runtime::insert(&db.pool, &w).await.unwrap();
    let t = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    let mut current: Option<chrono::NaiveDateTime> = None;
    for (text, newer) in [
        ("2024-01-01 10:00:00.25", true),
        ("2024-01-01 10:00:00", false),
        ("2024-01-01 10:00:00.250001", true),
        ("2024-01-01 10:00:00.25", false),
    ] {
        w.when = Some(t(text));
        w.note = text[11..].into();
        let (row, outcome) = update_or_create::<EventByName>(
            &db.pool,
            &w,
            Changes::new(&w, &[EventField::When, EventField::Note])
                .only_if_newer(Event::FIELDS.when),
        )
        .await
        .unwrap();
        let want = if newer {
            Outcome::Updated
        } else {
            Outcome::Stale
        };
        assert_eq!(outcome, want, "{d}: {text} against {current:?}");
        if newer {
            current = w.when;
        }
        assert_eq!(row.when, current, "{d}");
    }
}

/// Dates beyond year 9999 and before year 0 where the backend stores them (SQLite, as text;
/// PostgreSQL): a guard orders them as dates, not as their text.
async fn far_dates_order_as_dates<DB: TestBackend>(db: TestDb<DB>) {
    let d = DB::DIALECT;
    if d == Dialect::MySql {
        return; // MariaDB refuses years outside 0..=9999 (check.rs).
    }
    Schema::new()
        .model::<Event>()
        .create(&db.pool)
        .await
        .unwrap();
    let mut failures = Vec::new();
    // A far-future stored date: 2024 is older, never written over it.
    let far = event("far", "2024-01-01T00:00:00Z", date(10000, 1, 1), "far");
    model_runtime::insert(&db.pool, &far).await.unwrap();
    let near = event("far", "2024-01-01T00:00:00Z", date(2024, 6, 1), "near");
    let (row, outcome) = update_or_create::<EventByName>(
        &db.pool,
        &near,
        Changes::new(&near, &[EventField::Day, EventField::Note]).only_if_newer(Event::FIELDS.day),
    )
    .await
    .unwrap();
    if (outcome, row.note.as_str()) != (Outcome::Stale, "far") {
        failures.push(format!(
            "single: NaiveDate 2024-06-01 over 10000-01-01: {outcome:?} {:?}",
            row.day
        ));
    }
    // Negative years: -2 is older than -1.
    let bc = event("bc", "2024-01-01T00:00:00Z", date(-1, 1, 1), "-1");
    model_runtime::insert(&db.pool, &bc).await.unwrap();
    let older = event("bc", "2024-01-01T00:00:00Z", date(-2, 1, 1), "-2");
    let (row, outcome) = update_or_create::<EventByName>(
        &db.pool,
        &older,
        Changes::new(&older, &[EventField::Day, EventField::Note]).only_if_newer(Event::FIELDS.day),
    )
    .await
    .unwrap();
    if (outcome, row.note.as_str()) != (Outcome::Stale, "-1") {
        failures.push(format!(
            "single: NaiveDate -0002 over -0001: {outcome:?} {:?}",
            row.day
        ));
    }
    // DateTime<Utc> beyond 9999.
    let mut at = event("at", "2024-01-01T00:00:00Z", date(2024, 1, 1), "far");
    at.at = chrono::NaiveDate::from_ymd_opt(10000, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    model_runtime::insert(&db.pool, &at).await.unwrap();
    let at_near = event("at", "2030-01-01T00:00:00Z", date(2024, 1, 1), "near");
    let (row, outcome) = update_or_create::<EventByName>(
        &db.pool,
        &at_near,
        Changes::new(&at_near, &[EventField::At, EventField::Note]).only_if_newer(Event::FIELDS.at),
    )
    .await
    .unwrap();
    if (outcome, row.note.as_str()) != (Outcome::Stale, "far") {
        failures.push(format!(
            "single: DateTime<Utc> 2030 over 10000: {outcome:?} {:?}",
            row.at
        ));
    }
    // Bulk, on fresh rows with the same stored values.
    let far2 = event("far2", "2024-01-01T00:00:00Z", date(10000, 1, 1), "far");
    model_runtime::insert(&db.pool, &far2).await.unwrap();
    let near2 = event("far2", "2024-01-01T00:00:00Z", date(2024, 6, 1), "near");
    let report = BulkInsert::<Event>::new()
        .update_conflicts::<EventByName>(&[EventField::Day, EventField::Note])
        .only_if_newer(Event::FIELDS.day)
        .run(&db.pool, vec![near2])
        .await
        .unwrap();
    let now = Event::by_name("far2").get(&db.pool).await.unwrap().unwrap();
    if (report.stale, now.note.as_str()) != (1, "far") {
        failures.push(format!(
            "bulk: NaiveDate 2024-06-01 over 10000-01-01: {:?} {:?}",
            report.rows, now.day
        ));
    }
    assert!(failures.is_empty(), "{d}:\n{}", failures.join("\n"));
}

/// The same `f32` sums in bulk.
async fn f32_bulk_increments_add_as_f32<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Num>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let mut start = num("f", 0, 0, 0);
    start.single = 1.0;
    model_runtime::insert(&db.pool, &start).await.unwrap();
    let mut tiny = num("f", 0, 0, 0);
    tiny.single = 1e-8;
    if d == model_runtime::Dialect::Sqlite {
        // SQLite has no single-precision float: an f32 increment is refused there.
        let error = BulkInsert::<Num>::new()
            .update_conflicts::<NumByName>(&[])
            .increment(Num::FIELDS.single)
            .run(&db.pool, vec![tiny.clone()])
            .await
            .unwrap_err();
        assert!(
            matches!(error, model_runtime::Error::InvalidArgument { .. }),
            "{error:?}"
        );
        return;
    }
    for _ in 0..100 {
        BulkInsert::<Num>::new()
            .update_conflicts::<NumByName>(&[])
            .increment(Num::FIELDS.single)
            .run(&db.pool, vec![tiny.clone()])
            .await
            .unwrap();
    }
    let row = Num::by_name("f").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(row.single, 1.0f32, "{d}: f32 arithmetic");
}

/// An auto-increment primary key as the key: the id is written as given, increments and guards
/// apply to the row with that id.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "autos")]
struct Auto {
    #[model(primary_key, auto_increment)]
    id: i64,
    ver: Option<i64>,
    hits: i32,
}

async fn auto_increment_primary_key_as_the_key<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Auto>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    let row = |ver: Option<i64>, hits: i32| Auto { id: 5, ver, hits };
    let mut want_hits = 0;
    let mut want_ver = None;
    for (ver, hits) in [
        (None, 2),
        (None, 3),
        (Some(1), 4),
        (None, 5),
        (Some(1), 6),
        (Some(2), 7),
    ] {
        let r = row(ver, hits);
        let (got, outcome) = update_or_create::<AutoById>(
            &db.pool,
            &r,
            Changes::new(&r, &[AutoField::Ver])
                .increment(Auto::FIELDS.hits)
                .only_if_not_older(Auto::FIELDS.ver),
        )
        .await
        .unwrap_or_else(|e| panic!("{d}: {e}"));
        let want = if want_hits == 0 {
            want_hits = hits;
            want_ver = ver;
            Outcome::Created
        } else if want_ver <= ver {
            want_hits += hits;
            want_ver = ver;
            Outcome::Updated
        } else {
            Outcome::Stale
        };
        assert_eq!(
            (outcome, got.id, got.ver, got.hits),
            (want, 5, want_ver, want_hits),
            "{d} {ver:?} {hits}"
        );
    }
}

/// MariaDB in a session without strict mode (a server configured so, or a pool's
/// `after_connect`): an increment past an `i16` must still be an error, not a clamp to 32767.
async fn overflow_without_strict_mode<DB: TestBackend>(db: TestDb<DB>) {
    let d = DB::DIALECT;
    if d != Dialect::MySql {
        return;
    }
    Schema::new().model::<Num>().create(&db.pool).await.unwrap();
    let top = num("top", i16::MAX - 1, 0, 0);
    model_runtime::insert(&db.pool, &top).await.unwrap();
    let step = num("top", 2, 0, 0);
    let mut tx = db.pool.begin().await.unwrap();
    DB::execute(
        &mut tx,
        "SET SESSION sql_mode = ''".into(),
        model_runtime::__private::Values(Vec::new()),
    )
    .await
    .unwrap();
    let result = update_or_create::<NumByName>(
        &mut tx,
        &top,
        Changes::new(&step, &[]).increment(Num::FIELDS.small),
    )
    .await;
    let bulk = BulkInsert::<Num>::new()
        .update_conflicts::<NumByName>(&[])
        .increment(Num::FIELDS.small)
        .run(&mut tx, vec![step.clone()])
        .await;
    DB::execute(
        &mut tx,
        "SET SESSION sql_mode = DEFAULT".into(),
        model_runtime::__private::Values(Vec::new()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let row = Num::by_name("top").get(&db.pool).await.unwrap().unwrap();
    assert!(
        result.is_err() && bulk.is_err(),
        "{d}: single {result:?}, bulk {bulk:?}; stored {}",
        row.small
    );
}

// ---------------------------------------------------------------------------------------------
// Decimals.

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "wallets")]
struct Wallet {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    name: String,
    #[model(precision = 10, scale = 2)]
    balance: rust_decimal::Decimal,
    free: rust_decimal::Decimal,
}

fn dec(text: &str) -> rust_decimal::Decimal {
    text.parse().unwrap()
}

async fn decimal_increments<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Wallet>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    let w = Wallet {
        id: 0,
        name: "w".into(),
        balance: dec("1.25"),
        free: dec("0.1"),
    };
    let add = Wallet {
        balance: dec("0.10"),
        free: dec("0.2"),
        ..w.clone()
    };
    let changes = || {
        Changes::new(&add, &[])
            .increment(Wallet::FIELDS.balance)
            .increment(Wallet::FIELDS.free)
    };
    if d != Dialect::Sqlite {
        let (_, outcome) = update_or_create::<WalletByName>(&db.pool, &w, changes())
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Created);
    }
    let result = update_or_create::<WalletByName>(&db.pool, &w, changes()).await;
    if d == Dialect::Sqlite {
        assert!(
            matches!(result, Err(Error::InvalidArgument { .. })),
            "{d}: {result:?}"
        );
        let bulk = BulkInsert::<Wallet>::new()
            .update_conflicts::<WalletByName>(&[])
            .increment(Wallet::FIELDS.free)
            .run(&db.pool, vec![add.clone()])
            .await;
        assert!(bulk.is_err(), "{d}: {bulk:?}");
        return;
    }
    let (row, outcome) = result.unwrap();
    assert_eq!(
        (outcome, row.balance, row.free),
        (Outcome::Updated, dec("1.35"), dec("0.3")),
        "{d}"
    );
    // Precision overflow of the sized column is an error, nothing written.
    let huge = Wallet {
        balance: dec("99999999.00"),
        ..add.clone()
    };
    let result = update_or_create::<WalletByName>(
        &db.pool,
        &w,
        Changes::new(&huge, &[]).increment(Wallet::FIELDS.balance),
    )
    .await;
    assert!(result.is_err(), "{d}: {result:?}");
    let row = Wallet::by_name("w").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(row.balance, dec("1.35"), "{d}");
    // Bulk.
    let report = BulkInsert::<Wallet>::new()
        .update_conflicts::<WalletByName>(&[])
        .increment(Wallet::FIELDS.balance)
        .increment(Wallet::FIELDS.free)
        .run(&db.pool, vec![add.clone()])
        .await
        .unwrap();
    assert_eq!(report.updated, 1);
    let row = Wallet::by_name("w").get(&db.pool).await.unwrap().unwrap();
    assert_eq!((row.balance, row.free), (dec("1.45"), dec("0.5")), "{d}");
}

/// A single-row increment that would leave an unsized decimal past `Decimal::MAX` (which
/// PostgreSQL's `NUMERIC` and MariaDB's `DECIMAL(65, 30)` would hold, and the row then no longer
/// decode) is an error and writes nothing, at either end; one that lands exactly on the limit is
/// written. On MariaDB, in a session without strict mode, a sized `DECIMAL` and a `FLOAT` sum past
/// the column's limit are errors too, not clamps. Found failing (the sum was stored, and the call
/// returned the decode error after the write had committed).
async fn decimal_increments_past_the_limit<DB: TestBackend>(db: TestDb<DB>) {
    let d = DB::DIALECT;
    if d == Dialect::Sqlite {
        // Decimals cannot be incremented there (`decimal_increments`).
        return;
    }
    Schema::new()
        .model::<Wallet>()
        .create(&db.pool)
        .await
        .unwrap();
    let max = rust_decimal::Decimal::MAX;
    let one = rust_decimal::Decimal::ONE;
    for (name, stored, step) in [("top", max - one, one), ("bottom", -max + one, -one)] {
        let w = Wallet {
            id: 0,
            name: name.into(),
            balance: dec("0"),
            free: stored,
        };
        model_runtime::insert(&db.pool, &w).await.unwrap();
        let add = Wallet {
            free: step,
            ..w.clone()
        };
        let changes = || Changes::new(&add, &[]).increment(Wallet::FIELDS.free);
        let (row, outcome) = update_or_create::<WalletByName>(&db.pool, &w, changes())
            .await
            .unwrap();
        assert_eq!(
            (outcome, row.free),
            (Outcome::Updated, stored + step),
            "{d}"
        );
        let result = update_or_create::<WalletByName>(&db.pool, &w, changes()).await;
        let row = Wallet::by_name(name).get(&db.pool).await;
        assert!(result.is_err(), "{d} {name}: {result:?}; stored {row:?}");
        assert_eq!(
            row.unwrap().unwrap().free,
            stored + step,
            "{d} {name}: nothing written"
        );
    }
    // Within the range, with more digits than a `Decimal` holds: stored exactly, read back
    // rounded to the digits it holds (as the README says), not a decode error.
    let w = Wallet {
        id: 0,
        name: "digits".into(),
        balance: dec("0"),
        free: dec("10000000000000000000000000000"),
    };
    model_runtime::insert(&db.pool, &w).await.unwrap();
    let add = Wallet {
        free: dec("0.1"),
        ..w.clone()
    };
    let result = update_or_create::<WalletByName>(
        &db.pool,
        &w,
        Changes::new(&add, &[]).increment(Wallet::FIELDS.free),
    )
    .await;
    assert_eq!(
        result
            .map(|(row, outcome)| (outcome, row.free))
            .map_err(|e| e.to_string()),
        Ok((Outcome::Updated, w.free)),
        "{d}"
    );
    if d != Dialect::MySql {
        return;
    }
    Schema::new().model::<Num>().create(&db.pool).await.unwrap();
    let w = Wallet {
        id: 0,
        name: "sized".into(),
        balance: dec("99999999.00"),
        free: dec("0"),
    };
    model_runtime::insert(&db.pool, &w).await.unwrap();
    let mut top = num("single", 0, 0, 0);
    top.single = f32::MAX;
    model_runtime::insert(&db.pool, &top).await.unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    DB::execute(
        &mut tx,
        "SET SESSION sql_mode = ''".into(),
        model_runtime::__private::Values(Vec::new()),
    )
    .await
    .unwrap();
    let step = Wallet {
        balance: dec("1"),
        ..w.clone()
    };
    let decimal = update_or_create::<WalletByName>(
        &mut tx,
        &w,
        Changes::new(&step, &[]).increment(Wallet::FIELDS.balance),
    )
    .await;
    let float = update_or_create::<NumByName>(
        &mut tx,
        &top,
        Changes::new(&top, &[]).increment(Num::FIELDS.single),
    )
    .await;
    DB::execute(
        &mut tx,
        "SET SESSION sql_mode = DEFAULT".into(),
        model_runtime::__private::Values(Vec::new()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let wallet = Wallet::by_name("sized")
        .get(&db.pool)
        .await
        .unwrap()
        .unwrap();
    let single = Num::by_name("single").get(&db.pool).await.unwrap().unwrap();
    assert!(
        decimal.is_err() && float.is_err(),
        "{d}: decimal {decimal:?}, float {float:?}; stored {} and {}",
        wallet.balance,
        single.single
    );
    assert_eq!(
        (wallet.balance, single.single),
        (dec("99999999.00"), f32::MAX),
        "{d}: nothing written"
    );
}

// ---------------------------------------------------------------------------------------------
// A partial key (condition): MariaDB's general path, increments and guard.

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "handles")]
struct Handle {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(condition(live == true))]
    #[model(max_length = 20)]
    tag: String,
    live: bool,
    ver: i64,
    hits: i64,
    #[model(max_length = 20)]
    note: String,
}

async fn partial_key_increments_and_guards<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Handle>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    // A dead row with the same tag is not the key's row.
    model_runtime::insert(
        &db.pool,
        &Handle {
            id: 0,
            tag: "h".into(),
            live: false,
            ver: 100,
            hits: 100,
            note: "dead".into(),
        },
    )
    .await
    .unwrap();
    let h = |ver: i64, hits: i64, note: &str| Handle {
        id: 0,
        tag: "h".into(),
        live: true,
        ver,
        hits,
        note: note.into(),
    };
    let mut model: Option<Handle> = None;
    for (ver, hits) in [(1, 1), (3, 2), (2, 5), (3, 7), (4, 1)] {
        let row = h(ver, hits, &format!("v{ver}"));
        let (got, outcome) = update_or_create::<HandleByTag>(
            &db.pool,
            &row,
            Changes::new(&row, &[HandleField::Ver, HandleField::Note])
                .increment(Handle::FIELDS.hits)
                .only_if_newer(Handle::FIELDS.ver),
        )
        .await
        .unwrap_or_else(|e| panic!("{d} v{ver}: {e}"));
        let want = match &mut model {
            None => {
                model = Some(Handle { id: got.id, ..row });
                Outcome::Created
            }
            Some(m) if m.ver < ver => {
                m.ver = ver;
                m.hits += hits;
                m.note = format!("v{ver}");
                Outcome::Updated
            }
            Some(_) => Outcome::Stale,
        };
        assert_eq!(outcome, want, "{d} v{ver}");
        assert_eq!(Some(&got), model.as_ref(), "{d} v{ver}");
    }
    let report = BulkInsert::<Handle>::new()
        .update_conflicts::<HandleByTag>(&[HandleField::Ver, HandleField::Note])
        .increment(Handle::FIELDS.hits)
        .only_if_newer(Handle::FIELDS.ver)
        .run(&db.pool, vec![h(4, 10, "b4"), h(9, 10, "x")])
        .await;
    // Two rows with one key: refused.
    assert!(report.is_err(), "{d}");
    let report = BulkInsert::<Handle>::new()
        .update_conflicts::<HandleByTag>(&[HandleField::Ver, HandleField::Note])
        .increment(Handle::FIELDS.hits)
        .only_if_newer(Handle::FIELDS.ver)
        .run(&db.pool, vec![h(5, 10, "b5")])
        .await
        .unwrap_or_else(|e| panic!("{d}: {e:?}"));
    assert_eq!(report.updated, 1, "{d}");
    let m = model.unwrap();
    assert_eq!(DB::count(&db.pool, "handles").await, 2, "{d}");
    let live = Handle::by_id(m.id).get(&db.pool).await.unwrap().unwrap();
    assert_eq!((live.ver, live.hits), (5, m.hits + 10), "{d}");
    let dead = Handle::by_id(1).get(&db.pool).await.unwrap().unwrap();
    assert_eq!(
        (dead.ver, dead.hits, dead.note.as_str()),
        (100, 100, "dead"),
        "{d}: the dead row untouched"
    );
}

// ---------------------------------------------------------------------------------------------
// Bulk where repeated keys hide behind a fold or a NULL under nulls_not_distinct.

async fn bulk_repeats_through_fold_and_null_are_refused<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Acc>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let mut r1 = acc(1, "Same", None, 1, 1, "a");
    let mut r2 = acc(2, "same", None, 1, 1, "b");
    // Folded duplicates of (tenant, code).
    let result = BulkInsert::<Acc>::new()
        .update_conflicts::<AccByTenantAndCode>(&[AccField::Note])
        .increment(Acc::FIELDS.c)
        .run(
            &db.pool,
            vec![r1.clone(), {
                let mut r = r2.clone();
                r.ext = Some(5);
                r
            }],
        )
        .await;
    assert!(result.is_err(), "{d}: {result:?}");
    // NULL ext twice under nulls_not_distinct.
    r1.code = "one".into();
    r2.code = "two".into();
    let result = BulkInsert::<Acc>::new()
        .update_conflicts::<AccByExt>(&[AccField::Note])
        .increment(Acc::FIELDS.c)
        .run(&db.pool, vec![r1.clone(), r2.clone()])
        .await;
    assert!(
        matches!(&result, Err(Error::Bulk { source, .. }) if matches!(**source, Error::InvalidArgument { .. })),
        "{d}: {result:?}"
    );
    assert_eq!(DB::count(&db.pool, "acc").await, 0, "{d}");
}

// ---------------------------------------------------------------------------------------------
// Races.

/// 64 guarded writers (versions 1..=64 shuffled, each adding 1 to `b` and `c`) and 32 unguarded
/// counters (adding 1 to `a`) on one key, looked up case-insensitively in mixed case: every
/// increment is accounted for by the outcomes, the newest version wins.
async fn racing_increments_and_guards_mixed<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Acc>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let mut versions: Vec<i64> = (1..=64).collect();
    let mut rng = Rng(0xabcdef);
    for i in (1..versions.len()).rev() {
        versions.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut tasks = Vec::new();
    for (n, version) in versions.into_iter().enumerate() {
        for guarded in [true, false] {
            if !guarded && n % 2 == 1 {
                continue;
            }
            let pool = db.pool.clone();
            let code = if n % 3 == 0 { "HOT" } else { "hot" };
            tasks.push(tokio::spawn(async move {
                let mut row = acc(7, code, Some(7), if guarded { version } else { 0 }, 1, "");
                row.a = 1;
                row.b = 1;
                row.note = format!("v{}", row.ver);
                let result = if guarded {
                    let changes = Changes::new(&row, &[AccField::Ver, AccField::Note])
                        .increment(Acc::FIELDS.b)
                        .increment(Acc::FIELDS.c)
                        .only_if_newer(Acc::FIELDS.ver);
                    update_or_create::<AccByTenantAndCode>(&pool, &row, changes).await
                } else {
                    let changes = Changes::new(&row, &[]).increment(Acc::FIELDS.a);
                    update_or_create::<AccByTenantAndCode>(&pool, &row, changes).await
                };
                (guarded, row.ver, result)
            }));
        }
    }
    let (mut created, mut guarded_updated, mut counter_updated) = (0, 0, 0);
    for task in tasks {
        let (guarded, version, result) = task.await.unwrap();
        let (row, outcome) = result.unwrap_or_else(|e| panic!("{d}: {e}"));
        assert_eq!(row.note, format!("v{}", row.ver), "{d}: a consistent row");
        match (guarded, outcome) {
            (_, Outcome::Created) => created += 1,
            (true, Outcome::Updated) => {
                guarded_updated += 1;
                assert_eq!(row.ver, version, "{d}");
            }
            (false, Outcome::Updated) => counter_updated += 1,
            (true, Outcome::Stale) => assert!(row.ver >= version, "{d}"),
            other => panic!("{d}: {other:?}"),
        }
    }
    assert_eq!(created, 1, "{d}");
    let row = Acc::by_id(7).get(&db.pool).await.unwrap().unwrap();
    assert_eq!(row.ver, 64, "{d}");
    assert_eq!(row.a as i64, 1 + counter_updated, "{d}: a");
    assert_eq!(row.b as i64, 1 + guarded_updated, "{d}: b");
    assert_eq!(row.c, 1 + guarded_updated, "{d}: c");
}

/// The same race over the fallback path on MariaDB (a NULL under nulls_not_distinct), 64 counters.
async fn racing_increments_on_a_null_key<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Acc>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let mut tasks = Vec::new();
    for n in 0..64i64 {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            let row = acc(1, "n", None, n, 1, "x");
            let changes = Changes::new(&row, &[AccField::Note])
                .increment(Acc::FIELDS.c)
                .only_if_not_older(Acc::FIELDS.seen);
            update_or_create::<AccByExt>(&pool, &row, changes).await
        }));
    }
    let mut outcomes: HashMap<Outcome, i64> = HashMap::new();
    for task in tasks {
        let (_, outcome) = task.await.unwrap().unwrap_or_else(|e| panic!("{d}: {e}"));
        *outcomes.entry(outcome).or_default() += 1;
    }
    assert_eq!(
        outcomes.get(&Outcome::Created),
        Some(&1),
        "{d}: {outcomes:?}"
    );
    let row = Acc::by_id(1).get(&db.pool).await.unwrap().unwrap();
    assert_eq!(row.c, 64, "{d}: {outcomes:?}");
}

/// Calls cut off at random moments: a counter never counts more than the calls that could have
/// written, never less than those that returned, and the pool stays usable (no lock left behind).
async fn cancelled_increments_leave_counts_bounded<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Acc>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    for (label, key_ext) in [("plain", false), ("null key", true)] {
        let id = if key_ext { 1 } else { 2 };
        let row = if key_ext {
            acc(id, "n", None, 0, 1, "x")
        } else {
            acc(id, "p", Some(2), 0, 1, "x")
        };
        model_runtime::insert(
            &db.pool,
            &Acc {
                c: 0,
                ..row.clone()
            },
        )
        .await
        .unwrap();
        let mut ok = 0i64;
        let mut cut = 0i64;
        let mut rng = Rng(99);
        for _ in 0..60 {
            let micros = rng.below(3000);
            let fut = async {
                let changes = Changes::new(&row, &[]).increment(Acc::FIELDS.c);
                if key_ext {
                    update_or_create::<AccByExt>(&db.pool, &row, changes).await
                } else {
                    update_or_create::<AccByTenantAndCode>(&db.pool, &row, changes).await
                }
            };
            match tokio::time::timeout(std::time::Duration::from_micros(micros), fut).await {
                Ok(result) => {
                    result.unwrap_or_else(|e| panic!("{d} {label}: {e:?}"));
                    ok += 1;
                }
                Err(_) => cut += 1,
            }
        }
        // Afterwards every call completes promptly.
        for _ in 0..5 {
            let changes = Changes::new(&row, &[]).increment(Acc::FIELDS.c);
            let call = async {
                if key_ext {
                    update_or_create::<AccByExt>(&db.pool, &row, changes).await
                } else {
                    update_or_create::<AccByTenantAndCode>(&db.pool, &row, changes).await
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(20), call)
                .await
                .unwrap_or_else(|_| panic!("{d} {label}: a call hangs after cancellations"))
                .unwrap();
            ok += 1;
        }
        let stored = Acc::by_id(id).get(&db.pool).await.unwrap().unwrap();
        assert!(
            stored.c >= ok && stored.c <= ok + cut,
            "{d} {label}: counted {} for {ok} completed and {cut} cut off",
            stored.c
        );
    }
}

/// `model_runtime::transaction` and a rolled-back caller transaction: a rolled-back increment is
/// not counted; a retried closure counts once per commit.
async fn increments_in_rolled_back_transactions_do_not_count<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new().model::<Acc>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let row = acc(3, "t", Some(3), 1, 5, "x");
    model_runtime::insert(&db.pool, &row).await.unwrap();
    {
        let mut tx = db.pool.begin().await.unwrap();
        let changes = Changes::new(&row, &[])
            .increment(Acc::FIELDS.c)
            .only_if_not_older(Acc::FIELDS.ver);
        let (r, o) = update_or_create::<AccByTenantAndCode>(&mut tx, &row, changes)
            .await
            .unwrap();
        assert_eq!((o, r.c), (Outcome::Updated, 10), "{d}");
        tx.rollback().await.unwrap();
    }
    let stored = Acc::by_id(3).get(&db.pool).await.unwrap().unwrap();
    assert_eq!(stored.c, 5, "{d}");
    // Dropped (not committed) transaction.
    {
        let mut tx = db.pool.begin().await.unwrap();
        let changes = Changes::new(&row, &[]).increment(Acc::FIELDS.c);
        update_or_create::<AccByExt>(&mut tx, &row, changes)
            .await
            .unwrap();
    }
    let stored = Acc::by_id(3).get(&db.pool).await.unwrap().unwrap();
    assert_eq!(stored.c, 5, "{d}");
}

backend_tests!(
    random_single_calls_match_the_model,
    random_bulk_calls_match_the_model,
    other_constraint_duplicate_honours_guard_and_increments,
    null_key_under_nulls_not_distinct_increments_and_guards,
    narrow_integers_at_their_limits,
    f32_increments_add_as_f32,
    f32_bulk_increments_add_as_f32,
    auto_increment_primary_key_as_the_key,
    overflow_without_strict_mode,
    datetime_guards_order_as_time_does,
    far_dates_order_as_dates,
    decimal_increments,
    decimal_increments_past_the_limit,
    partial_key_increments_and_guards,
    bulk_repeats_through_fold_and_null_are_refused,
    racing_increments_and_guards_mixed,
    racing_increments_on_a_null_key,
    cancelled_increments_leave_counts_bounded,
    increments_in_rolled_back_transactions_do_not_count,
);
