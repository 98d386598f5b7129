//! The `--progress` bar (to stderr; indicatif hides it when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use playsource_domain::Ts;

use crate::config::GenConfig;
use crate::message::Message;

/// Progress of a run: by messages when `--events` is set, else by event time.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    start: Ts,
    by_events: bool,
}

impl Progress {
    /// A bar for `cfg`, drawn on stderr.
    pub fn new(cfg: &GenConfig) -> Progress {
        let (len, by_events, template) = match (cfg.events, cfg.end()) {
            (Some(n), _) => (
                n,
                true,
                "{elapsed_precise} [{bar:40}] {pos}/{len} messages ({per_sec})",
            ),
            (None, Some(end)) => (
                ((end.0 - cfg.start.0) / 1000).max(1) as u64,
                false,
                "{elapsed_precise} [{bar:40}] {percent}% of event time, {msg}",
            ),
            (None, None) => (1, false, "{elapsed_precise} {msg}"),
        };
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress {
            bar,
            start: cfg.start,
            by_events,
        }
    }

    /// Accounts for one produced message.
    pub fn on_message(&self, msg: &Message) {
        if self.by_events {
            self.bar.inc(1);
        } else if let Some(e) = &msg.event {
            let pos = ((e.ts().0 - self.start.0) / 1000).max(0) as u64;
            if pos > self.bar.position() {
                self.bar.set_position(pos);
                self.bar.set_message(e.ts().to_string());
            }
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
