// Must fail: `unique_together` spans fields, so it goes on the struct.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[unique_together(sku)]
    sku: String,
}

fn main() {}
