// Must fail: `primary_key` describes a field, not the struct.
use model_runtime::Model;

#[derive(Model)]
#[model(primary_key)]
struct Product {
    #[model(primary_key)]
    id: i64,
}

fn main() {}
