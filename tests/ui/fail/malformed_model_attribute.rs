// Must fail: `#[model]` takes a list of keys in parentheses, not `= value`.
use model_runtime::Model;

#[derive(Model)]
#[model = "products"]
struct Product {
    #[model(primary_key)]
    id: i64,
}

fn main() {}
