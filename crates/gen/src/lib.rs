//! Realistic synthetic traffic for playsource (`playsource gen`), also usable in-process from
//! other crates' tests.
//!
//! A catalog of titles with Zipf-like popularity, members with a home country and a device, and
//! browse-then-play sessions on a home page of rows: most plays follow an impression minutes
//! earlier (Source of Play hits), some follow a title first shown days earlier (Source of
//! Discovery differs), some follow a search, and some have no impression at all (unattributed).
//! On top: redeliveries, bounded disorder, too-late and malformed messages, as configured. The
//! same [`GenConfig`] gives byte-identical messages on every machine (ChaCha8, integer maths).
//!
//! ```
//! use playsource_gen::{GenConfig, Workload};
//! let w = Workload::generate(&GenConfig { members: 20, videos: 50, ..Default::default() }).unwrap();
//! assert!(!w.plays.is_empty());
//! ```

pub mod catalog_csv;
pub mod config;
pub mod error;
pub mod malformed;
pub mod message;
pub mod metrics;
pub mod model;
pub mod progress;
pub mod sink_archive;
pub mod sink_kafka;
pub mod sink_ndjson;
pub mod traffic;

pub use config::GenConfig;
pub use error::Error;
pub use message::{Counts, Event, Message, MessageKind, Topic};
pub use model::Model;
pub use traffic::Traffic;

use playsource_domain::{Impression, Play, VideoMeta};

/// A whole workload in memory.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Every valid impression once (late ones included, redeliveries not), in production order.
    pub impressions: Vec<Impression<'static>>,
    /// Every valid play once (late ones included, redeliveries not), in production order.
    pub plays: Vec<Play<'static>>,
    /// The catalog the CSV would list (titles missing from it are played too).
    pub catalog: Vec<VideoMeta>,
    /// Every message in production order, redeliveries and malformed ones included.
    pub messages: Vec<Message>,
    /// What the messages are.
    pub counts: Counts,
}

impl Workload {
    /// Generates the workload of `cfg`.
    pub fn generate(cfg: &GenConfig) -> Result<Workload, Error> {
        let mut traffic = Traffic::new(cfg)?;
        let catalog = traffic.model().catalog();
        let mut impressions = Vec::new();
        let mut plays = Vec::new();
        let mut messages = Vec::new();
        for msg in traffic.by_ref() {
            if matches!(msg.kind, MessageKind::Valid | MessageKind::Late) {
                match &msg.event {
                    Some(Event::Impression(i)) => impressions.push(i.clone()),
                    Some(Event::Play(p)) => plays.push(p.clone()),
                    None => {}
                }
            }
            messages.push(msg);
        }
        Ok(Workload {
            impressions,
            plays,
            catalog,
            messages,
            counts: traffic.counts().clone(),
        })
    }
}
