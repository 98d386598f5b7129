//! The Arrow schemas of the archived topics: the field names of docs/reference.md §1, `ts` as a UTC
//! millisecond timestamp, ids as `UInt64`, `row_index`/`rank` as `UInt16`, strings as `Utf8`,
//! plus the nullable Kafka provenance columns `_partition` and `_offset`.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Column `event_id`.
pub const EVENT_ID: &str = "event_id";
/// Column `ts`.
pub const TS: &str = "ts";
/// Column `member_id`.
pub const MEMBER_ID: &str = "member_id";
/// Column `video_id`.
pub const VIDEO_ID: &str = "video_id";
/// Column `page`.
pub const PAGE: &str = "page";
/// Column `row_type`.
pub const ROW_TYPE: &str = "row_type";
/// Column `row_index`.
pub const ROW_INDEX: &str = "row_index";
/// Column `rank`.
pub const RANK: &str = "rank";
/// Column `country`.
pub const COUNTRY: &str = "country";
/// Column `device`.
pub const DEVICE: &str = "device";
/// Column `session_id` (plays only, nullable).
pub const SESSION_ID: &str = "session_id";
/// Provenance column: the Kafka partition the event was consumed from (nullable).
pub const PARTITION: &str = "_partition";
/// Provenance column: the Kafka offset the event was consumed at (nullable).
pub const OFFSET: &str = "_offset";

/// The time zone of `ts`.
pub const UTC: &str = "UTC";

/// The type of `ts`: `Timestamp(Millisecond, "UTC")`.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// The schema of archived `impressions`.
pub fn impressions_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(EVENT_ID, DataType::Utf8, false),
                Field::new(TS, ts_type(), false),
                Field::new(MEMBER_ID, DataType::UInt64, false),
                Field::new(VIDEO_ID, DataType::UInt64, false),
                Field::new(PAGE, DataType::Utf8, false),
                Field::new(ROW_TYPE, DataType::Utf8, false),
                Field::new(ROW_INDEX, DataType::UInt16, false),
                Field::new(RANK, DataType::UInt16, false),
                Field::new(COUNTRY, DataType::Utf8, false),
                Field::new(DEVICE, DataType::Utf8, false),
                Field::new(PARTITION, DataType::Int32, true),
                Field::new(OFFSET, DataType::Int64, true),
            ]))
        })
        .clone()
}

/// The schema of archived `plays`.
pub fn plays_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(EVENT_ID, DataType::Utf8, false),
                Field::new(TS, ts_type(), false),
                Field::new(MEMBER_ID, DataType::UInt64, false),
                Field::new(VIDEO_ID, DataType::UInt64, false),
                Field::new(COUNTRY, DataType::Utf8, false),
                Field::new(DEVICE, DataType::Utf8, false),
                Field::new(SESSION_ID, DataType::Utf8, true),
                Field::new(PARTITION, DataType::Int32, true),
                Field::new(OFFSET, DataType::Int64, true),
            ]))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_follow_the_contract() {
        let names =
            |s: SchemaRef| -> Vec<String> { s.fields().iter().map(|f| f.name().clone()).collect() };
        assert_eq!(
            names(impressions_schema()),
            [
                "event_id",
                "ts",
                "member_id",
                "video_id",
                "page",
                "row_type",
                "row_index",
                "rank",
                "country",
                "device",
                "_partition",
                "_offset"
            ]
        );
        assert_eq!(
            names(plays_schema()),
            [
                "event_id",
                "ts",
                "member_id",
                "video_id",
                "country",
                "device",
                "session_id",
                "_partition",
                "_offset"
            ]
        );
        let ts = impressions_schema().field_with_name(TS).unwrap().clone();
        assert_eq!(
            ts.data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
    }
}
