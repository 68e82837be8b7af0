// Must fail: a condition is `field == None`, `field != None`, `field == literal` or
// `field != literal`; anything else (an order comparison, a call) is refused at its token, not
// passed on as SQL.
use model_runtime::Model;

#[derive(Model)]
#[unique_together(team, nick, condition(level > 3, nick == nick.to_lowercase()))]
struct Member {
    #[model(primary_key, auto_increment)]
    id: i64,
    team: i64,
    nick: String,
    level: i64,
}

fn main() {}
