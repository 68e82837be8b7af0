// Must fail: A model is a struct: one field per column.
use model_runtime::Model;

#[derive(Model)]
enum Product {
    A,
    B,
}

fn main() {}
