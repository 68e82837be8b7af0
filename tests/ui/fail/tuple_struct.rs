// Must fail: A tuple struct has no field names to use as column names.
use model_runtime::Model;

#[derive(Model)]
struct Product(i64, String);

fn main() {}
