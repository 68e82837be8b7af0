//! Adversarial tests of bulk update mode (`BulkInsert::new().update_conflicts::<K>(…)`, with or
//! without `.counts_only()`, `.increment(…)`, `.only_if_newer(…)`), after two changes: MySQL/MariaDB
//! now writes the stored rows with one `UPDATE … JOIN (SELECT ? AS k, ? AS v0 UNION ALL …)` by
//! primary key, and SQLite's counts-only update mode skips the upsert for stored rows whose listed
//! values are unchanged.
//!
//! Black box: every expectation comes from the README's bulk section and the `BulkInsert` docs.
//! The main scenarios are seeded differential tests against an in-memory model of the documented
//! semantics (within a chunk the last row of a key wins; across chunks an earlier chunk writes its
//! row and a later one writes over it, the key counted once: inserted if it was not stored before
//! the call, else updated if any chunk changed a listed value, else unchanged; a guard refuses →
//! `Stale`; an increment always writes). After every import, every count, every per-row outcome and
//! every stored row is compared with the model, and which rows were written is checked too: on
//! PostgreSQL and MariaDB by an `AFTER UPDATE` trigger logging the primary key (every other round,
//! so that the trigger-free path is exercised as well), on SQLite by `total_changes()` (a trigger
//! would switch SQLite's counts-only path off). A failing case is shrunk and printed.
//!
//! Failing when written (each test's comment says what it found), and where they stand:
//! - `long_text_after_a_binary_value_in_one_update` (MariaDB): a listed text of 16,384 characters
//!   or more was stored empty when a binary value preceded it in the join update, and
//!   `mysql_long_text_before_a_binary_value_in_one_update`, the other order, crashed the server.
//!   The join update was reverted; both pass on the `CASE` update and both run. The random pools
//!   keep texts under 16,384 characters (a check loosened while the join update was in).
//! - `default_chunk_of_stored_wide_rows`, `wide_rows_stay_under_the_bind_limit` (SQLite): the
//!   stored rows' upsert exceeded the bind limit. Fixed (the chunk counts the stored primary key).
//! - `f64_increment_overflow_is_an_error` (SQLite): infinity was stored. Fixed (the sum is checked
//!   against the type's range, as integers are).
//! - `decimal_increment_past_decimal_max` (PostgreSQL, MariaDB) and
//!   `mysql_overflow_without_strict_mode` (sized `DECIMAL`, `FLOAT` outside strict mode): an
//!   overflowing increment written instead of refused. Fixed: the sum is checked against
//!   `Decimal::MAX`, the sized column's limit, and (MariaDB) `FLOAT`'s largest value.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use model_integration::{Rng, TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{
    BulkInsert, BulkReport, ConflictModeSet, Dialect, Error, KeyOf, Model, RowOutcome, Schema,
};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::Pool;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

/// Every column type, NOT NULL and nullable, several named after SQL keywords, under an awkward
/// text key.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_join_rec")]
struct Rec {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 80)]
    k: String,
    small: i16,
    int: i32,
    big: i64,
    float: f32,
    double: f64,
    flag: bool,
    text: String,
    #[model(max_length = 70)]
    short: String,
    o_text: Option<String>,
    bytes: Vec<u8>,
    o_bytes: Option<Vec<u8>>,
    dec: Decimal,
    o_dec: Option<Decimal>,
    date: NaiveDate,
    time: NaiveTime,
    dt: NaiveDateTime,
    ts: DateTime<Utc>,
    o_dt: Option<NaiveDateTime>,
    o_time: Option<NaiveTime>,
    uuid: Uuid,
    json: serde_json::Value,
    o_small: Option<i16>,
    o_int: Option<i32>,
    o_double: Option<f64>,
    o_float: Option<f32>,
}

/// A text primary key (not auto-increment) whose values differ only by case, trailing or leading
/// spaces, accents and combining marks; the conflict key is another text column.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_join_coded")]
struct Coded {
    #[model(primary_key, max_length = 40)]
    code: String,
    #[unique]
    #[model(max_length = 40)]
    sku: String,
    v: String,
    n: i64,
    o: Option<i32>,
}

/// A text primary key as the conflict key itself.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_join_tagged")]
struct Tagged {
    #[model(primary_key, max_length = 40)]
    code: String,
    v: String,
    n: i64,
}

/// An explicit (not auto-increment) integer primary key as the conflict key, at its extremes.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_join_ided")]
struct Ided {
    #[model(primary_key)]
    id: i64,
    #[model(max_length = 40)]
    name: String,
    at: Option<NaiveDateTime>,
    x: f64,
}

/// A table named like the incoming rows' alias, with columns named like the statement's own
/// aliases (`k`, `v`, `v0`, `v1`, `t`).
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "v")]
struct Alias {
    #[model(primary_key, auto_increment)]
    k: i64,
    #[unique]
    #[model(max_length = 40)]
    v0: String,
    v1: i64,
    v: Option<String>,
    t: f64,
}

/// A case-insensitive key (ASCII letters fold, nothing else): the stored row keeps its spelling.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_join_folded")]
struct Folded {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(case_insensitive)]
    #[model(max_length = 60)]
    email: String,
    v: String,
    n: Option<i64>,
}

/// A key with a nullable part under `nulls_not_distinct`: NULL collides with NULL.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_join_slot")]
#[unique_together(room, day, nulls_not_distinct)]
struct Slot {
    #[model(primary_key, auto_increment)]
    id: i64,
    room: i64,
    day: Option<i64>,
    note: String,
    at: Option<NaiveDateTime>,
}

/// Increments and guards.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_join_counter")]
struct Counter {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    k: String,
    ver: Option<i64>,
    at: NaiveDateTime,
    day: Option<NaiveDate>,
    hits: i64,
    n16: i16,
    n32: i32,
    total: f64,
    note: String,
    o_note: Option<String>,
}

/// A sized decimal and an `f32`, to overflow by increment.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_join_purse")]
struct Purse {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    name: String,
    #[model(precision = 10, scale = 2)]
    balance: Decimal,
    free: Decimal,
    weight: f32,
    #[model(max_length = 8)]
    label: String,
}

/// A second unique text column, listed: updates that collide on it.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_join_swap")]
struct Swap {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    k: String,
    #[unique]
    #[model(max_length = 100)]
    u: String,
    n: i64,
}

/// A long text and binary values, listed together.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_join_doc")]
struct Doc {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    k: String,
    body: String,
    blob: Vec<u8>,
    uuid: Uuid,
    json: serde_json::Value,
}

macro_rules! wide_model {
    ($($f:ident),*) => {
        /// Many columns under a one-column key: the bind limit, with one field listed or all.
        #[derive(Model, Debug, Clone, PartialEq)]
        #[model(table = "adv_join_wide")]
        struct Wide {
            #[model(primary_key, auto_increment)]
            id: i64,
            #[unique]
            #[model(max_length = 20)]
            k: String,
            $($f: i64,)*
        }

        fn wide_row(key: usize, value: i64) -> Wide {
            Wide { id: 0, k: format!("w{key}"), $($f: value,)* }
        }

        fn wide_values(row: &Wide) -> Vec<i64> {
            vec![$(row.$f,)*]
        }

    };
}

wide_model!(
    c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11, c12, c13, c14, c15, c16, c17, c18,
    c19, c20, c21, c22, c23, c24, c25, c26, c27, c28, c29, c30
);

/// The value columns of `Wide`: with its key, 32 columns besides the primary key.
const WIDE: usize = 31;

fn wide_field(n: usize) -> WideField {
    use WideField::*;
    [
        C00, C01, C02, C03, C04, C05, C06, C07, C08, C09, C10, C11, C12, C13, C14, C15, C16, C17,
        C18, C19, C20, C21, C22, C23, C24, C25, C26, C27, C28, C29, C30,
    ][n]
}

// ---------------------------------------------------------------------------------------------
// Backend probes: what the harness has no generic query for.
// ---------------------------------------------------------------------------------------------

trait Probe: TestBackend {
    /// The first column of every row, as text.
    fn texts(pool: &Pool<Self>, sql: &str) -> impl Future<Output = Vec<String>> + Send;
    /// One integer.
    fn number(pool: &Pool<Self>, sql: &str) -> impl Future<Output = i64> + Send;
}

impl Probe for sqlx::Sqlite {
    async fn texts(pool: &Pool<Self>, sql: &str) -> Vec<String> {
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
    async fn number(pool: &Pool<Self>, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Probe for sqlx::Postgres {
    async fn texts(pool: &Pool<Self>, sql: &str) -> Vec<String> {
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
    async fn number(pool: &Pool<Self>, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Probe for sqlx::MySql {
    async fn texts(pool: &Pool<Self>, sql: &str) -> Vec<String> {
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
    async fn number(pool: &Pool<Self>, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// Creates (`on`) or drops the `AFTER UPDATE` trigger that logs the primary key of every row an
/// `UPDATE` touches into `adv_join_log` (PostgreSQL and MariaDB; MariaDB fires it for every row
/// an `UPDATE` matched, whether or not a value changed).
async fn update_log<DB: Probe>(pool: &Pool<DB>, table: &str, pk: &str, on: bool) {
    let trigger = format!(
        "adv_join_log_{}",
        table.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    match DB::DIALECT {
        Dialect::Sqlite => {}
        Dialect::Postgres => {
            DB::run(
                pool,
                &format!("DROP TRIGGER IF EXISTS {trigger} ON \"{table}\""),
            )
            .await;
            DB::run(
                pool,
                "CREATE TABLE IF NOT EXISTS adv_join_log (n bigserial PRIMARY KEY, pk text NOT NULL)",
            )
            .await;
            if on {
                DB::run(
                    pool,
                    &format!(
                        "CREATE OR REPLACE FUNCTION {trigger}_fn() RETURNS trigger LANGUAGE plpgsql AS \
                         $$ BEGIN INSERT INTO adv_join_log (pk) VALUES (NEW.\"{pk}\"::text); RETURN NULL; END $$"
                    ),
                )
                .await;
                DB::run(
                    pool,
                    &format!(
                        "CREATE TRIGGER {trigger} AFTER UPDATE ON \"{table}\" FOR EACH ROW EXECUTE FUNCTION {trigger}_fn()"
                    ),
                )
                .await;
            }
        }
        _ => {
            DB::run(pool, &format!("DROP TRIGGER IF EXISTS {trigger}")).await;
            DB::run(
                pool,
                "CREATE TABLE IF NOT EXISTS adv_join_log (n bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, \
                 pk varchar(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL)",
            )
            .await;
            if on {
                DB::run(
                    pool,
                    &format!(
                        "CREATE TRIGGER {trigger} AFTER UPDATE ON `{table}` FOR EACH ROW \
                         INSERT INTO adv_join_log (pk) VALUES (NEW.`{pk}`)"
                    ),
                )
                .await;
            }
        }
    }
}

/// The primary keys the trigger logged since the last call, sorted; the log is emptied.
async fn take_log<DB: Probe>(pool: &Pool<DB>) -> Vec<String> {
    let sql = if DB::DIALECT == Dialect::MySql {
        "SELECT CAST(pk AS CHAR) FROM adv_join_log"
    } else {
        "SELECT pk FROM adv_join_log"
    };
    let mut out = DB::texts(pool, sql).await;
    DB::run(pool, "DELETE FROM adv_join_log").await;
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Value pools
// ---------------------------------------------------------------------------------------------

fn pick<T: Clone>(rng: &mut Rng, pool: &[T]) -> T {
    pool[rng.below(pool.len() as u64) as usize].clone()
}

fn maybe<T>(rng: &mut Rng, value: T) -> Option<T> {
    if rng.below(3) == 0 { None } else { Some(value) }
}

/// Texts that fit in 70 characters.
fn short_texts(d: Dialect) -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        " ",
        "a",
        "A",
        "a ",
        " a",
        "it's",
        "say \"hi\"",
        "back\\slash \\0 \\n",
        "?",
        "? ?",
        "$1 :v0 @k",
        "' UNION ALL SELECT 1, 2 -- ",
        "') UNION ALL SELECT NULL AS v0 #",
        "`v0`; DROP TABLE v; --",
        "emoji 😀🎉",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "ctl\u{1}\t\n\r",
        "NULL",
        "ß",
        "SS",
        "a\u{301}",
        "á",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    out.push("é".repeat(70));
    out.push("😀".repeat(17));
    out.push(format!("{}-tail", "p".repeat(65)));
    if d != Dialect::Postgres {
        out.push("nul\0byte".into());
        out.push("\0".into());
    }
    out
}

/// Short texts and long ones (over 64 bytes, up to 65,532). Under 16,384 characters: MariaDB
/// loses or crashes on longer ones next to a binary value in the join update (see
/// `long_text_after_a_binary_value_in_one_update`), and a crash of the server would take every
/// other test down with it.
fn long_texts(d: Dialect) -> Vec<String> {
    let mut out = short_texts(d);
    out.push("🦀x".repeat(3000));
    out.push(format!("{}'; --", "k".repeat(MAX_TEXT_CHARS - 5)));
    out.push("😀".repeat(MAX_TEXT_CHARS));
    out
}

/// The longest text (in characters) of the random and layout tests.
const MAX_TEXT_CHARS: usize = 16_383;

fn bytes_pool() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![0],
        vec![0xff, 0],
        b"?".to_vec(),
        b"' UNION ALL SELECT 1 --".to_vec(),
        (0..=255).collect(),
        (0..=255u8).cycle().take(70_000).collect(),
    ]
}

fn decimals() -> Vec<Decimal> {
    [
        "0",
        "1.50",
        "1.5",
        "-0.0000000000000000000000000001",
        "79228162514264337593543950335",
        "-79228162514264337593543950335",
        "0.1",
        "1234567890123456789.012345678",
        "7.9228162514264337593543950335",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

fn dates() -> Vec<NaiveDate> {
    vec![
        NaiveDate::from_ymd_opt(1000, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
        NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
    ]
}

fn times() -> Vec<NaiveTime> {
    vec![
        NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
        NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap(),
        NaiveTime::from_hms_micro_opt(12, 0, 0, 500_000).unwrap(),
        NaiveTime::from_hms_micro_opt(0, 0, 0, 1).unwrap(),
        NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
    ]
}

fn datetimes() -> Vec<NaiveDateTime> {
    let mut out = Vec::new();
    for d in dates() {
        for t in times() {
            out.push(d.and_time(t));
        }
    }
    out
}

fn timestamps() -> Vec<DateTime<Utc>> {
    vec![
        DateTime::from_timestamp(0, 0).unwrap(),
        DateTime::from_timestamp(-1, 0).unwrap(),
        DateTime::from_timestamp(2_147_483_648, 0).unwrap(),
        DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(),
        DateTime::from_timestamp(1_700_000_000, 1_000).unwrap(),
        NaiveDate::from_ymd_opt(9999, 12, 31)
            .unwrap()
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .unwrap()
            .and_utc(),
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
        json!("x"),
        json!({"a": [1, 2.5, null]}),
        json!({"q": "' UNION ALL SELECT 1 -- \\ ? 😀"}),
        json!([]),
        json!(12.5),
        json!({"nested": {"deep": true}}),
        json!(i64::MIN),
    ]
}

const I16S: [i16; 5] = [0, -1, 1, i16::MIN, i16::MAX];
const I32S: [i32; 5] = [0, -1, 7, i32::MIN, i32::MAX];
const I64S: [i64; 6] = [
    0,
    -1,
    i64::MIN,
    i64::MAX,
    (1 << 53) + 1,
    10_000_000_000_000_000,
];

fn f32s() -> Vec<f32> {
    vec![
        0.0,
        0.1,
        1.0,
        -3.5,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        1e-45,
        16_777_217.0,
    ]
}

fn f64s() -> Vec<f64> {
    vec![
        0.0,
        0.1 + 0.2,
        0.3,
        1e300,
        -1e300,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        1e16,
        f64::from(0.1_f32),
        -1.5,
    ]
}

/// Keys of `Rec` (at most 80 characters), distinct byte for byte.
fn rec_keys(d: Dialect) -> Vec<String> {
    let mut out: Vec<String> = [
        "k",
        "K",
        "k ",
        " k",
        "",
        "?",
        "🦀",
        "ä",
        "Ä",
        "a\u{308}",
        "a'b",
        "x\\y",
        "' UNION ALL SELECT 1 -- ",
        "1",
        "01",
        "NULL",
        "ß",
        "ss",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    out.push("é".repeat(80));
    out.push(format!("{}y", "x".repeat(79)));
    if d != Dialect::Postgres {
        out.push("nul\0k".into());
    }
    out
}

/// Primary keys of `Coded` and `Tagged` (at most 40 characters), distinct byte for byte, many
/// equal under a case-insensitive, accent-insensitive or PAD SPACE collation.
fn codes() -> Vec<String> {
    let mut out: Vec<String> = [
        "a",
        "A",
        "a ",
        " a",
        "ä",
        "Ä",
        "a\u{308}",
        "á",
        "ß",
        "ss",
        "SS",
        "'",
        "?",
        "' OR 1=1 -- ",
        "🦀",
        "",
        "0",
        "00",
        "a\t",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    out.push("x".repeat(40));
    out.push("é".repeat(40));
    out
}

const IDS: [i64; 8] = [
    0,
    -1,
    1,
    i64::MIN,
    i64::MAX,
    (1 << 53) + 1,
    1 << 53,
    i64::MAX - 1,
];

// ---------------------------------------------------------------------------------------------
// The subjects of the differential test
// ---------------------------------------------------------------------------------------------

trait Subject:
    Model<PrimaryKey: Clone + PartialEq + std::fmt::Debug + Send + Sync>
    + Clone
    + std::fmt::Debug
    + PartialEq
{
    type K: KeyOf<Self>;
    /// The conflict key's values, as text (distinct keys, distinct texts).
    fn key(&self) -> String;
    fn pk(&self) -> Self::PrimaryKey;
    /// The primary key as the update log holds it.
    fn pk_text(&self) -> String;
    /// Whether the database assigns the primary key of an inserted row.
    fn auto_pk() -> bool {
        false
    }
    /// `self` with `other`'s primary key.
    fn with_pk_of(&self, other: &Self) -> Self;
    fn pk_column() -> &'static str;
    fn listable() -> Vec<Self::Field>;
    fn set_field(&mut self, from: &Self, field: Self::Field);
    fn key_count(d: Dialect) -> usize;
    fn make(rng: &mut Rng, key_no: usize, d: Dialect) -> Self;
    /// A row with `self`'s key (and primary key) and, now and then, `other`'s values.
    fn mix(&self, rng: &mut Rng, other: &Self) -> Self {
        let mut out = self.clone();
        for f in Self::listable() {
            if rng.below(3) == 0 {
                out.set_field(other, f);
            }
        }
        out
    }
    /// The stored row with `row`'s key.
    fn get<DB: TestBackend>(pool: &Pool<DB>, row: &Self) -> impl Future<Output = Option<Self>>;
    /// Increments and guards: none by default.
    fn options(
        bulk: BulkInsert<Self, ConflictModeSet>,
        _guard: Option<u8>,
        _incs: &[u8],
    ) -> BulkInsert<Self, ConflictModeSet> {
        bulk
    }
    /// Whether guard `g` lets `incoming` replace `stored`.
    fn admits(_g: u8, _stored: &Self, _incoming: &Self) -> bool {
        unreachable!()
    }
    /// Adds `from`'s value of increment `i` to `row`'s.
    fn add(_i: u8, _row: &mut Self, _from: &Self) {
        unreachable!()
    }
    /// Guards and increments for a random import (none by default).
    fn pick_options(_rng: &mut Rng) -> (Option<u8>, Vec<u8>) {
        (None, Vec::new())
    }
    /// Whether the input may repeat a key (not with guards or increments).
    fn repeats() -> bool {
        true
    }
}

macro_rules! set_fields {
    ($self:ident, $from:ident, $field:ident, $F:ident { $($v:ident => $f:ident),* $(,)? }) => {
        match $field {
            $($F::$v => $self.$f = $from.$f.clone(),)*
            #[allow(unreachable_patterns)]
            other => panic!("not listable: {other:?}"),
        }
    };
}

impl Subject for Rec {
    type K = RecByK;
    fn key(&self) -> String {
        self.k.clone()
    }
    fn pk(&self) -> i64 {
        self.id
    }
    fn pk_text(&self) -> String {
        self.id.to_string()
    }
    fn auto_pk() -> bool {
        true
    }
    fn with_pk_of(&self, other: &Self) -> Self {
        Rec {
            id: other.id,
            ..self.clone()
        }
    }
    fn pk_column() -> &'static str {
        "id"
    }
    fn listable() -> Vec<RecField> {
        use RecField::*;
        vec![
            Small, Int, Big, Float, Double, Flag, Text, Short, OText, Bytes, OBytes, Dec, ODec,
            Date, Time, Dt, Ts, ODt, OTime, Uuid, Json, OSmall, OInt, ODouble, OFloat,
        ]
    }
    fn set_field(&mut self, from: &Self, field: RecField) {
        set_fields!(self, from, field, RecField {
            Small => small, Int => int, Big => big, Float => float, Double => double,
            Flag => flag, Text => text, Short => short, OText => o_text, Bytes => bytes,
            OBytes => o_bytes, Dec => dec, ODec => o_dec, Date => date, Time => time, Dt => dt,
            Ts => ts, ODt => o_dt, OTime => o_time, Uuid => uuid, Json => json,
            OSmall => o_small, OInt => o_int, ODouble => o_double, OFloat => o_float,
        })
    }
    fn key_count(d: Dialect) -> usize {
        rec_keys(d).len()
    }
    fn make(rng: &mut Rng, key_no: usize, d: Dialect) -> Self {
        let text = if rng.below(6) == 0 {
            pick(rng, &long_texts(d))
        } else {
            pick(rng, &short_texts(d))
        };
        let bytes = pick(rng, &bytes_pool());
        Rec {
            id: 0,
            k: rec_keys(d)[key_no].clone(),
            small: pick(rng, &I16S),
            int: pick(rng, &I32S),
            big: pick(rng, &I64S),
            float: pick(rng, &f32s()),
            double: pick(rng, &f64s()),
            flag: rng.below(2) == 0,
            text,
            short: pick(rng, &short_texts(d)),
            o_text: {
                let t = pick(rng, &long_texts(d));
                maybe(rng, t)
            },
            bytes,
            o_bytes: {
                let b = pick(rng, &bytes_pool()[..6]);
                maybe(rng, b)
            },
            dec: pick(rng, &decimals()),
            o_dec: {
                let v = pick(rng, &decimals());
                maybe(rng, v)
            },
            date: pick(rng, &dates()),
            time: pick(rng, &times()),
            dt: pick(rng, &datetimes()),
            ts: pick(rng, &timestamps()),
            o_dt: {
                let v = pick(rng, &datetimes());
                maybe(rng, v)
            },
            o_time: {
                let v = pick(rng, &times());
                maybe(rng, v)
            },
            uuid: pick(rng, &uuids()),
            json: pick(rng, &jsons()),
            o_small: {
                let v = pick(rng, &I16S);
                maybe(rng, v)
            },
            o_int: {
                let v = pick(rng, &I32S);
                maybe(rng, v)
            },
            o_double: {
                let v = pick(rng, &f64s());
                maybe(rng, v)
            },
            o_float: {
                let v = pick(rng, &f32s());
                maybe(rng, v)
            },
        }
    }
    async fn get<DB: TestBackend>(pool: &Pool<DB>, row: &Self) -> Option<Self> {
        Rec::by_k(row.k.clone()).get(pool).await.unwrap()
    }
}

impl Subject for Coded {
    type K = CodedBySku;
    fn key(&self) -> String {
        self.sku.clone()
    }
    fn pk(&self) -> String {
        self.code.clone()
    }
    fn pk_text(&self) -> String {
        self.code.clone()
    }
    fn with_pk_of(&self, other: &Self) -> Self {
        Coded {
            code: other.code.clone(),
            ..self.clone()
        }
    }
    fn pk_column() -> &'static str {
        "code"
    }
    fn listable() -> Vec<CodedField> {
        vec![CodedField::V, CodedField::N, CodedField::O]
    }
    fn set_field(&mut self, from: &Self, field: CodedField) {
        set_fields!(self, from, field, CodedField { V => v, N => n, O => o })
    }
    fn key_count(_d: Dialect) -> usize {
        codes().len()
    }
    fn make(rng: &mut Rng, key_no: usize, d: Dialect) -> Self {
        let all = codes();
        Coded {
            code: all[key_no].clone(),
            // Another code as the sku: the same awkward values, paired differently.
            sku: all[(key_no + 5) % all.len()].clone(),
            v: pick(rng, &long_texts(d)),
            n: pick(rng, &I64S),
            o: {
                let v = pick(rng, &I32S);
                maybe(rng, v)
            },
        }
    }
    async fn get<DB: TestBackend>(pool: &Pool<DB>, row: &Self) -> Option<Self> {
        Coded::by_sku(row.sku.clone()).get(pool).await.unwrap()
    }
}

impl Subject for Tagged {
    type K = TaggedByCode;
    fn key(&self) -> String {
        self.code.clone()
    }
    fn pk(&self) -> String {
        self.code.clone()
    }
    fn pk_text(&self) -> String {
        self.code.clone()
    }
    fn with_pk_of(&self, other: &Self) -> Self {
        Tagged {
            code: other.code.clone(),
            ..self.clone()
        }
    }
    fn pk_column() -> &'static str {
        "code"
    }
    fn listable() -> Vec<TaggedField> {
        vec![TaggedField::V, TaggedField::N]
    }
    fn set_field(&mut self, from: &Self, field: TaggedField) {
        set_fields!(self, from, field, TaggedField { V => v, N => n })
    }
    fn key_count(_d: Dialect) -> usize {
        codes().len()
    }
    fn make(rng: &mut Rng, key_no: usize, d: Dialect) -> Self {
        Tagged {
            code: codes()[key_no].clone(),
            v: pick(rng, &short_texts(d)),
            n: pick(rng, &I64S),
        }
    }
    async fn get<DB: TestBackend>(pool: &Pool<DB>, row: &Self) -> Option<Self> {
        Tagged::by_code(row.code.clone()).get(pool).await.unwrap()
    }
}

impl Subject for Ided {
    type K = IdedById;
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn pk(&self) -> i64 {
        self.id
    }
    fn pk_text(&self) -> String {
        self.id.to_string()
    }
    fn with_pk_of(&self, other: &Self) -> Self {
        Ided {
            id: other.id,
            ..self.clone()
        }
    }
    fn pk_column() -> &'static str {
        "id"
    }
    fn listable() -> Vec<IdedField> {
        vec![IdedField::Name, IdedField::At, IdedField::X]
    }
    fn set_field(&mut self, from: &Self, field: IdedField) {
        set_fields!(self, from, field, IdedField { Name => name, At => at, X => x })
    }
    fn key_count(_d: Dialect) -> usize {
        IDS.len()
    }
    fn make(rng: &mut Rng, key_no: usize, d: Dialect) -> Self {
        let names: Vec<String> = short_texts(d)
            .into_iter()
            .filter(|t| t.chars().count() <= 40)
            .collect();
        Ided {
            id: IDS[key_no],
            name: pick(rng, &names),
            at: {
                let v = pick(rng, &datetimes());
                maybe(rng, v)
            },
            x: pick(rng, &f64s()),
        }
    }
    async fn get<DB: TestBackend>(pool: &Pool<DB>, row: &Self) -> Option<Self> {
        Ided::by_id(row.id).get(pool).await.unwrap()
    }
}

impl Subject for Alias {
    type K = AliasByV0;
    fn key(&self) -> String {
        self.v0.clone()
    }
    fn pk(&self) -> i64 {
        self.k
    }
    fn pk_text(&self) -> String {
        self.k.to_string()
    }
    fn auto_pk() -> bool {
        true
    }
    fn with_pk_of(&self, other: &Self) -> Self {
        Alias {
            k: other.k,
            ..self.clone()
        }
    }
    fn pk_column() -> &'static str {
        "k"
    }
    fn listable() -> Vec<AliasField> {
        vec![AliasField::V1, AliasField::V, AliasField::T]
    }
    fn set_field(&mut self, from: &Self, field: AliasField) {
        set_fields!(self, from, field, AliasField { V1 => v1, V => v, T => t })
    }
    fn key_count(_d: Dialect) -> usize {
        codes().len()
    }
    fn make(rng: &mut Rng, key_no: usize, d: Dialect) -> Self {
        Alias {
            k: 0,
            v0: codes()[key_no].clone(),
            v1: pick(rng, &I64S),
            v: {
                let t = pick(rng, &short_texts(d));
                maybe(rng, t)
            },
            t: pick(rng, &f64s()),
        }
    }
    async fn get<DB: TestBackend>(pool: &Pool<DB>, row: &Self) -> Option<Self> {
        Alias::by_v0(row.v0.clone()).get(pool).await.unwrap()
    }
}

impl Subject for Folded {
    type K = FoldedByEmail;
    fn key(&self) -> String {
        self.email.to_ascii_lowercase()
    }
    fn pk(&self) -> i64 {
        self.id
    }
    fn pk_text(&self) -> String {
        self.id.to_string()
    }
    fn auto_pk() -> bool {
        true
    }
    fn with_pk_of(&self, other: &Self) -> Self {
        Folded {
            id: other.id,
            ..self.clone()
        }
    }
    fn pk_column() -> &'static str {
        "id"
    }
    fn listable() -> Vec<FoldedField> {
        vec![FoldedField::V, FoldedField::N]
    }
    fn set_field(&mut self, from: &Self, field: FoldedField) {
        set_fields!(self, from, field, FoldedField { V => v, N => n })
    }
    fn key_count(_d: Dialect) -> usize {
        FOLDED.len()
    }
    fn make(rng: &mut Rng, key_no: usize, d: Dialect) -> Self {
        // Each key in one of its ASCII case spellings.
        let base = FOLDED[key_no];
        let email: String = base
            .chars()
            .map(|c| {
                if rng.below(2) == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        Folded {
            id: 0,
            email,
            v: pick(rng, &short_texts(d)),
            n: {
                let v = pick(rng, &I64S);
                maybe(rng, v)
            },
        }
    }
    async fn get<DB: TestBackend>(pool: &Pool<DB>, row: &Self) -> Option<Self> {
        Folded::by_email(row.email.clone()).get(pool).await.unwrap()
    }
}

/// Keys of `Folded`, distinct after ASCII folding (non-ASCII letters, spaces and `ß` do not fold).
const FOLDED: [&str; 10] = [
    "ann@x", "ann@x ", "än@x", "Än@x", "ß@x", "ss@x", "a'b@x", "?@x", "", "z\\@x",
];

impl Subject for Slot {
    type K = SlotByRoomAndDay;
    fn key(&self) -> String {
        format!("{}|{:?}", self.room, self.day)
    }
    fn pk(&self) -> i64 {
        self.id
    }
    fn pk_text(&self) -> String {
        self.id.to_string()
    }
    fn auto_pk() -> bool {
        true
    }
    fn with_pk_of(&self, other: &Self) -> Self {
        Slot {
            id: other.id,
            ..self.clone()
        }
    }
    fn pk_column() -> &'static str {
        "id"
    }
    fn listable() -> Vec<SlotField> {
        vec![SlotField::Note, SlotField::At]
    }
    fn set_field(&mut self, from: &Self, field: SlotField) {
        set_fields!(self, from, field, SlotField { Note => note, At => at })
    }
    fn key_count(_d: Dialect) -> usize {
        12
    }
    fn make(rng: &mut Rng, key_no: usize, d: Dialect) -> Self {
        // Day NULL, 0 (what the emulation stores in place of NULL) and extremes.
        let days = [
            None,
            Some(0),
            Some(-1),
            Some(i64::MAX),
            Some(i64::MIN),
            Some(1),
        ];
        Slot {
            id: 0,
            room: (key_no / days.len()) as i64,
            day: days[key_no % days.len()],
            note: pick(rng, &short_texts(d)),
            at: {
                let v = pick(rng, &datetimes());
                maybe(rng, v)
            },
        }
    }
    async fn get<DB: TestBackend>(pool: &Pool<DB>, row: &Self) -> Option<Self> {
        Slot::by_room_and_day(row.room, row.day)
            .get(pool)
            .await
            .unwrap()
    }
}

/// Guards of `Counter`: 0 newer(ver), 1 not_older(ver), 2 newer(at), 3 not_older(day).
/// Increments: 0 hits, 1 n16, 2 n32, 3 total.
impl Subject for Counter {
    type K = CounterByK;
    fn key(&self) -> String {
        self.k.clone()
    }
    fn pk(&self) -> i64 {
        self.id
    }
    fn pk_text(&self) -> String {
        self.id.to_string()
    }
    fn auto_pk() -> bool {
        true
    }
    fn with_pk_of(&self, other: &Self) -> Self {
        Counter {
            id: other.id,
            ..self.clone()
        }
    }
    fn pk_column() -> &'static str {
        "id"
    }
    fn listable() -> Vec<CounterField> {
        use CounterField::*;
        vec![Ver, At, Day, Note, ONote]
    }
    fn set_field(&mut self, from: &Self, field: CounterField) {
        set_fields!(self, from, field, CounterField {
            Ver => ver, At => at, Day => day, Note => note, ONote => o_note,
            Hits => hits, N16 => n16, N32 => n32, Total => total,
        })
    }
    fn key_count(_d: Dialect) -> usize {
        codes().len()
    }
    fn make(rng: &mut Rng, key_no: usize, d: Dialect) -> Self {
        let day = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let ats: Vec<NaiveDateTime> = [
            (0, 0),
            (0, 1),
            (0, 500_000),
            (0, 999_999),
            (1, 0),
            (59, 999_999),
        ]
        .iter()
        .map(|&(s, us)| day.and_hms_micro_opt(0, 0, s, us).unwrap())
        .collect();
        Counter {
            id: 0,
            k: codes()[key_no].clone(),
            ver: {
                let v = rng.below(4) as i64 - 1;
                maybe(rng, v)
            },
            at: pick(rng, &ats),
            day: {
                let v = pick(rng, &dates());
                maybe(rng, v)
            },
            hits: pick(rng, &[0, 1, -1, 1 << 40, -(1 << 40)]),
            n16: pick(rng, &[0, 1, -1, 100, -100]),
            n32: pick(rng, &[0, 1, -1, 100_000, -100_000]),
            total: pick(rng, &[0.0, 0.1, 0.2, -0.3, 1e300, -1e300, 1e-300, 3.0]),
            note: pick(rng, &short_texts(d)),
            o_note: {
                let t = pick(rng, &short_texts(d));
                maybe(rng, t)
            },
        }
    }
    async fn get<DB: TestBackend>(pool: &Pool<DB>, row: &Self) -> Option<Self> {
        Counter::by_k(row.k.clone()).get(pool).await.unwrap()
    }
    fn options(
        mut bulk: BulkInsert<Self, ConflictModeSet>,
        guard: Option<u8>,
        incs: &[u8],
    ) -> BulkInsert<Self, ConflictModeSet> {
        for i in incs {
            bulk = match i {
                0 => bulk.increment(Counter::FIELDS.hits),
                1 => bulk.increment(Counter::FIELDS.n16),
                2 => bulk.increment(Counter::FIELDS.n32),
                _ => bulk.increment(Counter::FIELDS.total),
            };
        }
        match guard {
            None => bulk,
            Some(0) => bulk.only_if_newer(Counter::FIELDS.ver),
            Some(1) => bulk.only_if_not_older(Counter::FIELDS.ver),
            Some(2) => bulk.only_if_newer(Counter::FIELDS.at),
            Some(_) => bulk.only_if_not_older(Counter::FIELDS.day),
        }
    }
    fn admits(g: u8, s: &Self, i: &Self) -> bool {
        match g {
            0 => i.ver > s.ver,
            1 => i.ver >= s.ver,
            2 => i.at > s.at,
            _ => i.day >= s.day,
        }
    }
    fn add(i: u8, row: &mut Self, from: &Self) {
        match i {
            0 => row.hits += from.hits,
            1 => row.n16 += from.n16,
            2 => row.n32 += from.n32,
            _ => row.total += from.total,
        }
    }
    fn pick_options(rng: &mut Rng) -> (Option<u8>, Vec<u8>) {
        let guard = match rng.below(6) {
            0 | 1 => None,
            n => Some(n as u8 - 2),
        };
        let incs = (0..4u8).filter(|_| rng.below(3) == 0).collect();
        (guard, incs)
    }
    fn repeats() -> bool {
        false
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
    counts_only: bool,
    in_tx: bool,
    /// `commit_each_chunk` (never with `in_tx`).
    each: bool,
    guard: Option<u8>,
    incs: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Case<M: Model> {
    seeds: Vec<M>,
    imports: Vec<Import<M>>,
    /// Whether the update log (PostgreSQL, MariaDB) is on.
    log: bool,
}

/// What the model says an outcome is, before the new rows' primary keys are known.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    Inserted(String),
    Updated(String),
    Unchanged,
    Stale,
    Superseded(usize),
}

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    inserted: u64,
    updated: u64,
    unchanged: u64,
    stale: u64,
    superseded: u64,
    multi_chunk: u64,
}

/// The documented effect of one import on `state` (rows by key, with their primary keys; a new
/// row's auto-increment primary key is filled in from the database afterwards).
struct Effect {
    counts: (u64, u64, u64, u64, u64),
    wants: Vec<Want>,
    /// Rows written: one primary-key text per stored row an `UPDATE` changed, per chunk (new rows'
    /// keys for those inserted earlier in the call).
    writes: Vec<String>,
    inserts: u64,
}

fn expect<M: Subject>(state: &mut BTreeMap<String, M>, step: &Import<M>) -> Effect {
    let n = step.rows.len();
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, row) in step.rows.iter().enumerate() {
        last.insert(row.key(), i);
    }
    // 0 inserted, 1 updated, 2 unchanged, 3 stale
    let mut status: HashMap<String, u8> = HashMap::new();
    let mut writes = Vec::new();
    let mut inserts = 0;
    for chunk in step.rows.chunks(step.batch) {
        for (j, row) in chunk.iter().enumerate() {
            let key = row.key();
            if chunk[j + 1..].iter().any(|later| later.key() == key) {
                continue;
            }
            match state.get(&key) {
                None => {
                    state.insert(key.clone(), row.clone());
                    status.entry(key).or_insert(0);
                    inserts += 1;
                }
                Some(stored) => {
                    if let Some(g) = step.guard
                        && !M::admits(g, stored, row)
                    {
                        status.entry(key).or_insert(3);
                        continue;
                    }
                    let mut next = stored.clone();
                    for &f in &step.fields {
                        next.set_field(row, f);
                    }
                    for &i in &step.incs {
                        M::add(i, &mut next, row);
                    }
                    if step.incs.is_empty() && next == *stored {
                        status.entry(key).or_insert(2);
                    } else {
                        writes.push(key.clone());
                        state.insert(key.clone(), next);
                        let s = status.entry(key).or_insert(1);
                        if *s == 2 {
                            *s = 1;
                        }
                    }
                }
            }
        }
    }
    let wants: Vec<Want> = step
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let key = row.key();
            if last[&key] != i {
                return Want::Superseded(last[&key]);
            }
            match status[&key] {
                0 => Want::Inserted(key),
                1 => Want::Updated(key),
                2 => Want::Unchanged,
                _ => Want::Stale,
            }
        })
        .collect();
    let count = |s: u8| status.values().filter(|&&v| v == s).count() as u64;
    Effect {
        counts: (
            count(0),
            count(1),
            count(2),
            count(3),
            (n - status.len()) as u64,
        ),
        wants,
        writes,
        inserts,
    }
}

async fn run_import<DB: TestBackend, M: Subject>(
    db: &TestDb<DB>,
    step: &Import<M>,
) -> Result<BulkReport<M::PrimaryKey>, Error> {
    let mut bulk = BulkInsert::<M>::new().batch_size(step.batch);
    if step.counts_only {
        bulk = bulk.counts_only();
    }
    if step.each {
        bulk = bulk.commit_each_chunk();
    }
    let bulk = M::options(
        bulk.update_conflicts::<M::K>(&step.fields),
        step.guard,
        &step.incs,
    );
    if step.in_tx {
        let mut tx = db.pool.begin().await.unwrap();
        let result = bulk.run(&mut tx, step.rows.clone()).await;
        tx.commit().await.unwrap();
        result
    } else {
        bulk.run(&db.pool, step.rows.clone()).await
    }
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

fn short<T: std::fmt::Debug>(value: &T) -> String {
    let text = format!("{value:?}");
    if text.len() > 600 {
        let cut: String = text.chars().take(300).collect();
        format!("{cut}… ({} bytes)", text.len())
    } else {
        text
    }
}

async fn reset<DB: Probe, M: Subject>(db: &TestDb<DB>, case: &Case<M>) -> BTreeMap<String, M> {
    let table = M::META.table;
    let q = if DB::DIALECT == Dialect::MySql {
        '`'
    } else {
        '"'
    };
    DB::run(&db.pool, &format!("DELETE FROM {q}{table}{q}")).await;
    update_log(&db.pool, table, M::pk_column(), case.log).await;
    if DB::DIALECT != Dialect::Sqlite {
        take_log(&db.pool).await;
    }
    let mut state = BTreeMap::new();
    if !case.seeds.is_empty() {
        BulkInsert::<M>::new()
            .counts_only()
            .run(&db.pool, case.seeds.clone())
            .await
            .unwrap_or_else(|e| panic!("seeding: {}", error_chain(&e)));
    }
    for seed in &case.seeds {
        let stored = M::get(&db.pool, seed).await.expect("seeded");
        state.insert(seed.key(), stored);
    }
    state
}

/// Runs `case`; `Err` describes the first disagreement with the model.
async fn check<DB: Probe, M: Subject>(
    db: &TestDb<DB>,
    case: &Case<M>,
    seen: &mut Seen,
) -> Result<(), String> {
    let mut state = reset(db, case).await;
    let d = DB::DIALECT;
    for (n, step) in case.imports.iter().enumerate() {
        let before_changes = if d == Dialect::Sqlite {
            DB::number(&db.pool, "SELECT total_changes()").await
        } else {
            0
        };
        let effect = expect(&mut state, step);
        let report = match run_import(db, step).await {
            Ok(report) => report,
            Err(e) => return Err(format!("import {n} failed: {}", error_chain(&e))),
        };
        let got = (
            report.inserted,
            report.updated,
            report.unchanged,
            report.stale,
            report.skipped_in_input,
        );
        if got != effect.counts || report.skipped_existing != 0 {
            return Err(format!(
                "import {n}: counts (inserted, updated, unchanged, stale, skipped_in_input) {got:?}, \
                 skipped_existing {}, expected {:?}",
                report.skipped_existing, effect.counts
            ));
        }
        // Every stored row, by key, as the model has it; a new row's primary key from the database.
        for (key, want) in state.iter_mut() {
            let Some(read) = M::get(&db.pool, want).await else {
                return Err(format!("import {n}: key {key:?} is not stored"));
            };
            if M::auto_pk() && effect.wants.contains(&Want::Inserted(key.clone())) {
                *want = want.with_pk_of(&read);
            }
            if read != *want {
                return Err(format!(
                    "import {n}: key {key:?}: stored {}, expected {}",
                    short(&read),
                    short(&*want)
                ));
            }
        }
        let table = M::META.table;
        let stored = DB::count(&db.pool, table).await;
        if stored != state.len() as i64 {
            return Err(format!(
                "import {n}: {stored} rows stored, expected {}",
                state.len()
            ));
        }
        // The per-row report.
        match (&report.rows, step.counts_only) {
            (None, true) => {}
            (Some(rows), false) => {
                let want: Vec<RowOutcome<M::PrimaryKey>> = effect
                    .wants
                    .iter()
                    .map(|w| match w {
                        Want::Inserted(k) => RowOutcome::Inserted(state[k].pk()),
                        Want::Updated(k) => RowOutcome::Updated(state[k].pk()),
                        Want::Unchanged => RowOutcome::Unchanged,
                        Want::Stale => RowOutcome::Stale,
                        Want::Superseded(last) => RowOutcome::Superseded { last: *last },
                    })
                    .collect();
                if *rows != want {
                    let diff: Vec<String> = rows
                        .iter()
                        .zip(&want)
                        .enumerate()
                        .filter(|(_, (a, b))| a != b)
                        .map(|(i, (a, b))| format!("row {i}: got {a:?}, expected {b:?}"))
                        .collect();
                    return Err(format!(
                        "import {n}: per-row report differs: {}",
                        diff.join("; ")
                    ));
                }
            }
            (rows, counts_only) => {
                return Err(format!(
                    "import {n}: counts_only {counts_only} but rows {}",
                    short(rows)
                ));
            }
        }
        // Which rows were written.
        let written: Vec<String> = {
            let mut w: Vec<String> = effect.writes.iter().map(|k| state[k].pk_text()).collect();
            w.sort();
            w
        };
        if d == Dialect::Sqlite {
            let changes = DB::number(&db.pool, "SELECT total_changes()").await - before_changes;
            let want = effect.inserts as i64 + written.len() as i64;
            if changes != want {
                return Err(format!(
                    "import {n}: SQLite counted {changes} row changes, expected {want} \
                     ({} inserts, updates of {written:?})",
                    effect.inserts
                ));
            }
        } else if case.log {
            let log = take_log(&db.pool).await;
            if log != written {
                return Err(format!(
                    "import {n}: UPDATE touched the rows {log:?}, expected {written:?} \
                     (a row whose listed values are unchanged must not be written)"
                ));
            }
        }
        for w in &effect.wants {
            match w {
                Want::Inserted(_) => seen.inserted += 1,
                Want::Updated(_) => seen.updated += 1,
                Want::Unchanged => seen.unchanged += 1,
                Want::Stale => seen.stale += 1,
                Want::Superseded(_) => seen.superseded += 1,
            }
        }
        if step.rows.len() > step.batch {
            seen.multi_chunk += 1;
        }
    }
    Ok(())
}

/// Removes what it can while `case` still fails.
async fn shrink<DB: Probe, M: Subject>(
    db: &TestDb<DB>,
    mut case: Case<M>,
    mut error: String,
) -> (Case<M>, String) {
    let mut budget = 250;
    let mut seen = Seen::default();
    loop {
        let mut candidates: Vec<Case<M>> = Vec::new();
        for i in 0..case.imports.len() {
            let mut c = case.clone();
            c.imports.remove(i);
            candidates.push(c);
        }
        for i in 0..case.seeds.len() {
            let mut c = case.clone();
            c.seeds.remove(i);
            candidates.push(c);
        }
        for (j, step) in case.imports.iter().enumerate() {
            for i in 0..step.rows.len() {
                let mut c = case.clone();
                c.imports[j].rows.remove(i);
                if !c.imports[j].rows.is_empty() {
                    candidates.push(c);
                }
            }
            if step.fields.len() > 1 || (!step.incs.is_empty() && !step.fields.is_empty()) {
                for i in 0..step.fields.len() {
                    let mut c = case.clone();
                    c.imports[j].fields.remove(i);
                    candidates.push(c);
                }
            }
            for i in 0..step.incs.len() {
                let mut c = case.clone();
                c.imports[j].incs.remove(i);
                if !c.imports[j].incs.is_empty() || !c.imports[j].fields.is_empty() {
                    candidates.push(c);
                }
            }
            if step.guard.is_some() {
                let mut c = case.clone();
                c.imports[j].guard = None;
                candidates.push(c);
            }
            if step.in_tx || step.each {
                let mut c = case.clone();
                c.imports[j].in_tx = false;
                c.imports[j].each = false;
                candidates.push(c);
            }
            if step.batch < step.rows.len() {
                let mut c = case.clone();
                c.imports[j].batch = 1000;
                candidates.push(c);
            }
        }
        let mut progress = false;
        for c in candidates {
            if budget == 0 {
                return (case, error);
            }
            budget -= 1;
            if let Err(e) = check(db, &c, &mut seen).await {
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

fn random_case<M: Subject>(rng: &mut Rng, d: Dialect, log: bool) -> Case<M> {
    let keys = M::key_count(d);
    let mut latest: BTreeMap<usize, M> = BTreeMap::new();
    let mut seeds = Vec::new();
    for k in 0..keys {
        if rng.below(2) == 0 {
            let row = M::make(rng, k, d);
            latest.insert(k, row.clone());
            seeds.push(row);
        }
    }
    let all = M::listable();
    let mut imports = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let n = 1 + rng.below(12) as usize;
        let mut used: Vec<usize> = Vec::new();
        let mut rows = Vec::new();
        for _ in 0..n {
            let mut k = rng.below(keys as u64) as usize;
            if !M::repeats() {
                if used.len() == keys {
                    break;
                }
                while used.contains(&k) {
                    k = (k + 1) % keys;
                }
            } else if !used.is_empty() && rng.below(4) == 0 {
                // A repeat of a key of this import.
                k = used[rng.below(used.len() as u64) as usize];
            }
            used.push(k);
            let fresh = M::make(rng, k, d);
            let row = match latest.get(&k) {
                Some(known) => match rng.below(3) {
                    0 => known.clone(),
                    1 => known.mix(rng, &fresh),
                    _ => fresh,
                },
                None => fresh,
            };
            latest.insert(k, row.clone());
            rows.push(row);
        }
        let (guard, incs) = M::pick_options(rng);
        let mut fields: Vec<M::Field> = all.iter().copied().filter(|_| rng.below(3) == 0).collect();
        if fields.is_empty() && (incs.is_empty() || rng.below(2) == 0) {
            fields.push(all[rng.below(all.len() as u64) as usize]);
        }
        let batch = match rng.below(4) {
            0 => 1,
            1 => 2 + rng.below(3) as usize,
            _ => 1000,
        };
        let in_tx = rng.below(4) == 0;
        imports.push(Import {
            rows,
            fields,
            batch,
            counts_only: rng.below(2) == 0,
            in_tx,
            each: !in_tx && rng.below(4) == 0,
            guard,
            incs,
        });
    }
    Case {
        seeds,
        imports,
        log,
    }
}

/// `rounds` seeded random cases of `M`; the first failure is shrunk and reported.
async fn differential<DB: Probe, M: Subject>(db: &TestDb<DB>, seed: u64, rounds: usize) -> Seen {
    Schema::new().model::<M>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let salt = match d {
        Dialect::Sqlite => 1,
        Dialect::Postgres => 2,
        _ => 3,
    };
    let mut rng = Rng(seed ^ (salt * 0x9e37_79b9));
    let mut seen = Seen::default();
    for round in 0..rounds {
        let case = random_case::<M>(&mut rng, d, round % 2 == 0);
        if let Err(first) = check(db, &case, &mut seen).await {
            let (small, error) = shrink(db, case, first.clone()).await;
            panic!(
                "{} on {d}: seed {seed:#x} round {round}: {first}\n\
                 smallest failing case: {error}\n{}",
                M::META.name,
                short_case(&small)
            );
        }
    }
    eprintln!("{} on {d}: {seen:?}", M::META.name);
    seen
}

fn short_case<M: Subject>(case: &Case<M>) -> String {
    let mut out = format!("log: {}\nseeds:\n", case.log);
    for s in &case.seeds {
        out.push_str(&format!("  {}\n", short(s)));
    }
    for (i, step) in case.imports.iter().enumerate() {
        out.push_str(&format!(
            "import {i}: fields {:?}, batch {}, counts_only {}, in_tx {}, commit_each_chunk {}, \
             guard {:?}, incs {:?}\n",
            step.fields, step.batch, step.counts_only, step.in_tx, step.each, step.guard, step.incs
        ));
        for r in &step.rows {
            out.push_str(&format!("  {}\n", short(r)));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Differential scenarios
// ---------------------------------------------------------------------------------------------

/// Every column type, awkward values, repeats within and across chunks of 1–4 rows.
async fn every_type_matches_the_model<DB: Probe>(db: TestDb<DB>) {
    let seen = differential::<DB, Rec>(&db, 0xad0_0001, 40).await;
    assert!(
        seen.inserted > 50 && seen.updated > 50 && seen.unchanged > 20 && seen.superseded > 20,
        "the random cases reach every outcome: {seen:?}"
    );
    assert!(seen.multi_chunk > 10, "{seen:?}");
}

/// A text primary key, not auto-increment, with case, space and accent variants; the conflict
/// key is another column with the same variants.
async fn text_primary_key_matches_the_model<DB: Probe>(db: TestDb<DB>) {
    let seen = differential::<DB, Coded>(&db, 0xad0_0002, 50).await;
    assert!(seen.updated > 30 && seen.unchanged > 20, "{seen:?}");
}

/// The text primary key as the conflict key.
async fn text_primary_key_as_the_key_matches_the_model<DB: Probe>(db: TestDb<DB>) {
    let seen = differential::<DB, Tagged>(&db, 0xad0_0003, 50).await;
    assert!(seen.updated > 30 && seen.unchanged > 20, "{seen:?}");
}

/// An explicit integer primary key (its extremes, 0 included) as the conflict key.
async fn explicit_integer_key_matches_the_model<DB: Probe>(db: TestDb<DB>) {
    let seen = differential::<DB, Ided>(&db, 0xad0_0004, 50).await;
    assert!(seen.updated > 30 && seen.unchanged > 20, "{seen:?}");
}

/// A table named `v` whose columns are named `k`, `v`, `v0`, `v1`, `t`.
async fn aliases_as_names_match_the_model<DB: Probe>(db: TestDb<DB>) {
    let seen = differential::<DB, Alias>(&db, 0xad0_0005, 40).await;
    assert!(seen.updated > 20 && seen.unchanged > 10, "{seen:?}");
}

/// A case-insensitive key: repeats by folding, the stored spelling kept.
async fn folded_key_matches_the_model<DB: Probe>(db: TestDb<DB>) {
    let seen = differential::<DB, Folded>(&db, 0xad0_0007, 40).await;
    assert!(seen.updated > 20 && seen.unchanged > 10, "{seen:?}");
}

/// A `nulls_not_distinct` key with a nullable part.
async fn nulls_not_distinct_key_matches_the_model<DB: Probe>(db: TestDb<DB>) {
    let seen = differential::<DB, Slot>(&db, 0xad0_0008, 40).await;
    assert!(seen.updated > 20 && seen.unchanged > 10, "{seen:?}");
}

/// Increments and guards (`only_if_newer` / `only_if_not_older` on a nullable integer, a
/// datetime with microseconds and a nullable date), listed fields or none.
async fn increments_and_guards_match_the_model<DB: Probe>(db: TestDb<DB>) {
    let seen = differential::<DB, Counter>(&db, 0xad0_0006, 50).await;
    assert!(
        seen.updated > 50 && seen.stale > 20 && seen.unchanged > 5 && seen.inserted > 20,
        "{seen:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Bind limits
// ---------------------------------------------------------------------------------------------

/// 33 columns, 8,000 rows, every other one stored, `batch_size(1_000_000)`: each statement of a
/// chunk (the read of the stored keys, the insert of the new rows, the write of the stored ones)
/// must stay under the bind limit, whether one field is listed (two binds a row in MariaDB's join
/// update) or all of them, counts only and per row. Found failing on SQLite where every key is
/// stored (the second round): as `default_chunk_of_stored_wide_rows`.
async fn wide_rows_stay_under_the_bind_limit<DB: Probe>(db: TestDb<DB>) {
    Schema::new()
        .model::<Wide>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    const ROWS: usize = 8000;
    BulkInsert::<Wide>::new()
        .counts_only()
        .run(&db.pool, (0..ROWS).step_by(2).map(|k| wide_row(k, 1)))
        .await
        .unwrap();
    let all: Vec<WideField> = (0..WIDE).map(wide_field).collect();
    // The model: each key's values, or none.
    let mut model: Vec<Option<Vec<i64>>> = (0..ROWS)
        .map(|k| (k % 2 == 0).then(|| vec![1; WIDE]))
        .collect();
    let rounds = [vec![7], (0..WIDE).collect(), vec![30], vec![0, 30]];
    for (round, listed) in rounds.iter().enumerate() {
        let value = round as i64 + 2;
        let counts_only = round % 2 == 0;
        let fields: Vec<WideField> = listed.iter().map(|&n| all[n]).collect();
        let mut bulk = BulkInsert::<Wide>::new().batch_size(1_000_000);
        if counts_only {
            bulk = bulk.counts_only();
        }
        let (mut inserted, mut updated) = (0, 0);
        for slot in model.iter_mut() {
            match slot {
                None => {
                    *slot = Some(vec![value; WIDE]);
                    inserted += 1;
                }
                Some(values) => {
                    for &n in listed {
                        values[n] = value;
                    }
                    updated += 1;
                }
            }
        }
        let report = bulk
            .update_conflicts::<WideByK>(&fields)
            .run(&db.pool, (0..ROWS).map(|k| wide_row(k, value)))
            .await
            .unwrap_or_else(|e| panic!("{d}, round {round}: {}", error_chain(&e)));
        assert_eq!(
            (report.inserted, report.updated, report.unchanged),
            (inserted, updated, 0),
            "{d}, round {round}"
        );
        assert_eq!(report.rows.is_none(), counts_only);
        for k in [0, 1, 2, 3, ROWS / 2, ROWS / 2 + 1, ROWS - 2, ROWS - 1] {
            let row = Wide::by_k(format!("w{k}"))
                .get(&db.pool)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                Some(wide_values(&row)),
                model[k],
                "{d}, round {round}: key {k}"
            );
        }
    }
    assert_eq!(DB::count(&db.pool, "adv_join_wide").await, ROWS as i64);
}

/// The default chunk (no `batch_size`) of a model with 32 columns besides its auto-increment
/// primary key: 993 stored rows, one field changed in each. Found failing on SQLite: "too many
/// SQL variables" (the stored rows' upsert binds each row's stored primary key besides its 32
/// columns, 993 × 33 = 32,769 binds, past SQLite's 32,766; the chunk is sized by the 32).
async fn default_chunk_of_stored_wide_rows<DB: Probe>(db: TestDb<DB>) {
    Schema::new()
        .model::<Wide>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    const ROWS: usize = 993;
    BulkInsert::<Wide>::new()
        .counts_only()
        .run(&db.pool, (0..ROWS).map(|k| wide_row(k, 1)))
        .await
        .unwrap();
    for counts_only in [true, false] {
        let value = if counts_only { 2 } else { 3 };
        let mut bulk = BulkInsert::<Wide>::new();
        if counts_only {
            bulk = bulk.counts_only();
        }
        let report = bulk
            .update_conflicts::<WideByK>(&[WideField::C00])
            .run(&db.pool, (0..ROWS).map(|k| wide_row(k, value)))
            .await
            .unwrap_or_else(|e| panic!("{d}, counts_only {counts_only}: {}", error_chain(&e)));
        assert_eq!(
            (report.inserted, report.updated, report.unchanged),
            (0, ROWS as u64, 0),
            "{d}"
        );
        let row = Wide::by_k(format!("w{}", ROWS - 1))
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.c00, row.c01), (value, 1), "{d}");
    }
}

// ---------------------------------------------------------------------------------------------
// Overflows
// ---------------------------------------------------------------------------------------------

fn counter(k: &str) -> Counter {
    Counter {
        id: 0,
        k: k.into(),
        ver: Some(1),
        at: NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap(),
        day: None,
        hits: 0,
        n16: 0,
        n32: 0,
        total: 0.0,
        note: "n".into(),
        o_note: None,
    }
}

/// Every row of `Counter`, by key.
async fn counters<DB: TestBackend>(pool: &Pool<DB>) -> Vec<Option<Counter>> {
    let mut out = Vec::new();
    for k in ["ok", "edge", "z", "ok2"] {
        out.push(Counter::by_k(k).get(pool).await.unwrap());
    }
    out
}

/// An increment whose sum leaves its type is an error and nothing of the call is written: not the
/// new row, not the other stored rows' increments (one in an earlier chunk), on a pool and in the
/// caller's transaction (which stays usable), counts only and per row. The overflowing row comes
/// last, in the second chunk of two rows.
async fn overflowing_increments_write_nothing<DB: Probe>(db: TestDb<DB>) {
    Schema::new()
        .model::<Counter>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    type Edge = fn(&mut Counter, &mut Counter);
    let cases: Vec<(&str, u8, Edge)> = vec![
        ("i16 max + 2", 1, |s, i| (s.n16, i.n16) = (i16::MAX - 1, 2)),
        ("i16 min - 2", 1, |s, i| (s.n16, i.n16) = (i16::MIN + 1, -2)),
        ("i16 max + max", 1, |s, i| {
            (s.n16, i.n16) = (i16::MAX, i16::MAX)
        }),
        ("i32 max + 2", 2, |s, i| (s.n32, i.n32) = (i32::MAX - 1, 2)),
        ("i32 min + min", 2, |s, i| {
            (s.n32, i.n32) = (i32::MIN, i32::MIN)
        }),
        ("i64 max + 2", 0, |s, i| {
            (s.hits, i.hits) = (i64::MAX - 1, 2)
        }),
        ("i64 min - 1", 0, |s, i| (s.hits, i.hits) = (i64::MIN, -1)),
    ];
    for (what, inc, edge) in cases {
        for (counts_only, in_tx) in [(true, false), (false, false), (true, true)] {
            DB::run(&db.pool, "DELETE FROM adv_join_counter").await;
            let mut stored = counter("edge");
            let mut incoming = counter("edge");
            edge(&mut stored, &mut incoming);
            let mut ok = counter("ok");
            ok.n16 = 5;
            ok.n32 = 5;
            ok.hits = 5;
            BulkInsert::<Counter>::new()
                .run(&db.pool, vec![stored, ok.clone(), counter("ok2")])
                .await
                .unwrap();
            let before = counters(&db.pool).await;
            let mut plus_one = counter("ok");
            (plus_one.n16, plus_one.n32, plus_one.hits) = (1, 1, 1);
            let rows = vec![counter("z"), plus_one, counter("ok2"), incoming];
            let mut bulk = BulkInsert::<Counter>::new().batch_size(2);
            if counts_only {
                bulk = bulk.counts_only();
            }
            let bulk = Counter::options(
                bulk.update_conflicts::<CounterByK>(&[CounterField::Note]),
                None,
                &[inc],
            );
            let result = if in_tx {
                let mut tx = db.pool.begin().await.unwrap();
                let result = bulk.run(&mut tx, rows).await;
                // The transaction is still usable.
                Counter::by_k("ok").get(&mut tx).await.unwrap().unwrap();
                tx.commit().await.unwrap();
                result
            } else {
                bulk.run(&db.pool, rows).await
            };
            let after = counters(&db.pool).await;
            assert!(
                result.is_err(),
                "{d}: {what} (counts_only {counts_only}, in_tx {in_tx}) was accepted: {result:?};                  stored now {after:?}"
            );
            assert_eq!(
                after, before,
                "{d}: {what} (counts_only {counts_only}, in_tx {in_tx}): nothing written"
            );
        }
    }
}

/// A `f64` increment whose sum is past `f64::MAX`: "an overflow is an error and nothing is
/// written" (README, increments). PostgreSQL (`value out of range: overflow`) and MariaDB (`DOUBLE
/// value is out of range`) refuse it. Found failing on SQLite: the call succeeds, reports the row
/// updated, and stores infinity. A finite sum near the limit is exact everywhere.
async fn f64_increment_overflow_is_an_error<DB: Probe>(db: TestDb<DB>) {
    Schema::new()
        .model::<Counter>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    let mut edge = counter("edge");
    edge.total = f64::MAX;
    BulkInsert::<Counter>::new()
        .run(&db.pool, vec![edge.clone()])
        .await
        .unwrap();
    let add = async |total: f64| {
        let mut step = counter("edge");
        step.total = total;
        BulkInsert::<Counter>::new()
            .counts_only()
            .update_conflicts::<CounterByK>(&[])
            .increment(Counter::FIELDS.total)
            .run(&db.pool, vec![step])
            .await
    };
    // A finite sum: MAX + (-MAX / 2).
    add(-f64::MAX / 2.0).await.unwrap();
    let stored = Counter::by_k("edge").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(stored.total, f64::MAX - f64::MAX / 2.0, "{d}");
    // Past the limit.
    let result = add(f64::MAX).await;
    let after = Counter::by_k("edge").get(&db.pool).await.unwrap().unwrap();
    assert!(
        result.is_err(),
        "{d}: MAX/2 + MAX accepted ({result:?}), stored {}",
        after.total
    );
    assert_eq!(after.total, stored.total, "{d}: nothing written");
}

/// Sized decimals (`NUMERIC(10, 2)`) and an `f32` incremented past their range: an error, nothing
/// written (PostgreSQL and MariaDB; SQLite refuses decimal and `f32` increments).
async fn decimal_and_f32_increments_past_their_range<DB: Probe>(db: TestDb<DB>) {
    Schema::new()
        .model::<Purse>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    let purse = |name: &str, balance: &str, free: &str, weight: f32| Purse {
        id: 0,
        name: name.into(),
        balance: balance.parse().unwrap(),
        free: free.parse().unwrap(),
        weight,
        label: "l".into(),
    };
    BulkInsert::<Purse>::new()
        .run(
            &db.pool,
            vec![
                purse("ok", "1.00", "1", 1.0),
                purse(
                    "top",
                    "99999999.00",
                    "79228162514264337593543950335",
                    f32::MAX,
                ),
            ],
        )
        .await
        .unwrap();
    // A row that no longer decodes is read as the error's text.
    let read = async |name: &str| {
        Purse::by_name(name)
            .get(&db.pool)
            .await
            .map(Option::unwrap)
            .map_err(|e| error_chain(&e))
    };
    let before = (read("ok").await, read("top").await);
    type Case = (&'static str, Purse, u8);
    let cases: Vec<Case> = vec![
        (
            "balance 99999999.00 + 1.00",
            purse("top", "1.00", "0", 0.0),
            0,
        ),
        (
            "balance 99999999.00 + 0.01 + 1",
            purse("top", "1.01", "0", 0.0),
            0,
        ),
        ("weight f32::MAX * 2", purse("top", "0", "0", f32::MAX), 2),
    ];
    for (what, row, inc) in cases {
        for counts_only in [true, false] {
            let mut bulk = BulkInsert::<Purse>::new().batch_size(1);
            if counts_only {
                bulk = bulk.counts_only();
            }
            let bulk = bulk.update_conflicts::<PurseByName>(&[PurseField::Label]);
            let bulk = match inc {
                0 => bulk.increment(Purse::FIELDS.balance),
                1 => bulk.increment(Purse::FIELDS.free),
                _ => bulk.increment(Purse::FIELDS.weight),
            };
            let mut ok = purse("ok", "1", "1", 1.0);
            ok.label = "changed".into();
            let result = bulk.run(&db.pool, vec![ok, row.clone()]).await;
            let after = (read("ok").await, read("top").await);
            assert!(
                result.is_err(),
                "{d}: {what} (counts_only {counts_only}) accepted: {result:?}, stored {after:?}"
            );
            assert_eq!(after, before, "{d}: {what}: nothing written");
        }
    }
}

/// A `Decimal` increment whose sum is past `Decimal::MAX` (29 integer digits): the column
/// (PostgreSQL `numeric`, MariaDB `DECIMAL(65, 30)`) holds it, but no `Decimal` does, so "an
/// overflow is an error and nothing is written". Found failing on PostgreSQL and MariaDB: the call
/// reports the row updated, and the row can no longer be read (a decode error).
async fn decimal_increment_past_decimal_max<DB: Probe>(db: TestDb<DB>) {
    Schema::new()
        .model::<Purse>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    let purse = |free: Decimal| Purse {
        id: 0,
        name: "top".into(),
        balance: Decimal::ZERO,
        free,
        weight: 0.0,
        label: "l".into(),
    };
    BulkInsert::<Purse>::new()
        .run(&db.pool, vec![purse(Decimal::MAX)])
        .await
        .unwrap();
    let result = BulkInsert::<Purse>::new()
        .counts_only()
        .update_conflicts::<PurseByName>(&[])
        .increment(Purse::FIELDS.free)
        .run(&db.pool, vec![purse(Decimal::ONE)])
        .await;
    let stored = Purse::by_name("top")
        .get(&db.pool)
        .await
        .map_err(|e| error_chain(&e));
    assert!(
        result.is_err(),
        "{d}: Decimal::MAX + 1 accepted: {result:?}; the row now reads {stored:?}"
    );
    assert_eq!(
        stored.map(|p| p.map(|p| p.free)),
        Ok(Some(Decimal::MAX)),
        "{d}: nothing written"
    );
}

/// MariaDB outside strict mode (a session with `sql_mode = ''`) clamps a value out of its
/// column's range to the limit with a warning: the README says the sums are checked there and an
/// overflow raised, nothing written. Increments of `SMALLINT`, `INT`, `BIGINT`, a sized `DECIMAL`
/// and a `FLOAT`, each in a chunk with another stored row (written by the same join update) and
/// after an earlier chunk, on the session's own connection and in its transaction. Found failing:
/// the integer sums are refused, but `DECIMAL(10, 2)` 99999999.00 + 1 is stored as 99999999.99
/// and `FLOAT` `f32::MAX` + `f32::MAX` as `f32::MAX`, each reported updated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_overflow_without_strict_mode() {
    model_integration::run_scenario::<sqlx::MySql, _>(
        "adv_update_join::mysql_overflow_without_strict_mode",
        model_integration::Options::default(),
        async |db: TestDb<sqlx::MySql>| {
            Schema::new()
                .model::<Counter>()
                .model::<Purse>()
                .create(&db.pool)
                .await
                .unwrap();
            let mut conn = db.pool.acquire().await.unwrap();
            sqlx::query("SET SESSION sql_mode = ''")
                .execute(&mut *conn)
                .await
                .unwrap();
            type Edge = fn(&mut Counter, &mut Counter);
            let cases: Vec<(&str, u8, Edge)> = vec![
                ("i16 max + 2", 1, |s, i| (s.n16, i.n16) = (i16::MAX - 1, 2)),
                ("i16 min - 2", 1, |s, i| (s.n16, i.n16) = (i16::MIN + 1, -2)),
                ("i32 max + 2", 2, |s, i| (s.n32, i.n32) = (i32::MAX - 1, 2)),
                ("i32 min + min", 2, |s, i| {
                    (s.n32, i.n32) = (i32::MIN, i32::MIN)
                }),
                ("i64 max + 2", 0, |s, i| {
                    (s.hits, i.hits) = (i64::MAX - 1, 2)
                }),
            ];
            for (what, inc, edge) in cases {
                for (counts_only, in_tx) in [(true, false), (false, true)] {
                    sqlx::query("DELETE FROM adv_join_counter")
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    let mut stored = counter("edge");
                    let mut incoming = counter("edge");
                    edge(&mut stored, &mut incoming);
                    BulkInsert::<Counter>::new()
                        .run(&mut *conn, vec![counter("ok"), stored, counter("ok2")])
                        .await
                        .unwrap();
                    let before = counters(&db.pool).await;
                    let mut one = counter("ok");
                    (one.n16, one.n32, one.hits) = (1, 1, 1);
                    let mut two = counter("ok2");
                    (two.n16, two.n32, two.hits) = (1, 1, 1);
                    // Chunks of 3: [ok, z, ok2] then [edge, …]: the edge row shares its chunk.
                    let rows = vec![one.clone(), counter("z"), two.clone(), incoming, {
                        let mut c = one.clone();
                        c.k = "z2".into();
                        c
                    }];
                    let mut bulk = BulkInsert::<Counter>::new().batch_size(3);
                    if counts_only {
                        bulk = bulk.counts_only();
                    }
                    let bulk = Counter::options(
                        bulk.update_conflicts::<CounterByK>(&[CounterField::Note]),
                        None,
                        &[inc],
                    );
                    let result = if in_tx {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
                        let result = bulk.run(&mut tx, rows).await;
                        tx.commit().await.unwrap();
                        result
                    } else {
                        bulk.run(&mut *conn, rows).await
                    };
                    let after = counters(&db.pool).await;
                    assert!(
                        result.is_err(),
                        "{what} (counts_only {counts_only}, in_tx {in_tx}) accepted: {result:?}; \
                         stored now {after:?}"
                    );
                    assert_eq!(after, before, "{what}: nothing written");
                }
            }
            // A sized decimal and a float.
            let purse = |name: &str, balance: &str, weight: f32| Purse {
                id: 0,
                name: name.into(),
                balance: balance.parse().unwrap(),
                free: Decimal::ZERO,
                weight,
                label: "l".into(),
            };
            BulkInsert::<Purse>::new()
                .run(
                    &mut *conn,
                    vec![purse("a", "1", 1.0), purse("top", "99999999.00", f32::MAX)],
                )
                .await
                .unwrap();
            let read = async |name: &str| Purse::by_name(name).get(&db.pool).await.unwrap();
            let mut failures = Vec::new();
            for (what, row, inc) in [
                ("DECIMAL(10, 2) 99999999.00 + 1", purse("top", "1", 0.0), 0),
                ("FLOAT f32::MAX + f32::MAX", purse("top", "0", f32::MAX), 1),
            ] {
                let bulk = BulkInsert::<Purse>::new()
                    .counts_only()
                    .update_conflicts::<PurseByName>(&[PurseField::Label]);
                let bulk = if inc == 0 {
                    bulk.increment(Purse::FIELDS.balance)
                } else {
                    bulk.increment(Purse::FIELDS.weight)
                };
                let before = (read("a").await, read("top").await);
                let mut a = purse("a", "1", 1.0);
                a.label = "changed".into();
                let result = bulk.run(&mut *conn, vec![a, row]).await;
                let after = (read("a").await, read("top").await);
                if result.is_ok() || after != before {
                    failures.push(format!(
                        "{what}: {result:?}; stored before {before:?}, after {after:?}"
                    ));
                    // Back to the starting rows for the next case.
                    sqlx::query("DELETE FROM adv_join_purse")
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    for p in [before.0.clone(), before.1.clone()].into_iter().flatten() {
                        p.insert(&mut *conn).await.unwrap();
                    }
                }
            }
            assert!(
                failures.is_empty(),
                "overflows accepted outside strict mode:\n{}",
                failures.join("\n")
            );
            sqlx::query("SET SESSION sql_mode = DEFAULT")
                .execute(&mut *conn)
                .await
                .unwrap();
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Deterministic layouts
// ---------------------------------------------------------------------------------------------

/// `Rec` rows whose every value is plain (NULLs, zeros, times without microseconds, short texts).
fn plain_rec(k: &str) -> Rec {
    let day = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    Rec {
        id: 0,
        k: k.into(),
        small: 0,
        int: 0,
        big: 0,
        float: 0.0,
        double: 0.0,
        flag: false,
        text: String::new(),
        short: String::new(),
        o_text: None,
        bytes: Vec::new(),
        o_bytes: None,
        dec: Decimal::ZERO,
        o_dec: None,
        date: day,
        time: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
        dt: day.and_hms_opt(0, 0, 0).unwrap(),
        ts: day.and_hms_opt(0, 0, 0).unwrap().and_utc(),
        o_dt: None,
        o_time: None,
        uuid: Uuid::nil(),
        json: json!(null),
        o_small: None,
        o_int: None,
        o_double: None,
        o_float: None,
    }
}

/// `Rec` rows whose every value is at an extreme: long texts, many digits, microseconds.
fn extreme_rec(k: &str, d: Dialect, flip: bool) -> Rec {
    let day = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
    let time = NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap();
    let mut text = format!("' UNION ALL SELECT ?, ? -- \\ 😀 {}", "é".repeat(16_000));
    if d != Dialect::Postgres {
        text.push('\0');
    }
    assert!(text.chars().count() <= MAX_TEXT_CHARS);
    Rec {
        id: 0,
        k: k.into(),
        small: if flip { i16::MIN } else { i16::MAX },
        int: if flip { i32::MIN } else { i32::MAX },
        big: if flip { i64::MIN } else { i64::MAX },
        float: if flip { 1e-45 } else { f32::MAX },
        double: if flip { 5e-324 } else { 0.1 + 0.2 },
        flag: true,
        text: text.clone(),
        short: "😀".repeat(17),
        o_text: Some(text),
        bytes: (0..=255).collect(),
        o_bytes: Some(vec![0xff, 0, 0x27, 0x5c]),
        dec: if flip {
            "-0.0000000000000000000000000001".parse().unwrap()
        } else {
            Decimal::MAX
        },
        o_dec: Some("1234567890123456789.012345678".parse().unwrap()),
        date: day,
        time,
        dt: day.and_time(time),
        ts: day.and_time(time).and_utc(),
        o_dt: Some(
            NaiveDate::from_ymd_opt(1000, 1, 1)
                .unwrap()
                .and_hms_micro_opt(0, 0, 0, 1)
                .unwrap(),
        ),
        o_time: Some(NaiveTime::from_hms_micro_opt(0, 0, 0, 1).unwrap()),
        uuid: Uuid::max(),
        json: json!({"q": "' UNION ALL SELECT 1 -- ?", "n": [1e300, -1, null]}),
        o_small: Some(i16::MIN),
        o_int: Some(i32::MIN),
        o_double: Some(if flip { -1e300 } else { f64::MAX }),
        o_float: Some(f32::MIN_POSITIVE),
    }
}

/// One chunk of stored rows whose first rows hold only plain values and NULLs and whose last
/// holds extremes in every column, and the reverse; every field listed; then the same input again
/// (all unchanged), and back to plain. Each layout through counts only and the per-row report.
async fn plain_rows_then_extremes_in_one_chunk<DB: Probe>(db: TestDb<DB>) {
    Schema::new().model::<Rec>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let keys: Vec<String> = ["a", "A", "a ", "b", "é"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let plain: Vec<Rec> = keys.iter().map(|k| plain_rec(k)).collect();
    let mut one_extreme = plain.clone();
    one_extreme[4] = extreme_rec(&keys[4], d, false);
    let mut first_extreme = plain.clone();
    first_extreme[0] = extreme_rec(&keys[0], d, true);
    let mut both = plain.clone();
    both[1] = extreme_rec(&keys[1], d, false);
    both[3] = extreme_rec(&keys[3], d, true);
    let step = |rows: &Vec<Rec>, counts_only: bool| Import {
        rows: rows.clone(),
        fields: Rec::listable(),
        batch: 1000,
        counts_only,
        in_tx: false,
        each: false,
        guard: None,
        incs: Vec::new(),
    };
    let mut imports = Vec::new();
    for counts_only in [true, false] {
        for layout in [&one_extreme, &first_extreme, &both] {
            imports.push(step(layout, counts_only));
            imports.push(step(layout, !counts_only));
            imports.push(step(&plain, counts_only));
        }
    }
    for log in [false, true] {
        let case = Case {
            seeds: plain.clone(),
            imports: imports.clone(),
            log,
        };
        if let Err(e) = check(&db, &case, &mut Seen::default()).await {
            panic!("{d} (update log {log}): {e}");
        }
    }
}

/// A chunk of 400 stored rows of every type, mixed unchanged and changed, long values after short
/// ones, then 400 more with half new keys, all fields listed or a few; counts only and per row.
async fn big_chunks_match_the_model<DB: Probe>(db: TestDb<DB>) {
    Schema::new().model::<Rec>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let mut rng = Rng(0xad0_0010);
    let bases = rec_keys(d);
    let make = |rng: &mut Rng, n: usize| {
        let mut r = Rec::make(rng, 0, d);
        let base: String = bases[n % bases.len()].chars().take(70).collect();
        r.k = format!("{base}#{n}");
        // At most a few KiB a row: a chunk stays far below MariaDB's packet limit.
        for t in [&mut r.text] {
            if t.len() > 4000 {
                t.truncate(t.char_indices().nth(1000).map_or(t.len(), |(i, _)| i));
            }
        }
        if let Some(t) = &mut r.o_text
            && t.len() > 4000
        {
            t.truncate(t.char_indices().nth(1000).map_or(t.len(), |(i, _)| i));
        }
        r.bytes.truncate(3000);
        r
    };
    let seeds: Vec<Rec> = (0..400).map(|n| make(&mut rng, 2 * n)).collect();
    let mut first = Vec::new();
    for (i, seed) in seeds.iter().enumerate() {
        let fresh = make(&mut rng, 2 * i);
        first.push(match i % 3 {
            0 => seed.clone(),
            1 => seed.mix(&mut rng, &fresh),
            _ => fresh,
        });
    }
    let second: Vec<Rec> = (0..400).map(|n| make(&mut rng, n + 200)).collect();
    let few = vec![
        RecField::Text,
        RecField::ODec,
        RecField::OTime,
        RecField::Json,
    ];
    let mut imports = Vec::new();
    for (rows, fields, counts_only) in [
        (&first, Rec::listable(), true),
        (&first, Rec::listable(), false),
        (&second, few.clone(), false),
        (&second, Rec::listable(), true),
        (&first, few, true),
    ] {
        imports.push(Import {
            rows: rows.clone(),
            fields,
            batch: 1000,
            counts_only,
            in_tx: false,
            each: true,
            guard: None,
            incs: Vec::new(),
        });
    }
    let case = Case {
        seeds,
        imports,
        log: true,
    };
    let mut seen = Seen::default();
    if let Err(e) = check(&db, &case, &mut seen).await {
        panic!("{d}: {e}");
    }
    assert!(seen.updated > 300 && seen.unchanged > 100, "{d}: {seen:?}");
}

/// With an increment or a guard, an input that repeats a key is refused, naming the row, also
/// when the repeat is in a later chunk, and nothing of the call is kept (the earlier chunk's
/// writes and inserts included).
async fn repeats_with_options_are_refused_across_chunks<DB: Probe>(db: TestDb<DB>) {
    Schema::new()
        .model::<Counter>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    BulkInsert::<Counter>::new()
        .run(&db.pool, vec![counter("ok"), counter("edge")])
        .await
        .unwrap();
    let before = counters(&db.pool).await;
    for (option, counts_only) in [(0, true), (1, false), (2, true)] {
        let mut rows = vec![counter("ok"), counter("z"), counter("edge"), counter("ok2")];
        for r in &mut rows {
            r.hits = 1;
            r.ver = Some(9);
            r.note = "changed".into();
        }
        // Input row 4 repeats row 0's key, in the third chunk of two rows.
        let mut again = rows[0].clone();
        again.note = "again".into();
        rows.push(again);
        let mut bulk = BulkInsert::<Counter>::new().batch_size(2);
        if counts_only {
            bulk = bulk.counts_only();
        }
        let bulk = bulk.update_conflicts::<CounterByK>(&[CounterField::Note]);
        let bulk = match option {
            0 => bulk.increment(Counter::FIELDS.hits),
            1 => bulk.only_if_newer(Counter::FIELDS.ver),
            _ => bulk
                .only_if_not_older(Counter::FIELDS.at)
                .increment(Counter::FIELDS.total),
        };
        let error = bulk.run(&db.pool, rows).await.expect_err("a repeated key");
        let named = match &error {
            Error::InvalidArgument { reason, .. } => reason.contains('4'),
            Error::Bulk { source, row, .. } => {
                matches!(**source, Error::InvalidArgument { .. })
                    && (*row == Some(4) || source.to_string().contains('4'))
            }
            _ => false,
        };
        assert!(named, "{d}, option {option}: {}", error_chain(&error));
        assert_eq!(counters(&db.pool).await, before, "{d}, option {option}");
    }
}

/// Listed values that collide with another stored row on another unique constraint: an error
/// that names that constraint, with exactly the colliding values when it says it knows them,
/// and the colliding input row when it names one (here another input row of the same chunk
/// holds a value equal to the colliding one in its first 64 bytes, where MariaDB cuts its
/// message); nothing written. And two stored rows swapping their values: an error with nothing
/// written, or both swapped.
async fn another_unique_constraint_in_the_update<DB: Probe>(db: TestDb<DB>) {
    Schema::new()
        .model::<Swap>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    let swap = |k: &str, u: &str, n: i64| Swap {
        id: 0,
        k: k.into(),
        u: u.into(),
        n,
    };
    let tail_one = format!("{}-tail-one", "p".repeat(60));
    let tail_two = format!("{}-tail-two", "p".repeat(60));
    let emoji = "😀".repeat(17);
    for (taken, fresh) in [
        (tail_one.as_str(), tail_two.as_str()),
        (emoji.as_str(), "😀😀"),
        ("x' for key 'y", "x"),
        ("a-b", "a"),
    ] {
        for counts_only in [true, false] {
            DB::run(&db.pool, "DELETE FROM adv_join_swap").await;
            BulkInsert::<Swap>::new()
                .run(
                    &db.pool,
                    vec![swap("a", "ua", 1), swap("b", taken, 2), swap("c", "uc", 3)],
                )
                .await
                .unwrap();
            let read = async || {
                let mut out = Vec::new();
                for k in ["a", "b", "c", "new"] {
                    out.push(Swap::by_k(k).get(&db.pool).await.unwrap());
                }
                out
            };
            let before = read().await;
            // Row 0 takes a fresh value, row 1 is new, row 2 takes `b`'s value.
            let rows = vec![
                swap("a", fresh, 1),
                swap("new", "un", 0),
                swap("c", taken, 3),
            ];
            let mut bulk = BulkInsert::<Swap>::new();
            if counts_only {
                bulk = bulk.counts_only();
            }
            let error = bulk
                .update_conflicts::<SwapByK>(&[SwapField::U, SwapField::N])
                .run(&db.pool, rows)
                .await
                .expect_err("a duplicate u");
            let what = format!("{d}, {taken:?}, counts_only {counts_only}");
            let violation = error
                .unique_violation()
                .unwrap_or_else(|| panic!("{what}: {}", error_chain(&error)));
            assert!(violation.is::<SwapByU>(), "{what}: {violation}");
            if let model_runtime::ViolationValues::Known(values) = violation.values() {
                assert_eq!(values, &[taken.to_string()], "{what}");
            }
            if let Error::Bulk { row: Some(row), .. } = &error {
                assert_eq!(*row, 2, "{what}: {error}");
            }
            assert_eq!(read().await, before, "{what}: nothing written");
        }
    }
    // Swapping.
    DB::run(&db.pool, "DELETE FROM adv_join_swap").await;
    BulkInsert::<Swap>::new()
        .run(&db.pool, vec![swap("a", "one", 1), swap("b", "two", 2)])
        .await
        .unwrap();
    let result = BulkInsert::<Swap>::new()
        .update_conflicts::<SwapByK>(&[SwapField::U])
        .run(&db.pool, vec![swap("a", "two", 1), swap("b", "one", 2)])
        .await;
    let a = Swap::by_k("a").get(&db.pool).await.unwrap().unwrap();
    let b = Swap::by_k("b").get(&db.pool).await.unwrap().unwrap();
    match result {
        Ok(report) => {
            assert_eq!(report.updated, 2, "{d}");
            assert_eq!((a.u.as_str(), b.u.as_str()), ("two", "one"), "{d}: swapped");
        }
        Err(error) => {
            assert!(
                error.unique_violation().is_some(),
                "{d}: {}",
                error_chain(&error)
            );
            assert_eq!(
                (a.u.as_str(), b.u.as_str()),
                ("one", "two"),
                "{d}: nothing written"
            );
        }
    }
}

fn doc(k: &str, body: &str) -> Doc {
    Doc {
        id: 0,
        k: k.into(),
        body: body.into(),
        blob: Vec::new(),
        uuid: Uuid::nil(),
        json: json!("j"),
    }
}

/// Two stored rows updated in one chunk with a text of 16,384 characters, a binary value (bytes,
/// a UUID) listed before it. Found failing on MariaDB: the call succeeds and reports both rows
/// updated, and the text is stored empty; a JSON text of that length is emptied too, and then
/// fails the column's `json_valid` check (a refused call where nothing was wrong with the input).
/// 16,383 characters are kept, so is one row alone. (With the text listed before the binary value
/// the server crashes: `mysql_long_text_before_a_binary_value_in_one_update`, ignored.)
async fn long_text_after_a_binary_value_in_one_update<DB: Probe>(db: TestDb<DB>) {
    Schema::new().model::<Doc>().create(&db.pool).await.unwrap();
    let d = DB::DIALECT;
    let long = "x".repeat(16_384);
    let mut failures = Vec::new();
    type Change = fn(&mut Doc, &str);
    let cases: Vec<(&str, Vec<DocField>, Change)> = vec![
        (
            "[Blob, Body]",
            vec![DocField::Blob, DocField::Body],
            |r, t| {
                r.body = t.into();
                r.blob = vec![1];
            },
        ),
        (
            "[Uuid, Body]",
            vec![DocField::Uuid, DocField::Body],
            |r, t| {
                r.body = t.into();
                r.uuid = Uuid::max();
            },
        ),
        (
            "[Blob, Json]",
            vec![DocField::Blob, DocField::Json],
            |r, t| {
                r.json = json!(t);
                r.blob = vec![1];
            },
        ),
    ];
    for (what, fields, change) in cases {
        for text in [long.as_str(), &long[1..]] {
            DB::run(&db.pool, "DELETE FROM adv_join_doc").await;
            BulkInsert::<Doc>::new()
                .run(&db.pool, vec![doc("a", ""), doc("b", "")])
                .await
                .unwrap();
            let rows: Vec<Doc> = ["a", "b"]
                .iter()
                .map(|k| {
                    let mut r = doc(k, "");
                    change(&mut r, text);
                    r
                })
                .collect();
            let result = BulkInsert::<Doc>::new()
                .counts_only()
                .update_conflicts::<DocByK>(&fields)
                .run(&db.pool, rows.clone())
                .await;
            let what = format!("{what} with a text of {} characters", text.len());
            match result {
                Err(e) => failures.push(format!("{what}: {}", error_chain(&e))),
                Ok(report) => {
                    assert_eq!(report.updated, 2, "{d}: {what}");
                    for want in &rows {
                        let got = Doc::by_k(want.k.clone())
                            .get(&db.pool)
                            .await
                            .unwrap()
                            .unwrap();
                        if got
                            != (Doc {
                                id: got.id,
                                ..want.clone()
                            })
                        {
                            failures.push(format!(
                                "{what}: row {:?} stored with a body of {} characters, a json \
                                 of {} bytes, blob {:?}, uuid {}",
                                want.k,
                                got.body.chars().count(),
                                got.json.to_string().len(),
                                got.blob,
                                got.uuid
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{d}:\n{}", failures.join("\n"));
}

/// As `long_text_after_a_binary_value_in_one_update`, with the text listed first: MariaDB 10.11.19
/// died of signal 11 (`ha_write_tmp_row` under `mysql_multi_update`) on the join update with a
/// `UNION ALL` derived table that bulk update mode used for a while (reverted); the `CASE` update
/// passes. It guards against a statement that takes the server down: if it fails, every MariaDB
/// test after it fails too. (Run once, against a private server, before it was enabled here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    skip_mysql,
    ignore = "MariaDB/MySQL: set TEST_MYSQL_URL (e.g. mysql://root@127.0.0.1:3306/test) to run"
)]
async fn mysql_long_text_before_a_binary_value_in_one_update() {
    model_integration::run_scenario::<sqlx::MySql, _>(
        "adv_update_join::mysql_long_text_before_a_binary_value_in_one_update",
        model_integration::Options::default(),
        async |db: TestDb<sqlx::MySql>| {
            Schema::new().model::<Doc>().create(&db.pool).await.unwrap();
            BulkInsert::<Doc>::new()
                .run(&db.pool, vec![doc("a", ""), doc("b", "")])
                .await
                .unwrap();
            let long = "x".repeat(16_384);
            let report = BulkInsert::<Doc>::new()
                .counts_only()
                .update_conflicts::<DocByK>(&[DocField::Body, DocField::Blob])
                .run(&db.pool, vec![doc("a", &long), doc("b", &long)])
                .await
                .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
            assert_eq!(report.updated, 2);
            for k in ["a", "b"] {
                let got = Doc::by_k(k).get(&db.pool).await.unwrap().unwrap();
                assert_eq!(got.body, long, "{k}");
            }
        },
    )
    .await;
}

backend_tests!(
    long_text_after_a_binary_value_in_one_update,
    plain_rows_then_extremes_in_one_chunk,
    big_chunks_match_the_model,
    repeats_with_options_are_refused_across_chunks,
    another_unique_constraint_in_the_update,
    overflowing_increments_write_nothing,
    f64_increment_overflow_is_an_error,
    decimal_and_f32_increments_past_their_range,
    default_chunk_of_stored_wide_rows,
    every_type_matches_the_model,
    text_primary_key_matches_the_model,
    text_primary_key_as_the_key_matches_the_model,
    explicit_integer_key_matches_the_model,
    aliases_as_names_match_the_model,
    folded_key_matches_the_model,
    nulls_not_distinct_key_matches_the_model,
    increments_and_guards_match_the_model,
    wide_rows_stay_under_the_bind_limit,
);

/// `decimal_increment_past_decimal_max` per backend: it fails on PostgreSQL and MariaDB, whose
/// columns hold a sum no `Decimal` holds; not fixed yet (issue 15's note), so ignored there with the
/// reason, and run on SQLite, where it passes.
mod decimal_past_max {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        model_integration::run_scenario::<sqlx::Sqlite, _>(
            "adv_update_join::decimal_past_max::sqlite",
            model_integration::Options::default(),
            decimal_increment_past_decimal_max::<sqlx::Sqlite>,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        model_integration::run_scenario::<sqlx::Postgres, _>(
            "adv_update_join::decimal_past_max::postgres",
            model_integration::Options::default(),
            decimal_increment_past_decimal_max::<sqlx::Postgres>,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql() {
        model_integration::run_scenario::<sqlx::MySql, _>(
            "adv_update_join::decimal_past_max::mysql",
            model_integration::Options::default(),
            decimal_increment_past_decimal_max::<sqlx::MySql>,
        )
        .await;
    }
}
