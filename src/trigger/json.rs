//! Reading a JSON event while keeping track of where we are in it, so that every error names
//! the field's path (`Records[0].codecommit.references[1].ref`) and what was expected there.

use serde_json::{Map, Value};

use super::EventError;

/// A value inside an event, with its path from the event's root.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    pub value: &'a Value,
    pub path: String,
}

impl<'a> Node<'a> {
    /// The event itself; its path is empty, so top-level fields are named plainly (`repository`).
    pub fn root(value: &'a Value) -> Node<'a> {
        Node {
            value,
            path: String::new(),
        }
    }

    /// The path of `key` inside this node, whether or not the key is present.
    pub fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The object this node holds, or an error naming its path.
    pub fn object(&self) -> Result<&'a Map<String, Value>, EventError> {
        self.value
            .as_object()
            .ok_or_else(|| self.wrong("an object"))
    }

    /// The field `key`; absent and `null` are the same.
    pub fn get(&self, key: &str) -> Result<Option<Node<'a>>, EventError> {
        Ok(match self.object()?.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(Node {
                value,
                path: self.child_path(key),
            }),
        })
    }

    /// The field `key`, which must be present.
    pub fn need(&self, key: &str, expected: &'static str) -> Result<Node<'a>, EventError> {
        self.get(key)?.ok_or_else(|| EventError::Missing {
            path: self.child_path(key),
            expected,
        })
    }

    /// The string this node holds.
    pub fn as_str(&self) -> Result<&'a str, EventError> {
        self.value.as_str().ok_or_else(|| self.wrong("a string"))
    }

    /// The required string field `key`; an empty string counts as missing.
    pub fn str(&self, key: &str) -> Result<&'a str, EventError> {
        let node = self.need(key, "a string")?;
        let text = node.as_str()?;
        if text.is_empty() {
            return Err(node.invalid("expected a non-empty string"));
        }
        Ok(text)
    }

    /// The optional string field `key`; an empty string is treated as absent.
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, EventError> {
        match self.get(key)? {
            None => Ok(None),
            Some(node) => Ok(Some(node.as_str()?).filter(|s| !s.is_empty())),
        }
    }

    /// The optional boolean field `key`, false when absent.
    pub fn flag(&self, key: &str) -> Result<bool, EventError> {
        match self.get(key)? {
            None => Ok(false),
            Some(node) => node
                .value
                .as_bool()
                .ok_or_else(|| node.wrong("true or false")),
        }
    }

    /// The elements of the array this node holds, each with its index in its path.
    pub fn items(&self) -> Result<Vec<Node<'a>>, EventError> {
        let array = self
            .value
            .as_array()
            .ok_or_else(|| self.wrong("an array"))?;
        Ok(array
            .iter()
            .enumerate()
            .map(|(i, value)| Node {
                value,
                path: format!("{}[{i}]", self.path),
            })
            .collect())
    }

    /// The entries of the object this node holds, each with its key in its path.
    pub fn entries(&self) -> Result<Vec<(&'a str, Node<'a>)>, EventError> {
        Ok(self
            .object()?
            .iter()
            .map(|(key, value)| {
                let path = self.child_path(key);
                (key.as_str(), Node { value, path })
            })
            .collect())
    }

    /// An error at this node: the value is of the wrong kind.
    pub fn wrong(&self, expected: &'static str) -> EventError {
        EventError::WrongType {
            path: self.path_or_event(),
            expected,
            found: kind(self.value),
        }
    }

    /// An error at this node with a message of its own.
    pub fn invalid(&self, problem: impl Into<String>) -> EventError {
        EventError::Invalid {
            path: self.path_or_event(),
            problem: problem.into(),
        }
    }

    fn path_or_event(&self) -> String {
        if self.path.is_empty() {
            "the event".to_string()
        } else {
            self.path.clone()
        }
    }
}

/// What kind of JSON value this is, for messages: `a number`, `an object`.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
