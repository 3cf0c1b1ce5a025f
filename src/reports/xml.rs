//! Reading a report's XML as a stream of events, safely: quick-xml expands no entity itself; we
//! resolve XML's five and character references and leave any other (`&lol9;`) as it is written,
//! so a billion laughs stays a few bytes; a DOCTYPE is an event we ignore (no DTD is fetched).

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One event of the document, with names stripped of their namespace prefix.
pub(super) enum Ev<'a> {
    /// An element opens (an empty element opens, then closes).
    Open(&'a str, &'a Attrs),
    Close(&'a str),
    /// Text, CDATA or a resolved reference inside the current element.
    Text(&'a str),
}

/// An element's attributes, by local name.
#[derive(Default)]
pub(super) struct Attrs(Vec<(String, String)>);

impl Attrs {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The attribute as a number of seconds, in milliseconds (`time="1.5"` is 1500).
    pub fn seconds_ms(&self, name: &str) -> u64 {
        self.get(name)
            .and_then(|v| v.trim().replace(',', "").parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(0, |s| (s * 1000.0).round() as u64)
    }

    /// The attribute as a whole number, or 0.
    pub fn number(&self, name: &str) -> u64 {
        self.get(name)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n > 0.0)
            .map_or(0, |n| n as u64)
    }

    fn read(start: &BytesStart<'_>) -> Result<Attrs, String> {
        let mut attrs = Vec::new();
        for attr in start.attributes().with_checks(false) {
            let attr = attr.map_err(|err| format!("a malformed attribute: {err}"))?;
            let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
            let value = match attr.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                Ok(value) => value.into_owned(),
                // An entity we do not expand: the value as written.
                Err(_) => String::from_utf8_lossy(&attr.value).into_owned(),
            };
            attrs.push((key, value));
        }
        Ok(Attrs(attrs))
    }
}

/// Reads the XML document `input`, calling `each` with every event; the first error (the
/// document's or `each`'s) ends the reading. A document with no element is an error.
pub(super) fn walk(
    input: impl BufRead,
    mut each: impl FnMut(Ev<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut buf = Vec::with_capacity(64 << 10);
    let mut elements = 0u64;
    let mut depth = 0usize;
    loop {
        buf.clear();
        let event = reader.read_event_into(&mut buf).map_err(|err| {
            format!(
                "not well-formed XML at byte {}: {err}",
                reader.error_position()
            )
        })?;
        match event {
            Event::Start(start) | Event::Empty(start) if depth > MAX_DEPTH => {
                let _ = start;
                return Err(format!("elements nested deeper than {MAX_DEPTH}"));
            }
            Event::Start(start) => {
                elements += 1;
                depth += 1;
                let name = local(&start);
                each(Ev::Open(&name, &Attrs::read(&start)?))?;
            }
            Event::Empty(start) => {
                elements += 1;
                let name = local(&start);
                each(Ev::Open(&name, &Attrs::read(&start)?))?;
                each(Ev::Close(&name))?;
            }
            Event::End(end) => {
                depth = depth.saturating_sub(1);
                let name = String::from_utf8_lossy(end.local_name().as_ref()).into_owned();
                each(Ev::Close(&name))?;
            }
            Event::Text(text) => {
                each(Ev::Text(&String::from_utf8_lossy(text.as_ref())))?;
            }
            Event::CData(data) => {
                each(Ev::Text(&String::from_utf8_lossy(data.as_ref())))?;
            }
            Event::GeneralRef(reference) => {
                let text = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => predefined(reference.as_ref()).map_or_else(
                        || format!("&{};", String::from_utf8_lossy(reference.as_ref())),
                        str::to_string,
                    ),
                };
                each(Ev::Text(&text))?;
            }
            Event::Eof if depth > 0 => {
                return Err(format!(
                    "the file ends inside {depth} open element(s): cut short at byte {}",
                    reader.buffer_position()
                ));
            }
            Event::Eof => break,
            // Declarations, comments, processing instructions and the DOCTYPE: nothing to read.
            _ => {}
        }
    }
    if elements == 0 {
        return Err("no XML element in the file".into());
    }
    Ok(())
}

/// Deeper than any report's nesting; deeper is a hostile file.
const MAX_DEPTH: usize = 256;

fn local(start: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(start.local_name().as_ref()).into_owned()
}

fn predefined(name: &[u8]) -> Option<&'static str> {
    Some(match name {
        b"amp" => "&",
        b"lt" => "<",
        b"gt" => ">",
        b"quot" => "\"",
        b"apos" => "'",
        _ => return None,
    })
}

/// The first element's name, or the error: for a reader that checks it reads what it expects.
pub(super) fn expect_root(
    name: &str,
    root: &mut Option<String>,
    want: &[&str],
) -> Result<(), String> {
    if root.is_none() {
        if !want.contains(&name) {
            return Err(format!(
                "the root element is <{name}>, not <{}>",
                want.join("> or <")
            ));
        }
        *root = Some(name.to_string());
    }
    Ok(())
}
