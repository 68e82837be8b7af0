// Must fail: A model maps to one table with fixed column types.
use model_runtime::Model;

#[derive(Model)]
struct Product<T> {
    #[model(primary_key)]
    id: i64,
    payload: T,
}

fn main() {}
