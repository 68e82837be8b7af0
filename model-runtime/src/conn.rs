//! What an operation runs on ([`Conn`]), and how the library releases a connection it acquired when
//! a call is cut off part-way.

use sqlx::pool::PoolConnection;

use crate::backend::Backend;

/// What every operation takes: the caller's pool (`&Pool<DB>`), connection (`&mut DB::Connection`,
/// `&mut PoolConnection<DB>`) or transaction (`&mut Transaction<DB>`), for an enabled backend.
///
/// It is [`sqlx::Acquire`] with the bounds the library needs, implemented for everything that
/// satisfies them: write `conn: impl Conn<'c>` in a function of your own that passes a connection on.
///
/// ```
/// use model_runtime::{Conn, Error, Model};
///
/// #[derive(Model)]
/// struct Tag {
///     #[model(primary_key, auto_increment)]
///     id: i64,
///     #[unique]
///     name: String,
/// }
///
/// /// Works on a pool, a connection or a transaction of any backend.
/// async fn tag<'c>(conn: impl Conn<'c>, name: &str) -> Result<Tag, Error> {
///     let candidate = Tag { id: 0, name: name.into() };
///     Ok(Tag::get_or_create_by_name(conn, &candidate).await?.0)
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// # model_runtime::Schema::new().model::<Tag>().create(&pool).await?;
/// let mut tx = pool.begin().await?;
/// let first = tag(&mut *tx, "rust").await?;
/// let again = tag(&mut *tx, "rust").await?;
/// tx.commit().await?;
/// assert_eq!(first.id, again.id);
/// # Ok::<(), Error>(()) }).unwrap();
/// ```
pub trait Conn<'c>: sqlx::Acquire<'c, Database: Backend, Connection: Release> + Send {}

impl<'c, A> Conn<'c> for A
where
    A: sqlx::Acquire<'c> + Send,
    A::Database: Backend,
    A::Connection: Release,
{
}

mod sealed {
    pub trait Sealed {}
}

/// A connection an operation acquired from what the caller passed ([`sqlx::Acquire::Connection`]):
/// a [`PoolConnection`] when the caller passed a pool, a borrowed `&mut` connection otherwise.
/// Implemented for both; not meant to be implemented elsewhere.
///
/// A call that is dropped part-way (a `tokio::time::timeout` around it, a cancelled request) can
/// leave a connection whose state nobody knows: sqlx 0.9's MySQL and PostgreSQL drivers lose track
/// of a `BEGIN` they sent but whose answer they had not read, and the server stays inside a
/// transaction that sqlx believes closed, into which the next user's writes would go. A pooled
/// connection the library acquired itself is then closed instead of going back to the pool. A
/// borrowed connection cannot be closed by the library: pass the pool, or keep such calls from
/// being cut off.
pub trait Release: sealed::Sealed {
    /// Closes the connection when it is dropped, instead of returning it to its pool (nothing for a
    /// borrowed connection).
    #[doc(hidden)]
    fn close_when_dropped(&mut self);
}

impl<DB: sqlx::Database> sealed::Sealed for PoolConnection<DB> {}
impl<DB: sqlx::Database> Release for PoolConnection<DB> {
    fn close_when_dropped(&mut self) {
        self.close_on_drop();
    }
}

impl<C: sqlx::Connection> sealed::Sealed for &mut C {}
impl<C: sqlx::Connection> Release for &mut C {
    fn close_when_dropped(&mut self) {}
}

/// Holds an acquired connection, and closes it when dropped while `close` is set: set it before a
/// step whose interruption would leave the connection's state unknown, clear it once the state is
/// known again (a commit or rollback the server acknowledged, a call that returned).
pub(crate) struct CloseUnlessClean<C: Release> {
    pub(crate) conn: C,
    pub(crate) close: bool,
}

impl<C: Release> CloseUnlessClean<C> {
    /// A connection an operation acquired: closed if the operation is cut off before
    /// [`CloseUnlessClean::done`], on the backends whose drivers can then leave it in an unknown
    /// state (MySQL and PostgreSQL; SQLite's cannot, and closing an in-memory database's only
    /// connection would throw the database away).
    pub(crate) fn held(conn: C, dialect: crate::Dialect) -> Self {
        CloseUnlessClean {
            conn,
            close: dialect.closes_cut_connections(),
        }
    }

    /// Acquires the connection an operation works on, held as [`CloseUnlessClean::held`] holds it.
    pub(crate) async fn acquire<'c, A>(conn: A) -> Result<Self, crate::Error>
    where
        A: Conn<'c, Connection = C>,
    {
        let dialect = <A::Database as Backend>::DIALECT;
        Ok(Self::held(conn.acquire().await?, dialect))
    }

    /// The operation returned: its connection's state is known.
    pub(crate) fn done(&mut self) {
        self.close = false;
    }
}

impl<C: Release + std::ops::Deref> std::ops::Deref for CloseUnlessClean<C> {
    type Target = C::Target;
    fn deref(&self) -> &C::Target {
        &self.conn
    }
}

impl<C: Release + std::ops::DerefMut> std::ops::DerefMut for CloseUnlessClean<C> {
    fn deref_mut(&mut self) -> &mut C::Target {
        &mut self.conn
    }
}

impl<C: Release> Drop for CloseUnlessClean<C> {
    fn drop(&mut self) {
        if self.close {
            self.conn.close_when_dropped();
        }
    }
}
