//! YAML into serde types, knowing where every error is: each error carries the key path of the
//! node it arose at (`aws[1].regions[0]`, `rules.slo.overrides[0].objective`), which the config
//! error turns into a line. Keys are plain strings: a `.` or `[` in a key (a tag such as
//! `kubernetes.io/cluster/x`) is just a character.
//!
//! Scalars convert the way an operator expects: a number where a string is wanted is its text
//! (`name: 123`), and a string that parses as a number is a number (`objective: "0.99"`, or a
//! value from `${VAR}` expansion).

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use yaml_rust2::Yaml;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The key path of the node the error arose at; None at the top.
    pub path: Option<String>,
    pub message: String,
    /// A missing or unknown field of the struct at `path`.
    field: Option<String>,
    /// The line of a syntax error.
    pub line: Option<usize>,
}

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Error {
            path: None,
            message: message.into(),
            field: None,
            line: None,
        }
    }

    /// Places an error that does not know where it is at `path` (inner nodes place theirs first).
    fn at(mut self, path: &str) -> Self {
        if self.path.is_none() {
            let placed = match self.field.take() {
                Some(field) => join(path, &field),
                None => path.to_string(),
            };
            // The document itself has no key to name.
            self.path = (!placed.is_empty()).then_some(placed);
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error::new(message.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            field: Some(field.to_string()),
            ..Error::new(format!("missing field `{field}`"))
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error {
            field: Some(field.to_string()),
            ..Error::new(format!(
                "unknown field `{field}`, expected one of {}",
                expected.join(", ")
            ))
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Parses YAML text into one document (an empty text is an empty mapping).
pub fn parse(text: &str) -> Result<Yaml, Error> {
    let mut documents = yaml_rust2::YamlLoader::load_from_str(text).map_err(|err| Error {
        line: Some(err.marker().line()),
        ..Error::new(format!("not valid YAML: {}", err.info()))
    })?;
    match documents.len() {
        0 => Ok(Yaml::Null),
        1 => Ok(documents.remove(0)),
        _ => Err(Error::new("one YAML document expected, found several")),
    }
}

/// Deserializes `T` from YAML text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    from_yaml(&parse(text)?)
}

/// Deserializes `T` from a parsed document.
pub fn from_yaml<T: DeserializeOwned>(yaml: &Yaml) -> Result<T, Error> {
    T::deserialize(Node {
        yaml,
        path: String::new(),
    })
    .map_err(|err: Error| err.at(""))
}

/// Replaces `${NAME}` in every string value with `lookup(NAME)`; `$${` stands for a literal `${`.
/// A name that `lookup` does not know is an error at that value's key.
pub fn expand(yaml: &mut Yaml, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), Error> {
    fn walk(yaml: &mut Yaml, path: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), Error> {
        match yaml {
            Yaml::String(text) => {
                *text = expand_text(text, lookup).map_err(|err: Error| err.at(path))?;
                Ok(())
            }
            Yaml::Array(items) => items
                .iter_mut()
                .enumerate()
                .try_for_each(|(index, item)| walk(item, &format!("{path}[{index}]"), lookup)),
            Yaml::Hash(map) => map.iter_mut().try_for_each(|(key, value)| {
                let name = key_text(key).unwrap_or_default();
                walk(value, &join(path, &name), lookup)
            }),
            _ => Ok(()),
        }
    }
    walk(yaml, "", lookup)
}

fn expand_text(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| Error::new("`${` without a closing `}`"))?;
            let name = &tail[..end];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::new(format!(
                    "`${{{name}}}` is not an environment variable name"
                )));
            }
            let value =
                lookup(name).ok_or_else(|| Error::new(format!("environment variable {name} is not set")))?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn key_text(key: &Yaml) -> Option<String> {
    match key {
        Yaml::String(text) => Some(text.clone()),
        Yaml::Integer(number) => Some(number.to_string()),
        Yaml::Real(text) => Some(text.clone()),
        Yaml::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn kind(yaml: &Yaml) -> &'static str {
    match yaml {
        Yaml::Real(_) | Yaml::Integer(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Boolean(_) => "a boolean",
        Yaml::Array(_) => "a list",
        Yaml::Hash(_) => "a mapping",
        Yaml::Alias(_) => "an alias",
        Yaml::Null => "nothing",
        Yaml::BadValue => "an unreadable value",
    }
}

struct Node<'a> {
    yaml: &'a Yaml,
    path: String,
}

impl Node<'_> {
    fn wrong(&self, expected: &str) -> Error {
        Error::new(format!("expected {expected}, found {}", kind(self.yaml))).at(&self.path)
    }

    /// The text of a scalar: numbers and booleans as written.
    fn text(&self) -> Option<String> {
        match self.yaml {
            Yaml::String(text) | Yaml::Real(text) => Some(text.clone()),
            Yaml::Integer(number) => Some(number.to_string()),
            Yaml::Boolean(flag) => Some(flag.to_string()),
            _ => None,
        }
    }

    fn integer(&self) -> Option<i64> {
        match self.yaml {
            Yaml::Integer(number) => Some(*number),
            Yaml::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    fn float(&self) -> Option<f64> {
        match self.yaml {
            Yaml::Integer(number) => Some(*number as f64),
            Yaml::Real(text) | Yaml::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }
}

macro_rules! integers {
    ($($method:ident => $visit:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.integer() {
                Some(number) => visitor.$visit(number).map_err(|err: Error| err.at(&self.path)),
                None => Err(self.wrong("a whole number")),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Node<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.yaml {
            Yaml::Null => visitor.visit_unit(),
            Yaml::Boolean(flag) => visitor.visit_bool(*flag),
            Yaml::Integer(number) => visitor.visit_i64(*number),
            Yaml::Real(_) => match self.float() {
                Some(number) => visitor.visit_f64(number),
                None => return Err(self.wrong("a number")),
            },
            Yaml::String(text) => visitor.visit_str(text),
            Yaml::Array(_) => return self.deserialize_seq(visitor),
            Yaml::Hash(_) => return self.deserialize_map(visitor),
            Yaml::Alias(_) | Yaml::BadValue => return Err(self.wrong("a value")),
        };
        result.map_err(|err: Error| err.at(&self.path))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let flag = match self.yaml {
            Yaml::Boolean(flag) => Some(*flag),
            Yaml::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        match flag {
            Some(flag) => visitor.visit_bool(flag).map_err(|err: Error| err.at(&self.path)),
            None => Err(self.wrong("true or false")),
        }
    }

    integers!(
        deserialize_i8 => visit_i64, deserialize_i16 => visit_i64, deserialize_i32 => visit_i64,
        deserialize_i64 => visit_i64, deserialize_u8 => visit_i64, deserialize_u16 => visit_i64,
        deserialize_u32 => visit_i64, deserialize_u64 => visit_i64
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.float() {
            Some(number) => visitor.visit_f64(number).map_err(|err: Error| err.at(&self.path)),
            None => Err(self.wrong("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.text() {
            Some(text) => visitor
                .visit_string(text)
                .map_err(|err: Error| err.at(&self.path)),
            None => Err(self.wrong("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.yaml {
            Yaml::Null => visitor.visit_none(),
            _ => {
                let path = self.path.clone();
                visitor.visit_some(self).map_err(|err: Error| err.at(&path))
            }
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.yaml {
            Yaml::Null => visitor.visit_unit(),
            _ => Err(self.wrong("nothing")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let path = self.path.clone();
        visitor
            .visit_newtype_struct(self)
            .map_err(|err: Error| err.at(&path))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.yaml {
            Yaml::Array(items) => visitor
                .visit_seq(Items {
                    items: items.iter(),
                    index: 0,
                    path: &self.path,
                })
                .map_err(|err: Error| err.at(&self.path)),
            _ => Err(self.wrong("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        static EMPTY: std::sync::OnceLock<yaml_rust2::yaml::Hash> = std::sync::OnceLock::new();
        let map = match self.yaml {
            Yaml::Hash(map) => map,
            // An empty section (`rules:` with nothing under it) is an empty mapping.
            Yaml::Null => EMPTY.get_or_init(Default::default),
            _ => return Err(self.wrong("a mapping")),
        };
        visitor
            .visit_map(Entries {
                entries: map.iter(),
                value: None,
                path: &self.path,
            })
            .map_err(|err: Error| err.at(&self.path))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.text() {
            Some(variant) => visitor
                .visit_enum(variant.into_deserializer())
                .map_err(|err: Error| err.at(&self.path)),
            None => Err(self.wrong("one of the listed names")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct Items<'a, I> {
    items: I,
    index: usize,
    path: &'a str,
}

impl<'de, 'a, I: Iterator<Item = &'a Yaml>> de::SeqAccess<'de> for Items<'_, I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        let Some(yaml) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(Node {
            yaml,
            path: path.clone(),
        })
        .map(Some)
        .map_err(|err: Error| err.at(&path))
    }
}

struct Entries<'a, I> {
    entries: I,
    /// The value of the key just read, with its path.
    value: Option<(&'a Yaml, String)>,
    path: &'a str,
}

impl<'de, 'a, I: Iterator<Item = (&'a Yaml, &'a Yaml)>> de::MapAccess<'de> for Entries<'a, I> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let name = key_text(key)
            .ok_or_else(|| Error::new(format!("keys must be strings, found {}", kind(key))).at(self.path))?;
        let path = join(self.path, &name);
        self.value = Some((value, path.clone()));
        let key: de::value::StringDeserializer<Error> = name.into_deserializer();
        // An unknown field is placed at the mapping, with the field appended.
        seed.deserialize(key)
            .map(Some)
            .map_err(|err: Error| err.at(self.path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (yaml, path) = self
            .value
            .take()
            .ok_or_else(|| Error::new("a value without its key").at(self.path))?;
        seed.deserialize(Node {
            yaml,
            path: path.clone(),
        })
        .map_err(|err: Error| err.at(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Job {
        name: String,
        #[serde(default)]
        regions: Vec<String>,
        #[serde(default)]
        tags: BTreeMap<String, Vec<String>>,
        #[serde(default)]
        ratio: Option<f64>,
        #[serde(default)]
        port: u16,
        #[serde(default)]
        kind: Option<Kind>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Application,
        Network,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Top {
        #[serde(default)]
        jobs: Vec<Job>,
    }

    fn error(text: &str) -> Error {
        from_str::<Top>(text).expect_err("rejected")
    }

    #[test]
    fn reads_scalars_lists_maps_and_keys_with_dots_and_brackets() {
        let top: Top = from_str(
            "jobs:\n  - name: 123\n    regions: [eu-west-1]\n    tags: {kubernetes.io/cluster/x: [owned], 'a[9000000000]': [b]}\n    ratio: '0.5'\n    port: 8080\n    kind: network\n",
        )
        .expect("valid");
        let job = &top.jobs[0];
        assert_eq!(job.name, "123");
        assert_eq!(job.tags.get("kubernetes.io/cluster/x").map(Vec::len), Some(1));
        assert_eq!(job.tags.get("a[9000000000]").map(Vec::len), Some(1));
        assert_eq!(job.ratio, Some(0.5));
        assert_eq!(job.port, 8080);
        assert_eq!(job.kind, Some(Kind::Network));
        assert_eq!(from_str::<Top>("").expect("empty"), Top { jobs: vec![] });
    }

    #[test]
    fn errors_name_the_path_of_their_node() {
        let cases = [
            (
                "jobs:\n  - name: a\n  - name: b\n    colour: red\n",
                "jobs[1].colour",
                "unknown field",
            ),
            ("jobs:\n  - regions: []\n", "jobs[0].name", "missing field `name`"),
            ("jobs:\n  - name: a\n    port: 70000\n", "jobs[0].port", "70000"),
            (
                "jobs:\n  - name: a\n    kind: gateway\n",
                "jobs[0].kind",
                "gateway",
            ),
            (
                "jobs:\n  - name: a\n    regions: eu-west-1\n",
                "jobs[0].regions",
                "expected a list",
            ),
            (
                "jobs:\n  - name: a\n    tags: {x: [[1]]}\n",
                "jobs[0].tags.x[0]",
                "expected a string",
            ),
            ("jobs: {}\n", "jobs", "expected a list"),
        ];
        for (text, path, message) in cases {
            let err = error(text);
            assert_eq!(err.path.as_deref(), Some(path), "{text:?}: {err:?}");
            assert!(err.message.contains(message), "{text:?}: {err:?}");
        }
        let syntax = error("jobs:\n  - name: a\n   bad: [\n");
        assert!(syntax.line.is_some(), "{syntax:?}");
    }

    #[test]
    fn expands_environment_variables_in_values() {
        let lookup = |name: &str| (name == "SECRET").then(|| "s3cr:et #1".to_string());
        let mut yaml =
            parse("jobs:\n  - name: '${SECRET}'\n    regions: ['x-$${LITERAL}-$5']\n").expect("yaml");
        expand(&mut yaml, &lookup).expect("expands");
        let top: Top = from_yaml(&yaml).expect("valid");
        assert_eq!(top.jobs[0].name, "s3cr:et #1");
        assert_eq!(top.jobs[0].regions, ["x-${LITERAL}-$5"]);
        let mut missing = parse("jobs:\n  - name: a\n    regions: ['${NOPE}']\n").expect("yaml");
        let err = expand(&mut missing, &lookup).expect_err("unset");
        assert_eq!(err.path.as_deref(), Some("jobs[0].regions[0]"));
        assert!(err.message.contains("NOPE is not set"), "{err:?}");
        let mut bad = parse("jobs:\n  - name: '${1X}'\n").expect("yaml");
        assert!(expand(&mut bad, &lookup).is_err());
    }
}
