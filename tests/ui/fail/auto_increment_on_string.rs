// Must fail: The database can only count up integers.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key, auto_increment)]
    sku: String,
}

fn main() {}
