//! The image config (what `docker inspect` calls `Config`, `RootFS`,
//! `History`) as one typed value, its OCI and docker serialisations, and the
//! builder the executor drives instruction by instruction.
//!
//! [`Image`] is the OCI image config with docker's extensions (`Healthcheck`,
//! `OnBuild`, `Shell`), as BuildKit writes it; field order and omitted empty
//! fields match Go's structs so the bytes, and so the image ID, match what
//! docker writes for the same content. [`Image::to_docker_json`] gives the
//! docker schema2 config (`container_config`, `null` for unset lists) as
//! buildah writes it for `--format docker`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::gojson::{self, Empty, Timestamp};
use crate::digest::Digest;

/// Why a config value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid port {spec:?} in EXPOSE: {why}")]
    InvalidPort { spec: String, why: &'static str },
    #[error("image config is not valid JSON at line {line}, column {column}: {message}")]
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
}

/// Go writes a nil slice or map as `null`; read it as empty.
fn nullable<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `HEALTHCHECK`: durations in nanoseconds, as Go's `time.Duration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// `["NONE"]` disables a base image's check; `["CMD", …]` or
    /// `["CMD-SHELL", "cmd"]` runs one.
    #[serde(
        rename = "Test",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(rename = "Interval", default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(rename = "Timeout", default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(rename = "StartPeriod", default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(rename = "StartInterval", default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(rename = "Retries", default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

/// The runtime defaults of a container made from the image (OCI
/// `ImageConfig` plus docker's extension fields, in Go's field order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "User", default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        rename = "ExposedPorts",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(
        rename = "Env",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(
        rename = "Entrypoint",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub entrypoint: Vec<String>,
    #[serde(
        rename = "Cmd",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cmd: Vec<String>,
    #[serde(
        rename = "Volumes",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(
        rename = "Labels",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(rename = "ArgsEscaped", default, skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<HealthConfig>,
    #[serde(
        rename = "OnBuild",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub on_build: Vec<String>,
    #[serde(
        rename = "Shell",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub shell: Vec<String>,
}

/// `rootfs`: the layers' uncompressed digests, base first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> RootFs {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One build step, in the OCI field order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// A step that changed only metadata and made no layer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

/// What an image runs on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl Platform {
    /// The platform this binary runs on, in Go's `GOARCH` names.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", ""),
            "aarch64" => ("arm64", "v8"),
            "arm" => ("arm", "v7"),
            "x86" => ("386", ""),
            "powerpc64" => ("ppc64le", ""),
            "s390x" => ("s390x", ""),
            "riscv64" => ("riscv64", ""),
            other => (other, ""),
        };
        Platform {
            architecture: architecture.to_string(),
            os: "linux".to_string(),
            variant: variant.to_string(),
            ..Platform::default()
        }
    }
}

/// An image config: OCI `Image` with docker's config extensions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(default)]
    pub config: ContainerConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
}

impl Image {
    /// Reads an OCI or docker schema2 config (docker-only fields are ignored).
    pub fn from_json(bytes: &[u8]) -> Result<Image, ConfigError> {
        serde_json::from_slice(bytes).map_err(|e| ConfigError::Parse {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
            variant: self.variant.clone(),
        }
    }

    /// The OCI config bytes (`application/vnd.oci.image.config.v1+json`).
    pub fn to_oci_json(&self) -> Vec<u8> {
        gojson::to_vec(self).expect("an image config always serialises")
    }

    /// The docker schema2 config bytes, as buildah writes them.
    pub fn to_docker_json(&self) -> Vec<u8> {
        gojson::to_vec(&self.docker_view()).expect("a docker config always serialises")
    }

    /// The docker schema2 config as a serialisable value.
    pub fn docker_view(&self) -> DockerImage<'_> {
        DockerImage::from(self)
    }

    /// Non-empty layers per history entry must match `rootfs.diff_ids`.
    pub fn layer_count_matches_history(&self) -> bool {
        self.history.is_empty()
            || self.history.iter().filter(|h| !h.empty_layer).count() == self.rootfs.diff_ids.len()
    }
}

/// The digest of config bytes is the image ID.
pub fn image_id(config_bytes: &[u8]) -> Digest {
    Digest::of(config_bytes)
}

// ---- docker schema2 config, in the field order of docker's V2Image ----

/// The docker schema2 view of an [`Image`], borrowed (for `inspect`).
#[derive(Serialize)]
pub struct DockerImage<'a> {
    created: Timestamp,
    container_config: DockerConfig<'a>,
    #[serde(skip_serializing_if = "str::is_empty")]
    author: &'a str,
    config: DockerConfig<'a>,
    #[serde(skip_serializing_if = "str::is_empty")]
    architecture: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    variant: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    os: &'a str,
    rootfs: DockerRootFs<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    history: Vec<DockerHistory<'a>>,
    #[serde(rename = "os.version", skip_serializing_if = "str::is_empty")]
    os_version: &'a str,
    #[serde(rename = "os.features", skip_serializing_if = "<[String]>::is_empty")]
    os_features: &'a [String],
}

#[derive(Serialize)]
struct DockerRootFs<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "<[Digest]>::is_empty")]
    diff_ids: &'a [Digest],
}

#[derive(Serialize)]
struct DockerHistory<'a> {
    created: Timestamp,
    #[serde(skip_serializing_if = "str::is_empty")]
    author: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    created_by: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    comment: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    empty_layer: bool,
}

/// Go's nil slice or map, written `null`.
fn none_if_empty<T, C: IntoIterator<Item = T> + Clone>(c: &C) -> Option<C> {
    c.clone().into_iter().next().map(|_| c.clone())
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerConfig<'a> {
    hostname: &'a str,
    domainname: &'a str,
    user: &'a str,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    exposed_ports: &'a BTreeMap<String, Empty>,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<&'a HealthConfig>,
    #[serde(skip_serializing_if = "is_false")]
    args_escaped: bool,
    image: &'a str,
    volumes: Option<BTreeMap<String, Empty>>,
    working_dir: &'a str,
    entrypoint: Option<Vec<String>>,
    on_build: Option<Vec<String>>,
    labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    stop_signal: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    shell: &'a [String],
}

impl<'a> From<&'a ContainerConfig> for DockerConfig<'a> {
    fn from(c: &'a ContainerConfig) -> DockerConfig<'a> {
        DockerConfig {
            hostname: "",
            domainname: "",
            user: &c.user,
            attach_stdin: false,
            attach_stdout: false,
            attach_stderr: false,
            exposed_ports: &c.exposed_ports,
            tty: false,
            open_stdin: false,
            stdin_once: false,
            env: none_if_empty(&c.env),
            cmd: none_if_empty(&c.cmd),
            healthcheck: c.healthcheck.as_ref(),
            args_escaped: c.args_escaped,
            image: "",
            volumes: none_if_empty(&c.volumes),
            working_dir: &c.working_dir,
            entrypoint: none_if_empty(&c.entrypoint),
            on_build: none_if_empty(&c.on_build),
            labels: none_if_empty(&c.labels),
            stop_signal: &c.stop_signal,
            shell: &c.shell,
        }
    }
}

impl<'a> From<&'a Image> for DockerImage<'a> {
    fn from(image: &'a Image) -> DockerImage<'a> {
        // Go's zero time, which docker writes for a missing `created`.
        let zero = || Timestamp::parse("0001-01-01T00:00:00Z").expect("constant parses");
        DockerImage {
            created: image.created.unwrap_or_else(zero),
            container_config: DockerConfig::from(&image.config),
            author: &image.author,
            config: DockerConfig::from(&image.config),
            architecture: &image.architecture,
            variant: &image.variant,
            os: &image.os,
            rootfs: DockerRootFs {
                kind: &image.rootfs.kind,
                diff_ids: &image.rootfs.diff_ids,
            },
            history: image
                .history
                .iter()
                .map(|h| DockerHistory {
                    created: h.created.unwrap_or_else(zero),
                    author: &h.author,
                    created_by: &h.created_by,
                    comment: &h.comment,
                    empty_layer: h.empty_layer,
                })
                .collect(),
            os_version: &image.os_version,
            os_features: &image.os_features,
        }
    }
}

// ---- the builder ----

/// Drives an [`Image`] through a build, one instruction at a time, with
/// docker's rules for each (ENV replaces in place, EXPOSE defaults to tcp,
/// WORKDIR is relative to the previous one, ENTRYPOINT drops an inherited
/// CMD).
#[derive(Clone, Debug)]
pub struct ImageConfigBuilder {
    image: Image,
    /// CMD was set by this build, not inherited from the base image.
    cmd_set_here: bool,
}

impl ImageConfigBuilder {
    /// `FROM scratch`: an empty config for `platform`.
    pub fn scratch(platform: Platform) -> ImageConfigBuilder {
        let mut builder = ImageConfigBuilder {
            image: Image::default(),
            cmd_set_here: false,
        };
        builder.set_platform(platform);
        builder
    }

    /// `FROM base`: everything inherited, including history and layers.
    pub fn from_base(base: Image) -> ImageConfigBuilder {
        ImageConfigBuilder {
            image: base,
            cmd_set_here: false,
        }
    }

    /// The config as it stands.
    pub fn image(&self) -> &Image {
        &self.image
    }

    pub fn build(self) -> Image {
        self.image
    }

    /// `ENV key=value`: replaces an existing `key` in place, else appends.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        let env = &mut self.image.config.env;
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }

    /// The value of `key` in the config's environment.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.image
            .config
            .env
            .iter()
            .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    pub fn set_label(&mut self, key: &str, value: &str) {
        self.image
            .config
            .labels
            .insert(key.to_string(), value.to_string());
    }

    pub fn remove_label(&mut self, key: &str) {
        self.image.config.labels.remove(key);
    }

    /// `EXPOSE spec`: `80`, `80/udp`, `8000-8002/tcp` (a range adds each port).
    pub fn expose(&mut self, spec: &str) -> Result<(), ConfigError> {
        for port in parse_port_spec(spec)? {
            self.image.config.exposed_ports.insert(port, Empty {});
        }
        Ok(())
    }

    pub fn add_volume(&mut self, path: &str) {
        self.image.config.volumes.insert(path.to_string(), Empty {});
    }

    pub fn set_user(&mut self, user: &str) {
        self.image.config.user = user.to_string();
    }

    /// `WORKDIR dir`: a relative `dir` joins the current one; the result is
    /// cleaned (`.`/`..` resolved lexically, as Go's `path.Clean`).
    pub fn set_workdir(&mut self, dir: &str) {
        let joined = if dir.starts_with('/') {
            dir.to_string()
        } else {
            format!("/{}/{}", self.image.config.working_dir, dir)
        };
        self.image.config.working_dir = clean_path(&joined);
    }

    pub fn set_cmd(&mut self, cmd: Vec<String>) {
        self.image.config.cmd = cmd;
        self.cmd_set_here = true;
    }

    /// Docker's rule: ENTRYPOINT resets a CMD inherited from the base image,
    /// but keeps one set earlier in this build.
    pub fn set_entrypoint(&mut self, entrypoint: Vec<String>) {
        self.image.config.entrypoint = entrypoint;
        if !self.cmd_set_here {
            self.image.config.cmd.clear();
        }
    }

    pub fn set_shell(&mut self, shell: Vec<String>) {
        self.image.config.shell = shell;
    }

    pub fn set_stop_signal(&mut self, signal: &str) {
        self.image.config.stop_signal = signal.to_string();
    }

    /// `HEALTHCHECK NONE` is `test: ["NONE"]`.
    pub fn set_healthcheck(&mut self, check: HealthConfig) {
        self.image.config.healthcheck = Some(check);
    }

    /// `ONBUILD instr`: kept verbatim for images built FROM this one.
    pub fn add_onbuild(&mut self, trigger: &str) {
        self.image.config.on_build.push(trigger.to_string());
    }

    /// Triggers are consumed by the child build (docker clears them).
    pub fn take_onbuild(&mut self) -> Vec<String> {
        std::mem::take(&mut self.image.config.on_build)
    }

    pub fn set_platform(&mut self, platform: Platform) {
        self.image.architecture = platform.architecture;
        self.image.os = platform.os;
        self.image.os_version = platform.os_version;
        self.image.os_features = platform.os_features;
        self.image.variant = platform.variant;
    }

    /// `MAINTAINER` / `--author`.
    pub fn set_author(&mut self, author: &str) {
        self.image.author = author.to_string();
    }

    pub fn set_created(&mut self, created: Timestamp) {
        self.image.created = Some(created);
    }

    /// A metadata-only step: a history entry marked `empty_layer`.
    pub fn add_empty_history(&mut self, created: Timestamp, created_by: &str) {
        self.image.history.push(History {
            created: Some(created),
            created_by: created_by.to_string(),
            author: self.image.author.clone(),
            empty_layer: true,
            ..History::default()
        });
    }

    /// A step that made a layer: its diff ID and its history entry.
    pub fn add_layer(&mut self, diff_id: Digest, created: Timestamp, created_by: &str) {
        self.image.rootfs.diff_ids.push(diff_id);
        self.image.history.push(History {
            created: Some(created),
            created_by: created_by.to_string(),
            author: self.image.author.clone(),
            ..History::default()
        });
    }

    /// Any history entry, as given (e.g. a comment on the first step).
    pub fn push_history(&mut self, entry: History) {
        self.image.history.push(entry);
    }

    /// Clamps every timestamp to `epoch` (`SOURCE_DATE_EPOCH` / `--timestamp`).
    pub fn clamp_timestamps(&mut self, epoch: Timestamp) {
        self.image.created = Some(epoch);
        for h in &mut self.image.history {
            if h.created.is_none_or(|c| c > epoch) {
                h.created = Some(epoch);
            }
        }
    }
}

/// Expands one EXPOSE word into `port/proto` keys.
pub fn parse_port_spec(spec: &str) -> Result<Vec<String>, ConfigError> {
    let bad = |why| ConfigError::InvalidPort {
        spec: spec.to_string(),
        why,
    };
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad("the protocol must be tcp, udp or sctp"));
    }
    let number = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| bad("a port is a number from 0 to 65535"))
    };
    let (first, last) = match ports.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let p = number(ports)?;
            (p, p)
        }
    };
    if last < first {
        return Err(bad("the end of a port range is below its start"));
    }
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
}

/// Go's `path.Clean` for absolute paths.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether `signal` names a signal as docker's `STOPSIGNAL` accepts it: a
/// positive number, or a name with or without `SIG` in any case (`SIGTERM`,
/// `term`, `RTMIN+3`).
pub fn is_valid_stop_signal(signal: &str) -> bool {
    if let Ok(n) = signal.parse::<u32>() {
        return n > 0;
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    const NAMES: [&str; 32] = [
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH",
    ];
    if NAMES.contains(&name) || name == "XCPU" || name == "XFSZ" || name == "UNUSED" {
        return true;
    }
    let offset = |rest: &str, sign: char| -> bool {
        rest.is_empty()
            || rest
                .strip_prefix(sign)
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| (1..=15).contains(&n))
    };
    match (name.strip_prefix("RTMIN"), name.strip_prefix("RTMAX")) {
        (Some(rest), _) => offset(rest, '+'),
        (_, Some(rest)) => offset(rest, '-'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stop_signals_as_docker_accepts_them() {
        for ok in [
            "SIGTERM",
            "term",
            "9",
            "SIGRTMIN+3",
            "RTMAX-1",
            "SIGRTMIN",
            "sigusr1",
        ] {
            assert!(is_valid_stop_signal(ok), "{ok}");
        }
        for bad in ["SIGFOO", "0", "", "RTMIN+16", "RTMIN-1", "-9", "SIG"] {
            assert!(!is_valid_stop_signal(bad), "{bad}");
        }
    }

    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn amd64() -> Platform {
        Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Platform::default()
        }
    }

    #[test]
    fn scratch_config_serialises_like_go() {
        let mut b = ImageConfigBuilder::scratch(amd64());
        b.set_created(ts("2024-01-01T00:00:00Z"));
        let json = String::from_utf8(b.build().to_oci_json()).unwrap();
        assert_eq!(
            json,
            r#"{"created":"2024-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#
        );
    }

    #[test]
    fn full_config_field_order_and_values() {
        let mut b = ImageConfigBuilder::scratch(amd64());
        let t = ts("2024-01-01T00:00:00Z");
        b.set_created(t);
        b.set_env("PATH", "/bin");
        b.set_env("A", "1");
        b.set_env("PATH", "/usr/bin:/bin");
        b.set_label("b", "2");
        b.set_label("a", "<1>");
        b.expose("80").unwrap();
        b.expose("53/UDP").unwrap();
        b.add_volume("/data");
        b.set_workdir("/app");
        b.set_workdir("sub/../x");
        b.set_user("app");
        b.set_cmd(vec!["run".into()]);
        b.set_stop_signal("SIGTERM");
        b.set_healthcheck(HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 30_000_000_000,
            ..HealthConfig::default()
        });
        b.add_onbuild("RUN echo hi");
        b.set_shell(vec!["/bin/bash".into(), "-c".into()]);
        b.add_empty_history(t, "/bin/sh -c #(nop) ENV A=1");
        let diff = Digest::of(b"layer");
        b.add_layer(diff, t, "/bin/sh -c #(nop) COPY file:abc in / ");
        let image = b.build();
        assert!(image.layer_count_matches_history());
        let json = String::from_utf8(image.to_oci_json()).unwrap();
        let expected = format!(
            concat!(
                r#"{{"created":"2024-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{{"#,
                r#""User":"app","ExposedPorts":{{"53/udp":{{}},"80/tcp":{{}}}},"Env":["PATH=/usr/bin:/bin","A=1"],"#,
                r#""Cmd":["run"],"Volumes":{{"/data":{{}}}},"WorkingDir":"/app/x","Labels":{{"a":"\u003c1\u003e","b":"2"}},"#,
                r#""StopSignal":"SIGTERM","Healthcheck":{{"Test":["CMD-SHELL","true"],"Interval":30000000000}},"#,
                r#""OnBuild":["RUN echo hi"],"Shell":["/bin/bash","-c"]}},"#,
                r#""rootfs":{{"type":"layers","diff_ids":["{diff}"]}},"#,
                r#""history":[{{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) ENV A=1","empty_layer":true}},"#,
                r#"{{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) COPY file:abc in / "}}]}}"#
            ),
            diff = diff
        );
        assert_eq!(json, expected);
        // Reading it back gives the same value, so the same bytes.
        let back = Image::from_json(json.as_bytes()).unwrap();
        assert_eq!(back, image);
        assert_eq!(back.to_oci_json(), json.as_bytes());
    }

    #[test]
    fn docker_config_has_container_config_and_nulls() {
        let mut b = ImageConfigBuilder::scratch(amd64());
        let t = ts("2024-01-01T00:00:00Z");
        b.set_created(t);
        b.set_cmd(vec!["sh".into()]);
        b.add_layer(Digest::of(b"x"), t, "/bin/sh -c #(nop) ADD file:x in / ");
        let json = String::from_utf8(b.build().to_docker_json()).unwrap();
        let cfg = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["sh"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#;
        let expected = format!(
            r#"{{"created":"2024-01-01T00:00:00Z","container_config":{cfg},"config":{cfg},"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}},"history":[{{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) ADD file:x in / "}}]}}"#,
            Digest::of(b"x")
        );
        assert_eq!(json, expected);
        // A docker config reads back into the same typed image.
        let back = Image::from_json(json.as_bytes()).unwrap();
        assert_eq!(back.config.cmd, vec!["sh"]);
        assert_eq!(back.rootfs.diff_ids.len(), 1);
    }

    #[test]
    fn entrypoint_resets_only_inherited_cmd() {
        let mut base = ImageConfigBuilder::scratch(amd64());
        base.set_cmd(vec!["sh".into()]);
        let mut child = ImageConfigBuilder::from_base(base.build());
        child.set_entrypoint(vec!["/app".into()]);
        assert!(child.image().config.cmd.is_empty());

        let mut own = ImageConfigBuilder::scratch(amd64());
        own.set_cmd(vec!["--help".into()]);
        own.set_entrypoint(vec!["/app".into()]);
        assert_eq!(own.image().config.cmd, vec!["--help"]);
    }

    #[test]
    fn expose_rules() {
        assert_eq!(parse_port_spec("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(
            parse_port_spec("7000-7002/udp").unwrap(),
            vec!["7000/udp", "7001/udp", "7002/udp"]
        );
        assert!(matches!(
            parse_port_spec("80/http"),
            Err(ConfigError::InvalidPort { .. })
        ));
        assert!(parse_port_spec("99999").is_err());
        assert!(parse_port_spec("9-1").is_err());
        assert!(parse_port_spec("").is_err());
    }

    #[test]
    fn env_and_workdir_rules() {
        let mut b = ImageConfigBuilder::scratch(amd64());
        b.set_env("A", "x=y");
        assert_eq!(b.env("A"), Some("x=y"));
        b.set_env("A", "z");
        assert_eq!(b.image().config.env, vec!["A=z"]);
        b.set_workdir("rel");
        assert_eq!(b.image().config.working_dir, "/rel");
        b.set_workdir("../../..");
        assert_eq!(b.image().config.working_dir, "/");
    }

    #[test]
    fn clamps_timestamps() {
        let mut b = ImageConfigBuilder::scratch(amd64());
        b.add_empty_history(ts("2030-01-01T00:00:00Z"), "x");
        b.add_empty_history(ts("1990-01-01T00:00:00Z"), "y");
        b.clamp_timestamps(ts("2000-01-01T00:00:00Z"));
        let img = b.build();
        assert_eq!(img.created, Some(ts("2000-01-01T00:00:00Z")));
        assert_eq!(img.history[0].created, Some(ts("2000-01-01T00:00:00Z")));
        assert_eq!(img.history[1].created, Some(ts("1990-01-01T00:00:00Z")));
    }

    #[test]
    fn bad_json_says_where() {
        let err = Image::from_json(b"{\n \"os\": 3}").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 2, .. }), "{err}");
    }
}
