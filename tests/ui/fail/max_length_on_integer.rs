// Must fail: `max_length` makes a VARCHAR(n); it means nothing on an integer.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(max_length = 10)]
    stock: i32,
}

fn main() {}
