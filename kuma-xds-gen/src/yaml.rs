//! YAML text in block style, written by a serde serializer.
//!
//! Rendering writes a message straight from its bytes (`crate::json::Wire`)
//! or from a JSON value through this one writer, so a 10,000-rule gateway's
//! YAML is written without first building its JSON tree. Only what JSON has
//! is written: null, booleans, numbers, strings, sequences and mappings of
//! string keys, each with its length given up front (a serializer cannot
//! look ahead, and an empty collection is written `[]` or `{}` on the line
//! of its key).

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser::{self, Impossible};

/// YAML text of any value that serialises as JSON does, in block style.
pub(crate) fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut w = Writer { out: String::new(), at: At::Top };
    value.serialize(&mut w)?;
    Ok(w.out)
}

/// Why a value could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Error(String);

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Where the next value goes.
#[derive(Clone, Copy)]
enum At {
    /// The document itself.
    Top,
    /// After `key:`, the key at this indentation.
    Key(usize),
    /// After `-`, the dash at this indentation.
    Item(usize),
}

struct Writer {
    out: String,
    at: At,
}

impl Writer {
    /// A scalar (or an empty collection) where the next value goes.
    fn scalar(&mut self, text: impl FnOnce(&mut String)) {
        if !matches!(self.at, At::Top) {
            self.out.push(' ');
        }
        text(&mut self.out);
        self.out.push('\n');
    }

    /// A number where the next value goes.
    fn display(&mut self, v: impl fmt::Display) {
        self.scalar(|out| {
            let _ = write!(out, "{v}");
        });
    }

    fn indent(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(' ', n));
    }
}

/// A string, quoted unless it is plain in both YAML 1.1 and 1.2, so every
/// reader (Envoy's included) reads `yes`, `on`, `1e3` or `*` back as the
/// strings they are.
fn string(s: &str, out: &mut String) {
    // Words YAML 1.1 or 1.2 reads as a boolean, null or number, whatever
    // their case, of those a plain string could be (it starts with a
    // letter, `/` or `_`, so `~`, `-`, `.inf` or `<<` never are).
    const WORDS: [&str; 12] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "infinity"];
    let plain_byte = |b: &u8| b.is_ascii_alphanumeric() || b"_./:-+=,()".contains(b);
    // One pass over the bytes: most keys and values are plain words.
    let plain = s.as_bytes().first().is_some_and(|b| b.is_ascii_alphabetic() || *b == b'/' || *b == b'_')
        && s.as_bytes().iter().all(plain_byte)
        && !s.ends_with(':')
        && !(s.len() <= 8 && WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)));
    if plain {
        out.push_str(s);
    } else if s.chars().all(|c| !c.is_control()) {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        out.push_str(&serde_json::to_string(s).expect("strings serialise"));
    }
}

/// The entries of a mapping being written.
struct Mapping<'w> {
    w: &'w mut Writer,
    indent: usize,
    /// The first key sits after its sequence item's `- `.
    inline_first: bool,
}

/// The items of a sequence being written.
struct Sequence<'w> {
    w: &'w mut Writer,
    indent: usize,
}

impl<'w> ser::Serializer for &'w mut Writer {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Sequence<'w>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Mapping<'w>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.scalar(|out| out.push_str(if v { "true" } else { "false" }));
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.display(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.display(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        // As JSON writes it; a non-finite number has no JSON form.
        match serde_json::Number::from_f64(v) {
            Some(n) => self.display(n),
            None => self.scalar(|out| out.push_str("null")),
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.scalar(|out| string(v, out));
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(Error("bytes have no YAML form here".into()))
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.scalar(|out| out.push_str("null"));
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(Error("enum variants have no YAML form here".into()))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Sequence<'w>, Error> {
        let len = len.ok_or_else(|| Error("a sequence of unknown length".into()))?;
        let indent = match self.at {
            _ if len == 0 => {
                self.scalar(|out| out.push_str("[]"));
                0
            }
            At::Top => 0,
            // A key's sequence lines up with the key.
            At::Key(k) => {
                self.out.push('\n');
                k
            }
            At::Item(d) => {
                self.out.push('\n');
                d + 2
            }
        };
        Ok(Sequence { w: self, indent })
    }
    fn serialize_tuple(self, _: usize) -> Result<Impossible<(), Error>, Error> {
        Err(Error("tuples have no YAML form here".into()))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Impossible<(), Error>, Error> {
        Err(Error("tuples have no YAML form here".into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Impossible<(), Error>, Error> {
        Err(Error("enum variants have no YAML form here".into()))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Mapping<'w>, Error> {
        let len = len.ok_or_else(|| Error("a mapping of unknown length".into()))?;
        let (indent, inline_first) = match self.at {
            _ if len == 0 => {
                self.scalar(|out| out.push_str("{}"));
                (0, false)
            }
            At::Top => (0, false),
            At::Key(k) => {
                self.out.push('\n');
                (k + 2, false)
            }
            // The first key follows the item's dash.
            At::Item(d) => {
                self.out.push(' ');
                (d + 2, true)
            }
        };
        Ok(Mapping { w: self, indent, inline_first })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Impossible<(), Error>, Error> {
        Err(Error("structs have no YAML form here".into()))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Impossible<(), Error>, Error> {
        Err(Error("enum variants have no YAML form here".into()))
    }
}

impl ser::SerializeSeq for Sequence<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.w.indent(self.indent);
        self.w.out.push('-');
        self.w.at = At::Item(self.indent);
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl ser::SerializeMap for Mapping<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        if !std::mem::take(&mut self.inline_first) {
            self.w.indent(self.indent);
        }
        // Written as a scalar of its own line would be, its newline then
        // taken back.
        let start = self.w.out.len();
        self.w.at = At::Top;
        key.serialize(&mut *self.w)?;
        if self.w.out.pop() != Some('\n') || self.w.out[start..].contains('\n') {
            return Err(Error("a mapping key that is not a scalar".into()));
        }
        self.w.out.push(':');
        self.w.at = At::Key(self.indent);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::to_string;

    #[test]
    fn nests_in_block_style() {
        let v = json!({
            "a": [[1, [2]], {"b": [], "c": {}}, {}, [], "x"],
            "d": {"e": {"f": null}},
            "g": -1.5,
        });
        let text = "a:\n-\n  - 1\n  -\n    - 2\n- b: []\n  c: {}\n- {}\n- []\n- x\nd:\n  e:\n    f: null\ng: -1.5\n";
        assert_eq!(to_string(&v).unwrap(), text);
        assert_eq!(to_string(&json!([])).unwrap(), "[]\n");
        assert_eq!(to_string(&json!("yes")).unwrap(), "'yes'\n");
        assert_eq!(to_string(&json!([{"k": [{"a": 1}]}])).unwrap(), "- k:\n  - a: 1\n");
    }

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z0-9 :#'\"@*&!|>{}\\[\\],-]{0,8}".prop_map(Value::from),
            prop_oneof![
                Just("yes"),
                Just("on"),
                Just("Off"),
                Just("Y"),
                Just("1e3"),
                Just("~"),
                Just("null"),
                Just("-"),
                Just("Infinity"),
                Just("NaN"),
                Just(".inf"),
                Just("a:"),
                Just("/x:y"),
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(("[a-z@ :'-]{0,6}", inner), 0..5)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the nesting and the strings, a YAML reader reads the
        /// text back as the value.
        #[test]
        fn reads_back_as_the_value(v in values()) {
            let text = to_string(&v).unwrap();
            let back: Value = serde_yaml::from_str(&text).unwrap();
            prop_assert_eq!(back, v, "{}", text);
        }
    }
}
