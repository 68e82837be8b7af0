// Must fail: A foreign key column must have the type of the key it references.
use model_runtime::Model;

#[derive(Model)]
struct Store {
    #[model(primary_key)]
    code: String,
}

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(references = Store)]
    store_id: i64,
}

fn main() {}
