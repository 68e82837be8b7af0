// Must fail: `#[unique]` takes no `= value`.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[unique = true]
    sku: String,
}

fn main() {}
