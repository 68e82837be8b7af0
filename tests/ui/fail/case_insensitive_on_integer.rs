// Must fail: `case_insensitive` folds letters, and only text has them; an integer key cannot
// compare case-insensitively, so the attribute is a mistake to point at.
use model_runtime::Model;

#[derive(Model)]
struct Ticket {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(case_insensitive)]
    number: i64,
}

fn main() {}
