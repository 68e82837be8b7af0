// Must fail: A constraint over no columns constrains nothing.
use model_runtime::Model;

#[derive(Model)]
#[unique_together()]
struct Product {
    #[model(primary_key)]
    id: i64,
    sku: String,
}

fn main() {}
