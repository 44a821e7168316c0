//! Values shared by the policy and condition parsers: the error both return
//! and the string-or-list reader (kept apart so neither imports the other).

use serde_json::Value;
use std::fmt;

/// Most values one field of an untrusted document may hold.
pub const MAX_VALUES: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// A string or a list of strings; anything else is an error.
pub(crate) fn strings(v: &Value, what: &str) -> Result<Vec<String>, ParseError> {
    let out: Vec<String> = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                // IAM accepts numbers and booleans in condition values.
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(ParseError(format!("{what} holds {x}, which is not a string"))),
            })
            .collect::<Result<_, _>>()?,
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        _ => return Err(ParseError(format!("{what} must be a string or a list of strings"))),
    };
    if out.len() > MAX_VALUES {
        return Err(ParseError(format!("{what} holds more than {MAX_VALUES} values")));
    }
    Ok(out)
}
