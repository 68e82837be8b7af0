// Must fail: Only one field can be the primary key; other combinations use unique_together.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(primary_key)]
    sku: String,
}

fn main() {}
