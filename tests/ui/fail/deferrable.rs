// Must fail: PostgreSQL refuses `INSERT … ON CONFLICT` on a table whose unique constraint is
// deferrable, and get_or_create, update_or_create and bulk inserts rely on it; accepting the
// attribute would compile a model whose every upsert fails at run time.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(tenant, handle, deferrable)]
struct Member {
    #[model(primary_key, auto_increment)]
    id: i64,
    tenant: i64,
    #[unique(deferrable)]
    handle: String,
}

fn main() {}
