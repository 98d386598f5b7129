//! A schema-specific scanner for the shape nearly every event message has: one flat JSON object
//! whose values are strings without escapes, unsigned integers or `null`.
//!
//! It is the decoder's fast path (serde's self-describing `deserialize_any` per field was most of
//! the join core's time). It never decides anything serde would decide differently: on anything
//! outside that shape — an escape, a control character, a float, a sign, a nested value, `true`,
//! an integer past `u64`, a duplicate field, trailing bytes — it answers `None` and the message goes
//! through serde, which accepts or rejects it with its own words. The property tests in
//! `event/scan_tests.rs` check that whenever it answers, the decoded event (or the rejection) is the
//! one serde's path gives.

use std::borrow::Cow;

use super::{RawEvent, Scalar};

/// Reads the fields of `text` into `raw` (all `None` before) when it has the common shape; `None`
/// when it does not (then `raw` may hold some fields: decode the text with serde instead).
pub(super) fn scan<'a>(text: &'a str, raw: &mut RawEvent<'a>) -> Option<()> {
    let mut s = Scanner {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    // One bit per known field seen, for duplicates (`null` leaves the field `None`, as serde does).
    let mut seen = 0u16;
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek()? == b'}' {
        s.i += 1;
    } else {
        loop {
            let key = s.string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let value = s.value()?;
            if let Some((bit, slot)) = raw.slot(key) {
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
                *slot = value;
            }
            s.ws();
            match s.peek()? {
                b',' => {
                    s.i += 1;
                    s.ws();
                }
                b'}' => {
                    s.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == s.b.len()).then_some(())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` (little-endian) that is `"`, `\` or below 0x20. Bits above
/// the lowest one may be false (a borrow carries into the next byte), so only the lowest one is
/// read: `trailing_zeros / 8` is the index of the first such byte.
fn special_bytes(word: u64) -> u64 {
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    zero_bytes(word ^ (ONES * u64::from(b'"')))
        | zero_bytes(word ^ (ONES * u64::from(b'\\')))
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// JSON whitespace.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// A string without escapes or control characters, borrowed from the text.
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        // Eight bytes at a time up to the first quote, backslash or control character.
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let hits = special_bytes(u64::from_le_bytes(word));
            if hits != 0 {
                self.i += (hits.trailing_zeros() / 8) as usize;
                return self.close(start);
            }
            self.i += 8;
        }
        while !matches!(self.peek()?, b'"' | b'\\' | 0..=0x1f) {
            self.i += 1;
        }
        self.close(start)
    }

    /// Ends a string at a special byte: only a closing quote is the common shape.
    #[inline]
    fn close(&mut self, start: usize) -> Option<&'a str> {
        if self.peek()? != b'"' {
            return None;
        }
        let s = self.text.get(start..self.i)?;
        self.i += 1;
        Some(s)
    }

    /// A value: a plain string, an unsigned integer that fits `u64`, or `null` (`None`, as
    /// serde's `Option` reads it). The outer `None` means "not the common shape".
    fn value(&mut self) -> Option<Option<Scalar<'a>>> {
        match self.peek()? {
            b'"' => Some(Some(Scalar::Str(Cow::Borrowed(self.string()?)))),
            b'0'..=b'9' => {
                let start = self.i;
                let mut n: u64 = 0;
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                    self.i += 1;
                }
                // A leading zero before more digits is invalid JSON; a fraction or an exponent
                // makes a float: both are serde's to handle.
                if (self.b[start] == b'0' && self.i - start > 1)
                    || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
                {
                    return None;
                }
                Some(Some(Scalar::Unsigned(n)))
            }
            b'n' => {
                let rest = self.b.get(self.i..self.i + 4)?;
                (rest == b"null").then(|| {
                    self.i += 4;
                    None
                })
            }
            _ => None,
        }
    }
}

impl<'a> RawEvent<'a> {
    /// The slot of a known field and its bit in the duplicate mask; `None` for an unknown field.
    fn slot(&mut self, key: &str) -> Option<(u16, &mut Option<Scalar<'a>>)> {
        Some(match key {
            "event_id" => (1 << 0, &mut self.event_id),
            "ts" => (1 << 1, &mut self.ts),
            "member_id" => (1 << 2, &mut self.member_id),
            "video_id" => (1 << 3, &mut self.video_id),
            "page" => (1 << 4, &mut self.page),
            "row_type" => (1 << 5, &mut self.row_type),
            "row_index" => (1 << 6, &mut self.row_index),
            "rank" => (1 << 7, &mut self.rank),
            "country" => (1 << 8, &mut self.country),
            "device" => (1 << 9, &mut self.device),
            "session_id" => (1 << 10, &mut self.session_id),
            _ => return None,
        })
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
