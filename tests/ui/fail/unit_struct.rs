// Must fail: A unit struct has no columns.
use model_runtime::Model;

#[derive(Model)]
struct Product;

fn main() {}
