//! Where a Kafka producer puts a keyed message: the partitioners of librdkafka (playsource's own
//! producers, and every client built on it) and of the Java client (Kafka Connect, Kafka Streams),
//! as pure functions of the key bytes and the topic's partition count.
//!
//! The stream uses them to tell which partition an archived row without Kafka provenance belongs
//! to (docs/stream.md, "State across restarts"): both input topics are keyed by `member_id` as a
//! decimal string (docs/reference.md §1), see [`member_key`].
//!
//! - [`Partitioner::ConsistentRandom`], librdkafka's default (`partitioner=consistent_random`):
//!   the CRC-32 (zlib's, ISO-HDLC) of the key bytes, modulo the partition count
//!   (`rd_kafka_msg_partitioner_consistent` in librdkafka's `rdkafka_msg.c`).
//! - [`Partitioner::Murmur2Random`], the Java client's default for keyed messages and librdkafka's
//!   `murmur2_random`: `toPositive(murmur2(key)) % partitions`, with Kafka's `Utils.murmur2`
//!   (MurmurHash2, seed `0x9747b28c`) and `toPositive(n) = n & 0x7fffffff`.
//!
//! A message without a key, or (for `consistent_random`) with an empty one, goes to a random
//! partition; member ids are never empty, so neither case arises here.

use std::fmt;
use std::str::FromStr;

/// A producer's partitioner for keyed messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Partitioner {
    /// librdkafka's default: CRC-32 of the key, modulo the partition count.
    #[default]
    ConsistentRandom,
    /// The Java client's default (and librdkafka's `murmur2_random`): positive murmur2 of the
    /// key, modulo the partition count.
    Murmur2Random,
}

impl Partitioner {
    /// Every partitioner, in the order of [`Partitioner::name`]s listed in help texts.
    pub const ALL: [Partitioner; 2] = [Partitioner::ConsistentRandom, Partitioner::Murmur2Random];

    /// librdkafka's name for it (its `partitioner` setting).
    pub fn name(self) -> &'static str {
        match self {
            Partitioner::ConsistentRandom => "consistent_random",
            Partitioner::Murmur2Random => "murmur2_random",
        }
    }

    /// The partition, in `0..partitions`, a message keyed `key` goes to; `None` when `partitions`
    /// is below 1.
    pub fn partition(self, key: &[u8], partitions: i32) -> Option<i32> {
        let n = u32::try_from(partitions).ok().filter(|&n| n > 0)?;
        let h = match self {
            Partitioner::ConsistentRandom => crc32(key),
            Partitioner::Murmur2Random => to_positive(murmur2(key)),
        };
        // Below `partitions`, so it fits an i32.
        i32::try_from(h % n).ok()
    }
}

impl fmt::Display for Partitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A partitioner name that is not one of [`Partitioner::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown partitioner `{0}`; use consistent_random (librdkafka's default) or murmur2_random (the Java client's and Kafka Connect's)")]
pub struct UnknownPartitioner(pub String);

impl FromStr for Partitioner {
    type Err = UnknownPartitioner;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Partitioner::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPartitioner(s.to_owned()))
    }
}

/// The key of a member's messages on the input topics: the member id as a decimal string.
pub fn member_key(member_id: u64) -> String {
    member_id.to_string()
}

/// CRC-32 as zlib computes it (librdkafka's `rd_crc32`).
pub fn crc32(key: &[u8]) -> u32 {
    crc32fast::hash(key)
}

/// Kafka's `Utils.murmur2`: MurmurHash2 (32-bit, seed `0x9747b28c`) of `key`, the four-byte
/// words read little-endian, as the Java client and librdkafka's `rd_murmur2` compute it.
pub fn murmur2(key: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // The length is mixed in as a 32-bit int, as Java's `int length` (keys are far shorter).
    let mut h = SEED ^ (key.len() as u32);
    let mut words = key.chunks_exact(4);
    for w in words.by_ref() {
        let mut k = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// Kafka's `Utils.toPositive`: the hash with its sign bit cleared.
fn to_positive(h: u32) -> u32 {
    h & 0x7fff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own vectors for `Utils.murmur2` (Apache Kafka,
    /// `clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java`, `testMurmur2`), as
    /// Java ints.
    #[test]
    fn murmur2_matches_kafkas_utils_test() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(
                murmur2(key) as i32,
                want,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }

    /// librdkafka's vectors for `rd_murmur2` (`unittest_murmur2` in `src/rdmurmur2.c`, "the
    /// java murmur2 results"): every tail length, and the empty key.
    #[test]
    fn murmur2_matches_librdkafkas_unit_test() {
        let unaligned = "PreAmbleWillBeRemoved,ThePrePartThatIs";
        let cases: [(&str, u32); 11] = [
            ("kafka", 0xd067_cf64),
            ("giberish123456789", 0x8f55_2b0c),
            ("1234", 0x9fc9_7b14),
            ("234", 0xe7c0_09ca),
            ("34", 0x8739_30da),
            ("4", 0x5a4b_5ca1),
            (unaligned, 0x7842_4f1c),
            (&unaligned[1..], 0x4a62_b377),
            (&unaligned[2..], 0xe0e4_e09e),
            (&unaligned[3..], 0x62b8_b43f),
            ("", 0x106e_08d9),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key.as_bytes()), want, "{key:?}");
        }
    }

    /// The CRC-32 check value of the catalogue of parametrised CRC algorithms (CRC-32/ISO-HDLC,
    /// zlib's): the CRC of the nine bytes `123456789`.
    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn partitions_stay_in_range_and_names_round_trip() {
        for p in Partitioner::ALL {
            assert_eq!(p.name().parse::<Partitioner>().unwrap(), p);
            assert_eq!(p.partition(b"42", 0), None);
            assert_eq!(p.partition(b"42", -3), None);
            assert_eq!(p.partition(b"42", 1), Some(0));
            for m in 1..2000u64 {
                let q = p.partition(member_key(m).as_bytes(), 7).unwrap();
                assert!((0..7).contains(&q));
            }
        }
        // toPositive, not abs: a negative hash keeps its low 31 bits.
        let key = b"21"; // murmur2 = -973932308
        let want = ((-973_932_308_i32) & 0x7fff_ffff) % 10;
        assert_eq!(Partitioner::Murmur2Random.partition(key, 10), Some(want));
        let err = "murmur2".parse::<Partitioner>().unwrap_err().to_string();
        assert!(
            err.contains("consistent_random") && err.contains("murmur2_random"),
            "{err}"
        );
    }
}
