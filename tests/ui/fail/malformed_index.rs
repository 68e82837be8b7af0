// Must fail: an index names existing fields, each once, under a name of its own; on a field it
// covers that field only.
use model_runtime::Model;

#[derive(Model)]
#[index(store_id, stroe_id)]
#[index(store_id, store_id)]
#[index]
#[index(name = "by_nothing")]
#[index(sku, name = "product")]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[index(store_id)]
    sku: String,
    #[index(name = "bad name")]
    store_id: i64,
}

fn main() {}
