//! The streaming layer.
