//! A response body of a shared head and a small tail, sent without copying the head.
//!
//! A cached series answer is the same head for every hit (up to ~100 KB for a month of hours)
//! followed by that answer's own `source` object. Copying the head into a fresh buffer per hit
//! was the largest cost of a cache hit; this body hands hyper both parts as they are (hyper
//! writes them with one vectored write) and states the exact length, so the answer still
//! carries a `Content-Length`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A body of up to three parts sent in order (a request's own prefix, the shared head, the tail).
pub struct HeadTail {
    parts: [Option<Bytes>; 3],
}

impl HeadTail {
    /// The body `head` followed by `tail`.
    pub fn new(head: Bytes, tail: Bytes) -> HeadTail {
        HeadTail::with_prefix(Bytes::new(), head, tail)
    }

    /// The body `prefix`, then `head`, then `tail`.
    pub fn with_prefix(prefix: Bytes, head: Bytes, tail: Bytes) -> HeadTail {
        let part = |b: Bytes| (!b.is_empty()).then_some(b);
        HeadTail {
            parts: [part(prefix), part(head), part(tail)],
        }
    }
}

impl Body for HeadTail {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.parts.iter_mut().find_map(Option::take);
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.iter().all(Option::is_none)
    }

    fn size_hint(&self) -> SizeHint {
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len() as u64);
        SizeHint::with_exact(self.parts.iter().map(len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_head_then_tail_with_the_exact_length() {
        for (head, tail) in [("{\"a\":", "1}"), ("", "{}"), ("{}", ""), ("", "")] {
            let body = HeadTail::new(Bytes::from(head), Bytes::from(tail));
            assert_eq!(
                body.size_hint().exact(),
                Some((head.len() + tail.len()) as u64)
            );
            assert_eq!(body.is_end_stream(), head.is_empty() && tail.is_empty());
            let got = axum::body::to_bytes(axum::body::Body::new(body), 1 << 20)
                .await
                .unwrap();
            assert_eq!(got, format!("{head}{tail}"));
            let body =
                HeadTail::with_prefix(Bytes::from("<"), Bytes::from(head), Bytes::from(tail));
            assert_eq!(
                body.size_hint().exact(),
                Some((1 + head.len() + tail.len()) as u64)
            );
            let got = axum::body::to_bytes(axum::body::Body::new(body), 1 << 20)
                .await
                .unwrap();
            assert_eq!(got, format!("<{head}{tail}"));
        }
    }
}
