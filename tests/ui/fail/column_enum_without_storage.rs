// Must fail: an enum may be stored as text or as an integer; the derive will not guess which.
use model_runtime::Column;

#[derive(Column, Clone)]
enum Status {
    Active,
    Retired,
}

#[derive(Column, Clone)]
#[column(text, integer)]
enum Both {
    A,
}

#[derive(Column, Clone)]
#[column(txt)]
enum Typo {
    A,
}

fn main() {}
