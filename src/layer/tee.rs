//! [`Tee`]: one stream written to two places at once — a blob to its
//! destination and a copy into the store, or a tar to the compressor and to
//! the diff-ID hasher — so nothing is written, then read back.

use std::io::{self, Write};

/// Writes everything to `main` and the same bytes to `copy`.
pub struct Tee<A, B> {
    pub main: A,
    pub copy: B,
}

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.main.write(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.main.flush()?;
        self.copy.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_get_every_byte() {
        let mut tee = Tee {
            main: Vec::new(),
            copy: Vec::new(),
        };
        for piece in [&b"hello "[..], b"", b"world"] {
            tee.write_all(piece).unwrap();
        }
        tee.flush().unwrap();
        assert_eq!(tee.main, b"hello world");
        assert_eq!(tee.copy, b"hello world");
    }
}
