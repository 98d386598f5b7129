//! The file a checkpoint layer is written as: the magic `PSCKPT`, the format version (u32 LE),
//! then frames of a u32 LE length and that many bytes of zstd-compressed postcard — first the
//! layer's head ([`LayerHead`]), then the pairs, sorted by (member, video), in blocks of at most
//! [`BLOCK_PAIRS`]. Blocks keep encoding, merging and restoring streaming: memory holds the
//! file's bytes and one block, never the whole layer decoded.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::Scope;

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
            let Some(block) = self.next_block()? else {
                return Ok(None);
            };
            self.block = block.into_iter();
        }
    }

    /// The next block of pairs, whole (None at the end); pairs [`Self::next_pair`] has not
    /// handed out yet of the current block come first.
    pub fn next_block(&mut self) -> Result<Option<Vec<Pair>>, CheckpointError> {
        let rest: Vec<Pair> = std::mem::take(&mut self.block).collect();
        if !rest.is_empty() {
            return Ok(Some(rest));
        }
        let Some(raw) = self.frame()? else {
            return Ok(None);
        };
        postcard::from_bytes(&raw)
            .map(Some)
            .map_err(CheckpointError::decode)
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

/// Where a layer's blocks of pairs come from: decoded by the reader, or by a thread ahead of it.
pub enum Blocks<'a> {
    Here(Decoder<'a>),
    Ahead(Receiver<Result<Vec<Pair>, CheckpointError>>),
}

impl<'a> Blocks<'a> {
    /// `decoder`'s blocks decoded by a thread of `scope`, at most two blocks ahead of the reader
    /// (restoring then decodes on one core while the engine is filled on another).
    pub fn ahead<'s>(scope: &'s Scope<'s, '_>, mut decoder: Decoder<'s>) -> Blocks<'a> {
        let (tx, rx) = sync_channel(2);
        scope.spawn(move || loop {
            match decoder.next_block() {
                Ok(Some(block)) => {
                    if tx.send(Ok(block)).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        });
        Blocks::Ahead(rx)
    }

    fn next_block(&mut self) -> Result<Option<Vec<Pair>>, CheckpointError> {
        match self {
            Blocks::Here(d) => d.next_block(),
            // A closed channel: the decoding thread is done (an error was sent before).
            Blocks::Ahead(rx) => rx.recv().ok().transpose(),
        }
    }
}

/// A layer's pairs as an iterator that stops at the first error and keeps it in `failed`.
pub struct Pairs<'a, 'e> {
    blocks: Blocks<'a>,
    block: std::vec::IntoIter<Pair>,
    failed: &'e std::cell::RefCell<Option<CheckpointError>>,
}

impl<'a, 'e> Pairs<'a, 'e> {
    pub fn new(
        blocks: Blocks<'a>,
        failed: &'e std::cell::RefCell<Option<CheckpointError>>,
    ) -> Self {
        Pairs {
            blocks,
            block: Vec::new().into_iter(),
            failed,
        }
    }
}

impl Iterator for Pairs<'_, '_> {
    type Item = Pair;

    fn next(&mut self) -> Option<Pair> {
        loop {
            if let Some(p) = self.block.next() {
                return Some(p);
            }
            if self.failed.borrow().is_some() {
                return None;
            }
            match self.blocks.next_block() {
                Ok(Some(block)) => self.block = block.into_iter(),
                Ok(None) => return None,
                Err(e) => {
                    *self.failed.borrow_mut() = Some(e);
                    return None;
                }
            }
        }
    }
}
