//! RUN: the command in the sandbox over the stage's merged view, with its
//! `--mount`s (bind, cache, tmpfs, secret), network, user, workdir and a
//! clean environment. Nothing under a mount target reaches the layer.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::build::error::StepError;
use crate::build::executor::Executor;
use crate::build::plan::find_stage;
use crate::build::process_spec::process_spec;
use crate::build::request::{NetworkMode, SecretSource};
use crate::build::stage::StageState;
use crate::build::step::{StepResult, View};
use crate::containerfile::{Command, Heredoc, MountType, Run, RunMount};
use crate::image::created_by;
use crate::layer::rootfs::Rootfs;
use crate::sandbox::{MountKind, Network, RunSpec, SandboxMount};

/// Mounts of one RUN, with what must stay alive while it runs.
#[derive(Default)]
struct PreparedMounts {
    mounts: Vec<SandboxMount>,
    env: Vec<(String, String)>,
    views: Vec<View>,
    temp: Vec<tempfile::TempDir>,
    key_parts: Vec<String>,
}

/// How a RUN starts: its argv, its command line for history (the argv
/// joined by spaces, as docker records it), and for a heredoc
/// script with a `#!` line the script, which goes in on stdin.
struct RunCommand {
    argv: Vec<String>,
    text: String,
    stdin_script: Option<String>,
}

/// The heredoc of a RUN whose whole command is that one heredoc
/// (`RUN <<EOF`): its body is the script.
pub fn lone_heredoc(run: &Run) -> Option<&Heredoc> {
    let (Command::Shell(cmd), [only]) = (&run.command, run.heredocs.as_slice()) else {
        return None;
    };
    let word = cmd.trim();
    let name = word
        .strip_prefix("<<")?
        .trim_start_matches('-')
        .trim_matches(|c| c == '"' || c == '\'');
    (name == only.name).then_some(only)
}

/// What the STEP line shows for a RUN: its first line, plus for a lone
/// heredoc a preview of the script, as BuildKit names the step
/// (`RUN <<EOF (apt-get update...)`).
pub fn step_text(run: &Run) -> String {
    let original = &run.origin.original;
    match lone_heredoc(run) {
        Some(doc) => {
            let body = doc.content.trim();
            let mut lines = body.lines();
            let first = lines.next().unwrap_or_default();
            let more = if lines.next().is_some() { "..." } else { "" };
            format!("{original} ({first}{more})")
        }
        None => original.clone(),
    }
}

/// The argv of a RUN: shell form through SHELL, exec form as is, and a
/// lone heredoc (`RUN <<EOF`) run as a script — by its `#!` interpreter
/// when it has one, as BuildKit does.
fn run_argv(state: &StageState, run: &Run) -> Result<RunCommand, StepError> {
    let shell = crate::build::dispatch::shell_of(state);
    match &run.command {
        Command::Exec(v) => Ok(RunCommand {
            argv: v.clone(),
            text: v.join(" "),
            stdin_script: None,
        }),
        Command::Shell(cmd) => {
            let mut script = cmd.clone();
            if let Some(only) = lone_heredoc(run) {
                // Unquoted delimiters leave expansion to the shell, as BuildKit.
                let body = only.body();
                if let Some(line) = body.lines().next().and_then(|l| l.strip_prefix("#!")) {
                    let mut argv: Vec<String> =
                        line.split_whitespace().map(str::to_string).collect();
                    if argv.is_empty() {
                        return Err(StepError::Invalid(format!(
                            "the heredoc script {:?} has an empty #! line",
                            only.name
                        )));
                    }
                    argv.push("/dev/stdin".to_string());
                    return Ok(RunCommand {
                        argv,
                        text: format!("{} {body}", shell.join(" ")),
                        stdin_script: Some(body),
                    });
                }
                let mut argv = shell.clone();
                argv.push(body.clone());
                return Ok(RunCommand {
                    text: argv.join(" "),
                    argv,
                    stdin_script: None,
                });
            }
            for h in &run.heredocs {
                script.push('\n');
                script.push_str(&h.content);
                script.push_str(&h.name);
            }
            let mut argv = shell;
            argv.push(script);
            Ok(RunCommand {
                text: argv.join(" "),
                argv,
                stdin_script: None,
            })
        }
    }
}

impl Executor<'_> {
    pub(crate) fn dispatch_run(&self, state: &mut StageState, run: &Run) -> Result<(), StepError> {
        if run.security == crate::containerfile::Security::Insecure {
            // BuildKit refuses it unless the build is given the
            // security.insecure entitlement; rbuild has no such mode, and
            // running the step unprivileged would hide the difference.
            return Err(StepError::Invalid(
                "RUN --security=insecure is not supported: rbuild runs every step in its normal sandbox; remove the flag".to_string(),
            ));
        }
        let RunCommand {
            argv,
            text: command_text,
            stdin_script,
        } = run_argv(state, run)?;
        let mut mounts = self.prepare_mounts(state, &run.mounts)?;
        // Declared args only: a proxy arg reaches history once an ARG line
        // names it (docker's documented opt-in); undeclared ones never do.
        let mut history_args: Vec<(String, String)> = state.args.values();
        history_args.sort();
        let created_by = created_by::run(&history_args, &command_text);
        let network = match run.network {
            crate::containerfile::NetworkMode::None => Network::None,
            crate::containerfile::NetworkMode::Host => Network::Host,
            crate::containerfile::NetworkMode::Default => match self.req.network {
                NetworkMode::None => Network::None,
                NetworkMode::Host => Network::Host,
            },
        };
        let fingerprint = state.runtime_fingerprint();
        let key = state.chain_key(&[
            &run.origin.original,
            &command_text,
            &fingerprint,
            &format!("{network:?}"),
            &mounts.key_parts.join("\n"),
        ]);

        // The environment: image ENV wins over ARG values; proxies last.
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: &str| {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        };
        for (k, v) in state.args.values() {
            set(&k, &v);
        }
        for e in &state.config.image().config.env {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            set(k, v);
        }
        for (k, v) in &state.proxies {
            set(k, v);
        }
        for (k, v) in &mounts.env {
            set(k, v);
        }
        let user_spec = state.config.image().config.user.clone();
        let workdir = match state.config.image().config.working_dir.as_str() {
            "" => "/".to_string(),
            w => w.to_string(),
        };
        let hostname = key.hex()[..12].to_string();
        let sandbox_mounts = std::mem::take(&mut mounts.mounts);
        let prefix = self.parallel.then(|| {
            format!(
                "[{}] ",
                crate::build::plan::stage_label(&self.cf, state.index)
            )
        });
        let ctx = self.layer_context();
        let result = ctx.run_step(state, key, &created_by, |merged: &Path| {
            let mut spec = process_spec::<StepError>(merged, argv, env, &user_spec, &workdir)?;
            spec.network = network;
            spec.mounts = sandbox_mounts;
            spec.hostname = hostname;
            let feeder = match stdin_script {
                Some(script) => {
                    let (reader, mut writer) = std::io::pipe()?;
                    spec.stdio.stdin = Some(reader.into());
                    Some(std::thread::spawn(move || {
                        use std::io::Write;
                        let _ = writer.write_all(script.as_bytes());
                    }))
                }
                None => None,
            };
            let prefixer = match &prefix {
                Some(p) => Some(Prefixer::attach(&mut spec, p)?),
                None => None,
            };
            let outcome = crate::sandbox::run(&spec);
            drop(spec);
            if let Some(f) = feeder {
                let _ = f.join();
            }
            if let Some(p) = prefixer {
                p.finish();
            }
            let outcome = outcome?;
            if crate::sandbox::interrupted().is_some() {
                return Err(StepError::Invalid("interrupted".to_string()));
            }
            if !outcome.success() {
                return Err(StepError::ExitStatus(outcome.code()));
            }
            Ok(())
        })?;
        drop(mounts);
        if let StepResult::Cached(id) = result {
            self.out.using_cache(&id);
        }
        Ok(())
    }

    fn prepare_mounts(
        &self,
        state: &StageState,
        specs: &[RunMount],
    ) -> Result<PreparedMounts, StepError> {
        let mut out = PreparedMounts::default();
        for spec in specs {
            let spec = if spec.needs_expansion {
                let raw = state.expand(&spec.raw)?;
                RunMount::parse(&raw).map_err(|e| StepError::Invalid(e.to_string()))?
            } else {
                spec.clone()
            };
            let target = spec.target.clone();
            let target_abs = |t: &str| {
                if t.starts_with('/') {
                    t.to_string()
                } else {
                    let wd = &state.config.image().config.working_dir;
                    format!("{}/{t}", wd.trim_end_matches('/'))
                }
            };
            match spec.kind {
                MountType::Bind => {
                    let target = target_abs(target.as_deref().ok_or_else(|| {
                        StepError::Invalid("--mount=type=bind needs target=".to_string())
                    })?);
                    let source = spec.source.clone().unwrap_or_else(|| "/".to_string());
                    let (root, key) = match &spec.from {
                        Some(from) => {
                            let name = state.expand(from)?;
                            let (layers, key) = if let Some(i) = find_stage(&self.cf, &name, state.index) {
                                let r = self.stage_result(i).ok_or_else(|| {
                                    StepError::Invalid(format!("stage {name:?} was not built"))
                                })?;
                                (r.layers.clone(), r.cache_key.hex())
                            } else {
                                let rec = self.image_by_policy(&name).map_err(|e| {
                                    StepError::Invalid(format!("--mount from={name}: {e}"))
                                })?;
                                (rec.layers.clone(), rec.id.hex())
                            };
                            let view = View::mount(self.store, &layers, &self.mounts_dir)?;
                            let root = view.root().to_path_buf();
                            out.views.push(view);
                            (root, key)
                        }
                        None => {
                            let digest = crate::build::copy_digest::sources_digest(
                                &self.context,
                                std::slice::from_ref(&source),
                                &Default::default(),
                                &mut self.stat_cache(),
                            )?;
                            (self.context.rootfs().root().to_path_buf(), digest.hex())
                        }
                    };
                    let mut host = Rootfs::new(root).resolve(&source)?;
                    out.key_parts.push(format!("bind {target} {key} {source}"));
                    let mut private = false;
                    if spec.from.is_none() && !self.context.ignore().is_empty() {
                        if let Some(view) = self.filtered_context(&source, &host)? {
                            host = view.path().join("root");
                            out.temp.push(view);
                            private = true;
                        }
                    }
                    let host = if spec.readonly || private {
                        host
                    } else {
                        // Writes to a rw bind are thrown away, as BuildKit does.
                        let tmp = tempfile::Builder::new().prefix("bind-rw-").tempdir_in(&self.run_dir_ready()?)?;
                        let copy = tmp.path().join("data");
                        copy_tree(&host, &copy)?;
                        out.temp.push(tmp);
                        copy
                    };
                    out.mounts.push(SandboxMount {
                        kind: MountKind::Bind {
                            source: host,
                            readonly: spec.readonly,
                        },
                        target,
                    });
                }
                MountType::Cache => {
                    let target = target_abs(target.as_deref().ok_or_else(|| {
                        StepError::Invalid("--mount=type=cache needs target=".to_string())
                    })?);
                    let id = spec.id.clone().unwrap_or_else(|| target.clone());
                    let (dir, new) = self.store.cache_mount_dir(&id)?;
                    if new {
                        let mode = spec.mode.unwrap_or(0o755);
                        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
                        let uid = spec.uid.unwrap_or(0);
                        let gid = spec.gid.unwrap_or(0);
                        if uid != 0 || gid != 0 {
                            nix::unistd::chown(
                                &dir,
                                Some(nix::unistd::Uid::from_raw(uid)),
                                Some(nix::unistd::Gid::from_raw(gid)),
                            )
                            .map_err(|e| StepError::Io(e.into()))?;
                        }
                    }
                    out.mounts.push(SandboxMount {
                        kind: MountKind::Bind {
                            source: dir,
                            readonly: spec.readonly,
                        },
                        target,
                    });
                }
                MountType::Tmpfs => {
                    let target = target_abs(target.as_deref().ok_or_else(|| {
                        StepError::Invalid("--mount=type=tmpfs needs target=".to_string())
                    })?);
                    out.mounts.push(SandboxMount {
                        kind: MountKind::Tmpfs { size: spec.size },
                        target,
                    });
                }
                MountType::Secret => self.prepare_secret(&spec, &mut out)?,
                MountType::Ssh => {
                    return Err(StepError::Invalid(
                        "--mount=type=ssh is not supported by rbuild; pass the key as a secret (--secret id=key,src=FILE and --mount=type=secret,id=key)".to_string(),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// The build context as a bind mount shows it: without what
    /// `.containerignore`/`.dockerignore` exclude, as docker never sends
    /// those files to the builder. A private copy of the directory
    /// `source` (at `host`) with the ignore rules applied; `None` for a
    /// file source, which is bound as it is.
    fn filtered_context(
        &self,
        source: &str,
        host: &Path,
    ) -> Result<Option<tempfile::TempDir>, StepError> {
        if !fs::metadata(host).map(|m| m.is_dir()).unwrap_or(false) {
            return Ok(None);
        }
        let view = tempfile::Builder::new()
            .prefix("context-view-")
            .tempdir_in(self.run_dir_ready()?)?;
        let root = view.path().join("root");
        fs::create_dir(&root)?;
        let opts = crate::build::copy::CopyOptions {
            workdir: PathBuf::from("/"),
            // A bind mount shows the context's own owners.
            preserve_ownership_from_source: true,
            ..Default::default()
        };
        crate::build::copy::copy_into(
            &Rootfs::new(root),
            &self.context,
            &[source.to_string()],
            "/",
            &opts,
        )?;
        Ok(Some(view))
    }

    fn run_dir_ready(&self) -> Result<PathBuf, StepError> {
        fs::create_dir_all(&self.run_dir)?;
        Ok(self.run_dir.clone())
    }

    fn prepare_secret(&self, spec: &RunMount, out: &mut PreparedMounts) -> Result<(), StepError> {
        let id = spec
            .id
            .clone()
            .or_else(|| {
                spec.target
                    .as_deref()
                    .and_then(|t| Path::new(t).file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .ok_or_else(|| {
                StepError::Invalid("--mount=type=secret needs id= or target=".to_string())
            })?;
        let Some(secret) = self.req.secrets.iter().find(|s| s.id == id) else {
            if spec.required {
                return Err(StepError::Invalid(format!(
                    "secret {id:?} is required but was not given: pass --secret id={id},src=FILE"
                )));
            }
            return Ok(());
        };
        // The step sees a private copy with the mount's mode (0400 unless
        // `mode=` says otherwise) and owner (`uid=`/`gid=`, root by
        // default), as BuildKit mounts secrets, never the file as given.
        let value: Vec<u8> = match &secret.source {
            SecretSource::File(path) => fs::read(path).map_err(|e| {
                StepError::Invalid(format!("secret {id:?}: reading {}: {e}", path.display()))
            })?,
            SecretSource::Env(var) => std::env::var_os(var)
                .map(|v| std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec())
                .ok_or_else(|| {
                    StepError::Invalid(format!(
                        "secret {id:?}: environment variable {var} is not set"
                    ))
                })?,
        };
        let dir = tempfile::Builder::new()
            .prefix("secret-")
            .tempdir_in(self.run_dir_ready()?)?;
        let value_file = dir.path().join("value");
        fs::write(&value_file, &value)?;
        fs::set_permissions(
            &value_file,
            fs::Permissions::from_mode(spec.mode.unwrap_or(0o400)),
        )?;
        if spec.uid.is_some() || spec.gid.is_some() {
            std::os::unix::fs::chown(
                &value_file,
                Some(spec.uid.unwrap_or(0)),
                Some(spec.gid.unwrap_or(0)),
            )?;
        }
        out.temp.push(dir);
        if let Some(var) = &spec.env {
            out.env
                .push((var.clone(), String::from_utf8_lossy(&value).into_owned()));
            if spec.target.is_none() {
                return Ok(());
            }
        }
        let target = spec
            .target
            .clone()
            .unwrap_or_else(|| format!("/run/secrets/{id}"));
        out.mounts.push(SandboxMount {
            kind: MountKind::Bind {
                source: value_file,
                readonly: true,
            },
            target,
        });
        Ok(())
    }
}

/// Copies a step's stdout and stderr to ours line by line with a stage
/// prefix, so stages running at once stay readable.
struct Prefixer {
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Prefixer {
    fn attach(spec: &mut RunSpec, prefix: &str) -> Result<Prefixer, StepError> {
        let mut threads = Vec::new();
        for to_stderr in [false, true] {
            let (reader, writer) = std::io::pipe()?;
            let fd: std::os::fd::OwnedFd = writer.into();
            if to_stderr {
                spec.stdio.stderr = Some(fd);
            } else {
                spec.stdio.stdout = Some(fd);
            }
            let prefix = prefix.to_string();
            threads.push(std::thread::spawn(move || {
                use std::io::{BufRead, Write};
                for line in std::io::BufReader::new(reader)
                    .split(b'\n')
                    .map_while(Result::ok)
                {
                    let mut text = prefix.clone().into_bytes();
                    text.extend_from_slice(&line);
                    text.push(b'\n');
                    if to_stderr {
                        let _ = std::io::stderr().lock().write_all(&text);
                    } else {
                        let _ = std::io::stdout().lock().write_all(&text);
                    }
                }
            }));
        }
        Ok(Prefixer { threads })
    }

    /// Waits until the step's output is all copied (the write ends are
    /// closed when the step and its spec are gone).
    fn finish(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Copies a file or tree (for a read-write bind whose writes are dropped).
fn copy_tree(from: &Path, to: &Path) -> Result<(), StepError> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()?;
    if !status.success() {
        return Err(StepError::Invalid(format!(
            "copying {} for a read-write bind mount failed",
            from.display()
        )));
    }
    Ok(())
}
