// Must fail: two variants stored as the same text could not be told apart when read back.
use model_runtime::Column;

#[derive(Column, Clone)]
#[column(text)]
enum Status {
    OnHold,
    #[column(rename = "on_hold")]
    Paused,
}

fn main() {}
