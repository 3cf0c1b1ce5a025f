//! A small YAML node tree with line numbers, built from yaml-rust2's event parser.
//!
//! The buildspec parser needs what a plain YAML value loses: the line each node starts on, the
//! exact text of scalars (`1.10` must stay `1.10`, not become the number 1.1), and every key of a
//! mapping even when it is repeated. Only the first document of a stream is read; aliases are
//! replaced by a copy of the node they name.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use super::BuildspecError;

/// Deepest nesting of sequences and mappings accepted; deeper input is refused, not recursed into.
const MAX_DEPTH: usize = 128;
/// Most nodes a document may expand to (aliases included), so alias bombs cannot exhaust memory.
const MAX_NODES: usize = 200_000;

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted.
    Plain,
    /// `'single quoted'`.
    SingleQuoted,
    /// `"double quoted"`.
    DoubleQuoted,
    /// A `|` block.
    Literal,
    /// A `>` block.
    Folded,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `~`, `null` (plain) or no value at all.
    Null,
    /// Any other scalar: its text as YAML gives it, unconverted.
    Scalar { text: String, style: Style },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, keys in file order, repeated keys kept.
    Map(Vec<(Node, Node)>),
}

/// One YAML node and the (1-based) line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub line: usize,
}

impl Node {
    /// The scalar's text, if the node is a (non-null) scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether the node is null.
    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// A short description for "found ..." in messages: "a mapping", "a list", "`text`".
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "nothing (an empty value)".to_string(),
            Kind::Seq(_) => "a list".to_string(),
            Kind::Map(_) => "a mapping".to_string(),
            Kind::Scalar { text, .. } => {
                let first = text.lines().next().unwrap_or("");
                let mut short: String = first.chars().take(60).collect();
                if short.len() < text.len() {
                    short.push('…');
                }
                format!("`{short}`")
            }
        }
    }
}

/// Parses the first document of `text`; `Ok(None)` when there is no document or it is empty.
pub fn load(file: &str, text: &str) -> Result<Option<Node>, BuildspecError> {
    let yaml_error = |mark: Marker, message: String| BuildspecError::Yaml {
        file: file.to_string(),
        line: mark.line().max(1),
        column: mark.col() + 1,
        message,
    };
    let scan_error = |e: ScanError| yaml_error(*e.marker(), e.info().to_string());
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder {
        blank: text.split('\n').map(|l| l.trim().is_empty()).collect(),
        ..Builder::default()
    };
    loop {
        let (event, mark) = parser.next_token().map_err(scan_error)?;
        match builder.push(event, mark) {
            Ok(true) => break,
            Ok(false) => {}
            Err(message) => return Err(yaml_error(mark, message)),
        }
    }
    Ok(builder.root)
}

/// A sequence or mapping being filled in.
enum Open {
    Seq {
        line: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        line: usize,
        anchor: usize,
        pairs: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

/// Turns the event stream into nodes with an explicit stack (no recursion).
#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
    in_document: bool,
    /// Whether each source line (0-based) is blank, to find a block scalar's header line.
    blank: Vec<bool>,
}

impl Builder {
    /// Feeds one event; `Ok(true)` once the first document (or the stream) has ended.
    fn push(&mut self, event: Event, mark: Marker) -> Result<bool, String> {
        let line = mark.line().max(1);
        match event {
            Event::Nothing | Event::StreamStart => {}
            Event::StreamEnd => return Ok(true),
            Event::DocumentStart => self.in_document = true,
            Event::DocumentEnd => return Ok(self.in_document),
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| "alias to an unknown anchor".to_string())?;
                let (nodes, depth) = size(&node);
                if self.stack.len() + depth > MAX_DEPTH + 1 {
                    return Err(format!(
                        "alias makes nesting deeper than {MAX_DEPTH} levels"
                    ));
                }
                self.nodes += nodes - 1;
                self.add(node, 0)?;
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let line = match style {
                    TScalarStyle::Literal | TScalarStyle::Folded => self.header_line(line),
                    _ => line,
                };
                let kind = scalar_kind(text, style);
                self.add(Node { kind, line }, anchor)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(Open::Seq {
                    line,
                    anchor,
                    items: Vec::new(),
                })?;
            }
            Event::MappingStart(anchor, _) => {
                let open = Open::Map {
                    line,
                    anchor,
                    pairs: Vec::new(),
                    key: None,
                };
                self.open(open)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Open::Seq {
                        line,
                        anchor,
                        items,
                    }) => (
                        Node {
                            kind: Kind::Seq(items),
                            line,
                        },
                        anchor,
                    ),
                    Some(Open::Map {
                        line,
                        anchor,
                        pairs,
                        ..
                    }) => (
                        Node {
                            kind: Kind::Map(pairs),
                            line,
                        },
                        anchor,
                    ),
                    None => return Err("unbalanced end of a collection".to_string()),
                };
                self.add(node, anchor)?;
            }
        }
        Ok(false)
    }

    /// The line of the `|` or `>` of a block scalar whose content the parser marked on `line`:
    /// the nearest earlier line that is not blank (blank lines belong to the content).
    fn header_line(&self, line: usize) -> usize {
        let mut header = line.saturating_sub(1);
        while header > 1 && self.blank.get(header - 1).copied().unwrap_or(false) {
            header -= 1;
        }
        header.max(1)
    }

    fn open(&mut self, open: Open) -> Result<(), String> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(open);
        Ok(())
    }

    /// Places a finished node in its parent (or as the root), remembering it under its anchor.
    fn add(&mut self, mut node: Node, anchor: usize) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!("document expands to more than {MAX_NODES} nodes"));
        }
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { pairs, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    // An empty value is reported on its key's line, not where the parser
                    // noticed it was empty (often the next line).
                    if node.is_null() && node.line > k.line {
                        node.line = k.line;
                    }
                    pairs.push((k, node));
                }
            },
        }
        Ok(())
    }
}

/// Null for the plain null spellings (and empty values), a text scalar otherwise.
fn scalar_kind(text: String, style: TScalarStyle) -> Kind {
    let style = match style {
        TScalarStyle::Plain => Style::Plain,
        TScalarStyle::SingleQuoted => Style::SingleQuoted,
        TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
        TScalarStyle::Literal => Style::Literal,
        TScalarStyle::Folded => Style::Folded,
    };
    if style == Style::Plain && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
        Kind::Null
    } else {
        Kind::Scalar { text, style }
    }
}

/// How many nodes a tree holds, and how deep it is (1 for a scalar).
fn size(node: &Node) -> (usize, usize) {
    let (mut total, mut deepest) = (0, 0);
    let mut todo = vec![(node, 1)];
    while let Some((n, depth)) = todo.pop() {
        total += 1;
        deepest = deepest.max(depth);
        match &n.kind {
            Kind::Seq(items) => todo.extend(items.iter().map(|i| (i, depth + 1))),
            Kind::Map(pairs) => {
                for (k, v) in pairs {
                    todo.extend([(k, depth + 1), (v, depth + 1)]);
                }
            }
            _ => {}
        }
    }
    (total, deepest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(src: &str) -> Node {
        match load("t.yml", src) {
            Ok(Some(node)) => node,
            other => panic!("{src:?} did not load as a document: {other:?}"),
        }
    }

    /// The value under `key` in a top-level mapping.
    fn get(root: &Node, key: &str) -> Node {
        let Kind::Map(pairs) = &root.kind else {
            panic!("not a mapping: {root:?}")
        };
        let found = pairs.iter().rev().find(|(k, _)| k.as_scalar() == Some(key));
        found
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no key {key}"))
    }

    /// `src`'s value under `key` is the scalar `text` written in `style` (`None`: null), on `line`.
    #[track_caller]
    fn case(src: &str, key: &str, want: Option<(&str, Style)>, line: usize) {
        let node = get(&doc(src), key);
        let got = match &node.kind {
            Kind::Null => None,
            Kind::Scalar { text, style } => Some((text.as_str(), *style)),
            other => panic!("{src:?}: not a scalar: {other:?}"),
        };
        assert_eq!(got, want, "{src:?}");
        assert_eq!(node.line, line, "{src:?}: line");
    }

    #[test]
    fn scalars_keep_their_text_and_style() {
        use Style::*;
        case("a: 1.10", "a", Some(("1.10", Plain)), 1);
        case("a: 0.2", "a", Some(("0.2", Plain)), 1);
        case("a: true", "a", Some(("true", Plain)), 1);
        case("a: yes", "a", Some(("yes", Plain)), 1);
        case("a: 010", "a", Some(("010", Plain)), 1);
        case("x: 1\na: 'it''s'", "a", Some(("it's", SingleQuoted)), 2);
        case("a: \"0.2\"", "a", Some(("0.2", DoubleQuoted)), 1);
        case("a: 'null'", "a", Some(("null", SingleQuoted)), 1);
        case(
            "a: |\n  one\n  two\n",
            "a",
            Some(("one\ntwo\n", Literal)),
            1,
        );
        case("a: >\n  one\n  two\n", "a", Some(("one two\n", Folded)), 1);
        case(
            "x: 1\na: |+\n\n\n  one\n",
            "a",
            Some(("\n\none\n", Literal)),
            2,
        );
        case("a: |\nb: 1\n", "a", Some(("", Literal)), 1);
        case("a: one\n  two\n", "a", Some(("one two", Plain)), 1);
    }

    #[test]
    fn nulls() {
        for src in [
            "a: ~",
            "a: null",
            "a: Null",
            "a: NULL",
            "a:",
            "a:\nb: 1",
            "a: # comment\n",
        ] {
            case(src, "a", None, 1);
        }
    }

    #[test]
    fn lines_of_collections_and_items() {
        let root = doc(
            "# c\nversion: 0.2\nphases:\n  build:\n    commands:\n      - one\n\n      - |\n        two\n",
        );
        assert_eq!(root.line, 2);
        let phases = get(&root, "phases");
        assert_eq!(phases.line, 4);
        let commands = get(&get(&phases, "build"), "commands");
        let Kind::Seq(items) = &commands.kind else {
            panic!("{commands:?}")
        };
        let lines: Vec<usize> = items.iter().map(|n| n.line).collect();
        assert_eq!(lines, [6, 8], "a block scalar starts on its `|` line");
        assert_eq!(items[1].as_scalar(), Some("two\n"));
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let root = doc("a: 1\nb: 2\na: 3\n");
        let Kind::Map(pairs) = &root.kind else {
            panic!("{root:?}")
        };
        let keys: Vec<_> = pairs
            .iter()
            .map(|(k, v)| (k.as_scalar(), v.as_scalar(), k.line))
            .collect();
        assert_eq!(
            keys,
            [
                (Some("a"), Some("1"), 1),
                (Some("b"), Some("2"), 2),
                (Some("a"), Some("3"), 3)
            ]
        );
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let root = doc("base: &b\n  - one\n  - two\nother: *b\nname: &n x\nagain: *n\n");
        assert_eq!(get(&root, "other").kind, get(&root, "base").kind);
        assert_eq!(get(&root, "again").as_scalar(), Some("x"));
    }

    #[test]
    fn only_the_first_document_is_read() {
        let root = doc("---\na: 1\n---\na: 2\n");
        assert_eq!(get(&root, "a").as_scalar(), Some("1"));
    }

    #[test]
    fn empty_input_is_no_document() {
        for src in ["", "# only a comment\n", "---\n"] {
            let got = load("t.yml", src);
            assert!(
                matches!(
                    got,
                    Ok(None)
                        | Ok(Some(Node {
                            kind: Kind::Null,
                            ..
                        }))
                ),
                "{src:?}: {got:?}"
            );
        }
    }

    #[track_caller]
    fn yaml_error(src: &str, line: usize, column: usize) {
        match load("t.yml", src) {
            Err(BuildspecError::Yaml {
                file,
                line: l,
                column: c,
                message,
            }) => {
                assert_eq!(
                    (file.as_str(), l, c),
                    ("t.yml", line, column),
                    "{src:?}: {message}"
                );
                assert!(!message.is_empty());
            }
            other => panic!("{src:?}: expected a YAML error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_line_and_column() {
        yaml_error("a: 1\nb: [1, 2\n", 3, 1);
        yaml_error("a: 1\n b: 2\n", 2, 3);
        yaml_error("a: *nothing\n", 1, 4);
        yaml_error("a: 'open\n", 1, 4);
    }

    #[test]
    fn limits_refuse_bombs_and_deep_nesting() {
        let deep = format!("a: {}{}", "[".repeat(500), "]".repeat(500));
        assert!(matches!(
            load("t.yml", &deep),
            Err(BuildspecError::Yaml { .. })
        ));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1).replace("*a0", "*a");
            bomb.push_str(&format!(
                "a{i}: &a{i} [{prev}, {prev}, {prev}, {prev}, {prev}, {prev}, {prev}, {prev}]\n"
            ));
        }
        assert!(matches!(
            load("t.yml", &bomb),
            Err(BuildspecError::Yaml { .. })
        ));
    }

    #[test]
    fn describe_is_short() {
        let root = doc(&format!(
            "a: {}\nb: [1]\nc: {{x: 1}}\nd:\n",
            "x".repeat(100)
        ));
        assert_eq!(get(&root, "a").describe(), format!("`{}…`", "x".repeat(60)));
        assert_eq!(get(&root, "b").describe(), "a list");
        assert_eq!(get(&root, "c").describe(), "a mapping");
        assert_eq!(get(&root, "d").describe(), "nothing (an empty value)");
    }
}
