// Must fail: a key of `Store` does not identify a `Product`, so a bulk insert of products cannot skip
// or update its conflicts on it. (The single-row calls take the model from the key, so there the
// mistake is a plain type mismatch between the key's model and the row passed.)
use model_runtime::{BulkInsert, Model};

#[derive(Model)]
struct Store {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    name: String,
}

#[derive(Model)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    name: String,
}

fn main() {
    let _ = BulkInsert::<Product>::new().skip_conflicts::<StoreByName>();
}
