//! The engine's compact form of a pair's impressions: 32 bytes per impression when its event id
//! is a canonical UUID and its row type symbol fits 16 bits (what producers send), a boxed
//! [`ImpressionRecord`] otherwise; one impression inline, two or more in one exact-size box.

use smallvec::SmallVec;

use super::{ImpressionRecord, KeyImpressions};
use crate::ids::{EventKey, Sym};
use crate::time::Ts;

/// One impression, packed. 32 bytes, 8-aligned.
#[derive(Clone, Debug)]
pub(super) enum Rec {
    /// A canonical UUID id and a row type symbol below 2^16.
    Compact {
        ts: i64,
        id: [u8; 16],
        row: u16,
        row_index: u16,
        rank: u16,
    },
    /// Any other impression (a text event id, a large symbol).
    Wide(Box<ImpressionRecord>),
}

impl Rec {
    /// The packed form of `r`.
    pub(super) fn pack(r: ImpressionRecord) -> Rec {
        match (&r.event_id, u16::try_from(r.row_type.0)) {
            (EventKey::Uuid(id), Ok(row)) => Rec::Compact {
                ts: r.ts.0,
                id: *id,
                row,
                row_index: r.row_index,
                rank: r.rank,
            },
            _ => Rec::Wide(Box::new(r)),
        }
    }

    /// The record back, consuming the packed form.
    pub(super) fn unpack(self) -> ImpressionRecord {
        match self {
            Rec::Wide(r) => *r,
            compact => compact.to_record(),
        }
    }

    /// The record back.
    pub(super) fn to_record(&self) -> ImpressionRecord {
        match self {
            Rec::Compact {
                ts,
                id,
                row,
                row_index,
                rank,
            } => ImpressionRecord {
                ts: Ts(*ts),
                event_id: EventKey::Uuid(*id),
                row_type: Sym(u32::from(*row)),
                row_index: *row_index,
                rank: *rank,
            },
            Rec::Wide(r) => (**r).clone(),
        }
    }

    /// The impression's time.
    pub(super) fn ts(&self) -> Ts {
        match self {
            Rec::Compact { ts, .. } => Ts(*ts),
            Rec::Wide(r) => r.ts,
        }
    }

    /// Heap bytes owned beyond the 32 bytes of the record itself.
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            Rec::Compact { .. } => 0,
            Rec::Wide(r) => std::mem::size_of::<ImpressionRecord>() + r.event_id.heap_bytes(),
        }
    }
}

/// A pair's impressions, packed: sorted by (`ts`, `event_id`) as in [`KeyImpressions`], never
/// empty. 32 bytes inline.
#[derive(Clone, Debug)]
pub(super) enum Packed {
    /// The common case.
    One(Rec),
    /// Two or more, in a box of exactly their number.
    Many(Box<[Rec]>),
}

impl Packed {
    /// The packed form of a non-empty list; `None` for an empty one.
    pub(super) fn pack(k: KeyImpressions) -> Option<Packed> {
        let mut sorted = k.into_sorted();
        match sorted.len() {
            0 => None,
            1 => sorted.pop().map(|r| Packed::One(Rec::pack(r))),
            _ => Some(Packed::Many(sorted.into_iter().map(Rec::pack).collect())),
        }
    }

    /// The list back, consuming the packed form.
    pub(super) fn unpack(self) -> KeyImpressions {
        let sorted: SmallVec<[ImpressionRecord; 1]> = match self {
            Packed::One(r) => smallvec::smallvec![r.unpack()],
            Packed::Many(rs) => rs.into_vec().into_iter().map(Rec::unpack).collect(),
        };
        KeyImpressions::from_sorted(sorted)
    }

    /// The list back.
    pub(super) fn to_impressions(&self) -> KeyImpressions {
        let sorted: SmallVec<[ImpressionRecord; 1]> = match self {
            Packed::One(r) => smallvec::smallvec![r.to_record()],
            Packed::Many(rs) => rs.iter().map(Rec::to_record).collect(),
        };
        KeyImpressions::from_sorted(sorted)
    }

    /// The greatest impression's time.
    pub(super) fn last_ts(&self) -> Option<Ts> {
        match self {
            Packed::One(r) => Some(r.ts()),
            Packed::Many(rs) => rs.last().map(Rec::ts),
        }
    }

    /// Number of impressions.
    pub(super) fn len(&self) -> usize {
        match self {
            Packed::One(_) => 1,
            Packed::Many(rs) => rs.len(),
        }
    }

    /// Heap bytes owned beyond the 32 bytes inline.
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            Packed::One(r) => r.heap_bytes(),
            Packed::Many(rs) => {
                std::mem::size_of_val::<[Rec]>(rs) + rs.iter().map(Rec::heap_bytes).sum::<usize>()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: i64, id: &str, row: u32) -> ImpressionRecord {
        ImpressionRecord {
            ts: Ts(ts),
            event_id: EventKey::new(id),
            row_type: Sym(row),
            row_index: 3,
            rank: 4,
        }
    }

    #[test]
    fn records_are_32_bytes_and_round_trip_in_either_form() {
        assert_eq!(std::mem::size_of::<Rec>(), 32);
        assert_eq!(std::mem::size_of::<Packed>(), 32);
        let uuid = rec(5, "0f3c1a2b-0000-4000-8000-00000000000a", 7);
        let text = rec(-5, "imp-1", 7);
        let big_row = rec(6, "0f3c1a2b-0000-4000-8000-00000000000b", 70_000);
        assert!(matches!(Rec::pack(uuid.clone()), Rec::Compact { .. }));
        assert!(matches!(Rec::pack(text.clone()), Rec::Wide(_)));
        assert!(matches!(Rec::pack(big_row.clone()), Rec::Wide(_)));
        for r in [uuid, text, big_row] {
            assert_eq!(Rec::pack(r.clone()).to_record(), r);
            assert_eq!(Rec::pack(r.clone()).ts(), r.ts);
            assert_eq!(Rec::pack(r.clone()).unpack(), r);
        }
    }

    #[test]
    fn lists_pack_inline_when_single_and_boxed_otherwise() {
        let mut k = KeyImpressions::default();
        assert!(Packed::pack(k.clone()).is_none());
        k.insert(rec(1, "0f3c1a2b-0000-4000-8000-00000000000a", 1));
        let one = Packed::pack(k.clone()).expect("non-empty");
        assert!(matches!(one, Packed::One(_)));
        assert_eq!((one.len(), one.heap_bytes()), (1, 0));
        assert_eq!(one.to_impressions(), k);
        k.insert(rec(0, "b", 2));
        k.insert(rec(9, "a", 2));
        let many = Packed::pack(k.clone()).expect("non-empty");
        assert_eq!(many.len(), 3);
        assert_eq!(many.last_ts(), Some(Ts(9)));
        assert!(many.heap_bytes() >= 3 * 32 + 2 * std::mem::size_of::<ImpressionRecord>());
        assert_eq!(many.to_impressions(), k);
        assert_eq!(many.unpack(), k);
    }
}
