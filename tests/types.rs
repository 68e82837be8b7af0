//! Every supported column type round-trips exactly on every backend, NOT NULL and nullable.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{Model, Schema};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "every_type")]
struct EveryType {
    #[model(primary_key, auto_increment)]
    id: i64,
    small: i16,
    int: i32,
    big: i64,
    float: f32,
    double: f64,
    flag: bool,
    text: String,
    #[model(max_length = 20)]
    short_text: String,
    bytes: Vec<u8>,
    decimal: Decimal,
    date: NaiveDate,
    time: NaiveTime,
    datetime: NaiveDateTime,
    timestamp: DateTime<Utc>,
    uuid: Uuid,
    json: serde_json::Value,
    maybe_int: Option<i32>,
    maybe_text: Option<String>,
    maybe_decimal: Option<Decimal>,
    maybe_timestamp: Option<DateTime<Utc>>,
    maybe_uuid: Option<Uuid>,
    maybe_json: Option<serde_json::Value>,
    maybe_bytes: Option<Vec<u8>>,
}

fn extremes() -> EveryType {
    let datetime = NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_micro_opt(23, 59, 58, 123_456)
        .unwrap();
    EveryType {
        id: 0,
        small: i16::MIN,
        int: i32::MAX,
        big: i64::MIN + 1,
        float: 1.5e-7,
        double: std::f64::consts::PI,
        flag: true,
        text: "naïve café — \"quoted\", 'single', back\\slash, 日本語 🦀".repeat(50),
        short_text: "exactly twenty chars".into(),
        bytes: (0..=255).collect(),
        decimal: "-12345678901234567890.123456789".parse().unwrap(),
        date: NaiveDate::from_ymd_opt(1999, 12, 31).unwrap(),
        time: NaiveTime::from_hms_micro_opt(13, 14, 15, 999_999).unwrap(),
        datetime,
        timestamp: datetime.and_utc(),
        uuid: Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
        json: json!({"a": [1, 2.5, null, "x"], "b": {"nested": true}}),
        maybe_int: Some(-1),
        maybe_text: Some(String::new()),
        maybe_decimal: Some("0.000000000000000000000000001".parse().unwrap()),
        maybe_timestamp: Some(DateTime::from_timestamp(0, 1_000).unwrap()),
        maybe_uuid: Some(Uuid::nil()),
        maybe_json: Some(json!("just a string")),
        maybe_bytes: Some(Vec::new()),
    }
}

fn nulls() -> EveryType {
    EveryType {
        maybe_int: None,
        maybe_text: None,
        maybe_decimal: None,
        maybe_timestamp: None,
        maybe_uuid: None,
        maybe_json: None,
        maybe_bytes: None,
        decimal: Decimal::new(150, 2), // 1.50
        ..extremes()
    }
}

async fn every_type_round_trips_exactly<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<EveryType>()
        .create(&db.pool)
        .await
        .unwrap();
    for original in [extremes(), nulls()] {
        let stored = original.insert(&db.pool).await.unwrap();
        assert!(stored.id > 0);
        let expected = EveryType {
            id: stored.id,
            ..original
        };
        assert_eq!(
            stored,
            expected,
            "as returned by the insert on {}",
            DB::DIALECT
        );
        let read = EveryType::by_id(stored.id).get(&db.pool).await.unwrap();
        assert_eq!(
            read.as_ref(),
            Some(&expected),
            "as read back on {}",
            DB::DIALECT
        );
        // Decimal equality ignores trailing zeros; the digits must survive too.
        let read = read.unwrap();
        assert_eq!(
            read.decimal.normalize().to_string(),
            expected.decimal.normalize().to_string()
        );
    }
}

/// Every column type through bulk update mode: stored rows rewritten with every field listed, the
/// NULLs first and the extremes after, and the reverse, so that nothing depends on which row of
/// a statement comes first (MariaDB types a derived table's columns by all its rows, a `VALUES`
/// list's by its first). Each row reads back exactly, and a second identical import reports every
/// row unchanged.
async fn every_type_round_trips_through_bulk_update<DB: TestBackend>(db: TestDb<DB>) {
    use model_runtime::BulkInsert;
    Schema::new()
        .model::<EveryType>()
        .create(&db.pool)
        .await
        .unwrap();
    // Four stored rows whose every value differs from what is written over them.
    let mut ids = Vec::new();
    for _ in 0..4 {
        let placeholder = EveryType {
            small: 0,
            int: 0,
            big: 0,
            float: 0.0,
            double: 0.0,
            flag: false,
            text: "x".into(),
            short_text: "x".into(),
            bytes: vec![1],
            decimal: Decimal::new(1, 0),
            maybe_int: Some(7),
            maybe_text: Some("x".into()),
            maybe_decimal: Some(Decimal::new(7, 0)),
            maybe_timestamp: None,
            maybe_uuid: None,
            maybe_json: None,
            maybe_bytes: Some(vec![9]),
            date: NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
            ..nulls()
        };
        ids.push(placeholder.insert(&db.pool).await.unwrap().id);
    }
    let incoming: Vec<EveryType> = [nulls(), extremes(), extremes(), nulls()]
        .into_iter()
        .zip(&ids)
        .map(|(row, &id)| EveryType { id, ..row })
        .collect();
    let every_field = [
        EveryTypeField::Small,
        EveryTypeField::Int,
        EveryTypeField::Big,
        EveryTypeField::Float,
        EveryTypeField::Double,
        EveryTypeField::Flag,
        EveryTypeField::Text,
        EveryTypeField::ShortText,
        EveryTypeField::Bytes,
        EveryTypeField::Decimal,
        EveryTypeField::Date,
        EveryTypeField::Time,
        EveryTypeField::Datetime,
        EveryTypeField::Timestamp,
        EveryTypeField::Uuid,
        EveryTypeField::Json,
        EveryTypeField::MaybeInt,
        EveryTypeField::MaybeText,
        EveryTypeField::MaybeDecimal,
        EveryTypeField::MaybeTimestamp,
        EveryTypeField::MaybeUuid,
        EveryTypeField::MaybeJson,
        EveryTypeField::MaybeBytes,
    ];
    for per_row in [false, true] {
        let bulk = BulkInsert::<EveryType>::new();
        let bulk = if per_row { bulk } else { bulk.counts_only() };
        let report = bulk
            .update_conflicts::<EveryTypeById>(&every_field)
            .run(&db.pool, incoming.clone())
            .await
            .unwrap();
        let expected_updates = if per_row { 0 } else { 4 };
        assert_eq!(
            (report.inserted, report.updated, report.unchanged),
            (0, expected_updates, 4 - expected_updates),
            "on {} (per-row report: {per_row})",
            DB::DIALECT
        );
        for row in &incoming {
            let read = EveryType::by_id(row.id).get(&db.pool).await.unwrap();
            assert_eq!(
                read.as_ref(),
                Some(row),
                "row {} on {}",
                row.id,
                DB::DIALECT
            );
        }
    }
}

backend_tests!(
    every_type_round_trips_exactly,
    every_type_round_trips_through_bulk_update
);
