//! The raw parser: text → [`Ast`], as BuildKit's `parser.Parse`. It handles
//! directives, line continuations (with comments and blank lines inside),
//! CRLF, the BOM, heredoc bodies and the 64 KiB line limit, and splits each
//! instruction's arguments the way its keyword requires. It does not judge
//! whether an instruction or flag exists: that is the typed layer's job.

use super::ast::{Ast, Directive, DirectiveName, Node, Warning};
use super::error::{ErrorKind, ParseError};
use super::heredoc::heredocs_in_line;
use super::line_args::{self, Parsed};
use super::source::{Source, MAX_LINE};
use super::span::{Position, Span};

/// ONBUILD triggers nest by recursion; BuildKit has no limit, rbuild stops here.
const MAX_ONBUILD_DEPTH: usize = 64;

/// Parses `text` into the raw tree. `file_name` only labels spans and errors.
pub fn parse_ast(text: &str, file_name: &str) -> Result<Ast, ParseError> {
    parse_source(&Source::new(text, file_name))
}

/// [`parse_ast`] over an already split source.
pub(crate) fn parse_source(src: &Source<'_>) -> Result<Ast, ParseError> {
    Parser {
        src,
        directives: DirectiveState::default(),
        escape: '\\',
    }
    .run()
}

#[derive(Default)]
struct DirectiveState {
    done: bool,
    found: Vec<Directive>,
}

struct Parser<'s, 'a> {
    src: &'s Source<'a>,
    directives: DirectiveState,
    escape: char,
}

impl<'a> Parser<'_, 'a> {
    fn run(mut self) -> Result<Ast, ParseError> {
        let lines: &[&'a str] = &self.src.lines;
        let mut nodes = Vec::new();
        let mut warnings = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let raw = self.physical(i)?;
            i += 1;
            let start_line = i;
            let no_newline = raw.trim_end_matches(['\r', '\n']);
            let content = no_newline.trim_start();
            let start_col = no_newline[..no_newline.len() - content.len()]
                .chars()
                .count()
                + 1;
            self.directive(content, i)?;
            let content = if is_comment(content) { "" } else { content };
            let (first, mut end_of_line) = trim_continuation(content, self.escape);
            if end_of_line && first.is_empty() {
                continue;
            }
            let mut line = first.to_string();
            let mut empty_continuation = false;
            while !end_of_line && i < lines.len() {
                let raw = self.physical(i)?;
                i += 1;
                let content = raw.trim_end_matches(['\r', '\n']);
                self.directive(content, i)?;
                if is_comment(content) {
                    continue;
                }
                if content.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (part, eol) = trim_continuation(content, self.escape);
                end_of_line = eol;
                line.push_str(part);
            }
            let mut span = Span {
                file: self.src.file.clone(),
                start: Position::new(start_line, start_col),
                end: self.end_of(i),
            };
            let mut node = self
                .node_from_line(&line, &span, 0)
                .map_err(|(kind, needle)| self.src.error_near(kind, &span, &needle))?;
            if can_contain_heredoc(&node) && line.contains("<<") {
                let docs = heredocs_in_line(&line).map_err(|e| {
                    let needle = e.word.clone();
                    self.src.error_near(
                        ErrorKind::BadHeredocWord {
                            word: e.word,
                            reason: e.reason,
                        },
                        &span,
                        &needle,
                    )
                })?;
                for mut doc in docs {
                    let mut terminated = false;
                    while i < lines.len() {
                        let raw = self.physical(i)?;
                        i += 1;
                        let mut candidate = raw.trim_end_matches(['\r', '\n']);
                        if doc.chomp {
                            candidate = candidate.trim_start_matches('\t');
                        }
                        if candidate == doc.name {
                            terminated = true;
                            break;
                        }
                        doc.content.push_str(raw);
                    }
                    if !terminated {
                        let needle = format!("<<{}", if doc.chomp { "-" } else { "" });
                        let kind = ErrorKind::UnterminatedHeredoc { name: doc.name };
                        return Err(self.src.error_near(kind, &span, &needle));
                    }
                    node.heredocs.push(doc);
                }
                span.end = self.end_of(i);
                node.span = span.clone();
            }
            if empty_continuation {
                warnings.push(Warning {
                    message: format!("Empty continuation line found in: {line}"),
                    span: span.clone(),
                });
            }
            nodes.push(node);
        }
        if nodes.is_empty() {
            let last = lines.len().max(1);
            return Err(self.src.error(ErrorKind::NoInstructions, last, 1));
        }
        Ok(Ast {
            directives: self.directives.found,
            escape: self.escape,
            nodes,
            warnings,
        })
    }

    /// Physical line `i` (0-based), refusing lines past BuildKit's limit.
    fn physical(&self, i: usize) -> Result<&'a str, ParseError> {
        let raw = self.src.lines[i];
        if raw.strip_suffix('\n').unwrap_or(raw).len() >= MAX_LINE {
            return Err(self.src.error(ErrorKind::LineTooLong, i + 1, 1));
        }
        Ok(raw)
    }

    /// One past the last character of line `n` (1-based).
    fn end_of(&self, n: usize) -> Position {
        Position::new(n, self.src.line_text(n).chars().count() + 1)
    }

    /// Recognises `# key=value` while only directives have been seen.
    fn directive(&mut self, line: &str, line_no: usize) -> Result<(), ParseError> {
        if self.directives.done {
            return Ok(());
        }
        let Some((name, value)) = directive_of(line) else {
            self.directives.done = true;
            return Ok(());
        };
        if self.directives.found.iter().any(|d| d.name == name) {
            let kind = ErrorKind::DuplicateDirective {
                name: name.as_str().to_string(),
            };
            return Err(self.src.error(kind, line_no, 1));
        }
        if name == DirectiveName::Escape {
            self.escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    let col = self
                        .src
                        .line_text(line_no)
                        .find(value.as_str())
                        .map_or(1, |b| self.src.line_text(line_no)[..b].chars().count() + 1);
                    return Err(self.src.error(
                        ErrorKind::InvalidEscapeToken { value },
                        line_no,
                        col,
                    ));
                }
            };
        }
        self.directives.found.push(Directive {
            name,
            value,
            line: line_no,
        });
        Ok(())
    }

    /// BuildKit's `newNodeFromLine`. Errors carry a word to point the caret at.
    fn node_from_line(
        &self,
        line: &str,
        span: &Span,
        depth: usize,
    ) -> Result<Node, (ErrorKind, String)> {
        let (keyword, flags, rest) = line_args::split_command(line, self.escape);
        let lower = keyword.to_lowercase();
        let at_args = |kind: ErrorKind| (kind, rest.clone());
        let mut trigger = None;
        let parsed = match lower.as_str() {
            "add" | "copy" | "volume" => line_args::maybe_json_list(&rest).map_err(at_args)?,
            "arg" => line_args::name_or_name_val(&rest, self.escape),
            "cmd" | "entrypoint" | "run" | "shell" => {
                line_args::maybe_json(&rest).map_err(at_args)?
            }
            "env" => {
                line_args::name_val(&rest, "ENV", self.escape).map_err(|k| needle_for(k, &rest))?
            }
            "label" => line_args::name_val(&rest, "LABEL", self.escape)
                .map_err(|k| needle_for(k, &rest))?,
            "expose" | "from" => line_args::whitespace_list(&rest),
            "healthcheck" => line_args::health_config(&rest).map_err(at_args)?,
            "maintainer" | "stopsignal" | "user" | "workdir" => line_args::single(&rest),
            "onbuild" => {
                if !rest.is_empty() {
                    if depth >= MAX_ONBUILD_DEPTH {
                        return Err((
                            ErrorKind::OnbuildTooDeep {
                                limit: MAX_ONBUILD_DEPTH,
                            },
                            keyword,
                        ));
                    }
                    trigger = Some(Box::new(self.node_from_line(&rest, span, depth + 1)?));
                }
                Parsed::default()
            }
            _ => Parsed {
                args: vec![String::new()],
                json: false,
            },
        };
        Ok(Node {
            keyword,
            flags,
            args: parsed.args,
            trigger,
            json: parsed.json,
            heredocs: Vec::new(),
            original: line.to_string(),
            span: span.clone(),
        })
    }
}

fn needle_for(kind: ErrorKind, rest: &str) -> (ErrorKind, String) {
    let needle = match &kind {
        ErrorKind::NameValueMissingEquals { word } => word.clone(),
        _ => rest.to_string(),
    };
    (kind, needle)
}

/// ADD, COPY and RUN (also as an ONBUILD trigger) in shell form.
fn can_contain_heredoc(node: &Node) -> bool {
    let node = match &node.trigger {
        Some(t) if node.keyword.eq_ignore_ascii_case("onbuild") => t,
        _ => node,
    };
    let k = node.keyword.to_lowercase();
    matches!(k.as_str(), "add" | "copy" | "run") && !node.json
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// `\` (or the escape character) at the end, optionally followed by blanks,
/// continues the line unless it is itself escaped. Returns the line without
/// it, and whether the logical line ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// Matches `#` `key` `=` `value` (BuildKit's directive regexp) and returns a
/// recognised directive.
fn directive_of(line: &str) -> Option<(DirectiveName, String)> {
    let body = line.strip_prefix('#')?.trim_start();
    let key_len = body
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(body.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let is_re_space = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
    let after_key = body[key_len..].trim_start_matches(is_re_space);
    let after_eq = after_key.strip_prefix('=')?;
    if after_eq.is_empty() {
        return None;
    }
    let trimmed = after_eq.trim_start_matches(is_re_space);
    let value = if trimmed.is_empty() {
        // `.+?` must take one character: the regexp backtracks to the last blank.
        after_eq.chars().last().map(String::from)?
    } else {
        trimmed.trim_end_matches(is_re_space).to_string()
    };
    let name = match body[..key_len].to_ascii_lowercase().as_str() {
        "syntax" => DirectiveName::Syntax,
        "escape" => DirectiveName::Escape,
        "check" => DirectiveName::Check,
        _ => return None,
    };
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerfile::dump::dump;

    fn d(text: &str) -> String {
        dump(&parse_ast(text, "Containerfile").unwrap())
    }

    fn err(text: &str) -> String {
        parse_ast(text, "Containerfile").unwrap_err().headline()
    }

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("a \\  ", '\\'), ("a ", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("a`", '`'), ("a", false));
        assert_eq!(trim_continuation("a\\", '`'), ("a\\", true));
    }

    #[test]
    fn directives_match_buildkit() {
        assert_eq!(
            directive_of("# escape=`"),
            Some((DirectiveName::Escape, "`".into()))
        );
        assert_eq!(
            directive_of("#SYNTAX = docker/dockerfile:1 "),
            Some((DirectiveName::Syntax, "docker/dockerfile:1".into()))
        );
        assert_eq!(
            directive_of("# check=skip=all"),
            Some((DirectiveName::Check, "skip=all".into()))
        );
        assert_eq!(
            directive_of("# escape = "),
            Some((DirectiveName::Escape, " ".into()))
        );
        assert_eq!(directive_of("# escape ="), None);
        assert_eq!(directive_of("# foo=bar"), None);
        assert_eq!(directive_of("# 1a=bar"), None);
        assert_eq!(directive_of("escape=`"), None);
    }

    #[test]
    fn basic_dump() {
        assert_eq!(
            d("FROM a\nRUN echo hi\n"),
            "(from \"a\")\n(run \"echo hi\")\n"
        );
        assert_eq!(d("\u{feff}from a\r\nCMD []\r\n"), "(from \"a\")\n(cmd)\n");
        assert_eq!(d("ONBUILD RUN [\"a\"]"), "(onbuild (run \"a\"))\n");
        assert_eq!(d("FOO bar baz"), "(foo \"\")\n");
        assert_eq!(d("RUN a \\\n# c\n\n  b"), "(run \"a   b\")\n");
        assert_eq!(d("HEALTHCHECK"), "(healthcheck)\n");
    }

    #[test]
    fn escape_directive_changes_continuation() {
        assert_eq!(
            d("# escape=`\nRUN a `\nb\nRUN c \\\n"),
            "(run \"a b\")\n(run \"c \\\\\")\n"
        );
        // After a blank line directives are plain comments.
        assert_eq!(d("\n# escape=`\nRUN a `\nb\n"), "(run \"a `\")\n(b \"\")\n");
    }

    #[test]
    fn spans_cover_lines_and_columns() {
        let ast = parse_ast(
            "# c\n\n  RUN a \\\n# inside\n  b\nCOPY <<EOF /x\nhello\nEOF\n",
            "F",
        )
        .unwrap();
        let run = &ast.nodes[0].span;
        assert_eq!(
            (run.start, run.end),
            (Position::new(3, 3), Position::new(5, 4))
        );
        let copy = &ast.nodes[1];
        assert_eq!(
            (copy.span.start, copy.span.end),
            (Position::new(6, 1), Position::new(8, 4))
        );
        assert_eq!(copy.heredocs[0].content, "hello\n");
    }

    #[test]
    fn heredoc_bodies_attach_in_order() {
        let ast = parse_ast(
            "COPY <<X <<Y /dest\nY\nX\nX\nY\nRUN <<-E\n\tcat\n\tE\n",
            "F",
        )
        .unwrap();
        let docs = &ast.nodes[0].heredocs;
        assert_eq!(
            (docs[0].name.as_str(), docs[0].content.as_str()),
            ("X", "Y\n")
        );
        assert_eq!(
            (docs[1].name.as_str(), docs[1].content.as_str()),
            ("Y", "X\n")
        );
        assert_eq!(ast.nodes[1].heredocs[0].body(), "cat\n");
        assert_eq!(ast.nodes[1].heredocs[0].content, "\tcat\n");
        // JSON form takes no heredoc: the next line is an instruction.
        let ast = parse_ast("RUN [\"<<EOF\"]\nEOF\n", "F").unwrap();
        assert_eq!(ast.nodes.len(), 2);
        // ONBUILD's trigger can take one.
        let ast = parse_ast("ONBUILD RUN <<EOF\nx\nEOF\n", "F").unwrap();
        assert_eq!(ast.nodes[0].heredocs[0].content, "x\n");
    }

    #[test]
    fn crlf_heredoc_body_is_kept_verbatim() {
        let ast = parse_ast("RUN <<EOF\r\na\r\nEOF\r\n", "F").unwrap();
        assert_eq!(ast.nodes[0].heredocs[0].content, "a\r\n");
    }

    #[test]
    fn warnings_for_empty_continuation_lines() {
        let ast = parse_ast("RUN a \\\n\n b\n", "F").unwrap();
        assert_eq!(ast.warnings.len(), 1);
        assert_eq!(
            ast.warnings[0].message,
            "Empty continuation line found in: RUN a  b"
        );
    }

    #[test]
    fn warns_like_buildkit_on_empty_continuation_lines() {
        let text = "\nFROM alpine:3.6\n\nRUN valid \\\n    continuation\n\nRUN something \\\n\n    following \\\n\n    more\n\nRUN another \\\n\n    thing\n\nRUN non-indented \\\n# this is a comment\n   after-comment\n\nRUN indented \\\n    # this is an indented comment\n    comment\n\t";
        let ast = parse_ast(text, "F").unwrap();
        let messages: Vec<&str> = ast.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "Empty continuation line found in: RUN something     following     more",
                "Empty continuation line found in: RUN another     thing"
            ]
        );
    }

    #[test]
    fn extracts_heredocs_like_buildkit() {
        // BuildKit's TestParseExtractsHeredoc, case by case.
        let text = "\nFROM alpine:3.6\n\nENV NAME=me\n\nRUN ls\n\nUSER <<INVALID\nINVALID\n\nRUN <<EMPTY\nEMPTY\n\nRUN 3<<EMPTY2\nEMPTY2\n\nRUN \"<<NOHEREDOC\"\n\nRUN <<INDENT\n\tfoo\n\tbar\nINDENT\n\nRUN <<-UNINDENT\n\tbaz\n\tquux\nUNINDENT\n\nRUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\n\nRUN <<-EXPAND\n\texpand $NAME\nEXPAND\n\nRUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n\nRUN <<COPY\necho hello world\necho foo bar\nCOPY\n\nRUN <<COMMENT\n# internal comment\necho hello world\necho foo bar # trailing comment\nCOMMENT\n\nRUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n\nCOPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\n\nCOPY <<EOF /quotes\n\"foo\"\n'bar'\nEOF\n\nCOPY <<X <<Y /dest\nY\nX\nX\nY\n\nRUN <<COMPLEX python3\nprint('hello world')\nCOMPLEX\n\nCOPY <<file.txt /dest\nhello world\nfile.txt\n\nRUN <<eo'f'\necho foo\neof\n\nRUN <<eo\\'f\necho foo\neo'f\n\nRUN <<'e'o\\'f\necho foo\neo'f\n\nRUN <<'one two'\necho bar\none two\n\nRUN <<$EOF\n$EOF\n\nRUN <<  EOF\nEOF\n\nRUN <<  EOF  > foo\nEOF\n\t";
        let ast = parse_ast(text, "F").unwrap();
        // (name, content, expand, chomp, fd) per heredoc, per node after FROM.
        type Doc = (&'static str, &'static str, bool, bool, u32);
        let want: Vec<Vec<Doc>> = vec![
            vec![],
            vec![],
            vec![],
            vec![],
            vec![("EMPTY", "", true, false, 0)],
            vec![("EMPTY2", "", true, false, 3)],
            vec![],
            vec![("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
            vec![("UNINDENT", "\tbaz\n\tquux\n", true, true, 0)],
            vec![("UNINDENT2", "\tbaz\n\tquux\n", true, true, 0)],
            vec![("EXPAND", "\texpand $NAME\n", true, true, 0)],
            vec![("NOEXPAND", "\tdon't expand $NAME\n", false, true, 0)],
            vec![("COPY", "echo hello world\necho foo bar\n", true, false, 0)],
            vec![(
                "COMMENT",
                "# internal comment\necho hello world\necho foo bar # trailing comment\n",
                true,
                false,
                0,
            )],
            vec![("MOUNT", "echo hello\n", true, false, 0)],
            vec![
                ("FILE1", "content 1\n", true, false, 0),
                ("FILE2", "content 2\n", true, false, 0),
            ],
            vec![("EOF", "\"foo\"\n'bar'\n", true, false, 0)],
            vec![("X", "Y\n", true, false, 0), ("Y", "X\n", true, false, 0)],
            vec![("COMPLEX", "print('hello world')\n", true, false, 0)],
            vec![("file.txt", "hello world\n", true, false, 0)],
            vec![("eof", "echo foo\n", false, false, 0)],
            vec![("eo'f", "echo foo\n", true, false, 0)],
            vec![("eo'f", "echo foo\n", false, false, 0)],
            vec![("one two", "echo bar\n", false, false, 0)],
            vec![("$EOF", "", true, false, 0)],
            vec![("EOF", "", true, false, 0)],
            vec![("EOF", "", true, false, 0)],
        ];
        assert_eq!(ast.nodes.len(), want.len() + 1);
        for (node, want) in ast.nodes[1..].iter().zip(want) {
            let got: Vec<Doc> = node
                .heredocs
                .iter()
                .map(|h| {
                    let w = want
                        .iter()
                        .find(|w| w.0 == h.name)
                        .copied()
                        .unwrap_or(("?", "", false, false, 0));
                    assert_eq!(
                        (h.content.as_str(), h.expand, h.chomp, h.fd),
                        (w.1, w.2, w.3, w.4),
                        "{}",
                        node.original
                    );
                    w
                })
                .collect();
            assert_eq!(got, want, "{}", node.original);
        }
    }

    #[test]
    fn raw_errors() {
        assert_eq!(err(""), "Containerfile:1:1: file with no instructions");
        assert_eq!(
            err("# only\n\n# comments\n"),
            "Containerfile:3:1: file with no instructions"
        );
        assert_eq!(
            err("FROM a\nENV PATH\n"),
            "Containerfile:2:5: ENV must have two arguments"
        );
        assert_eq!(
            err("FROM a\nLABEL a=1 b\n"),
            "Containerfile:2:11: Syntax error - can't find = in \"b\". Must be of the form: name=value"
        );
        assert_eq!(
            err("CMD [ \"echo\", [ \"nested json\" ] ]"),
            "Containerfile:1:5: when using JSON array syntax, arrays must be comprised of strings only"
        );
        assert_eq!(
            err("# escape=x\nFROM a"),
            "Containerfile:1:10: invalid escape token 'x' does not match ` or \\"
        );
        assert_eq!(
            err("# escape=`\n# escape=\\\nFROM a"),
            "Containerfile:2:1: only one escape parser directive can be used"
        );
        assert_eq!(
            err("FROM a\nRUN <<EOF\nx\n"),
            "Containerfile:2:5: unterminated heredoc \"EOF\""
        );
        let long = format!("FROM a\nRUN {}\n", "x".repeat(MAX_LINE));
        assert_eq!(
            err(&long),
            "Containerfile:2:1: dockerfile line greater than max allowed size of 65535"
        );
        let ok = format!("RUN {}\n", "x".repeat(MAX_LINE - 5));
        assert!(parse_ast(&ok, "F").is_ok());
        let deep = format!("{}RUN x", "ONBUILD ".repeat(100));
        assert_eq!(
            err(&deep),
            "Containerfile:1:1: ONBUILD nested more than 64 levels deep"
        );
        // BuildKit splits `${...}` results on blanks, so a heredoc word can
        // end up holding half an expression.
        assert_eq!(
            err("FROM a\nRUN ${a:- <<${b:-c d}}\n"),
            "Containerfile:2:13: cannot read the heredoc word \"${b:-c\": syntax error: missing '}'"
        );
        // An unterminated quote hides the heredoc (as in BuildKit): one plain RUN.
        assert_eq!(parse_ast("RUN <<'EOF\"\n", "F").unwrap().nodes.len(), 1);
    }
}
