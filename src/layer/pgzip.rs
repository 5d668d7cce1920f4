//! Parallel, reproducible gzip.
//!
//! The input is cut into fixed-size blocks (1 MiB). Each block is deflated on
//! its own by a worker (raw deflate, no shared dictionary) and ends with a
//! sync flush, so it stops on a byte boundary and the blocks can simply be
//! concatenated; an empty final block (`03 00`) closes the deflate stream.
//! The result is one ordinary gzip member — as pigz makes — that every
//! reader (gzip, Go's compress/gzip, skopeo, umoci) accepts. Block
//! boundaries depend only on byte offsets, so the output is identical for
//! any number of threads: digests stay reproducible.
//!
//! Memory is bounded: at most `2 × threads` blocks are in flight.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};

use flate2::{Compress, Crc, FlushCompress};

/// Input bytes per independently deflated block.
pub const BLOCK_SIZE: usize = 1 << 20;

/// The fixed gzip header: no name, mtime 0, OS "unknown" (as Go writes it).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// A final, empty fixed-Huffman deflate block.
const LAST_BLOCK: [u8; 2] = [0x03, 0x00];

struct Block {
    data: Vec<u8>,
    crc: Crc,
}

/// A `Write` that gzips in parallel; call [`ParGzEncoder::finish`] to end it.
pub struct ParGzEncoder<W: Write> {
    out: W,
    pool: rayon::ThreadPool,
    level: u32,
    block_size: usize,
    current: Vec<u8>,
    inflight: VecDeque<Receiver<io::Result<Block>>>,
    max_inflight: usize,
    crc: Crc,
    size: u64,
    header_written: bool,
}

impl<W: Write> ParGzEncoder<W> {
    /// `threads` workers deflating at `level` (1–9).
    pub fn new(out: W, level: u32, threads: usize) -> io::Result<ParGzEncoder<W>> {
        Self::with_block_size(out, level, threads, BLOCK_SIZE)
    }

    pub(crate) fn with_block_size(
        out: W,
        level: u32,
        threads: usize,
        block_size: usize,
    ) -> io::Result<ParGzEncoder<W>> {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("rbuild-gzip-{i}"))
            .build()
            .map_err(io::Error::other)?;
        Ok(ParGzEncoder {
            out,
            pool,
            level: level.clamp(1, 9),
            block_size,
            current: Vec::with_capacity(block_size),
            inflight: VecDeque::new(),
            max_inflight: 2 * threads,
            crc: Crc::new(),
            size: 0,
            header_written: false,
        })
    }

    /// Flushes every block, writes the gzip trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.current.is_empty() {
            self.submit();
        }
        while !self.inflight.is_empty() {
            self.write_front(true)?;
        }
        self.ensure_header()?;
        self.out.write_all(&LAST_BLOCK)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        // ISIZE is the input size modulo 2^32 (RFC 1952).
        self.out.write_all(&(self.size as u32).to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn submit(&mut self) {
        let data = std::mem::replace(&mut self.current, Vec::with_capacity(self.block_size));
        let (tx, rx) = sync_channel(1);
        let level = self.level;
        self.pool.spawn(move || {
            // The receiver may be gone if the encoder was dropped: nothing to do.
            let _ = tx.send(deflate_block(&data, level));
        });
        self.inflight.push_back(rx);
    }

    /// Writes the oldest block; `wait` blocks until it is ready. Returns
    /// whether a block was written.
    fn write_front(&mut self, wait: bool) -> io::Result<bool> {
        let Some(rx) = self.inflight.front() else {
            return Ok(false);
        };
        let result = if wait {
            rx.recv().map_err(|_| worker_died())?
        } else {
            match rx.try_recv() {
                Ok(r) => r,
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => return Err(worker_died()),
            }
        };
        self.inflight.pop_front();
        let block = result?;
        self.ensure_header()?;
        self.out.write_all(&block.data)?;
        self.crc.combine(&block.crc);
        Ok(true)
    }

    fn ensure_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let take = buf.len().min(self.block_size - self.current.len());
        self.current.extend_from_slice(&buf[..take]);
        self.size += take as u64;
        if self.current.len() == self.block_size {
            self.submit();
            while self.write_front(false)? {}
            while self.inflight.len() >= self.max_inflight {
                self.write_front(true)?;
            }
        }
        Ok(take)
    }

    /// Only flushes what is already compressed: a partial block is not cut
    /// early, or the output would depend on when callers flush.
    fn flush(&mut self) -> io::Result<()> {
        while self.write_front(false)? {}
        self.out.flush()
    }
}

fn worker_died() -> io::Error {
    io::Error::other("a gzip compression worker thread died")
}

/// Bytes per segment inside a block: each is either deflated (sync flush,
/// keeping the history of the deflated segment before it) or, when
/// incompressible, copied as stored blocks.
const SEGMENT: usize = 64 * 1024;
/// Bytes of a high-entropy segment searched for repeats to confirm it is incompressible.
const SAMPLE: usize = 4096;
/// The largest stored deflate block (RFC 1951: LEN is 16 bits).
const MAX_STORED: usize = 65_535;

/// Raw deflate of one block, ending byte-aligned and not final.
///
/// Deflating random bytes costs as much as compressing text and gains
/// nothing, so a segment whose byte histogram is flat and whose first 4 KiB
/// do not shrink is stored as is: this is what makes compressed, encrypted
/// or media files cheap to export. The decision uses integers only, so it —
/// and the output — is the same on every machine.
fn deflate_block(input: &[u8], level: u32) -> io::Result<Block> {
    let mut crc = Crc::new();
    crc.update(input);
    let mut c = Compress::new(flate2::Compression::new(level), false);
    let mut out = Vec::with_capacity(input.len() + input.len() / 64 + 64);
    // The compressor's window must hold what the reader's holds: after a
    // stored segment (written around the compressor) it starts afresh;
    // between deflated segments it keeps its history, which is worth a few
    // percent of output.
    let mut stale = false;
    for seg in input.chunks(SEGMENT) {
        if incompressible(seg) {
            stored(seg, &mut out);
            stale = true;
        } else {
            if stale {
                c.reset();
                stale = false;
            }
            deflate_sync(&mut c, seg, &mut out)?;
        }
    }
    Ok(Block { data: out, crc })
}

/// Deflates `input` with a sync flush (ends byte-aligned with an empty stored block).
fn deflate_sync(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let start_in = c.total_in();
    loop {
        let consumed = (c.total_in() - start_in) as usize;
        c.compress_vec(&input[consumed..], out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        if (c.total_in() - start_in) as usize == input.len() && out.len() < out.capacity() {
            return Ok(());
        }
        out.reserve(64 * 1024);
    }
}

/// Appends `data` as non-final stored blocks (the stream is byte-aligned here).
fn stored(data: &[u8], out: &mut Vec<u8>) {
    for piece in data.chunks(MAX_STORED) {
        let len = piece.len() as u16;
        out.push(0); // BFINAL = 0, BTYPE = 00, padding to the byte boundary
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(piece);
    }
}

/// Windows of a segment whose bytes are counted for the histogram test.
const WINDOWS: usize = 16;
/// Bytes per counted window: 16 KiB of every 64 KiB segment, spread over
/// all of it, tells random data from text as surely as counting every byte
/// (the noise of a random sample is under 0.2%, the slack 3%) at a quarter
/// of the cost.
const WINDOW: usize = 1024;

/// True when `seg` looks like random bytes: a nearly flat byte histogram
/// over [`WINDOWS`] windows spread across it (sum of squared counts within
/// 3% of a uniform one's) and no repeats in its first [`SAMPLE`] bytes
/// that deflate would find (see [`has_repeats`]).
fn incompressible(seg: &[u8]) -> bool {
    if seg.len() < SAMPLE * 2 {
        return false;
    }
    let mut counts = [0u64; 256];
    let stride = seg.len() / WINDOWS;
    let mut n = 0u64;
    for i in 0..WINDOWS {
        let start = i * stride;
        let window = &seg[start..(start + WINDOW).min(seg.len())];
        for &b in window {
            counts[b as usize] += 1;
        }
        n += window.len() as u64;
    }
    let squares: u64 = counts.iter().map(|&k| k * k).sum();
    // Uniform bytes give about n²/256 + n; 3% slack (and the +n term) for noise.
    let flat = n * n / 256 + n;
    squares * 100 <= flat * 103 && !has_repeats(&seg[..SAMPLE])
}

/// Bits of the match table's index: 2048 slots of the last position seen.
const MATCH_BITS: u32 = 11;

/// Whether at least 3% of the positions in `sample` start a 4-byte
/// sequence that already occurred earlier in it — the matches deflate's
/// fastest level looks for, found the way it finds them (a hash of 4
/// bytes → the last position), at a small fraction of the cost of
/// deflating the sample. Random bytes have almost none; text, tables and a
/// repeated random pattern have far more. `sample` is at most 64 KiB.
fn has_repeats(sample: &[u8]) -> bool {
    // Positions are stored + 1, so 0 means empty.
    let mut last = [0u16; 1 << MATCH_BITS];
    let mut matches = 0usize;
    for (i, quad) in sample.windows(4).enumerate() {
        let value = u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]);
        let slot = (value.wrapping_mul(0x9E37_79B1) >> (32 - MATCH_BITS)) as usize;
        let seen = last[slot] as usize;
        if seen != 0 && &sample[seen - 1..seen + 3] == quad {
            matches += 1;
        }
        last[slot] = (i + 1) as u16;
    }
    matches * 100 >= sample.len() * 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        // Half compressible text, half pseudo-random bytes.
        let mut x: u32 = 12345;
        (0..len)
            .map(|i| {
                if (i / 4096) % 2 == 0 {
                    b"layer data "[i % 11]
                } else {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                }
            })
            .collect()
    }

    fn gz(data: &[u8], threads: usize, block: usize, write_size: usize) -> Vec<u8> {
        let mut enc = ParGzEncoder::with_block_size(Vec::new(), 1, threads, block).unwrap();
        for piece in data.chunks(write_size.max(1)) {
            enc.write_all(piece).unwrap();
        }
        enc.finish().unwrap()
    }

    #[test]
    fn round_trips_through_flate2_and_is_one_member() {
        for len in [0, 1, 1000, 65536, 300_000] {
            let data = sample(len);
            let out = gz(&data, 3, 64 * 1024, 7000);
            let mut back = Vec::new();
            // GzDecoder (not MultiGz) reads only the first member: one member it must be.
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "len {len}");
        }
    }

    #[test]
    fn output_does_not_depend_on_threads_or_write_sizes() {
        let data = sample(700_000);
        let one = gz(&data, 1, 64 * 1024, 100_000);
        assert_eq!(one, gz(&data, 4, 64 * 1024, 333));
        assert_eq!(one, gz(&data, 2, 64 * 1024, 1 << 20));
    }

    #[test]
    fn random_segments_are_stored_and_text_is_compressed() {
        let mut x: u64 = 7;
        let random: Vec<u8> = (0..SEGMENT * 3)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(incompressible(&random[..SEGMENT]));
        assert!(!has_repeats(&random[..SAMPLE]));
        let text = b"the quick brown fox jumps over the lazy dog ".repeat(2000);
        assert!(!incompressible(&text[..SEGMENT]));
        // A random 1 KiB pattern repeated: flat histogram, but deflate finds it.
        let repeated = random[..1024].repeat(64);
        assert!(!incompressible(&repeated));
        assert!(has_repeats(&repeated[..SAMPLE]));
        let mut mixed = random.clone();
        mixed.extend_from_slice(&text);
        mixed.extend_from_slice(&repeated);
        let out = gz(&mixed, 2, 256 * 1024, 10_000);
        assert!(
            out.len() < random.len() + 20_000,
            "text and repeats were not compressed"
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, mixed);
    }

    #[test]
    fn text_compresses_about_as_well_as_gzip_does() {
        // Words drawn from a small vocabulary, as source code and docs are.
        let words = [
            "layer", "image", "config", "the", "of", "manifest", "digest", "blob", "fn", "let",
            "mut", "return", "{", "}", "(", ")", ";", "\n", "struct", "impl",
        ];
        let mut x: u32 = 99;
        let mut text = Vec::new();
        while text.len() < 3 << 20 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            text.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
            text.push(b' ');
        }
        let ours = {
            let mut enc =
                ParGzEncoder::new(Vec::new(), crate::layer::compress::GZIP_LEVEL, 2).unwrap();
            enc.write_all(&text).unwrap();
            enc.finish().unwrap().len()
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("text");
        std::fs::write(&file, &text).unwrap();
        let gzip = std::process::Command::new("gzip")
            .args(["-6", "-c"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(gzip.status.success());
        let theirs = gzip.stdout.len();
        // Level 3 makes about 1.17 × gzip -6 here; zlib-rs level 1 made 1.8 ×.
        assert!(
            ours * 100 <= theirs * 125,
            "parallel gzip made {ours} bytes where gzip -6 makes {theirs}"
        );
    }

    #[test]
    fn gzip_tool_reads_it() {
        let data = sample(200_000);
        let out = gz(&data, 2, 32 * 1024, 4096);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.gz");
        std::fs::write(&file, &out).unwrap();
        let res = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&file)
            .output()
            .unwrap();
        assert!(res.status.success(), "{res:?}");
        assert_eq!(res.stdout, data);
        let test = std::process::Command::new("gzip")
            .arg("-t")
            .arg(&file)
            .status()
            .unwrap();
        assert!(test.success());
    }
}
