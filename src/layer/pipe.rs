//! A writer that hands its bytes to another thread, which hashes them and
//! writes them to the real output.
//!
//! An export hashes twice — the tar (diff ID) and the compressed blob — and
//! sha256 is the costliest step left once compression runs on worker
//! threads. Moving the blob's hash and its writes off the producing thread
//! lets the two hashes run on two cores, as `tee >(sha256) | zstd | sha256`
//! does with processes. The channel is bounded: a few buffers in flight.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use crate::digest::{Digest, DigestWriter};

const BUF: usize = 256 * 1024;
const IN_FLIGHT: usize = 4;

/// The producing end; call [`PipeWriter::close`] and then join the handle.
pub struct PipeWriter {
    tx: Option<SyncSender<Vec<u8>>>,
    recycled: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

/// What the output thread returns: the output, the digest and size of
/// everything written to it.
pub type Written<W> = io::Result<(W, Digest, u64)>;

/// The consuming end of a pipe: [`PipeReceiver::drain_into`] writes
/// everything sent to an output, on whichever thread calls it.
pub struct PipeReceiver {
    rx: Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
}

/// A bounded pipe between two threads.
pub fn channel() -> (PipeWriter, PipeReceiver) {
    let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    let pipe = PipeWriter {
        tx: Some(tx),
        recycled: back_rx,
        buf: Vec::with_capacity(BUF),
    };
    (pipe, PipeReceiver { rx, back: back_tx })
}

impl PipeReceiver {
    /// Hashes and writes every buffer until the writer closes; stops at the
    /// first write error (the writer then sees a broken pipe).
    pub fn drain_into<W: Write>(self, out: W) -> Written<W> {
        let mut hashed = DigestWriter::new(out);
        for mut buf in self.rx {
            hashed.write_all(&buf)?;
            buf.clear();
            // Full or closed: the buffer is simply freed.
            let _ = self.back.try_send(buf);
        }
        hashed.flush()?;
        Ok(hashed.finish())
    }
}

/// Starts a thread in `scope` that hashes and writes to `out`.
pub fn spawn<'scope, W: Write + Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    out: W,
) -> (PipeWriter, ScopedJoinHandle<'scope, Written<W>>) {
    let (pipe, receiver) = channel();
    (pipe, scope.spawn(move || receiver.drain_into(out)))
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUF));
        let full = std::mem::replace(&mut self.buf, next);
        let tx = self.tx.as_ref().ok_or_else(closed)?;
        // The output thread stops at its first write error; it reports it on join.
        tx.send(full).map_err(|_| closed())
    }

    /// Sends what is buffered and ends the stream.
    pub fn close(mut self) -> io::Result<()> {
        let result = self.send();
        self.tx = None;
        result
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the layer output thread stopped")
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = data.len().min(BUF - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == BUF {
            self.send()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_writes_everything_in_order() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let (out, digest, size) = std::thread::scope(|s| {
            let (mut pipe, handle) = spawn(s, Vec::new());
            for piece in data.chunks(7777) {
                pipe.write_all(piece).unwrap();
            }
            pipe.close().unwrap();
            handle.join().unwrap().unwrap()
        });
        assert_eq!(out, data);
        assert_eq!((digest, size), (Digest::of(&data), data.len() as u64));
    }

    #[test]
    fn a_failing_output_is_reported() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = std::thread::scope(|s| {
            let (mut pipe, handle) = spawn(s, Full);
            let mut failed = false;
            for _ in 0..100 {
                if pipe.write_all(&[0u8; BUF]).is_err() {
                    failed = true;
                    break;
                }
            }
            let _ = pipe.close();
            assert!(failed, "writes kept succeeding after the output failed");
            handle.join().unwrap().err().unwrap()
        });
        assert_eq!(err.to_string(), "disk full");
    }
}
