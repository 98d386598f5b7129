//! The deterministic message iterator: browse-then-play sessions of every member, merged into
//! one stream in (near) event-time order, with redeliveries, too-late and malformed messages as
//! configured.
//!
//! Members' sessions are scheduled on a heap by start time; a session's events all lie at or
//! after its start, so every pending message whose emission key (its `ts` plus a random delay of
//! at most `disorder_ms`) is below the next session start can be released in key order. Hence a
//! released message is never more than `disorder_ms` behind one released before it (plus up to
//! a minute for a redelivery), and memory holds only the sessions in flight.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use playsource_domain::{Impression, Play, Ts, DAY_MS, HOUR_MS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::GenConfig;
use crate::error::Error;
use crate::malformed::{malformed, VARIANTS};
use crate::message::{Counts, Event, Message, MessageKind};
use crate::model::{pages, rows, Model, DIURNAL};

const MINUTE_MS: i64 = 60_000;
/// Titles a member remembers from earlier sessions (candidates for a later play).
const SEEN_CAP: usize = 8;
/// Recent plays a member's `continue_watching` row shows.
const RECENT_CAP: usize = 4;

#[derive(Clone, Debug, Default)]
struct MemberState {
    /// (video index, ts) of titles shown in earlier sessions and not played yet.
    seen: VecDeque<(u32, Ts)>,
    recent_plays: VecDeque<u32>,
    sessions: u32,
}

/// A message waiting for its emission time.
struct Pending {
    key: i64,
    seq: u64,
    msg: Message,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.key, self.seq) == (o.key, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.key, self.seq).cmp(&(o.key, o.seq))
    }
}

/// One impression shown in the current session.
#[derive(Clone, Copy)]
struct Shown {
    video: u32,
    ts: Ts,
    row_index: u16,
    rank: u16,
}

/// How much faster than measured sessions are drawn with `--events` (see [`session_rate`]).
const RATE_MARGIN: f64 = 1.05;

/// At most this many probe rounds (fewer when one lands within 2 % of the wanted messages).
const PROBE_ROUNDS: usize = 6;

/// Members of the probe that measures how many messages a member produces over the period.
const PROBE_MEMBERS: u32 = 1_000;

/// Sessions per member and day: the configured rate, or, when only `--events` is given, the rate
/// that spreads that many messages over `--days`. How many messages a session gives depends on
/// the world (catalog size, pages) and on the rate itself, so the rate is measured, not guessed:
/// rounds of a probe of up to 1 000 members over the whole period at the current guess, same
/// seed and world settings, each scaling the guess by wanted / measured messages until one lands
/// within 2 %; then a 5 % margin (steps of 5 % while the probe still falls short), so that the
/// messages are all out shortly before the period ends (a 15 % margin here once left the last
/// day of a 9-day `bench/batch.sh` world without plays).
fn session_rate(cfg: &GenConfig) -> Result<f64, Error> {
    let (None, Some(n)) = (cfg.sessions_per_member_day, cfg.events) else {
        return Ok(cfg.session_rate());
    };
    let want = n as f64 / f64::from(cfg.members);
    // Messages per member over the whole period at `rate`, measured on the probe.
    let measure = |rate: f64| -> Result<f64, Error> {
        let probe = GenConfig {
            members: cfg.members.min(PROBE_MEMBERS),
            events: None,
            sessions_per_member_day: Some(rate),
            ..cfg.clone()
        };
        Ok(Traffic::new(&probe)?.count() as f64 / f64::from(probe.members))
    };
    let mut rate = cfg.session_rate();
    for _ in 0..PROBE_ROUNDS {
        let got = measure(rate)?;
        if got <= 0.0 {
            break;
        }
        rate = (rate * want / got).clamp(1e-3, 1_000.0);
        if (got / want - 1.0).abs() < 0.02 {
            break;
        }
    }
    // A margin, checked on the probe (which is the whole world when it has 1 000 members or
    // fewer, so `--events` is then always reached before the period ends).
    rate = (rate * RATE_MARGIN).min(1_000.0);
    for _ in 0..PROBE_ROUNDS {
        if rate >= 1_000.0 || measure(rate)? >= want {
            break;
        }
        rate = (rate * RATE_MARGIN).min(1_000.0);
    }
    Ok(rate)
}

/// The message stream of a [`GenConfig`]. Same config, same messages, on every machine.
pub struct Traffic {
    cfg: GenConfig,
    model: Model,
    rng: ChaCha8Rng,
    states: Vec<MemberState>,
    sessions: BinaryHeap<Reverse<(i64, u32)>>,
    pending: BinaryHeap<Reverse<Pending>>,
    ready: VecDeque<Message>,
    seq: u64,
    /// Candidate gap between sessions of an activity-1 member, in ms (before diurnal thinning).
    gap_ms: i64,
    end: Option<Ts>,
    limit: Option<u64>,
    counts: Counts,
    draining: bool,
    shown: Vec<Shown>,
}

impl Traffic {
    /// The stream of `cfg` (validated first).
    pub fn new(cfg: &GenConfig) -> Result<Traffic, Error> {
        cfg.validate()?;
        let model = Model::new(cfg);
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(2);
        let avg_diurnal = DIURNAL.iter().sum::<u32>() as f64 / 24.0;
        // Mean activity is 2: a member of activity a has a/2 of the rate.
        let mean_gap = DAY_MS as f64 / session_rate(cfg)? * (avg_diurnal / 100.0) * 2.0;
        let gap_ms = (mean_gap as i64).max(1);
        let mut sessions = BinaryHeap::with_capacity(model.members.len());
        for (i, m) in model.members.iter().enumerate() {
            let first = cfg.start.0 + rng.gen_range(0..=2 * gap_ms / m.activity as i64);
            sessions.push(Reverse((first, i as u32)));
        }
        Ok(Traffic {
            states: vec![MemberState::default(); model.members.len()],
            model,
            rng,
            sessions,
            pending: BinaryHeap::new(),
            ready: VecDeque::new(),
            seq: 0,
            gap_ms,
            end: cfg.end(),
            limit: cfg.events,
            counts: Counts::default(),
            draining: false,
            shown: Vec::with_capacity(64),
            cfg: cfg.clone(),
        })
    }

    /// The world the traffic is drawn from.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// What has been emitted so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Where event time starts and (if bounded) ends, for progress display.
    pub fn period(&self) -> (Ts, Option<Ts>) {
        (self.cfg.start, self.end)
    }

    fn next_id(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.gen();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string()
    }

    /// Queues a valid event with its emission delay, maybe a redelivery, maybe held back late.
    fn enqueue(&mut self, event: Event) {
        let ts = event.ts().0;
        let (kind, key) = if self.rng.gen_bool(self.cfg.late_share) {
            (
                MessageKind::Late,
                ts + self.rng.gen_range(10 * MINUTE_MS..=60 * MINUTE_MS),
            )
        } else {
            (
                MessageKind::Valid,
                ts + self.rng.gen_range(0..=self.cfg.disorder_ms),
            )
        };
        let msg = Message {
            topic: event.topic(),
            key: event.member_id(),
            kind,
            payload: event.to_json().into_bytes(),
            event: Some(event),
        };
        if self.rng.gen_bool(self.cfg.duplicate_share) {
            let mut copy = msg.clone();
            copy.kind = MessageKind::Duplicate;
            let dup_key = key + self.rng.gen_range(0..=MINUTE_MS);
            self.push_pending(dup_key, copy);
        }
        self.push_pending(key, msg);
    }

    fn push_pending(&mut self, key: i64, msg: Message) {
        self.seq += 1;
        self.pending.push(Reverse(Pending {
            key,
            seq: self.seq,
            msg,
        }));
    }

    /// Moves every pending message with emission key below `horizon` to `ready`.
    fn release(&mut self, horizon: i64) {
        while let Some(Reverse(p)) = self.pending.peek() {
            if p.key >= horizon {
                break;
            }
            if let Some(Reverse(p)) = self.pending.pop() {
                self.ready.push_back(p.msg);
            }
        }
    }

    fn impression(&mut self, member: u32, s: Shown, page: &'static str, row: &'static str) {
        let event_id = self.next_id();
        let m = &self.model.members[member as usize];
        let imp = Impression {
            event_id: Cow::Owned(event_id),
            ts: s.ts,
            member_id: m.id,
            video_id: self.model.videos[s.video as usize].id,
            page: Cow::Borrowed(page),
            row_type: Cow::Borrowed(row),
            row_index: s.row_index,
            rank: s.rank,
            country: Cow::Borrowed(m.country()),
            device: Cow::Borrowed(m.device()),
        };
        self.shown.push(s);
        self.enqueue(Event::Impression(imp));
    }

    fn play(&mut self, member: u32, video: u32, ts: Ts) {
        let event_id = self.next_id();
        let m = &self.model.members[member as usize];
        let (id, country, device) = (m.id, m.country(), m.device());
        let state = &mut self.states[member as usize];
        let session_id = (state.sessions % 10 != 0)
            .then(|| Cow::Owned(format!("s-{}-{}", id.0, state.sessions)));
        if state.recent_plays.len() == RECENT_CAP {
            state.recent_plays.pop_front();
        }
        state.recent_plays.push_back(video);
        state.seen.retain(|&(v, _)| v != video);
        let play = Play {
            event_id: Cow::Owned(event_id),
            ts,
            member_id: id,
            video_id: self.model.videos[video as usize].id,
            country: Cow::Borrowed(country),
            device: Cow::Borrowed(device),
            session_id,
        };
        self.enqueue(Event::Play(play));
    }

    /// The titles of one row.
    fn row_titles(&mut self, member: u32, row: &'static str, n: u16) -> Vec<u32> {
        let mid = self.model.members[member as usize].id;
        let rotation = (mid.0 % 3) as u32;
        let mut out: Vec<u32> = Vec::with_capacity(n as usize);
        let mut tries = 0;
        while out.len() < n as usize && tries < n as u32 * 4 {
            tries += 1;
            let v = match row {
                rows::CONTINUE_WATCHING => {
                    let recent = &self.states[member as usize].recent_plays;
                    match recent.get(out.len()) {
                        Some(&v) => v,
                        None => break,
                    }
                }
                rows::MY_LIST => self.model.my_list(mid, self.rng.gen_range(0..12u64)),
                rows::NEW_RELEASES if !self.model.new_launches.is_empty() => {
                    let n = self.model.new_launches.len() as u32;
                    self.model.new_launches[self.rng.gen_range(0..n) as usize]
                }
                rows::TOP_10 => (out.len() as u32 + rotation) % 10,
                _ => self.model.popular(&mut self.rng),
            };
            if !out.contains(&v) {
                out.push(v);
            }
        }
        out
    }

    /// One browse session of `member` starting at `t`.
    fn session(&mut self, member: u32, t: i64) {
        self.shown.clear();
        self.states[member as usize].sessions += 1;
        let page = if self.rng.gen_range(0..100u32) < 4 {
            pages::KIDS
        } else {
            pages::HOME
        };
        // The home page: billboard, continue watching, then a few rows.
        let mut layout: Vec<&'static str> = Vec::with_capacity(8);
        if self.rng.gen_bool(0.5) {
            layout.push(rows::BILLBOARD);
        }
        if !self.states[member as usize].recent_plays.is_empty() {
            layout.push(rows::CONTINUE_WATCHING);
        }
        let extra = self.rng.gen_range(2..=5u32);
        for _ in 0..extra {
            let r = rows::BROWSE[self.rng.gen_range(0..rows::BROWSE.len() as u32) as usize];
            if !layout.contains(&r) {
                layout.push(r);
            }
        }
        let mut ts = t;
        for (row_index, &row) in layout.iter().enumerate() {
            let n = match row {
                rows::BILLBOARD => 1,
                rows::TOP_10 => 10,
                _ => self.rng.gen_range(4..=8u16),
            };
            for (rank, v) in self.row_titles(member, row, n).into_iter().enumerate() {
                let shown = Shown {
                    video: v,
                    ts: Ts(ts + rank as i64 * self.rng.gen_range(20..200i64)),
                    row_index: row_index as u16,
                    rank: rank as u16,
                };
                self.impression(member, shown, page, row);
            }
            ts += self.rng.gen_range(800..6_000i64);
        }
        let browsed = std::mem::take(&mut self.shown);

        // What the member plays.
        let outcome = self.rng.gen_range(0..100u32);
        let mut played = None;
        match outcome {
            0..=27 => {}
            28..=71 if !browsed.is_empty() => played = self.play_shown(member, &browsed),
            72..=84 => played = self.play_seen_earlier(member, ts, page),
            85..=93 => played = Some(self.play_search(member, ts)),
            _ => {
                let n = self.model.deep_catalog.len() as u32;
                let v = self.model.deep_catalog[self.rng.gen_range(0..n) as usize];
                let at = ts + self.rng.gen_range(10_000..5 * MINUTE_MS);
                self.play(member, v, Ts(at));
                played = Some(v);
            }
        }
        // Sometimes a second title from the same page.
        if played.is_some() && !browsed.is_empty() && self.rng.gen_range(0..100u32) < 15 {
            self.play_shown(member, &browsed);
        }
        // Remember a couple of titles for later sessions.
        for _ in 0..2 {
            if browsed.is_empty() {
                break;
            }
            let s = browsed[self.rng.gen_range(0..browsed.len() as u32) as usize];
            if Some(s.video) == played {
                continue;
            }
            let seen = &mut self.states[member as usize].seen;
            if seen.iter().any(|&(v, _)| v == s.video) {
                continue;
            }
            if seen.len() == SEEN_CAP {
                seen.pop_front();
            }
            seen.push_back((s.video, s.ts));
        }
        self.shown = browsed;
    }

    /// Plays a title shown in this session, favouring top rows and ranks; minutes later, so
    /// Source of Play finds the impression (a few play hours later: no SoP, same SoD).
    fn play_shown(&mut self, member: u32, browsed: &[Shown]) -> Option<u32> {
        let n = browsed.len() as u32;
        let i = self.rng.gen_range(0..n).min(self.rng.gen_range(0..n));
        let s = browsed[i as usize];
        let delay = if self.rng.gen_range(0..100u32) < 6 {
            self.rng.gen_range(31 * MINUTE_MS..3 * HOUR_MS)
        } else {
            self.rng.gen_range(5_000..12 * MINUTE_MS)
        };
        self.play(member, s.video, Ts(s.ts.0 + delay));
        Some(s.video)
    }

    /// Plays a title first shown in an earlier session: half the time it is shown again now (in
    /// `my_list` or `because_you_watched`), so SoP and SoD differ; otherwise it is played
    /// straight away (no SoP, SoD from the earlier session).
    fn play_seen_earlier(&mut self, member: u32, ts: i64, page: &'static str) -> Option<u32> {
        let state = &mut self.states[member as usize];
        let (video, _) = state.seen.pop_front()?;
        let at = if self.rng.gen_bool(0.5) {
            let row = if self.rng.gen_bool(0.5) {
                rows::MY_LIST
            } else {
                rows::BECAUSE_YOU_WATCHED
            };
            let shown = Shown {
                video,
                ts: Ts(ts),
                row_index: 6 + self.rng.gen_range(0..4u16),
                rank: self.rng.gen_range(0..6u16),
            };
            self.impression(member, shown, page, row);
            ts + self.rng.gen_range(5_000..8 * MINUTE_MS)
        } else {
            ts + self.rng.gen_range(10_000..4 * MINUTE_MS)
        };
        self.play(member, video, Ts(at));
        Some(video)
    }

    /// Searches, is shown a few results, plays one of them.
    fn play_search(&mut self, member: u32, ts: i64) -> u32 {
        let at = ts + self.rng.gen_range(5_000..MINUTE_MS);
        let results = self.rng.gen_range(1..=5u16);
        let pick = self.rng.gen_range(0..results);
        let mut chosen = 0;
        for rank in 0..results {
            let v = self.model.popular(&mut self.rng);
            if rank == pick {
                chosen = v;
            }
            let shown = Shown {
                video: v,
                ts: Ts(at + rank as i64 * 15),
                row_index: 0,
                rank,
            };
            self.impression(member, shown, pages::SEARCH, rows::SEARCH);
        }
        let play_at = at + self.rng.gen_range(3_000..2 * MINUTE_MS);
        self.play(member, chosen, Ts(play_at));
        chosen
    }

    /// Schedules the next session of `member` after `t`.
    fn schedule(&mut self, member: u32, t: i64) {
        let activity = self.model.members[member as usize].activity as i64;
        let gap = self.rng.gen_range(1..=2 * self.gap_ms / activity);
        self.sessions.push(Reverse((t.saturating_add(gap), member)));
    }

    /// Advances until `ready` has a message or everything is out.
    fn fill(&mut self) {
        while self.ready.is_empty() {
            if self.draining {
                self.release(i64::MAX);
                // The period ends at `end`: what a session would have done after it is cut off.
                if let Some(end) = self.end {
                    self.ready
                        .retain(|m| m.event.as_ref().is_none_or(|e| e.ts() < end));
                }
                return;
            }
            let Some(&Reverse((t, member))) = self.sessions.peek() else {
                self.draining = true;
                continue;
            };
            if self.end.is_some_and(|end| t >= end.0) {
                self.draining = true;
                continue;
            }
            // Everything still to come has ts >= t.
            self.release(t);
            if !self.ready.is_empty() {
                return;
            }
            self.sessions.pop();
            let m = &self.model.members[member as usize];
            let local_hour = (t + m.utc_offset_hours() * HOUR_MS).rem_euclid(DAY_MS) / HOUR_MS;
            if self.rng.gen_range(0..100u32) < DIURNAL[local_hour as usize] {
                self.session(member, t);
            }
            self.schedule(member, t);
        }
    }
}

impl Iterator for Traffic {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        if self.limit.is_some_and(|n| self.counts.messages() >= n) {
            return None;
        }
        self.fill();
        let next = self.ready.front()?;
        let msg = if self.rng.gen_bool(self.cfg.malformed_share) {
            let variant = self.rng.gen_range(0..VARIANTS);
            let (event, topic, key) = (next.event.clone(), next.topic, next.key);
            let id = self.next_id();
            let payload = match &event {
                Some(e) => malformed(&mut self.rng, e, variant, &id),
                None => b"{}".to_vec(),
            };
            Message {
                topic,
                key,
                kind: MessageKind::Malformed,
                payload,
                event: None,
            }
        } else {
            self.ready.pop_front()?
        };
        self.counts.add(&msg);
        Some(msg)
    }
}
