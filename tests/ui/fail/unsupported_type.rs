// Must fail: `u32` and `HashMap` have no column mapping; the errors land on those fields.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    stock: u32,
    tags: std::collections::HashMap<String, String>,
}

fn main() {}
