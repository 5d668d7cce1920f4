//! `rbuild from [--name N] [--pull[=POLICY]] IMAGE|scratch`: makes a
//! working container (pulling the image when the policy says so) and prints
//! its name (`IMAGE-working-container`, `-1`, `-2`, … when taken).

use anyhow::Context;

use super::GlobalOptions;
use crate::container::WorkingContainer;

#[derive(Debug, clap::Args)]
pub struct FromArgs {
    /// The base image (name or ID), or `scratch`.
    pub image: String,
    /// Name of the working container (default: IMAGE-working-container).
    #[arg(long)]
    pub name: Option<String>,
    /// Pull policy: missing (default), never, always, newer; `--pull` alone
    /// means always.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "always",
          value_name = "POLICY",
          value_parser = ["missing", "never", "always", "newer", "true", "false", "ifmissing", "ifnewer"])]
    pub pull: Option<String>,
    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
    /// The platform OS/ARCH[/VARIANT] to take from a manifest list, and to
    /// pull (default: this host's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print nothing but the container name.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the new container's ID to this file.
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<std::path::PathBuf>,
    /// buildah's isolation kind for later `run`s; rbuild has one sandbox
    /// (see `rbuild run --isolation`), so every value means it.
    #[arg(long, value_name = "KIND", value_parser = ["oci", "chroot", "rootless"])]
    pub isolation: Option<String>,
}

pub fn run(global: &GlobalOptions, args: FromArgs) -> anyhow::Result<i32> {
    let policy: crate::registry::PullPolicy = args
        .pull
        .as_deref()
        .unwrap_or("missing")
        .parse()
        .map_err(anyhow::Error::msg)?;
    let access = super::store_access::open(global)?;
    let options = super::pull::pull_options(&args.registry, args.platform.as_deref())?;
    if !args.image.eq_ignore_ascii_case("scratch") {
        let lease = access.store.lease()?;
        let printer = crate::registry::pull::stderr_printer(args.quiet);
        crate::registry::pull_with_policy(
            &access.store,
            &lease,
            &args.image,
            policy,
            &options,
            &printer,
        )
        .with_context(|| format!("finding the image {:?}", args.image))?;
    }
    let wc = WorkingContainer::create_for(
        &access.store,
        &args.image,
        args.name.as_deref(),
        &options.platform,
    )?;
    if let Some(path) = &args.cidfile {
        std::fs::write(path, &wc.state.id).with_context(|| {
            format!("--cidfile: writing the container ID to {}", path.display())
        })?;
    }
    println!("{}", wc.name());
    Ok(0)
}
