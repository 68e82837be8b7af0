// Must fail: `max_length` is a number, not a string.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(max_length = "100")]
    sku: String,
}

fn main() {}
