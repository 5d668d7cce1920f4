//! Exports a directory as a layer blob with the `rbuild::layer` library, for
//! benchmarks (`scripts/bench-export.sh`) and manual checks.
//!
//! ```text
//! export_layer DIR [--compression gzip|zstd|none] [--threads N]
//!                  [--clamp SECS] [--out FILE] [--diff-id-only]
//! ```
//! The blob goes to FILE (default: discarded); digests and sizes are printed
//! on stdout as JSON, the elapsed time on stderr.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use rbuild::layer::{diff_id, export_layer_threads, Compression, TarOptions};

struct Args {
    dir: PathBuf,
    compression: Compression,
    threads: usize,
    clamp: Option<i64>,
    out: Option<PathBuf>,
    diff_id_only: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut parsed = Args {
        dir: PathBuf::new(),
        compression: Compression::Zstd,
        threads: rbuild::layer::compress::default_threads(),
        clamp: None,
        out: None,
        diff_id_only: false,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--compression" => {
                parsed.compression = value("--compression")?
                    .parse()
                    .map_err(|e| format!("{e}"))?
            }
            "--threads" => {
                parsed.threads = value("--threads")?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?
            }
            "--clamp" => {
                parsed.clamp = Some(
                    value("--clamp")?
                        .parse()
                        .map_err(|e| format!("--clamp: {e}"))?,
                )
            }
            "--out" => parsed.out = Some(PathBuf::from(value("--out")?)),
            "--diff-id-only" => parsed.diff_id_only = true,
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            a => dir = Some(PathBuf::from(a)),
        }
    }
    parsed.dir = dir.ok_or("usage: export_layer DIR [--compression gzip|zstd|none] [--threads N] [--clamp SECS] [--out FILE] [--diff-id-only]")?;
    Ok(parsed)
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let opts = TarOptions {
        mtime_clamp: args.clamp,
    };
    let start = Instant::now();
    if args.diff_id_only {
        let (digest, size) = diff_id(&args.dir, &opts)?;
        eprintln!("elapsed {:.3}s", start.elapsed().as_secs_f64());
        println!(r#"{{"diff_id":"{digest}","diff_size":{size}}}"#);
        return Ok(());
    }
    let out: Box<dyn Write + Send> = match &args.out {
        Some(p) => Box::new(BufWriter::with_capacity(1 << 20, File::create(p)?)),
        None => Box::new(io::sink()),
    };
    let e = export_layer_threads(&args.dir, &opts, args.compression, args.threads, out)?;
    eprintln!("elapsed {:.3}s", start.elapsed().as_secs_f64());
    println!(
        r#"{{"diff_id":"{}","diff_size":{},"blob_digest":"{}","blob_size":{},"media_type":"{}"}}"#,
        e.diff_id,
        e.diff_size,
        e.blob_digest,
        e.blob_size,
        e.compression.oci_media_type()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("export_layer: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("export_layer: {e}");
            ExitCode::FAILURE
        }
    }
}
