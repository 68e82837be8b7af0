//! Adversarial tests of two recent changes:
//!
//! 1. lookups by a unique key as methods of `model_runtime::Key` (`Model::by_…(values…)` then
//!    `.get`, `.exists`, `.get_for_update`), through every kind of connection, on composite,
//!    newtype, nullable, case-insensitive and keyword-named keys, with awkward values;
//! 2. a model's `sqlx::FromRow`, which finds each column by name once per row and reads by position
//!    while the row's columns are in the model's order: many column orders (fixed and seeded random
//!    permutations with decoy columns of the same types), duplicates, missing and renamed columns,
//!    a one-column and a 24-column model, NULLs and awkward text, checked against the values written.

use chrono::{DateTime, Utc};
use model_integration::{Options, Rng, TestBackend, TestDb, backend_tests};
use model_runtime::{Column, Dialect, Key, Model, Schema};
use rust_decimal::Decimal;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

#[derive(Column, Debug, Clone, PartialEq)]
struct Code(String);

#[derive(Column, Debug, Clone, Copy, PartialEq)]
struct StoreId(i64);

#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(text)]
enum Status {
    Active,
    OnHold,
}

/// Several fields of one type (three texts, three integers) so that a column read from the wrong
/// position still decodes, and only a value comparison can tell.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_mixed")]
struct Mixed {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 90)]
    a: String,
    #[model(max_length = 90)]
    b: String,
    c: Option<String>,
    n1: i64,
    n2: i64,
    n3: Option<i64>,
    small: i32,
    flag: bool,
    ratio: f64,
    #[model(column = "renamed_code", max_length = 90)]
    code: Code,
    status: Option<Status>,
}

const MIXED_COLUMNS: [&str; 12] = [
    "id",
    "a",
    "b",
    "c",
    "n1",
    "n2",
    "n3",
    "small",
    "flag",
    "ratio",
    "renamed_code",
    "status",
];

/// 24 columns, all `i64`: any misplaced read decodes, and is a wrong value.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_wide")]
struct Wide {
    #[model(primary_key)]
    id: i64,
    c01: i64,
    c02: i64,
    c03: i64,
    c04: i64,
    c05: i64,
    c06: i64,
    c07: i64,
    c08: i64,
    c09: i64,
    c10: i64,
    c11: i64,
    c12: i64,
    c13: i64,
    c14: i64,
    c15: i64,
    c16: i64,
    c17: i64,
    c18: i64,
    c19: i64,
    c20: i64,
    c21: i64,
    c22: i64,
    c23: i64,
}

fn wide(id: i64) -> Wide {
    let v = |k: i64| id * 1000 + k;
    Wide {
        id,
        c01: v(1),
        c02: v(2),
        c03: v(3),
        c04: v(4),
        c05: v(5),
        c06: v(6),
        c07: v(7),
        c08: v(8),
        c09: v(9),
        c10: v(10),
        c11: v(11),
        c12: v(12),
        c13: v(13),
        c14: v(14),
        c15: v(15),
        c16: v(16),
        c17: v(17),
        c18: v(18),
        c19: v(19),
        c20: v(20),
        c21: v(21),
        c22: v(22),
        c23: v(23),
    }
}

fn wide_columns() -> Vec<String> {
    std::iter::once("id".to_owned())
        .chain((1..=23).map(|k| format!("c{k:02}")))
        .collect()
}

/// One column: a text primary key.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_solo")]
struct Solo {
    #[model(primary_key, max_length = 80)]
    code: String,
}

/// A composite text key declared in the reverse of the fields' order, and a composite integer key
/// likewise, so that swapped arguments find another stored row.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_pair")]
#[unique_together(second, first)]
#[unique_together(m, n)]
struct Pair {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[model(max_length = 30)]
    first: String,
    #[model(max_length = 30)]
    second: String,
    n: i64,
    m: i64,
}

/// Keys of newtype columns, alone and together, one of them renamed.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_items")]
#[unique_together(store, sku)]
struct Item {
    #[model(primary_key, auto_increment)]
    id: StoreId,
    #[unique]
    #[model(max_length = 40, column = "item_sku")]
    sku: Code,
    store: StoreId,
    qty: i64,
}

/// Nullable unique columns: a plain one (a NULL identifies no row) and a `nulls_not_distinct` one
/// (a NULL identifies the row holding it).
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_opt")]
struct Opt {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    tag: Option<String>,
    #[unique(nulls_not_distinct)]
    slot: Option<i64>,
    note: String,
}

/// A case-insensitive key beside an exact one.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_ci")]
struct Member {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(case_insensitive)]
    #[model(max_length = 60)]
    email: String,
    #[unique]
    #[model(max_length = 60)]
    handle: String,
}

/// Fields and a table named by SQL keywords.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "order")]
struct Kw {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    order: i64,
    #[unique]
    #[model(max_length = 20)]
    key: String,
    group: Option<i64>,
}

/// The primary key is not the first field.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_mid")]
struct Mid {
    #[model(max_length = 20)]
    name: String,
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    label: String,
    weight: Option<i64>,
}

/// A row to lock and count on.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_counter")]
struct Counter {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    name: String,
    value: i64,
}

/// Keys of the other column types: decimals (free and sized), uuid, timestamp, bytes, a small
/// integer and a text enum.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_typed")]
struct Typed {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    amount: Decimal,
    #[unique]
    #[model(precision = 10, scale = 2)]
    price: Decimal,
    #[unique]
    uid: Uuid,
    #[unique]
    at: DateTime<Utc>,
    #[unique]
    small: i16,
    #[unique]
    #[model(max_length = 10)]
    status: Status,
}

/// A bytes key (not on MySQL, which cannot enforce uniqueness of an unbounded BLOB).
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_blob")]
struct Blob {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    bytes: Vec<u8>,
}

/// A partial key: unique among the rows not deleted.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "adv_soft")]
struct Soft {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(condition(deleted == None))]
    #[model(max_length = 40)]
    email: String,
    deleted: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A quoted identifier in the backend's dialect.
fn q<DB: TestBackend>(name: &str) -> String {
    if DB::DIALECT == Dialect::MySql {
        format!("`{name}`")
    } else {
        format!("\"{name}\"")
    }
}

/// Awkward texts; NUL only where the backend stores it (PostgreSQL text cannot hold one).
fn awkward<DB: TestBackend>() -> Vec<String> {
    let mut texts: Vec<String> = vec![
        "plain".into(),
        "O'Reilly".into(),
        "\"double\" 'single'".into(),
        "back\\slash\\".into(),
        "percent%_under".into(),
        "🦀 crab 🦀".into(),
        "ünïcödé Ä ß".into(),
        "tab\tnew\nline\r".into(),
        " lead".into(),
        "trail ".into(),
        String::new(),
        "semi;colon -- comment /* x */".into(),
        "x".repeat(70),
        "é".repeat(40),
        "\u{200B}zero width".into(),
    ];
    if DB::DIALECT != Dialect::Postgres {
        texts.push("nul\0mid".into());
    }
    texts
}

async fn query_models<DB, M>(db: &TestDb<DB>, sql: &str) -> Result<Vec<M>, sqlx::Error>
where
    DB: TestBackend,
    M: Model + for<'r> sqlx::FromRow<'r, DB::Row>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    sqlx::query_as::<DB, M>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&db.pool)
        .await
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

// ---------------------------------------------------------------------------------------------
// FromRow
// ---------------------------------------------------------------------------------------------

async fn store_mixed<DB: TestBackend>(db: &TestDb<DB>, rng: &mut Rng) -> Vec<Mixed> {
    let texts = awkward::<DB>();
    let pick = |rng: &mut Rng| texts[rng.below(texts.len() as u64) as usize].clone();
    let ints = [i64::MIN, -1, 0, 1, i64::MAX, 1 << 40, -(1 << 33) + 7];
    let smalls = [i32::MIN, -1, 0, 1, i32::MAX, 65_536];
    let mut stored = Vec::new();
    for i in 0..9 {
        // The unique `a` is made distinct by its prefix; every other value may repeat.
        let mut a = pick(rng);
        a.truncate(a.char_indices().nth(80).map_or(a.len(), |(at, _)| at));
        let row = Mixed {
            id: 0,
            a: format!("{i}:{a}"),
            b: pick(rng),
            c: match i % 3 {
                0 => None,
                1 => Some(pick(rng).repeat(5)),
                _ => Some(pick(rng)),
            },
            n1: ints[rng.below(ints.len() as u64) as usize],
            n2: ints[rng.below(ints.len() as u64) as usize] ^ i,
            n3: (i % 2 == 0).then(|| ints[rng.below(ints.len() as u64) as usize]),
            small: smalls[rng.below(smalls.len() as u64) as usize],
            flag: rng.below(2) == 1,
            ratio: (rng.below(4000) as f64 - 2000.0) / 16.0,
            code: Code(pick(rng)),
            status: match i % 3 {
                0 => None,
                1 => Some(Status::Active),
                _ => Some(Status::OnHold),
            },
        };
        let inserted = row.insert(&db.pool).await.unwrap_or_else(|e| {
            panic!("{}: insert {row:?}: {e:?}", DB::DIALECT);
        });
        // The differential reference is what was written, not what the library read back.
        let expected = Mixed {
            id: inserted.id,
            ..row
        };
        assert_eq!(inserted, expected, "{}: insert returned", DB::DIALECT);
        stored.push(expected);
    }
    stored
}

/// Fixed column orders of a model with same-typed neighbours: in order, with extra columns before,
/// between and after, reversed, rotated, only the first moved, only the last moved, adjacent
/// swaps of same-typed columns.
async fn fromrow_fixed_orders<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    Schema::new()
        .model::<Mixed>()
        .create(&db.pool)
        .await
        .unwrap();
    let mut rng = Rng(0x5eed_0001);
    let stored = store_mixed(&db, &mut rng).await;
    let col = |name: &str| format!("t.{}", q::<DB>(name));
    let cols: Vec<String> = MIXED_COLUMNS.iter().map(|c| col(c)).collect();
    let table = q::<DB>("adv_mixed");
    let select = |list: Vec<String>| {
        format!(
            "SELECT {} FROM {table} t ORDER BY t.{}",
            list.join(", "),
            q::<DB>("id")
        )
    };
    let decoy_text = format!("t.{} AS x_text", q::<DB>("b"));
    let decoy_int = format!("t.{} AS x_int", q::<DB>("n2"));

    let mut orders: Vec<(&str, Vec<String>)> = Vec::new();
    orders.push(("in order", cols.clone()));
    orders.push(("star", vec!["t.*".into()]));
    orders.push((
        "star then extras",
        vec!["t.*".into(), decoy_text.clone(), decoy_int.clone()],
    ));
    orders.push(("extras before", {
        let mut v = vec![decoy_int.clone(), decoy_text.clone()];
        v.extend(cols.iter().cloned());
        v
    }));
    orders.push(("one extra before", {
        let mut v = vec![decoy_text.clone()];
        v.extend(cols.iter().cloned());
        v
    }));
    for at in [1, 2, 5, 6, 11] {
        let mut v = cols.clone();
        v.insert(at, decoy_text.clone());
        v.insert(at, decoy_int.clone());
        orders.push(("extras between", v));
    }
    orders.push(("extras after", {
        let mut v = cols.clone();
        v.push(decoy_int.clone());
        v.push(decoy_text.clone());
        v
    }));
    orders.push(("reversed", cols.iter().rev().cloned().collect()));
    for by in [1, 3, 6, 11] {
        let mut v = cols.clone();
        v.rotate_left(by);
        orders.push(("rotated", v));
    }
    orders.push(("first moved to the end", {
        let mut v = cols.clone();
        let first = v.remove(0);
        v.push(first);
        v
    }));
    orders.push(("first moved to the middle", {
        let mut v = cols.clone();
        let first = v.remove(0);
        v.insert(5, first);
        v
    }));
    orders.push(("last moved to the front", {
        let mut v = cols.clone();
        let last = v.pop().unwrap();
        v.insert(0, last);
        v
    }));
    orders.push(("last moved to the middle", {
        let mut v = cols.clone();
        let last = v.pop().unwrap();
        v.insert(4, last);
        v
    }));
    // Same-typed neighbours swapped: a (text) and b (text), n1 and n2 (integers).
    orders.push(("a and b swapped", {
        let mut v = cols.clone();
        v.swap(1, 2);
        v
    }));
    orders.push(("n1 and n2 swapped", {
        let mut v = cols.clone();
        v.swap(4, 5);
        v
    }));
    orders.push(("n2 and n1 swapped, decoy in n2's place too", {
        let mut v = cols.clone();
        v.swap(4, 5);
        v.insert(5, decoy_int.clone());
        v
    }));
    // The decoys named like the columns they stand next to, in another case (not the name).
    orders.push(("case-different decoys", {
        let mut v = vec![format!("t.{} AS {}", q::<DB>("b"), q::<DB>("A"))];
        v.extend(cols.iter().cloned());
        v.push(format!("t.{} AS {}", q::<DB>("n2"), q::<DB>("N1")));
        v
    }));
    // Two extra columns of one name that the model does not read are not a conflict.
    orders.push(("duplicate extra names", {
        let mut v = cols.clone();
        v.insert(3, "1 AS dup".into());
        v.push("2 AS dup".into());
        v
    }));

    for (what, list) in orders {
        let sql = select(list);
        let read: Vec<Mixed> = query_models(&db, &sql)
            .await
            .unwrap_or_else(|e| panic!("{}: {what}: {sql}: {e:?}", DB::DIALECT));
        assert_eq!(read, stored, "{}: {what}: {sql}", DB::DIALECT);
    }

    // A single row through fetch_one and fetch_optional decodes the same.
    let sql = format!(
        "SELECT {} FROM {table} t WHERE t.{} = {}",
        cols.iter().rev().cloned().collect::<Vec<_>>().join(", "),
        q::<DB>("id"),
        stored[4].id
    );
    let one = sqlx::query_as::<DB, Mixed>(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(one, stored[4], "{}: {sql}", DB::DIALECT);
}

/// Seeded random permutations of the select list with decoy columns of the model's own types,
/// compared with the values written.
async fn fromrow_random_permutations<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    Schema::new()
        .model::<Mixed>()
        .model::<Wide>()
        .create(&db.pool)
        .await
        .unwrap();
    let mut rng = Rng(0xadc0_ffee_1234_5678);
    let stored = store_mixed(&db, &mut rng).await;
    let mut wides = Vec::new();
    for id in [1_i64, 2, 3, 40] {
        wides.push(wide(id).insert(&db.pool).await.unwrap());
    }
    assert_eq!(wides, [wide(1), wide(2), wide(3), wide(40)]);

    // Decoys: other columns of the same types under names the model does not read.
    let decoys_mixed = |k: usize| -> String {
        let source = [
            "b",
            "a",
            "c",
            "n1",
            "n2",
            "n3",
            "small",
            "renamed_code",
            "ratio",
        ][k % 9];
        format!(
            "t.{} AS {}",
            q::<DB>(source),
            q::<DB>(&format!("decoy_{k}"))
        )
    };
    let decoys_wide = |k: usize| -> String {
        let source = format!("c{:02}", k % 23 + 1);
        format!(
            "t.{} AS {}",
            q::<DB>(&source),
            q::<DB>(&format!("decoy_{k}"))
        )
    };

    for round in 0..120 {
        let seed = rng.next();
        let mut local = Rng(seed | 1);
        // Mixed.
        let mut list: Vec<String> = MIXED_COLUMNS
            .iter()
            .map(|c| format!("t.{}", q::<DB>(c)))
            .collect();
        match local.below(4) {
            0 => {} // in order: the by-position path, perhaps with extras
            1 => {
                // in order up to a point, then shuffled
                let from = local.below(list.len() as u64) as usize;
                shuffle(&mut local, &mut list[from..]);
            }
            _ => shuffle(&mut local, &mut list),
        }
        for k in 0..local.below(4) as usize {
            let at = local.below(list.len() as u64 + 1) as usize;
            list.insert(at, decoys_mixed(k + local.below(9) as usize * 10));
        }
        let sql = format!(
            "SELECT {} FROM {} t ORDER BY t.{}",
            list.join(", "),
            q::<DB>("adv_mixed"),
            q::<DB>("id")
        );
        let read: Vec<Mixed> = query_models(&db, &sql).await.unwrap_or_else(|e| {
            panic!(
                "{}: round {round} seed {seed:#x}: {sql}: {e:?}",
                DB::DIALECT
            )
        });
        assert_eq!(
            read,
            stored,
            "{}: round {round} seed {seed:#x}: {sql}",
            DB::DIALECT
        );

        // Wide.
        let mut list: Vec<String> = wide_columns()
            .iter()
            .map(|c| format!("t.{}", q::<DB>(c)))
            .collect();
        match local.below(5) {
            0 => {}
            1 => {
                let from = local.below(list.len() as u64) as usize;
                shuffle(&mut local, &mut list[from..]);
            }
            2 => {
                // one column moved elsewhere
                let from = local.below(list.len() as u64) as usize;
                let moved = list.remove(from);
                let to = local.below(list.len() as u64 + 1) as usize;
                list.insert(to, moved);
            }
            _ => shuffle(&mut local, &mut list),
        }
        for k in 0..local.below(5) as usize {
            let at = local.below(list.len() as u64 + 1) as usize;
            list.insert(at, decoys_wide(k + local.below(23) as usize * 10));
        }
        let sql = format!(
            "SELECT {} FROM {} t ORDER BY t.{}",
            list.join(", "),
            q::<DB>("adv_wide"),
            q::<DB>("id")
        );
        let read: Vec<Wide> = query_models(&db, &sql).await.unwrap_or_else(|e| {
            panic!(
                "{}: round {round} seed {seed:#x}: {sql}: {e:?}",
                DB::DIALECT
            )
        });
        assert_eq!(
            read,
            wides,
            "{}: round {round} seed {seed:#x}: {sql}",
            DB::DIALECT
        );
    }
}

/// Errors: a duplicate column name (in order, out of order, duplicated later in the row), a missing
/// column (the first, a middle one, the last, a renamed one under its field name), and a 1-column
/// and a 24-column model.
async fn fromrow_errors_and_shapes<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    Schema::new()
        .model::<Mixed>()
        .model::<Wide>()
        .model::<Solo>()
        .model::<Mid>()
        .create(&db.pool)
        .await
        .unwrap();
    let mut rng = Rng(0x0dd5_eed5);
    let stored = store_mixed(&db, &mut rng).await;
    let table = q::<DB>("adv_mixed");
    let cols: Vec<String> = MIXED_COLUMNS
        .iter()
        .map(|c| format!("t.{}", q::<DB>(c)))
        .collect();

    // A model column repeated: never a value from either copy, whichever way the row is laid out.
    let duplicated = [
        // in order, then the first column again at the end (the by-position path would not look)
        (format!("{}, t.{} ", cols.join(", "), q::<DB>("id")), "id"),
        (
            format!("{}, t.{} ", cols.join(", "), q::<DB>("status")),
            "status",
        ),
        (format!("t.{}, {}", q::<DB>("n1"), cols.join(", ")), "n1"),
        (
            format!(
                "{}, t.{} AS {}",
                cols.join(", "),
                q::<DB>("n2"),
                q::<DB>("n1")
            ),
            "n1",
        ),
        (
            format!(
                "{}, t.{} AS {}",
                cols.join(", "),
                q::<DB>("b"),
                q::<DB>("renamed_code")
            ),
            "renamed_code",
        ),
    ];
    for (list, name) in duplicated {
        let sql = format!("SELECT {list} FROM {table} t");
        let error = query_models::<DB, Mixed>(&db, &sql).await.unwrap_err();
        assert!(
            matches!(&error, sqlx::Error::ColumnDecode { index, .. } if *index == format!("{name:?}")),
            "{}: {sql}: {error:?}",
            DB::DIALECT
        );
        assert!(error.to_string().contains(name), "{}: {error}", DB::DIALECT);
    }
    // A join of the model's table with itself: every column twice.
    let sql = format!(
        "SELECT t.*, u.* FROM {table} t JOIN {table} u ON u.{id} = t.{id}",
        id = q::<DB>("id")
    );
    let error = query_models::<DB, Mixed>(&db, &sql).await.unwrap_err();
    assert!(
        matches!(&error, sqlx::Error::ColumnDecode { index, .. } if index == "\"id\""),
        "{}: {error:?}",
        DB::DIALECT
    );
    // The join read correctly once one side is selected.
    let sql = format!(
        "SELECT u.{b} AS other_b, t.* FROM {table} t JOIN {table} u ON u.{id} = t.{id} ORDER BY t.{id}",
        id = q::<DB>("id"),
        b = q::<DB>("b")
    );
    assert_eq!(query_models::<DB, Mixed>(&db, &sql).await.unwrap(), stored);

    // Missing columns: sqlx's ColumnNotFound, naming the column.
    for missing in ["id", "c", "n2", "status", "renamed_code"] {
        let list: Vec<String> = MIXED_COLUMNS
            .iter()
            .filter(|c| **c != missing)
            .map(|c| format!("t.{}", q::<DB>(c)))
            .collect();
        for list in [list.clone(), list.into_iter().rev().collect()] {
            let sql = format!("SELECT {} FROM {table} t", list.join(", "));
            let error = query_models::<DB, Mixed>(&db, &sql).await.unwrap_err();
            assert!(
                matches!(&error, sqlx::Error::ColumnNotFound(name) if name == missing),
                "{}: {sql}: {error:?}",
                DB::DIALECT
            );
        }
    }
    // The field name of a renamed column is not its column.
    let sql = format!(
        "SELECT t.*, t.{} AS {} FROM {table} t",
        q::<DB>("renamed_code"),
        q::<DB>("code")
    );
    let read = query_models::<DB, Mixed>(&db, &sql).await.unwrap();
    assert_eq!(read.len(), stored.len());
    let list: Vec<String> = MIXED_COLUMNS
        .iter()
        .map(|c| {
            if *c == "renamed_code" {
                format!("t.{} AS {}", q::<DB>(c), q::<DB>("code"))
            } else {
                format!("t.{}", q::<DB>(c))
            }
        })
        .collect();
    let sql = format!("SELECT {} FROM {table} t", list.join(", "));
    let error = query_models::<DB, Mixed>(&db, &sql).await.unwrap_err();
    assert!(
        matches!(&error, sqlx::Error::ColumnNotFound(name) if name == "renamed_code"),
        "{}: {error:?}",
        DB::DIALECT
    );
    // Empty result: no error, whatever the columns.
    let sql = format!("SELECT t.{} FROM {table} t WHERE 1 = 0", q::<DB>("id"));
    assert!(
        query_models::<DB, Mixed>(&db, &sql)
            .await
            .unwrap()
            .is_empty()
    );
    // A NULL in a NOT NULL field is an error naming that column, also when read by position.
    let list: Vec<String> = MIXED_COLUMNS
        .iter()
        .map(|c| {
            if *c == "n2" {
                format!("NULL AS {}", q::<DB>("n2"))
            } else {
                format!("t.{}", q::<DB>(c))
            }
        })
        .collect();
    let sql = format!("SELECT {} FROM {table} t", list.join(", "));
    let error = query_models::<DB, Mixed>(&db, &sql).await.unwrap_err();
    assert!(
        matches!(&error, sqlx::Error::ColumnDecode { index, .. } if index.contains("n2")),
        "{}: {sql}: {error:?}",
        DB::DIALECT
    );

    // One column.
    let texts = awkward::<DB>();
    let mut solos = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let mut code = format!("{i:02}{text}");
        code.truncate(code.char_indices().nth(80).map_or(code.len(), |(at, _)| at));
        solos.push(Solo { code }.insert(&db.pool).await.unwrap());
    }
    let solo = q::<DB>("adv_solo");
    let code = q::<DB>("code");
    // The order of the key's bytes differs between the backends' collations: compare as sets.
    let sorted = |mut v: Vec<Solo>| {
        v.sort_by(|x, y| x.code.cmp(&y.code));
        v
    };
    let expected = sorted(solos.clone());
    for list in [
        "*".to_owned(),
        code.clone(),
        format!("1 AS x, {code}"),
        format!("{code}, 1 AS x"),
        format!("{code} AS other, {code}"),
    ] {
        let sql = format!("SELECT {list} FROM {solo}");
        let read = query_models::<DB, Solo>(&db, &sql)
            .await
            .unwrap_or_else(|e| panic!("{}: {sql}: {e:?}", DB::DIALECT));
        assert_eq!(sorted(read), expected, "{}: {sql}", DB::DIALECT);
    }
    let sql = format!("SELECT {code}, {code} FROM {solo}");
    let error = query_models::<DB, Solo>(&db, &sql).await.unwrap_err();
    assert!(
        matches!(&error, sqlx::Error::ColumnDecode { index, .. } if index == "\"code\""),
        "{}: {error:?}",
        DB::DIALECT
    );
    let sql = format!("SELECT {code} AS other FROM {solo}");
    let error = query_models::<DB, Solo>(&db, &sql).await.unwrap_err();
    assert!(
        matches!(&error, sqlx::Error::ColumnNotFound(name) if name == "code"),
        "{}: {error:?}",
        DB::DIALECT
    );

    // 24 columns: fixed shapes.
    let wides: Vec<Wide> = vec![
        wide(7).insert(&db.pool).await.unwrap(),
        wide(8).insert(&db.pool).await.unwrap(),
    ];
    assert_eq!(wides, [wide(7), wide(8)]);
    let names = wide_columns();
    let quoted: Vec<String> = names.iter().map(|c| q::<DB>(c)).collect();
    let mut shapes: Vec<Vec<String>> = vec![quoted.clone(), quoted.iter().rev().cloned().collect()];
    for by in [1, 12, 23] {
        let mut v = quoted.clone();
        v.rotate_right(by);
        shapes.push(v);
    }
    let mut v = quoted.clone();
    v.swap(11, 12);
    shapes.push(v);
    let mut v = quoted.clone();
    v.swap(22, 23);
    shapes.push(v);
    for shape in shapes {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            shape.join(", "),
            q::<DB>("adv_wide"),
            q::<DB>("id")
        );
        assert_eq!(
            query_models::<DB, Wide>(&db, &sql).await.unwrap(),
            wides,
            "{}: {sql}",
            DB::DIALECT
        );
    }

    // The primary key not first among the fields.
    let mids = vec![
        Mid {
            name: "n1".into(),
            id: 0,
            label: "L1".into(),
            weight: None,
        }
        .insert(&db.pool)
        .await
        .unwrap(),
        Mid {
            name: "n2".into(),
            id: 0,
            label: "L2".into(),
            weight: Some(-4),
        }
        .insert(&db.pool)
        .await
        .unwrap(),
    ];
    assert_ne!(mids[0].id, mids[1].id);
    let mid = q::<DB>("adv_mid");
    for list in [
        "*".to_owned(),
        format!(
            "{}, {}, {}, {}",
            q::<DB>("name"),
            q::<DB>("id"),
            q::<DB>("label"),
            q::<DB>("weight")
        ),
        format!(
            "{}, {}, {}, {}",
            q::<DB>("id"),
            q::<DB>("name"),
            q::<DB>("label"),
            q::<DB>("weight")
        ),
        format!(
            "{}, {}, {}, {}",
            q::<DB>("weight"),
            q::<DB>("label"),
            q::<DB>("id"),
            q::<DB>("name")
        ),
    ] {
        let sql = format!("SELECT {list} FROM {mid} ORDER BY {}", q::<DB>("id"));
        assert_eq!(
            query_models::<DB, Mid>(&db, &sql).await.unwrap(),
            mids,
            "{}: {sql}",
            DB::DIALECT
        );
    }
    assert_eq!(
        Mid::by_label("L2").get(&db.pool).await.unwrap(),
        Some(mids[1].clone())
    );
    assert_eq!(
        Mid::by_id(mids[0].id).get(&db.pool).await.unwrap(),
        Some(mids[0].clone())
    );
}

// ---------------------------------------------------------------------------------------------
// Key lookups
// ---------------------------------------------------------------------------------------------

/// get and exists agree with each other, with `model_runtime::get` / `exists` and with the rows
/// written, for present keys and for near misses (case, spaces, Unicode look-alikes), on a text
/// primary key, a composite key in declaration order, newtype keys and keyword-named columns.
async fn key_lookups_exact<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    Schema::new()
        .model::<Solo>()
        .model::<Pair>()
        .model::<Item>()
        .model::<Kw>()
        .create(&db.pool)
        .await
        .unwrap();

    // A text primary key holding awkward values.
    let mut codes = Vec::new();
    for (i, text) in awkward::<DB>().into_iter().enumerate() {
        let code = if i == 0 { "Ab-1".to_owned() } else { text };
        Solo { code: code.clone() }.insert(&db.pool).await.unwrap();
        codes.push(code);
    }
    codes.push("x".repeat(80));
    Solo {
        code: "x".repeat(80),
    }
    .insert(&db.pool)
    .await
    .unwrap();
    let mut probes: Vec<String> = codes.clone();
    for code in &codes {
        probes.push(code.to_uppercase());
        probes.push(code.to_lowercase());
        probes.push(format!("{code} "));
        probes.push(format!(" {code}"));
        probes.push(format!("{code}\u{200B}"));
        probes.push(code.trim_end().to_owned());
        probes.push(code.trim_start().to_owned());
    }
    probes.push("ab-1".into());
    probes.push("AB-1".into());
    probes.push("Ab-1  ".into());
    probes.push("Ab-1\t".into());
    probes.push("Ab-".into());
    probes.push("x".repeat(79));
    probes.push("üNÏcödé Ä ß".into());
    // é decomposed (e + combining acute) is another string.
    probes.push("e\u{301}".repeat(40));
    for probe in probes {
        let expected = codes.contains(&probe);
        let found = Solo::by_code(probe.as_str()).get(&db.pool).await.unwrap();
        assert_eq!(
            found.as_ref().map(|s| s.code.as_str()),
            expected.then_some(probe.as_str()),
            "{}: by_code({probe:?}).get",
            DB::DIALECT
        );
        assert_eq!(
            Solo::by_code(probe.as_str())
                .exists(&db.pool)
                .await
                .unwrap(),
            expected,
            "{}: by_code({probe:?}).exists",
            DB::DIALECT
        );
        let generic = model_runtime::get(
            &db.pool,
            SoloByCode {
                code: probe.clone(),
            },
        )
        .await
        .unwrap();
        assert_eq!(generic, found, "{}: get vs Key::get {probe:?}", DB::DIALECT);
        assert_eq!(
            model_runtime::exists(
                &db.pool,
                SoloByCode {
                    code: probe.clone()
                }
            )
            .await
            .unwrap(),
            expected
        );
    }

    // A composite key declared (second, first): the arguments come in that order, and swapping
    // them finds the other row, never this one.
    let pair = |first: &str, second: &str, n, m| Pair {
        id: 0,
        first: first.into(),
        second: second.into(),
        n,
        m,
    };
    let xy = pair("x", "y", 1, 2).insert(&db.pool).await.unwrap();
    let yx = pair("y", "x", 2, 1).insert(&db.pool).await.unwrap();
    let lone = pair("p", "q", 10, 20).insert(&db.pool).await.unwrap();
    assert_eq!(
        Pair::by_second_and_first("y", "x")
            .get(&db.pool)
            .await
            .unwrap(),
        Some(xy.clone())
    );
    assert_eq!(
        Pair::by_second_and_first("x", "y")
            .get(&db.pool)
            .await
            .unwrap(),
        Some(yx.clone())
    );
    assert_eq!(
        Pair::by_m_and_n(2, 1).get(&db.pool).await.unwrap(),
        Some(xy.clone())
    );
    assert_eq!(
        Pair::by_m_and_n(1, 2).get(&db.pool).await.unwrap(),
        Some(yx.clone())
    );
    assert_eq!(
        Pair::by_second_and_first("q", "p")
            .get(&db.pool)
            .await
            .unwrap(),
        Some(lone.clone())
    );
    assert_eq!(
        Pair::by_second_and_first("p", "q")
            .get(&db.pool)
            .await
            .unwrap(),
        None,
        "{}: swapped arguments found a row",
        DB::DIALECT
    );
    assert!(
        !Pair::by_second_and_first("p", "q")
            .exists(&db.pool)
            .await
            .unwrap()
    );
    assert!(
        Pair::by_second_and_first("q", "p")
            .exists(&db.pool)
            .await
            .unwrap()
    );
    assert_eq!(Pair::by_m_and_n(10, 20).get(&db.pool).await.unwrap(), None);
    assert!(!Pair::by_m_and_n(10, 20).exists(&db.pool).await.unwrap());
    assert_eq!(
        Pair::by_m_and_n(20, 10).get(&db.pool).await.unwrap(),
        Some(lone.clone())
    );
    // Half a key matches nothing.
    assert_eq!(
        Pair::by_second_and_first("q", "")
            .get(&db.pool)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        Pair::by_second_and_first("Q", "P")
            .get(&db.pool)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        Pair::by_second_and_first("q ", "p")
            .get(&db.pool)
            .await
            .unwrap(),
        None
    );
    // Key::of and the key struct agree with the constructor.
    for row in [&xy, &yx, &lone] {
        assert_eq!(
            PairBySecondAndFirst::of(row),
            Pair::by_second_and_first(row.second.as_str(), row.first.as_str())
        );
        assert_eq!(
            PairBySecondAndFirst::of(row)
                .get(&db.pool)
                .await
                .unwrap()
                .as_ref(),
            Some(row)
        );
        assert_eq!(
            model_runtime::get(&db.pool, PairByMAndN::of(row))
                .await
                .unwrap()
                .as_ref(),
            Some(row)
        );
        assert_eq!(
            PairById::of(row).get(&db.pool).await.unwrap().as_ref(),
            Some(row)
        );
    }
    assert_eq!(Pair::by_id(-1).get(&db.pool).await.unwrap(), None);
    assert_eq!(Pair::by_id(i64::MAX).get(&db.pool).await.unwrap(), None);

    // Newtype keys (one renamed), alone and together, in the declaration's order.
    let item = |sku: &str, store, qty| Item {
        id: StoreId(0),
        sku: Code(sku.into()),
        store: StoreId(store),
        qty,
    };
    let a1 = item("A-1", 1, 10).insert(&db.pool).await.unwrap();
    let b2 = item("B-2", 2, 20).insert(&db.pool).await.unwrap();
    let emoji = item("🦀-'\"\\", 2, 30).insert(&db.pool).await.unwrap();
    assert_eq!(
        Item::by_sku(Code("A-1".into()))
            .get(&db.pool)
            .await
            .unwrap(),
        Some(a1.clone())
    );
    assert_eq!(
        Item::by_sku(Code("🦀-'\"\\".into()))
            .get(&db.pool)
            .await
            .unwrap(),
        Some(emoji.clone())
    );
    for miss in ["a-1", "A-1 ", " A-1", "A-1\0", "A_1", "A%", "B-2 ", "b-2"] {
        if miss.contains('\0') && DB::DIALECT == Dialect::Postgres {
            continue;
        }
        assert_eq!(
            Item::by_sku(Code(miss.into())).get(&db.pool).await.unwrap(),
            None,
            "{}: newtype key {miss:?}",
            DB::DIALECT
        );
        assert!(
            !Item::by_sku(Code(miss.into()))
                .exists(&db.pool)
                .await
                .unwrap(),
            "{}: newtype key {miss:?}",
            DB::DIALECT
        );
        assert_eq!(
            Item::by_store_and_sku(StoreId(1), Code(miss.into()))
                .get(&db.pool)
                .await
                .unwrap(),
            None,
            "{}: composite newtype key {miss:?}",
            DB::DIALECT
        );
    }
    assert_eq!(
        Item::by_store_and_sku(StoreId(2), Code("B-2".into()))
            .get(&db.pool)
            .await
            .unwrap(),
        Some(b2.clone())
    );
    assert_eq!(
        Item::by_store_and_sku(StoreId(1), Code("B-2".into()))
            .get(&db.pool)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        Item::by_id(b2.id).get(&db.pool).await.unwrap(),
        Some(b2.clone())
    );
    assert_eq!(
        ItemBySku::of(&emoji).get(&db.pool).await.unwrap(),
        Some(emoji.clone())
    );

    // Keyword-named table and columns.
    let k = Kw {
        id: 0,
        order: 5,
        key: "select".into(),
        group: Some(3),
    }
    .insert(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        Kw::by_order(5).get(&db.pool).await.unwrap(),
        Some(k.clone())
    );
    assert_eq!(
        Kw::by_key("select").get(&db.pool).await.unwrap(),
        Some(k.clone())
    );
    assert!(Kw::by_key("select").exists(&db.pool).await.unwrap());
    assert!(!Kw::by_key("SELECT").exists(&db.pool).await.unwrap());
    assert_eq!(Kw::by_order(6).get(&db.pool).await.unwrap(), None);
    let sql = format!(
        "SELECT {}, {}, {}, {} FROM {}",
        q::<DB>("group"),
        q::<DB>("key"),
        q::<DB>("order"),
        q::<DB>("id"),
        q::<DB>("order")
    );
    let read: Vec<Kw> = sqlx::query_as::<DB, Kw>(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(read, [k]);
}

/// A NULL key identifies nothing in a plain unique column; under `nulls_not_distinct` it
/// identifies the row holding the NULL, and never a row holding a value.
async fn key_lookups_nulls<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    Schema::new().model::<Opt>().create(&db.pool).await.unwrap();
    let opt = |tag: Option<&str>, slot: Option<i64>, note: &str| Opt {
        id: 0,
        tag: tag.map(Into::into),
        slot,
        note: note.into(),
    };
    // Two rows with a NULL tag (NULLs never collide); one with a NULL slot.
    let null_tag_1 = opt(None, Some(1), "n1").insert(&db.pool).await.unwrap();
    let null_tag_2 = opt(None, None, "n2").insert(&db.pool).await.unwrap();
    let tagged = opt(Some("t"), Some(0), "t").insert(&db.pool).await.unwrap();
    let empty = opt(Some(""), Some(-1), "e").insert(&db.pool).await.unwrap();

    assert_eq!(
        Opt::by_tag(None).get(&db.pool).await.unwrap(),
        None,
        "{}",
        DB::DIALECT
    );
    assert!(
        !Opt::by_tag(None).exists(&db.pool).await.unwrap(),
        "{}",
        DB::DIALECT
    );
    assert_eq!(
        model_runtime::get(&db.pool, OptByTag { tag: None })
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        Opt::by_tag(Some("t".to_owned()))
            .get(&db.pool)
            .await
            .unwrap(),
        Some(tagged.clone())
    );
    assert_eq!(
        Opt::by_tag("t".to_owned()).get(&db.pool).await.unwrap(),
        Some(tagged.clone())
    );
    // The empty string is a value, not a NULL (and a NULL is not the empty string).
    assert_eq!(
        Opt::by_tag(Some(String::new()))
            .get(&db.pool)
            .await
            .unwrap(),
        Some(empty.clone()),
        "{}",
        DB::DIALECT
    );
    assert_eq!(
        Opt::by_tag(Some("T".to_owned()))
            .get(&db.pool)
            .await
            .unwrap(),
        None
    );
    // Key::of a row with a NULL tag finds nothing, not the other NULL row.
    assert_eq!(OptByTag::of(&null_tag_1).get(&db.pool).await.unwrap(), None);
    assert!(!OptByTag::of(&null_tag_2).exists(&db.pool).await.unwrap());

    // nulls_not_distinct: None finds the NULL row; 0 is not NULL.
    assert_eq!(
        Opt::by_slot(None).get(&db.pool).await.unwrap(),
        Some(null_tag_2.clone()),
        "{}",
        DB::DIALECT
    );
    assert!(Opt::by_slot(None).exists(&db.pool).await.unwrap());
    assert_eq!(
        Opt::by_slot(Some(0)).get(&db.pool).await.unwrap(),
        Some(tagged.clone())
    );
    assert_eq!(
        Opt::by_slot(1).get(&db.pool).await.unwrap(),
        Some(null_tag_1.clone())
    );
    assert_eq!(Opt::by_slot(Some(2)).get(&db.pool).await.unwrap(), None);
    assert_eq!(
        OptBySlot::of(&null_tag_2).get(&db.pool).await.unwrap(),
        Some(null_tag_2.clone())
    );
    // Once the NULL row's slot is a value, None finds nothing, not the row with 0.
    Opt {
        slot: Some(7),
        ..null_tag_2.clone()
    }
    .update(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        Opt::by_slot(None).get(&db.pool).await.unwrap(),
        None,
        "{}",
        DB::DIALECT
    );
    assert!(!Opt::by_slot(None).exists(&db.pool).await.unwrap());
    assert_eq!(
        Opt::by_slot(7).get(&db.pool).await.unwrap().map(|o| o.id),
        Some(null_tag_2.id)
    );
    // FromRow with NULLs in every nullable column, in and out of order.
    let sql = format!(
        "SELECT {}, {}, {}, {} FROM {} ORDER BY {}",
        q::<DB>("note"),
        q::<DB>("slot"),
        q::<DB>("tag"),
        q::<DB>("id"),
        q::<DB>("adv_opt"),
        q::<DB>("id")
    );
    let read: Vec<Opt> = sqlx::query_as::<DB, Opt>(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(read.len(), 4);
    assert_eq!(read[0], null_tag_1);
    assert_eq!((read[1].tag.clone(), read[1].slot), (None, Some(7)));
    assert_eq!(read[2], tagged);
    assert_eq!(read[3], empty);
}

/// A case-insensitive key folds ASCII letters only; trailing and leading spaces, non-ASCII case
/// and look-alikes stay distinct. The exact key beside it folds nothing.
async fn key_lookups_case<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Member>()
        .create(&db.pool)
        .await
        .unwrap();
    let member = |email: &str, handle: &str| Member {
        id: 0,
        email: email.into(),
        handle: handle.into(),
    };
    let ann = member("Ann@X.org", "Ann").insert(&db.pool).await.unwrap();
    let umlaut = member("Ärger@x", "Ärger").insert(&db.pool).await.unwrap();
    let strasse = member("straße@x", "straße").insert(&db.pool).await.unwrap();
    let spaced = member("sp@x ", "sp ").insert(&db.pool).await.unwrap();

    let found = |emails: &'static [&'static str], who: &Member| {
        emails
            .iter()
            .map(|e| (*e, Some(who.id)))
            .collect::<Vec<_>>()
    };
    let mut cases: Vec<(&str, Option<i64>)> = Vec::new();
    cases.extend(found(
        &["Ann@X.org", "ann@x.org", "ANN@X.ORG", "aNN@x.OrG"],
        &ann,
    ));
    cases.extend(found(&["Ärger@x", "ÄRGER@X"], &umlaut));
    cases.extend(found(&["straße@x", "STRAßE@X"], &strasse));
    cases.extend(found(&["sp@x ", "SP@X "], &spaced));
    for miss in [
        "ann@x.org ",
        " ann@x.org",
        "Ann@X.org\t",
        "ann@x.or",
        "ärger@x",
        "ärger@X",
        "STRASSE@X",
        "strasse@x",
        "sp@x",
        "sp@x  ",
        "ann@x\u{2024}org",
        "ann@x.org\u{200B}",
    ] {
        cases.push((miss, None));
    }
    for (email, expected) in cases {
        let got = Member::by_email(email).get(&db.pool).await.unwrap();
        assert_eq!(
            got.as_ref().map(|m| m.id),
            expected,
            "{}: case-insensitive by_email({email:?})",
            DB::DIALECT
        );
        assert_eq!(
            Member::by_email(email).exists(&db.pool).await.unwrap(),
            expected.is_some(),
            "{}: case-insensitive by_email({email:?}).exists",
            DB::DIALECT
        );
        // The stored spelling is returned, not the probe's.
        if let Some(m) = got {
            assert!(
                [&ann, &umlaut, &strasse, &spaced].contains(&&m),
                "{}: {m:?}",
                DB::DIALECT
            );
        }
    }
    // The exact key: only the stored bytes.
    for (handle, expected) in [
        ("Ann", Some(ann.id)),
        ("ann", None),
        ("ANN", None),
        ("Ann ", None),
        ("Ärger", Some(umlaut.id)),
        ("ärger", None),
        ("sp ", Some(spaced.id)),
        ("sp", None),
        ("sp  ", None),
        ("straße", Some(strasse.id)),
        ("strasse", None),
    ] {
        assert_eq!(
            Member::by_handle(handle)
                .get(&db.pool)
                .await
                .unwrap()
                .map(|m| m.id),
            expected,
            "{}: exact by_handle({handle:?})",
            DB::DIALECT
        );
        assert_eq!(
            Member::by_handle(handle).exists(&db.pool).await.unwrap(),
            expected.is_some(),
            "{}: exact by_handle({handle:?}).exists",
            DB::DIALECT
        );
    }
}

/// Every way of passing a connection: `&pool`, `&mut PoolConnection`, `&mut *conn`, `&mut *tx`,
/// `&mut tx`; a transaction's own uncommitted row is seen inside it and not outside; a rollback
/// leaves the row as it was; get_for_update then update commits.
async fn key_lookups_connections<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: model_runtime::Conn<'c>,
    for<'c> &'c mut sqlx::pool::PoolConnection<DB>: model_runtime::Conn<'c>,
    for<'c, 't> &'c mut sqlx::Transaction<'t, DB>: model_runtime::Conn<'c>,
{
    Schema::new()
        .model::<Counter>()
        .create(&db.pool)
        .await
        .unwrap();
    let counter = |name: &str, value| Counter {
        id: 0,
        name: name.into(),
        value,
    };
    let c1 = counter("c1", 1).insert(&db.pool).await.unwrap();

    {
        let mut conn = db.pool.acquire().await.unwrap();
        assert_eq!(
            Counter::by_name("c1").get(&mut conn).await.unwrap(),
            Some(c1.clone())
        );
        assert!(Counter::by_name("c1").exists(&mut conn).await.unwrap());
        assert_eq!(
            Counter::by_name("c1").get(&mut *conn).await.unwrap(),
            Some(c1.clone())
        );
        assert!(!Counter::by_name("c2").exists(&mut *conn).await.unwrap());
        assert_eq!(
            Counter::by_name("c1")
                .get_for_update(&mut conn)
                .await
                .unwrap(),
            Some(c1.clone())
        );
        assert_eq!(
            model_runtime::get(&mut *conn, CounterByName { name: "c1".into() })
                .await
                .unwrap(),
            Some(c1.clone())
        );
        assert_eq!(
            model_runtime::get_for_update(&mut conn, CounterById { id: c1.id })
                .await
                .unwrap(),
            Some(c1.clone())
        );
    }

    // Committed: get_for_update, update, commit.
    let mut tx = db.pool.begin().await.unwrap();
    let locked = Counter::by_name("c1")
        .get_for_update(&mut *tx)
        .await
        .unwrap()
        .expect("c1");
    assert_eq!(locked, c1);
    Counter {
        value: locked.value + 41,
        ..locked
    }
    .update(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        Counter::by_name("c1")
            .get(&mut *tx)
            .await
            .unwrap()
            .map(|c| c.value),
        Some(42)
    );
    // A row created in the transaction is found inside it.
    let c2 = counter("c2", 2).insert(&mut *tx).await.unwrap();
    assert_eq!(
        Counter::by_name("c2")
            .get_for_update(&mut *tx)
            .await
            .unwrap(),
        Some(c2.clone())
    );
    assert!(Counter::by_name("c2").exists(&mut tx).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        Counter::by_name("c1")
            .get(&db.pool)
            .await
            .unwrap()
            .map(|c| c.value),
        Some(42)
    );
    assert_eq!(
        Counter::by_name("c2").get(&db.pool).await.unwrap(),
        Some(c2.clone())
    );

    // Rolled back: the update and the insert are gone, and lookups say so.
    let mut tx = db.pool.begin().await.unwrap();
    let locked = Counter::by_id(c1.id)
        .get_for_update(&mut *tx)
        .await
        .unwrap()
        .expect("c1");
    Counter {
        value: -1,
        ..locked
    }
    .update(&mut *tx)
    .await
    .unwrap();
    counter("c3", 3).insert(&mut *tx).await.unwrap();
    assert!(Counter::by_name("c3").exists(&mut *tx).await.unwrap());
    assert_eq!(
        Counter::by_name("c1")
            .get_for_update(&mut *tx)
            .await
            .unwrap()
            .map(|c| c.value),
        Some(-1)
    );
    tx.rollback().await.unwrap();
    assert!(!Counter::by_name("c3").exists(&db.pool).await.unwrap());
    assert_eq!(Counter::by_name("c3").get(&db.pool).await.unwrap(), None);
    assert_eq!(
        Counter::by_name("c1")
            .get(&db.pool)
            .await
            .unwrap()
            .map(|c| c.value),
        Some(42)
    );
    // Absent keys in a transaction: None, and the transaction is still usable afterwards.
    let mut tx = db.pool.begin().await.unwrap();
    assert_eq!(
        Counter::by_name("nope")
            .get_for_update(&mut *tx)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        Counter::by_id(-5).get_for_update(&mut *tx).await.unwrap(),
        None
    );
    assert_eq!(
        Counter::by_name("c2")
            .get_for_update(&mut *tx)
            .await
            .unwrap(),
        Some(c2)
    );
    tx.commit().await.unwrap();

    // get_or_create through the same transaction agrees with the key lookups.
    let mut tx = db.pool.begin().await.unwrap();
    let (made, _) = Counter::get_or_create_by_name(&mut *tx, &counter("c4", 4))
        .await
        .unwrap();
    assert_eq!(
        Counter::by_name("c4").get(&mut *tx).await.unwrap(),
        Some(made.clone())
    );
    tx.commit().await.unwrap();
    assert_eq!(
        Counter::by_name("c4").get(&db.pool).await.unwrap(),
        Some(made)
    );
}

/// On PostgreSQL and MariaDB, `get_for_update` locks the row: a second transaction's
/// `get_for_update` of it fails on its lock wait limit while the first holds it, while a plain
/// `get`, `exists` and `get_for_update` of another row go through; once the first commits, the
/// second locks it and sees the first's write. SQLite has no row locks (a plain read there).
async fn get_for_update_locks<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: model_runtime::Conn<'c>,
    for<'c> &'c mut sqlx::pool::PoolConnection<DB>: model_runtime::Conn<'c>,
    for<'c, 't> &'c mut sqlx::Transaction<'t, DB>: model_runtime::Conn<'c>,
{
    Schema::new()
        .model::<Counter>()
        .create(&db.pool)
        .await
        .unwrap();
    let mut stored = Vec::new();
    for (name, value) in [("a", 1), ("b", 2)] {
        stored.push(
            Counter {
                id: 0,
                name: name.into(),
                value,
            }
            .insert(&db.pool)
            .await
            .unwrap(),
        );
    }
    if DB::DIALECT == Dialect::Sqlite {
        let mut tx = db.pool.begin().await.unwrap();
        assert_eq!(
            Counter::by_name("a")
                .get_for_update(&mut *tx)
                .await
                .unwrap(),
            Some(stored[0].clone())
        );
        tx.commit().await.unwrap();
        return;
    }
    let limit = match DB::DIALECT {
        Dialect::Postgres => "SET lock_timeout = '300ms'",
        _ => "SET SESSION innodb_lock_wait_timeout = 1",
    };
    let mut holder = db.pool.begin().await.unwrap();
    let held = Counter::by_name("a")
        .get_for_update(&mut *holder)
        .await
        .unwrap()
        .expect("a");
    Counter {
        value: 100,
        ..held.clone()
    }
    .update(&mut *holder)
    .await
    .unwrap();

    let mut waiter_conn = db.pool.acquire().await.unwrap();
    sqlx::query(limit).execute(&mut *waiter_conn).await.unwrap();
    // A plain read is not blocked, and sees the committed value.
    assert_eq!(
        Counter::by_name("a").get(&mut *waiter_conn).await.unwrap(),
        Some(stored[0].clone())
    );
    assert!(
        Counter::by_name("a")
            .exists(&mut *waiter_conn)
            .await
            .unwrap()
    );
    {
        let mut tx = sqlx::Connection::begin(&mut *waiter_conn).await.unwrap();
        // Another row locks fine.
        assert_eq!(
            Counter::by_name("b")
                .get_for_update(&mut *tx)
                .await
                .unwrap(),
            Some(stored[1].clone())
        );
        tx.rollback().await.unwrap();
    }
    {
        let mut tx = sqlx::Connection::begin(&mut *waiter_conn).await.unwrap();
        let blocked = Counter::by_name("a").get_for_update(&mut *tx).await;
        assert!(
            blocked.is_err(),
            "{}: get_for_update of a row locked by another transaction returned {blocked:?}",
            DB::DIALECT
        );
        let blocked = Counter::by_id(stored[0].id).get_for_update(&mut *tx).await;
        // PostgreSQL's transaction is aborted after the first error; either way, no row.
        assert!(blocked.is_err(), "{}: {blocked:?}", DB::DIALECT);
        let _ = tx.rollback().await;
    }
    holder.commit().await.unwrap();
    let mut tx = sqlx::Connection::begin(&mut *waiter_conn).await.unwrap();
    assert_eq!(
        Counter::by_name("a")
            .get_for_update(&mut *tx)
            .await
            .unwrap()
            .map(|c| c.value),
        Some(100)
    );
    tx.commit().await.unwrap();
}

/// A key with awkward values round-trips through every lookup, and the values with NUL stay
/// distinct from their prefixes where the backend stores NUL.
async fn key_lookups_awkward_values<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Item>()
        .create(&db.pool)
        .await
        .unwrap();
    let texts = awkward::<DB>();
    let mut stored = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let mut sku = text.clone();
        sku.truncate(sku.char_indices().nth(40).map_or(sku.len(), |(at, _)| at));
        let row = Item {
            id: StoreId(0),
            sku: Code(sku),
            store: StoreId(i as i64 % 3),
            qty: i as i64,
        }
        .insert(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{}: {text:?}: {e:?}", DB::DIALECT));
        stored.push(row);
    }
    for row in &stored {
        assert_eq!(
            Item::by_sku(row.sku.clone())
                .get(&db.pool)
                .await
                .unwrap()
                .as_ref(),
            Some(row),
            "{}: {:?}",
            DB::DIALECT,
            row.sku
        );
        assert_eq!(
            Item::by_store_and_sku(row.store, row.sku.clone())
                .get(&db.pool)
                .await
                .unwrap()
                .as_ref(),
            Some(row),
            "{}: {:?}",
            DB::DIALECT,
            row.sku
        );
        assert_eq!(
            Item::by_store_and_sku(StoreId(row.store.0 + 1), row.sku.clone())
                .get(&db.pool)
                .await
                .unwrap(),
            None
        );
    }
    if DB::DIALECT != Dialect::Postgres {
        for miss in ["nul", "nul\0", "nul\0mi", "nul\0mid\0", "nulmid"] {
            assert!(
                !Item::by_sku(Code(miss.into()))
                    .exists(&db.pool)
                    .await
                    .unwrap(),
                "{}: {miss:?}",
                DB::DIALECT
            );
        }
    } else {
        // A NUL cannot be stored in PostgreSQL text: a lookup by one finds nothing or is an error,
        // never a row (nor a panic).
        let result = Item::by_sku(Code("plain\0".into())).get(&db.pool).await;
        assert!(
            matches!(result, Ok(None) | Err(_)),
            "PostgreSQL: NUL lookup returned {result:?}"
        );
    }
    // The longest value the column holds, and one char less.
    let long = "é".repeat(40);
    assert!(
        Item::by_sku(Code(long.clone()))
            .exists(&db.pool)
            .await
            .unwrap()
    );
    assert!(
        !Item::by_sku(Code("é".repeat(39)))
            .exists(&db.pool)
            .await
            .unwrap()
    );
    // A probe longer than the column is a miss (or an error), never a prefix match.
    let result = Item::by_sku(Code(format!("{long}é"))).get(&db.pool).await;
    assert!(
        matches!(result, Ok(None) | Err(_)),
        "{}: over-long probe returned {result:?}",
        DB::DIALECT
    );
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// Keys of other column types compare as the database's unique index does: by value for decimals
/// (trailing zeros and the sign of zero do not matter), exactly for bytes, uuids and instants; a
/// probe that no stored value can equal (more digits than the column's scale, nanoseconds) is a
/// miss or an error, never a row rounded into a match.
async fn key_lookups_typed<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    Schema::new()
        .model::<Typed>()
        .create(&db.pool)
        .await
        .unwrap();
    let t1 = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
    let t2 = DateTime::from_timestamp(1_700_000_000, 123_457_000).unwrap();
    let u1 = Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
    let u2 = Uuid::from_u128(0xffff_0000_ffff_0000_ffff_0000_ffff_0000);
    let r1 = Typed {
        id: 0,
        amount: dec("1.5"),
        price: dec("1.50"),
        uid: u1,
        at: t1,
        small: 5,
        status: Status::Active,
    }
    .insert(&db.pool)
    .await
    .unwrap();
    let r2 = Typed {
        id: 0,
        amount: dec("0"),
        price: dec("0.01"),
        uid: u2,
        at: t2,
        small: -5,
        status: Status::OnHold,
    }
    .insert(&db.pool)
    .await
    .unwrap();
    let id = |found: Option<Typed>| found.map(|t| t.id);

    for (probe, expected) in [
        ("1.5", Some(r1.id)),
        ("1.50", Some(r1.id)),
        ("1.500000000", Some(r1.id)),
        ("01.5", Some(r1.id)),
        ("1.5000000000000000000000000001", None),
        ("1.4999999999999999999999999999", None),
        ("-1.5", None),
        ("0", Some(r2.id)),
        ("0.000", Some(r2.id)),
        ("-0", Some(r2.id)),
        ("-0.00", Some(r2.id)),
        ("15", None),
        ("0.15", None),
    ] {
        let value = dec(probe);
        assert_eq!(
            id(Typed::by_amount(value).get(&db.pool).await.unwrap()),
            expected,
            "{}: by_amount({probe})",
            DB::DIALECT
        );
        assert_eq!(
            Typed::by_amount(value).exists(&db.pool).await.unwrap(),
            expected.is_some(),
            "{}: by_amount({probe}).exists",
            DB::DIALECT
        );
    }
    for (probe, expected) in [
        ("1.5", Some(r1.id)),
        ("1.50", Some(r1.id)),
        ("1.500", Some(r1.id)),
        ("0.01", Some(r2.id)),
        ("0.010", Some(r2.id)),
        ("1.51", None),
        ("-0.01", None),
    ] {
        assert_eq!(
            id(Typed::by_price(dec(probe)).get(&db.pool).await.unwrap()),
            expected,
            "{}: by_price({probe})",
            DB::DIALECT
        );
    }
    // More digits than the column's scale: no stored value equals them. A miss or an error, but
    // never the row they would round to.
    for probe in ["1.504", "1.496", "1.5001", "0.005", "0.014"] {
        let result = Typed::by_price(dec(probe)).get(&db.pool).await;
        assert!(
            matches!(result, Ok(None) | Err(_)),
            "{}: by_price({probe}) found {result:?}",
            DB::DIALECT
        );
        let result = Typed::by_price(dec(probe)).exists(&db.pool).await;
        assert!(
            matches!(result, Ok(false) | Err(_)),
            "{}: by_price({probe}).exists returned {result:?}",
            DB::DIALECT
        );
    }
    assert_eq!(
        id(Typed::by_uid(u1).get(&db.pool).await.unwrap()),
        Some(r1.id)
    );
    assert_eq!(
        id(Typed::by_uid(u2).get(&db.pool).await.unwrap()),
        Some(r2.id)
    );
    assert_eq!(
        id(Typed::by_uid(Uuid::nil()).get(&db.pool).await.unwrap()),
        None
    );
    assert_eq!(
        id(Typed::by_uid(Uuid::from_u128(u1.as_u128() ^ 1))
            .get(&db.pool)
            .await
            .unwrap()),
        None
    );
    assert_eq!(
        id(Typed::by_at(t1).get(&db.pool).await.unwrap()),
        Some(r1.id)
    );
    assert_eq!(
        id(Typed::by_at(t2).get(&db.pool).await.unwrap()),
        Some(r2.id)
    );
    let micro = chrono::Duration::microseconds(1);
    assert_eq!(
        id(Typed::by_at(t1 - micro).get(&db.pool).await.unwrap()),
        None
    );
    assert_eq!(
        id(Typed::by_at(t2 + micro).get(&db.pool).await.unwrap()),
        None
    );
    assert_eq!(
        id(Typed::by_small(5_i16).get(&db.pool).await.unwrap()),
        Some(r1.id)
    );
    assert_eq!(
        id(Typed::by_small(-5_i16).get(&db.pool).await.unwrap()),
        Some(r2.id)
    );
    assert_eq!(
        id(Typed::by_small(i16::MIN).get(&db.pool).await.unwrap()),
        None
    );
    assert_eq!(
        id(Typed::by_status(Status::Active)
            .get(&db.pool)
            .await
            .unwrap()),
        Some(r1.id)
    );
    assert_eq!(
        id(Typed::by_status(Status::OnHold)
            .get(&db.pool)
            .await
            .unwrap()),
        Some(r2.id)
    );
    // The whole row, through every key, is the row written.
    for row in [&r1, &r2] {
        for found in [
            TypedByAmount::of(row).get(&db.pool).await.unwrap(),
            TypedByPrice::of(row).get(&db.pool).await.unwrap(),
            TypedByUid::of(row).get(&db.pool).await.unwrap(),
            TypedByAt::of(row).get(&db.pool).await.unwrap(),
            TypedBySmall::of(row).get(&db.pool).await.unwrap(),
            TypedByStatus::of(row).get(&db.pool).await.unwrap(),
        ] {
            assert_eq!(found.as_ref(), Some(row), "{}", DB::DIALECT);
        }
    }
    // And through query_as, in and out of order.
    let sql = format!(
        "SELECT * FROM {} ORDER BY {}",
        q::<DB>("adv_typed"),
        q::<DB>("id")
    );
    assert_eq!(
        query_models::<DB, Typed>(&db, &sql).await.unwrap(),
        [r1.clone(), r2.clone()]
    );
    let list = ["status", "small", "at", "uid", "price", "amount", "id"]
        .map(|c| q::<DB>(c))
        .join(", ");
    let sql = format!(
        "SELECT {list} FROM {} ORDER BY {}",
        q::<DB>("adv_typed"),
        q::<DB>("id")
    );
    assert_eq!(
        query_models::<DB, Typed>(&db, &sql).await.unwrap(),
        [r1, r2]
    );
}

/// `SELECT *` of tables whose keys the backend emulates with generated columns (MariaDB's
/// case-insensitive, nulls-not-distinct and partial keys) reads the model; the partial key's
/// lookups see only covered rows.
async fn select_star_with_emulated_keys<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    Schema::new()
        .model::<Member>()
        .model::<Opt>()
        .model::<Soft>()
        .create(&db.pool)
        .await
        .unwrap();
    let members = vec![
        Member {
            id: 0,
            email: "A@x".into(),
            handle: "a".into(),
        }
        .insert(&db.pool)
        .await
        .unwrap(),
        Member {
            id: 0,
            email: "b@X".into(),
            handle: "B".into(),
        }
        .insert(&db.pool)
        .await
        .unwrap(),
    ];
    let opts = vec![
        Opt {
            id: 0,
            tag: None,
            slot: None,
            note: "n".into(),
        }
        .insert(&db.pool)
        .await
        .unwrap(),
        Opt {
            id: 0,
            tag: Some("t".into()),
            slot: Some(3),
            note: "t".into(),
        }
        .insert(&db.pool)
        .await
        .unwrap(),
    ];
    let soft = |email: &str, deleted| Soft {
        id: 0,
        email: email.into(),
        deleted,
    };
    let softs = vec![
        soft("s@x", Some(1)).insert(&db.pool).await.unwrap(),
        soft("s@x", Some(2)).insert(&db.pool).await.unwrap(),
        soft("s@x", None).insert(&db.pool).await.unwrap(),
        soft("gone@x", Some(3)).insert(&db.pool).await.unwrap(),
    ];
    let star = |table: &str| {
        format!(
            "SELECT * FROM {} ORDER BY {}",
            q::<DB>(table),
            q::<DB>("id")
        )
    };
    assert_eq!(
        query_models::<DB, Member>(&db, &star("adv_ci"))
            .await
            .unwrap(),
        members
    );
    assert_eq!(
        query_models::<DB, Opt>(&db, &star("adv_opt"))
            .await
            .unwrap(),
        opts
    );
    assert_eq!(
        query_models::<DB, Soft>(&db, &star("adv_soft"))
            .await
            .unwrap(),
        softs
    );
    // The partial key finds the live row only.
    assert_eq!(
        Soft::by_email("s@x").get(&db.pool).await.unwrap(),
        Some(softs[2].clone()),
        "{}",
        DB::DIALECT
    );
    assert_eq!(
        Soft::by_email("gone@x").get(&db.pool).await.unwrap(),
        None,
        "{}",
        DB::DIALECT
    );
    assert!(
        !Soft::by_email("gone@x").exists(&db.pool).await.unwrap(),
        "{}",
        DB::DIALECT
    );
    assert!(Soft::by_email("s@x").exists(&db.pool).await.unwrap());
    assert!(!Soft::by_email("S@x").exists(&db.pool).await.unwrap());
    assert!(
        !Soft::by_email("s@x ").exists(&db.pool).await.unwrap(),
        "{}",
        DB::DIALECT
    );
    assert_eq!(
        SoftByEmail::of(&softs[0]).get(&db.pool).await.unwrap(),
        Some(softs[2].clone())
    );
    // Deleting the live row leaves no row for the key.
    Soft {
        deleted: Some(9),
        ..softs[2].clone()
    }
    .update(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        Soft::by_email("s@x").get(&db.pool).await.unwrap(),
        None,
        "{}",
        DB::DIALECT
    );
}

/// A bytes key compares byte for byte: no padding, no case, NUL significant.
async fn key_lookups_bytes<DB: TestBackend>(db: TestDb<DB>) {
    let created = Schema::new().model::<Blob>().create(&db.pool).await;
    if DB::DIALECT == Dialect::MySql {
        assert!(created.is_err(), "MySQL: a unique BLOB was created");
        return;
    }
    created.unwrap();
    let mut stored = Vec::new();
    for bytes in [&b"ab"[..], &b"ab\0"[..], &b""[..], &[0xff, 0x00, 0x80][..]] {
        stored.push(
            Blob {
                id: 0,
                bytes: bytes.to_vec(),
            }
            .insert(&db.pool)
            .await
            .unwrap(),
        );
    }
    for (probe, expected) in [
        (&b"ab"[..], Some(stored[0].id)),
        (&b"ab\0"[..], Some(stored[1].id)),
        (&b""[..], Some(stored[2].id)),
        (&[0xff, 0x00, 0x80][..], Some(stored[3].id)),
        (&[0xff][..], None),
        (&b"AB"[..], None),
        (&b"ab "[..], None),
        (&b"a"[..], None),
        (&b"ab\0\0"[..], None),
        (&b"\0"[..], None),
    ] {
        assert_eq!(
            Blob::by_bytes(probe.to_vec())
                .get(&db.pool)
                .await
                .unwrap()
                .map(|b| b.id),
            expected,
            "{}: by_bytes({probe:?})",
            DB::DIALECT
        );
        assert_eq!(
            Blob::by_bytes(probe.to_vec())
                .exists(&db.pool)
                .await
                .unwrap(),
            expected.is_some(),
            "{}: by_bytes({probe:?}).exists",
            DB::DIALECT
        );
    }
}

/// A lookup by an instant with nanoseconds, which no stored value can hold (the library refuses to
/// write one, `Error::InvalidValue`): a miss or an error, never a row whose key is another instant.
async fn key_lookup_sub_microsecond_instant<DB>(db: TestDb<DB>)
where
    DB: TestBackend,
{
    Schema::new()
        .model::<Typed>()
        .create(&db.pool)
        .await
        .unwrap();
    let t1 = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
    let stored = Typed {
        id: 0,
        amount: dec("1"),
        price: dec("1"),
        uid: Uuid::nil(),
        at: t1,
        small: 1,
        status: Status::Active,
    }
    .insert(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        Typed::by_at(t1).get(&db.pool).await.unwrap(),
        Some(stored.clone())
    );
    for nanos in [1, 400, 600, 999] {
        let probe = t1 + chrono::Duration::nanoseconds(nanos);
        // The write path refuses the value where the backend keeps microseconds (SQLite keeps it).
        let candidate = Typed {
            id: 0,
            amount: Decimal::from(nanos + 10),
            price: Decimal::from(nanos + 10),
            uid: Uuid::from_u128(nanos as u128 + 10),
            at: probe,
            small: nanos as i16 + 10,
            status: Status::OnHold,
        };
        let written = candidate.insert(&db.pool).await;
        if DB::DIALECT == Dialect::Sqlite {
            assert_eq!(
                written.as_ref().map(|t| t.at).map_err(ToString::to_string),
                Ok(probe)
            );
        } else {
            assert!(
                matches!(written, Err(model_runtime::Error::InvalidValue { .. })),
                "{}: insert of an instant with {nanos} ns: {written:?}",
                DB::DIALECT
            );
        }
        // Whatever a lookup finds holds the key looked up.
        let result = Typed::by_at(probe).get(&db.pool).await;
        assert!(
            match &result {
                Ok(Some(found)) => found.at == probe,
                Ok(None) | Err(_) => true,
            },
            "{}: by_at(t1 + {nanos} ns).get() found {result:?}",
            DB::DIALECT
        );
        if DB::DIALECT != Dialect::Sqlite {
            // Refused as the write is, before any statement: the value cannot be stored.
            fn invalid<T>(r: &Result<T, model_runtime::Error>) -> bool {
                matches!(r, Err(model_runtime::Error::InvalidValue { .. }))
            }
            assert!(invalid(&result), "{}: {nanos} ns: {result:?}", DB::DIALECT);
            let exists = Typed::by_at(probe).exists(&db.pool).await;
            assert!(invalid(&exists), "{}: {nanos} ns: {exists:?}", DB::DIALECT);
            let mut tx = db.pool.begin().await.unwrap();
            let locked = Typed::by_at(probe).get_for_update(&mut tx).await;
            assert!(invalid(&locked), "{}: {nanos} ns: {locked:?}", DB::DIALECT);
            let validated = candidate.validate_unique_new(&mut tx).await;
            assert!(
                invalid(&validated),
                "{}: {nanos} ns: {validated:?}",
                DB::DIALECT
            );
            tx.rollback().await.unwrap();
        }
        let found = matches!(result, Ok(Some(_)));
        let result = Typed::by_at(probe).exists(&db.pool).await;
        assert!(
            result.is_err() || result.as_ref().ok() == Some(&found),
            "{}: by_at(t1 + {nanos} ns).exists() returned {result:?}",
            DB::DIALECT
        );
        if let Ok(row) = written {
            assert!(row.delete(&db.pool).await.unwrap());
        }
    }
}

mod sub_microsecond {
    //! Written out rather than through `backend_tests!`, to mark the backends where it failed:
    //! PostgreSQL and MariaDB returned the row stored at the instant cut to microseconds. Fixed: a
    //! lookup by a value the column cannot hold is refused as its write is.
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        model_integration::run_scenario::<sqlx::Sqlite, _>(
            "adv_key_lookups_fromrow::sub_microsecond::sqlite",
            Options::default(),
            key_lookup_sub_microsecond_instant::<sqlx::Sqlite>,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        model_integration::run_scenario::<sqlx::Postgres, _>(
            "adv_key_lookups_fromrow::sub_microsecond::postgres",
            Options::default(),
            key_lookup_sub_microsecond_instant::<sqlx::Postgres>,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql() {
        model_integration::run_scenario::<sqlx::MySql, _>(
            "adv_key_lookups_fromrow::sub_microsecond::mysql",
            Options::default(),
            key_lookup_sub_microsecond_instant::<sqlx::MySql>,
        )
        .await;
    }
}

backend_tests!(
    key_lookups_bytes,
    key_lookups_typed,
    select_star_with_emulated_keys,
    fromrow_fixed_orders,
    fromrow_random_permutations,
    fromrow_errors_and_shapes,
    key_lookups_exact,
    key_lookups_nulls,
    key_lookups_case,
    key_lookups_awkward_values,
    get_for_update_locks,
);

mod file {
    //! Scenarios that hold a transaction while reading elsewhere, or pass a connection of their
    //! own: a SQLite file (several connections), not the one-connection in-memory database.
    use super::*;
    backend_tests!(@with Options { sqlite_file: true, ..Options::default() }; key_lookups_connections);
}
