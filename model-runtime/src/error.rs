//! The error type of every runtime operation.

use crate::backend::Dialect;
use crate::violation::{IntegrityKind, UniqueViolation};

/// What went wrong in a runtime operation.
///
/// Each message (`Display`) is one line saying what happened. The error underneath, the sqlx error
/// or the error inside a failed bulk insert or migration, is [`source()`](std::error::Error::source)
/// and is not repeated in the message: log the chain to see the database's own text. What to do
/// about a duplicate is [`UniqueViolation::advice`].
///
/// Match the variants you handle; [`Error::unique_violation`] and [`Error::is_retryable`] also see
/// through a failed [bulk insert](Error::Bulk):
///
/// ```
/// use model_runtime::{Error, Model, Schema};
///
/// #[derive(Model, Debug)]
/// struct Product {
///     #[model(primary_key, auto_increment)]
///     id: i64,
///     #[unique]
///     sku: String,
/// }
///
/// /// Inserts the product; a duplicate SKU is not an error here, only a message.
/// async fn add(pool: &sqlx::SqlitePool, sku: &str) -> Result<Option<Product>, Error> {
///     let row = Product { id: 0, sku: sku.into() };
///     match row.insert(pool).await {
///         Ok(stored) => Ok(Some(stored)),
///         Err(Error::UniqueViolation(violation)) if violation.is::<ProductBySku>() => {
///             println!("skipped: {violation}");
///             Ok(None)
///         }
///         Err(error) => Err(error),
///     }
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Error> {
///     let pool = sqlx::sqlite::SqlitePoolOptions::new()
///         .max_connections(1)
///         .connect("sqlite::memory:")
///         .await?;
///     Schema::new().model::<Product>().create(&pool).await?;
///     assert!(add(&pool, "A-1").await?.is_some());
///     assert!(add(&pool, "A-1").await?.is_none());
///
///     // For a log: the one-line message, then each cause down to the database's own error.
///     let error = Product { id: 0, sku: "A-1".into() }.insert(&pool).await.unwrap_err();
///     assert_eq!(
///         error.to_string(),
///         r#"duplicate Product: unique constraint "product_sku_key" (sku) already has a row with sku = "A-1""#
///     );
///     let cause = std::error::Error::source(&error).expect("the database's error");
///     assert!(cause.downcast_ref::<sqlx::Error>().is_some());
///     assert!(cause.to_string().contains("UNIQUE constraint failed: product.sku"));
///     assert!(!error.is_retryable());
///
///     // An error without a database behind it has no source.
///     let error = Product { id: 41, sku: "B-2".into() }.update(&pool).await.unwrap_err();
///     assert!(matches!(error, Error::NotFound { model: "Product" }));
///     assert!(std::error::Error::source(&error).is_none());
///     Ok(())
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database or the driver reported an error; the sqlx error is the source.
    #[error("database error")]
    Database(#[source] sqlx::Error),

    /// The database gave up on the transaction so that a concurrent one could proceed: a
    /// serialization failure or deadlock (PostgreSQL SQLSTATE 40001 / 40P01, MySQL 1213), a lock
    /// wait timeout (MySQL 1205), or SQLite's "database is locked". Nothing of the failed transaction
    /// persists; running the whole transaction again is the correct answer, which
    /// [`crate::transaction`] does by itself.
    ///
    /// On a multi-primary cluster this is also how a write conflict between nodes is reported,
    /// whenever it arrives: MariaDB Galera's certification failure is 1213, returned by the
    /// statement, after the rows of an `INSERT … RETURNING` in autocommit, or by `COMMIT`;
    /// CockroachDB and YugabyteDB report 40001, also at `COMMIT`.
    #[error("{reason}; retry the transaction")]
    Retryable {
        /// Why, in words.
        reason: &'static str,
        /// What the database reported.
        #[source]
        source: sqlx::Error,
    },

    /// The database server this connection goes to cannot serve the call now: the connection was
    /// lost (reset, refused, broken pipe, closed by the server), the server is shutting down, or a
    /// cluster node is not part of the cluster's primary component (MariaDB Galera: error 1047
    /// "WSREP has not yet prepared node for application use", or a node cut off from its peers).
    /// [`Error::is_node_unavailable`] is true for it.
    ///
    /// What to do: run the call again on **another connection**, preferably to another node of the
    /// cluster; this node may come back after a while (a Galera node that rejoins answers 1047
    /// until it has caught up). [`crate::transaction`] runs its closure again on a fresh
    /// connection from its pool, except when the connection was lost while `COMMIT` was in flight.
    /// A write whose connection was lost may have been committed: `get_or_create` and
    /// `update_or_create` are safe to run again (they then find the row), a plain insert may
    /// report a duplicate.
    #[error("{reason}; retry on another connection or cluster node")]
    NodeUnavailable {
        /// Why, in words.
        reason: &'static str,
        /// What the driver or the database reported.
        #[source]
        source: sqlx::Error,
    },

    /// A concurrent transaction created the row this call looked for, but it committed after this
    /// transaction's snapshot (PostgreSQL REPEATABLE READ or SERIALIZABLE), so no statement of this
    /// transaction can see it. Like [`Error::Retryable`]: run the transaction again.
    #[error(
        "a concurrent transaction created this `{model}` after this transaction's snapshot was taken, so it cannot be read here; retry the transaction"
    )]
    RowNotVisible {
        /// The model's Rust name.
        model: &'static str,
    },

    /// The database rolled back this call's transaction while the call was writing, without
    /// reporting it as an error: the write did not happen. Seen on MariaDB Galera, whose nodes roll
    /// back a local transaction that conflicts with a write set from another node: after an
    /// `UPDATE`, the read that followed saw the other writer's row; after bulk skip mode's
    /// `INSERT IGNORE`, which turns that rollback into a warning, the rows it returned were never
    /// stored and the session was no longer in a transaction. Like [`Error::Retryable`]: run the
    /// transaction again, which [`crate::transaction`], the autocommit calls and bulk calls outside
    /// the caller's transaction do by themselves.
    #[error(
        "the database rolled back this transaction while it wrote this `{model}`, without reporting an error; nothing was written: retry the transaction"
    )]
    WriteLost {
        /// The model's Rust name.
        model: &'static str,
    },

    /// A duplicate: a row with the same values of a unique constraint exists. Says which declared
    /// constraint, its columns and the values.
    #[error(transparent)]
    UniqueViolation(Box<UniqueViolation>),

    /// Another integrity error: NOT NULL, foreign key, CHECK, or a value too long for its column.
    #[error("cannot write this `{model}`: {kind}")]
    Integrity {
        /// Which rule.
        kind: IntegrityKind,
        /// The model's Rust name.
        model: &'static str,
        /// What the database reported.
        #[source]
        source: sqlx::Error,
    },

    /// A value this backend cannot store exactly, refused before any statement was sent: NaN on
    /// SQLite (it would become NULL), -0.0 where it would become 0.0, NUL in text on PostgreSQL, a
    /// time with nanoseconds where only microseconds are kept, a date outside the backend's range…
    /// The check runs on every write path (insert, update, get_or_create, update_or_create, bulk
    /// insert), so that no value changes silently and no half-encoded statement reaches the server.
    #[error("cannot write this `{model}`: field `{field}`: {reason}; nothing was sent")]
    InvalidValue {
        /// The model's Rust name.
        model: &'static str,
        /// The field's Rust name.
        field: &'static str,
        /// The backend.
        dialect: Dialect,
        /// Why the value cannot be stored, naming the backend, and what to do instead.
        reason: &'static str,
    },

    /// A bulk insert failed. Nothing of it was kept, except, with
    /// [`commit_each_chunk`](crate::BulkInsert::commit_each_chunk), the chunks before the failed one.
    #[error(
        "bulk insert failed{}; {}",
        row.map(|r| format!(" at input row {r}")).unwrap_or_else(|| format!(" in the chunk starting at input row {first_row}")),
        if *committed_rows == 0 { "none of its rows were kept".to_owned() } else { format!("input rows 0..{committed_rows} were committed, none after") }
    )]
    Bulk {
        /// The input row (0-based) that caused it, where the database's error identifies it.
        row: Option<usize>,
        /// The first input row of the chunk that failed.
        first_row: usize,
        /// How many input rows (from the first) are committed: their chunks were committed before
        /// the failure ([`commit_each_chunk`](crate::BulkInsert::commit_each_chunk)); 0 otherwise.
        committed_rows: usize,
        /// What failed.
        #[source]
        source: Box<Error>,
    },

    /// A migration [`Plan`](crate::migrate::Plan) could not be applied, or not in full.
    #[error(
        "migration failed: {failed}{}",
        if applied.is_empty() { String::new() } else { format!(" (applied before the failure: {})", applied.join("; ")) }
    )]
    Migration {
        /// The steps applied before the failure (MySQL applies each on its own; the other backends
        /// apply all or none, so this is empty there).
        applied: Vec<String>,
        /// What failed, or what blocks the plan, and what to do.
        failed: String,
        /// The database's error, where there was one.
        #[source]
        source: Option<Box<Error>>,
    },

    /// The call cannot run as configured; nothing was sent to the database.
    #[error("{model}: {reason}")]
    InvalidArgument {
        /// The model's Rust name.
        model: &'static str,
        /// What is wrong, and what to do instead.
        reason: String,
    },

    /// The row to update or delete does not exist.
    #[error("no `{model}` with this primary key exists")]
    NotFound {
        /// The model's Rust name.
        model: &'static str,
    },

    /// A row came back that does not decode into the model: the table's columns do not match the
    /// struct (was the schema created from another version of the model?).
    #[error("could not read a `{model}` from its row")]
    Decode {
        /// The model's Rust name.
        model: &'static str,
        /// What sqlx reported.
        #[source]
        source: sqlx::Error,
    },

    /// The schema cannot be created as declared on this backend.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

impl Error {
    /// Whether running the whole transaction again can succeed: [`Error::Retryable`],
    /// [`Error::RowNotVisible`] and [`Error::WriteLost`], also inside an [`Error::Bulk`].
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Bulk { source, .. } => source.is_retryable(),
            _ => matches!(
                self,
                Error::Retryable { .. } | Error::RowNotVisible { .. } | Error::WriteLost { .. }
            ),
        }
    }

    /// Whether the connection's server cannot serve the call now ([`Error::NodeUnavailable`], also
    /// inside an [`Error::Bulk`]): run it again on another connection, preferably to another
    /// cluster node. Not [`Error::is_retryable`]: the same connection would fail again.
    pub fn is_node_unavailable(&self) -> bool {
        match self {
            Error::Bulk { source, .. } => source.is_node_unavailable(),
            _ => matches!(self, Error::NodeUnavailable { .. }),
        }
    }

    /// The duplicate-key violation, if this is one (also inside an [`Error::Bulk`]).
    pub fn unique_violation(&self) -> Option<&UniqueViolation> {
        match self {
            Error::UniqueViolation(violation) => Some(violation),
            Error::Bulk { source, .. } => source.unique_violation(),
            _ => None,
        }
    }

    /// The MySQL / MariaDB error number behind this error, if there is one.
    pub(crate) fn mysql_error_number(&self) -> Option<u16> {
        #[cfg(feature = "mysql")]
        if let Some(my) = self
            .as_database_error()?
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        {
            return Some(my.number());
        }
        None
    }

    /// The database error behind this error, if there is one.
    pub fn as_database_error(&self) -> Option<&dyn sqlx::error::DatabaseError> {
        let source = match self {
            Error::Bulk { source, .. } => return source.as_database_error(),
            Error::UniqueViolation(violation) => violation.database_error()?,
            Error::Database(source)
            | Error::Retryable { source, .. }
            | Error::NodeUnavailable { source, .. }
            | Error::Integrity { source, .. } => source,
            _ => return None,
        };
        match source {
            sqlx::Error::Database(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for Error {
    /// Sorts the errors a caller should retry from the rest.
    fn from(error: sqlx::Error) -> Self {
        if let Some(reason) = retry_reason(&error) {
            return Error::Retryable {
                reason,
                source: error,
            };
        }
        match unavailable_reason(&error) {
            Some(reason) => Error::NodeUnavailable {
                reason,
                source: error,
            },
            None => Error::Database(error),
        }
    }
}

/// Why the connection's server cannot serve the call, when that is the error: the connection is
/// gone, the server is going away, or a cluster node is outside the primary component.
fn unavailable_reason(error: &sqlx::Error) -> Option<&'static str> {
    let db = match error {
        sqlx::Error::Io(_) => {
            return Some("the connection to the database server was lost or refused");
        }
        sqlx::Error::Database(db) => db,
        _ => return None,
    };
    let code = db.code();
    let code = code.as_deref().unwrap_or("");
    if let Some(reason) = mysql_unavailable(&**db) {
        return Some(reason);
    }
    // PostgreSQL (and the databases on its protocol): admin_shutdown, crash_shutdown,
    // cannot_connect_now, and the connection exceptions (class 08).
    match code {
        "57P01" | "57P02" | "57P03" => Some("the database server is shutting down or starting up"),
        _ if code.starts_with("08") => Some("the database server broke the connection"),
        _ => None,
    }
}

/// MySQL / MariaDB errors that say this server cannot serve the call now.
fn mysql_unavailable(db: &dyn sqlx::error::DatabaseError) -> Option<&'static str> {
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return match my.number() {
            // ER_UNKNOWN_COM_ERROR, which Galera uses for "WSREP has not yet prepared node for
            // application use" (a node outside the primary component, or still joining).
            1047 => {
                Some("this cluster node is not ready for clients (not in the primary component)")
            }
            // ER_SERVER_SHUTDOWN, ER_CONNECTION_KILLED.
            1053 | 1927 => Some("the database server is shutting down"),
            _ if my.message().contains("Primary Component")
                || my.message().contains("WSREP has not yet prepared") =>
            {
                Some("this cluster node is not connected to the primary component")
            }
            _ => None,
        };
    }
    let _ = db;
    None
}

fn retry_reason(error: &sqlx::Error) -> Option<&'static str> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    let code = db.code();
    let code = code.as_deref().unwrap_or("");
    // PostgreSQL SQLSTATEs, MySQL error numbers (sqlx reports them as the code), SQLite result codes.
    match code {
        "40001" => Some("the database could not serialize this transaction with a concurrent one"),
        "40P01" | "1213" => Some("the database broke a deadlock by aborting this transaction"),
        "1205" => Some("a lock wait timed out"),
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT, SQLITE_BUSY_RECOVERY.
        "5" | "6" | "517" | "261" => {
            Some("SQLite reported the database as locked by another writer")
        }
        _ => mysql_number(&**db, code),
    }
}

/// sqlx reports a MySQL error's SQLSTATE as `code()`; the error number is only in the concrete type.
fn mysql_number(db: &dyn sqlx::error::DatabaseError, _code: &str) -> Option<&'static str> {
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return match my.number() {
            1213 => Some("the database broke a deadlock by aborting this transaction"),
            1205 => Some("a lock wait timed out"),
            _ => None,
        };
    }
    let _ = db;
    None
}

#[cfg(test)]
mod tests {
    use super::Error;

    fn bulk(source: Error) -> Error {
        Error::Bulk {
            row: Some(3),
            first_row: 0,
            committed_rows: 0,
            source: Box::new(source),
        }
    }

    #[test]
    fn bulk_wrapper_is_seen_through() {
        let retryable = Error::RowNotVisible { model: "Product" };
        assert!(retryable.is_retryable());
        assert!(bulk(retryable).is_retryable());
        assert!(bulk(bulk(Error::RowNotVisible { model: "Product" })).is_retryable());
        assert!(!bulk(Error::NotFound { model: "Product" }).is_retryable());
        assert!(
            bulk(Error::NotFound { model: "Product" })
                .unique_violation()
                .is_none()
        );
    }

    #[test]
    fn a_lost_connection_is_node_unavailable_not_retryable() {
        for kind in [
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            let error = Error::from(sqlx::Error::Io(kind.into()));
            assert!(matches!(error, Error::NodeUnavailable { .. }), "{kind:?}");
            assert!(error.is_node_unavailable() && !error.is_retryable());
            assert!(bulk(error).is_node_unavailable());
            assert!(
                Error::from(sqlx::Error::Io(kind.into()))
                    .to_string()
                    .ends_with("retry on another connection or cluster node")
            );
        }
        assert!(!Error::from(sqlx::Error::RowNotFound).is_node_unavailable());
        assert!(!Error::RowNotVisible { model: "Item" }.is_node_unavailable());
    }

    #[derive(crate::Model)]
    struct Item {
        #[model(primary_key)]
        id: i64,
        #[unique]
        #[model(max_length = 10)]
        sku: String,
    }

    #[test]
    fn bulk_wrapper_shows_its_unique_violation() {
        let row = Item {
            id: 1,
            sku: "A-1".into(),
        };
        let key = crate::KeyId::Unique(0);
        let violation = crate::UniqueViolation::predicted(&row, key, crate::Dialect::Sqlite);
        let error = bulk(Error::UniqueViolation(Box::new(violation)));
        let seen = error.unique_violation().expect("seen through Error::Bulk");
        assert_eq!(seen.key(), Some(key));
        assert!(!error.is_retryable());
    }
}

/// Why a schema cannot be created as declared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The backend cannot do what the model declares.
    #[error("{model}.{column}: {reason}; {hint}")]
    Unsupported {
        /// The model's Rust name.
        model: &'static str,
        /// The column's name.
        column: &'static str,
        /// The backend.
        dialect: Dialect,
        /// What the backend cannot do, naming it.
        reason: &'static str,
        /// What to change.
        hint: &'static str,
    },
    /// MySQL before 8.0 has no binary collation that keeps trailing spaces significant, so a text key
    /// could not compare exactly as it does on the other backends.
    #[error(
        "MySQL {version} has no binary NO PAD collation, so a text key would not compare exactly (\"a\" and \"a \" would collide); use MySQL 8.0+ or MariaDB 10.5+"
    )]
    ExactKeysUnsupported {
        /// The server's `VERSION()`.
        version: String,
    },
    /// Foreign keys form a cycle between different tables, so no creation order works.
    #[error(
        "the foreign keys of tables {tables:?} form a cycle; create them without one of the references and add it with ALTER TABLE"
    )]
    ForeignKeyCycle {
        /// The tables in or behind the cycle.
        tables: Vec<&'static str>,
    },
}
