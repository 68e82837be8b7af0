//! The command line: one subcommand, its options, and the database URLs.

use std::fmt;

pub const USAGE: &str = "\
model-bench: model-runtime against hand-written sqlx, Django's patterns written in sqlx, and SeaORM

usage: model-bench <command> [options] [URL...]

commands:
  single        get_or_create / update_or_create on one connection, found and created: ops/s,
                CPU µs per call, statements per call, for the library (both strategies),
                hand-written sqlx sending the same statements, Django's patterns, SeaORM
      --calls N       calls per round (2000)
      --rounds N      rounds per pass, the best kept (2)
      --passes N      passes over the whole table, each row keeping its best (3)
  concurrency   get_or_create from many tasks on a pool of 16 connections, keys half stored:
                ops/s, p50 and p99 latency
      --tasks N,N     task counts (16,64)
      --calls N       calls per task (400)
      --keys N        keys stored beforehand; the tasks draw from twice as many (2000)
  bulk          BulkInsert, half the rows already stored, skip and update modes, counts only and
                per-row report: rows/s and statements, against a hand-written multi-row INSERT,
                SeaORM's insert_many, and on PostgreSQL UNNEST arrays and COPY
      --rows N        rows per import (100000)
      --rounds N      rounds, each running every path once in turn; each path keeps its best (3)
      --batch N       the library's batch_size (its default: 1000, 10000 on PostgreSQL)
  unchanged     BulkInsert update mode over rows all already stored: importing the stored values
                (nothing written) and changed ones (all written), against a hand-written
                multi-row INSERT whose conflict clause writes every row: rows/s and statements
      --rows N        rows per import (20000)
      --rounds N      rounds, the best kept (3)
  memory        peak RSS of a counts-only import into SQLite, each row count in a fresh process
      --rows N,N      row counts (100000,1000000)
  compile-cost  debug build time of a crate of 50 models deriving Model against the same 50
                structs deriving serde (builds in target/compile-cost)
  all           single, concurrency, bulk, unchanged, memory and compile-cost with their defaults
  help          this text

URL: postgres://… or mysql://… (MariaDB 10.5 or later); each runs after SQLite (a file in WAL mode
in a temporary directory), which always runs. memory and compile-cost take no URL.

Statements are counted on the wire, the same way for every contender: a second pool of one
connection per backend, used only for counting, goes through a local proxy that counts the
PostgreSQL Query and Execute messages or the MySQL COM_QUERY and COM_STMT_EXECUTE commands it
forwards; on SQLite, a trace hook counts each statement SQLite starts. Timings never go through
the proxy.
";

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    Single(Single, Vec<Url>),
    Concurrency(Concurrency, Vec<Url>),
    Bulk(Bulk, Vec<Url>),
    Unchanged(Unchanged, Vec<Url>),
    Memory(Memory),
    CompileCost,
    All(Vec<Url>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Single {
    pub calls: usize,
    pub rounds: usize,
    pub passes: usize,
}

impl Default for Single {
    fn default() -> Self {
        Single {
            calls: 2000,
            rounds: 2,
            passes: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    pub tasks: Vec<usize>,
    pub calls: usize,
    pub keys: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            tasks: vec![16, 64],
            calls: 400,
            keys: 2000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bulk {
    pub rows: usize,
    pub rounds: usize,
    /// The library's `batch_size`, or its default.
    pub batch: Option<usize>,
}

impl Default for Bulk {
    fn default() -> Self {
        Bulk {
            rows: 100_000,
            rounds: 3,
            batch: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unchanged {
    pub rows: usize,
    pub rounds: usize,
}

impl Default for Unchanged {
    fn default() -> Self {
        Unchanged {
            rows: 20_000,
            rounds: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    pub rows: Vec<usize>,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            rows: vec![100_000, 1_000_000],
        }
    }
}

/// A server to run on, besides SQLite.
#[derive(Debug, Clone, PartialEq)]
pub enum Url {
    Postgres(String),
    MySql(String),
}

#[derive(Debug, PartialEq)]
pub struct ArgError(String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn error<T>(message: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(message.into()))
}

fn url(arg: &str) -> Result<Url, ArgError> {
    if arg.starts_with("postgres://") || arg.starts_with("postgresql://") {
        Ok(Url::Postgres(arg.to_owned()))
    } else if arg.starts_with("mysql://") || arg.starts_with("mariadb://") {
        Ok(Url::MySql(arg.to_owned()))
    } else {
        error(format!(
            "unknown database URL `{arg}`: expected postgres://… or mysql://…"
        ))
    }
}

fn number(option: &str, value: &str) -> Result<usize, ArgError> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => error(format!(
            "{option} takes a positive whole number, not `{value}`"
        )),
    }
}

fn numbers(option: &str, value: &str) -> Result<Vec<usize>, ArgError> {
    value.split(',').map(|v| number(option, v.trim())).collect()
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, ArgError> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return error("no command given");
    };
    let name = command.as_str();
    if !matches!(
        name,
        "single" | "concurrency" | "bulk" | "unchanged" | "memory" | "compile-cost" | "all"
    ) {
        return match name {
            "help" | "--help" | "-h" => Ok(Command::Help),
            _ if url(name).is_ok() => error(format!(
                "`{name}` is a URL, not a command; to run everything: model-bench all {name} …"
            )),
            _ => error(format!("unknown command `{name}`")),
        };
    }
    let mut single = Single::default();
    let mut concurrency = Concurrency::default();
    let mut bulk = Bulk::default();
    let mut unchanged = Unchanged::default();
    let mut memory = Memory::default();
    let mut urls = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help);
        }
        let Some(option) = arg.strip_prefix("--") else {
            if matches!(name, "memory" | "compile-cost") {
                return error(format!("{name} takes no URL (got `{arg}`)"));
            }
            urls.push(url(&arg)?);
            continue;
        };
        let (option, inline) = match option.split_once('=') {
            Some((option, value)) => (option, Some(value.to_owned())),
            None => (option, None),
        };
        let flag = format!("--{option}");
        let known = matches!(
            (name, option),
            ("single", "calls" | "rounds" | "passes")
                | ("concurrency", "tasks" | "calls" | "keys")
                | ("bulk", "rows" | "rounds" | "batch")
                | ("unchanged", "rows" | "rounds")
                | ("memory", "rows")
        );
        if !known {
            return error(format!("{name} has no option {flag}"));
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            return error(format!("{flag} needs a value"));
        };
        match (name, option) {
            ("single", "calls") => single.calls = number(&flag, &value)?,
            ("single", "rounds") => single.rounds = number(&flag, &value)?,
            ("single", "passes") => single.passes = number(&flag, &value)?,
            ("concurrency", "tasks") => concurrency.tasks = numbers(&flag, &value)?,
            ("concurrency", "calls") => concurrency.calls = number(&flag, &value)?,
            ("concurrency", "keys") => concurrency.keys = number(&flag, &value)?,
            ("bulk", "rows") => bulk.rows = number(&flag, &value)?,
            ("bulk", "rounds") => bulk.rounds = number(&flag, &value)?,
            ("bulk", "batch") => bulk.batch = Some(number(&flag, &value)?),
            ("unchanged", "rows") => unchanged.rows = number(&flag, &value)?,
            ("unchanged", "rounds") => unchanged.rounds = number(&flag, &value)?,
            ("memory", "rows") => memory.rows = numbers(&flag, &value)?,
            _ => unreachable!("checked above"),
        }
    }
    Ok(match name {
        "single" => Command::Single(single, urls),
        "concurrency" => Command::Concurrency(concurrency, urls),
        "bulk" => Command::Bulk(bulk, urls),
        "unchanged" => Command::Unchanged(unchanged, urls),
        "memory" => Command::Memory(memory),
        "compile-cost" => Command::CompileCost,
        _ => Command::All(urls),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, ArgError> {
        parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn commands_options_and_urls() {
        assert_eq!(
            run(&["single", "--calls", "10", "postgres://p", "--passes=1"]),
            Ok(Command::Single(
                Single {
                    calls: 10,
                    rounds: 2,
                    passes: 1
                },
                vec![Url::Postgres("postgres://p".into())]
            ))
        );
        assert_eq!(
            run(&["memory", "--rows", "5,6"]),
            Ok(Command::Memory(Memory { rows: vec![5, 6] }))
        );
        assert_eq!(
            run(&["all", "mysql://m"]),
            Ok(Command::All(vec![Url::MySql("mysql://m".into())]))
        );
        assert_eq!(run(&["bulk", "--help"]), Ok(Command::Help));
    }

    #[test]
    fn bad_arguments_are_errors() {
        for args in [
            &[][..],
            &["postgres://p"],
            &["nope"],
            &["single", "--rows", "5"],
            &["single", "--calls"],
            &["single", "--calls", "0"],
            &["bulk", "--rows", "many"],
            &["bulk", "sqlite://x"],
            &["memory", "mysql://m"],
            &["compile-cost", "--rows", "1"],
        ] {
            assert!(run(args).is_err(), "{args:?} was accepted");
        }
    }
}
