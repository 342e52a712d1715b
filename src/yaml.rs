//! All YAML reading and writing goes through this module, so the deprecated `serde_yaml` can be
//! swapped for another crate in one place.
//!
//! Values are parsed with `serde_yaml`; source positions of every key and value are indexed with
//! `yaml-rust2`'s event parser, so errors found after deserialisation can still point at a line.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A YAML value.
pub type Value = serde_yaml::Value;

/// A 1-based line and column in a source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// What went wrong, without the position.
    pub message: String,
    /// Where, when known.
    pub pos: Option<Pos>,
    /// The field whose value is at fault, when the text is valid YAML that no setting can hold.
    pub field: Option<String>,
}

impl From<serde_yaml::Error> for SyntaxError {
    fn from(e: serde_yaml::Error) -> Self {
        SyntaxError::from(&e)
    }
}

impl From<&serde_yaml::Error> for SyntaxError {
    fn from(e: &serde_yaml::Error) -> Self {
        let pos = e.location().map(|l| Pos { line: l.line(), column: l.column() });
        // serde_yaml appends " at line X column Y" to its message; the position is reported
        // separately, in the file:line:column prefix.
        let mut message = e.to_string();
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        SyntaxError { message, pos, field: None }
    }
}

/// Where each path of a document was written. Paths look like `a.b[2].c`.
#[derive(Debug, Clone, Default)]
pub struct PosIndex {
    keys: HashMap<String, Pos>,
    values: HashMap<String, Pos>,
}

impl PosIndex {
    /// Position of the key that introduces `path` (falls back to the value's position).
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.keys.get(path).or_else(|| self.values.get(path)).copied()
    }

    /// Position of the value at `path` (falls back to its key).
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.values.get(path).or_else(|| self.keys.get(path)).copied()
    }

    /// Whether the document wrote `path` at all.
    pub fn contains(&self, path: &str) -> bool {
        self.values.contains_key(path) || self.keys.contains_key(path)
    }
}

/// Parses one YAML document and indexes the position of every key and value. `<<` merge keys
/// are applied (a mapping's own keys win over merged ones), as YAML 1.1 readers do.
pub fn parse_located(text: &str) -> Result<(Value, PosIndex), SyntaxError> {
    let mut indexer = Indexer::default();
    // A failure here is reported by serde_yaml below, with its own message; the event parser
    // only contributes positions.
    let _ = Parser::new_from_str(text).load(&mut indexer, false);
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| {
        let mut err = explain_syntax(SyntaxError::from(&e), &e.to_string(), text);
        // A number beyond 64 bits is valid YAML that no setting can hold: name the field.
        if huge_integer(&e.to_string()).is_some() {
            err.field = err.pos.and_then(|p| {
                indexer.index.values.iter().find(|(_, at)| **at == p).map(|(path, _)| path.clone())
            });
        }
        // serde_yaml places a duplicate key at its mapping; point at the second occurrence.
        if err.message.starts_with("duplicate entry") {
            if let Some((path, pos)) = indexer.duplicates.first() {
                err.message = format!("{} (at {path})", err.message);
                err.pos = Some(*pos);
            }
        }
        err
    })?;
    if let Err(e) = value.apply_merge() {
        let pos = indexer.merges.first().copied();
        return Err(SyntaxError {
            message: format!(
                "{e}: a `<<` merge key takes an anchored mapping (`<<: *defaults`) or a list of them"
            ),
            pos,
            field: None,
        });
    }
    Ok((value, indexer.index))
}

/// libyaml's messages name the scanner's state, not the mistake; say what the user did.
fn explain_syntax(mut err: SyntaxError, full: &str, text: &str) -> SyntaxError {
    // An unclosed quote is only noticed at the end of the file; the opening quote is what to fix.
    if let Some(open) = context_mark(full, "while scanning a quoted scalar") {
        err.message =
            "this quoted string is never closed: add the closing quote (or escape a quote inside it)".into();
        err.pos = Some(open);
        return err;
    }
    // So is an unclosed `[` or `{`: point at the bracket that is never closed.
    let at_end = err.pos.is_some_and(|p| p.line > text.lines().count());
    for (context, what) in [
        ("while parsing a flow sequence", "this [ list is never closed: add the closing ]"),
        ("while parsing a flow mapping", "this { mapping is never closed: add the closing }"),
    ] {
        if let Some(open) = context_mark(full, context).filter(|_| at_end) {
            err.message = format!("{what} (and a ',' between items)");
            err.pos = Some(open);
            return err;
        }
    }
    if err.message == "found unknown escape character" {
        err.message = "unknown escape sequence in a double-quoted string: write \\\\ for a backslash, or use single quotes ('C:\\path')".into();
        return err;
    }
    if err.message == "mapping values are not allowed in this context" {
        err.message = "a `key: value` cannot start here: the line is indented under a value that is not a mapping; fix its indentation, or quote a value that contains \": \"".into();
        return err;
    }
    if let Some(pos) = err.pos {
        // libyaml calls a tab "character that cannot start any token"; find it on the line,
        // up to where the scanner stopped.
        let line = text.lines().nth(pos.line.saturating_sub(1)).unwrap_or("");
        let upto: String = line.chars().take(pos.column).collect();
        if let Some(i) = upto.find('\t') {
            err.message =
                "a tab character: YAML indents with spaces only; replace the tab with spaces".into();
            err.pos = Some(Pos { line: pos.line, column: upto[..i].chars().count() + 1 });
            return err;
        }
    }
    if let Some(number) = huge_integer(&err.message) {
        err.message = format!("{number} is too large; no setting takes a whole number above {}", u64::MAX);
    }
    err
}

/// The position libyaml gives for `context` (`..., while scanning X at line L column C`).
fn context_mark(full: &str, context: &str) -> Option<Pos> {
    let rest = &full[full.find(context)? + context.len()..];
    let rest = rest.strip_prefix(" at line ")?;
    let (line, rest) = rest.split_once(" column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(Pos { line: line.parse().ok()?, column: column.parse().ok()? })
}

/// serde says "integer `N` as u128" for a number that does not fit 64 bits.
fn huge_integer(message: &str) -> Option<&str> {
    let start = message.find("integer `")? + "integer `".len();
    let (number, rest) = message[start..].split_once('`')?;
    (rest.starts_with(" as u128") || rest.starts_with(" as i128")).then_some(number)
}

/// Parses a multi-document YAML stream, skipping empty documents.
pub fn parse_stream(text: &str) -> Result<Vec<Value>, SyntaxError> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize_from(doc)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// Parses a multi-document YAML stream into any deserialisable type per document.
pub fn parse_stream_as<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, SyntaxError> {
    let mut out = Vec::new();
    for v in parse_stream(text)? {
        out.push(serde_yaml::from_value(v).map_err(SyntaxError::from)?);
    }
    Ok(out)
}

/// Deserialises a typed value from text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, SyntaxError> {
    Ok(serde_yaml::from_str(text)?)
}

/// A part of a document that does not fit the type it is read into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    /// Where, as `a.b[2].c`; empty for the whole document.
    pub path: String,
    /// serde's message, without a position.
    pub message: String,
}

impl TypeError {
    /// A key the type does not have: the error belongs at the key, not its value.
    pub fn is_unknown_key(&self) -> bool {
        self.message.starts_with("unknown field")
    }
}

/// A document read into a type, with every part that did not fit.
#[derive(Debug)]
pub struct Typed<T> {
    /// The value built from what fitted; `None` when the document as a whole could not be.
    pub value: Option<T>,
    /// Every mismatch, in the order found.
    pub errors: Vec<TypeError>,
    /// Paths left out of `value` because they (or something in them) did not fit; checks of
    /// `value` must not report defaults that stand in for them.
    pub dropped: Vec<String>,
}

/// Converts a YAML value into a typed value, reporting every part that does not fit, not just
/// the first: serde stops at the first error, so the key holding it is reported, removed (its
/// default applies) and the rest read again. `dropped` lists paths already removed by the
/// caller (unresolvable values): a required field missing because of them is not reported again.
pub fn from_value_all<T: DeserializeOwned>(mut value: Value, dropped: Vec<String>) -> Typed<T> {
    let mut out = Typed { value: None, errors: Vec::new(), dropped };
    // Each round removes a key, so this ends well before the bound on any real document.
    for _ in 0..10_000 {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => {
                out.value = Some(v);
                return out;
            }
            Err(e) => e,
        };
        let segments: Vec<Seg> = err.path().iter().filter_map(Seg::from_path).collect();
        let path = segments_string(&segments);
        let mut message = err.into_inner().to_string();
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        let follows_a_drop =
            missing_field(&message).is_some_and(|f| out.dropped.iter().any(|d| *d == join(&path, f)));
        if !follows_a_drop {
            out.errors.push(TypeError { path: path.clone(), message });
        }
        // The nearest key holding the error goes: a list item cannot be removed without
        // shifting the paths of the items after it.
        let Some(cut) = segments.iter().rposition(|s| matches!(s, Seg::Key(_))) else { return out };
        let cut = &segments[..=cut];
        if !remove(&mut value, cut) {
            return out;
        }
        out.dropped.push(segments_string(cut));
    }
    out
}

/// The field named by serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// One step of a path into a document.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn from_path(seg: &serde_path_to_error::Segment) -> Option<Seg> {
        use serde_path_to_error::Segment;
        match seg {
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            Segment::Unknown => None,
        }
    }
}

fn segments_string(segments: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segments {
        match seg {
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
        }
    }
    out
}

/// Removes the key at the end of `path`; false when the path does not lead to one.
fn remove(value: &mut Value, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut node = value;
    for seg in parents {
        let next = match (seg, node) {
            (Seg::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str()),
            (Seg::Index(i), Value::Sequence(s)) => s.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match (last, node) {
        (Seg::Key(k), Value::Mapping(m)) => m.remove(k.as_str()).is_some(),
        _ => false,
    }
}

/// Serialises a value as one YAML document (no leading `---`), block style, keys in their
/// order. Strings that a YAML 1.1 reader (kubectl, Argo CD, Flux via go-yaml) would take for
/// something else (`yes`, `on`, `0755`, `1e3`, `~`) are always quoted.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    let v = serde_json::to_value(value).expect("values built from YAML or JSON always serialise");
    let mut out = String::new();
    emit::document(&v, &mut out);
    out
}

/// Converts any serialisable value into a YAML value.
pub fn to_value<T: Serialize>(value: &T) -> Value {
    serde_yaml::to_value(value).expect("values built from YAML or JSON always serialise")
}

mod emit {
    //! A block-style YAML emitter for JSON-shaped values, with conservative quoting.
    use serde_json::Value;

    pub fn document(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) if !m.is_empty() => map(m, 0, out),
            Value::Array(a) if !a.is_empty() => seq(a, 0, out),
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }

    fn pad(out: &mut String, n: usize) {
        out.extend(std::iter::repeat_n(' ', n));
    }

    fn map(m: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
        for (k, v) in m {
            pad(out, indent);
            out.push_str(&scalar(k));
            out.push(':');
            value_after_key(v, indent, out);
        }
    }

    fn seq(a: &[Value], indent: usize, out: &mut String) {
        for v in a {
            pad(out, indent);
            out.push('-');
            match v {
                Value::Object(m) if !m.is_empty() => {
                    // The first key sits on the dash line; the rest align under it.
                    let mut first = true;
                    for (k, val) in m {
                        if first {
                            out.push(' ');
                            first = false;
                        } else {
                            pad(out, indent + 2);
                        }
                        out.push_str(&scalar(k));
                        out.push(':');
                        value_after_key(val, indent + 2, out);
                    }
                }
                Value::Array(inner) if !inner.is_empty() => {
                    out.push('\n');
                    seq(inner, indent + 2, out);
                }
                Value::String(s) if block_ok(s) => block(s, indent + 2, out),
                other => {
                    out.push(' ');
                    out.push_str(&inline(other));
                    out.push('\n');
                }
            }
        }
    }

    fn value_after_key(v: &Value, indent: usize, out: &mut String) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                map(m, indent + 2, out);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                seq(a, indent + 2, out);
            }
            Value::String(s) if block_ok(s) => block(s, indent + 2, out),
            other => {
                out.push(' ');
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }

    /// Multi-line strings without awkward whitespace read best as literal blocks.
    fn block_ok(s: &str) -> bool {
        s.contains('\n')
            && !s.starts_with([' ', '\n'])
            && !s.chars().any(|c| c.is_control() && c != '\n')
            && s.lines().all(|l| !l.ends_with(' '))
    }

    fn block(s: &str, indent: usize, out: &mut String) {
        let trailing = s.len() - s.trim_end_matches('\n').len();
        out.push_str(match trailing {
            0 => " |-\n",
            1 => " |\n",
            _ => " |+\n",
        });
        for line in s.trim_end_matches('\n').split('\n') {
            if !line.is_empty() {
                pad(out, indent);
                out.push_str(line);
            }
            out.push('\n');
        }
        for _ in 1..trailing {
            out.push('\n');
        }
    }

    fn inline(v: &Value) -> String {
        match v {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => scalar(s),
            Value::Array(_) => "[]".into(),
            Value::Object(_) => "{}".into(),
        }
    }

    /// A string as a plain scalar when that is unambiguous, quoted otherwise.
    pub fn scalar(s: &str) -> String {
        if plain_ok(s) {
            s.to_string()
        } else if !s.chars().any(|c| c.is_control()) {
            format!("'{}'", s.replace('\'', "''"))
        } else {
            serde_json::to_string(s).expect("strings serialise")
        }
    }

    const YAML11_WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
        "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
    ];

    fn plain_ok(s: &str) -> bool {
        let Some(first) = s.chars().next() else { return false };
        // Anything that could start a number, a timestamp or an indicator is quoted.
        if !(first.is_ascii_alphabetic() || first == '/' || first == '_') {
            return false;
        }
        if YAML11_WORDS.contains(&s) || s.ends_with(' ') || s.ends_with(':') {
            return false;
        }
        if s.contains(": ") || s.contains(" #") {
            return false;
        }
        s.chars().all(|c| c.is_ascii_alphanumeric() || " ._/-:@+=,()$".contains(c))
    }
}

trait DeserializeFrom {
    fn deserialize_from(doc: serde_yaml::Deserializer<'_>) -> Result<Value, serde_yaml::Error>;
}

impl DeserializeFrom for Value {
    fn deserialize_from(doc: serde_yaml::Deserializer<'_>) -> Result<Value, serde_yaml::Error> {
        serde::Deserialize::deserialize(doc)
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

#[derive(Default)]
struct Indexer {
    stack: Vec<Frame>,
    index: PosIndex,
    duplicates: Vec<(String, Pos)>,
    merges: Vec<Pos>,
}

impl Indexer {
    /// The path of the node that starts now, and whether it is a key of a mapping.
    fn next_path(&mut self) -> (String, bool) {
        match self.stack.last_mut() {
            None => (String::new(), false),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                (p, false)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                None => (path.clone(), true),
                Some(k) => (join(path, &k), false),
            },
        }
    }

    fn record_value(&mut self, path: &str, mark: Marker) {
        self.index.values.insert(path.to_string(), pos(mark));
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn pos(mark: Marker) -> Pos {
    Pos { line: mark.line(), column: mark.col() + 1 }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => {
                let (path, is_key) = self.next_path();
                if is_key {
                    if text == "<<" {
                        self.merges.push(pos(mark));
                    }
                    let full = join(&path, &text);
                    if let Some(first) = self.index.keys.insert(full.clone(), pos(mark)) {
                        self.index.keys.insert(full.clone(), first);
                        self.duplicates.push((full, pos(mark)));
                    }
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(text);
                    }
                } else {
                    self.record_value(&path, mark);
                }
            }
            Event::Alias(_) => {
                let (path, is_key) = self.next_path();
                if !is_key {
                    self.record_value(&path, mark);
                }
            }
            Event::MappingStart(..) => {
                let (path, _) = self.next_path();
                self.record_value(&path, mark);
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let (path, _) = self.next_path();
                self.record_value(&path, mark);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_nested_keys_and_list_items() {
        let text = "a:\n  b: 1\n  list:\n    - x: 2\n    - y: 3\n";
        let (_, idx) = parse_located(text).unwrap();
        assert_eq!(idx.key("a.b"), Some(Pos { line: 2, column: 3 }));
        assert_eq!(idx.value("a.b"), Some(Pos { line: 2, column: 6 }));
        assert_eq!(idx.key("a.list[1].y"), Some(Pos { line: 5, column: 7 }));
        assert_eq!(idx.key("a.list[0].x"), Some(Pos { line: 4, column: 7 }));
    }

    #[test]
    fn emitter_quotes_what_yaml_1_1_would_misread_and_round_trips() {
        let v = serde_json::json!({
            "yes": "yes", "mode": "0755", "cpu": "2", "mem": "16Gi", "on": "on", "tilde": "~",
            "cmd": "a: b", "script": "line1\nline2\n", "empty": "", "list": [{"name": "a", "x": [1, 2]}, "b"],
            "obj": {}, "arr": [], "quote": "it's", "ctl": "tab\there", "num": 1.5, "null": null,
        });
        let text = to_string(&v);
        for needle in [
            "'yes': 'yes'",
            "mode: '0755'",
            "cpu: '2'",
            "mem: '16Gi'",
            "tilde: '~'",
            "cmd: 'a: b'",
            "script: |\n  line1\n  line2\n",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
        let back: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, v, "{text}");
    }

    #[test]
    fn every_mismatch_is_reported_and_what_fits_still_types() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Inner {
            #[serde(default)]
            n: u32,
            name: String,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            #[serde(default)]
            a: u32,
            #[serde(default)]
            b: Option<Inner>,
            #[serde(default)]
            c: bool,
        }
        let v: Value = from_str(
            "a: many
b: {n: x, name: y}
typo: 1
c: true
",
        )
        .unwrap();
        let typed = from_value_all::<Doc>(v, Vec::new());
        let paths: Vec<&str> = typed.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "b.n", "typo"], "{:?}", typed.errors);
        let doc = typed.value.expect("the rest types");
        assert!(doc.a == 0 && doc.c && doc.b.is_some_and(|b| b.n == 0 && b.name == "y"));
        assert_eq!(typed.dropped, ["a", "b.n", "typo"]);

        // A required field removed by the caller is not reported again, nor is its parent.
        let v: Value = from_str(
            "b: {n: 1}
",
        )
        .unwrap();
        let typed = from_value_all::<Doc>(v, vec!["b.name".into()]);
        assert!(typed.errors.is_empty(), "{:?}", typed.errors);
        assert!(typed.value.is_some_and(|d| d.b.is_none()));
    }

    #[test]
    fn yaml_mistakes_are_named() {
        let err = parse_located("a: 1\nb: \"open\nc: 2\n").unwrap_err();
        assert_eq!(err.pos, Some(Pos { line: 2, column: 4 }), "{err:?}");
        assert!(err.message.contains("never closed"), "{err:?}");
        let err = parse_located("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(err.pos, Some(Pos { line: 2, column: 1 }), "{err:?}");
        assert!(err.message.contains("tab"), "{err:?}");
        let (v, _) = parse_located("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n").unwrap();
        assert_eq!(v["c"], from_str::<Value>("{x: 1, y: 3}").unwrap());
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse_located("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.is_some(), "{err:?}");
    }
}
