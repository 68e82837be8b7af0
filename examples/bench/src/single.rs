//! `single`: get_or_create and update_or_create one call at a time on one connection, found and
//! created, against hand-written sqlx sending the same statements, Django's patterns written in
//! sqlx, and SeaORM; ops/s, CPU µs per call, statements per call.

use std::any::Any;
use std::sync::Arc;

use model_runtime::{BulkInsert, Outcome, Strategy};

use crate::args;
use crate::contenders;
use crate::counter;
use crate::model::{Product, ProductBySku, ProductField, Sql, candidate};
use crate::stats::Stopwatch;
use crate::target::{Binds, Db, Side, Target, Visit};
use crate::{Result, ensure};

/// Statements are counted over this many calls (or fewer when a round is shorter), after the
/// timed rounds, on the counted connection.
const COUNTED_CALLS: usize = 100;

pub struct Single<'a>(pub &'a args::Single);

struct Figure {
    section: &'static str,
    name: &'static str,
    ops_per_sec: f64,
    cpu_us: f64,
    statements: f64,
}

/// One backend's table: each row measured `rounds` times per pass, keeping its best across passes
/// (drift on a noisy machine then touches every contender alike).
struct Table<'t, DB: Db> {
    target: &'t Target<DB>,
    opts: &'t args::Single,
    /// The next unused call index: each call gets its own, so created paths always meet new keys.
    next: usize,
    figures: Vec<Figure>,
}

impl<DB: Db> Table<'_, DB> {
    fn indexes(&mut self, n: usize) -> std::ops::Range<usize> {
        let first = self.next;
        self.next += n;
        first..self.next
    }

    async fn measure<F>(
        &mut self,
        section: &'static str,
        name: &'static str,
        mut op: F,
    ) -> Result<()>
    where
        F: AsyncFnMut(&Side<DB>, usize) -> Result<()>,
    {
        let calls = self.opts.calls;
        let mut ops_per_sec = 0f64;
        let mut cpu_us = f64::MAX;
        for _ in 0..self.opts.rounds {
            let indexes = self.indexes(calls);
            let watch = Stopwatch::start();
            for i in indexes {
                op(&self.target.timed, i).await?;
            }
            ops_per_sec = ops_per_sec.max(watch.rate(calls));
            cpu_us = cpu_us.min(watch.cpu_us(calls));
        }
        match self
            .figures
            .iter_mut()
            .find(|f| f.section == section && f.name == name)
        {
            Some(f) => {
                f.ops_per_sec = f.ops_per_sec.max(ops_per_sec);
                f.cpu_us = f.cpu_us.min(cpu_us);
            }
            None => {
                let n = calls.min(COUNTED_CALLS);
                let before = counter::statements();
                for i in self.indexes(n) {
                    op(&self.target.counted, i).await?;
                }
                let statements = (counter::statements() - before) as f64 / n as f64;
                self.figures.push(Figure {
                    section,
                    name,
                    ops_per_sec,
                    cpu_us,
                    statements,
                });
            }
        }
        Ok(())
    }

    fn print(&self) {
        let o = self.opts;
        println!(
            "\n{}, one connection: get_or_create / update_or_create, best of {} passes × {} rounds of {} calls; statements counted over {} more calls",
            self.target.label,
            o.passes,
            o.rounds,
            o.calls,
            o.calls.min(COUNTED_CALLS)
        );
        println!(
            "| path | ops/s | CPU µs/call | statements/call | library ops/s ÷ this | CPU µs/call, library − this |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        let mut section = "";
        let mut library: Option<&Figure> = None;
        for f in &self.figures {
            if f.section != section {
                section = f.section;
                println!("| **{section}** | | | | | |");
            }
            let (ratio, extra) = match library {
                Some(lib) if !f.name.starts_with("library") => (
                    format!("{:.2}", lib.ops_per_sec / f.ops_per_sec),
                    format!("{:+.1}", lib.cpu_us - f.cpu_us),
                ),
                _ => (String::new(), String::new()),
            };
            if f.name.starts_with("library") {
                library = Some(f);
            }
            println!(
                "| {} | {:.0} | {:.1} | {:.2} | {ratio} | {extra} |",
                f.name, f.ops_per_sec, f.cpu_us, f.statements
            );
        }
    }
}

/// MySQL, hand-written: the library's one-statement update_or_create ([`Sql::upsert`]), with
/// markers derived from the call's index where the library draws random ones. True when it updated.
async fn mysql_upsert<DB: Db>(s: &Side<DB>, sql: &Sql, c: &Product, i: usize) -> Result<bool> {
    let s = (s as &dyn Any)
        .downcast_ref::<Side<sqlx::MySql>>()
        .ok_or("the upsert is MySQL's")?;
    let ours = u64::MAX - 2 * i as u64;
    let other = ours - 1;
    let (_, _, _, _, marker): (i64, String, String, i64, i64) =
        sqlx::query_as(sqlx::AssertSqlSafe(Arc::clone(&sql.upsert)))
            .bind(&c.sku)
            .bind(&c.name)
            .bind(c.price_cents)
            .bind(ours)
            .bind(other)
            .bind(c.price_cents)
            .bind(ours)
            .bind(other)
            .fetch_one(&s.pool)
            .await?;
    ensure(marker != 2, "sqlx: another row met")?;
    Ok(marker == 1)
}

const FOUND: &str = "get_or_create, found";
const CREATED: &str = "get_or_create, created";
const UPDATED: &str = "update_or_create, updated";
const UPSERTED: &str = "update_or_create, created";

impl Visit for Single<'_> {
    async fn visit<DB: Db>(&mut self, target: &Target<DB>) -> Result<()> {
        let opts = self.0;
        let sql = &target.sql;
        // The keys the found paths hit: as many as calls in a round, so a round reads each once.
        let seeded = opts.calls;
        let hit = |i: usize| format!("seed-{}", i % seeded);
        BulkInsert::<Product>::new()
            .counts_only()
            .run(
                &target.timed.pool,
                (0..seeded).map(|i| candidate(format!("seed-{i}"), 1)),
            )
            .await?;
        let new = |i: usize| format!("new-{i}");
        let fields = [ProductField::PriceCents];
        let mut t = Table {
            target,
            opts,
            next: 0,
            figures: Vec::new(),
        };
        for _ in 0..opts.passes {
            t.measure(FOUND, "library", async |s, i| {
                let (_, o) = Product::get_or_create_by_sku(&s.pool, &candidate(hit(i), 1)).await?;
                ensure(o == Outcome::Found, "library: not found")
            })
            .await?;
            t.measure(
                FOUND,
                "… hand-written sqlx, same statements",
                async |s, i| {
                    let c = candidate(hit(i), 1);
                    let mut conn = s.pool.acquire().await?;
                    let row = DB::fetch_row(&mut *conn, &sql.select, Binds::Sku(&c.sku)).await?;
                    ensure(row.is_some(), "sqlx: not found")
                },
            )
            .await?;
            t.measure(
                FOUND,
                "… SeaORM (find by the unique column)",
                async |s, i| {
                    let created =
                        contenders::get_or_create(&s.seaorm, &candidate(hit(i), 1)).await?;
                    ensure(!created, "SeaORM: created")
                },
            )
            .await?;
            t.measure(FOUND, "library, insert-first strategy", async |s, i| {
                let c = candidate(hit(i), 1);
                let (_, o) = model_runtime::get_or_create_with::<ProductBySku>(
                    &s.pool,
                    &c,
                    Strategy::InsertFirst,
                )
                .await?;
                ensure(o == Outcome::Found, "library: not found")
            })
            .await?;
            if !sql.mysql {
                t.measure(
                    FOUND,
                    "… hand-written sqlx, insert-first",
                    async |s, i| {
                        let c = candidate(hit(i), 1);
                        let mut conn = s.pool.acquire().await?;
                        let inserted =
                            DB::fetch_row(&mut *conn, &sql.insert_do_nothing, Binds::Row(&c))
                                .await?;
                        ensure(inserted.is_none(), "sqlx: inserted")?;
                        let row =
                            DB::fetch_row(&mut *conn, &sql.select, Binds::Sku(&c.sku)).await?;
                        ensure(row.is_some(), "sqlx: not found")
                    },
                )
                .await?;
            }

            t.measure(CREATED, "library", async |s, i| {
                let (_, o) = Product::get_or_create_by_sku(&s.pool, &candidate(new(i), 1)).await?;
                ensure(o == Outcome::Created, "library: not created")
            })
            .await?;
            t.measure(
                CREATED,
                "… hand-written sqlx, same statements",
                async |s, i| {
                    let c = candidate(new(i), 1);
                    let mut conn = s.pool.acquire().await?;
                    let row = DB::fetch_row(&mut *conn, &sql.select, Binds::Sku(&c.sku)).await?;
                    ensure(row.is_none(), "sqlx: found")?;
                    let insert = if sql.mysql {
                        &sql.insert_plain
                    } else {
                        &sql.insert_do_nothing
                    };
                    let row = DB::fetch_row(&mut *conn, insert, Binds::Row(&c)).await?;
                    ensure(row.is_some(), "sqlx: not inserted")
                },
            )
            .await?;
            t.measure(
                CREATED,
                "… Django's check-then-insert in a transaction",
                async |s, i| {
                    let c = candidate(new(i), 1);
                    let mut conn = s.pool.acquire().await?;
                    let row = DB::fetch_row(&mut *conn, &sql.select, Binds::Sku(&c.sku)).await?;
                    ensure(row.is_none(), "sqlx: found")?;
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    let row = DB::fetch_row(&mut *tx, &sql.insert_plain, Binds::Row(&c)).await?;
                    tx.commit().await?;
                    ensure(row.is_some(), "sqlx: not inserted")
                },
            )
            .await?;
            t.measure(
                CREATED,
                "… SeaORM (find, insert with ON CONFLICT)",
                async |s, i| {
                    let created =
                        contenders::get_or_create(&s.seaorm, &candidate(new(i), 1)).await?;
                    ensure(created, "SeaORM: not created")
                },
            )
            .await?;
            t.measure(CREATED, "library, insert-first strategy", async |s, i| {
                let c = candidate(new(i), 1);
                let (_, o) = model_runtime::get_or_create_with::<ProductBySku>(
                    &s.pool,
                    &c,
                    Strategy::InsertFirst,
                )
                .await?;
                ensure(o == Outcome::Created, "library: not created")
            })
            .await?;
            if !sql.mysql {
                t.measure(
                    CREATED,
                    "… hand-written sqlx, insert-first",
                    async |s, i| {
                        let c = candidate(new(i), 1);
                        let mut conn = s.pool.acquire().await?;
                        let row = DB::fetch_row(&mut *conn, &sql.insert_do_nothing, Binds::Row(&c))
                            .await?;
                        ensure(row.is_some(), "sqlx: not inserted")
                    },
                )
                .await?;
            }

            t.measure(UPDATED, "library", async |s, i| {
                let c = candidate(hit(i), i as i64);
                let (row, o) = Product::update_or_create_by_sku(&s.pool, &c, &fields).await?;
                // Updated, or unchanged when an earlier round wrote this price to this key.
                ensure(
                    matches!(o, Outcome::Updated | Outcome::Unchanged)
                        && row.price_cents == i as i64,
                    "library: not updated",
                )
            })
            .await?;
            t.measure(
                UPDATED,
                "… hand-written sqlx, same statements",
                async |s, i| {
                    let c = candidate(hit(i), i as i64);
                    if sql.mysql {
                        let updated = mysql_upsert(s, sql, &c, i).await?;
                        return ensure(updated, "sqlx: not updated");
                    }
                    let mut conn = s.pool.acquire().await?;
                    let price = Binds::PriceSku(c.price_cents, &c.sku);
                    let row = DB::fetch_row(&mut *conn, &sql.update, price).await?;
                    ensure(row.is_some(), "sqlx: not updated")
                },
            )
            .await?;
            t.measure(
                UPDATED,
                "… Django's locked read, then update",
                async |s, i| {
                    let c = candidate(hit(i), i as i64);
                    let mut tx = s.pool.begin().await?;
                    let row =
                        DB::fetch_row(&mut *tx, &sql.select_for_update, Binds::Sku(&c.sku)).await?;
                    ensure(row.is_some(), "sqlx: not found")?;
                    let price = Binds::PriceSku(c.price_cents, &c.sku);
                    DB::affect(&mut *tx, &sql.update_plain, price).await?;
                    tx.commit().await?;
                    Ok(())
                },
            )
            .await?;
            t.measure(
                UPDATED,
                "… SeaORM (find, update the active model)",
                async |s, i| {
                    let c = candidate(hit(i), i as i64);
                    let created = contenders::update_or_create(&s.seaorm, &c).await?;
                    ensure(!created, "SeaORM: created")
                },
            )
            .await?;

            t.measure(UPSERTED, "library", async |s, i| {
                let c = candidate(new(i), 1);
                let (_, o) = Product::update_or_create_by_sku(&s.pool, &c, &fields).await?;
                ensure(o == Outcome::Created, "library: not created")
            })
            .await?;
            t.measure(
                UPSERTED,
                "… hand-written sqlx, same statements",
                async |s, i| {
                    let c = candidate(new(i), 1);
                    if sql.mysql {
                        let updated = mysql_upsert(s, sql, &c, i).await?;
                        return ensure(!updated, "sqlx: updated");
                    }
                    let mut conn = s.pool.acquire().await?;
                    let price = Binds::PriceSku(c.price_cents, &c.sku);
                    let row = DB::fetch_row(&mut *conn, &sql.update, price).await?;
                    ensure(row.is_none(), "sqlx: updated")?;
                    let row =
                        DB::fetch_row(&mut *conn, &sql.insert_do_nothing, Binds::Row(&c)).await?;
                    ensure(row.is_some(), "sqlx: not inserted")
                },
            )
            .await?;
            t.measure(
                UPSERTED,
                "… Django's locked read, then insert",
                async |s, i| {
                    let c = candidate(new(i), 1);
                    let mut tx = s.pool.begin().await?;
                    let row =
                        DB::fetch_row(&mut *tx, &sql.select_for_update, Binds::Sku(&c.sku)).await?;
                    ensure(row.is_none(), "sqlx: found")?;
                    let row = DB::fetch_row(&mut *tx, &sql.insert_plain, Binds::Row(&c)).await?;
                    tx.commit().await?;
                    ensure(row.is_some(), "sqlx: not inserted")
                },
            )
            .await?;
            t.measure(UPSERTED, "… SeaORM (find, insert)", async |s, i| {
                let created =
                    contenders::update_or_create(&s.seaorm, &candidate(new(i), 1)).await?;
                ensure(created, "SeaORM: not created")
            })
            .await?;
        }
        t.print();
        Ok(())
    }
}
