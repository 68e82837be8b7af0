// Must fail: `primary_kye` is a typo of `primary_key`.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_kye)]
    id: i64,
}

fn main() {}
