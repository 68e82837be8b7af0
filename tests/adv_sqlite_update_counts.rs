//! Adversarial tests of SQLite's counts-only update mode (`BulkInsert::new().counts_only()
//! .update_conflicts::<K>(…)`): one aggregated read per chunk decides Updated / Unchanged, new rows
//! are inserted plainly, and the stored rows' upsert runs without RETURNING under a savepoint,
//! checked against the read.
//!
//! Mostly differential: the same input through `.counts_only()` on one database and through the
//! per-row report on another with identical starting contents; the counts, the errors and the
//! final table contents (every column's storage class and exact value, `typeof` + `quote`, by id)
//! must agree. Seeded; a failing case is shrunk and printed.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use model_integration::{Options, Rng, TestDb, run_scenario};
use model_runtime::{BulkInsert, Error, KeyOf, Model, Schema};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{Row, Sqlite, SqlitePool};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

/// Every supported column type, NOT NULL and nullable, keyed by an awkward text key.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_wide")]
struct Wide {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    k: String,
    small: i16,
    int: i32,
    big: i64,
    float: f32,
    double: f64,
    flag: bool,
    text: String,
    bytes: Vec<u8>,
    decimal: Decimal,
    date: NaiveDate,
    time: NaiveTime,
    datetime: NaiveDateTime,
    timestamp: DateTime<Utc>,
    uuid: Uuid,
    json: serde_json::Value,
    o_small: Option<i16>,
    o_int: Option<i32>,
    o_big: Option<i64>,
    o_float: Option<f32>,
    o_double: Option<f64>,
    o_flag: Option<bool>,
    o_text: Option<String>,
    o_bytes: Option<Vec<u8>>,
    o_decimal: Option<Decimal>,
    o_date: Option<NaiveDate>,
    o_time: Option<NaiveTime>,
    o_datetime: Option<NaiveDateTime>,
    o_timestamp: Option<DateTime<Utc>>,
    o_uuid: Option<Uuid>,
    o_json: Option<serde_json::Value>,
}

/// A composite key with a nullable part.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_pair")]
#[unique_together(a, b)]
struct Pair {
    #[model(primary_key, auto_increment)]
    id: i64,
    a: String,
    b: Option<i64>,
    v: Option<String>,
    w: f64,
    n: i64,
}

/// Created by hand, with declarations whose affinity converts values on the way in.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_loose")]
struct Loose {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    k: String,
    s: String,
    n: i64,
    x: f64,
    r: Option<i64>,
    i: Option<String>,
    b: Option<Vec<u8>>,
    c: Option<String>,
}

/// Created by hand: a NOCASE key ("a" and "A" are one key in the database, two in Rust), with
/// columns whose storage class the declarations keep (so the per-row report can decode them).
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_nocase")]
struct NoCase {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    k: String,
    v: String,
    w: Option<f64>,
}

/// A simple model for the targeted trigger / transaction / refusal scenarios.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_item")]
struct Item {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    sku: String,
    price: i64,
    weight: f64,
}

// ---------------------------------------------------------------------------------------------
// Value pools
// ---------------------------------------------------------------------------------------------

fn pick<T: Clone>(rng: &mut Rng, pool: &[T]) -> T {
    pool[rng.below(pool.len() as u64) as usize].clone()
}

fn opt<T>(rng: &mut Rng, value: T) -> Option<T> {
    if rng.below(3) == 0 { None } else { Some(value) }
}

fn long_text() -> String {
    "🦀x".repeat(5000)
}

fn texts() -> Vec<String> {
    [
        "",
        " ",
        "1",
        "1.0",
        "01",
        " 1",
        "1 ",
        "a",
        "A",
        "a ",
        "🦀𝄞",
        "NULL",
        "it's",
        "1e3",
        "0x10",
        "-0",
        "9223372036854775808",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([long_text(), long_text() + " "])
    .collect()
}

fn key(n: usize) -> String {
    const KEYS: &[&str] = &[
        "k", "k ", "K", "", "🦀", "1", "01", "1.0", " 1", "k,1", "k'\"", "k\u{1}", "ÿ", "Ä", "ä",
        "𝄞𝄞",
    ];
    KEYS[n % KEYS.len()].to_string()
}

fn i16s() -> Vec<i16> {
    vec![0, 1, -1, i16::MIN, i16::MAX]
}
fn i32s() -> Vec<i32> {
    vec![0, 1, -7, i32::MIN, i32::MAX]
}
fn i64s() -> Vec<i64> {
    vec![
        0,
        1,
        -1,
        i64::MIN,
        i64::MAX,
        1 << 53,
        (1 << 53) + 1,
        10_000_000_000_000_000,
    ]
}
fn f32s() -> Vec<f32> {
    vec![
        0.0,
        1.0,
        0.1,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        1e-45,
        -3.5,
        16_777_217.0,
    ]
}
fn f64s() -> Vec<f64> {
    vec![
        0.0,
        1.0,
        -1.5,
        0.1 + 0.2,
        0.3,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        5e-324,
        1e16,
        9_223_372_036_854_775_808.0,
        f64::from(0.1_f32),
        f64::INFINITY,
        f64::NEG_INFINITY,
    ]
}
fn bytes() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![0],
        vec![0, 0],
        b"1".to_vec(),
        vec![0xff, 0],
        b"abc".to_vec(),
        b"ABC".to_vec(),
    ]
}
fn decimals() -> Vec<Decimal> {
    [
        "1",
        "1.0",
        "1.00",
        "0",
        "0.00",
        "0.1",
        "-1.50",
        "123.4500",
        "1e-28",
        "79228162514264337593543950335",
        "-79228162514264337593543950335",
        "0.0000000000000000000000000001",
    ]
    .iter()
    .map(|s| {
        s.parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(s))
            .unwrap()
    })
    .collect()
}
fn dates() -> Vec<NaiveDate> {
    vec![
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
        NaiveDate::from_ymd_opt(1, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
    ]
}
fn times() -> Vec<NaiveTime> {
    vec![
        NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
        NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap(),
        NaiveTime::from_hms_micro_opt(12, 0, 0, 500_000).unwrap(),
        NaiveTime::from_hms_micro_opt(12, 0, 0, 1).unwrap(),
    ]
}
fn datetimes() -> Vec<NaiveDateTime> {
    let mut out = Vec::new();
    for d in dates() {
        for t in times().into_iter().take(2) {
            out.push(d.and_time(t));
        }
    }
    out
}
fn timestamps() -> Vec<DateTime<Utc>> {
    vec![
        DateTime::from_timestamp(0, 0).unwrap(),
        DateTime::from_timestamp(0, 1_000).unwrap(),
        DateTime::from_timestamp(-1, 0).unwrap(),
        DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(),
    ]
}
fn uuids() -> Vec<Uuid> {
    vec![
        Uuid::nil(),
        Uuid::max(),
        Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
    ]
}
fn jsons() -> Vec<serde_json::Value> {
    vec![
        json!(null),
        json!({"a": 1, "b": 2}),
        json!({"b": 2, "a": 1}),
        json!(1),
        json!(1.0),
        json!("1"),
        json!(""),
        json!([]),
        json!({}),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(0.1),
        json!({"q": "it's \"x\" 😀"}),
    ]
}

// ---------------------------------------------------------------------------------------------
// Targets of the differential test
// ---------------------------------------------------------------------------------------------

trait Target: Model + Clone + std::fmt::Debug + Send {
    type K: KeyOf<Self>;
    /// The table's DDL when it is created by hand (else `Schema::create`).
    fn ddl() -> Option<Vec<&'static str>> {
        None
    }
    /// Fields that may be listed.
    fn fields() -> Vec<Self::Field>;
    /// A fresh row with key number `key`.
    fn make(rng: &mut Rng, key: usize) -> Self;
    /// `a`'s key, each other field from `a` or `b`.
    fn mix(rng: &mut Rng, a: &Self, b: &Self) -> Self;
    /// Every key of the input is stored before the imports (the per-row report decodes the rows it
    /// inserts, which fails where a hand-made table's affinity changed a value's storage class).
    fn stored_keys_only() -> bool {
        false
    }
    /// Hand-made tables: binds every column but the primary key, in declaration order, for the
    /// reference upsert (the per-row report cannot be the oracle there: it decodes rows whose
    /// storage class the table's affinity changed, and fails).
    fn bind_row<'q>(&self, _q: Q<'q>) -> Q<'q> {
        unimplemented!("only hand-made tables have a reference")
    }
    /// The key as text, for the reference's bookkeeping.
    fn key_text(&self) -> String {
        unimplemented!()
    }
}

type Q<'q> = sqlx::query::Query<'q, Sqlite, <Sqlite as sqlx::Database>::Arguments>;

macro_rules! mix_fields {
    ($rng:ident, $a:ident, $b:ident, $T:ident { $($keep:ident),* } [$($f:ident),*]) => {
        $T {
            id: 0,
            $($keep: $a.$keep.clone(),)*
            $($f: if $rng.below(4) == 0 { $b.$f.clone() } else { $a.$f.clone() },)*
        }
    };
}

impl Target for Wide {
    type K = WideByK;
    fn fields() -> Vec<WideField> {
        use WideField::*;
        vec![
            Small, Int, Big, Float, Double, Flag, Text, Bytes, Decimal, Date, Time, Datetime,
            Timestamp, Uuid, Json, OSmall, OInt, OBig, OFloat, ODouble, OFlag, OText, OBytes,
            ODecimal, ODate, OTime, ODatetime, OTimestamp, OUuid, OJson,
        ]
    }
    fn make(rng: &mut Rng, key_no: usize) -> Self {
        let o_text = pick(rng, &texts());
        let o_bytes = pick(rng, &bytes());
        let o_decimal = pick(rng, &decimals());
        let o_json = pick(rng, &jsons());
        Wide {
            id: 0,
            k: key(key_no),
            small: pick(rng, &i16s()),
            int: pick(rng, &i32s()),
            big: pick(rng, &i64s()),
            float: pick(rng, &f32s()),
            double: pick(rng, &f64s()),
            flag: rng.below(2) == 0,
            text: pick(rng, &texts()),
            bytes: pick(rng, &bytes()),
            decimal: pick(rng, &decimals()),
            date: pick(rng, &dates()),
            time: pick(rng, &times()),
            datetime: pick(rng, &datetimes()),
            timestamp: pick(rng, &timestamps()),
            uuid: pick(rng, &uuids()),
            json: pick(rng, &jsons()),
            o_small: {
                let v = pick(rng, &i16s());
                opt(rng, v)
            },
            o_int: {
                let v = pick(rng, &i32s());
                opt(rng, v)
            },
            o_big: {
                let v = pick(rng, &i64s());
                opt(rng, v)
            },
            o_float: {
                let v = pick(rng, &f32s());
                opt(rng, v)
            },
            o_double: {
                let v = pick(rng, &f64s());
                opt(rng, v)
            },
            o_flag: {
                let v = rng.below(2) == 0;
                opt(rng, v)
            },
            o_text: opt(rng, o_text),
            o_bytes: opt(rng, o_bytes),
            o_decimal: opt(rng, o_decimal),
            o_date: {
                let v = pick(rng, &dates());
                opt(rng, v)
            },
            o_time: {
                let v = pick(rng, &times());
                opt(rng, v)
            },
            o_datetime: {
                let v = pick(rng, &datetimes());
                opt(rng, v)
            },
            o_timestamp: {
                let v = pick(rng, &timestamps());
                opt(rng, v)
            },
            o_uuid: {
                let v = pick(rng, &uuids());
                opt(rng, v)
            },
            o_json: opt(rng, o_json),
        }
    }
    fn mix(rng: &mut Rng, a: &Self, b: &Self) -> Self {
        mix_fields!(rng, a, b, Wide { k } [small, int, big, float, double, flag, text, bytes,
            decimal, date, time, datetime, timestamp, uuid, json, o_small, o_int, o_big, o_float,
            o_double, o_flag, o_text, o_bytes, o_decimal, o_date, o_time, o_datetime, o_timestamp,
            o_uuid, o_json])
    }
}

impl Target for Pair {
    type K = PairByAAndB;
    fn fields() -> Vec<PairField> {
        vec![PairField::V, PairField::W, PairField::N]
    }
    fn make(rng: &mut Rng, key_no: usize) -> Self {
        let v = pick(rng, &texts());
        Pair {
            id: 0,
            a: key(key_no % 4),
            // One key in five has a NULL part: it collides with nothing.
            b: if key_no % 5 == 4 {
                None
            } else {
                Some((key_no / 4) as i64)
            },
            v: opt(rng, v),
            w: pick(rng, &f64s()),
            n: pick(rng, &i64s()),
        }
    }
    fn mix(rng: &mut Rng, a: &Self, b: &Self) -> Self {
        mix_fields!(rng, a, b, Pair { a, b } [v, w, n])
    }
}

impl Target for Loose {
    type K = LooseByK;
    fn stored_keys_only() -> bool {
        true
    }
    fn ddl() -> Option<Vec<&'static str>> {
        Some(vec![
            "CREATE TABLE adv_loose (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT NOT NULL, \
             s NUMERIC NOT NULL, n TEXT NOT NULL, x NUMERIC NOT NULL, r REAL, i INTEGER, \
             b NUMERIC, c TEXT COLLATE NOCASE, CONSTRAINT adv_loose_k_key UNIQUE (k))",
        ])
    }
    fn fields() -> Vec<LooseField> {
        use LooseField::*;
        vec![S, N, X, R, I, B, C]
    }
    fn make(rng: &mut Rng, key_no: usize) -> Self {
        let i = pick(rng, &texts());
        let b = pick(rng, &bytes());
        let c = pick(rng, &texts());
        let r = pick(rng, &i64s());
        Loose {
            id: 0,
            k: key(key_no),
            s: pick(rng, &texts()),
            n: pick(rng, &i64s()),
            x: pick(rng, &f64s()),
            r: opt(rng, r),
            i: opt(rng, i),
            b: opt(rng, b),
            c: opt(rng, c),
        }
    }
    fn mix(rng: &mut Rng, a: &Self, b: &Self) -> Self {
        mix_fields!(rng, a, b, Loose { k } [s, n, x, r, i, b, c])
    }
    fn bind_row<'q>(&self, q: Q<'q>) -> Q<'q> {
        q.bind(self.k.clone())
            .bind(self.s.clone())
            .bind(self.n)
            .bind(self.x)
            .bind(self.r)
            .bind(self.i.clone())
            .bind(self.b.clone())
            .bind(self.c.clone())
    }
    fn key_text(&self) -> String {
        self.k.clone()
    }
}

impl Target for NoCase {
    type K = NoCaseByK;
    fn ddl() -> Option<Vec<&'static str>> {
        Some(vec![
            "CREATE TABLE adv_nocase (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             k TEXT NOT NULL COLLATE NOCASE, v TEXT NOT NULL COLLATE NOCASE, w REAL, \
             CONSTRAINT adv_nocase_k_key UNIQUE (k))",
        ])
    }
    fn fields() -> Vec<NoCaseField> {
        vec![NoCaseField::V, NoCaseField::W]
    }
    fn make(rng: &mut Rng, key_no: usize) -> Self {
        // Distinct under NOCASE too (only ASCII letters fold): the collision of "a" and "A" is
        // its own scenario below.
        const KEYS: &[&str] = &["a", "B", "ab", "ä", "Ä", "a ", "b ", "ß"];
        NoCase {
            id: 0,
            k: KEYS[key_no % KEYS.len()].into(),
            v: pick(rng, &["x", "X", "y", "", "x "].map(String::from)),
            w: {
                let w = pick(rng, &[1.0, 2.0, 0.1 + 0.2]);
                opt(rng, w)
            },
        }
    }
    fn mix(rng: &mut Rng, a: &Self, b: &Self) -> Self {
        mix_fields!(rng, a, b, NoCase { k } [v, w])
    }
}

// ---------------------------------------------------------------------------------------------
// The differential harness
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Import<M: Model> {
    rows: Vec<M>,
    fields: Vec<M::Field>,
    batch: usize,
}

#[derive(Debug, Clone)]
struct Case<M: Model> {
    seeds: Vec<M>,
    /// Raw statements run after the table is created and seeded (triggers, raw rows).
    extra: Vec<String>,
    imports: Vec<Import<M>>,
}

type Counts = (u64, u64, u64, u64, u64, u64);

thread_local! {
    /// inserted, updated, unchanged, failed imports: that the random cases reach every outcome.
    static STATS: std::cell::RefCell<(u64, u64, u64, u64)> = const { std::cell::RefCell::new((0, 0, 0, 0)) };
}

/// Every row of `table` by id: each column's storage class and exact value.
async fn dump(pool: &SqlitePool, table: &str, order: &str) -> Vec<Vec<String>> {
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
            .bind(table)
            .fetch_all(pool)
            .await
            .unwrap();
    let select = columns
        .iter()
        .map(|c| format!("typeof(\"{c}\") || ':' || quote(\"{c}\")"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {select} FROM \"{table}\" ORDER BY {order}, id");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|i| {
                    let v: String = row.get(i);
                    if v.len() > 80 {
                        format!(
                            "{}…(len {}, hash {:x})",
                            &v[..40.min(v.len())].chars().take(20).collect::<String>(),
                            v.len(),
                            fnv(&v)
                        )
                    } else {
                        v
                    }
                })
                .collect()
        })
        .collect()
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

async fn reset<M: Target>(pool: &SqlitePool, case: &Case<M>) {
    let table = M::META.table;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS \"{table}\""
    )))
    .execute(pool)
    .await
    .unwrap();
    match M::ddl() {
        Some(ddl) => {
            for sql in ddl {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        None => Schema::new().model::<M>().create(pool).await.unwrap(),
    }
    if !case.seeds.is_empty() {
        // Counts only: skip mode's per-row report decodes what it returns, which a hand-made
        // table's affinity may have converted. One row at a time: keys that are distinct in Rust
        // may collide in a hand-made table (the same on both databases).
        for seed in &case.seeds {
            let _ = BulkInsert::<M>::new()
                .counts_only()
                .skip_conflicts::<M::K>()
                .run(pool, [seed.clone()])
                .await;
        }
    }
    for sql in &case.extra {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(pool)
            .await
            .unwrap();
    }
}

async fn import<M: Target>(
    pool: &SqlitePool,
    step: &Import<M>,
    counts_only: bool,
) -> Result<Counts, String> {
    let mut bulk = BulkInsert::<M>::new().batch_size(step.batch);
    if counts_only {
        bulk = bulk.counts_only();
    }
    let report = bulk
        .update_conflicts::<M::K>(&step.fields)
        .run(pool, step.rows.clone())
        .await
        .map_err(|e| error_chain(&e))?;
    if !counts_only {
        // The per-row report agrees with its own counts.
        let rows = report.rows.as_ref().expect("per-row report");
        assert_eq!(rows.len(), step.rows.len());
    } else {
        assert!(report.rows.is_none());
    }
    Ok((
        report.inserted,
        report.updated,
        report.unchanged,
        report.skipped_in_input,
        report.skipped_existing,
        report.stale,
    ))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(" <- ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The reference for hand-made tables: each chunk's last row per key upserted one at a time by a
/// hand-written `INSERT … ON CONFLICT (k) DO UPDATE SET <listed> WHERE <a listed column IS NOT
/// excluded's>`, counted from `changes()` and whether the key was stored, with the README's
/// cross-chunk rule (a key counted once: inserted, else updated if any chunk wrote it, else
/// unchanged).
async fn reference<M: Target>(pool: &SqlitePool, step: &Import<M>) -> Result<Counts, String> {
    use std::collections::HashMap;
    let meta = M::META;
    let columns: Vec<&str> = meta
        .columns
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != meta.primary_key)
        .map(|(_, c)| c.name)
        .collect();
    let listed: Vec<&str> = step
        .fields
        .iter()
        .map(|f| meta.columns[M::field_index(*f)].name)
        .collect();
    let sql = format!(
        "INSERT INTO \"{t}\" ({cols}) VALUES ({marks}) ON CONFLICT (k) DO UPDATE SET {set} WHERE {differs}",
        t = meta.table,
        cols = columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", "),
        marks = vec!["?"; columns.len()].join(", "),
        set = listed
            .iter()
            .map(|c| format!("\"{c}\" = excluded.\"{c}\""))
            .collect::<Vec<_>>()
            .join(", "),
        differs = listed
            .iter()
            .map(|c| format!("\"{c}\" IS NOT excluded.\"{c}\""))
            .collect::<Vec<_>>()
            .join(" OR "),
    );
    let exists = format!(
        "SELECT EXISTS (SELECT 1 FROM \"{}\" WHERE k = ?)",
        meta.table
    );
    let mut tx = pool.begin().await.unwrap();
    // 0 inserted, 1 updated, 2 unchanged
    let mut status: HashMap<String, u8> = HashMap::new();
    for chunk in step.rows.chunks(step.batch) {
        let mut kept: Vec<&M> = Vec::new();
        for (i, row) in chunk.iter().enumerate() {
            if !chunk[i + 1..]
                .iter()
                .any(|later| later.key_text() == row.key_text())
            {
                kept.push(row);
            }
        }
        // The library writes a chunk in key order: keys distinct in Rust may be one row in a
        // hand-made table (NUMERIC / NOCASE key), where the order decides which value stays.
        kept.sort_by_key(|row| row.key_text());
        for row in kept {
            let existed: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(exists.clone()))
                .bind(row.key_text())
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
            let written = row
                .bind_row(sqlx::query(sqlx::AssertSqlSafe(sql.clone())))
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?
                .rows_affected()
                > 0;
            let entry = status.entry(row.key_text());
            match entry {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(match (existed, written) {
                        (false, _) => 0,
                        (true, true) => 1,
                        (true, false) => 2,
                    });
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    if *o.get() == 2 && written {
                        o.insert(1);
                    }
                }
            }
        }
    }
    tx.commit().await.unwrap();
    let count = |n: u8| status.values().filter(|&&s| s == n).count() as u64;
    Ok((
        count(0),
        count(1),
        count(2),
        step.rows.len() as u64 - status.len() as u64,
        0,
        0,
    ))
}

/// Runs `case` on both databases: `Err` describes the first disagreement.
async fn check<M: Target>(a: &SqlitePool, b: &SqlitePool, case: &Case<M>) -> Result<(), String> {
    reset(a, case).await;
    reset(b, case).await;
    let table = M::META.table;
    assert_eq!(
        dump(a, table, "id").await,
        dump(b, table, "id").await,
        "identical starting contents"
    );
    for (n, step) in case.imports.iter().enumerate() {
        let fast = import(a, step, true).await;
        STATS.with(|st| {
            let mut st = st.borrow_mut();
            match &fast {
                Ok(c) => {
                    st.0 += c.0;
                    st.1 += c.1;
                    st.2 += c.2;
                }
                Err(_) => st.3 += 1,
            }
        });
        let slow = if M::stored_keys_only() {
            reference(b, step).await
        } else {
            import(b, step, false).await
        };
        // Errors: both or neither (the texts may name rows differently; compare the first line of the
        // database's own error only when both failed).
        match (&fast, &slow) {
            (Ok(x), Ok(y)) if x != y => {
                return Err(format!(
                    "import {n}: counts differ: counts_only {x:?}, per-row {y:?} \
                     (inserted, updated, unchanged, skipped_in_input, skipped_existing, stale)"
                ));
            }
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => {
                return Err(format!(
                    "import {n}: one path failed: counts_only {fast:?}, per-row {slow:?} ({e})"
                ));
            }
            _ => {}
        }
        let order = if M::stored_keys_only() { "k" } else { "id" };
        let (da, db) = (dump(a, table, order).await, dump(b, table, order).await);
        if da != db {
            let mut diff = String::new();
            for i in 0..da.len().max(db.len()) {
                if da.get(i) != db.get(i) {
                    diff.push_str(&format!(
                        "\n  counts_only: {:?}\n  per-row:     {:?}",
                        da.get(i),
                        db.get(i)
                    ));
                }
            }
            return Err(format!(
                "import {n} ({fast:?} / {slow:?}): stored rows differ:{diff}"
            ));
        }
        if let Ok(x) = &fast {
            // Distinct keys + repeats = input rows.
            let total = x.0 + x.1 + x.2 + x.3 + x.4 + x.5;
            if total != step.rows.len() as u64 {
                return Err(format!(
                    "import {n}: counts {x:?} add up to {total}, not {} input rows",
                    step.rows.len()
                ));
            }
        }
    }
    Ok(())
}

/// Removes what it can while `case` still fails.
async fn shrink<M: Target>(a: &SqlitePool, b: &SqlitePool, mut case: Case<M>) -> (Case<M>, String) {
    let mut error = check(a, b, &case).await.unwrap_err();
    let mut budget = 400;
    loop {
        let mut progress = false;
        let mut candidates: Vec<Case<M>> = Vec::new();
        for i in 0..case.imports.len() {
            let mut c = case.clone();
            c.imports.remove(i);
            candidates.push(c);
        }
        for i in 0..if M::stored_keys_only() {
            0
        } else {
            case.seeds.len()
        } {
            let mut c = case.clone();
            c.seeds.remove(i);
            candidates.push(c);
        }
        for (j, step) in case.imports.iter().enumerate() {
            for i in 0..step.rows.len() {
                let mut c = case.clone();
                c.imports[j].rows.remove(i);
                candidates.push(c);
            }
            if step.fields.len() > 1 {
                for i in 0..step.fields.len() {
                    let mut c = case.clone();
                    c.imports[j].fields.remove(i);
                    candidates.push(c);
                }
            }
        }
        for c in candidates {
            if budget == 0 {
                return (case, error);
            }
            budget -= 1;
            if let Err(e) = check(a, b, &c).await {
                case = c;
                error = e;
                progress = true;
                break;
            }
        }
        if !progress {
            return (case, error);
        }
    }
}

fn random_case<M: Target>(rng: &mut Rng, keys: usize) -> Case<M> {
    let mut known: Vec<M> = Vec::new();
    let seeds: Vec<M> = if M::stored_keys_only() {
        (0..keys).map(|k| M::make(rng, k)).collect()
    } else {
        (0..rng.below(keys as u64 + 1))
            .map(|_| {
                let k = rng.below(keys as u64) as usize;
                M::make(rng, k)
            })
            .collect()
    };
    known.extend(seeds.iter().cloned());
    let all = M::fields();
    let mut imports = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let n = 1 + rng.below(12) as usize;
        let mut rows = Vec::new();
        for _ in 0..n {
            let k = rng.below(keys as u64) as usize;
            let fresh = M::make(rng, k);
            let row = if M::stored_keys_only() && rng.below(2) == 0 {
                let base = known[k].clone();
                M::mix(rng, &base, &fresh)
            } else if !known.is_empty() && rng.below(2) == 0 {
                // A row like a stored (or earlier) one: unchanged, or changed in a few fields.
                let base = known[rng.below(known.len() as u64) as usize].clone();
                let other = M::make(rng, 0);
                if rng.below(2) == 0 {
                    base
                } else {
                    M::mix(rng, &base, &other)
                }
            } else {
                fresh
            };
            rows.push(row);
        }
        known.extend(rows.iter().cloned());
        let mut fields: Vec<M::Field> = all.iter().copied().filter(|_| rng.below(3) == 0).collect();
        if fields.is_empty() {
            fields.push(all[rng.below(all.len() as u64) as usize]);
        }
        let batch = match rng.below(4) {
            0 => 1,
            1 => 2 + rng.below(3) as usize,
            _ => 1000,
        };
        imports.push(Import {
            rows,
            fields,
            batch,
        });
    }
    Case {
        seeds,
        extra: Vec::new(),
        imports,
    }
}

/// `rounds` seeded random cases of `M` through both paths; the first failure is shrunk and
/// reported.
async fn differential<M: Target>(
    a: &SqlitePool,
    b: &SqlitePool,
    seed: u64,
    rounds: usize,
    keys: usize,
) {
    let mut rng = Rng(seed);
    for round in 0..rounds {
        let case = random_case::<M>(&mut rng, keys);
        if let Err(_first) = check(a, b, &case).await {
            let (small, error) = shrink(a, b, case).await;
            panic!(
                "{}: seed {seed:#x} round {round}: {error}\nsmallest case: {small:#?}",
                M::META.name
            );
        }
    }
    let (inserted, updated, unchanged, failed) = STATS.with(|st| *st.borrow());
    eprintln!(
        "{}: inserted {inserted}, updated {updated}, unchanged {unchanged}, failed imports {failed}",
        M::META.name
    );
}

/// Two fresh databases with the harness, and a body over both.
async fn pair<F>(name: &str, body: F)
where
    F: AsyncFnOnce(&SqlitePool, &SqlitePool),
{
    run_scenario::<Sqlite, _>(
        &format!("{name}::a"),
        Options::default(),
        async |a: TestDb<Sqlite>| {
            run_scenario::<Sqlite, _>(
                &format!("{name}::b"),
                Options::default(),
                async |b: TestDb<Sqlite>| {
                    body(&a.pool, &b.pool).await;
                },
            )
            .await;
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Differential scenarios
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn differential_every_column_type() {
    pair(
        "adv_sqlite_update_counts::differential_every_column_type",
        async |a, b| {
            differential::<Wide>(a, b, 0x5eed_0001, 150, 8).await;
        },
    )
    .await;
}

#[tokio::test]
async fn differential_composite_key_with_nulls() {
    pair(
        "adv_sqlite_update_counts::differential_composite_key_with_nulls",
        async |a, b| {
            differential::<Pair>(a, b, 0x5eed_0002, 200, 10).await;
        },
    )
    .await;
}

#[tokio::test]
async fn differential_hand_made_affinity_table() {
    pair(
        "adv_sqlite_update_counts::differential_hand_made_affinity_table",
        async |a, b| {
            differential::<Loose>(a, b, 0x5eed_0003, 250, 8).await;
        },
    )
    .await;
}

#[tokio::test]
async fn differential_nocase_key_and_value() {
    pair(
        "adv_sqlite_update_counts::differential_nocase_key_and_value",
        async |a, b| {
            differential::<NoCase>(a, b, 0x5eed_0004, 200, 9).await;
        },
    )
    .await;
}

impl Target for Item {
    type K = ItemBySku;
    fn fields() -> Vec<ItemField> {
        vec![ItemField::Price, ItemField::Weight]
    }
    fn make(rng: &mut Rng, key_no: usize) -> Self {
        Item {
            id: 0,
            sku: format!("s{key_no}"),
            price: rng.below(8) as i64,
            weight: pick(rng, &[0.0, 1.0, 0.1 + 0.2]),
        }
    }
    fn mix(rng: &mut Rng, a: &Self, b: &Self) -> Self {
        mix_fields!(rng, a, b, Item { sku } [price, weight])
    }
}

fn item(sku: &str, price: i64, weight: f64) -> Item {
    Item {
        id: 0,
        sku: sku.into(),
        price,
        weight,
    }
}

// ---------------------------------------------------------------------------------------------
// Triggers
// ---------------------------------------------------------------------------------------------

/// Random cases under triggers that refuse some updates (`RAISE(IGNORE)`), change the row written
/// (an AFTER UPDATE that rewrites `weight`) and, on insert of a new row, change a stored row the
/// read has already compared.
#[tokio::test]
async fn differential_under_triggers() {
    pair(
        "adv_sqlite_update_counts::differential_under_triggers",
        async |a, b| {
            let mut rng = Rng(0x5eed_0005);
            for round in 0..150 {
                let mut case = random_case::<Item>(&mut rng, 10);
                case.extra = vec![
                "CREATE TRIGGER adv_refuse BEFORE UPDATE ON adv_item WHEN NEW.price = 3 \
                 BEGIN SELECT RAISE(IGNORE); END"
                    .into(),
                "CREATE TRIGGER adv_rewrite AFTER UPDATE OF price ON adv_item WHEN NEW.price = 5 \
                 BEGIN UPDATE adv_item SET weight = weight + 1 WHERE id = NEW.id; END"
                    .into(),
                "CREATE TRIGGER adv_poke AFTER INSERT ON adv_item WHEN NEW.price = 7 \
                 BEGIN UPDATE adv_item SET price = price + 100 WHERE sku = 's0'; END"
                    .into(),
            ];
                if let Err(_first) = check(a, b, &case).await {
                    let (small, error) = shrink(a, b, case).await;
                    panic!("round {round}: {error}\nsmallest case: {small:#?}");
                }
            }
        },
    )
    .await;
}

/// The read's prediction and the upsert's rows_affected agree in number but not in which rows:
/// the insert of the new row `n` rewrites stored `b` after the read found it unchanged (so the
/// upsert writes it), and a trigger refuses the update of `a` that the read found differing. A
/// later chunk writes `a`. The per-row report sees `a` unchanged then updated, `b` updated.
#[tokio::test]
async fn same_number_of_rows_but_other_rows_than_the_read_predicted() {
    pair(
        "adv_sqlite_update_counts::same_number_of_rows_but_other_rows_than_the_read_predicted",
        async |a, b| {
            let case = Case {
                seeds: vec![item("a", 1, 0.0), item("b", 1, 0.0)],
                extra: vec![
                    "CREATE TRIGGER adv_refuse BEFORE UPDATE ON adv_item \
                     WHEN NEW.sku = 'a' AND NEW.price = 2 BEGIN SELECT RAISE(IGNORE); END"
                        .into(),
                    "CREATE TRIGGER adv_poke AFTER INSERT ON adv_item WHEN NEW.sku = 'n' \
                     BEGIN UPDATE adv_item SET price = 99 WHERE sku = 'b'; END"
                        .into(),
                ],
                imports: vec![Import {
                    rows: vec![
                        item("a", 2, 0.0),
                        item("b", 1, 0.0),
                        item("n", 1, 0.0),
                        item("a", 3, 0.0),
                    ],
                    fields: vec![ItemField::Price],
                    batch: 3,
                }],
            };
            check(a, b, &case).await.unwrap();
        },
    )
    .await;
}

/// A trigger refuses the whole statement (`RAISE(ABORT)`) in the stored rows' upsert: the call
/// fails the same way on both paths and keeps nothing, on a pool and in the caller's transaction
/// (whose own earlier write stays, and which can still commit).
#[tokio::test]
async fn an_aborting_trigger_keeps_nothing() {
    pair(
        "adv_sqlite_update_counts::an_aborting_trigger_keeps_nothing",
        async |a, b| {
            let case = Case {
                seeds: (0..6).map(|n| item(&format!("s{n}"), 1, 0.0)).collect(),
                extra: vec![
                    "CREATE TRIGGER adv_abort BEFORE UPDATE ON adv_item WHEN NEW.price = 666 \
                 BEGIN SELECT RAISE(ABORT, 'no 666'); END"
                        .into(),
                ],
                imports: vec![],
            };
            // Chunks of 2: the first chunk (a new row, an update) is written before the third fails.
            let rows = vec![
                item("new0", 5, 0.0),
                item("s0", 2, 0.0),
                item("s1", 1, 0.0),
                item("s2", 2, 0.0),
                item("s3", 666, 0.0),
                item("new1", 5, 0.0),
            ];
            for pool in [a, b] {
                reset(pool, &case).await;
            }
            let before = dump(a, "adv_item", "id").await;
            for (pool, counts_only) in [(a, true), (b, false)] {
                let mut bulk = BulkInsert::<Item>::new().batch_size(2);
                if counts_only {
                    bulk = bulk.counts_only();
                }
                let bulk = bulk.update_conflicts::<ItemBySku>(&[ItemField::Price]);
                let error = bulk.run(pool, rows.clone()).await.unwrap_err();
                let text = error_chain(&error);
                assert!(text.contains("no 666"), "counts_only {counts_only}: {text}");
                assert_eq!(
                    dump(pool, "adv_item", "id").await,
                    before,
                    "counts_only {counts_only}: nothing kept"
                );

                // In the caller's transaction.
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("INSERT INTO adv_item (sku, price, weight) VALUES ('mine', 7, 0.0)")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                let error = bulk.run(&mut *tx, rows.clone()).await.unwrap_err();
                assert!(error_chain(&error).contains("no 666"));
                // The transaction is usable, and holds its own row only.
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM adv_item")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                assert_eq!(count, 7, "counts_only {counts_only}");
                tx.commit().await.unwrap();
                let after = dump(pool, "adv_item", "id").await;
                assert_eq!(after.len(), 7);
                assert_eq!(&after[..6], &before[..], "counts_only {counts_only}");
                assert_eq!(after[6][1], "text:'mine'");
            }
        },
    )
    .await;
}

/// Random cases inside the caller's transaction (`pool.begin()`, `run(&mut *tx, …)`), after a
/// write of the caller's own, committed at the end: the same counts and contents on both paths.
#[tokio::test]
async fn differential_inside_the_callers_transaction() {
    pair(
        "adv_sqlite_update_counts::differential_inside_the_callers_transaction",
        async |a, b| {
            let mut rng = Rng(0x5eed_0006);
            for round in 0..60 {
                let case = random_case::<Pair>(&mut rng, 10);
                for pool in [a, b] {
                    reset(pool, &case).await;
                }
                let mut results = Vec::new();
                for (pool, counts_only) in [(a, true), (b, false)] {
                    let mut tx = pool.begin().await.unwrap();
                    sqlx::query(
                        "INSERT INTO adv_pair (a, b, v, w, n) VALUES ('mine', 1, NULL, 0.5, 1)",
                    )
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    let mut counts = Vec::new();
                    for step in &case.imports {
                        let mut bulk = BulkInsert::<Pair>::new().batch_size(step.batch);
                        if counts_only {
                            bulk = bulk.counts_only();
                        }
                        let report = bulk
                            .update_conflicts::<PairByAAndB>(&step.fields)
                            .run(&mut *tx, step.rows.clone())
                            .await
                            .unwrap();
                        counts.push((
                            report.inserted,
                            report.updated,
                            report.unchanged,
                            report.skipped_in_input,
                        ));
                    }
                    tx.commit().await.unwrap();
                    results.push((counts, dump(pool, "adv_pair", "id").await));
                }
                assert_eq!(
                    results[0], results[1],
                    "round {round}: counts_only vs per-row, {case:#?}"
                );
            }
        },
    )
    .await;
}

/// Values the library refuses (SQLite cannot store them exactly): a clean `InvalidValue`, on both
/// paths, also when the refused row is in a later chunk, and nothing of the call kept (no row, no
/// sequence value).
#[tokio::test]
async fn refused_values_keep_nothing() {
    pair(
        "adv_sqlite_update_counts::refused_values_keep_nothing",
        async |a, _b| {
            let mut rng = Rng(7);
            let base: Vec<Wide> = (0..4).map(|n| Wide::make(&mut rng, n)).collect();
            let case = Case {
                seeds: base.clone(),
                extra: vec![],
                imports: vec![],
            };
            type Poison = fn(&mut Wide);
            let poisons: Vec<(&str, Poison)> = vec![
                ("double -0.0", |w| w.double = -0.0),
                ("double NaN", |w| w.double = f64::NAN),
                ("o_double -0.0", |w| w.o_double = Some(-0.0)),
                ("float NaN", |w| w.float = f32::NAN),
                ("o_float -0.0", |w| w.o_float = Some(-0.0)),
                ("o_double NaN", |w| w.o_double = Some(f64::NAN)),
                ("float -0.0", |w| w.float = -0.0),
            ];
            for (what, poison) in poisons {
                for counts_only in [true, false] {
                    reset(a, &case).await;
                    let before = dump(a, "adv_wide", "id").await;
                    let seq_before: Option<i64> = sqlx::query_scalar(
                        "SELECT seq FROM sqlite_sequence WHERE name = 'adv_wide'",
                    )
                    .fetch_optional(a)
                    .await
                    .unwrap_or(None);
                    // Chunks of 2: an update and a new row, then the refused value in the second chunk.
                    let mut rows = vec![base[0].clone(), Wide::make(&mut rng, 9), base[1].clone()];
                    rows[0].int = rows[0].int.wrapping_add(1);
                    let mut bad = base[2].clone();
                    poison(&mut bad);
                    rows.push(bad);
                    let mut bulk = BulkInsert::<Wide>::new().batch_size(2);
                    if counts_only {
                        bulk = bulk.counts_only();
                    }
                    let error = bulk
                        .update_conflicts::<WideByK>(&Wide::fields())
                        .run(a, rows)
                        .await
                        .expect_err(what);
                    let refused = match &error {
                        Error::InvalidValue { .. } => true,
                        // The refused row is named (input row 3).
                        Error::Bulk { source, row, .. } => {
                            matches!(**source, Error::InvalidValue { .. }) && *row == Some(3)
                        }
                        _ => false,
                    };
                    assert!(refused, "{what}, counts_only {counts_only}: {error:?}");
                    assert_eq!(
                        dump(a, "adv_wide", "id").await,
                        before,
                        "{what}: nothing kept"
                    );
                    let seq_after: Option<i64> = sqlx::query_scalar(
                        "SELECT seq FROM sqlite_sequence WHERE name = 'adv_wide'",
                    )
                    .fetch_optional(a)
                    .await
                    .unwrap_or(None);
                    assert_eq!(seq_after, seq_before, "{what}: no id drawn");
                }
            }
        },
    )
    .await;
}

/// No sequence value is drawn for a stored row: after counts-only imports mixing stored and new
/// rows (over several chunks, with repeats), the new rows' ids follow the previous maximum
/// without a gap, and a later plain insert takes the next one.
#[tokio::test]
async fn no_id_drawn_for_stored_rows() {
    run_scenario::<Sqlite, _>(
        "adv_sqlite_update_counts::no_id_drawn_for_stored_rows",
        Options::default(),
        async |db: TestDb<Sqlite>| {
            let pool = &db.pool;
            Schema::new().model::<Item>().create(pool).await.unwrap();
            let mut rng = Rng(11);
            let mut expected_next = 1;
            BulkInsert::<Item>::new()
                .run(pool, (0..20).map(|n| item(&format!("s{n}"), 1, 0.0)))
                .await
                .unwrap();
            expected_next += 20;
            for round in 0..20 {
                let rows: Vec<Item> = (0..15)
                    .map(|_| {
                        let k = rng.below(60) as usize;
                        Item::make(&mut rng, k)
                    })
                    .collect();
                let stored: Vec<String> = sqlx::query_scalar("SELECT sku FROM adv_item")
                    .fetch_all(pool)
                    .await
                    .unwrap();
                let mut new: Vec<&str> = rows
                    .iter()
                    .map(|r| r.sku.as_str())
                    .filter(|s| !stored.iter().any(|t| t == s))
                    .collect();
                new.sort();
                new.dedup();
                let report = BulkInsert::<Item>::new()
                    .batch_size(1 + rng.below(6) as usize)
                    .counts_only()
                    .update_conflicts::<ItemBySku>(&[ItemField::Price, ItemField::Weight])
                    .run(pool, rows.clone())
                    .await
                    .unwrap();
                assert_eq!(report.inserted, new.len() as u64, "round {round}");
                let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM adv_item ORDER BY id")
                    .fetch_all(pool)
                    .await
                    .unwrap();
                expected_next += new.len() as i64;
                assert_eq!(
                    ids,
                    (1..expected_next).collect::<Vec<_>>(),
                    "round {round}: dense ids"
                );
            }
            let probe = item("probe", 0, 0.0).insert(pool).await.unwrap();
            assert_eq!(
                probe.id, expected_next,
                "the next id follows: none was drawn for a stored row"
            );
        },
    )
    .await;
}

// Not tested here, a finding left open: a hand-made table whose key column is `COLLATE NOCASE`
// (or `NUMERIC`), where "a" and "A" (or "1" and "01") are two keys to the model and one row to
// the database. Both new in one chunk, the counts-only path fails with the database's
// duplicate-key error (nothing kept), and the per-row path reports the first row unchanged
// although its value was written. The model's own schema never declares such a key (a
// case-insensitive key is an index on `lower(…)`, which both paths handle); the library does not
// check that a hand-made table's collations match the model's.

/// Full-size chunks of the widest model (the default chunk, capped by the bind limit), long
/// values, half the keys stored, unchanged and changed rows mixed, repeats across chunks.
#[tokio::test]
async fn differential_full_chunks_of_every_type() {
    pair(
        "adv_sqlite_update_counts::differential_full_chunks_of_every_type",
        async |a, b| {
            let mut rng = Rng(0x5eed_0007);
            let wide = |rng: &mut Rng, n: usize| {
                let mut w = Wide::make(rng, 0);
                w.k = format!("{}#{n}", key(n));
                w
            };
            let seeds: Vec<Wide> = (0..1500).map(|n| wide(&mut rng, 2 * n)).collect();
            let rows: Vec<Wide> = (0..2600)
                .map(|i| {
                    let n = rng.below(3000) as usize;
                    let fresh = wide(&mut rng, n);
                    match seeds.iter().find(|s| s.k == fresh.k) {
                        Some(stored) if i % 3 == 0 => stored.clone(),
                        Some(stored) => Wide::mix(&mut rng, stored, &fresh),
                        None => fresh,
                    }
                })
                .collect();
            let case = Case {
                seeds,
                extra: vec![],
                imports: vec![
                    Import {
                        rows: rows.clone(),
                        fields: Wide::fields(),
                        batch: 1000,
                    },
                    Import {
                        rows,
                        fields: vec![WideField::Text, WideField::OJson, WideField::ODouble],
                        batch: 700,
                    },
                ],
            };
            check(a, b, &case).await.unwrap();
        },
    )
    .await;
}
