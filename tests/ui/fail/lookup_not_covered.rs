// Must fail: `product_name` is not covered by any unique constraint, so there is no lookup by it:
// a query that could return several rows cannot pose as a unique lookup.
use model_runtime::{Key, Model};

#[derive(Model)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    sku: String,
    product_name: String,
}

async fn lookup(pool: &sqlx::SqlitePool) {
    let _ = Product::by_product_name("iPhone 15").get(pool).await;
}

fn main() {
    let _ = lookup;
}
