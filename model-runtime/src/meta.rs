//! Static metadata of a model: its table, columns, primary key and unique constraints.
//!
//! `#[derive(Model)]` writes one [`ModelMeta`] per model as a constant. It is the typed counterpart of
//! Django's `Model._meta`: list a model's constraints with [`ModelMeta::unique_constraints`], print them
//! with `Display`, or hand the metadata to [`crate::schema`] to build DDL.

use std::fmt;

/// Everything the runtime knows about one model, written by `#[derive(Model)]`.
#[derive(Debug)]
#[non_exhaustive]
pub struct ModelMeta {
    /// The Rust name of the model (`Product`).
    pub name: &'static str,
    /// The table name (`products`).
    pub table: &'static str,
    /// Columns in field declaration order. Every query the runtime builds lists them in this order.
    pub columns: &'static [ColumnMeta],
    /// Index into [`columns`](Self::columns) of the primary key column.
    pub primary_key: usize,
    /// Declared unique constraints in declaration order: field-level `#[unique]` first, in field order,
    /// then struct-level `#[unique_together(…)]`, in attribute order.
    pub uniques: &'static [UniqueConstraint],
    /// Declared plain (non-unique) indexes: field-level `#[index]` first, in field order, then
    /// struct-level `#[index(…)]`, in attribute order.
    pub indexes: &'static [Index],
}

/// One column of a model's table.
#[derive(Debug)]
#[non_exhaustive]
pub struct ColumnMeta {
    /// The Rust field name.
    pub field: &'static str,
    /// The column name in the database (the field name unless `#[model(column = "…")]` says otherwise).
    pub name: &'static str,
    /// The SQL type family; [`crate::schema`] picks the concrete type per backend.
    pub kind: ColumnKind,
    /// `true` for `Option<T>` fields.
    pub nullable: bool,
    /// `#[model(max_length = n)]`: `VARCHAR(n)` instead of `TEXT`.
    pub max_length: Option<u32>,
    /// `#[model(primary_key, auto_increment)]`: the database assigns the value on insert.
    pub auto_increment: bool,
    /// `#[model(references = Other)]`: a foreign key to `Other`'s primary key.
    pub references: Option<ForeignKey>,
    /// `#[model(precision = p, scale = s)]` on a decimal: `NUMERIC(p, s)` instead of the backend's
    /// widest exact decimal, and values checked to fit before they are sent.
    pub decimal: Option<DecimalPrecision>,
}

/// The declared size of a decimal column, `NUMERIC(precision, scale)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecimalPrecision {
    /// The most significant digits, before and after the point together (1 to 28).
    pub precision: u32,
    /// The most digits after the point (0 to `precision`).
    pub scale: u32,
}

/// A foreign key from a column to another model's primary key.
#[derive(Clone, Copy)]
pub struct ForeignKey {
    /// The constraint name (`{table}_{column}_fkey` unless declared), at most 63 bytes.
    pub name: &'static str,
    /// The referenced model's metadata. A function, so that a model may reference itself.
    pub model: fn() -> &'static ModelMeta,
}

impl ForeignKey {
    #[doc(hidden)]
    pub const fn __new(name: &'static str, model: fn() -> &'static ModelMeta) -> Self {
        ForeignKey { name, model }
    }

    /// The referenced model's metadata.
    pub fn target(&self) -> &'static ModelMeta {
        (self.model)()
    }
}

impl fmt::Debug for ForeignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = self.target();
        write!(
            f,
            "ForeignKey({} -> {}.{})",
            self.name,
            target.table,
            target.primary_key_column().name
        )
    }
}

/// The SQL type family of a column, independent of the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColumnKind {
    /// `i16`
    SmallInt,
    /// `i32`
    Int,
    /// `i64`
    BigInt,
    /// `f32`
    Float,
    /// `f64`
    Double,
    /// `bool`
    Bool,
    /// `String`
    Text,
    /// `Vec<u8>`
    Bytes,
    /// `rust_decimal::Decimal` (feature `rust_decimal`); stored as exact text on SQLite.
    Decimal,
    /// `chrono::NaiveDate` (feature `chrono`)
    Date,
    /// `chrono::NaiveTime` (feature `chrono`)
    Time,
    /// `chrono::NaiveDateTime` (feature `chrono`)
    DateTime,
    /// `chrono::DateTime<Utc>` (feature `chrono`)
    TimestampTz,
    /// `uuid::Uuid` (feature `uuid`)
    Uuid,
    /// `serde_json::Value` (feature `json`)
    Json,
}

impl ColumnKind {
    /// Whether the kind is an integer, the only kind that can be auto-incremented.
    pub const fn is_integer(self) -> bool {
        matches!(
            self,
            ColumnKind::SmallInt | ColumnKind::Int | ColumnKind::BigInt
        )
    }
}

impl ColumnMeta {
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn __new(
        field: &'static str,
        name: &'static str,
        kind: ColumnKind,
        nullable: bool,
        max_length: Option<u32>,
        auto_increment: bool,
        references: Option<ForeignKey>,
    ) -> Self {
        ColumnMeta {
            field,
            name,
            kind,
            nullable,
            max_length,
            auto_increment,
            references,
            decimal: None,
        }
    }

    /// `#[model(precision = p, scale = s)]`.
    #[doc(hidden)]
    pub const fn __decimal(mut self, precision: u32, scale: u32) -> Self {
        self.decimal = Some(DecimalPrecision { precision, scale });
        self
    }
}

/// A declared unique constraint.
#[derive(Debug)]
#[non_exhaustive]
pub struct UniqueConstraint {
    /// The constraint name in the database: the declared `name = "…"`, or the default
    /// `{table}_{columns}_key` (PostgreSQL's own style), kept within 63 bytes.
    pub name: &'static str,
    /// Indexes into [`ModelMeta::columns`], in declaration order.
    pub columns: &'static [usize],
    /// Where it was declared.
    pub origin: ConstraintOrigin,
    /// `case_insensitive`: the columns (indexes into [`ModelMeta::columns`], all text) whose ASCII
    /// letters the constraint folds before comparing, `A`–`Z` as `a`–`z` and nothing else, the
    /// same on every backend. Empty for an exact constraint.
    pub folded: &'static [usize],
    /// `false` for `nulls_not_distinct`: a NULL collides with a NULL, so a key with NULLs identifies
    /// a row. `true` (SQL's default) otherwise: rows with a NULL in the key never collide.
    pub nulls_distinct: bool,
    /// `condition(…)`: the constraint covers only the rows for which all of these hold (a partial
    /// unique index); empty for a constraint over every row.
    pub condition: &'static [Predicate],
}

/// One term of a partial constraint's `condition(…)`: a column compared with a literal or NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Predicate {
    /// Index into [`ModelMeta::columns`].
    pub column: usize,
    /// The comparison.
    pub test: Test,
}

/// What a [`Predicate`] tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Test {
    /// `field == None`: the column is NULL.
    IsNull,
    /// `field != None`: the column is not NULL.
    IsNotNull,
    /// `field == literal`.
    Equals(Literal),
    /// `field != literal` (and not NULL, as SQL compares).
    NotEquals(Literal),
}

/// A literal in a [`Predicate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Literal {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Text(&'static str),
}

impl Predicate {
    #[doc(hidden)]
    pub const fn __new(column: usize, test: Test) -> Self {
        Predicate { column, test }
    }
}

impl UniqueConstraint {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        columns: &'static [usize],
        origin: ConstraintOrigin,
        folded: &'static [usize],
        nulls_distinct: bool,
        condition: &'static [Predicate],
    ) -> Self {
        UniqueConstraint {
            name,
            columns,
            origin,
            folded,
            nulls_distinct,
            condition,
        }
    }

    /// Whether a NULL in `column` (one of the constraint's) collides with another NULL: the column
    /// can hold one and the constraint is `nulls_not_distinct`.
    pub(crate) fn nulls_collide_in(&self, column: &ColumnMeta) -> bool {
        !self.nulls_distinct && column.nullable
    }

    /// Whether a NULL collides with a NULL in any of the constraint's columns.
    pub(crate) fn nulls_collide(&self, meta: &ModelMeta) -> bool {
        self.columns
            .iter()
            .any(|&c| self.nulls_collide_in(&meta.columns[c]))
    }

    /// Whether the constraint compares column `column` case-insensitively.
    pub fn folds(&self, column: usize) -> bool {
        self.folded.contains(&column)
    }

    /// Whether the database enforces it with something other than a plain list of columns: an
    /// index over expressions (PostgreSQL, SQLite) or over generated columns (MariaDB).
    pub fn is_plain(&self) -> bool {
        self.folded.is_empty() && self.nulls_distinct && self.condition.is_empty()
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(n) => write!(f, "{n}"),
            Literal::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

/// A declared plain (non-unique) index: `#[index]` on a field or `#[index(a, b)]` on the struct.
#[derive(Debug)]
#[non_exhaustive]
pub struct Index {
    /// The index name in the database: the declared `name = "…"`, or the default
    /// `{table}_{columns}_idx`, kept within 63 bytes.
    pub name: &'static str,
    /// Indexes into [`ModelMeta::columns`], in the index's order.
    pub columns: &'static [usize],
}

impl Index {
    #[doc(hidden)]
    pub const fn __new(name: &'static str, columns: &'static [usize]) -> Self {
        Index { name, columns }
    }
}

/// Where a unique constraint was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintOrigin {
    /// `#[unique]` on a field.
    Field,
    /// `#[unique_together(…)]` on the struct.
    Together,
}

/// A key that identifies at most one row: the primary key or one declared unique constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyId {
    /// The primary key.
    PrimaryKey,
    /// The unique constraint at this index of [`ModelMeta::uniques`].
    Unique(usize),
}

impl ModelMeta {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        table: &'static str,
        columns: &'static [ColumnMeta],
        primary_key: usize,
        uniques: &'static [UniqueConstraint],
    ) -> Self {
        ModelMeta {
            name,
            table,
            columns,
            primary_key,
            uniques,
            indexes: &[],
        }
    }

    /// The model's plain indexes.
    #[doc(hidden)]
    pub const fn __indexes(mut self, indexes: &'static [Index]) -> Self {
        self.indexes = indexes;
        self
    }

    /// The metadata of a model whose derive failed: it only has to compile next to the errors.
    #[doc(hidden)]
    pub const fn __invalid(name: &'static str) -> Self {
        ModelMeta {
            name,
            table: name,
            columns: &[],
            primary_key: 0,
            uniques: &[],
            indexes: &[],
        }
    }

    /// The primary key column.
    pub fn primary_key_column(&self) -> &'static ColumnMeta {
        &self.columns[self.primary_key]
    }

    /// The declared unique constraints, in declaration order.
    pub fn unique_constraints(&self) -> &'static [UniqueConstraint] {
        self.uniques
    }

    /// The columns of a unique constraint, as metadata.
    pub fn constraint_columns(
        &self,
        constraint: &UniqueConstraint,
    ) -> impl ExactSizeIterator<Item = &'static ColumnMeta> + '_ {
        let columns = self.columns;
        constraint.columns.iter().map(move |&i| &columns[i])
    }

    /// The column indexes a key covers.
    pub fn key_columns(&self, key: KeyId) -> &'static [usize] {
        match key {
            // `primary_key` is an index into `columns`; slice a one-element window of a static table.
            KeyId::PrimaryKey => &COLUMN_INDEXES[self.primary_key..=self.primary_key],
            KeyId::Unique(i) => self.uniques[i].columns,
        }
    }

    /// The declared constraint behind a key; `None` for the primary key.
    pub fn key_constraint(&self, key: KeyId) -> Option<&'static UniqueConstraint> {
        match key {
            KeyId::PrimaryKey => None,
            KeyId::Unique(i) => Some(&self.uniques[i]),
        }
    }

    /// The name the database knows a key by: the constraint name, or `PRIMARY KEY`.
    pub fn key_name(&self, key: KeyId) -> &'static str {
        match key {
            KeyId::PrimaryKey => "PRIMARY KEY",
            KeyId::Unique(i) => self.uniques[i].name,
        }
    }

    /// The columns of a plain index, as metadata.
    pub fn index_columns(
        &self,
        index: &Index,
    ) -> impl ExactSizeIterator<Item = &'static ColumnMeta> + '_ {
        let columns = self.columns;
        index.columns.iter().map(move |&i| &columns[i])
    }

    /// Finds a column by its database name.
    pub fn column_named(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// `0, 1, 2, …`, so that a single column index can be lent out as a `&'static [usize]`.
static COLUMN_INDEXES: [usize; MAX_COLUMNS] = {
    let mut table = [0usize; MAX_COLUMNS];
    let mut i = 0;
    while i < MAX_COLUMNS {
        table[i] = i;
        i += 1;
    }
    table
};

/// The most columns a model may have (the derive enforces it, with its own copy of this number: the
/// macro crate cannot depend on this one).
pub const MAX_COLUMNS: usize = 256;

impl fmt::Display for ModelMeta {
    /// Prints the model the way a reviewer wants to read it:
    ///
    /// ```text
    /// Product (table "products")
    ///   primary key: id
    ///   unique "products_sku_key" (sku)
    ///   unique "users_email_key" (email) case-insensitive (email)
    ///   unique "slots_room_day_key" (room, day) nulls not distinct
    ///   index "products_store_id_idx" (store_id)
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} (table \"{}\")", self.name, self.table)?;
        write!(f, "  primary key: {}", self.primary_key_column().name)?;
        for constraint in self.uniques {
            write!(f, "\n  unique \"{}\" (", constraint.name)?;
            for (n, column) in self.constraint_columns(constraint).enumerate() {
                if n > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(column.name)?;
            }
            f.write_str(")")?;
            if !constraint.folded.is_empty() {
                let folded: Vec<&str> = constraint
                    .folded
                    .iter()
                    .map(|&i| self.columns[i].name)
                    .collect();
                write!(f, " case-insensitive ({})", folded.join(", "))?;
            }
            if !constraint.nulls_distinct {
                f.write_str(" nulls not distinct")?;
            }
            for (n, term) in constraint.condition.iter().enumerate() {
                f.write_str(if n == 0 { " where " } else { " and " })?;
                let column = self.columns[term.column].name;
                match term.test {
                    Test::IsNull => write!(f, "{column} IS NULL")?,
                    Test::IsNotNull => write!(f, "{column} IS NOT NULL")?,
                    Test::Equals(literal) => write!(f, "{column} = {literal}")?,
                    Test::NotEquals(literal) => write!(f, "{column} <> {literal}")?,
                }
            }
        }
        for index in self.indexes {
            write!(f, "\n  index \"{}\" (", index.name)?;
            for (n, column) in self.index_columns(index).enumerate() {
                if n > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(column.name)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}
