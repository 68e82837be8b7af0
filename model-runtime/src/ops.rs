//! Model-level operations, written once over [`Backend`].

use sqlx::Acquire;

use crate::backend::{Backend, Dialect};
use crate::error::Error;
use crate::meta::KeyId;
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
    let (sql, values) = query::render_select(&select, dialect, false);
    let mut conn = conn.acquire().await?;
    let row = <A::Database as Backend>::fetch_optional(&mut conn, sql, values).await?;
    row.as_ref().map(decode::<M, A::Database>).transpose()
}

/// Whether [`get_or_create`] found the row or created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The row existed; the candidate's other values were not used.
    Found,
    /// The row was inserted by this call.
    Created,
}

impl Outcome {
    /// `true` for [`Outcome::Created`], like the `created` flag of Django's `get_or_create`.
    pub fn created(self) -> bool {
        self == Outcome::Created
    }
}

/// Returns the row whose key `K` equals the candidate's, inserting the candidate if there is none.
///
/// The candidate's key columns are the lookup; its other columns are used only when creating
/// (Django's `defaults`). Statements: a `SELECT` by key (found: one statement), then an
/// `INSERT … ON CONFLICT (key) DO NOTHING RETURNING …` (created: two). When a concurrent caller wins
/// the race between the two, the insert does nothing and a final `SELECT` returns the winner's row
/// (`LOCK IN SHARE MODE` on MySQL, so that a REPEATABLE READ snapshot does not hide it). Correctness
/// never rests on the first `SELECT`: the insert is atomic.
///
/// A conflict on a constraint other than `K` is an error. Under PostgreSQL REPEATABLE READ or
/// SERIALIZABLE a winner committed after the transaction's snapshot cannot be seen at all; the
/// database reports a serialization failure (SQLSTATE 40001), which comes back as the sqlx error:
/// retry the transaction.
pub async fn get_or_create<'c, M, K, A>(conn: A, candidate: &M) -> Result<(M, Outcome), Error>
where
    M: Model,
    K: Key<M>,
    A: Acquire<'c>,
    A::Database: Backend,
{
    let dialect = <A::Database as Backend>::DIALECT;
    let mut conn = conn.acquire().await?;
    let key = K::KEY;

    if let Some(found) = select_by_key::<M, A::Database>(&mut conn, candidate, key, false).await? {
        return Ok((found, Outcome::Found));
    }

    match dialect {
        Dialect::Sqlite | Dialect::Postgres => {
            let (sql, values) = query::insert_returning_on_conflict(candidate, Some(key), dialect);
            if let Some(row) =
                <A::Database as Backend>::fetch_optional(&mut conn, sql, values).await?
            {
                return Ok((decode::<M, A::Database>(&row)?, Outcome::Created));
            }
        }
        Dialect::MySql => {
            // MySQL has no conflict target, and `ON DUPLICATE KEY` / `INSERT IGNORE` react to every
            // key: insert plainly and look at which key refused it.
            let (sql, values) = query::insert_returning(candidate, dialect);
            match <A::Database as Backend>::fetch_optional(&mut conn, sql, values).await {
                Ok(Some(row)) => return Ok((decode::<M, A::Database>(&row)?, Outcome::Created)),
                Ok(None) => return Err(Error::Database(sqlx::Error::RowNotFound)),
                Err(error) if mysql_duplicate_of(&error, M::META.key_name(key)) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }

    // A concurrent caller inserted the key between our SELECT and INSERT: return its row.
    match select_by_key::<M, A::Database>(&mut conn, candidate, key, true).await? {
        Some(found) => Ok((found, Outcome::Found)),
        None => Err(Error::Database(sqlx::Error::RowNotFound)),
    }
}

async fn select_by_key<M: Model, DB: Backend>(
    conn: &mut DB::Connection,
    candidate: &M,
    key: KeyId,
    locking: bool,
) -> Result<Option<M>, Error> {
    let values = query::key_values_of(candidate, key, DB::DIALECT);
    let select = query::select_by_key(M::META, key, values);
    let (sql, values) = query::render_select(&select, DB::DIALECT, locking);
    let row = DB::fetch_optional(conn, sql, values).await?;
    row.as_ref().map(decode::<M, DB>).transpose()
}

/// Whether a MySQL error is error 1062 (duplicate entry) on the key named `key`. MySQL writes
/// `for key 'name'` (8.0.19+: `'table.name'`) and `'PRIMARY'` for the primary key.
fn mysql_duplicate_of(error: &sqlx::Error, key: &str) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    if db.kind() != sqlx::error::ErrorKind::UniqueViolation {
        return false;
    }
    let message = db.message();
    let Some(start) = message.rfind("for key '") else {
        return false;
    };
    let reported = message[start + "for key '".len()..].trim_end_matches('\'');
    let reported = reported.rsplit('.').next().unwrap_or(reported);
    let wanted = if key == "PRIMARY KEY" { "PRIMARY" } else { key };
    reported == wanted
}
