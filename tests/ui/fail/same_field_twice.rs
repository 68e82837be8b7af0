// Must fail: Naming a field twice in one constraint is a typo, never intended.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(sku, store_id, sku)]
struct Product {
    #[model(primary_key)]
    id: i64,
    sku: String,
    store_id: i64,
}

fn main() {}
