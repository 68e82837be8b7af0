// Must fail: a partial constraint's condition names the field it tests; a name that is not a field
// (here a typo) would otherwise become SQL that fails only when the table is created.
use model_runtime::Model;

#[derive(Model)]
struct Member {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(condition(deleted == None))]
    email: String,
    deleted_at: Option<i64>,
}

fn main() {}
