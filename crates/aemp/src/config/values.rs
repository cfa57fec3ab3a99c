//! Reading config values as Perl writes them: numbers as strings, booleans as `0`/`1`/`""`,
//! lists as comma-separated strings.

use std::time::Duration;

use super::{Json, Map, Service};
use crate::Value;

/// A string, or a number written as one (Perl does not distinguish).
pub(super) fn scalar_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn optional_string(
    map: &Map<String, Json>,
    key: &str,
) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => scalar_string(v)
            .map(Some)
            .ok_or_else(|| "must be a string".to_owned()),
    }
}

/// An array of strings, each possibly a comma-separated list; a single string is a list.
pub(super) fn string_list(v: &Json) -> Result<Vec<String>, String> {
    match v {
        Json::String(s) => Ok(split_list(s)),
        Json::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                let s = scalar_string(item).ok_or_else(|| format!("{item} is not a string"))?;
                out.extend(split_list(&s));
            }
            Ok(out)
        }
        _ => Err("must be an array of strings".to_owned()),
    }
}

/// Splits a comma-separated list (reference §5.5: any list entry may hold several), trimmed,
/// without empty parts: `"a, b,,c"` → `["a", "b", "c"]`.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn services(v: &Json) -> Result<Vec<Service>, String> {
    let Json::Array(items) = v else {
        return Err("must be an array of names or [name, args...] arrays".to_owned());
    };
    items
        .iter()
        .map(|item| match item {
            Json::String(name) => Ok(Service {
                name: name.clone(),
                args: Vec::new(),
            }),
            Json::Array(call) => {
                let (name, args) = call
                    .split_first()
                    .ok_or_else(|| "an empty service array".to_owned())?;
                let name = name
                    .as_str()
                    .ok_or_else(|| format!("service name {name} is not a string"))?;
                let args = args
                    .iter()
                    .map(|a| serde_json::from_value::<Value>(a.clone()).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?;
                Ok(Service {
                    name: name.to_owned(),
                    args,
                })
            }
            other => Err(format!("{other} is not a service name or array")),
        })
        .collect()
}

/// Seconds as a number or a numeric string, positive and finite.
pub(super) fn duration(v: &Json) -> Result<Duration, String> {
    let secs = match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{v} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("{v} must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{v} is too large"))
}

/// Perl truth values, plus the words `true`/`false`/`yes`/`no` that the command line writes.
pub(super) fn boolean(v: &Json) -> Result<bool, String> {
    match v {
        Json::Null => Ok(false),
        Json::Bool(b) => Ok(*b),
        Json::Number(n) => Ok(n.as_f64() != Some(0.0)),
        Json::String(s) => match s.trim() {
            "" | "0" | "false" | "no" | "off" => Ok(false),
            "1" | "true" | "yes" | "on" => Ok(true),
            _ => Err(format!("{v} is not a boolean (true/false, 1/0)")),
        },
        _ => Err(format!("{v} is not a boolean")),
    }
}

/// A list of protocol names. Perl's `storable` framing is skipped (aemp does not speak it);
/// any other unknown name is an error (a typo would otherwise silently weaken the list).
pub(super) fn names<T: std::str::FromStr>(
    map: &Map<String, Json>,
    key: &str,
) -> Result<Vec<T>, String> {
    let list = match map.get(key) {
        Some(v @ (Json::Array(_) | Json::String(_))) => string_list(v)?,
        _ => return Err("must be an array of names".to_owned()),
    };
    let mut out = Vec::new();
    for name in &list {
        match name.parse() {
            Ok(v) => out.push(v),
            Err(_) if name == "storable" => {
                tracing::debug!(key, name, "not spoken by aemp, skipped");
            }
            Err(_) => return Err(format!("unknown name {name:?}")),
        }
    }
    Ok(out)
}

/// A positive whole number, as a number or a numeric string (`67108864`, `"512"`).
pub(super) fn count(v: &Json) -> Result<usize, String> {
    let n = match v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{v} is not a whole number"))?;
    if n == 0 {
        return Err(format!("{v} must be more than 0"));
    }
    usize::try_from(n).map_err(|_| format!("{v} is too large"))
}
