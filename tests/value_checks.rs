//! Values a backend cannot store exactly are refused with `Error::InvalidValue` before anything is
//! sent, through every write path; everything else reads back as written. The per-backend table is
//! in `model-runtime/src/check.rs`, measured on the servers.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use model_integration::{TestBackend, TestDb, backend_tests};
use model_runtime::Key;
use model_runtime::{BulkInsert, Dialect, Error, Model, Outcome, Schema};
use rust_decimal::Decimal;
use serde_json::json;

#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "valued")]
struct Valued {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    #[model(max_length = 50)]
    label: String,
    date: Option<NaiveDate>,
    time: Option<NaiveTime>,
    at: Option<NaiveDateTime>,
    at_utc: Option<DateTime<Utc>>,
    doc: Option<serde_json::Value>,
    single: Option<f32>,
    amount: Option<Decimal>,
}

fn blank(label: &str) -> Valued {
    Valued {
        id: 0,
        label: label.into(),
        date: None,
        time: None,
        at: None,
        at_utc: None,
        doc: None,
        single: None,
        amount: None,
    }
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

type Refused = fn(Dialect) -> bool;

const NOWHERE: Refused = |_| false;
const SERVERS: Refused = |d| d != Dialect::Sqlite;
const POSTGRES: Refused = |d| d == Dialect::Postgres;
const MYSQL: Refused = |d| d == Dialect::MySql;

/// (case, the value in a row, the field that holds it, where it is refused)
fn cases() -> Vec<(&'static str, Valued, &'static str, Refused)> {
    let nanos = ymd(2024, 1, 1)
        .and_hms_nano_opt(1, 2, 3, 123_456_789)
        .unwrap();
    let micros = ymd(2024, 1, 1).and_hms_micro_opt(1, 2, 3, 123_456).unwrap();
    let leap = ymd(2016, 12, 31)
        .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
        .unwrap();
    vec![
        (
            "time with nanoseconds",
            Valued {
                time: Some(nanos.time()),
                ..blank("")
            },
            "time",
            SERVERS,
        ),
        (
            "time with microseconds",
            Valued {
                time: Some(micros.time()),
                ..blank("")
            },
            "time",
            NOWHERE,
        ),
        (
            "leap second time",
            Valued {
                time: Some(leap.time()),
                ..blank("")
            },
            "time",
            SERVERS,
        ),
        (
            "datetime with nanoseconds",
            Valued {
                at: Some(nanos),
                ..blank("")
            },
            "at",
            SERVERS,
        ),
        (
            "leap second datetime",
            Valued {
                at: Some(leap),
                ..blank("")
            },
            "at",
            SERVERS,
        ),
        (
            "utc with nanoseconds",
            Valued {
                at_utc: Some(nanos.and_utc()),
                ..blank("")
            },
            "at_utc",
            SERVERS,
        ),
        // MariaDB stored these as NULL while they were bound as TIMESTAMP (1970 to 2038 only).
        (
            "utc before 1970",
            Valued {
                at_utc: Some(ymd(1969, 12, 31).and_hms_opt(23, 0, 0).unwrap().and_utc()),
                ..blank("")
            },
            "at_utc",
            NOWHERE,
        ),
        (
            "utc after 2038",
            Valued {
                at_utc: Some(
                    ymd(2100, 1, 1)
                        .and_hms_micro_opt(0, 0, 0, 5)
                        .unwrap()
                        .and_utc(),
                ),
                ..blank("")
            },
            "at_utc",
            NOWHERE,
        ),
        (
            "utc in year 1000",
            Valued {
                at_utc: Some(ymd(1000, 1, 1).and_hms_opt(0, 0, 0).unwrap().and_utc()),
                ..blank("")
            },
            "at_utc",
            NOWHERE,
        ),
        (
            "utc in year 10000",
            Valued {
                at_utc: Some(ymd(10_000, 1, 1).and_hms_opt(0, 0, 0).unwrap().and_utc()),
                ..blank("")
            },
            "at_utc",
            MYSQL,
        ),
        (
            "date in year 10000",
            Valued {
                date: Some(ymd(10_000, 1, 1)),
                ..blank("")
            },
            "date",
            MYSQL,
        ),
        // A negative year made sqlx's MySQL encoder fail mid-statement and lose the connection.
        (
            "date in 2 BC",
            Valued {
                date: Some(ymd(-1, 6, 1)),
                ..blank("")
            },
            "date",
            MYSQL,
        ),
        (
            "date in year 0",
            Valued {
                date: Some(ymd(0, 1, 1)),
                ..blank("")
            },
            "date",
            NOWHERE,
        ),
        (
            "date before julian day 0",
            Valued {
                date: Some(ymd(-4713, 11, 23)),
                ..blank("")
            },
            "date",
            SERVERS,
        ),
        (
            "date at julian day 0",
            Valued {
                date: Some(ymd(-4713, 11, 24)),
                ..blank("")
            },
            "date",
            MYSQL,
        ),
        (
            "datetime in year 10000",
            Valued {
                at: Some(ymd(10_000, 1, 1).and_hms_opt(0, 0, 0).unwrap()),
                ..blank("")
            },
            "at",
            MYSQL,
        ),
        (
            "json with NUL",
            Valued {
                doc: Some(json!({"k": "a\u{0}b"})),
                ..blank("")
            },
            "doc",
            POSTGRES,
        ),
        (
            "json key with NUL",
            Valued {
                doc: Some(json!({"\u{0}": [1]})),
                ..blank("")
            },
            "doc",
            POSTGRES,
        ),
        (
            "json nested -0.0",
            Valued {
                doc: Some(json!({"a": [1, {"b": -0.0}]})),
                ..blank("")
            },
            "doc",
            POSTGRES,
        ),
        (
            "json awkward but storable",
            Valued {
                doc: Some(json!({"q": "it's \"x\" 😀", "n": u64::MAX, "f": 0.1})),
                ..blank("")
            },
            "doc",
            NOWHERE,
        ),
        (
            "-f32::MAX and subnormal",
            Valued {
                single: Some(-f32::MAX),
                amount: Some(Decimal::new(-1, 28)),
                ..blank("")
            },
            "single",
            NOWHERE,
        ),
        (
            "f32::MAX",
            Valued {
                single: Some(f32::MAX),
                ..blank("")
            },
            "single",
            NOWHERE,
        ),
        (
            "f32 NaN",
            Valued {
                single: Some(f32::NAN),
                ..blank("")
            },
            "single",
            |d| d != Dialect::Postgres,
        ),
        (
            "f32 -inf",
            Valued {
                single: Some(f32::NEG_INFINITY),
                ..blank("")
            },
            "single",
            MYSQL,
        ),
        (
            "f32 -0.0",
            Valued {
                single: Some(-0.0),
                ..blank("")
            },
            "single",
            |d| d != Dialect::Postgres,
        ),
        (
            "decimal max",
            Valued {
                amount: Some(Decimal::MAX),
                ..blank("")
            },
            "amount",
            NOWHERE,
        ),
        (
            "decimal min",
            Valued {
                amount: Some(Decimal::MIN),
                ..blank("")
            },
            "amount",
            NOWHERE,
        ),
        (
            "decimal 28 places",
            Valued {
                amount: Some(Decimal::new(1, 28)),
                ..blank("")
            },
            "amount",
            NOWHERE,
        ),
    ]
}

/// Equal, with floats compared bit for bit (NaN equals itself, -0.0 differs from 0.0).
fn same(a: &Valued, b: &Valued) -> bool {
    let bits = |v: &Valued| v.single.map(f32::to_bits);
    bits(a) == bits(b)
        && Valued {
            single: None,
            ..a.clone()
        } == Valued {
            single: None,
            ..b.clone()
        }
}

fn assert_invalid(error: &Error, field: &str, case: &str) {
    assert!(
        matches!(error, Error::InvalidValue { model: "Valued", field: f, .. } if *f == field),
        "{case}: expected InvalidValue on {field}, got {error:?}"
    );
    // One line: the model, the field, the reason naming the backend; no database error (none
    // was sent).
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot write this `Valued`: field `{field}`: "))
            && message.ends_with("; nothing was sent")
            && !message.contains('\n'),
        "{case}: {message}"
    );
    assert!(std::error::Error::source(error).is_none(), "{case}");
}

async fn read<DB: TestBackend>(db: &TestDb<DB>, id: i64) -> Valued {
    Valued::by_id(id).get(&db.pool).await.unwrap().unwrap()
}

async fn every_value_round_trips_or_is_refused_on_every_path<DB: TestBackend>(db: TestDb<DB>) {
    Schema::new()
        .model::<Valued>()
        .create(&db.pool)
        .await
        .unwrap();
    let dialect = DB::DIALECT;
    for (n, (case, value, field, refused)) in cases().into_iter().enumerate() {
        let refused = refused(dialect);
        let check = |result: Result<Valued, Error>, wanted: &Valued, path: &str| match result {
            Ok(stored) => {
                assert!(!refused, "{dialect} {path} accepted {case}");
                assert!(
                    same(
                        &stored,
                        &Valued {
                            id: stored.id,
                            ..wanted.clone()
                        }
                    ),
                    "{dialect} {path} {case}: {stored:?}"
                );
                Some(stored)
            }
            Err(error) => {
                assert!(refused, "{dialect} {path} {case}: {error}");
                assert_invalid(&error, field, case);
                None
            }
        };
        let label = |path: &str| format!("{path} {n}");

        let wanted = Valued {
            label: label("insert"),
            ..value.clone()
        };
        if let Some(stored) = check(wanted.insert(&db.pool).await, &wanted, "insert") {
            assert!(
                same(&read(&db, stored.id).await, &stored),
                "{dialect} {case}"
            );
        }

        let base = blank(&label("update")).insert(&db.pool).await.unwrap();
        let edited = Valued {
            id: base.id,
            label: base.label.clone(),
            ..value.clone()
        };
        match check(edited.update(&db.pool).await, &edited, "update") {
            Some(_) => assert!(same(&read(&db, base.id).await, &edited), "{dialect} {case}"),
            None => assert_eq!(read(&db, base.id).await, base, "unchanged"),
        }

        let wanted = Valued {
            label: label("get_or_create"),
            ..value.clone()
        };
        let result = Valued::get_or_create_by_label(&db.pool, &wanted).await;
        if let Some(stored) = check(
            result.map(|(r, o)| {
                assert_eq!(o, Outcome::Created);
                r
            }),
            &wanted,
            "get_or_create",
        ) {
            assert!(
                same(&read(&db, stored.id).await, &stored),
                "{dialect} {case}"
            );
        }

        // update_or_create: the created row, then the update values on the stored one.
        let wanted = Valued {
            label: label("update_or_create"),
            ..value.clone()
        };
        let fields = [
            ValuedField::Date,
            ValuedField::Time,
            ValuedField::At,
            ValuedField::AtUtc,
            ValuedField::Doc,
            ValuedField::Single,
            ValuedField::Amount,
        ];
        let result = Valued::update_or_create_by_label(&db.pool, &wanted, &fields).await;
        check(result.map(|(r, _)| r), &wanted, "update_or_create created");
        let stored = blank(&label("update_or_create found"))
            .insert(&db.pool)
            .await
            .unwrap();
        let wanted = Valued {
            id: stored.id,
            label: stored.label.clone(),
            ..value.clone()
        };
        let result = Valued::update_or_create_by_label(&db.pool, &wanted, &fields).await;
        match check(
            result.map(|(r, o)| {
                // The stored row already holds these values unless the database changed them
                // on the way in (which `check` below reports): either outcome leaves the row so.
                assert!(matches!(o, Outcome::Updated | Outcome::Unchanged), "{o:?}");
                r
            }),
            &wanted,
            "update_or_create found",
        ) {
            Some(_) => assert!(
                same(&read(&db, stored.id).await, &wanted),
                "{dialect} {case}"
            ),
            None => assert_eq!(read(&db, stored.id).await, stored, "unchanged"),
        }

        // bulk: the value in the fourth row, in the second chunk; all or nothing.
        let before = DB::count(&db.pool, "valued").await;
        let rows = vec![
            blank(&label("bulk a")),
            blank(&label("bulk b")),
            blank(&label("bulk c")),
            Valued {
                label: label("bulk d"),
                ..value.clone()
            },
        ];
        match BulkInsert::<Valued>::new()
            .batch_size(2)
            .run(&db.pool, rows)
            .await
        {
            Ok(report) => {
                assert!(!refused, "{dialect} bulk accepted {case}");
                assert_eq!(report.inserted, 4);
                let stored = Valued::by_label(label("bulk d"))
                    .get(&db.pool)
                    .await
                    .unwrap()
                    .unwrap();
                assert!(
                    same(
                        &stored,
                        &Valued {
                            id: stored.id,
                            label: label("bulk d"),
                            ..value.clone()
                        }
                    ),
                    "{dialect} bulk {case}"
                );
            }
            Err(Error::Bulk {
                row,
                first_row,
                source,
                ..
            }) => {
                assert!(refused, "{dialect} bulk {case}: {source}");
                assert_eq!((row, first_row), (Some(3), 2));
                assert_invalid(&source, field, case);
                assert_eq!(
                    DB::count(&db.pool, "valued").await,
                    before,
                    "the first chunk is not kept"
                );
            }
            Err(other) => panic!("{other:?}"),
        }
    }
}

backend_tests!(every_value_round_trips_or_is_refused_on_every_path);
