// Must fail: `#[unique]` on sku and `unique_together(sku)` are the same constraint twice.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(sku)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[unique]
    sku: String,
}

fn main() {}
