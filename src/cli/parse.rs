//! `rbuild parse`: find the Containerfile like buildah does, read it, and
//! print either the typed stages as JSON (`--format json`, the default) or
//! BuildKit's raw AST dump (`--format ast`). The parsing itself is pure and
//! lives in `containerfile`; this file only does the I/O.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::containerfile;

/// Output formats of `rbuild parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Typed stages and instructions with spans (stable; see README).
    Json,
    /// BuildKit's parser dump, unchecked (as BuildKit's dumper prints it).
    Ast,
}

/// Parse a Containerfile and print its structure.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// The Containerfile to read; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// What to print.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,

    /// Build context directory, searched for Containerfile then Dockerfile.
    #[arg(value_name = "CONTEXT", default_value = ".")]
    pub context: PathBuf,
}

/// Bumped on any incompatible change to the JSON layout documented in the README.
const JSON_FORMAT_VERSION: u32 = 1;

#[derive(serde::Serialize)]
struct JsonOutput<'a> {
    format_version: u32,
    #[serde(flatten)]
    containerfile: &'a containerfile::Containerfile,
}

/// Runs `rbuild parse`.
pub fn run(args: ParseArgs) -> anyhow::Result<i32> {
    let (name, bytes) = read_containerfile(args.file.as_deref(), &args.context)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{name}: not valid UTF-8 at byte {}; save the file as UTF-8",
            e.utf8_error().valid_up_to()
        )
    })?;
    let output = match args.format {
        Format::Ast => {
            let ast = containerfile::parse_ast(&text, &name)?;
            warn(&ast.warnings);
            containerfile::dump(&ast)
        }
        Format::Json => {
            let cf = containerfile::parse(&text, &name)?;
            warn(&cf.warnings);
            let out = JsonOutput {
                format_version: JSON_FORMAT_VERSION,
                containerfile: &cf,
            };
            let mut s =
                serde_json::to_string_pretty(&out).context("serialising the parse result")?;
            s.push('\n');
            s
        }
    };
    std::io::stdout().lock().write_all(output.as_bytes())?;
    Ok(0)
}

/// Non-fatal findings go to stderr (and, for json, into the output too).
fn warn(warnings: &[containerfile::Warning]) {
    for w in warnings {
        log::warn!("{}: {}", w.span.location(), w.message);
    }
}

/// `-f FILE` (or `-` for stdin), else CONTEXT/Containerfile, else CONTEXT/Dockerfile.
fn read_containerfile(file: Option<&Path>, context: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    if let Some(file) = file {
        if file == Path::new("-") {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading the Containerfile from standard input")?;
            return Ok(("-".to_string(), bytes));
        }
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        return Ok((file.display().to_string(), bytes));
    }
    if !context.is_dir() {
        bail!("build context {} is not a directory", context.display());
    }
    for candidate in ["Containerfile", "Dockerfile"] {
        let path = context.join(candidate);
        if path.is_file() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            return Ok((path.display().to_string(), bytes));
        }
    }
    bail!(
        "no Containerfile or Dockerfile in {}; pass one with -f FILE",
        context.display()
    )
}
