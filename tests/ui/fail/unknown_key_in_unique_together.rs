// Must fail: `nmae` is a typo of `name`.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(product_name, store_id, nmae = "per_store")]
struct Product {
    #[model(primary_key)]
    id: i64,
    product_name: String,
    store_id: i64,
}

fn main() {}
