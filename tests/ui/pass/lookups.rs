// Must compile: the generated lookups accept anything convertible into the field's type, on any
// backend's pool or transaction.
use model_runtime::Key;
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
    let _: Option<Account> = Account::by_tenant_and_email(1i16, "a@example.com").get(sqlite).await?;
    let _: Option<Account> = Account::by_id(7).get(pg).await?;
    let _: Option<Account> = Account::by_tenant_and_email(1, String::from("b")).get(&mut **tx).await?;
    let _ = model_runtime::get(sqlite, AccountById { id: 1 }).await?;
    Ok(())
}

fn main() {
    let _ = lookups;
}

// The futures are `Send`, so they run in spawned tasks and in web handlers.
#[allow(dead_code)]
fn futures_are_send(pool: sqlx::PgPool, candidate: Account) {
    fn is_send<T: Send>(_: &T) {}
    let fut = async move {
        let _ = Account::get_or_create_by_tenant_and_email(&pool, &candidate).await;
        let _ = Account::update_or_create_by_id(&pool, &candidate, &[AccountField::Email]).await;
        let mut tx = pool.begin().await.unwrap();
        let _ = Account::by_id(1).get_for_update(&mut tx).await;
        let _ = candidate.update(&mut tx).await;
    };
    is_send(&fut);
}
