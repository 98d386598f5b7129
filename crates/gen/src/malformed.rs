//! Malformed variants of valid messages: each breaks one rule of docs/reference.md §1.

use rand::Rng;

use crate::message::Event;

/// Number of distinct ways a message is broken.
pub const VARIANTS: u32 = 9;

/// A broken copy of `event`'s JSON (a fresh event id where one remains, so that the broken
/// message never shadows a valid one). `variant` picks the rule to break.
pub fn malformed<R: Rng>(rng: &mut R, event: &Event, variant: u32, event_id: &str) -> Vec<u8> {
    let json = event.to_json();
    let mut value: serde_json::Value = match serde_json::from_str(&json) {
        Ok(v) => v,
        Err(_) => return b"not json".to_vec(),
    };
    let Some(obj) = value.as_object_mut() else {
        return b"not json".to_vec();
    };
    obj.insert("event_id".into(), event_id.into());
    let is_impression = matches!(event, Event::Impression(_));
    match variant % VARIANTS {
        0 => {
            // Truncated JSON.
            let full = serde_json::to_vec(&value).unwrap_or_default();
            let cut = rng.gen_range(1..full.len().max(2) as u32) as usize;
            return full[..cut.min(full.len())].to_vec();
        }
        1 => return b"\x00\x01binary garbage \xff".to_vec(),
        2 => {
            let field = if is_impression {
                ["member_id", "ts", "row_type", "video_id"][rng.gen_range(0..4u32) as usize]
            } else {
                ["member_id", "ts", "video_id", "device"][rng.gen_range(0..4u32) as usize]
            };
            obj.remove(field);
        }
        3 => {
            obj.insert(
                "country".into(),
                ["usa", "XX", "br", ""][rng.gen_range(0..4u32) as usize].into(),
            );
        }
        4 => {
            obj.insert("member_id".into(), 0.into());
        }
        5 => {
            obj.insert(
                "ts".into(),
                ["yesterday", "2026-11-21 10:00:00", "1700000000"][rng.gen_range(0..3u32) as usize]
                    .into(),
            );
        }
        6 => {
            if is_impression {
                obj.insert("row_type".into(), "unattributed".into());
            } else {
                obj.insert("device".into(), "Smart TV".into());
            }
        }
        7 => {
            obj.insert("video_id".into(), "eighty".into());
        }
        _ => {
            obj.insert("event_id".into(), "".into());
        }
    }
    serde_json::to_vec(&value).unwrap_or_default()
}
