// Must fail: (a, b) and (b, a) enforce the same uniqueness: one is a wasted index.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(product_name, store_id)]
#[unique_together(store_id, product_name)]
struct Product {
    #[model(primary_key)]
    id: i64,
    product_name: String,
    store_id: i64,
}

fn main() {}
