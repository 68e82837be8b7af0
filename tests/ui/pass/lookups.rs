// Must compile: the generated lookups accept anything convertible into the field's type, on any
// backend's pool or transaction.
use model_runtime::Model;

#[derive(Model, Debug)]
#[unique_together(tenant, email)]
struct Account {
    #[model(primary_key, auto_increment)]
    id: i64,
    tenant: i32,
    email: String,
}

async fn lookups(
    sqlite: &sqlx::SqlitePool,
    pg: &sqlx::PgPool,
    tx: &mut sqlx::Transaction<'_, sqlx::MySql>,
) -> Result<(), model_runtime::Error> {
    let _: Option<Account> = Account::get_by_tenant_and_email(sqlite, 1i16, "a@example.com").await?;
    let _: Option<Account> = Account::get_by_id(pg, 7).await?;
    let _: Option<Account> = Account::get_by_tenant_and_email(&mut **tx, 1, String::from("b")).await?;
    let _ = model_runtime::get(sqlite, &AccountById { id: 1 }).await?;
    Ok(())
}

fn main() {
    let _ = lookups;
}
