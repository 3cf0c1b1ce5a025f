//! Unit tests of the YAML node tree: text, style and line of nodes, aliases, errors, limits.

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
    case("x: 1\na:\n  # comment\n\n  ~\n", "a", None, 5);
    let root = doc("x: 1\na: {b: , c: 1}\n");
    assert_eq!(
        get(&get(&root, "a"), "b"),
        Node {
            kind: Kind::Null,
            line: 2
        }
    );
    let root = doc("a:\n  - x\n  -\n  # c\n  - y\n  -\n  - ~\n  -");
    let Kind::Seq(items) = get(&root, "a").kind else {
        panic!("{root:?}")
    };
    let nulls: Vec<usize> = items
        .iter()
        .filter(|n| n.is_null())
        .map(|n| n.line)
        .collect();
    assert_eq!(nulls, [3, 6, 7, 8]);
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
