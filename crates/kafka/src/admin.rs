//! Topic administration: creating the four topics of docs/reference.md §6 with co-partitioned inputs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::{client_config, Error, Topics};

type Admin = AdminClient<DefaultClientContext>;

/// How long one admin or metadata request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for created topics to show up in the metadata.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Replication factor `-1`: the broker's `default.replication.factor`.
const BROKER_DEFAULT_REPLICATION: i32 = -1;

/// Creates whichever of the four topics is missing: the two input topics with the same
/// partition count, the enriched and dead-letter topics with `partitions`. Idempotent: existing
/// topics are kept as they are.
///
/// The input topics must be co-partitioned (docs/reference.md §1). If they already exist with
/// different counts, or one exists with a count other than `partitions` while the other is
/// missing, this fails with an error saying what to do. If both exist with the same count but
/// not `partitions`, they are kept (a warning is logged): Kafka cannot shrink a topic, and
/// growing one would move keys between partitions.
pub async fn ensure_topics(brokers: &str, topics: &Topics, partitions: i32) -> Result<(), Error> {
    if partitions < 1 {
        return Err(Error::InvalidPartitions(partitions));
    }
    validate_names(topics)?;
    let admin = admin_client(brokers)?;
    let existing = partition_counts(&admin, brokers).await?;
    let input = input_partitions(topics, partitions, &existing)?;

    let wanted = [
        (topics.impressions.as_str(), input),
        (topics.plays.as_str(), input),
        (topics.enriched.as_str(), partitions),
        (topics.dlq.as_str(), partitions),
    ];
    let mut to_create: Vec<(&str, i32)> = Vec::new();
    for (name, n) in wanted {
        if !existing.contains_key(name) && !to_create.iter().any(|(t, _)| *t == name) {
            to_create.push((name, n));
        }
    }
    if !to_create.is_empty() {
        create(&admin, brokers, &to_create).await?;
    }

    // Wait until every topic is visible, then check the inputs once more: another `init`
    // racing with this one may have created one of them with another count.
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let now = partition_counts(&admin, brokers).await?;
        let all_there = wanted.iter().all(|(t, _)| now.contains_key(*t));
        if all_there {
            check_inputs_match(topics, &now)?;
            for (name, n) in &to_create {
                tracing::info!(topic = %name, partitions = n, "created topic");
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            let missing: Vec<&str> = wanted
                .iter()
                .map(|(t, _)| *t)
                .filter(|t| !now.contains_key(*t))
                .collect();
            return Err(Error::NotVisible {
                brokers: brokers.into(),
                topics: missing.join(", "),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The number of partitions of `topic`, or `None` if it does not exist.
pub async fn partition_count(brokers: &str, topic: &str) -> Result<Option<i32>, Error> {
    let admin = admin_client(brokers)?;
    Ok(partition_counts(&admin, brokers).await?.get(topic).copied())
}

/// Checks that both input topics exist with the same partition count (docs/reference.md §1: they are
/// co-partitioned by member_id), which it returns. The one check of `gen`, `replay` and the
/// stream before they produce or consume.
pub async fn check_inputs(brokers: &str, impressions: &str, plays: &str) -> Result<i32, Error> {
    let admin = admin_client(brokers)?;
    let counts = partition_counts(&admin, brokers).await?;
    let count = |topic: &str| {
        counts
            .get(topic)
            .copied()
            .ok_or_else(|| Error::MissingTopic {
                topic: topic.to_owned(),
                brokers: brokers.to_owned(),
            })
    };
    let imp = count(impressions)?;
    let pl = count(plays)?;
    if imp != pl {
        return Err(mismatch(impressions, imp, plays, pl));
    }
    Ok(imp)
}

/// The `max.message.bytes` of `topic` as the broker reports it (DescribeConfigs): `Ok(None)` when
/// the broker does not answer the request or does not list the setting, so the caller falls back
/// to a default. Whether the topic exists is [`partition_count`]'s to say.
pub async fn topic_max_message_bytes(brokers: &str, topic: &str) -> Result<Option<usize>, Error> {
    let admin = admin_client(brokers)?;
    let opts = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let answers = match admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
        .await
    {
        Ok(a) => a,
        Err(_) => return Ok(None),
    };
    Ok(answers.into_iter().find_map(|r| {
        r.ok()?
            .get("max.message.bytes")?
            .value
            .as_deref()?
            .parse()
            .ok()
    }))
}

/// Longest topic name Kafka accepts.
const MAX_TOPIC_NAME: usize = 249;

/// Checks that every name is a legal Kafka topic name and that the four are distinct.
fn validate_names(topics: &Topics) -> Result<(), Error> {
    let named = [
        ("--impressions-topic", topics.impressions.as_str()),
        ("--plays-topic", topics.plays.as_str()),
        ("--enriched-topic", topics.enriched.as_str()),
        ("--dlq-topic", topics.dlq.as_str()),
    ];
    for (i, (flag, name)) in named.iter().enumerate() {
        let legal = !name.is_empty()
            && name.len() <= MAX_TOPIC_NAME
            && *name != "."
            && *name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !legal {
            return Err(Error::InvalidTopicName {
                flag,
                name: (*name).to_owned(),
            });
        }
        if let Some((other, _)) = named[..i].iter().find(|(_, n)| n == name) {
            return Err(Error::SameTopic {
                first: other,
                second: flag,
                name: (*name).to_owned(),
            });
        }
    }
    Ok(())
}

/// Decides the partition count of the input topics, or explains why the existing ones cannot
/// be used.
fn input_partitions(
    topics: &Topics,
    requested: i32,
    existing: &HashMap<String, i32>,
) -> Result<i32, Error> {
    let imp = existing.get(&topics.impressions).copied();
    let plays = existing.get(&topics.plays).copied();
    match (imp, plays) {
        (Some(a), Some(b)) if a != b => Err(mismatch(&topics.impressions, a, &topics.plays, b)),
        (Some(a), Some(_)) => {
            if a != requested {
                tracing::warn!(
                    impressions = %topics.impressions,
                    plays = %topics.plays,
                    existing = a,
                    requested,
                    "the input topics already exist with {a} partitions; keeping them (--partitions {requested} applies only to topics that are created)"
                );
            }
            Ok(a)
        }
        (Some(a), None) if a != requested => Err(Error::WouldMismatch {
            existing: topics.impressions.clone(),
            existing_partitions: a,
            missing: topics.plays.clone(),
            requested,
        }),
        (None, Some(b)) if b != requested => Err(Error::WouldMismatch {
            existing: topics.plays.clone(),
            existing_partitions: b,
            missing: topics.impressions.clone(),
            requested,
        }),
        _ => Ok(requested),
    }
}

fn check_inputs_match(topics: &Topics, counts: &HashMap<String, i32>) -> Result<(), Error> {
    match (counts.get(&topics.impressions), counts.get(&topics.plays)) {
        (Some(&a), Some(&b)) if a != b => Err(mismatch(&topics.impressions, a, &topics.plays, b)),
        _ => Ok(()),
    }
}

fn mismatch(
    impressions: &str,
    impressions_partitions: i32,
    plays: &str,
    plays_partitions: i32,
) -> Error {
    Error::PartitionMismatch {
        impressions: impressions.to_owned(),
        impressions_partitions,
        plays: plays.to_owned(),
        plays_partitions,
    }
}

fn admin_client(brokers: &str) -> Result<Arc<Admin>, Error> {
    client_config(brokers)
        // Never let a metadata request create a topic behind our back.
        .set("allow.auto.create.topics", "false")
        .create()
        .map(Arc::new)
        .map_err(|cause| Error::Connect {
            brokers: brokers.into(),
            cause,
        })
}

async fn create(admin: &Admin, brokers: &str, topics: &[(&str, i32)]) -> Result<(), Error> {
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, n)| {
            NewTopic::new(
                name,
                *n,
                TopicReplication::Fixed(BROKER_DEFAULT_REPLICATION),
            )
        })
        .collect();
    let opts = AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT));
    let results = admin
        .create_topics(new.iter(), &opts)
        .await
        .map_err(|e| connect_error(brokers, e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::CreateTopic {
                    topic,
                    brokers: brokers.into(),
                    code,
                })
            }
        }
    }
    Ok(())
}

/// Partition counts of every topic of the cluster (one metadata request for all topics, so no
/// broker auto-creates a topic because we asked about it).
async fn partition_counts(
    admin: &Arc<Admin>,
    brokers: &str,
) -> Result<HashMap<String, i32>, Error> {
    let client = Arc::clone(admin);
    let metadata =
        tokio::task::spawn_blocking(move || client.inner().fetch_metadata(None, REQUEST_TIMEOUT))
            .await
            .map_err(|e| Error::Internal(format!("the metadata request did not finish ({e})")))?
            .map_err(|e| connect_error(brokers, e))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| {
            let n = i32::try_from(t.partitions().len()).unwrap_or(i32::MAX);
            (t.name().to_owned(), n)
        })
        .collect())
}

/// Timeouts and transport failures mean the cluster is unreachable; anything else is a failed
/// request.
fn connect_error(brokers: &str, e: KafkaError) -> Error {
    let unreachable = matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::RequestTimedOut
        )
    );
    if unreachable {
        Error::Connect {
            brokers: brokers.into(),
            cause: e,
        }
    } else {
        Error::Kafka(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics::default()
    }

    fn existing(pairs: &[(&str, i32)]) -> HashMap<String, i32> {
        pairs.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    #[test]
    fn input_partitions_decisions() {
        let t = topics();
        assert_eq!(input_partitions(&t, 8, &existing(&[])).unwrap(), 8);
        assert_eq!(
            input_partitions(&t, 8, &existing(&[("impressions", 4), ("plays", 4)])).unwrap(),
            4
        );
        assert_eq!(
            input_partitions(&t, 4, &existing(&[("plays", 4)])).unwrap(),
            4
        );
        assert!(matches!(
            input_partitions(&t, 8, &existing(&[("plays", 4)])),
            Err(Error::WouldMismatch {
                existing_partitions: 4,
                requested: 8,
                ..
            })
        ));
        assert!(matches!(
            input_partitions(&t, 4, &existing(&[("impressions", 4), ("plays", 8)])),
            Err(Error::PartitionMismatch {
                impressions_partitions: 4,
                plays_partitions: 8,
                ..
            })
        ));
    }

    #[test]
    fn topic_names_are_checked() {
        assert!(validate_names(&topics()).is_ok());
        for bad in ["", "has space", "ümlaut", ".", "..", &"x".repeat(250)] {
            let mut t = topics();
            t.dlq = bad.to_owned();
            let err = validate_names(&t).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidTopicName {
                        flag: "--dlq-topic",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        let mut t = topics();
        t.plays = t.impressions.clone();
        let err = validate_names(&t).unwrap_err();
        assert!(
            err.to_string()
                .contains("--impressions-topic and --plays-topic"),
            "{err}"
        );
    }
}
