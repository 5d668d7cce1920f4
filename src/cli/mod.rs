//! The command line: clap definitions, one file per subcommand, and the one
//! place that turns an error into a message and an exit code.
//!
//! Subcommands parse what the user typed into a plain record, then call one
//! library function; no build logic lives here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod bud;
mod commit;
mod completion;
mod config;
mod containers;
mod copy;
mod from;
mod history;
mod images;
mod import;
mod inspect;
mod login;
mod logout;
mod manifest;
mod manifest_push;
mod mount;
mod parse;
mod prune;
mod pull;
mod push;
mod push_registry;
mod rename;
mod rm;
mod rmi;
mod run;
mod sandbox_debug;
mod store_access;
mod table;
mod tag;
mod umount;
mod unshare;

/// Options every subcommand sees.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOptions {
    /// Storage root (default: /var/lib/rbuild as root, else $XDG_DATA_HOME/rbuild).
    #[arg(long, global = true, env = "RBUILD_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Run root for state that dies with a reboot (default: $XDG_RUNTIME_DIR/rbuild).
    #[arg(long, global = true, value_name = "DIR")]
    pub runroot: Option<PathBuf>,

    /// Logging verbosity.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "warn",
          value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: String,

    /// Storage driver, for buildah command lines: only `overlay`, what rbuild's store is.
    // rbuild's store is always an overlay store (with its own fallbacks when
    // the kernel refuses): scripts written for buildah keep working, and
    // `vfs` fails loudly instead of being silently ignored.
    #[arg(long, global = true, value_name = "DRIVER", value_parser = ["overlay"])]
    pub storage_driver: Option<String>,
}

/// rbuild: a daemonless, rootless OCI image builder.
#[derive(Debug, Parser)]
#[command(name = "rbuild", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Containerfile.
    #[command(visible_alias = "build", alias = "build-using-dockerfile")]
    Bud(Box<bud::BudArgs>),
    /// Add files, URLs or archive contents to a working container (ADD).
    Add(copy::CopyArgs),
    /// Make an image from a working container.
    Commit(commit::CommitArgs),
    /// Manage the build cache.
    Cache(prune::CacheArgs),
    /// Print a shell completion script.
    Completion(completion::CompletionArgs),
    /// Change the image config of a working container.
    Config(Box<config::ConfigArgs>),
    /// List working containers.
    Containers(containers::ContainersArgs),
    /// Copy files into a working container (COPY).
    Copy(copy::CopyArgs),
    /// Make a working container from an image (or scratch).
    From(from::FromArgs),
    /// Show an image's history.
    History(history::HistoryArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Make an image from a rootfs tarball or directory.
    Import(import::ImportArgs),
    /// Show an image's configuration and manifest.
    Inspect(inspect::InspectArgs),
    /// Create, edit, inspect and push manifest lists (multi-platform images).
    Manifest(manifest::ManifestArgs),
    /// Mount a working container's rootfs and print its path.
    Mount(mount::MountArgs),
    /// Parse a Containerfile and print its stages (json) or BuildKit's AST dump (ast).
    Parse(parse::ParseArgs),
    /// Remove dangling images and unused layers and blobs.
    Prune(prune::PruneArgs),
    /// Log in to a registry.
    Login(login::LoginArgs),
    /// Log out of a registry.
    Logout(logout::LogoutArgs),
    /// Pull an image from a registry.
    Pull(pull::PullArgs),
    /// Push an image to a registry (docker://) or an oci:, oci-archive:, docker-archive: or dir: destination.
    Push(push::PushArgs),
    /// Rename a working container.
    Rename(rename::RenameArgs),
    /// Remove working containers.
    Rm(rm::RmArgs),
    /// Remove images.
    Rmi(rmi::RmiArgs),
    /// Run a command in a working container.
    Run(run::RunArgs),
    /// Add names to an image.
    Tag(tag::TagArgs),
    /// Unmount working containers.
    Umount(umount::UmountArgs),
    /// Run a command inside rbuild's user namespace (as `buildah unshare`).
    Unshare(unshare::UnshareArgs),
    /// Internal: the re-executed RUN sandbox helper.
    #[command(name = "__sandbox-helper", hide = true)]
    SandboxHelper,
    /// Internal: drive the sandbox from tests.
    #[command(name = "__sandbox-test", hide = true)]
    SandboxTest(Box<sandbox_debug::SandboxTestArgs>),
}

/// Parses the command line, runs it, and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    init_logging(&cli.global.log_level);
    match run(cli) {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Add(args) => copy::run(&cli.global, args, true),
        Command::Bud(args) => bud::run(&cli.global, *args),
        Command::Cache(args) => prune::run_cache(&cli.global, args),
        Command::Commit(args) => commit::run(&cli.global, args),
        Command::Config(args) => config::run(&cli.global, *args),
        Command::Containers(args) => containers::run(&cli.global, args),
        Command::Copy(args) => copy::run(&cli.global, args, false),
        Command::From(args) => from::run(&cli.global, args),
        Command::Manifest(args) => manifest::run(&cli.global, args),
        Command::Mount(args) => mount::run(&cli.global, args),
        Command::Rename(args) => rename::run(&cli.global, args),
        Command::Rm(args) => rm::run(&cli.global, args),
        Command::Run(args) => run::run(&cli.global, args),
        Command::Umount(args) => umount::run(&cli.global, args),
        Command::Completion(args) => completion::run(args),
        Command::Prune(args) => prune::run(&cli.global, args),
        Command::History(args) => history::run(&cli.global, args),
        Command::Images(args) => images::run(&cli.global, args),
        Command::Import(args) => import::run(&cli.global, args),
        Command::Inspect(args) => inspect::run(&cli.global, args),
        Command::Parse(args) => parse::run(args),
        Command::Login(args) => login::run(args),
        Command::Logout(args) => logout::run(args),
        Command::Pull(args) => pull::run(&cli.global, args),
        Command::Push(args) => push::run(&cli.global, args),
        Command::Rmi(args) => rmi::run(&cli.global, args),
        Command::Tag(args) => tag::run(&cli.global, args),
        Command::Unshare(args) => unshare::run(args),
        Command::SandboxHelper => Ok(crate::sandbox::helper_main()),
        Command::SandboxTest(args) => sandbox_debug::run_test(*args),
    }
}

fn init_logging(level: &str) {
    let _ = env_logger::Builder::new()
        .parse_filters(level)
        .format_timestamp(None)
        .try_init();
}

/// A command line clap refused exits 125, as buildah's own errors do (a
/// script's `rc -eq 125` check must not see clap's 2); `--help` and
/// `--version` print to stdout and exit 0.
fn usage_error(err: &clap::Error) -> i32 {
    // Printing can only fail on a closed stream; the exit code still says it.
    let _ = err.print();
    if err.use_stderr() {
        125
    } else {
        0
    }
}

/// Prints an error chain once, in one place, and picks the exit code.
fn report(err: &anyhow::Error) -> i32 {
    // A closed pipe (`rbuild images | head`) is not a failure.
    if let Some(io) = err.root_cause().downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return 0;
        }
    }
    let mut message = format!("Error: {err}");
    // Many errors already quote their cause in their own text: show each
    // piece of the chain once.
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
    }
    eprintln!("{message}");
    err.chain()
        .find_map(|c| c.downcast_ref::<crate::build::BuildError>())
        .and_then(crate::build::BuildError::run_exit_status)
        .unwrap_or(125)
}
