//! Parquet raw-event archive (contract §5).
