// Must fail: a column holds one value per row; a variant with data would need more than one.
use model_runtime::Column;

#[derive(Column, Clone)]
#[column(text)]
enum Shape {
    Square,
    Circle(f64),
    Rectangle { width: f64, height: f64 },
}

fn main() {}
