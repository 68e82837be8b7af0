// Must fail, and say how to fix it: the lookups by a key are methods of `model_runtime::Key`,
// which must be in scope.
use model_runtime::Model;

#[derive(Model)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    sku: String,
}

async fn lookup(pool: &sqlx::SqlitePool) {
    let _ = Product::by_sku("A-1").get(pool).await;
}

fn main() {
    let _ = lookup;
}
