// Must fail: The primary key is already unique; a second constraint on it is redundant.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    #[unique]
    sku: String,
}

fn main() {}
