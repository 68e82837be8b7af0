//! An in-memory SQLite database lives as long as its one connection: a call cut off part-way must
//! never make the pool close that connection, or every table is gone. Calls of each kind (reads,
//! inserts, get_or_create, update_or_create with an increment, bulk) are cut off after random
//! delays, on a pool of one `sqlite::memory:` connection.
//!
//! The pool does not test connections before handing them out: sqlx's own `acquire`, cut off while
//! it pings the idle connection (`test_before_acquire`, on by default), drops that connection and
//! with it the database, whatever runs next (seen here: a loop of bare `pool.acquire()` cut off at
//! random lost the table within a few hundred rounds). The README says so.

use std::time::Duration;

use model_runtime::Key;
use model_runtime::{BulkInsert, Changes, Model, Schema, update_or_create};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "counters")]
struct Counter {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    name: String,
    hits: i64,
}

fn counter(n: u64) -> Counter {
    Counter {
        id: 0,
        name: format!("c{n}"),
        hits: 1,
    }
}

#[tokio::test]
async fn cut_off_calls_keep_the_in_memory_database() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    Schema::new()
        .model::<Counter>()
        .create(&pool)
        .await
        .unwrap();
    let mut rng = model_integration::Rng(0xc0ffee);
    let (mut finished, mut cut) = (0, 0);
    for round in 0..400u64 {
        let kind = rng.below(5);
        let key = rng.below(8);
        let delay = Duration::from_micros(rng.below(300));
        let row = counter(key);
        let call = async {
            match kind {
                0 => Counter::by_name(row.name.as_str())
                    .get(&pool)
                    .await
                    .map(|_| ()),
                1 => Counter::get_or_create_by_name(&pool, &row)
                    .await
                    .map(|_| ()),
                2 => update_or_create::<CounterByName>(
                    &pool,
                    &row,
                    Changes::new(&row, &[]).increment(Counter::FIELDS.hits),
                )
                .await
                .map(|_| ()),
                3 => model_runtime::insert(&pool, &counter(1000 + round))
                    .await
                    .map(|_| ()),
                _ => BulkInsert::<Counter>::new()
                    .update_conflicts::<CounterByName>(&[])
                    .increment(Counter::FIELDS.hits)
                    .run(&pool, (0..4).map(|k| counter((key + k) % 8)))
                    .await
                    .map(|_| ()),
            }
        };
        match tokio::time::timeout(delay, call).await {
            Ok(result) => {
                result.unwrap_or_else(|e| panic!("round {round}, call {kind}: {e:?}"));
                finished += 1;
            }
            Err(_) => cut += 1,
        }
    }
    // The database is still there, with the rows the finished calls wrote.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM counters")
        .fetch_one(&pool)
        .await
        .expect("the in-memory database survived every cut-off call");
    assert!(count > 0);
    model_integration::report(&format!(
        "SQLite in memory: {finished} calls finished, {cut} cut off, {count} rows"
    ));
    assert!(
        finished > 0 && cut > 0,
        "{finished} finished, {cut} cut off"
    );
}
