//! Identifiers: member and video ids, compact event ids, and interned symbols for low-cardinality
//! strings (row types, countries, devices, genres).

use std::cmp::Ordering;
use std::fmt;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// A member (subscriber) id; always ≥ 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberId(pub u64);

/// A video (title) id; always ≥ 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VideoId(pub u64);

impl MemberId {
    /// The batch shard (0-based, of `count`) this member's plays and impressions belong to, for
    /// files that do not say their Kafka partition (`playsource batch --shard I/N`): the
    /// SplitMix64 finalizer (Steele, Lea & Flood 2014) of the id, modulo `count`. Fixed for good:
    /// shards of one day may run different versions, and must agree on it.
    pub fn batch_shard(self, count: u32) -> u32 {
        let mut z = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % u64::from(count.max(1))) as u32
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An event id as kept in attribution state. Canonical lower-case UUIDs (what most producers
/// send) take 16 bytes; anything else is kept as text. Ordering is the ordering of the original
/// strings, which the attribution rules use to break ties on `ts`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKey {
    /// A canonical, lower-case, hyphenated UUID, stored as its 16 bytes.
    Uuid([u8; 16]),
    /// Any other id.
    Text(Box<str>),
}

impl EventKey {
    /// The compact form of an event id.
    pub fn new(id: &str) -> EventKey {
        match parse_canonical_uuid(id) {
            Some(b) => EventKey::Uuid(b),
            None => EventKey::Text(id.into()),
        }
    }

    /// The original string.
    pub fn as_string(&self) -> String {
        self.to_string()
    }

    /// A stable 128-bit hash of the original string (for de-duplication sets).
    pub fn hash128(id: &str) -> u128 {
        xxhash_rust::xxh3::xxh3_128(id.as_bytes())
    }

    /// Approximate heap bytes owned by this key.
    pub fn heap_bytes(&self) -> usize {
        match self {
            EventKey::Uuid(_) => 0,
            EventKey::Text(s) => s.len(),
        }
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKey::Uuid(b) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut out = [0u8; 36];
                let mut o = 0;
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        out[o] = b'-';
                        o += 1;
                    }
                    out[o] = HEX[(byte >> 4) as usize];
                    out[o + 1] = HEX[(byte & 0xf) as usize];
                    o += 2;
                }
                f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
            }
            EventKey::Text(s) => f.write_str(s),
        }
    }
}

impl Ord for EventKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            // Canonical lower-case hex sorts like its bytes.
            (EventKey::Uuid(a), EventKey::Uuid(b)) => a.cmp(b),
            (EventKey::Text(a), EventKey::Text(b)) => a.cmp(b),
            _ => self.to_string().cmp(&other.to_string()),
        }
    }
}

impl PartialOrd for EventKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Value of a lower-case hex digit, 0xff for anything else.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut c = 0;
    while c < 10 {
        t[b'0' as usize + c] = c as u8;
        c += 1;
    }
    let mut c = 0;
    while c < 6 {
        t[b'a' as usize + c] = 10 + c as u8;
        c += 1;
    }
    t
};

fn parse_canonical_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nib = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = HEX[usize::from(c)];
        if v > 15 {
            return None;
        }
        out[nib / 2] |= if nib % 2 == 0 { v << 4 } else { v };
        nib += 1;
    }
    Some(out)
}

/// An interned low-cardinality string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sym(pub u32);

/// An append-only string interner. Row types, countries, devices and genres are few, so state
/// and aggregation keys carry a 4-byte [`Sym`] instead of a string.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "Vec<Box<str>>", into = "Vec<Box<str>>")]
pub struct Interner {
    strings: Vec<Box<str>>,
    index: FxHashMap<Box<str>, Sym>,
}

impl From<Vec<Box<str>>> for Interner {
    fn from(strings: Vec<Box<str>>) -> Interner {
        let index = strings
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), Sym(i as u32)))
            .collect();
        Interner { strings, index }
    }
}

impl From<Interner> for Vec<Box<str>> {
    fn from(i: Interner) -> Vec<Box<str>> {
        i.strings
    }
}

impl Interner {
    /// The symbol of `s`, adding it if new.
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&sym) = self.index.get(s) {
            return sym;
        }
        let sym = Sym(self.strings.len() as u32);
        self.strings.push(s.into());
        self.index.insert(s.into(), sym);
        sym
    }

    /// The symbol of `s`, if interned.
    pub fn get(&self, s: &str) -> Option<Sym> {
        self.index.get(s).copied()
    }

    /// The string of a symbol; `""` for a symbol from another interner.
    pub fn resolve(&self, sym: Sym) -> &str {
        self.strings.get(sym.0 as usize).map(|s| &**s).unwrap_or("")
    }

    /// Number of distinct strings.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether nothing is interned.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_shard_is_fixed_and_in_range() {
        // Pinned values: changing the function would split a day's members differently between
        // shards running different versions.
        assert_eq!(MemberId(1).batch_shard(1), 0);
        let got: Vec<u32> = (1..=8).map(|m| MemberId(m).batch_shard(4)).collect();
        assert_eq!(got, [1, 2, 1, 2, 2, 0, 3, 2]);
        for m in 1..2000u64 {
            assert!(MemberId(m).batch_shard(3) < 3);
        }
        assert_eq!(MemberId(7).batch_shard(0), 0);
    }

    #[test]
    fn uuid_keys_round_trip_and_sort_like_strings() {
        let a = "0f3c1a2b-0000-4000-8000-00000000000a";
        let b = "0f3c1a2b-0000-4000-8000-0000000000a0";
        let ka = EventKey::new(a);
        assert!(matches!(ka, EventKey::Uuid(_)));
        assert_eq!(ka.to_string(), a);
        assert_eq!(ka.cmp(&EventKey::new(b)), a.cmp(b));
        // Upper case is not canonical: kept as text so it prints back unchanged.
        let upper = "0F3C1A2B-0000-4000-8000-00000000000A";
        assert!(matches!(EventKey::new(upper), EventKey::Text(_)));
        assert_eq!(EventKey::new(upper).cmp(&ka), upper.cmp(a));
        assert_eq!(
            EventKey::new("imp-2").cmp(&EventKey::new("imp-10")),
            "imp-2".cmp("imp-10")
        );
    }

    #[test]
    fn interner_survives_serde() {
        let mut i = Interner::default();
        let a = i.intern("top_picks");
        let b = i.intern("billboard");
        assert_eq!(i.intern("top_picks"), a);
        let json = serde_json::to_string(&i).unwrap();
        let mut back: Interner = serde_json::from_str(&json).unwrap();
        assert_eq!(back.get("billboard"), Some(b));
        assert_eq!(back.intern("billboard"), b);
        assert_eq!(back.resolve(a), "top_picks");
    }
}
