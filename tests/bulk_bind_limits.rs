//! MySQL's bulk update of stored rows: how it addresses them, and how many it binds at once.
//!
//! A bulk update's chunk is sized so that every statement it sends stays under the backend's bind
//! limit, counting what each statement really binds. The case here: 40 `i32` columns, all
//! incremented, over rows all stored, in chunks of the default size. On MySQL/MariaDB an `i32`
//! increment names the incoming value twice (`IF(s + ? BETWEEN … AND …, s + ?, <overflow>)`), so
//! the stored rows' `CASE` update binds 121 values a row (3 per counter, 1 for the `IN` list); the
//! chunk size used to count 81, and a chunk of 809 rows bound 97,889 values, past MySQL's 65,535
//! ("Prepared statement contains too many placeholders").

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::{BulkInsert, Key, Model, Schema};

macro_rules! counters_model {
    ($($f:ident: $F:ident),*) => {
        /// Many counters under a one-column key.
        #[derive(Model, Debug, Clone, PartialEq)]
        #[model(table = "bind_limit_counters")]
        struct Counters {
            #[model(primary_key, auto_increment)]
            id: i64,
            #[unique]
            #[model(max_length = 20)]
            k: String,
            $($f: i32,)*
        }

        fn counters(key: usize, value: i32) -> Counters {
            Counters { id: 0, k: format!("c{key}"), $($f: value,)* }
        }

        fn values(row: &Counters) -> Vec<i32> {
            vec![$(row.$f,)*]
        }

        /// Every counter incremented.
        fn increment_all(bulk: BulkInsert<Counters, model_runtime::ConflictModeSet>)
            -> BulkInsert<Counters, model_runtime::ConflictModeSet> {
            bulk$(.increment(Counters::FIELDS.$f))*
        }
    };
}

counters_model!(
    c00: C00, c01: C01, c02: C02, c03: C03, c04: C04, c05: C05, c06: C06, c07: C07, c08: C08,
    c09: C09, c10: C10, c11: C11, c12: C12, c13: C13, c14: C14, c15: C15, c16: C16, c17: C17,
    c18: C18, c19: C19, c20: C20, c21: C21, c22: C22, c23: C23, c24: C24, c25: C25, c26: C26,
    c27: C27, c28: C28, c29: C29, c30: C30, c31: C31, c32: C32, c33: C33, c34: C34, c35: C35,
    c36: C36, c37: C37, c38: C38, c39: C39
);

const COUNTERS: usize = 40;
const ROWS: usize = 2000;

/// Every row stored, then every counter of every row incremented twice, in default chunks,
/// counts only and with a per-row report: each import updates every row, and the stored values
/// are the sums.
async fn incremented_wide_rows_stay_under_the_bind_limit<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Counters>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    let report = BulkInsert::<Counters>::new()
        .counts_only()
        .run(&db.pool, (0..ROWS).map(|k| counters(k, 1)))
        .await
        .unwrap();
    assert_eq!(report.inserted, ROWS as u64, "{d}");
    let mut expected = 1;
    for (round, add) in [(0, 2), (1, 5)] {
        let counts_only = round == 0;
        let mut bulk = BulkInsert::<Counters>::new();
        if counts_only {
            bulk = bulk.counts_only();
        }
        let bulk = increment_all(bulk.update_conflicts::<CountersByK>(&[]));
        let report = bulk
            .run(&db.pool, (0..ROWS).map(|k| counters(k, add)))
            .await
            .unwrap_or_else(|e| panic!("{d}, round {round}: {e:?}"));
        expected += add;
        assert_eq!(
            (report.inserted, report.updated, report.unchanged),
            (0, ROWS as u64, 0),
            "{d}, round {round}"
        );
        for k in [0, 1, ROWS / 2, ROWS - 1] {
            let row = Counters::by_k(format!("c{k}"))
                .get(&db.pool)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{d}, round {round}: key c{k} is gone"));
            assert_eq!(
                values(&row),
                vec![expected; COUNTERS],
                "{d}, round {round}: key c{k}"
            );
        }
    }
    assert_eq!(
        DB::count(&db.pool, "bind_limit_counters").await,
        ROWS as i64
    );
}

/// A decimal primary key stored by another client with more digits than `Decimal` holds: it reads
/// back rounded, onto the primary key of another stored row. MySQL's bulk update addresses such
/// rows by their unique key, as the read found them (found by review: addressed by the primary key
/// read back, the update wrote the other row and reported success).
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "bind_limit_priced")]
struct Priced {
    #[model(primary_key)]
    code: rust_decimal::Decimal,
    #[unique]
    #[model(max_length = 20)]
    sku: String,
    v: i64,
}

async fn rounded_primary_keys_update_the_row_with_the_key<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Priced>()
        .create(&db.pool)
        .await
        .unwrap();
    let d = DB::DIALECT;
    let table = "bind_limit_priced";
    // 31 significant digits: the servers store them; `Decimal` holds 28 and rounds to 1.
    DB::run(
        &db.pool,
        &format!(
            "INSERT INTO {table} (code, sku, v) VALUES ('1.000000000000000000000000000001', 'long', 1), ('1', 'one', 1)"
        ),
    )
    .await;
    let row = Priced {
        code: rust_decimal::Decimal::ONE,
        sku: "long".into(),
        v: 2,
    };
    let result = BulkInsert::<Priced>::new()
        .counts_only()
        .update_conflicts::<PricedBySku>(&[PricedField::V])
        .run(&db.pool, vec![row])
        .await;
    let one = Priced::by_sku("one").get(&db.pool).await.unwrap().unwrap();
    assert_eq!(
        one.v, 1,
        "{d}: the row with another key was written: {result:?}"
    );
    // Written to the row with the key, or refused; never reported written elsewhere.
    if let Ok(report) = &result {
        assert_eq!(report.updated, 1, "{d}: {report:?}");
        let long = Priced::by_sku("long").get(&db.pool).await.unwrap().unwrap();
        assert_eq!(long.v, 2, "{d}");
    }
}

backend_tests!(
    incremented_wide_rows_stay_under_the_bind_limit,
    rounded_primary_keys_update_the_row_with_the_key
);
