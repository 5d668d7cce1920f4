//! Blob progress on stderr for pull and push: on a terminal, one indicatif
//! bar per blob in flight (bytes, rate, ETA) with skopeo's lines printed
//! above the bars; otherwise only the plain lines ("Copying blob sha256:…
//! done"), so logs and pipes stay readable.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Digest;

/// The bar layout: short digest, bytes, rate and ETA.
const TEMPLATE: &str =
    "Copying blob {prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}";

/// Per-blob progress; shareable between download threads.
pub struct BlobBars {
    /// `None` when stderr is not a terminal: plain lines only.
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl BlobBars {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn stderr() -> BlobBars {
        if std::io::stderr().is_terminal() {
            BlobBars::with_target(ProgressDrawTarget::stderr())
        } else {
            BlobBars::plain()
        }
    }

    /// Plain lines only.
    pub fn plain() -> BlobBars {
        BlobBars {
            multi: None,
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Bars drawn to `target` (a hidden target in tests).
    pub fn with_target(target: ProgressDrawTarget) -> BlobBars {
        BlobBars {
            multi: Some(MultiProgress::with_draw_target(target)),
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Prints a whole line, above the bars when there are any.
    pub fn line(&self, text: &str) {
        match &self.multi {
            // A hidden target prints nothing; that is only used in tests.
            Some(multi) if !multi.is_hidden() => {
                let _ = multi.println(text);
            }
            Some(_) => {}
            None => eprintln!("{text}"),
        }
    }

    /// `received` of `size` bytes of `digest` so far; draws only on a terminal.
    pub fn update(&self, digest: &Digest, received: u64, size: u64) {
        let Some(multi) = &self.multi else {
            return;
        };
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bars.entry(*digest).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(size));
            // The template is a constant; the default style is a safe fallback.
            let style = ProgressStyle::with_template(TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(digest.short());
            bar
        });
        if bar.length() != Some(size) {
            bar.set_length(size);
        }
        bar.set_position(received.min(size));
    }

    /// The blob is through: its bar goes, and `line` is printed in its place.
    pub fn finish(&self, digest: &Digest, line: &str) {
        let bar = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(digest);
        if let (Some(bar), Some(multi)) = (bar, &self.multi) {
            bar.finish_and_clear();
            multi.remove(&bar);
        }
        self.line(line);
    }

    /// How many bars are drawn now.
    pub fn in_flight(&self) -> usize {
        self.bars.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn a_bar_lives_while_its_blob_is_in_flight() {
        let bars = BlobBars::with_target(ProgressDrawTarget::hidden());
        bars.update(&digest(1), 10, 100);
        bars.update(&digest(2), 5, 50);
        bars.update(&digest(1), 60, 100);
        assert_eq!(bars.in_flight(), 2);
        bars.finish(&digest(1), "Copying blob x done");
        assert_eq!(bars.in_flight(), 1);
        bars.finish(&digest(2), "Copying blob y done");
        assert_eq!(bars.in_flight(), 0);
    }

    #[test]
    fn plain_mode_draws_no_bars() {
        let bars = BlobBars::plain();
        bars.update(&digest(1), 10, 100);
        assert_eq!(bars.in_flight(), 0);
        bars.finish(&digest(1), "Copying blob x done");
    }
}
