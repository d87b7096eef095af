//! Length-prefixed frames: how messages travel on a QUIC stream.
//!
//! ```text
//!  offset  size  field
//!  ------  ----  ----------------------------------------------------------
//!       0     4  length    bytes of payload that follow (u32, little endian)
//!       4   len  payload   one message, postcard-encoded
//! ```
//!
//! A reader is given the most it accepts ([`MAX_FRAME`] unless the stream carries bulk data)
//! and refuses a larger length before reading or allocating any of it. A stream that ends
//! inside a frame is [`FrameError::Truncated`]; one that ends between frames is a clean end
//! (`Ok(None)`). A payload that is not exactly one message of the expected type (garbage,
//! bytes left over, an unknown variant) is [`FrameError::Decode`]. Every error is final for the
//! stream: the caller closes it, and with it the connection if the peer is not trusted to
//! recover.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes in a frame's length prefix.
pub const HEADER_LEN: usize = 4;

/// The largest payload a control stream accepts: requests, responses, raft messages.
pub const MAX_FRAME: u32 = 1 << 20;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the reader accepts.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    Oversized { len: u64, max: u32 },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({got} of {want} bytes)")]
    Truncated { got: usize, want: usize },
    /// The payload is not one message of the expected type.
    #[error("undecodable frame: {0}")]
    Decode(#[source] postcard::Error),
    /// The message could not be encoded (a serializer limit).
    #[error("unencodable message: {0}")]
    Encode(#[source] postcard::Error),
    /// The stream failed.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

/// `msg` as one frame: its length prefix and its payload.
///
/// # Errors
///
/// [`FrameError::Encode`] if postcard refuses the message, [`FrameError::Oversized`] if the
/// payload would not fit a `u32` length.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0; HEADER_LEN];
    out = postcard::to_extend(msg, out).map_err(FrameError::Encode)?;
    let len = out.len() - HEADER_LEN;
    let len32 = u32::try_from(len).map_err(|_| FrameError::Oversized { len: len as u64, max: u32::MAX })?;
    out[..HEADER_LEN].copy_from_slice(&len32.to_le_bytes());
    Ok(out)
}

/// Decodes one message from a frame's payload (the bytes after the length prefix), which must
/// hold exactly one message.
///
/// # Errors
///
/// [`FrameError::Decode`] for anything that is not exactly one `T`.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(payload).map_err(FrameError::Decode)?;
    if !rest.is_empty() {
        return Err(FrameError::Decode(postcard::Error::DeserializeBadEncoding));
    }
    Ok(msg)
}

/// Splits the first whole frame off `bytes`: its message and the bytes after it, or `None`
/// when `bytes` holds only part of a frame so far.
///
/// # Errors
///
/// [`FrameError::Oversized`] as soon as the prefix is readable and too large;
/// [`FrameError::Decode`] for a whole frame whose payload is not one `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max: u32) -> Result<Option<(T, &[u8])>, FrameError> {
    let Some((prefix, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else { return Ok(None) };
    let len = u32::from_le_bytes(*prefix);
    if len > max {
        return Err(FrameError::Oversized { len: u64::from(len), max });
    }
    let len = len as usize;
    if rest.len() < len {
        return Ok(None);
    }
    let (payload, after) = rest.split_at(len);
    Ok(Some((decode_payload(payload)?, after)))
}

/// Writes `msg` as one frame.
///
/// # Errors
///
/// As [`encode`], and [`FrameError::Io`] if the stream fails.
pub async fn write<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let bytes = encode(msg)?;
    w.write_all(&bytes).await?;
    Ok(())
}

/// Reads one frame of at most `max` payload bytes and decodes it; `Ok(None)` when the stream
/// ends cleanly before a frame starts.
///
/// # Errors
///
/// [`FrameError::Oversized`] before reading a payload over `max`, [`FrameError::Truncated`] when
/// the stream ends inside the frame, [`FrameError::Decode`] for a payload that is not one `T`,
/// [`FrameError::Io`] if the stream fails.
pub async fn read<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R, max: u32) -> Result<Option<T>, FrameError> {
    let mut prefix = [0; HEADER_LEN];
    let got = read_full(r, &mut prefix).await?;
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER_LEN {
        return Err(FrameError::Truncated { got, want: HEADER_LEN });
    }
    let len = u32::from_le_bytes(prefix);
    if len > max {
        return Err(FrameError::Oversized { len: u64::from(len), max });
    }
    let mut payload = vec![0; len as usize];
    let got = read_full(r, &mut payload).await?;
    if got < payload.len() {
        return Err(FrameError::Truncated { got: HEADER_LEN + got, want: HEADER_LEN + payload.len() });
    }
    decode_payload(&payload).map(Some)
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = r.read(&mut buf[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Hello, PROTOCOL_VERSION, Role};

    fn hello() -> Hello {
        Hello { version: PROTOCOL_VERSION, cluster: crate::ClusterId([7; 16]), role: Role::Client }
    }

    #[test]
    fn a_frame_round_trips_and_leaves_what_follows() {
        let mut bytes = encode(&hello()).unwrap();
        bytes.extend_from_slice(b"next");
        let (msg, rest) = decode::<Hello>(&bytes, MAX_FRAME).unwrap().unwrap();
        assert_eq!(msg, hello());
        assert_eq!(rest, b"next");
    }

    #[test]
    fn partial_frames_wait_for_more_and_oversized_ones_fail_at_once() {
        let bytes = encode(&hello()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode::<Hello>(&bytes[..cut], MAX_FRAME).unwrap().is_none(), "cut at {cut}");
        }
        let huge = (MAX_FRAME + 1).to_le_bytes();
        assert!(matches!(decode::<Hello>(&huge, MAX_FRAME), Err(FrameError::Oversized { .. })));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_decode_errors() {
        let mut frame = encode(&hello()).unwrap();
        frame.push(0);
        let len = u32::try_from(frame.len() - HEADER_LEN).unwrap();
        frame[..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
        assert!(matches!(decode::<Hello>(&frame, MAX_FRAME), Err(FrameError::Decode(_))));
        let garbage = [3, 0, 0, 0, 0xff, 0xff, 0xff];
        assert!(matches!(decode::<Hello>(&garbage, MAX_FRAME), Err(FrameError::Decode(_))));
    }

    #[tokio::test]
    async fn streams_end_cleanly_between_frames_and_truncated_inside_one() {
        let bytes = encode(&hello()).unwrap();
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        let mut r = &two[..];
        assert_eq!(read::<_, Hello>(&mut r, MAX_FRAME).await.unwrap(), Some(hello()));
        assert_eq!(read::<_, Hello>(&mut r, MAX_FRAME).await.unwrap(), Some(hello()));
        assert_eq!(read::<_, Hello>(&mut r, MAX_FRAME).await.unwrap(), None);
        for cut in 1..bytes.len() {
            let mut r = &bytes[..cut];
            assert!(
                matches!(read::<_, Hello>(&mut r, MAX_FRAME).await, Err(FrameError::Truncated { .. })),
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn an_oversized_prefix_is_refused_before_its_payload_is_read() {
        // Announces 4 GiB and carries nothing: refused without allocating or waiting.
        let mut r = &u32::MAX.to_le_bytes()[..];
        let e = read::<_, Hello>(&mut r, MAX_FRAME).await.unwrap_err();
        assert!(matches!(e, FrameError::Oversized { len, .. } if len == u64::from(u32::MAX)), "{e}");
    }

    #[test]
    #[expect(clippy::cast_possible_truncation, reason = "random numbers cut down to indices and bytes")]
    fn random_bytes_never_panic_the_decoder() {
        // A small xorshift: deterministic inputs, many shapes (valid prefixes with garbage,
        // mutated valid frames, pure noise).
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        use crate::msg::{Digest, Epoch, GuestId, Heartbeat, NodeId, Request, Response};
        let heartbeat = Request::Heartbeat(Heartbeat {
            node: NodeId(3),
            incarnation: 2,
            runnable: 1,
            running: vec![(GuestId(7), Epoch(1))],
            starting: vec![(GuestId(8), Epoch(2))],
            exits: vec![],
        });
        let valid = [
            encode(&hello()).unwrap(),
            encode(&heartbeat).unwrap(),
            encode(&Request::PutProgram { digest: Digest([9; 32]), size: 4096 }).unwrap(),
            encode(&Response::Output { stream: 1, offset: 10, data: b"hello".to_vec() }).unwrap(),
        ];
        for _ in 0..20_000 {
            let pick = &valid[(next() % valid.len() as u64) as usize];
            let mut bytes = if next() % 2 == 0 { pick.clone() } else { vec![0; (next() % 64) as usize] };
            for _ in 0..1 + next() % 4 {
                if bytes.is_empty() {
                    break;
                }
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            let _ = decode::<Hello>(&bytes, MAX_FRAME);
            let _ = decode::<crate::msg::Welcome>(&bytes, MAX_FRAME);
            let _ = decode::<Request>(&bytes, MAX_FRAME);
            let _ = decode::<Response>(&bytes, MAX_FRAME);
        }
    }
}
