// Must compile: every supported column type, bare and as Option, with a natural (non-integer) key.
use model_runtime::Model;

#[derive(Model)]
pub(crate) struct Everything {
    #[model(primary_key)]
    code: String,
    a: i16,
    b: i32,
    c: i64,
    d: f32,
    e: f64,
    f: bool,
    g: Vec<u8>,
    h: rust_decimal::Decimal,
    i: chrono::NaiveDate,
    j: chrono::NaiveTime,
    k: chrono::NaiveDateTime,
    l: chrono::DateTime<chrono::Utc>,
    m: uuid::Uuid,
    n: serde_json::Value,
    o: Option<i16>,
    p: Option<String>,
    q: Option<uuid::Uuid>,
    r: Option<chrono::DateTime<chrono::Utc>>,
}

fn main() {
    assert_eq!(Everything::META.columns.len(), 19);
    assert!(Everything::META.columns[15].nullable);
    assert!(!Everything::META.columns[1].nullable);
}
