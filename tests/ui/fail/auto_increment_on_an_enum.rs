// Must fail: the database assigns 1, 2, 3, … to an auto-increment key, and an enum stored by
// discriminant can hold only its variants' values: the ids would fail to decode.
use model_runtime::{Column, Model};

#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(integer)]
enum Priority {
    Low = 1,
    High = 2,
}

#[derive(Model)]
struct Task {
    #[model(primary_key, auto_increment)]
    id: Priority,
    title: String,
}

fn main() {
    let _ = (Priority::Low, Priority::High);
}
