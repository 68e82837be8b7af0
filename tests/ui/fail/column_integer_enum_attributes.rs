// Must fail: an integer enum is stored as its discriminant in an i16, i32 or i64 column; a name, an
// unsigned representation or a discriminant the column cannot hold has no meaning there.
use model_runtime::Column;

#[derive(Column, Clone)]
#[column(integer)]
enum Priority {
    #[column(rename = "low")]
    Low = 1,
    High = 2,
}

#[derive(Column, Clone)]
#[column(integer)]
#[repr(u8)]
enum Small {
    A = 1,
}

// No #[repr]: stored as an i32, which 3_000_000_000 does not fit.
#[derive(Column, Clone)]
#[column(integer)]
enum Huge {
    A = 3_000_000_000,
}

fn main() {}
