//! `rbuild pull IMAGE`: fetch an image from a registry into the store, plus
//! the registry flags (`--tls-verify`, `--cert-dir`, `--creds`,
//! `--authfile`, `--max-parallel`) that `push`, `login` and `bud` share.

use std::path::PathBuf;

use anyhow::Context;

use super::GlobalOptions;
use crate::image::Platform;
use crate::registry::pull::{pull, pull_with_policy, resolve_name};
use crate::registry::{
    parse_platform, AuthConfig, Credentials, PullOptions, PullPolicy, RegistryOptions,
};

/// Flags for talking to a registry.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Require HTTPS and verify certificates (`--tls-verify=false` also allows plain HTTP).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// A directory of certificates (*.crt CAs, *.cert/*.key client pair).
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Credentials as USER:PASSWORD.
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// The auth file (default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Blobs transferred at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub max_parallel: usize,
    /// Upload blobs larger than this in PATCH chunks of this many bytes
    /// (default: one monolithic upload).
    #[arg(long, value_name = "BYTES")]
    pub upload_chunk_size: Option<u64>,
    /// Retries on 429, 5xx and dropped connections.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retry: u32,
}

impl RegistryArgs {
    pub fn options(&self) -> anyhow::Result<RegistryOptions> {
        let creds = self.creds.as_deref().map(Credentials::parse).transpose()?;
        Ok(RegistryOptions {
            tls_verify: self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            auth: AuthConfig::new(creds, self.authfile.clone()),
            max_parallel: self.max_parallel.max(1),
            retries: self.retry,
            chunk_size: self.upload_chunk_size.filter(|c| *c > 0),
            ..RegistryOptions::default()
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image: [REGISTRY/]NAME[:TAG|@DIGEST], optionally with docker://.
    pub image: String,
    /// Pull every tag of the repository.
    #[arg(short, long)]
    pub all_tags: bool,
    /// Pull every platform of an index and store it as a manifest list of
    /// that name (skopeo's `copy --all`); prints the list's ID.
    #[arg(long, conflicts_with_all = ["all_tags", "platform"])]
    pub all_platforms: bool,
    /// The platform to pick from an index: OS/ARCH[/VARIANT] (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// When to contact the registry (buildah's default: missing).
    #[arg(long, default_value = "missing", value_parser = ["always", "missing", "never", "newer", "ifmissing", "ifnewer"])]
    pub policy: String,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The pull options for a platform string and registry flags.
pub fn pull_options(
    registry: &RegistryArgs,
    platform: Option<&str>,
) -> anyhow::Result<PullOptions> {
    let platform = match platform {
        Some(p) => parse_platform(p).map_err(anyhow::Error::msg)?,
        None => Platform::host(),
    };
    Ok(PullOptions {
        registry: registry.options()?,
        platform,
        ..PullOptions::default()
    })
}

pub fn run(global: &GlobalOptions, args: PullArgs) -> anyhow::Result<i32> {
    let image = args
        .image
        .strip_prefix("docker://")
        .unwrap_or(&args.image)
        .to_string();
    let policy: PullPolicy = args.policy.parse().map_err(anyhow::Error::msg)?;
    let opts = pull_options(&args.registry, args.platform.as_deref())?;
    let access = super::store_access::open(global)?;
    let store = &access.store;
    let lease = store.lease()?;
    let printer = crate::registry::pull::stderr_printer(args.quiet);
    if args.all_tags {
        let conf = crate::registry::conf::RegistriesConf::load()?;
        let reference = resolve_name(&image, &conf)?
            .into_iter()
            .next()
            .context("no registry to pull from")?;
        let registry = reference.registry.clone().unwrap_or_default();
        let client = crate::registry::Client::connect(&registry, &opts.registry)?;
        let tags = client.list_tags(&reference.repository)?;
        for tag in tags {
            let name = format!("{registry}/{}:{tag}", reference.repository);
            let pulled = pull(store, &lease, &name, &opts, &printer)
                .with_context(|| format!("pulling {name}"))?;
            println!("{}", pulled.record.id.hex());
        }
        return Ok(0);
    }
    if args.all_platforms {
        let pulled = crate::registry::pull_all_platforms(store, &lease, &image, &opts, &printer)
            .with_context(|| format!("pulling every platform of {image}"))?;
        match pulled {
            crate::registry::PulledAll::List { list, .. } => println!("{}", list.id.hex()),
            crate::registry::PulledAll::Image(p) => println!("{}", p.record.id.hex()),
        }
        return Ok(0);
    }
    let record = pull_with_policy(store, &lease, &image, policy, &opts, &printer)
        .with_context(|| format!("pulling {image}"))?;
    println!("{}", record.id.hex());
    Ok(0)
}
