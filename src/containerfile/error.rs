//! Parse errors, shaped like a compiler's: `file:line:col: message`, the
//! offending line quoted with a caret under the column, then a hint saying
//! what to do. The message text of every kind is part of the interface
//! (tests pin it), so change it only on purpose.

use std::fmt;
use std::sync::Arc;

use super::instructions::mount::MountError;

/// What went wrong, without where. Each variant's message is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    // ---- raw parser (BuildKit's `parser` package) ----
    /// The file has no instruction at all (empty, or only comments).
    #[error("file with no instructions")]
    NoInstructions,
    /// A physical line is 64 KiB or longer (BuildKit's scanner limit).
    #[error("dockerfile line greater than max allowed size of 65535")]
    LineTooLong,
    /// `# escape=` names something other than a backslash or a backtick.
    #[error("invalid escape token '{value}' does not match ` or \\")]
    InvalidEscapeToken { value: String },
    /// The same parser directive appears twice.
    #[error("only one {name} parser directive can be used")]
    DuplicateDirective { name: String },
    /// A JSON array with an element that is not a string.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    JsonNotStrings,
    /// `ENV key` / `LABEL key`: the old form with no value.
    #[error("{instruction} must have two arguments")]
    NameValueNeedsTwo { instruction: String },
    /// `ENV a=1 b`: a word without `=` in the `key=value` form.
    #[error("Syntax error - can't find = in {word:?}. Must be of the form: name=value")]
    NameValueMissingEquals { word: String },
    /// A heredoc whose terminator never came.
    #[error("unterminated heredoc {name:?}")]
    UnterminatedHeredoc { name: String },
    /// A heredoc word that cannot be lexed (bad quoting or `${`).
    #[error("cannot read the heredoc word {word:?}: {reason}")]
    BadHeredocWord { word: String, reason: String },
    /// `ONBUILD ONBUILD ...` nested absurdly deep (a guard against stack exhaustion).
    #[error("ONBUILD nested more than {limit} levels deep")]
    OnbuildTooDeep { limit: usize },

    // ---- typed instruction layer (BuildKit's `instructions` package) ----
    /// The keyword is not a Containerfile instruction.
    #[error("unknown instruction {name:?}{}", did_you_mean(suggestion))]
    UnknownInstruction {
        name: String,
        suggestion: Option<String>,
    },
    /// A `--flag` the instruction does not take.
    #[error("unknown flag {flag} for {instruction}{}", did_you_mean(suggestion))]
    UnknownFlag {
        instruction: String,
        flag: String,
        suggestion: Option<String>,
    },
    /// A single-valued flag given twice.
    #[error("duplicate flag specified: {flag}")]
    DuplicateFlag { flag: String },
    /// `--chown` without `=value`, or `--link=`.
    #[error("missing a value on flag: {flag}")]
    FlagMissingValue { flag: String },
    /// A boolean flag with a value other than true/false.
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    FlagNotBool { flag: String, value: String },
    /// `USER a b`, `WORKDIR` with nothing, ...
    #[error("{instruction} requires exactly one argument")]
    ExactlyOneArgument { instruction: String },
    /// `ENV`, `EXPOSE`, `VOLUME`, ... with nothing after them.
    #[error("{instruction} requires at least one argument")]
    AtLeastOneArgument { instruction: String },
    /// `COPY src` with no destination.
    #[error("{instruction} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination { instruction: String },
    /// `FROM a b`, `FROM a AS`, `FROM a FOR b`.
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    /// `FROM x AS 1st` or with symbols.
    #[error(
        "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName { name: String },
    /// Two stages with the same `AS` name.
    #[error("duplicate stage name {name:?}, first used on line {first_line}")]
    DuplicateStageName { name: String, first_line: usize },
    /// An instruction other than ARG before the first FROM.
    #[error("{instruction} comes before the first FROM")]
    NoStage { instruction: String },
    /// `ONBUILD ONBUILD ...`.
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    /// `ONBUILD FROM` or `ONBUILD MAINTAINER`.
    #[error("{trigger} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger { trigger: String },
    /// `HEALTHCHECK NONE something`.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    /// `HEALTHCHECK FOO ...`.
    #[error("Unknown type {kind:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType { kind: String },
    /// `HEALTHCHECK CMD` with no command.
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    /// `--interval=abc`.
    #[error("invalid duration {value:?} for {flag}: {reason}")]
    InvalidDuration {
        flag: String,
        value: String,
        reason: String,
    },
    /// `--interval=1ns`.
    #[error("Interval {flag:?} cannot be less than 1ms")]
    DurationTooShort { flag: String },
    /// `--retries=x`.
    #[error("invalid value {value:?} for --retries: not a 32-bit integer")]
    InvalidRetries { value: String },
    /// `--retries=-1`.
    #[error("--retries cannot be negative ({value})")]
    NegativeRetries { value: i64 },
    /// `SHELL /bin/sh -c` (shell form).
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    /// `VOLUME [""]`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// `ARG =x`, `ENV =x`.
    #[error("{instruction} names can not be blank")]
    BlankName { instruction: String },
    /// `COPY src <<EOF`.
    #[error("{instruction} cannot accept a heredoc as a destination")]
    HeredocDestination { instruction: String },
    /// `RUN --network=bridge`.
    #[error("invalid network mode {value:?}")]
    InvalidNetwork { value: String },
    /// `RUN --security=root`.
    #[error("security {value:?} is not valid")]
    InvalidSecurity { value: String },
    /// A bad `RUN --mount` specification.
    #[error("invalid --mount: {0}")]
    Mount(#[from] MountError),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {s:?}?)"),
        None => String::new(),
    }
}

impl ErrorKind {
    /// What the user can do about it, one line.
    pub fn hint(&self) -> String {
        use ErrorKind::*;
        match self {
            NoInstructions => "a Containerfile needs at least a FROM instruction".into(),
            LineTooLong => "split the line with a line continuation (the escape character at the end of a line)".into(),
            InvalidEscapeToken { .. } => "write `# escape=\\` or `# escape=``".into(),
            DuplicateDirective { .. } => "keep one of the two directive lines".into(),
            JsonNotStrings => "quote every element, e.g. [\"echo\", \"1\"], or drop the brackets for shell form".into(),
            NameValueNeedsTwo { instruction } => format!("write `{instruction} key=value` (or `{instruction} key value`)"),
            NameValueMissingEquals { .. } => "every word must be key=value; quote values that contain spaces".into(),
            UnterminatedHeredoc { name } => format!("end the heredoc with a line that is exactly {name:?}"),
            BadHeredocWord { .. } => "close every quote and `${` in the heredoc word".into(),
            OnbuildTooDeep { .. } => "ONBUILD takes one instruction, which cannot be another ONBUILD".into(),
            UnknownInstruction { suggestion: Some(s), .. } => format!("write {s:?}, or see the Containerfile reference for the list of instructions"),
            UnknownInstruction { .. } => "instructions are ADD, ARG, CMD, COPY, ENTRYPOINT, ENV, EXPOSE, FROM, HEALTHCHECK, LABEL, MAINTAINER, ONBUILD, RUN, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR".into(),
            UnknownFlag { instruction, .. } => format!("remove the flag or check which flags {instruction} takes"),
            DuplicateFlag { .. } => "give the flag once".into(),
            FlagMissingValue { flag } => format!("write {flag}=VALUE"),
            FlagNotBool { flag, .. } => format!("write {flag}, {flag}=true or {flag}=false"),
            ExactlyOneArgument { instruction } => format!("give {instruction} one argument; quote it if it contains spaces"),
            AtLeastOneArgument { instruction } => format!("add an argument after {instruction}"),
            NoDestination { instruction } => format!("write `{instruction} SOURCE... DEST`"),
            FromArguments => "write `FROM IMAGE` or `FROM IMAGE AS NAME`".into(),
            InvalidStageName { .. } => "stage names start with a letter and hold only letters, digits, '-', '_' and '.'".into(),
            DuplicateStageName { .. } => "give each stage its own name".into(),
            NoStage { .. } => "start the stage with FROM; only ARG may come before the first FROM".into(),
            OnbuildChain => "ONBUILD takes one instruction, which cannot be another ONBUILD".into(),
            OnbuildTrigger { .. } => "ONBUILD triggers cannot be FROM, MAINTAINER or ONBUILD".into(),
            HealthcheckNoneArguments => "write `HEALTHCHECK NONE` alone".into(),
            HealthcheckType { .. } => "write `HEALTHCHECK [OPTIONS] CMD command` or `HEALTHCHECK NONE`".into(),
            HealthcheckMissingCommand => "write the command after CMD".into(),
            InvalidDuration { .. } => "durations look like 30s, 1m30s, 500ms or 2h".into(),
            DurationTooShort { .. } => "use at least 1ms, or 0 for the default".into(),
            InvalidRetries { .. } | NegativeRetries { .. } => "--retries takes a whole number, 0 or more".into(),
            ShellNotJson => "write SHELL [\"executable\", \"parameters\"]".into(),
            EmptyVolume => "remove the empty path".into(),
            BlankName { .. } => "write name=value with a name before the =".into(),
            HeredocDestination { .. } => "heredocs can only be sources; give a path as the last argument".into(),
            InvalidNetwork { .. } => "use --network=default, --network=none or --network=host".into(),
            InvalidSecurity { .. } => "use --security=sandbox or --security=insecure".into(),
            Mount(e) => e.hint(),
        }
    }
}

/// A parse error with its location and the line it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    // Boxed: errors are rare and `Result<_, ParseError>` stays small.
    inner: Box<Located>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Located {
    kind: ErrorKind,
    file: Arc<str>,
    line: usize,
    column: usize,
    source_line: Option<String>,
}

impl ParseError {
    /// An error at `line:column` of `file`; `source_line` is quoted with a caret.
    pub fn new(
        kind: ErrorKind,
        file: Arc<str>,
        line: usize,
        column: usize,
        source_line: Option<String>,
    ) -> Self {
        ParseError {
            inner: Box::new(Located {
                kind,
                file,
                line,
                column,
                source_line,
            }),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The file name given to the parser.
    pub fn file(&self) -> &str {
        &self.inner.file
    }

    /// 1-based line.
    pub fn line(&self) -> usize {
        self.inner.line
    }

    /// 1-based column, in characters.
    pub fn column(&self) -> usize {
        self.inner.column
    }

    /// The offending line's text, if there is one to show.
    pub fn source_line(&self) -> Option<&str> {
        self.inner.source_line.as_deref()
    }

    /// `file:line:col: message`, the first line of the rendering.
    pub fn headline(&self) -> String {
        format!(
            "{}:{}:{}: {}",
            self.file(),
            self.line(),
            self.column(),
            self.kind()
        )
    }
}

/// Lines longer than this are shown as a window around the column.
const QUOTE_WIDTH: usize = 120;

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        if let Some(text) = self.source_line() {
            let chars: Vec<char> = text.chars().collect();
            let col = self.column().saturating_sub(1).min(chars.len());
            let start = if chars.len() > QUOTE_WIDTH {
                col.saturating_sub(QUOTE_WIDTH / 2)
            } else {
                0
            };
            let end = (start + QUOTE_WIDTH).min(chars.len());
            let shown: String = chars[start..end].iter().collect();
            // Keep tabs in the caret's indent so it lines up under the column.
            let pad: String = chars[start..col]
                .iter()
                .map(|c| if *c == '\t' { '\t' } else { ' ' })
                .collect();
            let gutter = self.line().to_string();
            let blank = " ".repeat(gutter.len());
            writeln!(f, " {gutter} | {shown}")?;
            writeln!(f, " {blank} | {pad}^")?;
        }
        write!(f, "hint: {}", self.kind().hint())
    }
}

// No `source()`: the kind's message is already part of the rendering, and
// error reporters that walk the chain would print it twice.
impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind, line: usize, col: usize, text: &str) -> ParseError {
        ParseError::new(
            kind,
            Arc::from("Containerfile"),
            line,
            col,
            Some(text.to_string()),
        )
    }

    #[test]
    fn renders_like_a_compiler() {
        let e = err(
            ErrorKind::UnknownInstruction {
                name: "RUNN".into(),
                suggestion: Some("RUN".into()),
            },
            12,
            1,
            "RUNN echo hi",
        );
        assert_eq!(
            e.to_string(),
            "Containerfile:12:1: unknown instruction \"RUNN\" (did you mean \"RUN\"?)\n 12 | RUNN echo hi\n    | ^\nhint: write \"RUN\", or see the Containerfile reference for the list of instructions"
        );
    }

    #[test]
    fn caret_keeps_tabs_and_points_at_the_column() {
        let e = err(
            ErrorKind::DuplicateFlag {
                flag: "--from".into(),
            },
            3,
            7,
            "\tCOPY --from=a",
        );
        let text = e.to_string();
        assert!(
            text.contains("\n 3 | \tCOPY --from=a\n   | \t     ^\n"),
            "{text}"
        );
    }

    #[test]
    fn long_lines_are_windowed() {
        let line = "x".repeat(1000);
        let e = err(ErrorKind::LineTooLong, 1, 500, &line);
        let quoted = e.to_string().lines().nth(1).unwrap().to_string();
        assert_eq!(quoted.len(), " 1 | ".len() + QUOTE_WIDTH);
    }

    #[test]
    fn no_source_line_means_no_quote() {
        let e = ParseError::new(
            ErrorKind::NoInstructions,
            Arc::from("Dockerfile"),
            1,
            1,
            None,
        );
        assert_eq!(
            e.to_string(),
            "Dockerfile:1:1: file with no instructions\nhint: a Containerfile needs at least a FROM instruction"
        );
    }
}
