//! The feature-gated matches over bound values, in one place: what changes with every column type.
//! A [`sea_query::Value`] is none of comparable, ordered, hashable or printable the way the library
//! needs; these give it each, as the databases compare the values.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use sea_query::Value;

/// Whether a value is SQL NULL. Covers every variant a [`crate::Column`] produces.
pub(crate) fn is_null(value: &Value) -> bool {
    match value {
        Value::Bool(v) => v.is_none(),
        Value::SmallInt(v) => v.is_none(),
        Value::Int(v) => v.is_none(),
        Value::BigInt(v) => v.is_none(),
        Value::Float(v) => v.is_none(),
        Value::Double(v) => v.is_none(),
        Value::String(v) => v.is_none(),
        Value::Bytes(v) => v.is_none(),
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(v) => v.is_none(),
        #[cfg(feature = "chrono")]
        Value::ChronoDate(v) => v.is_none(),
        #[cfg(feature = "chrono")]
        Value::ChronoTime(v) => v.is_none(),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTime(v) => v.is_none(),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTimeUtc(v) => v.is_none(),
        #[cfg(feature = "uuid")]
        Value::Uuid(v) => v.is_none(),
        #[cfg(feature = "json")]
        Value::Json(v) => v.is_none(),
        _ => false,
    }
}

/// The value as the database compares it: decimals without trailing zeros (the databases return
/// them with their column's scale), `-0.0` as `0.0`.
pub(crate) fn normalize(value: &mut Value) {
    match value {
        Value::Float(Some(f)) if *f == 0.0 => *f = 0.0,
        Value::Double(Some(f)) if *f == 0.0 => *f = 0.0,
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(Some(d)) => *d = d.normalize(),
        _ => {}
    }
}

/// Whether two bound values are the same once normalized as the database compares them (decimals
/// without trailing zeros, `-0.0` as `0.0`): how a row read back is checked against the row sent.
pub(crate) fn same_value(a: &Value, b: &Value) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    normalize(&mut a);
    normalize(&mut b);
    a == b || compare(&a, &b).is_eq()
}

/// Feeds a (normalized) value to a hasher: equal values hash alike, and distinct values of one
/// kind never share a hash input.
pub(crate) fn hash<H: Hasher>(value: &Value, state: &mut H) {
    std::mem::discriminant(value).hash(state);
    match value {
        Value::Bool(v) => v.hash(state),
        Value::SmallInt(v) => v.hash(state),
        Value::Int(v) => v.hash(state),
        Value::BigInt(v) => v.hash(state),
        Value::Float(v) => v.map(f32::to_bits).hash(state),
        Value::Double(v) => v.map(f64::to_bits).hash(state),
        Value::String(v) => v.hash(state),
        Value::Bytes(v) => v.hash(state),
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(v) => v.hash(state),
        #[cfg(feature = "chrono")]
        Value::ChronoDate(v) => v.hash(state),
        #[cfg(feature = "chrono")]
        Value::ChronoTime(v) => v.hash(state),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTime(v) => v.hash(state),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTimeUtc(v) => v.hash(state),
        #[cfg(feature = "uuid")]
        Value::Uuid(v) => v.hash(state),
        // Every other kind hashes by its full text, so that distinct values never share a
        // fingerprint by construction.
        other => format!("{other:?}").hash(state),
    }
}

/// A total order over the values of one column, the same in every process.
pub(crate) fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::SmallInt(a), Value::SmallInt(b)) => a.cmp(b),
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        (Value::BigInt(a), Value::BigInt(b)) => a.cmp(b),
        (Value::Float(a), Value::Float(b)) => cmp_option(a, b, f32::total_cmp),
        (Value::Double(a), Value::Double(b)) => cmp_option(a, b, f64::total_cmp),
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
        #[cfg(feature = "rust_decimal")]
        (Value::Decimal(a), Value::Decimal(b)) => a.cmp(b),
        #[cfg(feature = "chrono")]
        (Value::ChronoDate(a), Value::ChronoDate(b)) => a.cmp(b),
        #[cfg(feature = "chrono")]
        (Value::ChronoTime(a), Value::ChronoTime(b)) => a.cmp(b),
        #[cfg(feature = "chrono")]
        (Value::ChronoDateTime(a), Value::ChronoDateTime(b)) => a.cmp(b),
        #[cfg(feature = "chrono")]
        (Value::ChronoDateTimeUtc(a), Value::ChronoDateTimeUtc(b)) => a.cmp(b),
        #[cfg(feature = "uuid")]
        (Value::Uuid(a), Value::Uuid(b)) => a.cmp(b),
        // One column always holds one kind; anything else is ordered by its text.
        (a, b) => format!("{a:?}").cmp(&format!("{b:?}")),
    }
}

fn cmp_option<T>(a: &Option<T>, b: &Option<T>, f: impl Fn(&T, &T) -> Ordering) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => f(a, b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

/// A bound value as text, for messages.
pub(crate) fn text(value: &Value) -> String {
    fn show<T: fmt::Display>(v: &Option<T>) -> String {
        v.as_ref()
            .map_or_else(|| "NULL".to_owned(), |v| v.to_string())
    }
    match value {
        Value::Bool(v) => show(v),
        Value::SmallInt(v) => show(v),
        Value::Int(v) => show(v),
        Value::BigInt(v) => show(v),
        Value::Float(v) => show(v),
        Value::Double(v) => show(v),
        Value::String(v) => show(v),
        Value::Bytes(v) => v.as_ref().map_or_else(
            || "NULL".to_owned(),
            |b| b.iter().map(|x| format!("{x:02x}")).collect::<String>(),
        ),
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(v) => show(v),
        #[cfg(feature = "chrono")]
        Value::ChronoDate(v) => show(v),
        #[cfg(feature = "chrono")]
        Value::ChronoTime(v) => show(v),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTime(v) => show(v),
        #[cfg(feature = "chrono")]
        Value::ChronoDateTimeUtc(v) => show(v),
        #[cfg(feature = "uuid")]
        Value::Uuid(v) => show(v),
        #[cfg(feature = "json")]
        Value::Json(v) => show(v),
        other => format!("{other:?}"),
    }
}
