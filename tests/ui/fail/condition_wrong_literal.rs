// Must fail: the literal in a condition is checked against the field's type, as the database would
// only find out at run time (or, on SQLite, compare an integer with a text and never match).
use model_runtime::Model;

#[derive(Model)]
struct Member {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(condition(active == "yes"))]
    email: String,
    active: bool,
}

fn main() {}
