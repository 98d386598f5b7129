//! Why a checkpoint could not be written or read.

/// Why a checkpoint could not be written or read (the cause's own text, said once).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// postcard could not serialise a layer.
    #[error("cannot encode a layer: {cause}")]
    Encode { cause: postcard::Error },
    /// postcard could not deserialise a layer.
    #[error("a layer does not decode: {cause}")]
    Decode { cause: postcard::Error },
    /// zstd failed.
    #[error("a layer does not (de)compress: {cause}")]
    Compress { cause: std::io::Error },
    /// The file is not a layer, or is cut short.
    #[error("a layer file is damaged ({0})")]
    Corrupt(String),
    /// A layer of another encoding version.
    #[error("a layer file of encoding version {0}, which this build does not read")]
    Version(u32),
    /// The store refused.
    #[error("{cause}")]
    Store { cause: playsource_archive::Error },
    /// The chain does not start with a full layer.
    #[error("the checkpoint's first layer is not a full one")]
    NoBase,
}

impl CheckpointError {
    pub(super) fn encode(cause: postcard::Error) -> Self {
        CheckpointError::Encode { cause }
    }
    pub(super) fn decode(cause: postcard::Error) -> Self {
        CheckpointError::Decode { cause }
    }
    pub(super) fn compress(cause: std::io::Error) -> Self {
        CheckpointError::Compress { cause }
    }
    pub(super) fn store(cause: playsource_archive::Error) -> Self {
        CheckpointError::Store { cause }
    }
}
