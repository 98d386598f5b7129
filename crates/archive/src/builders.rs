//! Builders that turn domain events into Arrow record batches of the archive schema.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder, UInt16Builder, UInt64Builder,
};
use arrow::datatypes::SchemaRef;
use playsource_domain::{Impression, Play, Ts};

use crate::schema::{impressions_schema, plays_schema, UTC};

/// A builder of record batches for one topic's events.
pub trait EventBuilder: Default {
    /// The event this builder takes.
    type Event<'a>;

    /// The schema of the batches this builder makes.
    fn schema() -> SchemaRef;

    /// The event time of an event (it decides the archive partition).
    fn event_ts(event: &Self::Event<'_>) -> Ts;

    /// Appends one event with its Kafka (partition, offset), if it came from Kafka.
    fn push(&mut self, event: &Self::Event<'_>, provenance: Option<(i32, i64)>);

    /// Rows appended since the last [`EventBuilder::finish`].
    fn len(&self) -> usize;

    /// Whether no row was appended since the last [`EventBuilder::finish`].
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows appended so far as one batch; the builder starts over empty.
    fn finish(&mut self) -> RecordBatch;
}

fn ts_builder(capacity: usize) -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::with_capacity(capacity).with_timezone(UTC)
}

/// Every column is appended once per row, so the columns always fit the schema; this cannot
/// fail short of a bug in this module.
fn make_batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
    #[allow(clippy::expect_used)]
    RecordBatch::try_new(schema, columns).expect("archive builders append every column per row")
}

/// Builds `impressions` record batches.
pub struct ImpressionsBuilder {
    event_id: StringBuilder,
    ts: TimestampMillisecondBuilder,
    member_id: UInt64Builder,
    video_id: UInt64Builder,
    page: StringBuilder,
    row_type: StringBuilder,
    row_index: UInt16Builder,
    rank: UInt16Builder,
    country: StringBuilder,
    device: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
}

impl ImpressionsBuilder {
    /// A builder with room for `rows` rows.
    pub fn with_capacity(rows: usize) -> ImpressionsBuilder {
        ImpressionsBuilder {
            event_id: StringBuilder::with_capacity(rows, rows * 36),
            ts: ts_builder(rows),
            member_id: UInt64Builder::with_capacity(rows),
            video_id: UInt64Builder::with_capacity(rows),
            page: StringBuilder::with_capacity(rows, rows * 4),
            row_type: StringBuilder::with_capacity(rows, rows * 12),
            row_index: UInt16Builder::with_capacity(rows),
            rank: UInt16Builder::with_capacity(rows),
            country: StringBuilder::with_capacity(rows, rows * 2),
            device: StringBuilder::with_capacity(rows, rows * 4),
            partition: Int32Builder::with_capacity(rows),
            offset: Int64Builder::with_capacity(rows),
        }
    }

    /// Appends one impression with its Kafka (partition, offset), if any.
    pub fn push(&mut self, e: &Impression<'_>, provenance: Option<(i32, i64)>) {
        self.event_id.append_value(&e.event_id);
        self.ts.append_value(e.ts.0);
        self.member_id.append_value(e.member_id.0);
        self.video_id.append_value(e.video_id.0);
        self.page.append_value(&e.page);
        self.row_type.append_value(&e.row_type);
        self.row_index.append_value(e.row_index);
        self.rank.append_value(e.rank);
        self.country.append_value(&e.country);
        self.device.append_value(&e.device);
        self.partition.append_option(provenance.map(|p| p.0));
        self.offset.append_option(provenance.map(|p| p.1));
    }

    /// Rows appended since the last finish.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether nothing was appended since the last finish.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows so far as one batch of [`impressions_schema`]; the builder starts over.
    pub fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.member_id.finish()),
            Arc::new(self.video_id.finish()),
            Arc::new(self.page.finish()),
            Arc::new(self.row_type.finish()),
            Arc::new(self.row_index.finish()),
            Arc::new(self.rank.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.device.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
        ];
        make_batch(impressions_schema(), columns)
    }
}

impl Default for ImpressionsBuilder {
    fn default() -> Self {
        ImpressionsBuilder::with_capacity(1024)
    }
}

impl EventBuilder for ImpressionsBuilder {
    type Event<'a> = Impression<'a>;

    fn schema() -> SchemaRef {
        impressions_schema()
    }

    fn event_ts(event: &Impression<'_>) -> Ts {
        event.ts
    }

    fn push(&mut self, event: &Impression<'_>, provenance: Option<(i32, i64)>) {
        ImpressionsBuilder::push(self, event, provenance)
    }

    fn len(&self) -> usize {
        ImpressionsBuilder::len(self)
    }

    fn finish(&mut self) -> RecordBatch {
        ImpressionsBuilder::finish(self)
    }
}

/// Builds `plays` record batches.
pub struct PlaysBuilder {
    event_id: StringBuilder,
    ts: TimestampMillisecondBuilder,
    member_id: UInt64Builder,
    video_id: UInt64Builder,
    country: StringBuilder,
    device: StringBuilder,
    session_id: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
}

impl PlaysBuilder {
    /// A builder with room for `rows` rows.
    pub fn with_capacity(rows: usize) -> PlaysBuilder {
        PlaysBuilder {
            event_id: StringBuilder::with_capacity(rows, rows * 36),
            ts: ts_builder(rows),
            member_id: UInt64Builder::with_capacity(rows),
            video_id: UInt64Builder::with_capacity(rows),
            country: StringBuilder::with_capacity(rows, rows * 2),
            device: StringBuilder::with_capacity(rows, rows * 4),
            session_id: StringBuilder::with_capacity(rows, rows * 16),
            partition: Int32Builder::with_capacity(rows),
            offset: Int64Builder::with_capacity(rows),
        }
    }

    /// Appends one play with its Kafka (partition, offset), if any.
    pub fn push(&mut self, e: &Play<'_>, provenance: Option<(i32, i64)>) {
        self.event_id.append_value(&e.event_id);
        self.ts.append_value(e.ts.0);
        self.member_id.append_value(e.member_id.0);
        self.video_id.append_value(e.video_id.0);
        self.country.append_value(&e.country);
        self.device.append_value(&e.device);
        self.session_id.append_option(e.session_id.as_deref());
        self.partition.append_option(provenance.map(|p| p.0));
        self.offset.append_option(provenance.map(|p| p.1));
    }

    /// Rows appended since the last finish.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether nothing was appended since the last finish.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows so far as one batch of [`plays_schema`]; the builder starts over.
    pub fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.member_id.finish()),
            Arc::new(self.video_id.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.device.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
        ];
        make_batch(plays_schema(), columns)
    }
}

impl Default for PlaysBuilder {
    fn default() -> Self {
        PlaysBuilder::with_capacity(1024)
    }
}

impl EventBuilder for PlaysBuilder {
    type Event<'a> = Play<'a>;

    fn schema() -> SchemaRef {
        plays_schema()
    }

    fn event_ts(event: &Play<'_>) -> Ts {
        event.ts
    }

    fn push(&mut self, event: &Play<'_>, provenance: Option<(i32, i64)>) {
        PlaysBuilder::push(self, event, provenance)
    }

    fn len(&self) -> usize {
        PlaysBuilder::len(self)
    }

    fn finish(&mut self) -> RecordBatch {
        PlaysBuilder::finish(self)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, TimestampMillisecondType, UInt16Type, UInt64Type};
    use playsource_domain::{MemberId, VideoId};

    use super::*;

    fn imp(i: u64) -> Impression<'static> {
        Impression {
            event_id: Cow::Owned(format!("imp-{i}")),
            ts: Ts(1_700_000_000_000 + i as i64),
            member_id: MemberId(10 + i),
            video_id: VideoId(u64::MAX - i),
            page: "home".into(),
            row_type: "top_picks".into(),
            row_index: 3,
            rank: u16::MAX,
            country: "BR".into(),
            device: "tv".into(),
        }
    }

    #[test]
    fn impressions_batch_holds_every_field() {
        let mut b = ImpressionsBuilder::default();
        b.push(&imp(0), Some((2, 99)));
        b.push(&imp(1), None);
        assert_eq!(b.len(), 2);
        let batch = b.finish();
        assert!(b.is_empty());
        assert_eq!(batch.schema(), impressions_schema());
        assert_eq!(batch.num_rows(), 2);
        let col = |n: &str| batch.column_by_name(n).unwrap().clone();
        assert_eq!(col("event_id").as_string::<i32>().value(1), "imp-1");
        assert_eq!(
            col("ts")
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            1_700_000_000_000
        );
        assert_eq!(col("member_id").as_primitive::<UInt64Type>().value(1), 11);
        assert_eq!(
            col("video_id").as_primitive::<UInt64Type>().value(0),
            u64::MAX
        );
        assert_eq!(col("rank").as_primitive::<UInt16Type>().value(0), u16::MAX);
        assert_eq!(col("_partition").as_primitive::<Int32Type>().value(0), 2);
        assert!(col("_partition").is_null(1));
        assert!(col("_offset").is_null(1));
        // The builder is reusable after finish.
        b.push(&imp(2), None);
        assert_eq!(b.finish().num_rows(), 1);
    }

    #[test]
    fn plays_batch_keeps_missing_session_as_null() {
        let mut b = PlaysBuilder::default();
        let mut p = Play {
            event_id: "play-1".into(),
            ts: Ts(5),
            member_id: MemberId(1),
            video_id: VideoId(2),
            country: "US".into(),
            device: "web".into(),
            session_id: Some("s-1".into()),
        };
        b.push(&p, None);
        p.session_id = None;
        b.push(&p, Some((0, 0)));
        let batch = b.finish();
        assert_eq!(batch.schema(), plays_schema());
        let sid = batch.column_by_name("session_id").unwrap();
        assert_eq!(sid.as_string::<i32>().value(0), "s-1");
        assert!(sid.is_null(1));
        // An empty builder still makes a valid (empty) batch.
        assert_eq!(b.finish().num_rows(), 0);
    }
}
