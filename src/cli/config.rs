//! `rbuild config [flags] CONTAINER`: edits the image config the next
//! commit of the container starts from.

use super::GlobalOptions;
use crate::container::{ConfigEdit, WorkingContainer};

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The working container.
    pub container: String,
    /// Default command (JSON array for exec form, else run by /bin/sh -c).
    #[arg(long)]
    pub cmd: Option<String>,
    /// Entrypoint (JSON array for exec form, else run by /bin/sh -c).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Environment variable KEY=VALUE, or KEY- to remove it.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Label KEY=VALUE, or KEY- to remove it.
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Manifest annotation KEY=VALUE, or KEY- to remove it.
    #[arg(short, long)]
    pub annotation: Vec<String>,
    /// Exposed port (PORT[/PROTO]), or PORT- to remove it.
    #[arg(short, long)]
    pub port: Vec<String>,
    /// Volume path, or PATH- to remove it.
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Default user.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Default working directory.
    #[arg(long)]
    pub workingdir: Option<String>,
    /// Image author.
    #[arg(long)]
    pub author: Option<String>,
    /// History text of the next committed layer.
    #[arg(long)]
    pub created_by: Option<String>,
    /// Comment of the next committed layer.
    #[arg(long)]
    pub comment: Option<String>,
    /// Shell for shell-form commands (JSON array or words).
    #[arg(long)]
    pub shell: Option<String>,
    /// Stop signal.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Health check command (`CMD-SHELL cmd`, a JSON array, or NONE).
    #[arg(long)]
    pub healthcheck: Option<String>,
    #[arg(long)]
    pub healthcheck_interval: Option<String>,
    #[arg(long)]
    pub healthcheck_timeout: Option<String>,
    #[arg(long)]
    pub healthcheck_start_period: Option<String>,
    #[arg(long)]
    pub healthcheck_retries: Option<i64>,
    /// ONBUILD trigger, repeatable.
    #[arg(long)]
    pub onbuild: Vec<String>,
    /// Architecture of the image.
    #[arg(long)]
    pub arch: Option<String>,
    /// Operating system of the image.
    #[arg(long)]
    pub os: Option<String>,
    /// Architecture variant of the image (`v7`, `v8`).
    #[arg(long)]
    pub variant: Option<String>,
    /// OS version of the image.
    #[arg(long)]
    pub os_version: Option<String>,
    /// OS feature to add, or FEATURE- to remove it; repeatable.
    #[arg(long)]
    pub os_feature: Vec<String>,
    /// Remove this label (inherited ones too); repeatable.
    #[arg(long, value_name = "KEY")]
    pub unsetlabel: Vec<String>,
    /// Remove this annotation; repeatable.
    #[arg(long, value_name = "KEY")]
    pub unsetannotation: Vec<String>,
}

pub fn run(global: &GlobalOptions, args: ConfigArgs) -> anyhow::Result<i32> {
    let access = super::store_access::open(global)?;
    let mut wc = WorkingContainer::open(&access.store, &args.container)?;
    let edit = ConfigEdit {
        cmd: args.cmd,
        entrypoint: args.entrypoint,
        env: args.env,
        labels: args.label,
        annotations: args.annotation,
        ports: args.port,
        volumes: args.volume,
        user: args.user,
        workingdir: args.workingdir,
        author: args.author,
        created_by: args.created_by,
        comment: args.comment,
        shell: args.shell,
        stop_signal: args.stop_signal,
        healthcheck: args.healthcheck,
        healthcheck_interval: args.healthcheck_interval,
        healthcheck_timeout: args.healthcheck_timeout,
        healthcheck_start_period: args.healthcheck_start_period,
        healthcheck_retries: args.healthcheck_retries,
        onbuild: args.onbuild,
        arch: args.arch,
        os: args.os,
        variant: args.variant,
        os_version: args.os_version,
        os_features: args.os_feature,
        unset_labels: args.unsetlabel,
        unset_annotations: args.unsetannotation,
    };
    edit.apply(&mut wc.state)?;
    wc.save(&access.store)?;
    Ok(0)
}
