//! Metric names of the generator.

/// Messages produced (counter; labels `topic`, `kind` = valid|duplicate|late|malformed).
pub const MESSAGES: &str = "playsource_gen_messages_total";
