//! Realistic synthetic traffic.
