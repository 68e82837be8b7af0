// Must fail: Three mistakes, three errors in one build: the user does not fix them one build at a time.
use model_runtime::Model;

#[derive(Model)]
#[model(tabel = "products")]
#[unique_together(product_name, stroe_id)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(max_length = 0)]
    product_name: String,
    store_id: i64,
}

fn main() {}
