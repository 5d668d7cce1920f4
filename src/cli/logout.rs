//! `rbuild logout REGISTRY` / `rbuild logout --all`: remove saved credentials
//! from the auth file.

use anyhow::{bail, Context};

use super::login::registry_key;
use crate::registry::auth::remove;
use crate::registry::AuthConfig;

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry to forget.
    pub registry: Option<String>,
    /// Forget every registry.
    #[arg(short, long)]
    pub all: bool,
    /// The auth file (default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<std::path::PathBuf>,
}

pub fn run(args: LogoutArgs) -> anyhow::Result<i32> {
    let auth = AuthConfig::new(None, args.authfile.clone());
    let path = auth.write_path();
    match (&args.registry, args.all) {
        (_, true) => {
            remove(&path, None).with_context(|| format!("editing {}", path.display()))?;
            println!("Removed login credentials for all registries");
        }
        (Some(r), false) => {
            let key = registry_key(r);
            if !remove(&path, Some(&key)).with_context(|| format!("editing {}", path.display()))? {
                bail!("not logged into {key} (no entry in {})", path.display());
            }
            println!("Removed login credentials for {key}");
        }
        (None, false) => bail!("name a registry to log out of, or pass --all"),
    }
    Ok(0)
}
