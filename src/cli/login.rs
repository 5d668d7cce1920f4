//! `rbuild login [-u USER] [-p PASS | --password-stdin] REGISTRY`: check
//! the credentials against the registry, then save them to the auth file
//! (mode 0600) where `pull`, `push`, podman and skopeo find them.

use std::io::{BufRead, Write};

use anyhow::{bail, Context};

use super::pull::RegistryArgs;
use crate::registry::auth::save;
use crate::registry::{AuthConfig, Client, Credentials};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry (host[:port]), optionally with a repository path.
    pub registry: String,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Only report whether credentials are stored for the registry.
    #[arg(long)]
    pub get_login: bool,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

/// `docker://host/…` or `https://host/…` → `host/…`.
pub fn registry_key(input: &str) -> String {
    let s = input
        .strip_prefix("docker://")
        .or_else(|| input.strip_prefix("https://"))
        .or_else(|| input.strip_prefix("http://"))
        .unwrap_or(input);
    s.trim_end_matches('/').to_string()
}

pub fn run(args: LoginArgs) -> anyhow::Result<i32> {
    let key = registry_key(&args.registry);
    let host = key.split('/').next().unwrap_or(&key).to_string();
    let auth = AuthConfig::new(None, args.registry_args.authfile.clone());
    if args.get_login {
        let repo = key.split_once('/').map_or("", |(_, r)| r);
        match auth.lookup(&host, repo)? {
            Some(c) => {
                println!("{}", c.username);
                return Ok(0);
            }
            None => bail!("not logged into {key}"),
        }
    }
    // No user or password given: stored credentials that still work are
    // a login already, as buildah reports it.
    if args.username.is_none() && args.password.is_none() && !args.password_stdin {
        let repo = key.split_once('/').map_or("", |(_, r)| r);
        if let Some(stored) = auth.lookup(&host, repo)? {
            println!("Authenticating with existing credentials for {key}");
            let mut opts = args.registry_args.options()?;
            opts.auth = AuthConfig::new(Some(stored), None);
            let valid = Client::connect(&host, &opts).and_then(|c| c.verify_login());
            match valid {
                Ok(()) => {
                    println!("Existing credentials are valid. Already logged in to {key}");
                    return Ok(0);
                }
                Err(crate::registry::RegistryError::Unauthorized { .. }) => {
                    eprintln!("Existing credentials are invalid, please enter valid username and password")
                }
                Err(e) => eprintln!("Existing credentials could not be checked ({e}); please enter username and password"),
            }
        }
    }
    let username = match args.username.clone() {
        Some(u) => u,
        None => {
            eprint!("Username: ");
            std::io::stderr().flush().ok();
            read_line().context("reading the user name")?
        }
    };
    let password = if args.password_stdin {
        read_line().context("reading the password from stdin")?
    } else if let Some(p) = args.password.clone() {
        p
    } else {
        bail!("no password: pass --password-stdin (recommended) or --password");
    };
    let creds = Credentials::basic(username, password);
    let mut opts = args.registry_args.options()?;
    opts.auth = AuthConfig::new(Some(creds.clone()), None);
    let client = Client::connect(&host, &opts).with_context(|| format!("contacting {host}"))?;
    match client.verify_login() {
        Ok(()) => {}
        // The registry refused these credentials: say so, as buildah does,
        // rather than the generic 401 advice to log in.
        Err(crate::registry::RegistryError::Unauthorized { url, .. }) => {
            bail!("logging into {host:?}: invalid username/password (the registry at {url} refused them)")
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("logging in to {host}"))),
    }
    let path = auth.write_path();
    save(&path, &key, &creds)
        .with_context(|| format!("saving credentials to {}", path.display()))?;
    println!("Login Succeeded!");
    Ok(0)
}

fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
