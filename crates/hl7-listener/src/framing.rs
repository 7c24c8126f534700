//! MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2): a message travels as
//! `<VT> message <FS><CR>` (0x0B … 0x1C 0x0D) over a byte stream. Bytes between frames
//! (a stray CR, keep-alive noise) are skipped; a frame longer than the configured limit
//! is an error, so one sender cannot make the server hold an unbounded message.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const START: u8 = 0x0B;
pub const END: [u8; 2] = [0x1C, 0x0D];

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a message longer than {0} bytes")]
    TooLong(usize),
    #[error("the connection closed in the middle of a message")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads MLLP frames from a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max: usize) -> FrameReader<R> {
        FrameReader {
            inner,
            buf: Vec::with_capacity(4096),
            max,
        }
    }

    /// The next message, `None` at a clean end of the stream.
    pub async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.inner.read(&mut chunk).await?;
            if n == 0 {
                return if self.buf.contains(&START) {
                    Err(FrameError::Truncated)
                } else {
                    Ok(None)
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// A whole frame from the buffer, if one is there.
    fn take_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        // Noise before a start byte is dropped.
        match self.buf.iter().position(|b| *b == START) {
            Some(0) => {}
            Some(i) => {
                self.buf.drain(..i);
            }
            None => {
                self.buf.clear();
                return Ok(None);
            }
        }
        match self.buf.windows(2).position(|w| w == END) {
            Some(end) => {
                let frame = self.buf[1..end].to_vec();
                self.buf.drain(..end + 2);
                if frame.len() > self.max {
                    return Err(FrameError::TooLong(self.max));
                }
                Ok(Some(frame))
            }
            None if self.buf.len() > self.max + 3 => Err(FrameError::TooLong(self.max)),
            None => Ok(None),
        }
    }
}

/// Writes one message as a frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, message: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(START);
    out.extend_from_slice(message);
    out.extend_from_slice(&END);
    w.write_all(&out).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(bytes: &[u8], max: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut r = FrameReader::new(bytes, max);
        let mut out = Vec::new();
        while let Some(f) = r.next_frame().await? {
            out.push(f);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn frames_are_cut_at_their_markers_and_noise_between_is_skipped() {
        let got = frames(b"\x0bMSH|a\r\x1c\x0d\r\n\x0bMSH|b\r\x1c\x0d", 100)
            .await
            .expect("frames");
        assert_eq!(got, vec![b"MSH|a\r".to_vec(), b"MSH|b\r".to_vec()]);
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_an_error() {
        let mut big = vec![START];
        big.extend(std::iter::repeat_n(b'x', 50));
        big.extend_from_slice(&END);
        assert!(matches!(
            frames(&big, 10).await,
            Err(FrameError::TooLong(10))
        ));
        // Without its end marker the reader stops as soon as the limit is passed.
        let mut endless = vec![START];
        endless.extend(std::iter::repeat_n(b'x', 1000));
        assert!(matches!(
            frames(&endless, 10).await,
            Err(FrameError::TooLong(10))
        ));
    }

    #[tokio::test]
    async fn a_stream_that_ends_inside_a_frame_is_truncated() {
        assert!(matches!(
            frames(b"\x0bMSH|a", 100).await,
            Err(FrameError::Truncated)
        ));
        assert_eq!(frames(b"", 100).await.expect("empty").len(), 0);
    }

    #[tokio::test]
    async fn a_written_frame_reads_back() {
        let mut out = Vec::new();
        write_frame(&mut out, b"MSH|x\r").await.expect("write");
        assert_eq!(
            frames(&out, 100).await.expect("read"),
            vec![b"MSH|x\r".to_vec()]
        );
    }
}
