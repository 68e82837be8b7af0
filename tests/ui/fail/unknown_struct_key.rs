// Must fail: `tabel` is a typo of `table`; the error lists the valid keys.
use model_runtime::Model;

#[derive(Model)]
#[model(tabel = "products")]
struct Product {
    #[model(primary_key)]
    id: i64,
}

fn main() {}
