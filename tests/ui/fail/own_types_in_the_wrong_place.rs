// Must fail: an own type keeps the rules of what it is stored as: `max_length` needs text,
// `auto_increment` an integer, and a foreign key the storage of the key it references.
use model_runtime::{Column, Model};

#[derive(Column, Clone)]
struct StoreId(i64);

#[derive(Column, Debug, Clone, PartialEq)]
struct Sku(String);

#[derive(Model)]
struct Store {
    #[model(primary_key, auto_increment)]
    id: Sku,
    #[model(max_length = 10)]
    code: Option<StoreId>,
}

#[derive(Model)]
struct Shelf {
    #[model(primary_key)]
    code: Sku,
}

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[model(references = Shelf)]
    shelf: StoreId,
}

fn main() {}
