use model_runtime::{BulkInsert, Model};

#[derive(Model)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    sku: String,
    price: i64,
}

fn main() {
    // A bulk insert has one conflict mode: choosing a second does not compile.
    let _ = BulkInsert::<Product>::new()
        .skip_conflicts::<ProductBySku>()
        .update_conflicts::<ProductBySku>(&[ProductField::Price]);
}
