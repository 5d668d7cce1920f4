//! One `dispatch_*` per instruction that only changes the image config
//! (ENV, LABEL, CMD, …), plus the dispatch on the instruction kind. Steps
//! that write files are in `dispatch_copy` and `dispatch_run`.

use crate::build::error::StepError;
use crate::build::executor::Executor;
use crate::build::stage::StageState;
use crate::build::step::StepResult;
use crate::build::userdb::resolve_dir_owner;
use crate::containerfile::{Command, HealthcheckKind, Instruction};
use crate::image::created_by;
use crate::image::HealthConfig;
use crate::layer::rootfs::NewDir;

/// The shell a shell-form command runs with.
pub fn shell_of(state: &StageState) -> Vec<String> {
    let shell = &state.config.image().config.shell;
    if shell.is_empty() {
        vec!["/bin/sh".to_string(), "-c".to_string()]
    } else {
        shell.clone()
    }
}

/// argv of a CMD/ENTRYPOINT/HEALTHCHECK command (not expanded, as docker).
pub fn command_argv(state: &StageState, command: &Command) -> Vec<String> {
    match command {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut argv = shell_of(state);
            argv.push(s.clone());
            argv
        }
    }
}

impl Executor<'_> {
    pub(crate) fn dispatch(
        &self,
        state: &mut StageState,
        inst: &Instruction,
    ) -> Result<(), StepError> {
        let original = &inst.origin().original;
        match inst {
            Instruction::Run(run) => return self.dispatch_run(state, run),
            Instruction::Copy(copy) => return self.dispatch_copy(state, copy),
            Instruction::Add(add) => return self.dispatch_add(state, add),
            Instruction::Workdir(w) => return self.dispatch_workdir(state, &w.path, original),
            Instruction::Arg(arg) => return self.dispatch_arg(state, arg),
            Instruction::From(_) => {
                return Err(StepError::Invalid("FROM inside a stage".to_string()))
            }
            Instruction::Env(env) => {
                let mut pairs = Vec::new();
                for kv in &env.vars {
                    pairs.push((state.expand(&kv.key)?, state.expand(&kv.value)?));
                }
                for (k, v) in pairs {
                    state.config.set_env(&k, &v);
                }
            }
            Instruction::Label(label) => {
                let mut pairs = Vec::new();
                for kv in &label.labels {
                    pairs.push((state.expand(&kv.key)?, state.expand(&kv.value)?));
                }
                for (k, v) in pairs {
                    state.config.set_label(&k, &v);
                }
            }
            Instruction::Maintainer(m) => state.config.set_author(&m.name),
            Instruction::Expose(e) => {
                for port in &e.ports {
                    for p in state.expand_words(port)? {
                        state
                            .config
                            .expose(&p)
                            .map_err(|err| StepError::Invalid(err.to_string()))?;
                    }
                }
            }
            Instruction::Volume(v) => {
                for path in &v.paths {
                    for p in state.expand_words(path)? {
                        if p.is_empty() {
                            return Err(StepError::Invalid(
                                "VOLUME specified can not be an empty string".to_string(),
                            ));
                        }
                        state.config.add_volume(&p);
                    }
                }
            }
            Instruction::User(u) => {
                let user = state.expand(&u.user)?;
                state.config.set_user(&user);
            }
            Instruction::Cmd(c) => {
                let argv = command_argv(state, &c.command);
                state.config.set_cmd(argv);
            }
            Instruction::Entrypoint(e) => {
                let argv = command_argv(state, &e.command);
                state.config.set_entrypoint(argv);
            }
            Instruction::Shell(s) => state.config.set_shell(s.shell.clone()),
            Instruction::StopSignal(s) => {
                let signal = state.expand(&s.signal)?;
                if !crate::image::config::is_valid_stop_signal(&signal) {
                    return Err(StepError::Invalid(format!(
                        "invalid signal {signal:?} for STOPSIGNAL: use a name such as SIGTERM or a positive number"
                    )));
                }
                state.config.set_stop_signal(&signal);
            }
            Instruction::Healthcheck(h) => {
                let check = match &h.check {
                    HealthcheckKind::None => HealthConfig {
                        test: vec!["NONE".to_string()],
                        ..HealthConfig::default()
                    },
                    HealthcheckKind::Cmd {
                        command,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => {
                        let test = match command {
                            Command::Exec(v) => {
                                let mut t = vec!["CMD".to_string()];
                                t.extend(v.iter().cloned());
                                t
                            }
                            Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                        };
                        let nanos = |d: &Option<std::time::Duration>| {
                            d.map(|d| d.as_nanos() as i64).unwrap_or(0)
                        };
                        HealthConfig {
                            test,
                            interval: nanos(interval),
                            timeout: nanos(timeout),
                            start_period: nanos(start_period),
                            start_interval: nanos(start_interval),
                            retries: *retries as i64,
                        }
                    }
                };
                state.config.set_healthcheck(check);
            }
            Instruction::Onbuild(o) => state.config.add_onbuild(&o.expression),
        }
        state.chain_key(&[original]);
        state
            .config
            .add_empty_history(self.created, &created_by::metadata(original));
        Ok(())
    }

    /// `ARG`: declares names in the stage; values from `--build-arg`, the
    /// default, or the global ARG of the same name.
    fn dispatch_arg(
        &self,
        state: &mut StageState,
        arg: &crate::containerfile::Arg,
    ) -> Result<(), StepError> {
        let mut history = Vec::new();
        for def in &arg.args {
            let default = def
                .default
                .as_deref()
                .map(|d| state.expand(d))
                .transpose()?;
            // History shows the ARG as the file declares it (docker's
            // commit message): a `--build-arg` value shows only in the
            // `|N K=V` prefix of the RUN lines that see it.
            history.push((def.name.clone(), default.clone()));
            let value = match self.build_args.take(&def.name) {
                Some(v) => Some(v),
                None => match default {
                    Some(d) => Some(d),
                    None => {
                        use crate::containerfile::shell::Env;
                        self.global_env.get(&def.name).map(str::to_string)
                    }
                },
            };
            state.args.declare(&def.name, value);
        }
        let text = format!("{:?}", state.args.values());
        state.chain_key(&[&arg.origin.original, &text]);
        state
            .config
            .add_empty_history(self.created, &created_by::arg(&history));
        Ok(())
    }

    /// `WORKDIR`: sets the directory and creates it; a layer only when the
    /// directory was missing. Directories it creates belong to the current
    /// `USER` (as BuildKit and buildah make them), so a non-root user can
    /// write to the WORKDIR it asked for.
    fn dispatch_workdir(
        &self,
        state: &mut StageState,
        path: &str,
        original: &str,
    ) -> Result<(), StepError> {
        let expanded = state.expand(path)?;
        state.config.set_workdir(&expanded);
        let dir = state.config.image().config.working_dir.clone();
        let user = state.config.image().config.user.clone();
        let key = state.chain_key(&[original, &dir, &user]);
        let created_by = created_by::metadata(original);
        let ctx = self.layer_context();
        let result = ctx.run_step(state, key, &created_by, |merged| {
            let rootfs = crate::layer::rootfs::Rootfs::new(merged.to_path_buf());
            if rootfs.metadata(&dir)?.is_none() {
                let owner = match user.as_str() {
                    "" => None,
                    spec => Some(resolve_dir_owner(&rootfs, spec)?),
                };
                let new = NewDir {
                    owner,
                    ..NewDir::default()
                };
                rootfs.create_dir_all(&dir, new)?;
            }
            Ok(())
        })?;
        if let StepResult::Cached(id) = result {
            self.out.using_cache(&id);
        }
        Ok(())
    }
}
