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
    Scalar {
        /// The text, after YAML's quoting and folding rules.
        text: String,
        /// How it was written.
        style: Style,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, keys in file order, repeated keys kept.
    Map(Vec<(Node, Node)>),
}

/// One YAML node and the (1-based) line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: Kind,
    /// The 1-based line it starts on (for a block scalar, the line of its `|` or `>`; for an
    /// empty value, the line of its key or `-`).
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
    // A byte order mark (Windows editors write one) is not content, as YAML says.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder {
        lines: text.split('\n').collect(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        nodes: 0,
        in_document: false,
    };
    loop {
        let (event, mark) = parser.next_token().map_err(scan_error)?;
        match builder.push(event, mark) {
            Ok(true) => break,
            Ok(false) => {}
            Err(problem) => return Err(yaml_error(mark, problem.to_string())),
        }
    }
    Ok(builder.root)
}

/// Why the event stream cannot become a tree (limits that keep a hostile file small).
#[derive(Debug, thiserror::Error)]
enum TreeError {
    #[error("alias to an unknown anchor")]
    UnknownAnchor,
    #[error("alias makes nesting deeper than {MAX_DEPTH} levels")]
    AliasTooDeep,
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("document expands to more than {MAX_NODES} nodes")]
    TooManyNodes,
    #[error("unbalanced end of a collection")]
    Unbalanced,
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
struct Builder<'t> {
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
    in_document: bool,
    /// The source lines, to place block scalars and empty values on the line a reader expects.
    lines: Vec<&'t str>,
}

impl Builder<'_> {
    /// Feeds one event; `Ok(true)` once the first document (or the stream) has ended.
    fn push(&mut self, event: Event, mark: Marker) -> Result<bool, TreeError> {
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
                    .ok_or(TreeError::UnknownAnchor)?;
                let (nodes, depth) = size(&node);
                if self.stack.len() + depth > MAX_DEPTH + 1 {
                    return Err(TreeError::AliasTooDeep);
                }
                self.nodes += nodes - 1;
                self.add(node, 0)?;
            }
            Event::Scalar(text, style, anchor, _tag) => {
                // yaml-rust2 gives an empty value as an empty plain scalar.
                let empty = style == TScalarStyle::Plain && text.is_empty();
                let line = match style {
                    TScalarStyle::Literal | TScalarStyle::Folded => self.header_line(line),
                    _ if empty => self.empty_line(line, mark.col()),
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
                    None => return Err(TreeError::Unbalanced),
                };
                self.add(node, anchor)?;
            }
        }
        Ok(false)
    }

    /// Source line `line` (1-based), or "" past the end.
    fn source(&self, line: usize) -> &str {
        line.checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .copied()
            .unwrap_or("")
    }

    /// The nearest line before `line` that `keep` accepts (1 if none).
    fn earlier(&self, line: usize, keep: impl Fn(&str) -> bool) -> usize {
        (1..line).rev().find(|&l| keep(self.source(l))).unwrap_or(1)
    }

    /// The line of the `|` or `>` of a block scalar whose content the parser marked on `line`:
    /// the nearest earlier line that is not blank (blank lines belong to the content).
    fn header_line(&self, line: usize) -> usize {
        self.earlier(line, |s| !s.trim().is_empty())
    }

    /// The line of an empty value marked at `line`/`col`. In block style (`key:` or a bare
    /// `-`) it is marked where the next node starts (after any `- ` on its line), often a later
    /// line; it belongs to the nearest earlier line that holds more than a comment.
    fn empty_line(&self, line: usize, col: usize) -> usize {
        let before: String = self.source(line).chars().take(col).collect();
        if !before.chars().all(|c| c.is_whitespace() || c == '-') {
            return line;
        }
        self.earlier(line, |s| {
            let s = s.trim();
            !s.is_empty() && !s.starts_with('#')
        })
    }

    fn open(&mut self, open: Open) -> Result<(), TreeError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(TreeError::TooDeep);
        }
        self.stack.push(open);
        Ok(())
    }

    /// Places a finished node in its parent (or as the root), remembering it under its anchor.
    fn add(&mut self, node: Node, anchor: usize) -> Result<(), TreeError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(TreeError::TooManyNodes);
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
                Some(k) => pairs.push((k, node)),
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
mod tests;
