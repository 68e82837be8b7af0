// Must fail: A primary key cannot be NULL.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: Option<i64>,
}

fn main() {}
