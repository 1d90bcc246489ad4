//! A JSON value as a record holds it (borrowed from the payload where it can be), map keys
//! borrowed likewise, and the conversions from a value to each column's Rust type: lenient
//! where real payloads are untidy (numbers sent as strings, nulls), strict where data
//! would be lost (a value of the wrong type is an error, with the value in words).

use std::borrow::Cow;
use std::fmt;

use compact_str::CompactString;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON value as found in a record, borrowed from the payload where possible.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
    /// An array or an object, where a scalar was expected.
    Other(&'static str),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::I64(n) => write!(f, "{n}"),
            Value::U64(n) => write!(f, "{n}"),
            Value::F64(n) => write!(f, "{n}"),
            Value::Str(s) => write!(f, "{:?}", truncate(s, 40)),
            Value::Other(kind) => write!(f, "an {kind}"),
        }
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Value<'de>, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value<'de>, E> {
                Ok(Value::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value<'de>, E> {
                Ok(Value::U64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value<'de>, E> {
                Ok(Value::F64(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
                Ok(Value::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
                Ok(Value::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Value<'de>, E> {
                Ok(Value::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Value<'de>, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value<'de>, E> {
                Ok(Value::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Value::Other("array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Value::Other("object"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A map key, borrowed when it has no escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Converts a JSON value into a column's Rust type, or says why it cannot.
pub trait Convert: Sized {
    fn convert(value: Value<'_>, slot: &mut Self) -> Result<(), String>;
}

pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

pub(crate) fn integral(v: f64) -> Option<i64> {
    // 2^63 as f64; values at or past it do not fit an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (v.fract() == 0.0 && v.abs() < LIMIT).then_some(v as i64)
}

impl Convert for Option<f64> {
    fn convert(value: Value<'_>, slot: &mut Self) -> Result<(), String> {
        *slot = match value {
            Value::Null => None,
            Value::I64(n) => Some(n as f64),
            Value::U64(n) => Some(n as f64),
            Value::F64(n) => Some(n),
            Value::Str(s) if s.trim().is_empty() => None,
            Value::Str(ref s) => match parse_f64(s) {
                Some(v) => Some(v),
                None => return Err(format!("expected a number, got {value}")),
            },
            other => return Err(format!("expected a number, got {other}")),
        };
        Ok(())
    }
}

impl Convert for Option<i64> {
    fn convert(value: Value<'_>, slot: &mut Self) -> Result<(), String> {
        let bad = |v: &Value<'_>| format!("expected an integer, got {v}");
        *slot = match value {
            Value::Null => None,
            Value::I64(n) => Some(n),
            Value::U64(n) => Some(i64::try_from(n).map_err(|_| bad(&value))?),
            Value::F64(n) => Some(integral(n).ok_or_else(|| bad(&value))?),
            Value::Str(s) if s.trim().is_empty() => None,
            Value::Str(ref s) => {
                let t = s.trim();
                match t.parse::<i64>() {
                    Ok(n) => Some(n),
                    Err(_) => Some(parse_f64(t).and_then(integral).ok_or_else(|| bad(&value))?),
                }
            }
            other => return Err(bad(&other)),
        };
        Ok(())
    }
}

impl Convert for Option<bool> {
    fn convert(value: Value<'_>, slot: &mut Self) -> Result<(), String> {
        *slot = match value {
            Value::Null => None,
            Value::Bool(b) => Some(b),
            Value::I64(0) | Value::U64(0) => Some(false),
            Value::I64(1) | Value::U64(1) => Some(true),
            Value::Str(ref s) => match s.trim().to_ascii_lowercase().as_str() {
                "" => None,
                "true" | "1" | "yes" | "y" => Some(true),
                "false" | "0" | "no" | "n" => Some(false),
                _ => return Err(format!("expected a boolean, got {value}")),
            },
            other => return Err(format!("expected a boolean, got {other}")),
        };
        Ok(())
    }
}

impl Convert for Option<CompactString> {
    fn convert(value: Value<'_>, slot: &mut Self) -> Result<(), String> {
        *slot = match value {
            Value::Null => None,
            Value::Str(s) => Some(CompactString::from(s)),
            Value::Bool(_) | Value::I64(_) | Value::U64(_) | Value::F64(_) => {
                Some(compact_str::format_compact!("{value}"))
            }
            other => return Err(format!("expected a string, got {other}")),
        };
        Ok(())
    }
}

impl Convert for CompactString {
    fn convert(value: Value<'_>, slot: &mut Self) -> Result<(), String> {
        use compact_str::ToCompactString;
        *slot = match value {
            Value::Null => CompactString::default(),
            Value::Str(s) => CompactString::from(s),
            Value::I64(n) => n.to_compact_string(),
            Value::U64(n) => n.to_compact_string(),
            Value::F64(n) => match integral(n) {
                Some(i) => i.to_compact_string(),
                None => n.to_compact_string(),
            },
            other => return Err(format!("expected an identifier, got {other}")),
        };
        Ok(())
    }
}
