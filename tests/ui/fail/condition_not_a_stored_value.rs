// Must fail: `Open` is stored as "open"; a condition on "Open" would match no row, so the partial
// constraint would silently constrain nothing. The literal must be a value the enum stores.
use model_runtime::{Column, Model};

#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(text)]
enum State {
    Open,
    Closed,
}

#[derive(Column, Debug, Clone, Copy, PartialEq)]
#[column(integer)]
enum Level {
    Low = 1,
    High = 2,
}

#[derive(Model)]
struct Ticket {
    #[model(primary_key, auto_increment)]
    id: i64,
    #[unique(condition(state == "Open"))]
    code: String,
    #[unique(condition(level == 3))]
    slot: String,
    #[model(max_length = 10)]
    state: State,
    level: Level,
}

fn main() {
    let _ = (State::Closed, Level::Low, Level::High);
}
