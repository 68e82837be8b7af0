// Must fail: `precision` and `scale` size a NUMERIC column; an integer or a float has none.
use model_runtime::{Column, Model};

#[derive(Column, Clone)]
struct Cents(i64);

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(precision = 10, scale = 2)]
    price: f64,
    #[model(precision = 10)]
    cents: Option<Cents>,
}

fn main() {}
