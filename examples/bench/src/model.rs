//! The one table every benchmark uses, as a model, as a SeaORM entity, and as the SQL the
//! hand-written contenders send.

use std::sync::Arc;

use model_runtime::{Dialect, Model};

pub const TABLE: &str = "bench_products";

#[derive(Model, Debug, Clone)]
#[model(table = "bench_products")]
pub struct Product {
    #[model(primary_key, auto_increment)]
    pub id: i64,
    #[unique]
    #[model(max_length = 40)]
    pub sku: String,
    #[model(max_length = 100)]
    pub name: String,
    pub price_cents: i64,
}

/// A row to get or create, by its key.
pub fn candidate(sku: String, price_cents: i64) -> Product {
    Product {
        id: 0,
        name: format!("name of {sku}"),
        sku,
        price_cents,
    }
}

/// The `i`th row of a bulk import.
pub fn bulk_row(i: usize, price_cents: i64) -> Product {
    Product {
        id: 0,
        sku: format!("B{i:08}"),
        name: format!("bulk {i}"),
        price_cents,
    }
}

/// What the hand-written contenders decode each row into, as the library decodes into `Product`.
pub type Row4 = (i64, String, String, i64);

/// The same table as a SeaORM entity.
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "bench_products")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub sku: String,
        pub name: String,
        pub price_cents: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Hand-written SQL for one dialect. `select`, `insert_do_nothing`, `insert_plain` and `update`
/// are the statements the library sends; the others are what Django's patterns send.
pub struct Sql {
    pub select: Arc<str>,
    /// `SELECT … FOR UPDATE`; a plain `SELECT` on SQLite, which has no `FOR UPDATE`.
    pub select_for_update: Arc<str>,
    /// `INSERT … ON CONFLICT DO NOTHING RETURNING …`; not on MySQL.
    pub insert_do_nothing: Arc<str>,
    pub insert_plain: Arc<str>,
    /// `UPDATE … RETURNING …`; not on MySQL (MariaDB has no `UPDATE … RETURNING`).
    pub update: Arc<str>,
    /// MySQL's update_or_create in one statement, as the library sends it: `INSERT … ON DUPLICATE
    /// KEY UPDATE` guarded to write only a row with our key, `LAST_INSERT_ID(marker)` recording
    /// whether it did, `RETURNING` the row and the marker. Binds: sku, name, price_cents, ours,
    /// other, price_cents, ours, other.
    pub upsert: Arc<str>,
    pub update_plain: Arc<str>,
    pub mysql: bool,
    /// The conflict clauses people write by hand for a multi-row insert: skip, update.
    pub bulk_skip: &'static str,
    pub bulk_update: &'static str,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Sql {
        let (q, p): (char, fn(usize) -> String) = match dialect {
            Dialect::MySql => ('`', |_| "?".to_owned()),
            Dialect::Postgres => ('"', |i| format!("${i}")),
            Dialect::Sqlite => ('"', |_| "?".to_owned()),
        };
        let mysql = dialect == Dialect::MySql;
        let cols = format!("{q}id{q}, {q}sku{q}, {q}name{q}, {q}price_cents{q}");
        let table = format!("{q}{TABLE}{q}");
        let insert = format!(
            "INSERT INTO {table} ({q}sku{q}, {q}name{q}, {q}price_cents{q}) VALUES ({}, {}, {})",
            p(1),
            p(2),
            p(3)
        );
        let select = format!("SELECT {cols} FROM {table} WHERE {q}sku{q} = {}", p(1));
        let update_plain = format!(
            "UPDATE {table} SET {q}price_cents{q} = {} WHERE {q}sku{q} = {}",
            p(1),
            p(2)
        );
        Sql {
            select_for_update: if dialect == Dialect::Sqlite {
                select.clone().into()
            } else {
                format!("{select} FOR UPDATE").into()
            },
            select: select.into(),
            insert_do_nothing: format!("{insert} ON CONFLICT DO NOTHING RETURNING {cols}").into(),
            insert_plain: format!("{insert} RETURNING {cols}").into(),
            update: format!("{update_plain} RETURNING {cols}").into(),
            upsert: {
                let ours = format!("{q}sku{q} <=> VALUES({q}sku{q})");
                format!(
                    "{insert} ON DUPLICATE KEY UPDATE {q}sku{q} = IF(LAST_INSERT_ID(IF({ours}, ?, ?)) > 0, {q}sku{q}, {q}sku{q}), \
                     {q}price_cents{q} = IF({ours}, ?, {q}price_cents{q}) \
                     RETURNING {cols}, CAST((LAST_INSERT_ID() = ?) + 2 * (LAST_INSERT_ID() = ?) AS SIGNED)"
                )
                .into()
            },
            update_plain: update_plain.into(),
            mysql,
            // What people write by hand on MySQL; the library refuses both, as they react to a
            // conflict on any unique key (and IGNORE also hides NOT NULL and truncation errors).
            bulk_skip: if mysql {
                " ON DUPLICATE KEY UPDATE id = id"
            } else {
                " ON CONFLICT (sku) DO NOTHING"
            },
            bulk_update: if mysql {
                " ON DUPLICATE KEY UPDATE price_cents = VALUES(price_cents)"
            } else {
                " ON CONFLICT (sku) DO UPDATE SET price_cents = excluded.price_cents"
            },
        }
    }
}
