//! The batch layer.
