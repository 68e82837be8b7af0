//! A key's values as something to compare, order, hash and fingerprint: sea-query's `Value` is none
//! of these.

use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

use sea_query::Value;
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::backend::Dialect;
use crate::meta::KeyId;
use crate::model::Model;
use crate::query;
use crate::value;

/// A key's values, normalized as the database compares them: decimals without trailing zeros (the
/// databases return them with their column's scale), `-0.0` as `0.0`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyValues(Vec<Value>);

// NaN is refused before any write (it is not stored exactly anywhere), so equality is reflexive here.
impl Eq for KeyValues {}

impl KeyValues {
    /// The key's values taken from a row, as its constraint compares them; `None` when one is NULL
    /// and NULLs never collide in the constraint (such a key collides with nothing).
    pub(crate) fn of<M: Model>(row: &M, key: KeyId, dialect: Dialect) -> Option<Self> {
        // A row a partial key does not cover collides with nothing under it.
        if !query::covers(row, key, dialect) {
            return None;
        }
        Self::from_values(
            query::key_values_of(row, key, dialect),
            query::null_identifies(M::META, key),
        )
    }

    /// A key's compared values; `None` when one is NULL, unless `null_identifies`
    /// (`nulls_not_distinct`).
    pub(crate) fn from_values(mut values: Vec<Value>, null_identifies: bool) -> Option<Self> {
        for value in &mut values {
            if value::is_null(value) && !null_identifies {
                return None;
            }
            value::normalize(value);
        }
        Some(KeyValues(values))
    }

    /// The values, to bind.
    pub(crate) fn values(&self) -> Vec<Value> {
        self.0.clone()
    }

    /// A 128-bit fingerprint under a randomly keyed hasher (SipHash-1-3 with its 128-bit output,
    /// in one pass): what a bulk insert keeps per distinct key to recognise repeats across chunks
    /// in fixed memory.
    pub(crate) fn fingerprint(&self, fingerprint_key: &FingerprintKey) -> u128 {
        let mut hasher = SipHasher13::new_with_keys(fingerprint_key.0, fingerprint_key.1);
        self.hash(&mut hasher);
        hasher.finish128().as_u128()
    }
}

/// The hasher of the tables keyed by fingerprint: a fingerprint is already the output of a randomly
/// keyed hasher, so its halves folded together are a hash; hashing it again (SipHash, per lookup
/// and insert, several a row) was a visible share of a bulk call's own work.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Prehashed;

impl BuildHasher for Prehashed {
    type Hasher = PrehashedHasher;
    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

/// See [`Prehashed`].
#[derive(Debug)]
pub(crate) struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u128(&mut self, fingerprint: u128) {
        self.0 ^= (fingerprint as u64) ^ ((fingerprint >> 64) as u64);
    }

    // Only fingerprints are hashed with it; anything else still gets a usable (if weak) hash.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

/// A set of fingerprints.
pub(crate) type FingerprintSet = std::collections::HashSet<u128, Prehashed>;

/// A map from fingerprints.
pub(crate) type FingerprintMap<V> = std::collections::HashMap<u128, V, Prehashed>;

/// The fingerprint's 128-bit SipHash key, drawn once per bulk call from the standard library's
/// randomly keyed hashers (which the process seeds from the operating system): keys an input
/// cannot be crafted against, so that two distinct keys sharing a fingerprint (one row wrongly
/// skipped as a repeat of another) stays a 2^-128 chance per pair.
pub(crate) struct FingerprintKey(u64, u64);

impl FingerprintKey {
    pub(crate) fn new() -> Self {
        FingerprintKey(
            RandomState::new().hash_one(0x6b65_7930_u64),
            RandomState::new().hash_one(0x6b65_7931_u64),
        )
    }
}

impl Hash for KeyValues {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for value in &self.0 {
            crate::value::hash(value, state);
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
            .map(|(a, b)| value::compare(a, b))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| self.0.len().cmp(&other.0.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(values: Vec<Value>) -> KeyValues {
        let mut values = values;
        values.iter_mut().for_each(value::normalize);
        KeyValues(values)
    }

    #[test]
    fn equal_keys_share_a_fingerprint_and_distinct_ones_do_not() {
        let fingerprint_key = FingerprintKey::new();
        let a = key(vec![Value::from("a"), Value::from(1i64)]);
        let b = key(vec![Value::from("a"), Value::from(1i64)]);
        let c = key(vec![Value::from("a "), Value::from(1i64)]);
        let d = key(vec![Value::from("A"), Value::from(1i64)]);
        assert_eq!(
            a.fingerprint(&fingerprint_key),
            b.fingerprint(&fingerprint_key)
        );
        assert_ne!(
            a.fingerprint(&fingerprint_key),
            c.fingerprint(&fingerprint_key)
        );
        assert_ne!(
            a.fingerprint(&fingerprint_key),
            d.fingerprint(&fingerprint_key)
        );
        // Negative zero is zero, as in every database.
        assert_eq!(
            key(vec![Value::from(-0.0f64)]).fingerprint(&fingerprint_key),
            key(vec![Value::from(0.0f64)]).fingerprint(&fingerprint_key)
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
