//! The two inputs by name: [`Topic`] (impressions or plays) and [`PerTopic`], one value per
//! topic, indexed by [`Topic`] rather than by a bare `0`/`1`.
//!
//! The topics' *names* on a broker are configuration (`--impressions-topic`, `--plays-topic`);
//! a [`Topic`] is the role a topic plays, and `PerTopic<String>` holds the configured names.

use std::fmt;
use std::ops::{Index, IndexMut};

use serde::{Deserialize, Serialize};

/// One of the two input topics (docs/reference.md §1), by role.
///
/// Impressions sort first: at the same instant an impression comes before a play (the order
/// `replay` hands events out in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// `impressions`.
    Impressions,
    /// `plays`.
    Plays,
}

impl Topic {
    /// Both topics, impressions first.
    pub const ALL: [Topic; 2] = [Topic::Impressions, Topic::Plays];

    /// The role's name: `impressions` or `plays`.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Impressions => "impressions",
            Topic::Plays => "plays",
        }
    }

    /// 0 for impressions, 1 for plays (for arrays that must stay arrays, e.g. in a metric
    /// label table).
    pub fn index(self) -> usize {
        match self {
            Topic::Impressions => 0,
            Topic::Plays => 1,
        }
    }

    /// The other topic.
    pub fn other(self) -> Topic {
        match self {
            Topic::Impressions => Topic::Plays,
            Topic::Plays => Topic::Impressions,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `T` per input topic, indexed by [`Topic`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PerTopic<T> {
    pub impressions: T,
    pub plays: T,
}

impl<T> PerTopic<T> {
    /// The pair of `impressions` and `plays`.
    pub const fn new(impressions: T, plays: T) -> PerTopic<T> {
        PerTopic { impressions, plays }
    }

    /// The same value for both topics.
    pub fn both(value: T) -> PerTopic<T>
    where
        T: Clone,
    {
        PerTopic {
            impressions: value.clone(),
            plays: value,
        }
    }

    /// `f(topic)` for each topic.
    pub fn from_fn(mut f: impl FnMut(Topic) -> T) -> PerTopic<T> {
        PerTopic {
            impressions: f(Topic::Impressions),
            plays: f(Topic::Plays),
        }
    }

    /// `f` applied to each value.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerTopic<U> {
        PerTopic {
            impressions: f(self.impressions),
            plays: f(self.plays),
        }
    }

    /// `f(topic, value)` for each topic.
    pub fn map_with<U>(self, mut f: impl FnMut(Topic, T) -> U) -> PerTopic<U> {
        PerTopic {
            impressions: f(Topic::Impressions, self.impressions),
            plays: f(Topic::Plays, self.plays),
        }
    }

    /// Borrows each value.
    pub fn as_ref(&self) -> PerTopic<&T> {
        PerTopic {
            impressions: &self.impressions,
            plays: &self.plays,
        }
    }

    /// `(topic, value)` for each topic, impressions first.
    pub fn iter(&self) -> impl Iterator<Item = (Topic, &T)> {
        [
            (Topic::Impressions, &self.impressions),
            (Topic::Plays, &self.plays),
        ]
        .into_iter()
    }

    /// `(topic, value)` for each topic, impressions first, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Topic, &mut T)> {
        [
            (Topic::Impressions, &mut self.impressions),
            (Topic::Plays, &mut self.plays),
        ]
        .into_iter()
    }

    /// The values, impressions first.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        [&self.impressions, &self.plays].into_iter()
    }

    /// The values as an array, impressions first.
    pub fn into_array(self) -> [T; 2] {
        [self.impressions, self.plays]
    }
}

impl PerTopic<bool> {
    /// True for both topics.
    pub fn all(&self) -> bool {
        self.impressions && self.plays
    }

    /// True for at least one topic.
    pub fn any(&self) -> bool {
        self.impressions || self.plays
    }

    /// True for `topic` only.
    pub fn only(topic: Topic) -> PerTopic<bool> {
        PerTopic::from_fn(|t| t == topic)
    }

    /// The topics that are true, impressions first.
    pub fn topics(&self) -> impl Iterator<Item = Topic> + '_ {
        self.iter().filter(|(_, b)| **b).map(|(t, _)| t)
    }
}

impl<T> From<[T; 2]> for PerTopic<T> {
    /// `[impressions, plays]`.
    fn from([impressions, plays]: [T; 2]) -> PerTopic<T> {
        PerTopic { impressions, plays }
    }
}

impl<T> Index<Topic> for PerTopic<T> {
    type Output = T;

    fn index(&self, topic: Topic) -> &T {
        match topic {
            Topic::Impressions => &self.impressions,
            Topic::Plays => &self.plays,
        }
    }
}

impl<T> IndexMut<Topic> for PerTopic<T> {
    fn index_mut(&mut self, topic: Topic) -> &mut T {
        match topic {
            Topic::Impressions => &mut self.impressions,
            Topic::Plays => &mut self.plays,
        }
    }
}

impl PerTopic<String> {
    /// The topic whose value is `name` (the role of a configured topic name).
    pub fn find(&self, name: &str) -> Option<Topic> {
        self.iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(t, _)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_named_ordered_and_indexed() {
        assert_eq!(Topic::ALL.map(Topic::as_str), ["impressions", "plays"]);
        assert_eq!(Topic::ALL.map(Topic::index), [0, 1]);
        assert!(Topic::Impressions < Topic::Plays);
        assert_eq!(Topic::Plays.other(), Topic::Impressions);
        assert_eq!(Topic::Impressions.to_string(), "impressions");
        assert_eq!(serde_json::to_string(&Topic::Plays).unwrap(), r#""plays""#);
    }

    #[test]
    fn per_topic_indexes_maps_and_iterates_by_topic() {
        let mut names = PerTopic::new("imps".to_string(), "plays".to_string());
        assert_eq!(names[Topic::Impressions], "imps");
        assert_eq!(names.find("plays"), Some(Topic::Plays));
        assert_eq!(names.find("other"), None);
        names[Topic::Plays].push('!');
        assert_eq!(
            names
                .iter()
                .map(|(t, n)| format!("{t}={n}"))
                .collect::<Vec<_>>(),
            ["impressions=imps", "plays=plays!"]
        );
        let lens = names.as_ref().map(|n| n.len());
        assert_eq!(lens, PerTopic::from([4, 6]));
        assert_eq!(lens.map_with(|t, n| n + t.index()).into_array(), [4, 7]);
        assert_eq!(PerTopic::from_fn(Topic::index), PerTopic::new(0, 1));
        let only = PerTopic::only(Topic::Plays);
        assert!(only.any() && !only.all());
        assert_eq!(only.topics().collect::<Vec<_>>(), [Topic::Plays]);
        assert!(PerTopic::both(true).all());
        let mut n = PerTopic::<u64>::default();
        for (t, v) in n.iter_mut() {
            *v = t.index() as u64 + 1;
        }
        assert_eq!(n.values().sum::<u64>(), 3);
    }
}
