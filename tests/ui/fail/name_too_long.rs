// Must fail: PostgreSQL would silently truncate a 64-byte name and MySQL would reject it.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(product_name, store_id, name = "this_constraint_name_is_far_too_long_for_postgres_to_keep_intact")]
struct Product {
    #[model(primary_key)]
    id: i64,
    product_name: String,
    store_id: i64,
}

fn main() {}
