// Must fail: A VARCHAR(0) can hold only the empty string.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(max_length = 0)]
    sku: String,
}

fn main() {}
