//! `model-bench`: model-runtime against hand-written sqlx, Django's patterns written in sqlx, and
//! SeaORM 2.x, side by side in one run, with the statements each call sends counted the same way
//! for every contender (see [`counter`]).
//!
//! ```sh
//! cargo run --release -p model-bench -- help
//! cargo run --release -p model-bench -- all postgres://postgres@127.0.0.1:5432/test mysql://root@127.0.0.1:3306/test
//! cargo run --release -p model-bench -- single --calls 500 postgres://postgres@127.0.0.1:5432/test
//! cargo run --release -p model-bench -- bulk --rows 10000
//! cargo run --release -p model-bench -- unchanged --rows 20000
//! cargo run --release -p model-bench -- memory --rows 100000,1000000
//! cargo run --release -p model-bench -- compile-cost
//! ```
//!
//! A benchmark, never a test: it asserts that each contender did what it was asked (found, created,
//! inserted so many rows), nothing about time.

mod args;
mod bulk;
mod compile_cost;
mod concurrency;
mod contenders;
mod counter;
mod memory;
mod model;
mod single;
mod stats;
mod target;
mod unchanged;

use std::process::ExitCode;

use args::{Command, Url};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// An error with `message` unless `condition` holds.
pub fn ensure(condition: bool, message: impl Into<String>) -> Result<()> {
    if condition {
        Ok(())
    } else {
        Err(message.into().into())
    }
}

/// One benchmark over SQLite and `urls`: on one thread (the timed calls are sequential, and CPU
/// time then counts no scheduler traffic), or on a thread per core for `concurrency`.
fn each<V: target::Visit>(urls: &[Url], multi_thread: bool, mut visit: V) -> Result<()> {
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()?;
    runtime.block_on(target::each(urls, &mut visit))
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Help => print!("{}", args::USAGE),
        Command::Single(opts, urls) => each(&urls, false, single::Single(&opts))?,
        Command::Concurrency(opts, urls) => each(&urls, true, concurrency::Concurrency(&opts))?,
        Command::Bulk(opts, urls) => each(&urls, false, bulk::Bulk(&opts))?,
        Command::Unchanged(opts, urls) => each(&urls, false, unchanged::Unchanged(&opts))?,
        Command::Memory(opts) => memory::run(&opts.rows, opts.rows.len() == 1)?,
        Command::CompileCost => compile_cost::run()?,
        Command::All(urls) => {
            each(&urls, false, single::Single(&Default::default()))?;
            each(&urls, true, concurrency::Concurrency(&Default::default()))?;
            each(&urls, false, bulk::Bulk(&Default::default()))?;
            each(&urls, false, unchanged::Unchanged(&Default::default()))?;
            println!();
            memory::run(&args::Memory::default().rows, false)?;
            compile_cost::run()?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let command = match args::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}\n(model-bench help lists the commands and their options)");
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
