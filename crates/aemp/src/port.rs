//! What a port does with a message: callbacks, tag and pattern matching.

use std::fmt;

use aemp_proto::{Message, Value};

/// What a callback wants after handling a message.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum Flow {
    /// Keep the callback (and the port).
    #[default]
    Continue,
    /// The callback's work is done: a miniport is killed normally, an `rcv` callback is
    /// unregistered (the 2009 API's "return true").
    Done,
}

/// Anything a port callback may return.
///
/// `()` and [`Flow::Continue`] keep the callback; [`Flow::Done`] and `true` finish it; an
/// `Err` kills the port with `["die", error text]`, like an exception in Perl's port context.
pub trait IntoFlow {
    /// Converts the callback's return value.
    ///
    /// # Errors
    ///
    /// The text of the error that kills the port.
    fn into_flow(self) -> Result<Flow, String>;
}

impl IntoFlow for () {
    fn into_flow(self) -> Result<Flow, String> {
        Ok(Flow::Continue)
    }
}

impl IntoFlow for Flow {
    fn into_flow(self) -> Result<Flow, String> {
        Ok(self)
    }
}

impl IntoFlow for bool {
    fn into_flow(self) -> Result<Flow, String> {
        Ok(if self { Flow::Done } else { Flow::Continue })
    }
}

impl<T: IntoFlow, E: fmt::Display> IntoFlow for Result<T, E> {
    fn into_flow(self) -> Result<Flow, String> {
        match self {
            Ok(t) => t.into_flow(),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A callback as stored in the port table.
pub(crate) type Callback = Box<dyn FnMut(Message) -> Result<Flow, String> + Send>;

/// Wraps a user closure into a stored callback.
pub(crate) fn callback<R: IntoFlow>(mut f: impl FnMut(Message) -> R + Send + 'static) -> Callback {
    Box::new(move |msg| f(msg).into_flow())
}

/// Which messages an `rcv` callback receives.
///
/// A tag (`"ping"`) matches messages whose first element is that string (after Perl's
/// stringification, so `1` matches the tag `"1"`). A prefix pattern (the 2009 API's
/// `[tag, _any_, 3]`) matches messages whose first elements equal the pattern's, with
/// [`Pattern::ANY`] matching any single element.
///
/// ```
/// use aemp::{Message, Pattern, Value};
/// let p = Pattern::prefix([Value::from("child_died"), Pattern::ANY, Value::from(3)]);
/// assert!(p.matches(&Message::new(vec!["child_died".into(), 7.into(), 3.into(), "x".into()])));
/// assert!(!p.matches(&Message::new(vec!["child_died".into(), 7.into()])));
/// assert!(Pattern::from("ping").matches(&Message::new(vec!["ping".into()])));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    /// Matches on the first element.
    Tag(String),
    /// Matches on the first elements; `None` is a wildcard.
    Prefix(Vec<Option<Value>>),
}

impl Pattern {
    /// The wildcard element of a prefix pattern (the 2009 API's `_any_`).
    pub const ANY: Value = Value::Null;

    /// A prefix pattern. Each [`Pattern::ANY`] element (a `Value::Null`) matches any element;
    /// to match a literal `null` use [`Pattern::Prefix`] with `Some(Value::Null)`.
    pub fn prefix(elements: impl IntoIterator<Item = Value>) -> Self {
        Self::Prefix(
            elements
                .into_iter()
                .map(|v| if v.is_null() { None } else { Some(v) })
                .collect(),
        )
    }

    /// `true` if `msg` matches.
    pub fn matches(&self, msg: &Message) -> bool {
        match self {
            Self::Tag(tag) => msg.first().is_some_and(|v| v.matches_tag(tag)),
            Self::Prefix(elements) => {
                elements.len() <= msg.len()
                    && elements.iter().zip(msg.iter()).all(|(p, v)| match p {
                        None => true,
                        Some(Value::String(s)) => v.matches_tag(s),
                        Some(p) => p == v,
                    })
            }
        }
    }
}

impl From<&str> for Pattern {
    fn from(tag: &str) -> Self {
        Self::Tag(tag.to_owned())
    }
}

impl From<String> for Pattern {
    fn from(tag: String) -> Self {
        Self::Tag(tag)
    }
}

/// How a port handles messages.
pub(crate) enum Behaviour {
    /// `port` without a callback: the first message kills the port (AEMP 1.30).
    Empty,
    /// A miniport: one callback gets every message.
    Callback(Callback),
    /// A full port: `rcv` callbacks by pattern, and a default callback.
    Tagged(Box<Tagged>),
    /// The port finished or failed and its (deferred) kill is queued: messages are dropped.
    Dying,
}

#[cold]
fn dropped_while_dying(msg: &Message) -> Outcome {
    tracing::debug!(?msg, "message to a dying port dropped");
    Outcome::Continue
}

/// The `rcv` table of a full port.
#[derive(Default)]
pub(crate) struct Tagged {
    rules: Vec<Rule>,
    default: Option<Callback>,
}

struct Rule {
    pattern: Pattern,
    callback: Callback,
}

/// What happened when a behaviour handled a message.
pub(crate) enum Outcome {
    /// Keep going.
    Continue,
    /// A miniport finished: kill the port normally.
    Done,
    /// The port must die with `["die", text]`.
    Die(String),
}

impl Behaviour {
    /// Runs the matching callbacks for `msg`.
    pub(crate) fn handle(&mut self, msg: Message) -> Outcome {
        match self {
            Self::Empty => Outcome::Die("received message on port without callback".to_owned()),
            Self::Callback(cb) => match cb(msg) {
                Ok(Flow::Continue) => Outcome::Continue,
                Ok(Flow::Done) => Outcome::Done,
                Err(e) => Outcome::Die(e),
            },
            Self::Tagged(t) => t.handle(msg),
            Self::Dying => dropped_while_dying(&msg),
        }
    }

    /// Adds an `rcv` callback, converting the port to a full port if needed (a miniport's
    /// callback becomes the default callback, as in AEMP).
    pub(crate) fn add_rule(&mut self, pattern: Pattern, callback: Callback) {
        self.tagged().rules.push(Rule { pattern, callback });
    }

    /// Sets the default callback of a full port (converting a miniport).
    pub(crate) fn set_default(&mut self, callback: Callback) {
        self.tagged().default = Some(callback);
    }

    /// Removes every `rcv` callback registered for exactly this pattern.
    pub(crate) fn remove_rules(&mut self, pattern: &Pattern) {
        if let Self::Tagged(t) = self {
            t.rules.retain(|r| &r.pattern != pattern);
        }
    }

    fn tagged(&mut self) -> &mut Tagged {
        if !matches!(self, Self::Tagged(_)) {
            let default = match std::mem::replace(self, Self::Empty) {
                Self::Callback(cb) => Some(cb),
                _ => None,
            };
            *self = Self::Tagged(Box::new(Tagged {
                rules: Vec::new(),
                default,
            }));
        }
        match self {
            Self::Tagged(t) => t,
            // Just converted above.
            _ => unreachable!("behaviour was converted to a full port"),
        }
    }
}

impl Tagged {
    fn handle(&mut self, msg: Message) -> Outcome {
        let matching: Vec<usize> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.pattern.matches(&msg))
            .map(|(i, _)| i)
            .collect();
        if matching.is_empty() {
            return match &mut self.default {
                Some(cb) => match cb(msg) {
                    Ok(Flow::Continue) => Outcome::Continue,
                    Ok(Flow::Done) => {
                        // The default callback is done: unregister it, like an `rcv` one.
                        self.default = None;
                        Outcome::Continue
                    }
                    Err(e) => Outcome::Die(e),
                },
                None => {
                    tracing::debug!(?msg, "message matches no rcv callback; dropped");
                    Outcome::Continue
                }
            };
        }
        let mut done = Vec::new();
        let last = matching.len() - 1;
        let mut msg = Some(msg);
        for (n, &i) in matching.iter().enumerate() {
            // Every matching callback gets the message; only the last one gets it by value.
            let m = if n == last {
                msg.take().unwrap_or_default()
            } else {
                msg.clone().unwrap_or_default()
            };
            let Some(rule) = self.rules.get_mut(i) else {
                continue;
            };
            match (rule.callback)(m) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Done) => done.push(i),
                Err(e) => return Outcome::Die(e),
            }
        }
        for i in done.into_iter().rev() {
            self.rules.remove(i);
        }
        Outcome::Continue
    }
}
