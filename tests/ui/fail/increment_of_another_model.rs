// Must fail: the field handle of another model cannot name a column of this one.
use model_runtime::{BulkInsert, Changes, Model};

#[derive(Model)]
struct Store {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    name: String,
    visits: i64,
}

#[derive(Model)]
struct Product {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    name: String,
    sold: i64,
}

fn main() {
    let p = Product { id: 0, name: "p".into(), sold: 0 };
    let _ = Changes::new(&p, &[]).increment(Store::FIELDS.visits);
    let _ = BulkInsert::<Product>::new()
        .update_conflicts::<ProductByName>(&[])
        .increment(Store::FIELDS.visits);
}
