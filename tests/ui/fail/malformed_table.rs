// Must fail: `table` needs a value: `table = "products"`.
use model_runtime::Model;

#[derive(Model)]
#[model(table)]
struct Product {
    #[model(primary_key)]
    id: i64,
}

fn main() {}
