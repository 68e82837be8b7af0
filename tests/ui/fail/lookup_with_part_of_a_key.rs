// Must fail: `store_id` alone is only part of the unique key (product_name, store_id); the generic
// `get` takes only a key type the derive generated for a whole constraint.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(product_name, store_id)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    product_name: String,
    store_id: i64,
}

struct ByStore {
    store_id: i64,
}

async fn lookup(pool: &sqlx::SqlitePool) {
    let _: Option<Product> = model_runtime::get(pool, ByStore { store_id: 1 }).await.unwrap();
}

fn main() {
    let _ = lookup;
}
