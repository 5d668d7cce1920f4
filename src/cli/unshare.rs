//! `rbuild unshare [CMD...]`: run a command inside rbuild's user namespace
//! (as `buildah unshare`), e.g. to inspect or delete sub-id-owned files in
//! the store. As root it just runs the command.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::Context;

use crate::sandbox;

/// Arguments of `rbuild unshare`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnshareArgs {
    /// Command and arguments to run (default: $SHELL, else /bin/sh).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// Enters the namespace and replaces rbuild with the command.
pub fn run(args: UnshareArgs) -> anyhow::Result<i32> {
    sandbox::enter_user_namespace().context("entering rbuild's user namespace")?;
    let argv = if args.command.is_empty() {
        vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_string())]
    } else {
        args.command
    };
    let err = Command::new(&argv[0])
        .args(&argv[1..])
        .env("RBUILD_UNSHARE", "1")
        .exec();
    Err(err).with_context(|| format!("running {:?}", argv[0]))
}
