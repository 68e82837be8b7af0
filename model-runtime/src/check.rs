//! Values a backend cannot store exactly, refused before any statement is sent.
//!
//! Measured on SQLite 3 (through sqlx 0.9), PostgreSQL 15 and MariaDB 10.11, every supported column
//! type written and read back:
//!
//! | value | SQLite | PostgreSQL | MariaDB |
//! |---|---|---|---|
//! | `f32`/`f64` NaN | stored as NULL: **refused** | exact | error 1264: **refused** |
//! | `f32`/`f64` ±inf | exact | exact | error 1264: **refused** |
//! | `f32`/`f64` -0.0 | read back 0.0: **refused** | exact | read back 0.0: **refused** |
//! | `f32::MAX`, `f64::MAX`, subnormals | exact | exact | exact (bound in binary) |
//! | text with NUL | exact | error 22021: **refused** | exact |
//! | JSON with `\u0000` | exact | jsonb error: **refused** | exact |
//! | JSON number -0.0 | exact | jsonb reads back 0: **refused** | exact |
//! | time, datetime with nanoseconds | exact (text) | cut to microseconds: **refused** | cut to microseconds: **refused** |
//! | leap second (`chrono` nanos ≥ 1e9) | exact (text) | datetime moved to the next second, time an error: **refused** | time read back 00:00:00, datetime NULL: **refused** |
//! | date before 4714-11-24 BC | exact (text) | "out of range": **refused** | (a negative year: below) |
//! | year outside 0..=9999 | exact (text) | exact within PostgreSQL's range | above: stored as NULL, below: the driver fails mid-statement and the connection is lost: **refused** |
//! | `DateTime<Utc>` before 1970 or after 2038-01-19 | exact (text) | exact | stored as NULL while sqlx bound it as `TIMESTAMP`; now bound as the UTC `DATETIME(6)` it is stored in: exact |
//! | `Decimal` | normalized text: equal value, scale not kept | exact | `DECIMAL(65,30)` holds every `Decimal` (≤ 28 fractional digits, ≤ 29 integer digits); read back with scale 30 |
//! | `i16`/`i32`/`i64` extremes, bytes, UUID, 4-byte characters, trailing spaces | exact | exact | exact |
//!
//! Sub-microsecond precision is an error rather than a documented rounding: a silent rounding
//! would make a value read back different from the one written, two values that differ only in
//! their nanoseconds would collide in a unique key, and a `get_or_create` would look up a value that
//! can never be stored. `Decimal` scale is the one documented change: the value is equal, and
//! `Decimal` compares by value (`1.5 == 1.50`).
//!
//! `get_or_create` checks the whole candidate before its lookup, so a bad value is refused even
//! when the row turns out to exist; a lookup by a key (`Key::get`, `exists`, `get_for_update`,
//! `validate_unique`) checks the key's values, which would otherwise find a row whose key is the
//! value as the backend cut it (found by an adversarial test). Round to microseconds before writing
//! (`chrono::SubsecRound::trunc_subsecs(6)`).

use sea_query::Value;

use crate::backend::Dialect;
use crate::error::Error;
use crate::meta::ColumnMeta;
use crate::model::Model;

/// Checks every column of `row` (an insert writes them all).
pub(crate) fn check_row<M: Model>(row: &M, dialect: Dialect) -> Result<(), Error> {
    check_columns(row, 0..M::META.columns.len(), dialect)
}

/// Checks the listed columns of `row` (an update writes only those).
pub(crate) fn check_columns<M: Model>(
    row: &M,
    columns: impl IntoIterator<Item = usize>,
    dialect: Dialect,
) -> Result<(), Error> {
    let meta = M::META;
    for index in columns {
        check_one(meta, index, &row.column_value(index, dialect), dialect)?;
    }
    Ok(())
}

/// Checks one value of column `index` of `meta`'s model: [`Error::InvalidValue`] naming the field
/// when `dialect` cannot store it exactly.
fn check_one(
    meta: &'static crate::meta::ModelMeta,
    index: usize,
    value: &Value,
    dialect: Dialect,
) -> Result<(), Error> {
    let column = &meta.columns[index];
    check_value(value, dialect)
        .and_then(|()| check_decimal_size(column, value))
        .map_err(|reason| Error::InvalidValue {
            model: meta.name,
            field: column.field.trim_start_matches("r#"),
            dialect,
            reason,
        })
}

/// Checks a key's values (`values` gives them in its columns' order) before a lookup: a value that
/// no row can hold exactly would be changed on its way to the database (a time cut to
/// microseconds) and find a row whose key is not the one asked for. Refused as the write of such a
/// value is. The values are taken only for a key with a column that can hold such a value: the
/// lookup takes them again for its statement.
pub(crate) fn check_key<M: Model>(
    key: crate::meta::KeyId,
    values: impl FnOnce() -> Vec<Value>,
    dialect: Dialect,
) -> Result<(), Error> {
    let meta = M::META;
    let columns = meta.key_columns(key);
    if !columns.iter().any(|&i| may_fail(&meta.columns[i], dialect)) {
        return Ok(());
    }
    for (&index, value) in columns.iter().zip(&values()) {
        if may_fail(&meta.columns[index], dialect) {
            check_one(meta, index, value, dialect)?;
        }
    }
    Ok(())
}

/// Checks the fields of `row` that an `update_or_create` writes on update.
pub(crate) fn check_fields<M: Model>(
    row: &M,
    fields: &[M::Field],
    dialect: Dialect,
) -> Result<(), Error> {
    check_columns(row, fields.iter().map(|&f| M::field_index(f)), dialect)
}

/// The first row of a bulk insert's chunk (input index, row) that cannot be stored exactly, with
/// its error.
pub(crate) fn check_chunk<M: Model>(
    chunk: &[(usize, M)],
    dialect: Dialect,
) -> Option<(usize, Error)> {
    // Only the columns that can hold such a value: taking every value of every row (a copy of
    // each text) was a visible share of a bulk call's own work.
    let meta = M::META;
    let columns: Vec<usize> = (0..meta.columns.len())
        .filter(|&i| may_fail(&meta.columns[i], dialect))
        .collect();
    if columns.is_empty() {
        return None;
    }
    chunk.iter().find_map(|(input, row)| {
        check_columns(row, columns.iter().copied(), dialect)
            .err()
            .map(|e| (*input, e))
    })
}

/// Whether a value of `column` can fail [`check_value`] or [`check_decimal_size`] on `dialect`:
/// the kinds those match on (a column's values are of its kind's one variant; a decimal is text on
/// SQLite).
fn may_fail(column: &ColumnMeta, dialect: Dialect) -> bool {
    use crate::meta::ColumnKind as K;
    column.decimal.is_some()
        || match column.kind {
            K::Float | K::Double => dialect != Dialect::Postgres,
            K::Text | K::Json => dialect == Dialect::Postgres,
            K::Date | K::Time | K::DateTime | K::TimestampTz => dialect != Dialect::Sqlite,
            K::SmallInt | K::Int | K::BigInt | K::Bool | K::Bytes | K::Decimal | K::Uuid => false,
        }
}

/// Why `value`, bound for a column of `kind`, would not be stored exactly on `dialect`.
fn check_value(value: &Value, dialect: Dialect) -> Result<(), &'static str> {
    match value {
        Value::Float(Some(v)) => check_float(f64::from(*v), dialect),
        Value::Double(Some(v)) => check_float(*v, dialect),
        Value::String(Some(text)) if dialect == Dialect::Postgres && text.contains('\0') => {
            Err("PostgreSQL text cannot hold the NUL character (\\0)")
        }
        #[cfg(feature = "json")]
        Value::Json(Some(json)) if dialect == Dialect::Postgres => check_jsonb(json),
        #[cfg(feature = "chrono")]
        Value::ChronoDate(Some(date)) => check_date(*date, dialect),
        #[cfg(feature = "chrono")]
        Value::ChronoTime(Some(time)) => check_time(*time, dialect),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTime(Some(at)) => {
            check_date(at.date(), dialect)?;
            check_time(at.time(), dialect)
        }
        #[cfg(feature = "chrono")]
        Value::ChronoDateTimeUtc(Some(at)) => {
            let at = at.naive_utc();
            check_date(at.date(), dialect)?;
            check_time(at.time(), dialect)
        }
        _ => Ok(()),
    }
}

/// A decimal declared `#[model(precision = p, scale = s)]` must fit `NUMERIC(p, s)`: at most `s`
/// digits after the point once trailing zeros are dropped (`1.50` fits a scale of 1), and at most
/// `p - s` before it. PostgreSQL and MariaDB round extra digits after the point away without an
/// error, and SQLite keeps every digit, so the check is the same on every backend.
fn check_decimal_size(column: &ColumnMeta, value: &Value) -> Result<(), &'static str> {
    #[cfg(feature = "rust_decimal")]
    if let Some(size) = column.decimal {
        let decimal = match value {
            Value::Decimal(Some(d)) => Some(*d),
            // SQLite binds a decimal as its normalized text.
            Value::String(Some(text)) => text.parse::<rust_decimal::Decimal>().ok(),
            _ => None,
        };
        if let Some(decimal) = decimal {
            let decimal = decimal.normalize();
            if decimal.scale() > size.scale {
                return Err(
                    "has more digits after the point than the field's scale (#[model(scale = …)]) holds, and would be rounded; round it first (Decimal::round_dp)",
                );
            }
            let integer = decimal.trunc().abs();
            let integer_digits = if integer.is_zero() {
                0
            } else {
                integer.to_string().len() as u32
            };
            if integer_digits > size.precision.saturating_sub(size.scale) {
                return Err(
                    "has more digits before the point than the field's precision less its scale (#[model(precision = …, scale = …)]) allows",
                );
            }
        }
    }
    #[cfg(not(feature = "rust_decimal"))]
    let _ = (column, value);
    Ok(())
}

fn check_float(v: f64, dialect: Dialect) -> Result<(), &'static str> {
    match dialect {
        Dialect::Postgres => Ok(()),
        Dialect::Sqlite if v.is_nan() => Err("SQLite stores NaN as NULL"),
        Dialect::Sqlite if v == 0.0 && v.is_sign_negative() => {
            Err("SQLite stores -0.0 as 0.0; write 0.0")
        }
        Dialect::Sqlite => Ok(()),
        Dialect::MySql if v.is_nan() => Err("MariaDB and MySQL cannot store NaN"),
        Dialect::MySql if v.is_infinite() => Err("MariaDB and MySQL cannot store infinity"),
        Dialect::MySql if v == 0.0 && v.is_sign_negative() => {
            Err("MariaDB stores -0.0 as 0.0; write 0.0")
        }
        Dialect::MySql => Ok(()),
    }
}

#[cfg(feature = "chrono")]
fn check_date(date: chrono::NaiveDate, dialect: Dialect) -> Result<(), &'static str> {
    use chrono::Datelike;
    match dialect {
        Dialect::Sqlite => Ok(()),
        // Julian day 0: PostgreSQL's lower bound for dates and timestamps (its upper bounds are
        // beyond chrono's).
        Dialect::Postgres
            if date < chrono::NaiveDate::from_ymd_opt(-4713, 11, 24).unwrap_or(date) =>
        {
            Err("PostgreSQL dates and timestamps start at 4714-11-24 BC")
        }
        Dialect::Postgres => Ok(()),
        Dialect::MySql if !(0..=9999).contains(&date.year()) => {
            Err("MariaDB and MySQL dates hold years 0 to 9999")
        }
        Dialect::MySql => Ok(()),
    }
}

#[cfg(feature = "chrono")]
fn check_time(time: chrono::NaiveTime, dialect: Dialect) -> Result<(), &'static str> {
    use chrono::Timelike;
    if dialect == Dialect::Sqlite {
        // Stored as text with every digit.
        return Ok(());
    }
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return Err("a leap second (60th second) is not stored by PostgreSQL or MariaDB");
    }
    if !nanos.is_multiple_of(1_000) {
        return Err(
            "PostgreSQL and MariaDB keep only microseconds of a time, and this one has nanoseconds; round it to microseconds first",
        );
    }
    Ok(())
}

/// jsonb cannot hold `\u0000` in a string or key, and has no negative zero.
#[cfg(feature = "json")]
fn check_jsonb(json: &serde_json::Value) -> Result<(), &'static str> {
    use serde_json::Value as J;
    const NUL: &str = "PostgreSQL jsonb cannot hold the NUL character (\\u0000)";
    match json {
        J::String(s) if s.contains('\0') => Err(NUL),
        J::Number(n) if n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) => {
            Err("PostgreSQL jsonb stores the number -0.0 as 0")
        }
        J::Array(items) => items.iter().try_for_each(check_jsonb),
        J::Object(map) => map.iter().try_for_each(|(k, v)| {
            if k.contains('\0') {
                Err(NUL)
            } else {
                check_jsonb(v)
            }
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "rust_decimal")]
    #[test]
    fn decimals_fit_their_precision_and_scale() {
        use crate::meta::ColumnKind;
        let column = ColumnMeta::__new(
            "price",
            "price",
            ColumnKind::Decimal,
            false,
            None,
            false,
            None,
        )
        .__decimal(5, 2);
        let fits = |text: &str| {
            let d: rust_decimal::Decimal = text.parse().unwrap();
            let sqlite =
                check_decimal_size(&column, &Value::String(Some(d.normalize().to_string())));
            let server = check_decimal_size(&column, &Value::Decimal(Some(d)));
            assert_eq!(sqlite, server, "{text}");
            server.is_ok()
        };
        for ok in ["999.99", "-999.99", "0", "0.01", "1.50000", "-0.00", "100"] {
            assert!(fits(ok), "{ok}");
        }
        for too_big in ["1000", "-1000.5", "12345.6"] {
            assert!(!fits(too_big), "{too_big}");
        }
        for too_fine in ["0.001", "-999.991", "1.2345"] {
            assert!(!fits(too_fine), "{too_fine}");
        }
        let whole = ColumnMeta::__new("n", "n", ColumnKind::Decimal, false, None, false, None)
            .__decimal(3, 0);
        assert!(check_decimal_size(&whole, &Value::Decimal(Some(999.into()))).is_ok());
        assert!(check_decimal_size(&whole, &Value::Decimal(Some(1000.into()))).is_err());
        assert!(check_decimal_size(&whole, &Value::Decimal(None)).is_ok());
    }

    #[test]
    fn floats_per_backend() {
        use Dialect::*;
        assert!(check_float(f64::NAN, Postgres).is_ok());
        assert!(check_float(f64::NAN, Sqlite).is_err());
        assert!(check_float(f64::NAN, MySql).is_err());
        assert!(check_float(f64::INFINITY, Sqlite).is_ok());
        assert!(check_float(f64::NEG_INFINITY, MySql).is_err());
        assert!(check_float(-0.0, Sqlite).is_err());
        assert!(check_float(0.0, Sqlite).is_ok());
        assert!(check_float(-0.0, Postgres).is_ok());
        assert!(check_float(f64::from(f32::MAX), MySql).is_ok());
        assert!(check_float(f64::MAX, MySql).is_ok());
        assert!(check_float(3.4e38, MySql).is_ok());
    }

    #[cfg(feature = "chrono")]
    #[test]
    fn times_and_dates_per_backend() {
        use chrono::{NaiveDate, NaiveTime};
        let nanos = NaiveTime::from_hms_nano_opt(1, 2, 3, 123_456_789).unwrap();
        let micros = NaiveTime::from_hms_micro_opt(1, 2, 3, 123_456).unwrap();
        assert!(check_time(nanos, Dialect::Sqlite).is_ok());
        assert!(check_time(nanos, Dialect::Postgres).is_err());
        assert!(check_time(micros, Dialect::MySql).is_ok());
        let early = NaiveDate::from_ymd_opt(-4713, 11, 23).unwrap();
        assert!(check_date(early, Dialect::Postgres).is_err());
        assert!(check_date(early.succ_opt().unwrap(), Dialect::Postgres).is_ok());
        let far = NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap();
        assert!(check_date(far, Dialect::MySql).is_err());
        assert!(check_date(far, Dialect::Postgres).is_ok());
    }
}
