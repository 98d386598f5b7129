//! Removing a crashed predecessor from a consumer group at once (LeaveGroup on its behalf), so a
//! restarted replica does not wait for the broker to expire it (docs/stream.md, "Fast takeover").
//!
//! A replica with a stable name (`--replica-name`) runs its consumer with the client id
//! [`replica_client_id`]. Before it subscribes, [`remove_predecessors`] lists the group's members
//! (DescribeGroups, through librdkafka) and sends LeaveGroup for every member with that client id:
//! the process that ran under this name before, dead or about to be. librdkafka has no call for a
//! LeaveGroup on another member's behalf, so the two requests it needs (FindCoordinator v1 and
//! LeaveGroup v3, both plain non-flexible versions every broker since Kafka 2.4 answers) are
//! written here by hand.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;

const FIND_COORDINATOR: i16 = 10;
const LEAVE_GROUP: i16 = 13;
const CLIENT_ID: &str = "playsource-leave";
/// Longest answer read (a LeaveGroup answer for a few members is well under 1 KiB).
const MAX_ANSWER: usize = 1 << 20;

/// The client id of the stream replica named `name`.
pub fn replica_client_id(name: &str) -> String {
    format!("playsource-stream/{name}")
}

/// Sends LeaveGroup for every member of `group` whose client id is `client_id` (before this
/// process joins: they are its predecessors). Returns the member ids removed.
pub async fn remove_predecessors(
    brokers: &str,
    group: &str,
    client_id: &str,
    timeout: Duration,
) -> Result<Vec<String>, Error> {
    let members = members_with_client_id(brokers, group, client_id, timeout).await?;
    if members.is_empty() {
        return Ok(members);
    }
    let io = |cause: std::io::Error| Error::LeaveGroup {
        group: group.to_owned(),
        cause: cause.to_string(),
    };
    let bootstrap = brokers.split(',').next().unwrap_or(brokers).trim();
    let (host, port) = tokio::time::timeout(timeout, find_coordinator(bootstrap, group))
        .await
        .map_err(|_| io(std::io::ErrorKind::TimedOut.into()))?
        .map_err(io)?;
    tokio::time::timeout(
        timeout,
        leave_group(&format!("{host}:{port}"), group, &members),
    )
    .await
    .map_err(|_| io(std::io::ErrorKind::TimedOut.into()))?
    .map_err(io)?;
    Ok(members)
}

/// Member ids of `group` with `client_id` (DescribeGroups through librdkafka, off the runtime).
async fn members_with_client_id(
    brokers: &str,
    group: &str,
    client_id: &str,
    timeout: Duration,
) -> Result<Vec<String>, Error> {
    let (brokers, group, client_id) = (brokers.to_owned(), group.to_owned(), client_id.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("client.id", CLIENT_ID)
            .create()
            .map_err(|cause| Error::Connect {
                brokers: brokers.clone(),
                cause,
            })?;
        let list = consumer
            .fetch_group_list(Some(&group), timeout)
            .map_err(Error::Kafka)?;
        Ok(list
            .groups()
            .iter()
            .filter(|g| g.name() == group)
            .flat_map(|g| g.members())
            .filter(|m| m.client_id() == client_id || id_of_client(m.id(), &client_id))
            .map(|m| m.id().to_owned())
            .collect())
    })
    .await
    .map_err(|e| Error::LeaveGroup {
        group: String::new(),
        cause: e.to_string(),
    })?
}

/// Whether a member id is one the broker made for `client_id`: Kafka and tansu both name a new
/// member `<client id>-<UUID>` (tansu reports no client id in DescribeGroups, so this is how a
/// predecessor is recognised there).
fn id_of_client(member_id: &str, client_id: &str) -> bool {
    member_id
        .strip_prefix(client_id)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|uuid| {
            uuid.len() == 36 && uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        })
}

/// A request: size, header v1 (api key, version, correlation id, client id), body.
fn request(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&api_key.to_be_bytes());
    header.extend_from_slice(&version.to_be_bytes());
    header.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut header, CLIENT_ID);
    let size = (header.len() + body.len()) as i32;
    let mut out = size.to_be_bytes().to_vec();
    out.extend(header);
    out.extend_from_slice(body);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Sends `req` and returns the answer's body (after the correlation id).
async fn exchange(addr: &str, req: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(req).await?;
    let size = s.read_i32().await?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&n| (4..=MAX_ANSWER).contains(&n))
        .ok_or_else(|| std::io::Error::other(format!("an answer of {size} bytes")))?;
    let mut buf = vec![0; size];
    s.read_exact(&mut buf).await?;
    Ok(buf.split_off(4))
}

/// Reads an answer's fields in order.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> std::io::Result<[u8; N]> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| std::io::Error::other("an answer cut short"))?;
        self.0 = rest;
        Ok(*head)
    }
    fn i16(&mut self) -> std::io::Result<i16> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> std::io::Result<i32> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    /// A (nullable) string.
    fn string(&mut self) -> std::io::Result<Option<String>> {
        let len = self.i16()?;
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        if self.0.len() < len {
            return Err(std::io::Error::other("an answer cut short"));
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(Some(String::from_utf8_lossy(s).into_owned()))
    }
}

fn broker_error(what: &str, code: i16) -> std::io::Error {
    std::io::Error::other(format!("{what} answered with Kafka error code {code}"))
}

/// FindCoordinator v1 for a group: the coordinator's (host, port).
async fn find_coordinator(bootstrap: &str, group: &str) -> std::io::Result<(String, i32)> {
    let mut body = Vec::new();
    put_str(&mut body, group);
    body.push(0); // key type: group
    let answer = exchange(bootstrap, &request(FIND_COORDINATOR, 1, &body)).await?;
    let mut r = Reader(&answer);
    let _throttle = r.i32()?;
    let code = r.i16()?;
    let _message = r.string()?;
    if code != 0 {
        return Err(broker_error("FindCoordinator", code));
    }
    let _node = r.i32()?;
    let host = r.string()?.unwrap_or_default();
    let port = r.i32()?;
    Ok((host, port))
}

/// LeaveGroup v3 for `members` of `group`.
async fn leave_group(coordinator: &str, group: &str, members: &[String]) -> std::io::Result<()> {
    let mut body = Vec::new();
    put_str(&mut body, group);
    body.extend_from_slice(&(members.len() as i32).to_be_bytes());
    for m in members {
        put_str(&mut body, m);
        body.extend_from_slice(&(-1i16).to_be_bytes()); // no group instance id
    }
    let answer = exchange(coordinator, &request(LEAVE_GROUP, 3, &body)).await?;
    let mut r = Reader(&answer);
    let _throttle = r.i32()?;
    let code = r.i16()?;
    // UNKNOWN_MEMBER_ID (25): already gone.
    if code != 0 && code != 25 {
        return Err(broker_error("LeaveGroup", code));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_framed_with_their_size_and_header() {
        let r = request(LEAVE_GROUP, 3, &[1, 2, 3]);
        let size = i32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize;
        assert_eq!(size, r.len() - 4);
        assert_eq!(&r[4..6], &13i16.to_be_bytes());
        assert_eq!(&r[6..8], &3i16.to_be_bytes());
        assert_eq!(&r[r.len() - 3..], &[1, 2, 3]);
    }

    #[test]
    fn member_ids_are_recognised_by_their_client_id_prefix() {
        let me = replica_client_id("stream-0");
        let uuid = "0f3c1a2b-0000-4000-8000-000000000001";
        assert!(id_of_client(&format!("{me}-{uuid}"), &me));
        assert!(
            !id_of_client(&format!("{me}-2-{uuid}"), &me),
            "another replica"
        );
        assert!(!id_of_client(&format!("{me}0-{uuid}"), &me));
        assert!(!id_of_client(uuid, &me));
    }

    #[test]
    fn a_short_answer_is_an_error_not_a_panic() {
        let mut r = Reader(&[0, 5, b'a']);
        assert!(r.string().is_err());
        let mut r = Reader(&[0xff, 0xff]);
        assert_eq!(r.string().unwrap(), None);
        assert!(Reader(&[1]).i16().is_err());
    }
}
