// Must fail: a key of `Store` does not identify a `Product`.
use model_runtime::Model;

#[derive(Model)]
struct Store {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    name: String,
}

#[derive(Model)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    name: String,
}

async fn lookup(pool: &sqlx::SqlitePool) {
    let _ = model_runtime::get::<Product, _, _>(pool, StoreByName { name: "x".into() }).await;
}

fn main() {
    let _ = lookup;
}
