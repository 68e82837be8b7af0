// Must fail: Two fields cannot be stored in the same column.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    sku: String,
    #[model(column = "sku")]
    code: String,
}

fn main() {}
