//! `#[model(precision = p, scale = s)]`: `NUMERIC(p, s)` / `DECIMAL(p, s)` in the DDL, exact round
//! trips at the limits on every backend (SQLite keeps its exact text storage), and a value that
//! does not fit refused before any statement, naming the field, instead of the servers' silent
//! rounding.

use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{BulkInsert, Column, Dialect, Error, Model, Schema};
use rust_decimal::Decimal;

/// A newtype over a decimal takes a precision too.
#[derive(Column, Debug, Clone, Copy, PartialEq)]
struct Rate(Decimal);

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "prices")]
struct Price {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 20)]
    sku: String,
    #[model(precision = 10, scale = 2)]
    amount: Decimal,
    #[model(precision = 4, scale = 4)]
    rate: Option<Rate>,
    #[model(precision = 5)]
    units: Option<Decimal>,
    /// No size: the backend's widest exact decimal, as before.
    free: Option<Decimal>,
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn price(sku: &str, amount: &str) -> Price {
    Price {
        id: 0,
        sku: sku.into(),
        amount: d(amount),
        rate: None,
        units: None,
        free: None,
    }
}

async fn sized_decimals_round_trip_at_their_limits<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Price>()
        .create(&db.pool)
        .await
        .unwrap();
    let rows = [
        Price {
            rate: Some(Rate(d("0.9999"))),
            units: Some(d("99999")),
            free: Some(d("-12345678901234567890.123456789")),
            ..price("max", "99999999.99")
        },
        Price {
            rate: Some(Rate(d("-0.0001"))),
            units: Some(d("-99999")),
            ..price("min", "-99999999.99")
        },
        // Trailing zeros past the scale are no digits: 1.5000 is 1.5.
        Price {
            rate: Some(Rate(d("0.5000"))),
            ..price("trailing", "1.5000")
        },
        price("zero", "0"),
        price("cent", "0.01"),
    ];
    // The sized types read back from the catalog are what the model declares.
    let plan = Schema::new().model::<Price>().diff(&db.pool).await.unwrap();
    assert!(plan.is_empty() && plan.columns.is_empty(), "{plan}");
    for original in rows {
        let stored = original.insert(&db.pool).await.unwrap();
        let read = Price::by_sku(original.sku.clone())
            .get(&db.pool)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, stored, "{} on {}", original.sku, DB::DIALECT);
        // Equal as decimals, and the same digits once trailing zeros are dropped (the servers
        // return the column's scale: 1.50).
        let digits = |p: &Price| {
            [Some(p.amount), p.rate.map(|r| r.0), p.units, p.free]
                .map(|v| v.map(|v| v.normalize().to_string()))
        };
        assert_eq!(
            digits(&read),
            digits(&original),
            "{} on {}",
            original.sku,
            DB::DIALECT
        );
    }
}

/// Refused with `InvalidValue` on `field`, the reason saying on which side of the point.
fn assert_refused(result: Result<Price, Error>, field: &str, case: &str) {
    let side = if case.contains("after") {
        "after the point"
    } else {
        "before the point"
    };
    match result {
        Err(Error::InvalidValue {
            model: "Price",
            field: f,
            reason,
            ..
        }) if f == field => assert!(reason.contains(side), "{case}: {reason}"),
        other => panic!("{case}: expected InvalidValue on {field}, got {other:?}"),
    }
}

async fn values_that_do_not_fit_are_refused_before_any_statement<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Price>()
        .create(&db.pool)
        .await
        .unwrap();
    let stored = price("stored", "1").insert(&db.pool).await.unwrap();
    // (case, the row, the field that does not fit)
    let cases = [
        (
            "a digit too many before the point",
            price("a", "100000000"),
            "amount",
        ),
        (
            "negative, a digit too many before the point",
            price("b", "-123456789.5"),
            "amount",
        ),
        (
            "a digit too many after the point",
            price("c", "0.001"),
            "amount",
        ),
        (
            "a digit after the point that would round up",
            price("d", "99999999.995"),
            "amount",
        ),
        (
            "a rate with a digit before the point",
            Price {
                rate: Some(Rate(d("1.0"))),
                ..price("e", "1")
            },
            "rate",
        ),
        (
            "a rate with five digits after the point",
            Price {
                rate: Some(Rate(d("0.00001"))),
                ..price("f", "1")
            },
            "rate",
        ),
        (
            "units with a digit after the point",
            Price {
                units: Some(d("1.5")),
                ..price("g", "1")
            },
            "units",
        ),
    ];
    for (case, row, field) in cases {
        let before = DB::count(&db.pool, "prices").await;
        assert_refused(row.insert(&db.pool).await, field, case);
        let edited = Price {
            id: stored.id,
            sku: stored.sku.clone(),
            ..row.clone()
        };
        assert_refused(edited.update(&db.pool).await, field, case);
        assert_refused(
            Price::get_or_create_by_sku(&db.pool, &row)
                .await
                .map(|(r, _)| r),
            field,
            case,
        );
        assert_refused(
            Price::update_or_create_by_sku(
                &db.pool,
                &edited,
                &[PriceField::Amount, PriceField::Rate, PriceField::Units],
            )
            .await
            .map(|(r, _)| r),
            field,
            case,
        );
        match BulkInsert::<Price>::new()
            .run(&db.pool, vec![price("ok", "1"), row.clone()])
            .await
        {
            Err(Error::Bulk {
                row: Some(1),
                source,
                ..
            }) => assert_refused(Err(*source), field, case),
            other => panic!("{case}: bulk gave {other:?}"),
        }
        assert_eq!(DB::count(&db.pool, "prices").await, before, "{case}");
        assert_eq!(
            Price::by_id(stored.id)
                .get(&db.pool)
                .await
                .unwrap()
                .as_ref(),
            Some(&stored),
            "{case}: unchanged"
        );
    }
}

/// Why the check is there: given the same value directly, PostgreSQL and MariaDB round it away
/// without an error.
async fn the_servers_alone_would_round<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Price>()
        .create(&db.pool)
        .await
        .unwrap();
    DB::run(
        &db.pool,
        "INSERT INTO prices (sku, amount) VALUES ('raw', 1.005)",
    )
    .await;
    let read = Price::by_sku("raw").get(&db.pool).await.unwrap().unwrap();
    let expected = if DB::DIALECT == Dialect::Sqlite {
        // SQLite's text column keeps what it is given.
        d("1.005")
    } else {
        d("1.01")
    };
    assert_eq!(read.amount, expected, "on {}", DB::DIALECT);
}

mod narrow {
    use model_runtime::Model;
    use rust_decimal::Decimal;

    /// The same table with `amount` narrower on both sides of the point, and `free` sized.
    #[derive(Model, Debug, Clone, PartialEq)]
    #[model(table = "prices")]
    pub struct Price {
        #[model(primary_key, auto_increment)]
        pub id: i64,
        #[unique]
        #[model(max_length = 20)]
        pub sku: String,
        #[model(precision = 6, scale = 1)]
        pub amount: Decimal,
        #[model(precision = 4, scale = 4)]
        pub rate: Option<Decimal>,
        #[model(precision = 5)]
        pub units: Option<Decimal>,
        #[model(precision = 8, scale = 2)]
        pub free: Option<Decimal>,
    }
}

/// A live decimal column narrower than the model's is reported: values the model's check lets
/// through would be rounded or refused there.
async fn the_diff_reports_a_narrower_decimal<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<narrow::Price>()
        .create(&db.pool)
        .await
        .unwrap();
    let plan = Schema::new().model::<Price>().diff(&db.pool).await.unwrap();
    let mut reported: Vec<&str> = plan.columns.iter().map(|c| c.column.as_str()).collect();
    reported.sort_unstable();
    assert_eq!(reported, ["amount", "free"], "{}: {plan}", DB::DIALECT);
    // The other way round nothing is narrower than the model.
    Schema::new()
        .model::<narrow::Price>()
        .drop(&db.pool)
        .await
        .unwrap();
    Schema::new()
        .model::<Price>()
        .create(&db.pool)
        .await
        .unwrap();
    let plan = Schema::new()
        .model::<narrow::Price>()
        .diff(&db.pool)
        .await
        .unwrap();
    assert!(plan.columns.is_empty(), "{}: {plan}", DB::DIALECT);
}

backend_tests!(
    sized_decimals_round_trip_at_their_limits,
    values_that_do_not_fit_are_refused_before_any_statement,
    the_servers_alone_would_round,
    the_diff_reports_a_narrower_decimal,
);

#[test]
fn the_ddl_declares_the_size() {
    let schema = Schema::new().model::<Price>();
    for (dialect, amount, rate, units, free) in [
        (
            Dialect::Postgres,
            r#""amount" numeric(10, 2) NOT NULL"#,
            r#""rate" numeric(4, 4) NULL"#,
            r#""units" numeric(5, 0) NULL"#,
            r#""free" numeric NULL"#,
        ),
        (
            Dialect::MySql,
            "`amount` decimal(10, 2) NOT NULL",
            "`rate` decimal(4, 4) NULL",
            "`units` decimal(5, 0) NULL",
            "`free` decimal(65, 30) NULL",
        ),
        (
            Dialect::Sqlite,
            r#""amount" decimal_text(10, 2) NOT NULL"#,
            r#""rate" decimal_text(4, 4) NULL"#,
            r#""units" decimal_text(5, 0) NULL"#,
            r#""free" decimal_text NULL"#,
        ),
    ] {
        let sql = &schema.sql(dialect).unwrap()[0];
        for column in [amount, rate, units, free] {
            assert!(sql.contains(column), "{column} in {sql}");
        }
    }
    let amount = &Price::META.columns[2];
    assert_eq!(
        amount.decimal,
        Some(model_runtime::DecimalPrecision {
            precision: 10,
            scale: 2
        })
    );
    assert_eq!(Price::META.columns[5].decimal, None);
}
