// Must fail: Every model needs a primary key to be looked up and updated by.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    id: i64,
    sku: String,
}

fn main() {}
