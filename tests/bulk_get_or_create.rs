//! Bulk get-or-create (issue 12): for every input row, the primary key of the stored row with its
//! key, found or created, in input order, across chunks and under concurrent callers.

use std::collections::HashMap;

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{BulkInsert, Error, Model, RowOutcome, Schema};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "stores")]
struct Store {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 40)]
    name: String,
    city: String,
}

fn store(name: &str, city: &str) -> Store {
    Store {
        id: 0,
        name: name.into(),
        city: city.into(),
    }
}

/// The stored id of every name, read back outside the code under test.
async fn ids<DB: TestBackend>(db: &TestDb<DB>, names: &[&str]) -> Vec<i64> {
    let mut out = Vec::new();
    for name in names {
        out.push(
            Store::by_name(*name)
                .get(&db.pool)
                .await
                .unwrap()
                .unwrap()
                .id,
        );
    }
    out
}

async fn every_row_gets_its_key_s_primary_key<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Store>()
        .create(&db.pool)
        .await
        .unwrap();
    for name in ["Airport", "Harbour"] {
        store(name, "stored").insert(&db.pool).await.unwrap();
    }
    let names = [
        "Downtown", "Airport", "Downtown", "Mall", "Harbour", "Mall", "Airport", "Park",
    ];
    for batch in [1, 2, 3, 1000] {
        let rows: Vec<Store> = names.iter().map(|n| store(n, "input")).collect();
        let report = BulkInsert::<Store>::new()
            .batch_size(batch)
            .get_or_create::<StoreByName>()
            .run(&db.pool, rows)
            .await
            .unwrap_or_else(|e| panic!("{}: batch {batch}: {e}", DB::DIALECT));
        let keys: Vec<i64> = report
            .primary_keys()
            .unwrap()
            .into_iter()
            .map(|pk| {
                pk.unwrap_or_else(|| {
                    panic!("{}: batch {batch}: a row without its key's id", DB::DIALECT)
                })
            })
            .collect();
        assert_eq!(
            keys,
            ids(&db, &names).await,
            "{}: batch {batch}",
            DB::DIALECT
        );
        // Stored rows are found, not written over.
        let airport = Store::by_name("Airport")
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(airport.city, "stored");
        let rows = report.rows.unwrap();
        assert!(matches!(rows[1], RowOutcome::Found(_)), "{:?}", rows[1]);
        assert!(
            matches!(rows[2], RowOutcome::SkippedDuplicate { first: 0 }),
            "{:?}",
            rows[2]
        );
    }
    assert_eq!(DB::count(&db.pool, "stores").await, 5);
    // It needs the per-row report.
    let error = BulkInsert::<Store>::new()
        .counts_only()
        .get_or_create::<StoreByName>()
        .run(&db.pool, vec![store("x", "y")])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument { .. }), "{error:?}");
}

/// Eight callers resolve overlapping names at once, each in chunks committed one by one (the
/// documented way for concurrent multi-chunk calls over shared keys in different orders: one
/// all-or-nothing transaction each would hold locks across chunks and can deadlock on MariaDB):
/// every caller gets, for every name, the one id the table holds for it; one row per name.
async fn concurrent_callers_agree_on_every_id<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Store>()
        .create(&db.pool)
        .await
        .unwrap();
    // Chunks of 7 committed one by one, then one all-or-nothing chunk per call.
    for chunked in [true, false] {
        race(&db, chunked).await;
        Schema::new().model::<Store>().drop(&db.pool).await.unwrap();
        Schema::new()
            .model::<Store>()
            .create(&db.pool)
            .await
            .unwrap();
    }
}

async fn race<DB: TestBackend>(db: &TestDb<DB>, chunked: bool) {
    let mut tasks = Vec::new();
    for task in 0..8usize {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            // Each caller its own order over 30 shared names.
            let names: Vec<String> = (0..30)
                .map(|k| format!("S{}", (k * 7 + task * 11) % 30))
                .collect();
            let rows: Vec<Store> = names
                .iter()
                .map(|n| store(n, &format!("t{task}")))
                .collect();
            let bulk = if chunked {
                BulkInsert::<Store>::new().batch_size(7).commit_each_chunk()
            } else {
                BulkInsert::<Store>::new()
            };
            let report = bulk.get_or_create::<StoreByName>().run(&pool, rows).await;
            (names, report)
        }));
    }
    let mut seen: HashMap<String, i64> = HashMap::new();
    for task in tasks {
        let (names, report) = task.await.unwrap();
        let report = report.unwrap_or_else(|e| {
            let source = std::error::Error::source(&e).map(|s| format!("{s:?}"));
            panic!("{}: {e}: {source:?}", DB::DIALECT)
        });
        for (name, pk) in names.iter().zip(report.primary_keys().unwrap()) {
            let pk = pk.expect("every row has its key's id");
            let earlier = *seen.entry(name.clone()).or_insert(pk);
            assert_eq!(earlier, pk, "{}: {name} resolved to two ids", DB::DIALECT);
        }
    }
    assert_eq!(DB::count(&db.pool, "stores").await, 30, "{}", DB::DIALECT);
    for (name, pk) in seen {
        let stored = Store::by_name(name.as_str())
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.id, pk, "{}: {name}", DB::DIALECT);
    }
}

backend_tests!(
    every_row_gets_its_key_s_primary_key,
    concurrent_callers_agree_on_every_id,
);
