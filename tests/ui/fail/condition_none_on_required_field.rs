// Must fail: `field == None` on a field that is never NULL is always false: the constraint would
// cover no row at all, which is surely not what was meant.
use model_runtime::Model;

#[derive(Model)]
struct Member {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(condition(deleted_at == None))]
    email: String,
    deleted_at: i64,
}

fn main() {}
