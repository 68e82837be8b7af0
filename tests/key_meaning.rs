//! A unique key means the same on every backend: string keys compare exactly (byte-equal, case,
//! accents and trailing spaces significant), and `max_length` counts characters and is enforced
//! everywhere, SQLite included.

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::{BulkInsert, Error, IntegrityKind, Model, Outcome, Schema};

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "products")]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 10)]
    sku: String,
    #[model(max_length = 10)]
    name: String,
}

fn product(sku: &str) -> Product {
    Product {
        id: 0,
        sku: sku.into(),
        name: "n".into(),
    }
}

async fn string_keys_compare_exactly<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    let (abc, outcome) = Product::get_or_create_by_sku(&db.pool, &product("ABC"))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    for variant in ["abc", "ABC ", " ABC", "ÀBC", "ABC\t"] {
        let (row, outcome) = Product::get_or_create_by_sku(&db.pool, &product(variant))
            .await
            .unwrap();
        assert_eq!(
            (outcome, row.sku.as_str()),
            (Outcome::Created, variant),
            "{}: {variant:?} is another key than \"ABC\"",
            DB::DIALECT
        );
    }
    let (again, outcome) = Product::get_or_create_by_sku(&db.pool, &product("ABC"))
        .await
        .unwrap();
    assert_eq!((outcome, again.id), (Outcome::Found, abc.id));

    // The bulk insert's own dedupe and the database agree: five keys, five rows, no error.
    let report = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .run(
            &db.pool,
            ["x", "X", "x ", "é", "e", "x"].map(product).to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(
        (report.inserted, report.skipped_in_input),
        (5, 1),
        "{}",
        DB::DIALECT
    );
    assert_eq!(DB::count(&db.pool, "products").await, 6 + 5);
}

async fn max_length_counts_characters_everywhere<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Product>()
        .create(&db.pool)
        .await
        .unwrap();
    // Ten characters, 37 bytes: fits.
    let fits = "😀😀😀😀😀😀😀😀😀é";
    assert_eq!(fits.chars().count(), 10);
    let stored = product(fits).insert(&db.pool).await.unwrap();
    assert_eq!(stored.sku, fits);
    // Eleven characters: refused on every backend, as a typed error.
    for (sku, name) in [("ABCDEFGHIJK", "n"), ("A", "ABCDEFGHIJK")] {
        let error = Product {
            id: 0,
            sku: sku.into(),
            name: name.into(),
        }
        .insert(&db.pool)
        .await
        .unwrap_err();
        assert!(
            matches!(
                error,
                Error::Integrity {
                    kind: IntegrityKind::ValueTooLong,
                    ..
                }
            ),
            "{}: {error:?}",
            DB::DIALECT
        );
    }
    assert_eq!(DB::count(&db.pool, "products").await, 1);
}

backend_tests!(
    string_keys_compare_exactly,
    max_length_counts_characters_everywhere
);
