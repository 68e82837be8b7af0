// Must fail: "only if newer" compares a field ordered the same way on every backend; a float is
// not (NaN), nor is text (collations).
use model_runtime::{Changes, Model};

#[derive(Model)]
struct Reading {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    sensor: String,
    value: f64,
}

fn main() {
    let r = Reading { id: 0, sensor: "s".into(), value: 1.0 };
    let _ = Changes::new(&r, &[]).only_if_newer(Reading::FIELDS.value);
    let _ = Changes::new(&r, &[]).only_if_not_older(Reading::FIELDS.sensor);
}
