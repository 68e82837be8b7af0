// Must fail: a unique constraint and the primary key are indexes already, and two indexes over
// the same columns in the same order are one index twice.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(store_id, sku)]
#[index(store_id, sku)]
#[index(id)]
#[index(sku, store_id, name = "by_sku")]
#[index(sku, store_id, name = "by_sku_again")]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(max_length = 10)]
    sku: String,
    #[unique]
    #[index]
    code: i64,
    store_id: i64,
}

fn main() {}
