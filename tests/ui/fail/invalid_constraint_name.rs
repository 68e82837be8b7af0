// Must fail: Constraint names are written into DDL unescaped: only plain identifiers are safe.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key)]
    id: i64,
    #[unique(name = "sku\"; DROP TABLE products; --")]
    sku: String,
}

fn main() {}
