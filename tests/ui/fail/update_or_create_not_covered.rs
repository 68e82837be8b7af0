// Must fail: the generic update_or_create takes only a key type the derive generated for a whole
// unique constraint; `ProductByName` is a look-alike the user wrote, not a constraint.
use model_runtime::{Changes, Model};

#[derive(Model)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    sku: String,
    name: String,
}

struct ProductByName {
    name: String,
}

async fn upsert(pool: &sqlx::SqlitePool, candidate: &Product) {
    let fields = [ProductField::Name];
    let _ = model_runtime::update_or_create::<ProductByName>(
        pool,
        candidate,
        Changes::new(candidate, &fields),
    )
    .await;
}

fn main() {
    let _ = upsert;
    let _ = ProductByName { name: String::new() }.name;
}
