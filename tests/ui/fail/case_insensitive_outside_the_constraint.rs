// Must fail: `case_insensitive(…)` says how the constraint compares one of its own columns; a field
// the constraint does not cover has no meaning there (most likely a typo or a missing field).
use model_runtime::Model;

#[derive(Model)]
#[unique_together(tenant, handle, case_insensitive(email))]
struct Member {
    #[model(primary_key, auto_increment)]
    id: i64,
    tenant: i64,
    handle: String,
    email: String,
}

fn main() {}
