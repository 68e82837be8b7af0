//! A key's values as something to compare, order, hash and fingerprint: sea-query's `Value` is none
//! of these.

use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

use sea_query::Value;

use crate::backend::Dialect;
use crate::meta::KeyId;
use crate::model::Model;
use crate::query;

/// A key's values, normalized as the database compares them: decimals without trailing zeros (the
/// databases return them with their column's scale), `-0.0` as `0.0`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyValues(Vec<Value>);

// NaN is refused before any write (it is not stored exactly anywhere), so equality is reflexive here.
impl Eq for KeyValues {}

impl KeyValues {
    /// The key's values taken from a row; `None` when one is NULL (such a key collides with nothing).
    pub(crate) fn of<M: Model>(row: &M, key: KeyId, dialect: Dialect) -> Option<Self> {
        Self::from_values(query::key_values_of(row, key, dialect))
    }

    /// A key's bound values; `None` when one is NULL.
    pub(crate) fn from_values(mut values: Vec<Value>) -> Option<Self> {
        for value in &mut values {
            if query::is_null(value) {
                return None;
            }
            normalize(value);
        }
        Some(KeyValues(values))
    }

    /// The values, to bind.
    pub(crate) fn values(&self) -> Vec<Value> {
        self.0.clone()
    }

    /// A 128-bit fingerprint under two independent, randomly keyed hashers: what a bulk insert keeps
    /// per distinct key to recognise repeats across chunks in fixed memory.
    pub(crate) fn fingerprint(&self, hashers: &Hashers) -> u128 {
        let high = hashers.0.hash_one(self);
        let low = hashers.1.hash_one(self);
        (u128::from(high) << 64) | u128::from(low)
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

/// Two randomly keyed hashers, chosen once per bulk call.
pub(crate) struct Hashers(RandomState, RandomState);

impl Hashers {
    pub(crate) fn new() -> Self {
        Hashers(RandomState::new(), RandomState::new())
    }
}

fn normalize(value: &mut Value) {
    match value {
        Value::Float(Some(f)) if *f == 0.0 => *f = 0.0,
        Value::Double(Some(f)) if *f == 0.0 => *f = 0.0,
        #[cfg(feature = "rust_decimal")]
        Value::Decimal(Some(d)) => *d = d.normalize(),
        _ => {}
    }
}

impl Hash for KeyValues {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for value in &self.0 {
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
    }
}

impl PartialOrd for KeyValues {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A total order, the same in every process: the order a chunk's rows are written in, so that
/// concurrent calls over overlapping keys take their locks in one order and wait instead of
/// deadlocking.
impl Ord for KeyValues {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| compare(a, b))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| self.0.len().cmp(&other.0.len()))
    }
}

fn compare(a: &Value, b: &Value) -> Ordering {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(values: Vec<Value>) -> KeyValues {
        let mut values = values;
        values.iter_mut().for_each(normalize);
        KeyValues(values)
    }

    #[test]
    fn equal_keys_share_a_fingerprint_and_distinct_ones_do_not() {
        let hashers = Hashers::new();
        let a = key(vec![Value::from("a"), Value::from(1i64)]);
        let b = key(vec![Value::from("a"), Value::from(1i64)]);
        let c = key(vec![Value::from("a "), Value::from(1i64)]);
        let d = key(vec![Value::from("A"), Value::from(1i64)]);
        assert_eq!(a.fingerprint(&hashers), b.fingerprint(&hashers));
        assert_ne!(a.fingerprint(&hashers), c.fingerprint(&hashers));
        assert_ne!(a.fingerprint(&hashers), d.fingerprint(&hashers));
        // Negative zero is zero, as in every database.
        assert_eq!(
            key(vec![Value::from(-0.0f64)]).fingerprint(&hashers),
            key(vec![Value::from(0.0f64)]).fingerprint(&hashers)
        );
    }

    #[test]
    fn order_is_total_and_by_value() {
        let mut keys = [
            key(vec![Value::from("b"), Value::from(1i64)]),
            key(vec![Value::from("a"), Value::from(2i64)]),
            key(vec![Value::from("a"), Value::from(-5i64)]),
            key(vec![Value::from("😀"), Value::from(0i64)]),
        ];
        keys.sort();
        let firsts: Vec<_> = keys.iter().map(|k| k.0[1].clone()).collect();
        assert_eq!(
            firsts,
            vec![
                Value::from(-5i64),
                Value::from(2i64),
                Value::from(1i64),
                Value::from(0i64)
            ]
        );
    }
}
