// Must compile: a model may reference itself (a tree), and raw identifiers become plain column names.
use model_runtime::Model;

#[derive(Model)]
struct Category {
    #[model(primary_key, auto_increment)]
    id: i32,
    #[model(references = Category)]
    parent: Option<i32>,
    #[unique]
    #[model(max_length = 50)]
    r#type: String,
}

fn main() {
    assert_eq!(Category::META.table, "category");
    assert_eq!(Category::META.columns[2].name, "type");
    let _ = CategoryByType { r#type: "x".into() };
    let fk = Category::META.columns[1].references.unwrap();
    assert_eq!(fk.target().table, "category");
}
