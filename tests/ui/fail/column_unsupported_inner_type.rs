// Must fail: a newtype is stored as its field, which must itself be a column type; a nullable
// column is an `Option` field on the model, not inside the newtype.
use model_runtime::Column;

#[derive(Column, Clone)]
struct Tags(Vec<String>);

#[derive(Column, Clone)]
struct MaybeSku(Option<String>);

fn main() {}
