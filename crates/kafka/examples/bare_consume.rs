//! The broker's ceiling for bench/catchup.sh (issue #19): a bare librdkafka consumer that reads
//! every partition of the given topics from the beginning to their end and does nothing with the
//! messages but count them and their bytes — no decoding, no state, no Postgres, no archive.
//! Same client settings as `playsource stream` where they matter for fetching.
//!
//!     cargo run --release -p playsource-kafka --example bare_consume -- BROKERS TOPIC [TOPIC ...]
//!
//! Prints `bare consumer: <messages> messages, <bytes> bytes in <secs> s: <rate> messages/s`
//! (timed from the first message to the last).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topics @ ..] = args.as_slice() else {
        eprintln!("usage: bare_consume BROKERS TOPIC [TOPIC ...]");
        return ExitCode::from(2);
    };
    if topics.is_empty() {
        eprintln!("usage: bare_consume BROKERS TOPIC [TOPIC ...]");
        return ExitCode::from(2);
    }
    match run(brokers, topics) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare consumer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(brokers: &str, topics: &[String]) -> Result<(), KafkaError> {
    let consumer: BaseConsumer = playsource_kafka::client_config(brokers)
        .set("group.id", "playsource-bench-bare")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.queue.backoff.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    let mut partitions = 0usize;
    for topic in topics {
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        for t in md.topics() {
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
                partitions += 1;
            }
        }
    }
    consumer.assign(&tpl)?;
    let (mut messages, mut bytes, mut at_end) = (0u64, 0u64, 0usize);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while at_end < partitions {
        match consumer.poll(Duration::from_secs(10)) {
            None => return Err(KafkaError::NoMessageReceived),
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                messages += 1;
                bytes += m.payload().map_or(0, |p| p.len() as u64);
            }
            Some(Err(KafkaError::PartitionEOF(_))) => at_end += 1,
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::PartitionEOF))) => {
                at_end += 1
            }
            Some(Err(e)) => return Err(e),
        }
    }
    let secs = first.map_or(0.0, |f| (last - f).as_secs_f64()).max(1e-9);
    println!(
        "bare consumer: {messages} messages, {bytes} bytes in {secs:.3} s: {:.0} messages/s",
        messages as f64 / secs
    );
    Ok(())
}
