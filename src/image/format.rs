//! A Go `text/template` subset for `--format` (`inspect`, `images`,
//! `history`): fields (`{{.A.B}}`), string and number literals, pipelines
//! (`{{.X | json}}`), trim markers (`{{-`, `-}}`) and buildah's functions:
//! `json`, `index`, `join`, `split`, `lower`, `upper`, `title`, `truncate`,
//! `pad`, `len`, `printf`; `{{if}}`, `{{range}}`, `{{with}}` with
//! `{{else}}` and `{{end}}`. No variables (`$x`), no `{{else if}}`.
//!
//! Data is any `serde_json::Value`, so every command renders the same
//! structs it prints as JSON. Values print as Go's `%v` does: strings raw,
//! lists `[a b]`, maps `map[k:v]` with sorted keys, null `<no value>`.
//! Serialised data omits empty fields, so a missing field is nil (as in a
//! Go map) rather than an error; `index` of a missing key in a map of
//! strings (labels, annotations) is `""`, Go's zero value for it.

use serde_json::Value;

use super::gojson;

/// Why a template could not be parsed or rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("template parse error at column {column}: {why}")]
    Parse { column: usize, why: String },
    #[error("template: executing {action:?}: {why}")]
    Exec { action: String, why: String },
}

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    /// `.` (empty) or `.A.B`.
    Field(Vec<String>),
    Str(String),
    Number(serde_json::Number),
    Bool(bool),
    Func(String),
}

#[derive(Clone, Debug, PartialEq)]
struct Action {
    source: String,
    /// Commands joined by `|`; each is operands, a function first if any.
    commands: Vec<Vec<Operand>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockKind {
    If,
    Range,
    With,
}

impl BlockKind {
    fn name(self) -> &'static str {
        match self {
            BlockKind::If => "if",
            BlockKind::Range => "range",
            BlockKind::With => "with",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Text(String),
    Action(Action),
    /// `{{if}}`, `{{range}}`, `{{with}}` … `{{else}}` … `{{end}}`.
    Block {
        kind: BlockKind,
        pipeline: Action,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// A block being parsed.
struct Frame {
    kind: BlockKind,
    pipeline: Action,
    column: usize,
    body: Vec<Node>,
    otherwise: Vec<Node>,
    in_else: bool,
}

fn current<'a>(root: &'a mut Vec<Node>, stack: &'a mut [Frame]) -> &'a mut Vec<Node> {
    match stack.last_mut() {
        Some(f) if f.in_else => &mut f.otherwise,
        Some(f) => &mut f.body,
        None => root,
    }
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

const FUNCTIONS: &[&str] = &[
    "json", "index", "join", "split", "lower", "upper", "title", "truncate", "pad", "len", "printf",
];

impl Template {
    pub fn parse(text: &str) -> Result<Template, FormatError> {
        let mut nodes = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            let mut literal = &rest[..open];
            let mut inner_start = open + 2;
            if rest[inner_start..].starts_with("- ") {
                literal = literal.trim_end();
                inner_start += 1;
            }
            let close = rest[inner_start..].find("}}").ok_or(FormatError::Parse {
                column: offset + open + 1,
                why: "unclosed action: missing }}".into(),
            })? + inner_start;
            let mut inner_end = close;
            let mut trim_after = false;
            if rest[inner_start..close].ends_with(" -") {
                inner_end -= 1;
                trim_after = true;
            }
            if !literal.is_empty() {
                push_text(current(&mut nodes, &mut stack), literal);
            }
            let source = rest[inner_start..inner_end].trim();
            let column = offset + inner_start + 1;
            control(source, column, &mut nodes, &mut stack)?;
            offset += close + 2;
            rest = &rest[close + 2..];
            if trim_after {
                let trimmed = rest.trim_start();
                offset += rest.len() - trimmed.len();
                rest = trimmed;
            }
        }
        if !rest.is_empty() {
            push_text(current(&mut nodes, &mut stack), rest);
        }
        if let Some(open) = stack.last() {
            return Err(FormatError::Parse {
                column: open.column,
                why: format!("{{{{{}}}}} has no {{{{end}}}}", open.kind.name()),
            });
        }
        Ok(Template { nodes })
    }

    /// Renders with `data` as `.`.
    pub fn render(&self, data: &Value) -> Result<String, FormatError> {
        let mut out = String::new();
        render_nodes(&self.nodes, data, None, &mut out)?;
        Ok(out)
    }

    /// Renders with `data` as `.`; a field path from the top that `data`
    /// lacks (serialised data leaves empty fields out) is looked up in
    /// `zero`, the Go zero values of the struct the data stands for, so
    /// `{{.OCIv1.Config.Cmd}}` prints `[]` as buildah's does, not
    /// `<no value>`. `{{json …}}` still sees the data as it is.
    pub fn render_with_zero_values(
        &self,
        data: &Value,
        zero: &Value,
    ) -> Result<String, FormatError> {
        let mut out = String::new();
        render_nodes(&self.nodes, data, Some(zero), &mut out)?;
        Ok(out)
    }

    /// Renders any serialisable value.
    pub fn render_serialize<T: serde::Serialize>(&self, data: &T) -> Result<String, FormatError> {
        let value = serde_json::to_value(data).map_err(|e| FormatError::Exec {
            action: String::new(),
            why: e.to_string(),
        })?;
        self.render(&value)
    }
}

/// Handles one action: a block keyword, or a plain action.
fn control(
    source: &str,
    column: usize,
    root: &mut Vec<Node>,
    stack: &mut Vec<Frame>,
) -> Result<(), FormatError> {
    let err = |why: String| FormatError::Parse { column, why };
    let (word, rest) = source
        .split_once(char::is_whitespace)
        .map_or((source, ""), |(w, r)| (w, r.trim()));
    let kind = match word {
        "if" => Some(BlockKind::If),
        "range" => Some(BlockKind::Range),
        "with" => Some(BlockKind::With),
        _ => None,
    };
    if let Some(kind) = kind {
        if rest.is_empty() {
            return Err(err(format!("missing value for {}", kind.name())));
        }
        stack.push(Frame {
            kind,
            pipeline: parse_action(rest, column)?,
            column,
            body: Vec::new(),
            otherwise: Vec::new(),
            in_else: false,
        });
        return Ok(());
    }
    match (word, rest.is_empty()) {
        ("else", true) => match stack.last_mut() {
            Some(f) if !f.in_else => {
                f.in_else = true;
                Ok(())
            }
            _ => Err(err("unexpected {{else}}".into())),
        },
        ("else", false) => Err(err(
            "{{else if}} is not supported: nest an {{if}} inside {{else}}".into(),
        )),
        ("end", true) => {
            let f = stack
                .pop()
                .ok_or_else(|| err("unexpected {{end}}".into()))?;
            current(root, stack).push(Node::Block {
                kind: f.kind,
                pipeline: f.pipeline,
                body: f.body,
                otherwise: f.otherwise,
            });
            Ok(())
        }
        _ => {
            let action = parse_action(source, column)?;
            current(root, stack).push(Node::Action(action));
            Ok(())
        }
    }
}

/// `zero` is the zero-value tree for `dot` while dot is the top data; a
/// `with` or `range` body has a new dot and none.
fn render_nodes(
    nodes: &[Node],
    dot: &Value,
    zero: Option<&Value>,
    out: &mut String,
) -> Result<(), FormatError> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(a) => out.push_str(&print(&eval_action(a, dot, zero)?)),
            Node::Block {
                kind,
                pipeline,
                body,
                otherwise,
            } => {
                let value = eval_action(pipeline, dot, zero)?;
                match kind {
                    BlockKind::If if truthy(&value) => render_nodes(body, dot, zero, out)?,
                    BlockKind::With if truthy(&value) => {
                        render_nodes(body, &value, sub_zero(pipeline, zero), out)?
                    }
                    BlockKind::Range if truthy(&value) => {
                        let items: Vec<&Value> = match &value {
                            Value::Array(a) => a.iter().collect(),
                            // Go ranges over a map's values in key order.
                            Value::Object(m) => {
                                let mut keys: Vec<&String> = m.keys().collect();
                                keys.sort();
                                keys.into_iter().map(|k| &m[k.as_str()]).collect()
                            }
                            v => {
                                return Err(FormatError::Exec {
                                    action: format!("{{{{range {}}}}}", pipeline.source),
                                    why: format!("range can't iterate over a {}", kind_of(v)),
                                })
                            }
                        };
                        for item in items {
                            render_nodes(body, item, None, out)?;
                        }
                    }
                    _ => render_nodes(otherwise, dot, zero, out)?,
                }
            }
        }
    }
    Ok(())
}

/// Go's truth: false, 0, nil and empty strings, lists and maps are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn push_text(nodes: &mut Vec<Node>, text: &str) {
    if let Some(Node::Text(t)) = nodes.last_mut() {
        t.push_str(text);
    } else {
        nodes.push(Node::Text(text.to_string()));
    }
}

fn parse_action(source: &str, column: usize) -> Result<Action, FormatError> {
    let err = |why: String| FormatError::Parse { column, why };
    if source.is_empty() {
        return Err(err("empty action {{}}".into()));
    }
    let mut commands = vec![Vec::new()];
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            if commands.last().is_some_and(Vec::is_empty) {
                return Err(err(format!("missing command before | in {source:?}")));
            }
            commands.push(Vec::new());
            i += 1;
        } else if c == '"' || c == '`' {
            let (s, used) = parse_string(&chars[i..])
                .ok_or_else(|| err(format!("unterminated string in {source:?}")))?;
            commands
                .last_mut()
                .expect("never empty")
                .push(Operand::Str(s));
            i += used;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '|' {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            commands
                .last_mut()
                .expect("never empty")
                .push(parse_word(&word).map_err(err)?);
        }
    }
    if commands.last().is_some_and(Vec::is_empty) {
        return Err(err(format!("missing command after | in {source:?}")));
    }
    for command in &commands {
        let operands_after_first = command
            .iter()
            .skip(1)
            .any(|o| matches!(o, Operand::Func(_)));
        if operands_after_first || (!matches!(command[0], Operand::Func(_)) && command.len() > 1) {
            return Err(err(format!(
                "in {source:?}: only a function can take arguments; functions are {}",
                FUNCTIONS.join(", ")
            )));
        }
    }
    Ok(Action {
        source: source.to_string(),
        commands,
    })
}

fn parse_word(word: &str) -> Result<Operand, String> {
    if word == "." {
        return Ok(Operand::Field(Vec::new()));
    }
    if let Some(path) = word.strip_prefix('.') {
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            return Err(format!("bad field name {word:?}"));
        }
        return Ok(Operand::Field(parts));
    }
    match word {
        "true" => return Ok(Operand::Bool(true)),
        "false" => return Ok(Operand::Bool(false)),
        _ => {}
    }
    if let Ok(n) = word.parse::<i64>() {
        return Ok(Operand::Number(n.into()));
    }
    if FUNCTIONS.contains(&word) {
        return Ok(Operand::Func(word.to_string()));
    }
    Err(format!(
        "function {word:?} not defined; functions are {}",
        FUNCTIONS.join(", ")
    ))
}

/// A Go string literal at the start of `chars`: the value and chars used.
fn parse_string(chars: &[char]) -> Option<(String, usize)> {
    let quote = chars[0];
    let mut out = String::new();
    let mut i = 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Some((out, i + 1));
        }
        if c == '\\' && quote == '"' {
            i += 1;
            match *chars.get(i)? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                'u' => {
                    let hex: String = chars.get(i + 1..i + 5)?.iter().collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    i += 4;
                }
                _ => return None,
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    None
}

fn eval_action(action: &Action, data: &Value, zero: Option<&Value>) -> Result<Value, FormatError> {
    let fail = |why: String| FormatError::Exec {
        action: format!("{{{{{}}}}}", action.source),
        why,
    };
    let mut piped: Option<Value> = None;
    for command in &action.commands {
        let value = match &command[0] {
            Operand::Func(name) => {
                let mut args = command[1..]
                    .iter()
                    .map(|o| operand(o, data, zero))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(fail)?;
                args.extend(piped.take());
                call(name, &args).map_err(fail)?
            }
            single => {
                if piped.is_some() {
                    return Err(fail("a value can only be piped into a function".into()));
                }
                operand(single, data, zero).map_err(fail)?
            }
        };
        piped = Some(value);
    }
    Ok(piped.unwrap_or(Value::Null))
}

/// The value `path` names in `v` (JSON keys matched as Go fields), or
/// None when a step is missing or not a map.
fn walk<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut v = v;
    for name in path {
        let Value::Object(m) = v else { return None };
        v = go_field(m, name)?;
    }
    Some(v)
}

/// The value of Go field `name` in a serialised struct: the JSON key as
/// written, else case-insensitively, else with `.` and `_` ignored (OCI keys
/// such as `os.version`, `diff_ids` and `created_by` are the Go fields
/// `OSVersion`, `DiffIDs` and `CreatedBy`).
fn go_field<'v>(m: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    m.get(name)
        .or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .or_else(|| {
            m.iter()
                .find(|(k, _)| go_field_key_eq(k, name))
                .map(|(_, v)| v)
        })
}

/// `{{with .A.B}}` makes `.A.B` the dot: its zero values are the `.A.B`
/// part of the tree (none for anything but a plain field path).
fn sub_zero<'z>(pipeline: &Action, zero: Option<&'z Value>) -> Option<&'z Value> {
    match pipeline.commands.as_slice() {
        [command] => match command.as_slice() {
            [Operand::Field(path)] => zero.and_then(|z| walk(z, path)),
            _ => None,
        },
        _ => None,
    }
}

fn operand(o: &Operand, data: &Value, zero: Option<&Value>) -> Result<Value, String> {
    match o {
        Operand::Field(path) => {
            if let Some(zero) = zero {
                if walk(data, path).is_none_or(Value::is_null) {
                    if let Some(z) = walk(zero, path) {
                        return Ok(z.clone());
                    }
                }
            }
            let mut v = data;
            for name in path {
                v = match v {
                    // Go templates name struct fields (`.OCIv1.Config`) where
                    // the serialised form has JSON keys (`config`). Empty
                    // fields are omitted from the serialised data, so a
                    // missing one is nil (as in a Go map), not an error.
                    Value::Object(m) => go_field(m, name).unwrap_or(&Value::Null),
                    _ => return Err(format!("can't evaluate field {name} in a {}", kind_of(v))),
                };
            }
            Ok(v.clone())
        }
        Operand::Str(s) => Ok(Value::String(s.clone())),
        Operand::Number(n) => Ok(Value::Number(n.clone())),
        Operand::Bool(b) => Ok(Value::Bool(*b)),
        Operand::Func(name) => call(name, &[]),
    }
}

/// Whether the JSON key `key` is the Go field `field` once `.` and `_`
/// are left out and case is ignored (`diff_ids` and `DiffIDs`).
fn go_field_key_eq(key: &str, field: &str) -> bool {
    let squeeze = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '.' | '_'))
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    squeeze(key) == squeeze(field)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil value",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

fn string_arg<'a>(name: &str, v: &'a Value) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("{name} wants a string, got a {}", kind_of(v)))
}

fn int_arg(name: &str, v: &Value) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("{name} wants an integer, got a {}", kind_of(v)))
}

fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    let s = |v| Value::String(v);
    match name {
        "json" => {
            arity(name, args, 1)?;
            let bytes = gojson::to_vec(&args[0]).map_err(|e| e.to_string())?;
            Ok(s(String::from_utf8(bytes).map_err(|e| e.to_string())?))
        }
        "index" => {
            if args.len() < 2 {
                return Err(format!(
                    "index wants a value and at least one key, got {} args",
                    args.len()
                ));
            }
            let mut v = args[0].clone();
            for key in &args[1..] {
                v = match (&v, key) {
                    // Go: a missing map key gives the zero value.
                    // A missing key gives the map's zero value: "" for a
                    // map of strings (labels, annotations), else nil.
                    (Value::Object(m), Value::String(k)) => match m.get(k) {
                        Some(v) => v.clone(),
                        None if m.values().all(Value::is_string) => Value::String(String::new()),
                        None => Value::Null,
                    },
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_u64().ok_or("index out of range")? as usize;
                        a.get(i)
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    (v, k) => {
                        return Err(format!(
                            "can't index a {} with a {}",
                            kind_of(v),
                            kind_of(k)
                        ))
                    }
                };
            }
            Ok(v)
        }
        "join" => {
            arity(name, args, 2)?;
            let list = args[0]
                .as_array()
                .ok_or_else(|| format!("join wants a list, got a {}", kind_of(&args[0])))?;
            let sep = string_arg(name, &args[1])?;
            Ok(s(list.iter().map(print).collect::<Vec<_>>().join(sep)))
        }
        "split" => {
            arity(name, args, 2)?;
            let text = string_arg(name, &args[0])?;
            let sep = string_arg(name, &args[1])?;
            // Go: an empty separator splits into characters.
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| s(c.to_string())).collect()
            } else {
                text.split(sep).map(|p| s(p.to_string())).collect()
            };
            Ok(Value::Array(parts))
        }
        "lower" | "upper" | "title" => {
            arity(name, args, 1)?;
            let text = string_arg(name, &args[0])?;
            Ok(s(match name {
                "lower" => text.to_lowercase(),
                "upper" => text.to_uppercase(),
                _ => title(text),
            }))
        }
        "truncate" => {
            arity(name, args, 2)?;
            let text = string_arg(name, &args[0])?;
            let n = int_arg(name, &args[1])?.max(0) as usize;
            Ok(s(text.chars().take(n).collect()))
        }
        "pad" => {
            arity(name, args, 3)?;
            let text = string_arg(name, &args[0])?;
            let (left, right) = (
                int_arg(name, &args[1])?.max(0) as usize,
                int_arg(name, &args[2])?.max(0) as usize,
            );
            Ok(s(format!(
                "{}{text}{}",
                " ".repeat(left),
                " ".repeat(right)
            )))
        }
        "len" => {
            arity(name, args, 1)?;
            let n = match &args[0] {
                Value::String(t) => t.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                v => return Err(format!("len of a {}", kind_of(v))),
            };
            Ok(Value::from(n))
        }
        "printf" => {
            let fmt = string_arg(name, args.first().ok_or("printf wants a format")?)?;
            printf(fmt, &args[1..]).map(s)
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// Go's deprecated `strings.Title`: upper-case the first letter of each word.
fn title(text: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

/// `%s`, `%v`, `%d`, `%q` and `%%`, with optional width (`%-20s`).
fn printf(fmt: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut width = String::new();
        while let Some(&n) = chars.peek() {
            if n == '-' && width.is_empty() && !left {
                left = true;
            } else if n.is_ascii_digit() {
                width.push(n);
            } else {
                break;
            }
            chars.next();
        }
        let verb = chars.next().ok_or("printf format ends in %")?;
        let text = match verb {
            '%' => {
                out.push('%');
                continue;
            }
            's' | 'v' | 'd' => print(args.next().ok_or("printf: missing argument")?),
            'q' => {
                let v = args.next().ok_or("printf: missing argument")?;
                serde_json::to_string(&Value::String(print(v))).map_err(|e| e.to_string())?
            }
            other => {
                return Err(format!(
                    "printf verb %{other} is not supported (use %s, %v, %d, %q)"
                ))
            }
        };
        let width: usize = width.parse().unwrap_or(0);
        let pad = " ".repeat(width.saturating_sub(text.chars().count()));
        if left {
            out.push_str(&text);
            out.push_str(&pad);
        } else {
            out.push_str(&pad);
            out.push_str(&text);
        }
    }
    Ok(out)
}

/// Go's `%v`.
pub fn print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", print(&m[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, data: &Value) -> Result<String, FormatError> {
        Template::parse(t)?.render(data)
    }

    fn data() -> Value {
        json!({
            "ID": "abc",
            "Size": 1024,
            "Config": {"Labels": {"a.b": "x", "z": "<y>"}, "Env": ["A=1", "B=2"], "Cmd": null},
            "Names": ["n1", "n2"],
        })
    }

    #[test]
    fn fields_and_text() {
        let d = data();
        assert_eq!(
            render("id={{.ID}} size={{ .Size }}\n", &d).unwrap(),
            "id=abc size=1024\n"
        );
        assert_eq!(render("{{.Config.Env}}", &d).unwrap(), "[A=1 B=2]");
        assert_eq!(
            render("{{.Config.Labels}}", &d).unwrap(),
            "map[a.b:x z:<y>]"
        );
        assert_eq!(render("{{.Config.Cmd}}", &d).unwrap(), "<no value>");
        let oci = json!({"os.version": "10", "rootfs": {"diff_ids": ["a"]},
                         "history": [{"created_by": "x", "empty_layer": true}]});
        assert_eq!(
            render("{{.OSVersion}} {{.RootFS.DiffIDs}} {{range .History}}{{.CreatedBy}} {{.EmptyLayer}}{{end}}", &oci)
                .unwrap(),
            "10 [a] x true"
        );
        assert_eq!(render("no actions", &d).unwrap(), "no actions");
        assert_eq!(render("{{\"tab\\there\"}}", &d).unwrap(), "tab\there");
    }

    #[test]
    fn functions() {
        let d = data();
        assert_eq!(
            render("{{json .Config.Labels}}", &d).unwrap(),
            r#"{"a.b":"x","z":"\u003cy\u003e"}"#
        );
        assert_eq!(
            render("{{json .}}", &json!([1, "a"])).unwrap(),
            r#"[1,"a"]"#
        );
        assert_eq!(
            render(r#"{{index .Config.Labels "a.b"}}"#, &d).unwrap(),
            "x"
        );
        assert_eq!(
            render(r#"{{index .Config.Labels "missing"}}"#, &d).unwrap(),
            ""
        );
        assert_eq!(
            render(r#"{{index .Config "missing"}}"#, &d).unwrap(),
            "<no value>"
        );
        assert_eq!(render("{{index .Names 1}}", &d).unwrap(), "n2");
        assert_eq!(render(r#"{{join .Names ","}}"#, &d).unwrap(), "n1,n2");
        assert_eq!(render("{{.ID | upper}}", &d).unwrap(), "ABC");
        assert_eq!(render("{{.Names | json}}", &d).unwrap(), r#"["n1","n2"]"#);
        assert_eq!(render("{{truncate .ID 2}}", &d).unwrap(), "ab");
        assert_eq!(render("{{len .Names}}", &d).unwrap(), "2");
        assert_eq!(
            render(r#"{{printf "%-5s|%3d" .ID .Size}}"#, &d).unwrap(),
            "abc  |1024"
        );
        assert_eq!(render(r#"{{split "a:b" ":"}}"#, &d).unwrap(), "[a b]");
        assert_eq!(
            render(r#"{{title "hello world"}}"#, &d).unwrap(),
            "Hello World"
        );
    }

    #[test]
    fn go_field_names_find_json_keys() {
        let d = json!({"OCIv1": {"config": {"Env": ["A=1"]}, "rootfs": {"diff_ids": []}}});
        assert_eq!(render("{{.OCIv1.Config.Env}}", &d).unwrap(), "[A=1]");
        assert_eq!(render("{{.OCIv1.config.Env}}", &d).unwrap(), "[A=1]");
        assert_eq!(render("{{.OCIv1.RootFS.diff_ids}}", &d).unwrap(), "[]");
    }

    #[test]
    fn blocks() {
        let d = data();
        assert_eq!(
            render("{{range .Names}}<{{.}}>{{end}}", &d).unwrap(),
            "<n1><n2>"
        );
        assert_eq!(
            render("{{range .Config.Labels}}{{.}};{{end}}", &d).unwrap(),
            "x;<y>;"
        );
        assert_eq!(
            render("{{range .Config.Cmd}}x{{else}}none{{end}}", &d).unwrap(),
            "none"
        );
        assert_eq!(
            render("{{if .Config.Cmd}}y{{else}}n{{end}}", &d).unwrap(),
            "n"
        );
        assert_eq!(render("{{if .ID}}{{.ID}}{{end}}", &d).unwrap(), "abc");
        assert_eq!(
            render("{{with .Config}}{{len .Env}}{{end}}", &d).unwrap(),
            "2"
        );
        assert_eq!(
            render(
                "{{range .Names}}{{if .}}[{{range split . \"\"}}{{.}},{{end}}]{{end}}{{end}}",
                &d
            )
            .unwrap(),
            "[n,1,][n,2,]"
        );
        assert!(matches!(
            render("{{range .Names}}x", &d),
            Err(FormatError::Parse { column: 3, .. })
        ));
        assert!(render("{{end}}", &d).is_err());
        assert!(render("{{if .ID}}{{else}}{{else}}{{end}}", &d).is_err());
        assert!(render("{{if .ID}}{{else if .X}}{{end}}", &d).is_err());
        assert!(render("{{range .ID}}{{end}}", &d)
            .unwrap_err()
            .to_string()
            .contains("can't iterate"));
    }

    #[test]
    fn trim_markers() {
        let d = data();
        assert_eq!(render("a  {{- .ID -}}  \n b", &d).unwrap(), "aabcb");
    }

    #[test]
    fn errors_say_what_and_where() {
        let d = data();
        assert_eq!(render("{{.Nope}}", &d).unwrap(), "<no value>");
        let err = render("{{.ID.Sub}}", &d).unwrap_err();
        assert_eq!(
            err.to_string(),
            "template: executing \"{{.ID.Sub}}\": can't evaluate field Sub in a string"
        );
        assert!(matches!(
            render("x {{.ID", &d),
            Err(FormatError::Parse { column: 3, .. })
        ));
        assert!(render("{{frob .ID}}", &d)
            .unwrap_err()
            .to_string()
            .contains("not defined"));
        assert!(render("{{}}", &d).is_err());
        assert!(render("{{.ID .Size}}", &d).is_err());
        assert!(render("{{.ID | .Size}}", &d).is_err());
        assert!(render("{{json}}", &d)
            .unwrap_err()
            .to_string()
            .contains("wrong number of args"));
        assert!(render("{{.ID.Sub}}", &d).is_err());
        assert!(render("{{\"open}}", &d).is_err());
    }
}
