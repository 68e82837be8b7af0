// Must fail: `stroe_id` is not a field; the error points at it and suggests `store_id`.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(product_name, stroe_id)]
struct Product {
    #[model(primary_key)]
    id: i64,
    product_name: String,
    store_id: i64,
}

fn main() {}
