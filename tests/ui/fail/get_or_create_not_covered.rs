// Must fail: `product_name` alone is not unique (only together with `store_id`), so there is no
// get_or_create keyed on it: it could match several rows, and two racing callers could both create.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(product_name, store_id)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    product_name: String,
    store_id: i64,
}

async fn create(pool: &sqlx::SqlitePool, candidate: &Product) {
    let _ = Product::get_or_create_by_product_name(pool, candidate).await;
}

fn main() {
    let _ = create;
}
