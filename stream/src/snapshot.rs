//! Engine snapshots: `postcard`, then zstd. A snapshot is written in the flush transaction that
//! commits the offsets it is exact at, so a restart restores it and replays only what follows.

use playsource_domain::Engine;

/// Version of the snapshot encoding, stored beside it; a snapshot of another version is ignored
/// (the unit then rebuilds from the earliest retained offsets).
pub const FORMAT: i32 = 3;

const ZSTD_LEVEL: i32 = 3;

/// Why a snapshot could not be encoded or decoded (the cause's own text, said once).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// postcard could not serialise or deserialise the engine.
    #[error("{0}")]
    Postcard(postcard::Error),
    /// zstd could not compress or decompress the bytes.
    #[error("{0}")]
    Zstd(std::io::Error),
}

/// Serialises and compresses an engine.
pub fn encode(engine: &Engine) -> Result<Vec<u8>, SnapshotError> {
    let raw = postcard::to_stdvec(engine).map_err(SnapshotError::Postcard)?;
    zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(SnapshotError::Zstd)
}

/// Restores an engine from [`encode`]'s bytes.
pub fn decode(bytes: &[u8]) -> Result<Engine, SnapshotError> {
    let raw = zstd::stream::decode_all(bytes).map_err(SnapshotError::Zstd)?;
    postcard::from_bytes(&raw).map_err(SnapshotError::Postcard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use playsource_domain::{decode_impression, decode_play, AttributionConfig};

    #[test]
    fn round_trip_keeps_the_engine_exact() {
        let mut e = Engine::new(AttributionConfig::default());
        let mut out = Vec::new();
        let imp = br#"{"event_id":"i1","ts":"2026-11-21T10:00:00Z","member_id":1,"video_id":2,"page":"home","row_type":"top_picks","row_index":1,"rank":2,"country":"US","device":"tv"}"#;
        let play = br#"{"event_id":"p1","ts":"2026-11-21T10:05:00Z","member_id":1,"video_id":2,"country":"US","device":"tv"}"#;
        e.on_impression(&decode_impression(imp).unwrap(), &mut out);
        e.on_play(&decode_play(play).unwrap(), &mut out);
        let bytes = encode(&e).unwrap();
        let mut back = decode(&bytes).unwrap();
        // Everything but the capacity-dependent byte estimate is the same.
        let (x, y) = (back.stats(), e.stats());
        assert_eq!(
            (x.keys, x.impressions, x.pending_plays, x.dedup_ids),
            (y.keys, y.impressions, y.pending_plays, y.dedup_ids)
        );
        // The restored engine still de-duplicates the play and attributes a new one the same.
        let mut a = Vec::new();
        let mut b = Vec::new();
        assert_eq!(
            back.on_play(&decode_play(play).unwrap(), &mut a),
            playsource_domain::Verdict::Duplicate
        );
        let play2 = br#"{"event_id":"p2","ts":"2026-11-21T10:06:00Z","member_id":1,"video_id":2,"country":"US","device":"tv"}"#;
        back.on_play(&decode_play(play2).unwrap(), &mut a);
        e.on_play(&decode_play(play2).unwrap(), &mut b);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].current, b[0].current);
        assert!(a[0].current.sop.is_some());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"not a snapshot").is_err());
        let junk = zstd::bulk::compress(b"\xff\xff\xff", 1).unwrap();
        assert!(decode(&junk).is_err());
    }
}
