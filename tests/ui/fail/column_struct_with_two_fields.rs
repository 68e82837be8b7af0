// Must fail: a column type is stored as one value, and this struct has two.
use model_runtime::Column;

#[derive(Column, Clone)]
struct Money(i64, String);

#[derive(Column, Clone)]
struct Nothing;

fn main() {}
