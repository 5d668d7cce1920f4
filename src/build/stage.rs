//! The state of one stage while it builds: its config so far, its layers,
//! its declared ARGs, and the cache key chain. Also the expansion of words
//! with the stage's ARG and ENV values, as BuildKit's `Expand` does.

use crate::build::args::ArgScope;
use crate::containerfile::shell::{EnvList, LexError, Lexer};
use crate::digest::{Digest, Hasher};
use crate::image::{Image, ImageConfigBuilder};
use crate::store::ChainId;

/// What a finished stage leaves for later stages and for the commit.
#[derive(Debug, Clone)]
pub struct StageResult {
    pub config: Image,
    pub layers: Vec<ChainId>,
    /// How many of `layers` came from the base image (for `--squash`).
    pub base_layers: usize,
    /// The last cache key of the stage (the base of stages built FROM it).
    pub cache_key: Digest,
}

/// A stage being built.
pub struct StageState {
    /// The stage's index in the Containerfile.
    pub index: usize,
    pub config: ImageConfigBuilder,
    /// Bottom to top.
    pub layers: Vec<ChainId>,
    pub args: ArgScope,
    /// Proxy args from the command line: in RUN's env, never in history.
    pub proxies: Vec<(String, String)>,
    /// Chained over every step: a step's key covers all steps before it.
    pub cache_key: Digest,
    pub lexer: Lexer,
}

impl StageState {
    pub fn top(&self) -> Option<&ChainId> {
        self.layers.last()
    }

    /// ARG values, then ENV (ENV wins over an ARG of the same name).
    pub fn expansion_env(&self) -> EnvList {
        let mut env = EnvList::new();
        for (k, v) in self.args.values() {
            env.set(&k, &v);
        }
        for entry in &self.config.image().config.env {
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            env.set(k, v);
        }
        env
    }

    /// One word, quotes removed and variables expanded.
    pub fn expand(&self, word: &str) -> Result<String, LexError> {
        self.lexer.process_word(word, &self.expansion_env())
    }

    /// A word split into several (EXPOSE, VOLUME, …).
    pub fn expand_words(&self, word: &str) -> Result<Vec<String>, LexError> {
        self.lexer.process_words(word, &self.expansion_env())
    }

    /// Folds a step into the cache key chain.
    pub fn chain_key(&mut self, parts: &[&str]) -> Digest {
        let mut h = Hasher::new();
        h.update(self.cache_key.hex().as_bytes());
        if let Some(top) = self.top() {
            h.update(top.digest().hex().as_bytes());
        }
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        self.cache_key = h.finish();
        self.cache_key
    }

    /// What a RUN or COPY sees of the config: env, user, workdir, shell.
    pub fn runtime_fingerprint(&self) -> String {
        let c = &self.config.image().config;
        format!(
            "env={:?} args={:?} user={:?} workdir={:?} shell={:?}",
            c.env,
            self.args.values(),
            c.user,
            c.working_dir,
            c.shell
        )
    }
}
