//! The constraint half of migrations on every backend, on tables with data: the guide's Solution 6
//! (a product name unique globally becomes unique per store) and back, with the duplicate groups
//! that block it; a rename; the SQL rendered for a migration file giving the same catalog as
//! `apply`; and MariaDB's step-by-step apply reporting what it applied before a failure.

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::migrate::{self, Keep, Step};
use model_runtime::{Dialect, Error, Model, Schema};

mod v1 {
    use model_runtime::Model;
    /// Product names unique across all stores.
    #[derive(Model, Debug, Clone)]
    #[model(table = "products")]
    pub struct Product {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[unique]
        #[model(max_length = 100)]
        pub product_name: String,
        pub store_id: i64,
    }
}

mod v2 {
    use model_runtime::Model;
    /// Product names unique per store.
    #[derive(Model, Debug, Clone)]
    #[model(table = "products")]
    #[unique_together(product_name, store_id, name = "unique_product_per_store")]
    pub struct Product {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[model(max_length = 100)]
        pub product_name: String,
        pub store_id: i64,
    }
}

mod v3 {
    use model_runtime::Model;
    /// v2's constraint under another name.
    #[derive(Model, Debug, Clone)]
    #[model(table = "products")]
    #[unique_together(product_name, store_id, name = "products_name_store_key")]
    pub struct Product {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[model(max_length = 100)]
        pub product_name: String,
        pub store_id: i64,
    }
}

mod gadgets {
    use model_runtime::Model;
    /// Before: no unique constraint.
    #[derive(Model, Debug, Clone)]
    #[model(table = "gadgets")]
    pub struct Loose {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        pub code: Option<i64>,
    }
    /// After: `code` unique; NULLs never collide.
    #[derive(Model, Debug, Clone)]
    #[model(table = "gadgets")]
    pub struct Unique {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[unique]
        pub code: Option<i64>,
    }
}

mod child {
    use model_runtime::Model;
    /// Rows that reference `products` (v1 and v2 share the table).
    #[derive(Model, Debug, Clone)]
    #[model(table = "offers")]
    pub struct Offer {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[model(references = super::v2::Product)]
        pub product_id: i64,
    }
}

mod every_type {
    use model_runtime::Model;
    /// Every column type, some of them keys.
    #[derive(Model, Debug, Clone)]
    #[model(table = "every_type")]
    #[unique_together(small, short_text, name = "every_type_pair_key")]
    pub struct EveryType {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        pub small: i16,
        pub int: i32,
        #[unique]
        pub big: i64,
        pub float: f32,
        pub double: f64,
        pub flag: bool,
        pub text: String,
        #[model(max_length = 20)]
        pub short_text: String,
        pub bytes: Vec<u8>,
        pub decimal: rust_decimal::Decimal,
        pub date: chrono::NaiveDate,
        pub time: chrono::NaiveTime,
        pub datetime: chrono::NaiveDateTime,
        pub timestamp: chrono::DateTime<chrono::Utc>,
        #[unique]
        pub uuid: uuid::Uuid,
        pub json: serde_json::Value,
        pub maybe_int: Option<i32>,
        pub maybe_text: Option<String>,
    }

    /// The same table with `int` as text: drift the diff must report.
    #[derive(Model, Debug, Clone)]
    #[model(table = "drifted")]
    pub struct Drifted {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        pub int: i32,
        #[model(max_length = 20)]
        pub name: String,
    }
}

async fn live_uniques<DB: TestBackend>(db: &TestDb<DB>) -> Vec<(String, Vec<String>)> {
    let mut conn = db.pool.acquire().await.unwrap();
    let table = migrate::inspect::<DB>(&mut conn, "products")
        .await
        .unwrap()
        .expect("the table exists");
    table
        .uniques
        .into_iter()
        .map(|u| (u.name, u.columns))
        .collect()
}

fn names(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| c.to_string()).collect()
}

async fn insert_v2<DB: TestBackend>(db: &TestDb<DB>, rows: &[(&str, i64)]) {
    for (name, store) in rows {
        v2::Product {
            id: 0,
            product_name: name.to_string(),
            store_id: *store,
        }
        .insert(&db.pool)
        .await
        .unwrap();
    }
}

/// Solution 6 and back: unique globally → per store (nothing blocks), then per store → globally
/// with the same name in two stores (blocked until resolved).
async fn a_constraint_changes_on_a_table_with_data<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<v1::Product>()
        .create(&db.pool)
        .await
        .unwrap();
    insert_v2(&db, &[("Pixel", 1), ("iPhone", 1), ("Galaxy", 2)]).await;

    let plan = Schema::new()
        .model::<v2::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    model_integration::report(&format!("{} plan v1 -> v2:\n{plan}", DB::DIALECT));
    assert!(!plan.is_empty());
    assert!(plan.duplicates(&db.pool, 10).await.unwrap().is_empty());
    plan.apply(&db.pool).await.unwrap();
    assert_eq!(
        live_uniques(&db).await,
        vec![(
            "unique_product_per_store".to_owned(),
            names(&["product_name", "store_id"])
        )]
    );
    // What was a duplicate is allowed now, and the new constraint holds.
    insert_v2(&db, &[("Pixel", 2), ("Pixel", 3), (" Pixel", 1)]).await;
    let dup = v2::Product {
        id: 0,
        product_name: "Pixel".into(),
        store_id: 1,
    }
    .insert(&db.pool)
    .await
    .unwrap_err();
    let violation = dup.unique_violation().expect("a typed duplicate");
    assert!(
        violation.is::<v2::ProductByProductNameAndStoreId>(),
        "{violation}"
    );
    assert!(
        Schema::new()
            .model::<v2::Product>()
            .diff(&db.pool)
            .await
            .unwrap()
            .is_empty(),
        "applied: nothing left to do"
    );

    // Back to unique globally: "Pixel" is in stores 1, 2 and 3.
    let back = Schema::new()
        .model::<v1::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    let groups = back.duplicates(&db.pool, 10).await.unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].values, ["Pixel"]);
    assert_eq!(groups[0].count, 3);
    assert_eq!(groups[0].primary_keys.len(), 3);
    let error = back.apply(&db.pool).await.unwrap_err();
    assert!(
        matches!(&error, Error::Migration { applied, .. } if applied.is_empty()),
        "{error:?}"
    );
    assert!(error.to_string().contains("resolve them"), "{error}");
    assert_eq!(DB::count(&db.pool, "products").await, 6, "nothing changed");

    let deleted = back
        .resolve_duplicates(&db.pool, Keep::LowestPrimaryKey)
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    let mut expected = groups[0].primary_keys[1..].to_vec();
    expected.sort();
    let mut got = deleted[0].primary_keys.clone();
    got.sort();
    assert_eq!(got, expected, "every row of the group but the lowest key");
    back.apply(&db.pool).await.unwrap();
    assert_eq!(
        live_uniques(&db).await,
        vec![(
            "products_product_name_key".to_owned(),
            names(&["product_name"])
        )]
    );
    assert_eq!(DB::count(&db.pool, "products").await, 4);
}

/// Same columns under another name: a rename, with the rows kept.
async fn a_constraint_is_renamed<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<v2::Product>()
        .create(&db.pool)
        .await
        .unwrap();
    insert_v2(&db, &[("Pixel", 1), ("Pixel", 2)]).await;
    let plan = Schema::new()
        .model::<v3::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    assert_eq!(plan.steps.len(), 1, "{plan}");
    match (&plan.steps[0], DB::DIALECT) {
        (Step::RenameUnique { to, .. }, Dialect::Postgres | Dialect::MySql) => {
            assert_eq!(to, "products_name_store_key")
        }
        (Step::RebuildTable { adds, .. }, Dialect::Sqlite) => {
            assert!(adds.is_empty());
            // Rendered for the other backends, the rebuild is the rename it stands for.
            let pg = plan.sql_for(Dialect::Postgres).unwrap();
            assert_eq!(
                pg.up,
                [
                    r#"ALTER TABLE "products" RENAME CONSTRAINT "unique_product_per_store" TO "products_name_store_key""#
                ]
            );
            let my = plan.sql_for(Dialect::MySql).unwrap();
            assert_eq!(
                my.up,
                [
                    "ALTER TABLE `products` RENAME INDEX `unique_product_per_store` TO `products_name_store_key`"
                ]
            );
        }
        (step, dialect) => panic!("{dialect}: {step:?}"),
    }
    plan.apply(&db.pool).await.unwrap();
    assert_eq!(
        live_uniques(&db).await,
        vec![(
            "products_name_store_key".to_owned(),
            names(&["product_name", "store_id"])
        )]
    );
    assert_eq!(DB::count(&db.pool, "products").await, 2);
    assert!(
        Schema::new()
            .model::<v3::Product>()
            .diff(&db.pool)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The SQL of a plan, run by hand, gives the catalog `apply` gives; its `down` gives back the
/// catalog before.
async fn the_rendered_sql_matches_apply<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<v2::Product>()
        .create(&db.pool)
        .await
        .unwrap();
    let before = live_uniques(&db).await;
    let plan = Schema::new()
        .model::<v3::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    let migration = plan.sql().unwrap();
    model_integration::report(&format!(
        "{} migration v2 -> v3:\n  up: {:?}\n  down: {:?}",
        DB::DIALECT,
        migration.up,
        migration.down
    ));
    let mut tx = db.pool.begin().await.unwrap();
    for sql in &migration.up {
        DB::execute(
            &mut tx,
            sql.clone().into(),
            model_runtime::__private::Values(vec![]),
        )
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.unwrap();
    let by_hand = live_uniques(&db).await;
    assert_eq!(
        by_hand,
        vec![(
            "products_name_store_key".to_owned(),
            names(&["product_name", "store_id"])
        )]
    );
    if DB::DIALECT != Dialect::Sqlite {
        for sql in &migration.down {
            DB::run(&db.pool, sql).await;
        }
        assert_eq!(live_uniques(&db).await, before);
    }
    Schema::new()
        .model::<v3::Product>()
        .drop(&db.pool)
        .await
        .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    assert!(
        migrate::inspect::<DB>(&mut conn, "products")
            .await
            .unwrap()
            .is_none()
    );
}

/// The pre-check follows the constraint's NULL semantics: rows with a NULL in the key never block
/// it; every group of equal non-NULL keys does, with its count and keys; resolving keeps the row
/// asked for.
async fn nulls_never_block_a_new_constraint<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<gadgets::Loose>()
        .create(&db.pool)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for code in [
        None,
        Some(1),
        None,
        Some(1),
        Some(2),
        None,
        Some(3),
        Some(3),
        Some(3),
    ] {
        let row = gadgets::Loose { id: 0, code }
            .insert(&db.pool)
            .await
            .unwrap();
        ids.push((code, row.id));
    }
    let plan = Schema::new()
        .model::<gadgets::Unique>()
        .diff(&db.pool)
        .await
        .unwrap();
    let groups = plan.duplicates(&db.pool, 2).await.unwrap();
    let summary: Vec<(Vec<String>, u64, usize)> = groups
        .iter()
        .map(|g| (g.values.clone(), g.count, g.primary_keys.len()))
        .collect();
    assert_eq!(
        summary,
        vec![(vec!["1".to_owned()], 2, 2), (vec!["3".to_owned()], 3, 2)],
        "the NULLs form no group; the cap of 2 keys holds"
    );
    let deleted = plan
        .resolve_duplicates(&db.pool, Keep::HighestPrimaryKey)
        .await
        .unwrap();
    let highest = |code| {
        ids.iter()
            .filter(|(c, _)| *c == Some(code))
            .map(|(_, id)| *id)
            .max()
            .unwrap()
    };
    let mut expected: Vec<String> = ids
        .iter()
        .filter(|(c, id)| matches!(c, Some(1) | Some(3)) && *id != highest(c.unwrap()))
        .map(|(_, id)| id.to_string())
        .collect();
    expected.sort();
    let mut got = deleted[0].primary_keys.clone();
    got.sort();
    assert_eq!(got, expected);
    plan.apply(&db.pool).await.unwrap();
    assert_eq!(DB::count(&db.pool, "gadgets").await, 9 - 3);
    // The NULLs are all still there, and still allowed.
    gadgets::Unique { id: 0, code: None }
        .insert(&db.pool)
        .await
        .unwrap();
}

/// A table the library created matches its model column for column on every backend (no false
/// differences), and a column of another type, nullability or length is reported.
async fn column_differences_are_reported_and_only_those<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<every_type::EveryType>()
        .create(&db.pool)
        .await
        .unwrap();
    let plan = Schema::new()
        .model::<every_type::EveryType>()
        .diff(&db.pool)
        .await
        .unwrap();
    assert!(
        plan.is_empty() && plan.columns.is_empty(),
        "{}: {plan}",
        DB::DIALECT
    );

    // `int` is text and nullable, `name` is longer than the model says.
    DB::run(
        &db.pool,
        &"CREATE TABLE drifted (id bigint NOT NULL PRIMARY KEY, \"int\" varchar(30), name varchar(30) NOT NULL)"
            .replace('"', if DB::DIALECT == Dialect::MySql { "`" } else { "\"" }),
    )
    .await;
    let plan = Schema::new()
        .model::<every_type::Drifted>()
        .diff(&db.pool)
        .await
        .unwrap();
    let mut found: Vec<(String, bool)> = plan
        .columns
        .iter()
        .map(|d| (d.column.clone(), d.what.contains("NULL")))
        .collect();
    found.sort();
    model_integration::report(&format!("{} drift:\n{plan}", DB::DIALECT));
    assert_eq!(
        found,
        vec![
            ("int".to_owned(), false),  // its type
            ("int".to_owned(), true),   // its nullability
            ("name".to_owned(), false)  // its length
        ],
        "{}: {plan}",
        DB::DIALECT
    );
}

/// A unique index made by hand (`CREATE UNIQUE INDEX`, no constraint) is a constraint no model
/// declares: the diff sees it, and applying drops it.
async fn a_hand_made_unique_index_is_seen_and_dropped<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<v2::Product>()
        .create(&db.pool)
        .await
        .unwrap();
    DB::run(
        &db.pool,
        "CREATE UNIQUE INDEX products_store_by_hand ON products (store_id)",
    )
    .await;
    let plan = Schema::new()
        .model::<v2::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    assert!(
        matches!(
            plan.steps.as_slice(),
            [Step::DropUnique { unique, .. }] if unique.name == "products_store_by_hand"
        ),
        "{}: {plan}",
        DB::DIALECT
    );
    plan.apply(&db.pool).await.unwrap();
    assert_eq!(
        live_uniques(&db).await,
        vec![(
            "unique_product_per_store".to_owned(),
            names(&["product_name", "store_id"])
        )]
    );
    // Two products of one store are allowed again.
    insert_v2(&db, &[("a", 1), ("b", 1)]).await;
}

/// Changing a constraint of a table that other rows reference keeps those rows, and keeps the
/// primary key counter (SQLite rebuilds the table for it, with foreign keys off around the
/// transaction and checked before the commit, and the AUTOINCREMENT counter carried over); a table
/// with a column the model lacks is not rebuilt on SQLite (its data would be lost).
async fn changing_a_referenced_table_keeps_its_children<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<v1::Product>()
        .create(&db.pool)
        .await
        .unwrap();
    Schema::new()
        .model::<child::Offer>()
        .if_not_exists(true)
        .create(&db.pool)
        .await
        .unwrap();
    insert_v2(&db, &[("a", 1), ("b", 1), ("c", 1)]).await;
    // The highest id goes: a new row must not get it again.
    DB::run(&db.pool, "DELETE FROM products WHERE product_name = 'c'").await;
    for product_id in [1, 2, 2] {
        child::Offer { id: 0, product_id }
            .insert(&db.pool)
            .await
            .unwrap();
    }
    let plan = Schema::new()
        .model::<v2::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    plan.apply(&db.pool).await.unwrap();
    assert_eq!(
        DB::count(&db.pool, "offers").await,
        3,
        "{}: children kept",
        DB::DIALECT
    );
    assert_eq!(DB::count(&db.pool, "products").await, 2);
    let new = v2::Product {
        id: 0,
        product_name: "d".into(),
        store_id: 1,
    }
    .insert(&db.pool)
    .await
    .unwrap();
    assert!(new.id > 3, "{}: id {} reused", DB::DIALECT, new.id);
    // Foreign keys are enforced again afterwards.
    assert!(
        child::Offer {
            id: 0,
            product_id: 999
        }
        .insert(&db.pool)
        .await
        .is_err()
    );

    // A column the model does not have: SQLite refuses to rebuild, the others change the
    // constraint and leave the column alone.
    DB::run(&db.pool, "ALTER TABLE products ADD COLUMN note varchar(10)").await;
    let plan = Schema::new()
        .model::<v1::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    let result = plan.apply(&db.pool).await;
    if DB::DIALECT == Dialect::Sqlite {
        let error = result.unwrap_err();
        assert!(error.to_string().contains("note would be lost"), "{error}");
        assert_eq!(
            live_uniques(&db).await,
            vec![(
                "unique_product_per_store".to_owned(),
                names(&["product_name", "store_id"])
            )],
            "nothing changed"
        );
    } else {
        result.unwrap();
        assert_eq!(
            live_uniques(&db).await,
            vec![(
                "products_product_name_key".to_owned(),
                names(&["product_name"])
            )]
        );
    }
}

backend_tests!(
    changing_a_referenced_table_keeps_its_children,
    a_hand_made_unique_index_is_seen_and_dropped,
    column_differences_are_reported_and_only_those,
    nulls_never_block_a_new_constraint,
    a_constraint_changes_on_a_table_with_data,
    a_constraint_is_renamed,
    the_rendered_sql_matches_apply,
);

/// MariaDB applies a plan one step at a time: a failing step reports the steps applied before it.
async fn a_failed_step_reports_what_was_applied(db: TestDb<sqlx::MySql>) {
    Schema::new()
        .model::<v1::Product>()
        .create(&db.pool)
        .await
        .unwrap();
    let mut plan = Schema::new()
        .model::<v2::Product>()
        .diff(&db.pool)
        .await
        .unwrap();
    // A step that cannot succeed after the real ones: a second constraint of the same name.
    plan.steps.push(Step::AddUnique {
        table: "products".into(),
        name: "unique_product_per_store".into(),
        columns: vec!["store_id".into()],
    });
    let error = plan.apply(&db.pool).await.unwrap_err();
    let Error::Migration {
        applied, failed, ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(applied.len(), 2, "{error}");
    assert!(failed.contains("(store_id)"), "{failed}");
    assert_eq!(
        live_uniques(&db).await,
        vec![(
            "unique_product_per_store".to_owned(),
            names(&["product_name", "store_id"])
        )],
        "the applied steps are in the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    skip_mysql,
    ignore = "MariaDB/MySQL: set TEST_MYSQL_URL (e.g. mysql://root@127.0.0.1:3306/test) to run"
)]
async fn mysql_a_failed_step_reports_what_was_applied() {
    model_integration::run_scenario::<sqlx::MySql, _>(
        concat!(
            module_path!(),
            "::mysql_a_failed_step_reports_what_was_applied"
        ),
        Default::default(),
        a_failed_step_reports_what_was_applied,
    )
    .await;
}
