//! The frame decoder on arbitrary bytes: every frame of a stream of handshake messages, then of
//! requests (the first frame of every stream a daemon accepts), and the same bytes as replies
//! and answers. It must return an error or a message, never panic or allocate past the limit.
#![no_main]

use shoal_protocol::frame::{self, MAX_FRAME};
use shoal_protocol::msg::{Hello, HelloReply, Request, Response, Upload};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((_, after))) = frame::decode::<Hello>(rest, MAX_FRAME) {
        rest = after;
    }
    let mut rest = data;
    while let Ok(Some((_, after))) = frame::decode::<Request>(rest, MAX_FRAME) {
        rest = after;
    }
    let _ = frame::decode::<HelloReply>(data, MAX_FRAME);
    let _ = frame::decode::<Response>(data, MAX_FRAME);
    let _ = frame::decode::<Upload>(data, MAX_FRAME);
});
