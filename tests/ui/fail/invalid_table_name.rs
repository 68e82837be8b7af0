// Must fail: Table names must be plain identifiers.
use model_runtime::Model;

#[derive(Model)]
#[model(table = "my products")]
struct Product {
    #[model(primary_key)]
    id: i64,
}

fn main() {}
