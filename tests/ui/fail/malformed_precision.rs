// Must fail: a scale counts the digits after the point, out of the precision's digits in all, and
// both must be sizes a rust_decimal::Decimal can hold.
use model_runtime::Model;
use rust_decimal::Decimal;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(precision = 4, scale = 6)]
    a: Decimal,
    #[model(scale = 2)]
    b: Decimal,
    #[model(precision = 0)]
    c: Decimal,
    #[model(precision = 40, scale = 2)]
    d: Decimal,
    #[model(precision = "10")]
    e: Decimal,
}

fn main() {}
