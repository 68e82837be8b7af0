// Must fail: Only the primary key is database-assigned.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(auto_increment)]
    counter: i64,
}

fn main() {}
