//! Model-level operations, written once over [`Backend`].

use sqlx::Acquire;

use crate::backend::Backend;
use crate::error::Error;
use crate::model::{Key, Model};
use crate::query;

fn decode<M: Model, DB: Backend>(row: &DB::Row) -> Result<M, Error> {
    M::from_row(DB::row_ref(row)).map_err(|source| Error::Decode {
        model: M::META.name,
        source,
    })
}

/// Inserts one row and returns it as stored (with its database-assigned primary key).
///
/// A duplicate key is an error; to tolerate one, use the generated `get_or_create_by_…` methods.
pub async fn insert<'c, M, A>(conn: A, row: &M) -> Result<M, Error>
where
    M: Model,
    A: Acquire<'c>,
    A::Database: Backend,
{
    let dialect = <A::Database as Backend>::DIALECT;
    let (sql, values) = query::insert_returning(row, dialect);
    let mut conn = conn.acquire().await?;
    let stored = <A::Database as Backend>::fetch_optional(&mut conn, sql, values)
        .await?
        .ok_or(Error::Database(sqlx::Error::RowNotFound))?;
    decode::<M, A::Database>(&stored)
}

/// Finds the row with this key, if any.
pub async fn get<'c, M, K, A>(conn: A, key: &K) -> Result<Option<M>, Error>
where
    M: Model,
    K: Key<M>,
    A: Acquire<'c>,
    A::Database: Backend,
{
    let dialect = <A::Database as Backend>::DIALECT;
    let select = query::select_by_key(M::META, K::KEY, key.values(dialect));
    let (sql, values) = query::render_select(&select, dialect);
    let mut conn = conn.acquire().await?;
    let row = <A::Database as Backend>::fetch_optional(&mut conn, sql, values).await?;
    row.as_ref().map(decode::<M, A::Database>).transpose()
}
