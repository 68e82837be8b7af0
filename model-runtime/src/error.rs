//! The error type of every runtime operation.

use crate::backend::Dialect;

/// What went wrong in a runtime operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database or the driver reported an error; the sqlx error is the source.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A row came back that does not decode into the model: the table's columns do not match the
    /// struct (was the schema created from another version of the model?).
    #[error("could not read a `{model}` from its row: {source}")]
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

/// Why a schema cannot be created as declared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The backend cannot do what the model declares.
    #[error("{model}.{column}: {reason} on {dialect}; {hint}")]
    Unsupported {
        /// The model's Rust name.
        model: &'static str,
        /// The column's name.
        column: &'static str,
        /// The backend.
        dialect: Dialect,
        /// What the backend cannot do.
        reason: &'static str,
        /// What to change.
        hint: &'static str,
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
