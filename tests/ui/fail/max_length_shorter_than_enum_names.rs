// Must fail: `on_hold` has 7 characters, and the column would hold at most 4: inserting it would
// always fail.
use model_runtime::{Column, Model};

#[derive(Column, Clone)]
#[column(text)]
enum Status {
    Active,
    OnHold,
}

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(max_length = 4)]
    status: Status,
}

fn main() {}
