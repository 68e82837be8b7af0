// Must fail: Two constraints cannot share a name in one table.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(product_name, store_id, name = "product_key")]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[unique(name = "product_key")]
    sku: String,
    product_name: String,
    store_id: i64,
}

fn main() {}
