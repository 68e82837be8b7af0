//! Which rows of a chunk a bulk insert writes, decided before the database sees them: repeats of a
//! key within the input are resolved here (first wins when skipping, last wins when updating), across
//! chunks as within one, with one fingerprint per distinct key.

use crate::backend::Dialect;
use crate::meta::KeyId;
use crate::model::Model;

use super::key::{FingerprintKey, FingerprintMap, FingerprintSet, KeyValues, Prehashed};

/// How repeats of a key within the input are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// Not at all: every row is written (a plain insert; the database rejects a repeat).
    None,
    /// The first row with a key is written; the later ones are reported as duplicates of it.
    FirstWins,
    /// The last row with a key is written; the earlier ones are reported as superseded by it.
    LastWins,
}

/// What a call remembers across its chunks: for each distinct key met so far, its fingerprint and,
/// for a per-row report, the input row that holds the key's outcome (the first when skipping, the
/// latest when updating). Counts only keep the fingerprints alone (17 bytes a slot instead of 25).
pub(crate) struct Seen {
    rows: SeenRows,
    fingerprint_key: FingerprintKey,
}

enum SeenRows {
    Indexed(FingerprintMap<usize>),
    Fingerprints(FingerprintSet),
}

/// The row index reported for a key seen in counts-only mode, where no row index is kept (and none
/// is reported).
const NO_ROW: usize = usize::MAX;

impl Seen {
    /// `per_row`: whether the input row of each key must be kept.
    pub(crate) fn new(per_row: bool) -> Self {
        Seen {
            rows: if per_row {
                SeenRows::Indexed(FingerprintMap::default())
            } else {
                SeenRows::Fingerprints(FingerprintSet::default())
            },
            fingerprint_key: FingerprintKey::new(),
        }
    }

    /// A key's fingerprint under this call's fingerprint key.
    pub(crate) fn fingerprint(&self, key: &KeyValues) -> u128 {
        key.fingerprint(&self.fingerprint_key)
    }

    fn get(&self, fingerprint: &u128) -> Option<usize> {
        match &self.rows {
            SeenRows::Indexed(rows) => rows.get(fingerprint).copied(),
            SeenRows::Fingerprints(set) => set.contains(fingerprint).then_some(NO_ROW),
        }
    }

    /// Records what a chunk's plan learned, once the chunk is written.
    pub(crate) fn apply(&mut self, updates: Vec<(u128, usize)>) {
        match &mut self.rows {
            SeenRows::Indexed(rows) => rows.extend(updates),
            SeenRows::Fingerprints(set) => set.extend(updates.into_iter().map(|(f, _)| f)),
        }
    }

    /// Distinct keys seen so far.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        match &self.rows {
            SeenRows::Indexed(rows) => rows.len(),
            SeenRows::Fingerprints(set) => set.len(),
        }
    }
}

/// Why a written row is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    /// Its key has not been written by this call before (or is NULL): its outcome is what the
    /// database did with it.
    Fresh,
    /// Update mode: an earlier chunk wrote its key (input row `from` holds that outcome); this row
    /// writes its values over it and takes that outcome over.
    Rewrite { from: usize },
}

/// A row of the chunk to write.
#[derive(Debug)]
pub(crate) struct Writer {
    /// Its position in the chunk.
    pub(crate) pos: usize,
    /// Its key, `None` when a value of it is NULL or the mode has no key.
    pub(crate) key: Option<KeyValues>,
    pub(crate) tag: Tag,
}

/// A row of the chunk that is not written because another input row has its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// An earlier input row (at this index) has the key and was kept.
    Duplicate { first: usize },
    /// A later input row (at this index) has the key and is written instead.
    Superseded { last: usize },
}

/// What to do with one chunk.
#[derive(Debug)]
pub(crate) struct ChunkPlan {
    /// The rows to write, in key order (rows without a key last, in input order): concurrent calls
    /// take their locks in one order.
    pub(crate) writers: Vec<Writer>,
    /// The rows not written, by position in the chunk.
    pub(crate) repeats: Vec<(usize, Repeat)>,
    /// What [`Seen`] learns once the chunk is written.
    pub(crate) seen: Vec<(u128, usize)>,
}

/// Plans a chunk of `(input index, row)` pairs against what earlier chunks wrote.
pub(crate) fn plan<M: Model>(
    chunk: &[(usize, M)],
    key: Option<KeyId>,
    resolve: Resolve,
    seen: &Seen,
    dialect: Dialect,
) -> ChunkPlan {
    let mut writers: Vec<Option<Writer>> = Vec::with_capacity(chunk.len());
    let mut repeats = Vec::new();
    // Fingerprint → index into `writers` of the row that holds the key in this chunk.
    let mut local: FingerprintMap<usize> =
        FingerprintMap::with_capacity_and_hasher(chunk.len(), Prehashed);
    for (pos, (input, row)) in chunk.iter().enumerate() {
        let key = key.and_then(|key| KeyValues::of(row, key, dialect));
        let fingerprint = match (&key, resolve) {
            (Some(k), Resolve::FirstWins | Resolve::LastWins) => {
                k.fingerprint(&seen.fingerprint_key)
            }
            _ => {
                writers.push(Some(Writer {
                    pos,
                    key,
                    tag: Tag::Fresh,
                }));
                continue;
            }
        };
        let mut tag = Tag::Fresh;
        if let Some(&w) = local.get(&fingerprint) {
            match resolve {
                Resolve::FirstWins => {
                    let first = chunk[writers[w].as_ref().expect("kept").pos].0;
                    repeats.push((pos, Repeat::Duplicate { first }));
                    continue;
                }
                _ => {
                    let previous = writers[w].take().expect("a key's writer is replaced once");
                    repeats.push((previous.pos, Repeat::Superseded { last: *input }));
                    tag = previous.tag;
                }
            }
        } else if let Some(earlier) = seen.get(&fingerprint) {
            match resolve {
                Resolve::FirstWins => {
                    repeats.push((pos, Repeat::Duplicate { first: earlier }));
                    continue;
                }
                _ => tag = Tag::Rewrite { from: earlier },
            }
        }
        local.insert(fingerprint, writers.len());
        writers.push(Some(Writer { pos, key, tag }));
    }
    let seen = local
        .into_iter()
        .map(|(fingerprint, w)| {
            let pos = writers[w].as_ref().expect("the key's last writer").pos;
            (fingerprint, chunk[pos].0)
        })
        .collect();
    let mut writers: Vec<Writer> = writers.into_iter().flatten().collect();
    if resolve != Resolve::None {
        // Stable: rows without a key keep their input order.
        writers.sort_by(|a, b| match (&a.key, &b.key) {
            (Some(a), Some(b)) => a.cmp(b),
            (a, b) => b.is_some().cmp(&a.is_some()),
        });
    }
    repeats.sort_unstable_by_key(|(pos, _)| *pos);
    ChunkPlan {
        writers,
        repeats,
        seen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(crate::Model, Debug)]
    #[model(table = "items")]
    struct Item {
        #[model(primary_key, auto_increment)]
        id: i64,
        #[unique]
        sku: Option<String>,
    }

    fn chunk(first_input: usize, skus: &[Option<&str>]) -> Vec<(usize, Item)> {
        skus.iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    first_input + i,
                    Item {
                        id: 0,
                        sku: s.map(str::to_owned),
                    },
                )
            })
            .collect()
    }

    const KEY: Option<KeyId> = Some(KeyId::Unique(0));

    #[test]
    fn last_wins_points_every_superseded_row_forward_and_writes_in_key_order() {
        let seen = Seen::new(true);
        let rows = chunk(0, &[Some("b"), Some("a"), Some("b"), None, Some("b")]);
        let plan = plan(&rows, KEY, Resolve::LastWins, &seen, Dialect::Postgres);
        let written: Vec<usize> = plan.writers.iter().map(|w| w.pos).collect();
        assert_eq!(written, vec![1, 4, 3], "a, b, then the NULL key");
        assert_eq!(
            plan.repeats,
            vec![
                (0, Repeat::Superseded { last: 2 }),
                (2, Repeat::Superseded { last: 4 })
            ]
        );
        assert!(plan.writers.iter().all(|w| w.tag == Tag::Fresh));
    }

    #[test]
    fn repeats_across_chunks_are_repeats() {
        let mut seen = Seen::new(true);
        let first = chunk(0, &[Some("a"), Some("b")]);
        let p = plan(&first, KEY, Resolve::FirstWins, &seen, Dialect::Sqlite);
        seen.apply(p.seen);
        let second = chunk(2, &[Some("b"), Some("c"), Some("c")]);
        let p = plan(&second, KEY, Resolve::FirstWins, &seen, Dialect::Sqlite);
        assert_eq!(
            p.repeats,
            vec![
                (0, Repeat::Duplicate { first: 1 }),
                (2, Repeat::Duplicate { first: 3 })
            ]
        );
        assert_eq!(p.writers.len(), 1);

        let q = plan(&second, KEY, Resolve::LastWins, &seen, Dialect::Sqlite);
        let tags: Vec<(usize, Tag)> = q.writers.iter().map(|w| (w.pos, w.tag)).collect();
        assert_eq!(tags, vec![(0, Tag::Rewrite { from: 1 }), (2, Tag::Fresh)]);
        assert_eq!(q.repeats, vec![(1, Repeat::Superseded { last: 4 })]);
        seen.apply(q.seen);
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn without_resolution_every_row_is_written_in_input_order() {
        let rows = chunk(0, &[Some("b"), Some("a"), Some("b")]);
        let p = plan(&rows, None, Resolve::None, &Seen::new(true), Dialect::MySql);
        let written: Vec<usize> = p.writers.iter().map(|w| w.pos).collect();
        assert_eq!(written, vec![0, 1, 2]);
        assert!(p.repeats.is_empty());
    }
}
