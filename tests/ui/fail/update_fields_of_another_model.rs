// Must fail: the fields an update_or_create writes are named with the model's own field enum; a
// field of another model is a type error, not a runtime surprise.
use model_runtime::Model;

#[derive(Model)]
struct Store {
    #[model(primary_key, auto_increment)]
    id: i64,
    name: String,
}

#[derive(Model)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    sku: String,
    name: String,
}

async fn upsert(pool: &sqlx::SqlitePool, candidate: &Product) {
    let _ = Product::update_or_create_by_sku(pool, candidate, &[StoreField::Name]).await;
}

fn main() {
    let _ = upsert;
}
