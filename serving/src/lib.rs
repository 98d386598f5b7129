//! The serving layer (HTTP API).
