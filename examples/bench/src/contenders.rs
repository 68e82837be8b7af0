//! SeaORM's idiomatic equivalents of the library's calls. (The hand-written sqlx contenders are a
//! few statements each, written where they are measured.)

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};

use crate::Result;
use crate::model::{Product, entity};

fn active(c: &Product) -> entity::ActiveModel {
    entity::ActiveModel {
        sku: Set(c.sku.clone()),
        name: Set(c.name.clone()),
        price_cents: Set(c.price_cents),
        ..Default::default()
    }
}

/// get_or_create: find by the unique column, else insert with ON CONFLICT DO NOTHING, else find
/// again. True when it inserted.
pub async fn get_or_create(db: &DatabaseConnection, c: &Product) -> Result<bool> {
    let find = || entity::Entity::find().filter(entity::Column::Sku.eq(c.sku.clone()));
    if find().one(db).await?.is_some() {
        return Ok(false);
    }
    // `do_nothing_on` rather than `do_nothing`: on MySQL sea-query renders the latter as invalid
    // SQL, and polyfills the former as `ON DUPLICATE KEY UPDATE id = id`.
    let insert = entity::Entity::insert(active(c)).on_conflict(
        OnConflict::column(entity::Column::Sku)
            .do_nothing_on([entity::Column::Id])
            .to_owned(),
    );
    match insert.exec_with_returning(db).await {
        Ok(_) => Ok(true),
        Err(error) => match find().one(db).await? {
            Some(_) => Ok(false),
            None => Err(format!("SeaORM insert failed and no row exists: {error}").into()),
        },
    }
}

/// update_or_create: find, then update the active model or insert a new one. True when it
/// inserted.
pub async fn update_or_create(db: &DatabaseConnection, c: &Product) -> Result<bool> {
    let found = entity::Entity::find()
        .filter(entity::Column::Sku.eq(c.sku.clone()))
        .one(db)
        .await?;
    match found {
        Some(found) => {
            let mut row: entity::ActiveModel = found.into();
            row.price_cents = Set(c.price_cents);
            row.update(db).await?;
            Ok(false)
        }
        None => {
            active(c).insert(db).await?;
            Ok(true)
        }
    }
}

/// A bulk import: `insert_many(…).on_conflict(…)` per chunk of 1000, in one transaction; skip
/// mode, or update mode setting `price_cents`.
pub async fn insert_many(db: &DatabaseConnection, rows: &[Product], update: bool) -> Result<()> {
    let tx = db.begin().await?;
    for chunk in rows.chunks(1000) {
        let conflict = if update {
            OnConflict::column(entity::Column::Sku)
                .update_column(entity::Column::PriceCents)
                .to_owned()
        } else {
            OnConflict::column(entity::Column::Sku)
                .do_nothing_on([entity::Column::Id])
                .to_owned()
        };
        entity::Entity::insert_many(chunk.iter().map(active))
            .on_conflict(conflict)
            .exec_without_returning(&tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
