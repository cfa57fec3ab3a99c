//! Perl `aemp`'s argument conventions (reference §5.7): arguments that start with `[`, `{`
//! or `"` are JSON; a single argument that is a JSON array replaces all arguments.

use aemp::{Message, Value};
use anyhow::{Context, Result, bail};

/// Applies the single-JSON-array rule: `aemp '["cal", "seed", "time"]'` is
/// `aemp cal seed time`. Strings become arguments as they are; other values become their
/// JSON text (so a later JSON decode gives them back).
///
/// # Errors
///
/// The single argument starts with `[` but is not a JSON array.
pub(crate) fn expand(args: Vec<String>) -> Result<Vec<String>> {
    let [only] = args.as_slice() else {
        return Ok(args);
    };
    if !only.starts_with('[') {
        return Ok(args);
    }
    let items: Vec<serde_json::Value> = serde_json::from_str(only)
        .context("a single argument starting with [ must be a JSON array")?;
    Ok(items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
        .collect())
}

/// `true` if `arg` is to be read as JSON.
pub(crate) fn is_json(arg: &str) -> bool {
    arg.starts_with(['[', '{', '"'])
}

/// An argument as a JSON value: decoded if it looks like JSON, else the string itself.
///
/// # Errors
///
/// The argument starts like JSON but does not parse.
pub(crate) fn json(arg: &str) -> Result<serde_json::Value> {
    if is_json(arg) {
        serde_json::from_str(arg).with_context(|| format!("argument {arg:?} is not valid JSON"))
    } else {
        Ok(serde_json::Value::String(arg.to_owned()))
    }
}

/// As [`json`], for address arguments: one that starts with `[` but is not JSON is an IPv6
/// address spec (`[::1]:4040`) and is taken as written.
///
/// # Errors
///
/// The argument starts with `{` or `"` but does not parse.
pub(crate) fn json_or_address(arg: &str) -> Result<serde_json::Value> {
    match json(arg) {
        Err(_) if arg.starts_with('[') => Ok(serde_json::Value::String(arg.to_owned())),
        other => other,
    }
}

/// Message elements from arguments (JSON where they look like it, strings otherwise).
///
/// # Errors
///
/// An argument starts like JSON but does not parse.
pub(crate) fn message(args: &[String]) -> Result<Message> {
    args.iter()
        .map(|a| {
            if is_json(a) {
                serde_json::from_str::<Value>(a)
                    .with_context(|| format!("argument {a:?} is not valid JSON"))
            } else {
                Ok(Value::from(a.as_str()))
            }
        })
        .collect()
}

/// A message as Perl's tool prints a reply: its JSON without the outer brackets.
pub(crate) fn show(msg: &Message) -> String {
    let text = serde_json::to_string(&msg.to_vec()).unwrap_or_else(|_| "[]".to_owned());
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(&text)
        .to_owned()
}

/// KEY VALUE pairs (values JSON where they look like it).
///
/// # Errors
///
/// An odd number of arguments, or a value that starts like JSON but does not parse.
pub(crate) fn pairs(args: &[String]) -> Result<Vec<(String, serde_json::Value)>> {
    if !args.len().is_multiple_of(2) {
        bail!("expected KEY VALUE pairs, got an odd number of arguments: {args:?}");
    }
    args.chunks(2)
        .map(|kv| Ok((kv[0].clone(), json(&kv[1])?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_json_array_replaces_the_arguments() {
        let args = expand(vec![r#"["cal", "seed", "time", 5, [1]]"#.into()]).unwrap();
        assert_eq!(args, ["cal", "seed", "time", "5", "[1]"]);
        assert!(expand(vec!["[oops".into()]).is_err());
        let two = vec!["[1]".to_owned(), "x".to_owned()];
        assert_eq!(expand(two.clone()).unwrap(), two);
    }

    #[test]
    fn json_arguments() {
        let m = message(&[
            "join".into(),
            r#""bob""#.into(),
            "[1,2]".into(),
            "{}".into(),
            "7".into(),
        ])
        .unwrap();
        assert_eq!(m[0], Value::from("join"));
        assert_eq!(m[1], Value::from("bob"));
        assert_eq!(m[2], Value::from(vec![Value::from(1), Value::from(2)]));
        assert_eq!(m[3], Value::Map(Vec::new()));
        // Not JSON-looking: a string, as Perl passes it.
        assert_eq!(m[4], Value::from("7"));
        assert!(message(&["[1,".into()]).is_err());
        assert_eq!(show(&m), r#""join","bob",[1,2],{},"7""#);
        assert!(pairs(&["a".into()]).is_err());
        assert_eq!(
            json_or_address("[::1]:4040").unwrap(),
            serde_json::json!("[::1]:4040")
        );
        assert_eq!(
            json_or_address("[\"a\"]").unwrap(),
            serde_json::json!(["a"])
        );
        assert!(json_or_address("{").is_err());
        assert_eq!(
            pairs(&["a".into(), "[1]".into()]).unwrap()[0].1,
            serde_json::json!([1])
        );
    }
}
