//! What a build prints, as buildah prints it: `STEP 1/5: FROM …` (with a
//! `[stage/stages]` prefix in multi-stage builds), `--> Using cache …`,
//! `COMMIT name`, `--> <short id>`, and the full image ID last. `-q`
//! prints only the ID.

use std::io::Write;

/// Build progress on stdout.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub quiet: bool,
}

impl Output {
    fn line(&self, text: &str) {
        if !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    /// `[2/3] STEP 4/7: COPY . /app`; the prefix only with several stages.
    pub fn step(&self, stage: (usize, usize), step: (usize, usize), text: &str) {
        let prefix = if stage.1 > 1 {
            format!("[{}/{}] ", stage.0, stage.1)
        } else {
            String::new()
        };
        self.line(&format!("{prefix}STEP {}/{}: {text}", step.0, step.1));
    }

    pub fn using_cache(&self, id: &str) {
        self.line(&format!("--> Using cache {id}"));
    }

    pub fn commit(&self, name: Option<&str>) {
        match name {
            Some(n) => self.line(&format!("COMMIT {n}")),
            None => self.line("COMMIT"),
        }
    }

    pub fn short_id(&self, id: &str) {
        self.line(&format!("--> {id}"));
    }

    pub fn tagged(&self, name: &str) {
        self.line(&format!("Successfully tagged {name}"));
    }

    pub fn skipped_stage(&self, name: &str) {
        self.line(&format!("Skipping stage {name}: not needed for the target"));
    }

    pub fn warn(&self, text: &str) {
        eprintln!("WARN: {text}");
    }

    /// The image ID: always printed, also with `-q`.
    pub fn image_id(&self, id: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{id}");
        let _ = out.flush();
    }
}
