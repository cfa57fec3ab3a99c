//! The record of remote ports this node has reported dead ("no false death").
//!
//! Once a monitor on a remote port has fired (a `kil0`, `no_such_port`, a lost connection, a
//! node that could not be reached), that port is dead *for this node* for the node's life:
//! later messages to it are dropped, and a new monitor on it fires at once with the reason
//! first reported, even if the link comes back and the port is in fact alive on its node.
//! Otherwise a port reported dead could come back, and a stream to it would have a hole.
//!
//! # Bounded memory
//!
//! Port names are `<prefix>.<counter>`: a random prefix per node process (or per spawner) and
//! a counter that is never reused (aemp: base 62; Perl: `a`, `b`, …, `z`, `aa`, …). The record
//! keeps, per node and prefix, the dead counters as ranges, so ports that die together (a
//! lost connection takes every monitored port of that node) and were created together cost
//! one entry. Names of any other shape are kept whole. Each range or whole name is one entry
//! (about 40 bytes); reasons are kept once per node and shared by its entries.
//!
//! The whole record holds at most `limit` entries (default [`DEFAULT_LIMIT`]). Past it, the
//! node with the most entries has its ranges of each prefix merged into one (from its first
//! to its last dead counter): ports in the gaps count as dead too, which errs towards death
//! (a live port's messages dropped, its new monitors fired) but never lets a reported death
//! be undone. If nothing can be merged, the record of the node touched longest ago is
//! forgotten whole, with a warning: only then could a port reported dead come back.

use std::collections::{BTreeMap, HashMap};

use aemp_proto::{NodeId, PortId};

use crate::monitor::Reason;

/// How many entries the record holds by default (about 10 MiB in the worst case).
pub(crate) const DEFAULT_LIMIT: usize = 256 * 1024;

/// Distinct reasons kept per node; later deaths with a new reason report `no_such_port`
/// (true: the port is gone for us), as do reasons larger than [`MAX_REASON_BYTES`].
const MAX_REASONS: usize = 64;

/// The largest reason (in value bytes, roughly) kept as it was reported.
const MAX_REASON_BYTES: usize = 4096;

/// Remote ports reported dead, by node.
#[derive(Debug)]
pub(crate) struct DeadPorts {
    nodes: HashMap<NodeId, NodeDead>,
    /// Ranges and whole names, over all nodes.
    entries: usize,
    limit: usize,
    /// Bumped on every record, to find the node touched longest ago.
    clock: u64,
}

/// The dead ports of one node.
#[derive(Debug, Default)]
struct NodeDead {
    reasons: Vec<Reason>,
    /// Dead counters by prefix and counter style.
    counted: HashMap<(Box<str>, Style), Ranges>,
    /// Names that are not `<prefix>.<counter>`.
    whole: HashMap<Box<str>, ReasonIndex>,
    /// When this node's record last changed ([`DeadPorts::clock`]).
    touched: u64,
}

/// How a name's counter is written.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
enum Style {
    /// Base 62, `0-9A-Za-z`, no leading zero (aemp).
    Base62,
    /// Perl's string increment over `a-z`: `a` = 1, `z` = 26, `aa` = 27 (AnyEvent::MP).
    Letters,
}

/// An index into [`NodeDead::reasons`], or [`GENERIC`].
type ReasonIndex = u16;

/// "Report `no_such_port`": the reason was not kept.
const GENERIC: ReasonIndex = ReasonIndex::MAX;

/// Dead counters: `start → (end, reason)`, inclusive, disjoint, not touching when their
/// reasons are the same.
type Ranges = BTreeMap<u64, (u64, ReasonIndex)>;

impl DeadPorts {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            nodes: HashMap::new(),
            entries: 0,
            limit: limit.max(1),
            clock: 0,
        }
    }

    /// `true` if `node` has dead ports on record (the cheap check before [`reason`]).
    ///
    /// [`reason`]: Self::reason
    pub(crate) fn has_node(&self, node: &NodeId) -> bool {
        self.nodes.contains_key(node)
    }

    /// Entries held, over all nodes.
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.entries
    }

    /// Records that port `name` of `node` was reported dead with `reason`. The first reason
    /// recorded for a port stays. Node ports (`""`) are never recorded: they are the node.
    pub(crate) fn record(&mut self, node: &NodeId, name: &str, reason: &Reason) {
        if name.is_empty() {
            return;
        }
        self.clock += 1;
        let clock = self.clock;
        let dead = self.nodes.entry(node.clone()).or_default();
        dead.touched = clock;
        let index = dead.intern(reason);
        let added = match split(name) {
            Some((prefix, style, counter)) => {
                let ranges = dead.counted.entry((prefix.into(), style)).or_default();
                insert(ranges, counter, index)
            }
            None => {
                if dead.whole.contains_key(name) {
                    0
                } else {
                    dead.whole.insert(name.into(), index);
                    1
                }
            }
        };
        self.entries = self.entries.saturating_add_signed(added);
        while self.entries > self.limit && self.shrink() {}
    }

    /// The reason `port` was reported dead, if it was.
    pub(crate) fn reason(&self, port: &PortId) -> Option<Reason> {
        let dead = self.nodes.get(port.node())?;
        let index = match split(port.name()) {
            Some((prefix, style, counter)) => {
                let ranges = dead.counted.get(&(prefix.into(), style))?;
                let (_, &(end, index)) = ranges.range(..=counter).next_back()?;
                (counter <= end).then_some(index)?
            }
            None => *dead.whole.get(port.name())?,
        };
        Some(
            dead.reasons
                .get(usize::from(index))
                .cloned()
                .unwrap_or_else(|| Reason::no_such_port(port)),
        )
    }

    /// Makes room: merges the ranges of the node with the most entries, or forgets the node
    /// touched longest ago. `false` if the record is empty.
    fn shrink(&mut self) -> bool {
        let Some((node, count)) = self
            .nodes
            .iter()
            .map(|(n, d)| (n, d.entries()))
            .max_by_key(|(_, c)| *c)
            .map(|(n, c)| (n.clone(), c))
        else {
            return false;
        };
        if let Some(dead) = self.nodes.get_mut(&node) {
            let saved = dead.merge_ranges();
            if saved > 0 {
                self.entries -= saved;
                tracing::warn!(
                    %node,
                    entries = count - saved,
                    "dead-port record full: ports between ports reported dead now count as dead too"
                );
                return true;
            }
        }
        let Some(oldest) = self
            .nodes
            .iter()
            .min_by_key(|(_, d)| d.touched)
            .map(|(n, _)| n.clone())
        else {
            return false;
        };
        if let Some(dead) = self.nodes.remove(&oldest) {
            self.entries -= dead.entries();
            tracing::warn!(
                node = %oldest,
                "dead-port record full: forgot the ports this node reported dead on that node"
            );
        }
        true
    }
}

impl NodeDead {
    fn entries(&self) -> usize {
        self.counted.values().map(BTreeMap::len).sum::<usize>() + self.whole.len()
    }

    /// The index of `reason`, adding it if there is room.
    fn intern(&mut self, reason: &Reason) -> ReasonIndex {
        if let Some(i) = self.reasons.iter().position(|r| r == reason) {
            return ReasonIndex::try_from(i).unwrap_or(GENERIC);
        }
        if self.reasons.len() >= MAX_REASONS
            || super::link::values_size(reason.values()) > MAX_REASON_BYTES
        {
            return GENERIC;
        }
        self.reasons.push(reason.clone());
        ReasonIndex::try_from(self.reasons.len() - 1).unwrap_or(GENERIC)
    }

    /// Merges each prefix's ranges into one; returns how many entries that saved.
    fn merge_ranges(&mut self) -> usize {
        let mut saved = 0;
        for ranges in self.counted.values_mut() {
            if ranges.len() < 2 {
                continue;
            }
            let first = ranges.keys().next().copied().unwrap_or(0);
            let (end, index) = ranges.values().next_back().copied().unwrap_or((0, GENERIC));
            saved += ranges.len() - 1;
            ranges.clear();
            ranges.insert(first, (end, index));
        }
        saved
    }
}

/// Adds `counter` to `ranges`; returns the change in the number of ranges (-1, 0 or 1).
fn insert(ranges: &mut Ranges, counter: u64, index: ReasonIndex) -> isize {
    let left = ranges
        .range(..=counter)
        .next_back()
        .map(|(&s, &(e, i))| (s, e, i));
    if let Some((_, end, _)) = left
        && counter <= end
    {
        return 0; // already dead: the first reason stays
    }
    let joins_left = left.filter(|&(_, end, i)| i == index && end.checked_add(1) == Some(counter));
    let right = counter
        .checked_add(1)
        .and_then(|next| ranges.get(&next).map(|&(e, i)| (next, e, i)));
    let joins_right = right.filter(|&(_, _, i)| i == index);
    match (joins_left, joins_right) {
        (Some((start, _, _)), Some((next, end, _))) => {
            ranges.remove(&next);
            ranges.insert(start, (end, index));
            -1
        }
        (Some((start, _, _)), None) => {
            ranges.insert(start, (counter, index));
            0
        }
        (None, Some((next, end, _))) => {
            ranges.remove(&next);
            ranges.insert(counter, (end, index));
            0
        }
        (None, None) => {
            ranges.insert(counter, (counter, index));
            1
        }
    }
}

/// Splits `<prefix>.<counter>` into its parts, the counter as a number.
fn split(name: &str) -> Option<(&str, Style, u64)> {
    let (prefix, digits) = name.rsplit_once('.')?;
    if prefix.is_empty() || digits.is_empty() || digits.len() > 13 {
        return None;
    }
    if digits.bytes().all(|b| b.is_ascii_lowercase()) {
        // Bijective base 26: a..z, aa..zz, … (Perl's magic string increment).
        let mut n: u64 = 0;
        for b in digits.bytes() {
            n = n.checked_mul(26)?.checked_add(u64::from(b - b'a' + 1))?;
        }
        return Some((prefix, Style::Letters, n));
    }
    let n = aemp_proto::id::parse_counter(digits)?;
    Some((prefix, Style::Base62, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn port(n: &str, name: &str) -> PortId {
        PortId::new(node(n), name).unwrap()
    }

    fn lost(n: &str) -> Reason {
        Reason::transport_error(&node(n), "heartbeat timeout")
    }

    #[test]
    fn recorded_ports_are_dead_with_their_first_reason_and_others_are_not() {
        let mut d = DeadPorts::new(100);
        d.record(&node("b"), "P.3", &lost("b"));
        d.record(&node("b"), "P.3", &Reason::die("later"));
        assert_eq!(d.reason(&port("b", "P.3")), Some(lost("b")));
        assert_eq!(d.reason(&port("b", "P.2")), None);
        assert_eq!(d.reason(&port("b", "P.4")), None);
        assert_eq!(d.reason(&port("b", "Q.3")), None);
        assert_eq!(d.reason(&port("c", "P.3")), None);
        assert!(d.has_node(&node("b")));
        assert!(!d.has_node(&node("c")));
    }

    #[test]
    fn the_node_port_is_never_recorded() {
        let mut d = DeadPorts::new(100);
        d.record(&node("b"), "", &lost("b"));
        assert_eq!(d.reason(&PortId::node_port(node("b"))), None);
        assert!(!d.has_node(&node("b")));
    }

    #[test]
    fn neighbouring_counters_with_one_reason_share_an_entry() {
        let mut d = DeadPorts::new(100);
        for name in ["P.1", "P.3", "P.2", "P.5", "P.4"] {
            d.record(&node("b"), name, &lost("b"));
        }
        assert_eq!(d.entries(), 1);
        // A different reason splits.
        d.record(&node("b"), "P.6", &Reason::die("x"));
        assert_eq!(d.entries(), 2);
        assert_eq!(d.reason(&port("b", "P.6")), Some(Reason::die("x")));
        assert_eq!(d.reason(&port("b", "P.5")), Some(lost("b")));
    }

    #[test]
    fn perl_and_base62_counters_and_other_names() {
        assert_eq!(
            split("KX7Dv0h8nK2DyFCY.a"),
            Some(("KX7Dv0h8nK2DyFCY", Style::Letters, 1))
        );
        assert_eq!(split("U.z"), Some(("U", Style::Letters, 26)));
        assert_eq!(split("U.aa"), Some(("U", Style::Letters, 27)));
        assert_eq!(split("1cfv.3"), Some(("1cfv", Style::Base62, 3)));
        assert_eq!(split("1cfv.Z"), Some(("1cfv", Style::Base62, 35)));
        assert_eq!(split("1cfv.10"), Some(("1cfv", Style::Base62, 62)));
        for odd in ["echo", ".3", "P.", "P.03", "P.a-b", "P.zzzzzzzzzzzzzz"] {
            assert_eq!(split(odd), None, "{odd}");
        }
        let mut d = DeadPorts::new(100);
        d.record(&node("b"), "echo", &lost("b"));
        d.record(&node("b"), "U.aa", &lost("b"));
        d.record(&node("b"), "U.z", &lost("b"));
        assert_eq!(d.entries(), 2);
        assert_eq!(d.reason(&port("b", "echo")), Some(lost("b")));
        assert_eq!(d.reason(&port("b", "U.z")), Some(lost("b")));
        assert_eq!(d.reason(&port("b", "U.y")), None);
    }

    #[test]
    fn too_many_or_too_large_reasons_report_no_such_port() {
        let mut d = DeadPorts::new(10_000);
        for i in 0..MAX_REASONS + 5 {
            d.record(&node("b"), &format!("P.{i}"), &Reason::die(format!("r{i}")));
        }
        let last = port("b", &format!("P.{}", MAX_REASONS + 4));
        assert_eq!(d.reason(&last), Some(Reason::no_such_port(&last)));
        assert_eq!(d.reason(&port("b", "P.0")), Some(Reason::die("r0")));
        d.record(
            &node("c"),
            "P.1",
            &Reason::die("x".repeat(MAX_REASON_BYTES)),
        );
        let big = port("c", "P.1");
        assert_eq!(d.reason(&big), Some(Reason::no_such_port(&big)));
    }

    #[test]
    fn past_the_limit_ranges_merge_so_dead_ports_stay_dead() {
        let mut d = DeadPorts::new(10);
        // Every other port of one prefix: no two share a range.
        for i in (0..40).step_by(2) {
            d.record(&node("b"), &format!("P.{i}"), &lost("b"));
            assert!(d.entries() <= 10);
        }
        for i in (0..40).step_by(2) {
            assert!(d.reason(&port("b", &format!("P.{i}"))).is_some(), "P.{i}");
        }
        // The gaps errs towards death; beyond the last recorded counter nothing is dead.
        assert!(d.reason(&port("b", "P.1")).is_some());
        assert_eq!(d.reason(&port("b", "P.39")), None);
    }

    #[test]
    fn past_the_limit_with_nothing_to_merge_the_oldest_node_is_forgotten() {
        let mut d = DeadPorts::new(3);
        for n in ["n1", "n2", "n3", "n4"] {
            d.record(&node(n), "P.1", &lost(n));
        }
        assert_eq!(d.entries(), 3);
        assert_eq!(d.reason(&port("n1", "P.1")), None);
        assert!(d.reason(&port("n4", "P.1")).is_some());
        assert!(d.reason(&port("n2", "P.1")).is_some());
    }

    #[test]
    fn entries_count_stays_exact_through_joins() {
        let mut d = DeadPorts::new(1000);
        for i in [5_u32, 1, 3, 2, 4, 9, 7, 8, 6] {
            d.record(&node("b"), &format!("P.{i}"), &lost("b"));
        }
        assert_eq!(d.entries(), 1);
        for i in 1..=9 {
            assert!(d.reason(&port("b", &format!("P.{i}"))).is_some());
        }
        assert_eq!(d.reason(&port("b", "P.10")), None);
        assert_eq!(d.reason(&port("b", "P.0")), None);
    }
}
