// Must fail: an increment adds numbers; `title` is text. (And a nullable counter would stay NULL.)
use model_runtime::{Changes, Model};

#[derive(Model)]
struct Page {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique]
    path: String,
    title: String,
    visits: Option<i64>,
}

fn main() {
    let page = Page { id: 0, path: "/".into(), title: "t".into(), visits: None };
    let _ = Changes::new(&page, &[]).increment(Page::FIELDS.title);
    let _ = Changes::new(&page, &[]).increment(Page::FIELDS.visits);
}
