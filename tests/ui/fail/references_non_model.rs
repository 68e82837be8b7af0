// Must fail: A foreign key must point at another model.
use model_runtime::Model;

struct Store;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(references = Store)]
    store_id: i64,
}

fn main() {}
