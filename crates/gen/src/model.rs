//! The synthetic world: members (home country, device, activity), videos (Zipf-like popularity,
//! launch dates, genres, some missing from the catalog) and the rows of a home page.
//!
//! Everything is drawn from ChaCha8 with integer arithmetic or exactly rounded IEEE operations
//! only (no `ln`/`pow`), so the same seed gives the same world on every machine.

use playsource_domain::{Day, Kind, MemberId, VideoId, VideoMeta};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::GenConfig;

/// Home countries with their weight and UTC offset in hours (for the daily rhythm).
pub const COUNTRIES: [(&str, u32, i64); 20] = [
    ("US", 300, -5),
    ("BR", 120, -3),
    ("GB", 80, 0),
    ("IN", 100, 5),
    ("MX", 70, -6),
    ("DE", 60, 1),
    ("FR", 50, 1),
    ("JP", 50, 9),
    ("KR", 40, 9),
    ("CA", 40, -5),
    ("ES", 30, 1),
    ("IT", 30, 1),
    ("AU", 20, 10),
    ("AR", 20, -3),
    ("ID", 20, 7),
    ("PH", 20, 8),
    ("NL", 10, 1),
    ("SE", 10, 1),
    ("PL", 10, 1),
    ("TR", 10, 3),
];

/// Devices with their weight.
pub const DEVICES: [(&str, u32); 4] = [("tv", 45), ("mobile", 30), ("web", 15), ("tablet", 10)];

/// Genres of the catalog.
pub const GENRES: [&str; 12] = [
    "drama",
    "comedy",
    "action",
    "thriller",
    "documentary",
    "kids",
    "anime",
    "romance",
    "sci_fi",
    "horror",
    "reality",
    "crime",
];

/// Share of sessions (per local hour) relative to the peak hour, in percent.
pub const DIURNAL: [u32; 24] = [
    35, 22, 14, 9, 7, 7, 9, 13, 17, 21, 25, 29, 33, 35, 37, 41, 49, 61, 80, 96, 100, 92, 74, 50,
];

/// The row types of a home page (`search` is the row of the `search` page).
pub mod rows {
    pub const CONTINUE_WATCHING: &str = "continue_watching";
    pub const TRENDING_NOW: &str = "trending_now";
    pub const TOP_PICKS: &str = "top_picks";
    pub const MY_LIST: &str = "my_list";
    pub const BECAUSE_YOU_WATCHED: &str = "because_you_watched";
    pub const NEW_RELEASES: &str = "new_releases";
    pub const POPULAR: &str = "popular";
    pub const TOP_10: &str = "top_10";
    pub const BILLBOARD: &str = "billboard";
    pub const SEARCH: &str = "search";
    /// The rows a home page picks its middle rows from.
    pub const BROWSE: [&str; 7] = [
        TOP_PICKS,
        TRENDING_NOW,
        TOP_10,
        BECAUSE_YOU_WATCHED,
        NEW_RELEASES,
        MY_LIST,
        POPULAR,
    ];
}

/// Pages.
pub mod pages {
    pub const HOME: &str = "home";
    pub const KIDS: &str = "kids";
    pub const SEARCH: &str = "search";
}

/// One member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: MemberId,
    /// Index into [`COUNTRIES`].
    pub country: u8,
    /// Index into [`DEVICES`].
    pub device: u8,
    /// Relative activity, 1 (light) to 4 (heavy).
    pub activity: u8,
}

impl Member {
    /// The member's home country code.
    pub fn country(&self) -> &'static str {
        COUNTRIES[self.country as usize].0
    }

    /// The member's device.
    pub fn device(&self) -> &'static str {
        DEVICES[self.device as usize].0
    }

    /// The member's UTC offset in hours.
    pub fn utc_offset_hours(&self) -> i64 {
        COUNTRIES[self.country as usize].2
    }
}

/// One title.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Video {
    pub id: VideoId,
    pub title: String,
    /// Index into [`GENRES`].
    pub genre: u8,
    pub kind: Kind,
    pub launch_date: Day,
    /// Whether the catalog CSV lists this title.
    pub in_catalog: bool,
}

/// The world a workload is drawn from.
#[derive(Clone, Debug)]
pub struct Model {
    pub members: Vec<Member>,
    /// All titles, most popular first.
    pub videos: Vec<Video>,
    /// Cumulative Zipf weights (s = 1) over the browsable titles, most popular first.
    cumulative: Vec<f64>,
    /// Indexes (into `videos`) of titles launched inside or just before the period.
    pub new_launches: Vec<u32>,
    /// Titles never shown in a row: played only from outside the home page (unattributed).
    pub deep_catalog: Vec<u32>,
}

/// A 64-bit mixer (splitmix64's finaliser), for cheap per-member choices without state.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Picks an index by integer weights.
pub fn weighted<R: Rng>(rng: &mut R, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (i, w) in weights.enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    0
}

const ADJECTIVES: [&str; 24] = [
    "Silent", "Crimson", "Last", "Hidden", "Broken", "Golden", "Midnight", "Wild", "Lost",
    "Frozen", "Burning", "Secret", "Electric", "Hollow", "Endless", "Quiet", "Savage", "Little",
    "Distant", "Velvet", "Iron", "Paper", "Northern", "Bitter",
];
const NOUNS: [&str; 24] = [
    "Harbor",
    "Kingdom",
    "Signal",
    "Garden",
    "Empire",
    "River",
    "Protocol",
    "Orchard",
    "Frontier",
    "Station",
    "Crown",
    "Horizon",
    "Letters",
    "Machine",
    "Island",
    "Witness",
    "Season",
    "Games",
    "Circus",
    "Archive",
    "Summer",
    "Detective",
    "Voyage",
    "Heist",
];

fn title<R: Rng>(rng: &mut R, kind: Kind, n: u32) -> String {
    let adj = ADJECTIVES[rng.gen_range(0..ADJECTIVES.len() as u32) as usize];
    let noun = NOUNS[rng.gen_range(0..NOUNS.len() as u32) as usize];
    // Some titles carry commas and quotes, so the CSV needs quoting.
    let base = match rng.gen_range(0..20u32) {
        0 => format!("{adj}, {noun}"),
        1 => format!("\"{noun}\" of the {adj}"),
        _ => format!("The {adj} {noun}"),
    };
    match kind {
        Kind::Movie => format!("{base} ({})", 1990 + n % 36),
        Kind::Show => base,
        Kind::Episode => format!(
            "{base}: S{}:E{}",
            1 + rng.gen_range(0..5u32),
            1 + rng.gen_range(0..12u32)
        ),
    }
}

impl Model {
    /// Builds the world of `cfg` (its own random stream, independent of the traffic).
    pub fn new(cfg: &GenConfig) -> Model {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(1);

        let members = (0..cfg.members)
            .map(|i| Member {
                // Sparse, stable ids: 1_000_003, 1_000_016, ...
                id: MemberId(1_000_000 + i as u64 * 13 + rng.gen_range(0..13u64)),
                country: weighted(&mut rng, COUNTRIES.iter().map(|c| c.1)) as u8,
                device: weighted(&mut rng, DEVICES.iter().map(|d| d.1)) as u8,
                activity: [1, 1, 1, 2, 2, 3, 4][rng.gen_range(0..7u32) as usize],
            })
            .collect();

        let start_day = cfg.start.day();
        let catalog_n = cfg.videos;
        let missing_n = (cfg.videos as f64 * cfg.missing_from_catalog_share).round() as u32;
        let mut videos: Vec<Video> = (0..catalog_n + missing_n)
            .map(|i| {
                let in_catalog = i < catalog_n;
                let id = if in_catalog {
                    80_000_000 + i as u64 * 10 + rng.gen_range(0..10u64)
                } else {
                    90_000_000 + (i - catalog_n) as u64 * 10 + rng.gen_range(0..10u64)
                };
                let kind = [
                    Kind::Movie,
                    Kind::Movie,
                    Kind::Show,
                    Kind::Episode,
                    Kind::Episode,
                ][rng.gen_range(0..5u32) as usize];
                let new = rng.gen_bool(cfg.new_launch_share);
                let launch_date = if new {
                    // From a week before the period to its last day: many plays fall in the
                    // 28-day launch window, some before launch day is over.
                    start_day.plus(rng.gen_range(-7..cfg.days.min(3_000) as i32))
                } else {
                    start_day.plus(-rng.gen_range(29..4_000i32))
                };
                Video {
                    id: VideoId(id),
                    title: title(&mut rng, kind, i),
                    genre: rng.gen_range(0..GENRES.len() as u32) as u8,
                    kind,
                    launch_date,
                    in_catalog,
                }
            })
            .collect();
        videos.shuffle(&mut rng);

        // The least popular 3% are never shown on a page.
        let deep_n = (videos.len() / 33).max(1);
        let browsable = videos.len() - deep_n;
        let deep_catalog = (browsable as u32..videos.len() as u32).collect();
        let mut sum = 0.0;
        let cumulative = (0..browsable)
            .map(|r| {
                sum += 1.0 / (r as f64 + 1.0);
                sum
            })
            .collect();
        let new_launches = (0..browsable as u32)
            .filter(|&i| videos[i as usize].launch_date >= start_day.plus(-7))
            .collect();
        Model {
            members,
            videos,
            cumulative,
            new_launches,
            deep_catalog,
        }
    }

    /// A browsable title drawn by popularity (Zipf, s = 1).
    pub fn popular<R: Rng>(&self, rng: &mut R) -> u32 {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.gen::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        i.min(self.cumulative.len().saturating_sub(1)) as u32
    }

    /// A title from the `k`-th slot of a member's list (stable per member).
    pub fn my_list(&self, member: MemberId, k: u64) -> u32 {
        let n = self.cumulative.len().max(1) as u64;
        // Lists favour the popular half of the catalog.
        (mix(member.0 ^ mix(k)) % n.div_ceil(2).max(1)) as u32
    }

    /// The catalog entries (titles the CSV lists), in id order.
    pub fn catalog(&self) -> Vec<VideoMeta> {
        let mut out: Vec<VideoMeta> = self
            .videos
            .iter()
            .filter(|v| v.in_catalog)
            .map(|v| VideoMeta {
                video_id: v.id,
                title: v.title.clone(),
                genre: GENRES[v.genre as usize].to_owned(),
                kind: v.kind,
                launch_date: v.launch_date,
            })
            .collect();
        out.sort_by_key(|v| v.video_id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_is_deterministic_and_shaped() {
        let cfg = GenConfig {
            members: 500,
            videos: 1_000,
            ..Default::default()
        };
        let a = Model::new(&cfg);
        let b = Model::new(&cfg);
        assert_eq!(a.members, b.members);
        assert_eq!(a.videos, b.videos);
        assert_eq!(a.catalog().len(), 1_000);
        assert_eq!(
            a.videos.len(),
            1_020,
            "2% extra titles missing from the catalog"
        );
        let mut ids: Vec<_> = a.members.iter().map(|m| m.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 500, "member ids are distinct");
        assert!(!a.new_launches.is_empty());
        // Zipf: the most popular title is drawn far more often than the 100th.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = vec![0u32; a.videos.len()];
        for _ in 0..50_000 {
            counts[a.popular(&mut rng) as usize] += 1;
        }
        assert!(
            counts[0] > 10 * counts[99].max(1),
            "{} vs {}",
            counts[0],
            counts[99]
        );
        assert!(a.deep_catalog.iter().all(|&i| counts[i as usize] == 0));
        // US is the most common home country.
        let us = a.members.iter().filter(|m| m.country() == "US").count();
        assert!(us > 100 && us < 220, "{us}");
    }
}
