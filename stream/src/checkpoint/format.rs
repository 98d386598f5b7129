//! The file a checkpoint layer is written as: the magic `PSCKPT`, the format version (u32 LE),
//! then frames of a u32 LE length and that many bytes of zstd-compressed postcard — first the
//! layer's head ([`LayerHead`]), then the pairs, sorted by (member, video), in blocks of at most
//! [`BLOCK_PAIRS`]. Blocks keep encoding, merging and restoring streaming: memory holds the
//! file's bytes and one block, never the whole layer decoded.

use playsource_domain::{LayerHead, Pair};

use super::error::CheckpointError;

const MAGIC: &[u8; 6] = b"PSCKPT";
/// Version of the layer encoding; files of another version are not read (the unit replays).
pub const VERSION: u32 = 1;
/// Pairs per block.
pub const BLOCK_PAIRS: usize = 65_536;
const ZSTD_LEVEL: i32 = 1;

/// Writes a layer into bytes, block by block.
pub struct Encoder {
    out: Vec<u8>,
    block: Vec<Pair>,
    pairs: u64,
}

impl Encoder {
    /// Starts a layer file with its head.
    pub fn new(head: &LayerHead) -> Result<Encoder, CheckpointError> {
        let mut out = Vec::with_capacity(1 << 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        let mut e = Encoder {
            out,
            block: Vec::with_capacity(BLOCK_PAIRS),
            pairs: 0,
        };
        let raw = postcard::to_stdvec(head).map_err(CheckpointError::encode)?;
        e.frame(&raw)?;
        Ok(e)
    }

    /// Adds a pair (in key order).
    pub fn push(&mut self, pair: Pair) -> Result<(), CheckpointError> {
        self.block.push(pair);
        self.pairs += 1;
        if self.block.len() >= BLOCK_PAIRS {
            self.flush_block()?;
        }
        Ok(())
    }

    /// The file's bytes and the number of pairs in it.
    pub fn finish(mut self) -> Result<(Vec<u8>, u64), CheckpointError> {
        self.flush_block()?;
        Ok((self.out, self.pairs))
    }

    fn flush_block(&mut self) -> Result<(), CheckpointError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let raw = postcard::to_stdvec(&self.block).map_err(CheckpointError::encode)?;
        self.block.clear();
        self.frame(&raw)
    }

    fn frame(&mut self, raw: &[u8]) -> Result<(), CheckpointError> {
        let z = zstd::bulk::compress(raw, ZSTD_LEVEL).map_err(CheckpointError::compress)?;
        let len = u32::try_from(z.len())
            .map_err(|_| CheckpointError::Corrupt("a block larger than 4 GiB".into()))?;
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(&z);
        Ok(())
    }
}

/// Encodes a whole layer.
pub fn encode(
    head: &LayerHead,
    pairs: impl Iterator<Item = Pair>,
) -> Result<(Vec<u8>, u64), CheckpointError> {
    let mut e = Encoder::new(head)?;
    for p in pairs {
        e.push(p)?;
    }
    e.finish()
}

/// Reads a layer file: its head at once, its pairs block by block.
pub struct Decoder<'a> {
    rest: &'a [u8],
    block: std::vec::IntoIter<Pair>,
}

impl<'a> Decoder<'a> {
    /// Reads the head of a layer file.
    pub fn new(bytes: &'a [u8]) -> Result<(LayerHead, Decoder<'a>), CheckpointError> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| CheckpointError::Corrupt("not a checkpoint layer file".into()))?;
        let (version, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| CheckpointError::Corrupt("cut short before its version".into()))?;
        let version = u32::from_le_bytes(*version);
        if version != VERSION {
            return Err(CheckpointError::Version(version));
        }
        let mut d = Decoder {
            rest,
            block: Vec::new().into_iter(),
        };
        let raw = d
            .frame()?
            .ok_or_else(|| CheckpointError::Corrupt("cut short before its head".into()))?;
        let head = postcard::from_bytes(&raw).map_err(CheckpointError::decode)?;
        Ok((head, d))
    }

    /// The next pair, in key order; None at the end.
    pub fn next_pair(&mut self) -> Result<Option<Pair>, CheckpointError> {
        loop {
            if let Some(p) = self.block.next() {
                return Ok(Some(p));
            }
            let Some(raw) = self.frame()? else {
                return Ok(None);
            };
            let block: Vec<Pair> = postcard::from_bytes(&raw).map_err(CheckpointError::decode)?;
            self.block = block.into_iter();
        }
    }

    fn frame(&mut self) -> Result<Option<Vec<u8>>, CheckpointError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (len, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or_else(|| CheckpointError::Corrupt("cut short inside a frame length".into()))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(CheckpointError::Corrupt(format!(
                "a frame of {len} bytes with only {} left",
                rest.len()
            )));
        }
        let (z, rest) = rest.split_at(len);
        self.rest = rest;
        zstd::stream::decode_all(z)
            .map(Some)
            .map_err(CheckpointError::compress)
    }
}

/// A decoder's pairs as an iterator that stops at the first error and keeps it in `failed`.
pub struct Pairs<'a, 'e> {
    pub decoder: Decoder<'a>,
    pub failed: &'e std::cell::RefCell<Option<CheckpointError>>,
}

impl Iterator for Pairs<'_, '_> {
    type Item = Pair;

    fn next(&mut self) -> Option<Pair> {
        if self.failed.borrow().is_some() {
            return None;
        }
        match self.decoder.next_pair() {
            Ok(p) => p,
            Err(e) => {
                *self.failed.borrow_mut() = Some(e);
                None
            }
        }
    }
}
