//! Rule evaluation: each event against the rules of its kind, with per-rule
//! group state in packet time and bounded memory.
//!
//! Window semantics (all times are event timestamps):
//! * `threshold` fires when `count` matching events of a group fall within
//!   `within_secs` of each other, both ends inclusive (an event exactly
//!   `within_secs` after the oldest still counts). The group's window is
//!   emptied when it fires, so a sustained flood fires once per `count` events
//!   (suppression limits it further).
//! * `distinct` fires when `count` distinct values of its field were seen in
//!   the group within `within_secs` (each value's last sighting counts); it
//!   then empties the group's window too.
//! * `sequence` fires when its condition holds within `within_secs` after its
//!   `after_rule` fired (suppressed or not) for the same group; each firing of
//!   the earlier rule arms it once. An event never arms a sequence it also
//!   triggers: arming happens after all rules saw the event.
//! * `concurrent` fires when an event's key value is held open by a session
//!   from another source address; a `closed_by` event from the same source
//!   endpoint closes that session.
//! * An event earlier than its group's newest one (out-of-order capture)
//!   counts as if at the newest time, so windows never run backwards.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use super::condition::{FieldVal, lookup};
use super::limits::{
    DEFAULT_RULES_MEMCAP_BYTES, MAX_GROUP_BY, MAX_WINDOW_COUNT, RULE_ENTRY_BYTES, RULE_GROUP_BYTES,
    RULE_KEY_PART_BYTES,
};
use super::lru::{Cost, Lookup, Lru, Reuse, slot_size};
use super::model::{Rule, Window};
use super::set::RuleSet;
use crate::capture::Timestamp;
use crate::detect::credentials::Dictionary;
use crate::proto::norm::{Event, Value};

/// Default of [`EngineLimits::max_groups_per_rule`].
pub const DEFAULT_MAX_GROUPS_PER_RULE: usize = 10_000;
/// Default of [`EngineLimits::max_entries_per_group`]: enough for the
/// largest `count` a rule may have, so the default never caps a window.
pub const DEFAULT_MAX_ENTRIES_PER_GROUP: usize = MAX_WINDOW_COUNT as usize;
/// Longest value (in characters) copied into an alert's evidence.
pub const MAX_DETAIL_CHARS: usize = 256;
/// Most distinct values listed in the evidence of a `distinct` firing.
pub const MAX_DETAIL_VALUES: usize = 16;

/// Bounds of the engine's state. Group keys come from packets, so an
/// attacker chooses how many there are; every bound evicts the least recently
/// used and counts it in [`EngineStats`]. Config keys `[rules]`
/// `max_groups_per_rule`, `max_entries_per_group` and `memcap_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineLimits {
    /// Groups (window, sequence, suppression or concurrent-key state) kept
    /// per rule.
    pub max_groups_per_rule: usize,
    /// Entries inside one group: timestamps of a `threshold`, values of a
    /// `distinct`, open sessions of a `concurrent` key. A threshold whose
    /// `count` exceeds it can never fire.
    pub max_entries_per_group: usize,
    /// Estimated bytes of all rule state together. Each group counts
    /// [`RULE_GROUP_BYTES`], [`RULE_KEY_PART_BYTES`] per field of its key and
    /// [`RULE_ENTRY_BYTES`] per entry, plus the text of string keys and
    /// values; beyond the cap the group used longest ago, over all rules, is
    /// dropped after each event (never one the event itself used).
    pub memcap_bytes: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            max_groups_per_rule: DEFAULT_MAX_GROUPS_PER_RULE,
            max_entries_per_group: DEFAULT_MAX_ENTRIES_PER_GROUP,
            memcap_bytes: DEFAULT_RULES_MEMCAP_BYTES,
        }
    }
}

/// Counters of the engine since it was created (kept across reloads).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Events given to [`Engine::on_event`].
    pub events: u64,
    /// Matches written out.
    pub matches: u64,
    /// Firings held back by a rule's `suppress`.
    pub suppressed: u64,
    /// Live group state dropped to make room ([`EngineLimits::max_groups_per_rule`]):
    /// a window, sequence, suppression or open session was forgotten early.
    pub evictions: u64,
    /// Group state dropped to make room after its window or suppression had
    /// already passed: no information lost.
    pub expired: u64,
    /// Entries dropped inside a group ([`EngineLimits::max_entries_per_group`]).
    pub entry_evictions: u64,
    /// Groups dropped, least recently used first, to keep the estimated
    /// state within [`EngineLimits::memcap_bytes`].
    pub memcap_evictions: u64,
    /// Estimated bytes of the rule state now (since the last reload).
    pub memory_bytes: usize,
    /// Most estimated bytes held after an event (since the last reload).
    pub memory_peak_bytes: usize,
    /// The cap of `memory_bytes`.
    pub memcap_bytes: usize,
    /// Calls of [`Engine::reload`].
    pub reloads: u64,
}

/// What made a rule fire. Never holds a password: events carry none (only a
/// digest, which is not copied here).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Matching events in the window (`threshold`).
    pub count: Option<u64>,
    /// Distinct values in the window (`distinct`).
    pub distinct: Option<u64>,
    /// Distinct source addresses of the events in the window, for a
    /// `threshold` whose groups span sources (no `src_ip` in `group_by`).
    pub sources: Option<u64>,
    /// The window's length.
    pub window_secs: Option<u64>,
    /// The event's `user` field, when it has one.
    pub user: Option<String>,
    /// `(name, value)` pairs: the event fields the rule reads and groups by,
    /// then what the window adds (distinct values, the earlier rule, the
    /// other source of a concurrent session). Values are at most
    /// [`MAX_DETAIL_CHARS`] characters.
    pub detail: Vec<(String, String)>,
}

/// A rule fired on an event.
#[derive(Clone, Debug)]
pub struct RuleMatch {
    pub rule: Arc<Rule>,
    /// The event that completed the match.
    pub event: Event<'static>,
    pub evidence: Evidence,
}

/// One component of a group key: a field value, owned. It hashes as its
/// [`KeyRef`] does, so that a group is found by the event's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
enum KeyPart {
    Absent,
    Str(Box<str>),
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
    Mac([u8; 6]),
}

/// One component of a group key, borrowed from an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum KeyRef<'a> {
    Absent,
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
    Mac([u8; 6]),
}

impl<'a> KeyRef<'a> {
    /// Lists cannot key a group (rejected at load); they read as absent.
    fn of(v: Option<FieldVal<'a>>) -> KeyRef<'a> {
        match v {
            None | Some(FieldVal::List(_)) => KeyRef::Absent,
            Some(FieldVal::Str(s)) => KeyRef::Str(s),
            Some(FieldVal::Int(n)) => KeyRef::Int(n),
            Some(FieldVal::Bool(b)) => KeyRef::Bool(b),
            Some(FieldVal::Ip(ip)) => KeyRef::Ip(ip),
            Some(FieldVal::Mac(m)) => KeyRef::Mac(m),
        }
    }

    fn to_part(self) -> KeyPart {
        match self {
            KeyRef::Absent => KeyPart::Absent,
            KeyRef::Str(s) => KeyPart::Str(s.into()),
            KeyRef::Int(n) => KeyPart::Int(n),
            KeyRef::Bool(b) => KeyPart::Bool(b),
            KeyRef::Ip(ip) => KeyPart::Ip(ip),
            KeyRef::Mac(m) => KeyPart::Mac(m),
        }
    }
}

impl std::hash::Hash for KeyPart {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.view().hash(state);
    }
}

impl<'a> Lookup<KeyPart> for KeyRef<'a> {
    fn matches(&self, key: &KeyPart) -> bool {
        key.view() == *self
    }
    fn to_key(&self) -> KeyPart {
        self.to_part()
    }
}

/// The group key of an event, borrowed: the values of a rule's `group_by`
/// (or `per`) fields, at most [`MAX_GROUP_BY`]. It hashes as the
/// [`GroupKey`] made of it does (a slice: its length, then each part).
struct KeyRefs<'a> {
    parts: [KeyRef<'a>; MAX_GROUP_BY],
    len: usize,
}

impl<'a> KeyRefs<'a> {
    fn of(ev: &'a Event, names: &[&'static str]) -> KeyRefs<'a> {
        let mut key = KeyRefs {
            parts: [KeyRef::Absent; MAX_GROUP_BY],
            len: 0,
        };
        // Rules are checked at load to group by at most MAX_GROUP_BY fields.
        for (part, name) in key.parts.iter_mut().zip(names) {
            *part = KeyRef::of(lookup(ev, name));
            key.len += 1;
        }
        key
    }

    fn parts(&self) -> &[KeyRef<'a>] {
        &self.parts[..self.len]
    }
}

impl std::hash::Hash for KeyRefs<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl Lookup<GroupKey> for KeyRefs<'_> {
    fn matches(&self, key: &GroupKey) -> bool {
        key.len() == self.len && key.iter().zip(self.parts()).all(|(k, r)| k.view() == *r)
    }
    fn to_key(&self) -> GroupKey {
        self.parts().iter().map(|r| r.to_part()).collect()
    }
    /// The keys of one rule's groups are as long as its `group_by`: the
    /// parts are replaced in place.
    fn refill(&self, key: &mut GroupKey) {
        if key.len() == self.len {
            for (k, r) in key.iter_mut().zip(self.parts()) {
                *k = r.to_part();
            }
        } else {
            *key = self.to_key();
        }
    }
}

impl KeyPart {
    fn of(v: Option<FieldVal<'_>>) -> KeyPart {
        KeyRef::of(v).to_part()
    }

    /// The borrowed form, which hashing and lookups go through.
    fn view(&self) -> KeyRef<'_> {
        match self {
            KeyPart::Absent => KeyRef::Absent,
            KeyPart::Str(s) => KeyRef::Str(s),
            KeyPart::Int(n) => KeyRef::Int(*n),
            KeyPart::Bool(b) => KeyRef::Bool(*b),
            KeyPart::Ip(ip) => KeyRef::Ip(*ip),
            KeyPart::Mac(m) => KeyRef::Mac(*m),
        }
    }

    /// Whether this is `v`, without allocating.
    fn is(&self, v: FieldVal<'_>) -> bool {
        match (self, v) {
            (KeyPart::Str(a), FieldVal::Str(b)) => **a == *b,
            (KeyPart::Int(a), FieldVal::Int(b)) => *a == b,
            (KeyPart::Bool(a), FieldVal::Bool(b)) => *a == b,
            (KeyPart::Ip(a), FieldVal::Ip(b)) => *a == b,
            (KeyPart::Mac(a), FieldVal::Mac(b)) => *a == b,
            _ => false,
        }
    }

    fn render(&self) -> String {
        match self {
            KeyPart::Absent => String::new(),
            KeyPart::Str(s) => bounded(s),
            KeyPart::Int(n) => n.to_string(),
            KeyPart::Bool(b) => b.to_string(),
            KeyPart::Ip(ip) => ip.to_string(),
            KeyPart::Mac(m) => mac(m),
        }
    }
}

type GroupKey = Box<[KeyPart]>;

/// Allocation header counted for each heap block (glibc malloc: 8 bytes of
/// header, sizes rounded up to 16).
const ALLOC_HEADER_BYTES: usize = 16;

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// The per-group cost the memory cap counts covers the real slot, hash
/// table entry (a slot index) and headers of every kind of group, with room
/// for growth.
const fn group_bytes<K, V, E>() -> usize {
    2 * (slot_size::<K, V>() + std::mem::size_of::<usize>() + 1)
        + 2 * ALLOC_HEADER_BYTES
        + 4 * std::mem::size_of::<E>()
}
const _: () = {
    assert!(
        group_bytes::<GroupKey, VecDeque<(Timestamp, IpAddr)>, (Timestamp, IpAddr)>()
            <= RULE_GROUP_BYTES
    );
    assert!(
        group_bytes::<GroupKey, Vec<(KeyPart, Timestamp)>, (KeyPart, Timestamp)>()
            <= RULE_GROUP_BYTES
    );
    assert!(group_bytes::<GroupKey, Option<Timestamp>, ()>() <= RULE_GROUP_BYTES);
    assert!(group_bytes::<KeyPart, Vec<(IpAddr, u16)>, (IpAddr, u16)>() <= RULE_GROUP_BYTES);
    assert!(std::mem::size_of::<KeyPart>() + ALLOC_HEADER_BYTES <= RULE_KEY_PART_BYTES);
    let entry = max(
        std::mem::size_of::<(Timestamp, IpAddr)>(),
        max(
            std::mem::size_of::<(KeyPart, Timestamp)>(),
            std::mem::size_of::<(IpAddr, u16)>(),
        ),
    );
    assert!(2 * entry + ALLOC_HEADER_BYTES <= RULE_ENTRY_BYTES);
};

impl KeyPart {
    /// Bytes of its text on the heap.
    fn text_bytes(&self) -> usize {
        match self {
            KeyPart::Str(s) => s.len(),
            _ => 0,
        }
    }
}

impl Cost for KeyPart {
    fn cost(&self) -> usize {
        RULE_KEY_PART_BYTES + self.text_bytes()
    }
}

impl Cost for GroupKey {
    fn cost(&self) -> usize {
        self.iter().map(Cost::cost).sum()
    }
}

impl Cost for VecDeque<(Timestamp, IpAddr)> {
    fn cost(&self) -> usize {
        self.len() * RULE_ENTRY_BYTES
    }
}

impl Cost for Vec<(KeyPart, Timestamp)> {
    fn cost(&self) -> usize {
        self.iter()
            .map(|(k, _)| RULE_ENTRY_BYTES + k.text_bytes())
            .sum()
    }
}

impl Cost for Vec<(IpAddr, u16)> {
    fn cost(&self) -> usize {
        self.len() * RULE_ENTRY_BYTES
    }
}

/// An emptied collection keeps its buffer for the entry that takes its
/// slot, at most the smallest capacity (what [`RULE_GROUP_BYTES`] counts).
impl<T> Reuse for VecDeque<T> {
    fn reuse(&mut self, fresh: Self) {
        if fresh.is_empty() {
            self.clear();
            self.shrink_to(MIN_ENTRY_CAPACITY);
        } else {
            *self = fresh;
        }
    }
}

impl<T> Reuse for Vec<T> {
    fn reuse(&mut self, fresh: Self) {
        if fresh.is_empty() {
            self.clear();
            self.shrink_to(MIN_ENTRY_CAPACITY);
        } else {
            *self = fresh;
        }
    }
}

impl Reuse for Timestamp {}

impl Reuse for Option<Timestamp> {}

impl Cost for Timestamp {
    fn cost(&self) -> usize {
        0
    }
}

impl Cost for Option<Timestamp> {
    fn cost(&self) -> usize {
        0
    }
}

/// Smallest capacity kept when a group's entries shrink (what
/// [`RULE_GROUP_BYTES`] has room for).
const MIN_ENTRY_CAPACITY: usize = 4;

/// Gives memory back when entries were removed, so that the capacity stays
/// within twice the length (what [`RULE_ENTRY_BYTES`] counts).
fn trim_deque<T>(v: &mut VecDeque<T>) {
    let keep = 2 * v.len().max(MIN_ENTRY_CAPACITY / 2);
    if v.capacity() > keep.max(MIN_ENTRY_CAPACITY) {
        v.shrink_to(keep.max(MIN_ENTRY_CAPACITY));
    }
}

fn trim_vec<T>(v: &mut Vec<T>) {
    let keep = 2 * v.len().max(MIN_ENTRY_CAPACITY / 2);
    if v.capacity() > keep.max(MIN_ENTRY_CAPACITY) {
        v.shrink_to(keep.max(MIN_ENTRY_CAPACITY));
    }
}

fn bounded(s: &str) -> String {
    match s.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((end, _)) => s.get(..end).unwrap_or_default().to_string(),
        None => s.to_string(),
    }
}

fn mac(m: &[u8; 6]) -> String {
    let mut out = String::with_capacity(17);
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn render(v: FieldVal<'_>) -> String {
    match v {
        FieldVal::List(items) => bounded(&items.join(",")),
        other => KeyPart::of(Some(other)).render(),
    }
}

fn nanos(secs: u64) -> u64 {
    secs.saturating_mul(1_000_000_000)
}

/// State of one rule.
enum WindowState {
    Event,
    /// Time and source address of each event in the window.
    Threshold(Lru<GroupKey, VecDeque<(Timestamp, IpAddr)>>),
    /// Values with the time each was last seen.
    Distinct(Lru<GroupKey, Vec<(KeyPart, Timestamp)>>),
    /// When the earlier rule last fired, per group.
    Sequence(Lru<GroupKey, Timestamp>),
    /// Open sessions (source endpoints) per key value.
    Concurrent(Lru<KeyPart, Vec<(IpAddr, u16)>>),
}

struct RuleState {
    window: WindowState,
    /// Until when each key is quiet (`None`: for ever).
    suppress: Option<Lru<GroupKey, Option<Timestamp>>>,
}

impl RuleState {
    fn new(rule: &Rule, limits: &EngineLimits) -> Self {
        let groups = limits.max_groups_per_rule;
        let window = match &rule.window {
            Window::Event => WindowState::Event,
            Window::Threshold { .. } => WindowState::Threshold(Lru::new(groups, RULE_GROUP_BYTES)),
            Window::Distinct { .. } => WindowState::Distinct(Lru::new(groups, RULE_GROUP_BYTES)),
            Window::Sequence { .. } => WindowState::Sequence(Lru::new(groups, RULE_GROUP_BYTES)),
            Window::Concurrent { .. } => {
                WindowState::Concurrent(Lru::new(groups, RULE_GROUP_BYTES))
            }
        };
        RuleState {
            window,
            suppress: rule
                .suppress
                .as_ref()
                .map(|_| Lru::new(groups, RULE_GROUP_BYTES)),
        }
    }

    /// Estimated bytes of its state.
    fn bytes(&self) -> usize {
        let window = match &self.window {
            WindowState::Event => 0,
            WindowState::Threshold(g) => g.bytes(),
            WindowState::Distinct(g) => g.bytes(),
            WindowState::Sequence(g) => g.bytes(),
            WindowState::Concurrent(g) => g.bytes(),
        };
        window + self.suppress.as_ref().map_or(0, Lru::bytes)
    }

    /// The stamp of its least recently used group, and whether that group
    /// is in the suppression map (else in the window's).
    fn oldest(&self) -> Option<(u64, bool)> {
        let window = match &self.window {
            WindowState::Event => None,
            WindowState::Threshold(g) => g.oldest_stamp(),
            WindowState::Distinct(g) => g.oldest_stamp(),
            WindowState::Sequence(g) => g.oldest_stamp(),
            WindowState::Concurrent(g) => g.oldest_stamp(),
        };
        let suppress = self.suppress.as_ref().and_then(Lru::oldest_stamp);
        match (window, suppress) {
            (Some(w), Some(s)) if s < w => Some((s, true)),
            (Some(w), _) => Some((w, false)),
            (None, s) => s.map(|s| (s, true)),
        }
    }

    /// Drops its least recently used window group (or suppression entry).
    fn pop_oldest(&mut self, suppression: bool) {
        if suppression {
            if let Some(s) = &mut self.suppress {
                s.pop_oldest();
            }
            return;
        }
        match &mut self.window {
            WindowState::Event => {}
            WindowState::Threshold(g) => drop(g.pop_oldest()),
            WindowState::Distinct(g) => drop(g.pop_oldest()),
            WindowState::Sequence(g) => drop(g.pop_oldest()),
            WindowState::Concurrent(g) => drop(g.pop_oldest()),
        }
    }
}

/// Counts a state entry dropped to make room (whether it was stale, as
/// [`Lru::get_or_insert_with`] tells): expired if so, evicted otherwise.
fn account(stats: &mut EngineStats, dropped: Option<bool>) {
    match dropped {
        Some(true) => stats.expired += 1,
        Some(false) => stats.evictions += 1,
        None => {}
    }
}

/// What a window adds to the evidence of a firing.
#[derive(Default)]
struct Fired {
    count: Option<u64>,
    distinct: Option<u64>,
    sources: Option<u64>,
    window_secs: Option<u64>,
    extra: Vec<(String, String)>,
}

#[derive(Default)]
struct KindRules {
    /// Rules evaluated on this kind.
    eval: Vec<usize>,
    /// `concurrent` rules this kind closes sessions of.
    close: Vec<usize>,
}

/// Evaluates events against a [`RuleSet`].
pub struct Engine {
    rules: Vec<Arc<Rule>>,
    dictionary: Arc<Dictionary>,
    limits: EngineLimits,
    index: std::collections::HashMap<&'static str, KindRules, foldhash::fast::RandomState>,
    states: Vec<RuleState>,
    /// Per rule, the `sequence` rules that follow it.
    dependents: Vec<Vec<usize>>,
    /// Sequence rules to arm once the current event is done (reused).
    pending: Vec<usize>,
    /// Rules whose state the current event changed, with their estimated
    /// bytes before it (reused).
    touched: Vec<(usize, usize)>,
    stats: EngineStats,
}

impl Engine {
    pub fn new(rules: RuleSet, limits: EngineLimits) -> Self {
        let mut engine = Engine {
            rules: Vec::new(),
            dictionary: Arc::new(Dictionary::empty()),
            limits,
            index: Default::default(),
            states: Vec::new(),
            dependents: Vec::new(),
            pending: Vec::new(),
            touched: Vec::new(),
            stats: EngineStats::default(),
        };
        engine.install(rules);
        engine
    }

    fn install(&mut self, set: RuleSet) {
        self.rules = set.rules;
        self.dictionary = set.dictionary;
        self.index.clear();
        self.states = self
            .rules
            .iter()
            .map(|r| RuleState::new(r, &self.limits))
            .collect();
        self.dependents = vec![Vec::new(); self.rules.len()];
        for (i, rule) in self.rules.iter().enumerate() {
            self.index.entry(rule.event).or_default().eval.push(i);
            match &rule.window {
                Window::Concurrent { closed_by, .. } => {
                    self.index.entry(closed_by).or_default().close.push(i);
                }
                Window::Sequence { after_rule, .. } => {
                    if let Some(a) = self.rules.iter().position(|r| r.id == *after_rule) {
                        self.dependents[a].push(i);
                    }
                }
                _ => {}
            }
        }
        self.pending.clear();
        self.touched.clear();
        self.stats.memory_bytes = 0;
        self.stats.memory_peak_bytes = 0;
        self.stats.memcap_bytes = self.limits.memcap_bytes;
    }

    /// Replaces the rules (SIGHUP): all window, sequence and suppression
    /// state starts over; the counters are kept.
    pub fn reload(&mut self, rules: RuleSet) {
        self.install(rules);
        self.stats.reloads += 1;
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    pub fn limits(&self) -> EngineLimits {
        self.limits
    }

    /// Groups currently held, over all rules (window and suppression state).
    pub fn groups(&self) -> usize {
        self.states
            .iter()
            .map(|s| {
                let window = match &s.window {
                    WindowState::Event => 0,
                    WindowState::Threshold(g) => g.len(),
                    WindowState::Distinct(g) => g.len(),
                    WindowState::Sequence(g) => g.len(),
                    WindowState::Concurrent(g) => g.len(),
                };
                window + s.suppress.as_ref().map_or(0, Lru::len)
            })
            .sum()
    }

    /// Evaluates `ev` against the rules of its kind and appends what fires
    /// to `out`. An event no rule's condition matches allocates nothing.
    pub fn on_event(&mut self, ev: &Event, out: &mut Vec<RuleMatch>) {
        self.stats.events += 1;
        // The clock of the rules memory cap's LRU order.
        let stamp = self.stats.events;
        let Some(kind) = self.index.get(ev.kind) else {
            return;
        };
        for &ri in &kind.close {
            touch(&mut self.touched, ri, self.states[ri].bytes());
            if let (Window::Concurrent { key, .. }, WindowState::Concurrent(open)) =
                (&self.rules[ri].window, &mut self.states[ri].window)
            {
                close_session(open, ev, key, stamp);
            }
        }
        for &ri in &kind.eval {
            let rule = &self.rules[ri];
            if !rule.condition.eval(ev, &self.dictionary) {
                continue;
            }
            let state = &mut self.states[ri];
            touch(&mut self.touched, ri, state.bytes());
            let Some(fired) = advance(
                rule,
                &mut state.window,
                ev,
                stamp,
                &self.limits,
                &mut self.stats,
            ) else {
                continue;
            };
            self.pending.extend_from_slice(&self.dependents[ri]);
            if let (Some(sup), Some(quiet)) = (&rule.suppress, &mut state.suppress)
                && is_suppressed(
                    sup.per.as_ref(),
                    sup.secs,
                    quiet,
                    ev,
                    stamp,
                    &mut self.stats,
                )
            {
                self.stats.suppressed += 1;
                continue;
            }
            self.stats.matches += 1;
            out.push(RuleMatch {
                rule: Arc::clone(rule),
                event: ev.clone().into_owned(),
                evidence: evidence(rule, ev, fired),
            });
        }
        while let Some(di) = self.pending.pop() {
            touch(&mut self.touched, di, self.states[di].bytes());
            if let (
                Window::Sequence {
                    group_by,
                    within_secs,
                    ..
                },
                WindowState::Sequence(armed),
            ) = (&self.rules[di].window, &mut self.states[di].window)
            {
                let within = nanos(*within_secs);
                let (at, dropped) = armed.get_or_insert_with(
                    &KeyRefs::of(ev, group_by),
                    stamp,
                    || ev.ts,
                    |t| ev.ts.nanos_since(*t) > within,
                );
                *at = ev.ts;
                account(&mut self.stats, dropped);
            }
        }
        self.enforce_memcap(stamp);
    }

    /// Brings the estimated state back within the memory cap after an
    /// event: drops the groups used longest ago over all rules, never one
    /// used by this event (`stamp`).
    fn enforce_memcap(&mut self, stamp: u64) {
        for (ri, before) in self.touched.drain(..) {
            self.stats.memory_bytes = self.stats.memory_bytes - before + self.states[ri].bytes();
        }
        while self.stats.memory_bytes > self.limits.memcap_bytes {
            let oldest = self
                .states
                .iter()
                .enumerate()
                .filter_map(|(ri, s)| s.oldest().map(|(t, sup)| (t, ri, sup)))
                .filter(|&(t, _, _)| t < stamp)
                .min();
            let Some((_, ri, suppression)) = oldest else {
                break;
            };
            let state = &mut self.states[ri];
            let before = state.bytes();
            state.pop_oldest(suppression);
            self.stats.memory_bytes = self.stats.memory_bytes - before + state.bytes();
            self.stats.memcap_evictions += 1;
        }
        self.stats.memory_peak_bytes = self.stats.memory_peak_bytes.max(self.stats.memory_bytes);
    }
}

/// Notes that rule `ri` is changed by the current event, with its estimated
/// bytes before the first change.
fn touch(touched: &mut Vec<(usize, usize)>, ri: usize, bytes: usize) {
    if !touched.iter().any(|&(r, _)| r == ri) {
        touched.push((ri, bytes));
    }
}

fn close_session(open: &mut Lru<KeyPart, Vec<(IpAddr, u16)>>, ev: &Event, key: &str, stamp: u64) {
    let Some(v) = lookup(ev, key) else {
        return;
    };
    let part = KeyRef::of(Some(v));
    let now_empty = match open.get_mut(&part, stamp) {
        Some(sessions) => {
            sessions.retain(|s| *s != ev.src);
            trim_vec(sessions);
            sessions.is_empty()
        }
        None => false,
    };
    if now_empty {
        open.remove(&part);
    } else {
        open.recost_newest();
    }
}

/// Whether a firing for `ev` falls in a quiet period; if not, starts one.
fn is_suppressed(
    per: &[&'static str],
    secs: Option<u64>,
    quiet: &mut Lru<GroupKey, Option<Timestamp>>,
    ev: &Event,
    stamp: u64,
    stats: &mut EngineStats,
) -> bool {
    let key = KeyRefs::of(ev, per);
    if let Some(until) = quiet.get_mut(&key, stamp) {
        match until {
            None => return true,
            Some(t) if ev.ts < *t => return true,
            Some(_) => {}
        }
    }
    let until = secs.map(|s| ev.ts.saturating_add_secs(s));
    let (slot, dropped) =
        quiet.get_or_insert_with(&key, stamp, || until, |u| u.is_some_and(|t| t <= ev.ts));
    *slot = until;
    account(stats, dropped);
    false
}

/// Feeds a matching event to the rule's window; `Some` when the rule fires.
fn advance(
    rule: &Rule,
    state: &mut WindowState,
    ev: &Event,
    stamp: u64,
    limits: &EngineLimits,
    stats: &mut EngineStats,
) -> Option<Fired> {
    match (&rule.window, state) {
        (Window::Event, WindowState::Event) => Some(Fired::default()),
        (
            Window::Threshold {
                count,
                within_secs,
                group_by,
            },
            WindowState::Threshold(groups),
        ) => {
            let within = nanos(*within_secs);
            let (times, dropped) = groups.get_or_insert_with(
                &KeyRefs::of(ev, group_by),
                stamp,
                VecDeque::new,
                |t: &VecDeque<(Timestamp, IpAddr)>| {
                    t.back()
                        .is_none_or(|&(last, _)| ev.ts.nanos_since(last) > within)
                },
            );
            let now = times.back().map_or(ev.ts, |&(last, _)| last.max(ev.ts));
            while times
                .front()
                .is_some_and(|&(t, _)| now.nanos_since(t) > within)
            {
                times.pop_front();
            }
            times.push_back((now, ev.src.0));
            if times.len() > limits.max_entries_per_group {
                times.pop_front();
                stats.entry_evictions += 1;
            }
            let seen = times.len() as u64;
            let fired = seen >= u64::from(*count);
            let sources = (fired && !group_by.contains(&"src_ip")).then(|| {
                let mut addrs: HashSet<IpAddr, foldhash::fast::RandomState> =
                    HashSet::with_capacity_and_hasher(times.len(), Default::default());
                addrs.extend(times.iter().map(|&(_, a)| a));
                addrs.len() as u64
            });
            if fired {
                times.clear();
            }
            trim_deque(times);
            groups.recost_newest();
            account(stats, dropped);
            fired.then(|| Fired {
                count: Some(seen),
                sources,
                window_secs: Some(*within_secs),
                ..Fired::default()
            })
        }
        (
            Window::Distinct {
                field,
                count,
                within_secs,
                group_by,
            },
            WindowState::Distinct(groups),
        ) => {
            let value = lookup(ev, field)?;
            let within = nanos(*within_secs);
            let (values, dropped) = groups.get_or_insert_with(
                &KeyRefs::of(ev, group_by),
                stamp,
                Vec::new,
                |v: &Vec<(KeyPart, Timestamp)>| {
                    v.iter().all(|(_, t)| ev.ts.nanos_since(*t) > within)
                },
            );
            let now = values.iter().map(|(_, t)| *t).fold(ev.ts, Timestamp::max);
            values.retain(|(_, t)| now.nanos_since(*t) <= within);
            match values.iter_mut().find(|(k, _)| k.is(value)) {
                Some(entry) => entry.1 = now,
                None => {
                    if values.len() >= limits.max_entries_per_group && !values.is_empty() {
                        // Drop the value seen longest ago.
                        if let Some(oldest) = values
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, (_, t))| *t)
                            .map(|(i, _)| i)
                        {
                            values.swap_remove(oldest);
                            stats.entry_evictions += 1;
                        }
                    }
                    values.push((KeyPart::of(Some(value)), now));
                }
            }
            let seen = values.len() as u64;
            let fired = seen >= u64::from(*count);
            let result = fired.then(|| {
                let mut shown: Vec<String> = values
                    .iter()
                    .take(MAX_DETAIL_VALUES)
                    .map(|(k, _)| k.render())
                    .collect();
                shown.sort();
                Fired {
                    distinct: Some(seen),
                    window_secs: Some(*within_secs),
                    extra: vec![
                        ("distinct_field".to_string(), field.to_string()),
                        ("distinct_values".to_string(), bounded(&shown.join(","))),
                    ],
                    ..Fired::default()
                }
            });
            if fired {
                values.clear();
            }
            trim_vec(values);
            groups.recost_newest();
            account(stats, dropped);
            result
        }
        (
            Window::Sequence {
                after_rule,
                within_secs,
                group_by,
            },
            WindowState::Sequence(armed),
        ) => {
            let key = KeyRefs::of(ev, group_by);
            let at = *armed.get_mut(&key, stamp)?;
            armed.remove(&key);
            let since = ev.ts.nanos_since(at);
            (since <= nanos(*within_secs)).then(|| Fired {
                window_secs: Some(*within_secs),
                extra: vec![
                    ("after_rule".to_string(), after_rule.to_string()),
                    (
                        "after_secs".to_string(),
                        format!("{:.3}", since as f64 / 1e9),
                    ),
                ],
                ..Fired::default()
            })
        }
        (Window::Concurrent { key, .. }, WindowState::Concurrent(open)) => {
            let value = lookup(ev, key)?;
            let (sessions, dropped) =
                open.get_or_insert_with(&KeyRef::of(Some(value)), stamp, Vec::new, |_| false);
            let other = sessions.iter().find(|s| s.0 != ev.src.0).copied();
            if !sessions.contains(&ev.src) {
                if sessions.len() >= limits.max_entries_per_group && !sessions.is_empty() {
                    sessions.remove(0);
                    stats.entry_evictions += 1;
                }
                sessions.push(ev.src);
            }
            open.recost_newest();
            account(stats, dropped);
            other.map(|(ip, port)| Fired {
                extra: vec![
                    ("other_src_ip".to_string(), ip.to_string()),
                    ("other_src_port".to_string(), port.to_string()),
                ],
                ..Fired::default()
            })
        }
        // States are built from the rules they belong to.
        _ => None,
    }
}

fn evidence(rule: &Rule, ev: &Event, fired: Fired) -> Evidence {
    let mut detail: Vec<(String, String)> = rule
        .detail_fields
        .iter()
        .filter_map(|name| lookup(ev, name).map(|v| (name.to_string(), render(v))))
        .collect();
    detail.extend(fired.extra);
    Evidence {
        count: fired.count,
        distinct: fired.distinct,
        sources: fired.sources,
        window_secs: fired.window_secs,
        user: match ev.field("user") {
            Some(Value::Str(u)) => Some(bounded(u)),
            _ => None,
        },
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::credential::digest;

    /// A rule file of one rule on `event` with `body` (conditions, window,
    /// suppression) and placeholder test cases the engine does not run.
    fn rule(id: u32, event: &str, body: &str) -> String {
        format!(
            r#"
[[rule]]
id = {id}
name = "rule {id}"
severity = 2
category = "test"
event = "{event}"
{body}
[[rule.test]]
events = [ {{ kind = "{event}", src = "10.0.0.1:1", dst = "10.0.0.2:2" }} ]
expect = 1
[[rule.test]]
events = [ {{ kind = "{event}", src = "10.0.0.1:1", dst = "10.0.0.2:2" }} ]
expect = 0
"#
        )
    }

    fn engine(text: &str) -> Engine {
        engine_with(text, EngineLimits::default())
    }

    fn engine_with(text: &str, limits: EngineLimits) -> Engine {
        Engine::new(
            RuleSet::from_str("t.rules.toml", text).expect("rules load"),
            limits,
        )
    }

    fn ev(kind: &'static str, src: &str, dst: &str, secs: f64) -> Event<'static> {
        let (s, d): (std::net::SocketAddr, std::net::SocketAddr) =
            (src.parse().expect("src"), dst.parse().expect("dst"));
        Event {
            ts: Timestamp((secs * 1e9).round() as i64),
            kind,
            proto: "telnet",
            src: (s.ip(), s.port()),
            dst: (d.ip(), d.port()),
            src_mac: None,
            dst_mac: None,
            transport: 6,
            flow_id: 0,
            fields: Vec::new(),
            credential: None,
        }
    }

    // Groups are found by the event's fields without building their key:
    // the borrowed key must hash and compare as the owned one stored, for
    // every kind of value, and differ where one value differs.
    #[test]
    fn borrowed_group_key_hashes_and_matches_as_the_stored_key() {
        use std::hash::BuildHasher;
        let names: [&'static str; 6] = ["user", "src_ip", "dst_port", "src_mac", "absent", "ok"];
        let mut e = ev("telnet.login", "10.0.0.1:1000", "10.0.0.2:23", 1.0)
            .with("user", "root")
            .with("ok", true);
        e.src_mac = Some([2, 0, 0, 0, 0, 1]);
        let hasher = foldhash::fast::RandomState::default();
        let view = KeyRefs::of(&e, &names);
        let stored: GroupKey = view.to_key();
        assert_eq!(stored.len(), 6);
        assert_eq!(stored[0], KeyPart::Str("root".into()));
        assert_eq!(stored[4], KeyPart::Absent);
        assert_eq!(hasher.hash_one(&view), hasher.hash_one(&stored));
        assert!(view.matches(&stored));
        let other = ev("telnet.login", "10.0.0.1:1000", "10.0.0.2:24", 1.0)
            .with("user", "root")
            .with("ok", true);
        assert!(!KeyRefs::of(&other, &names).matches(&stored));
        // A shorter key is another key, even when it is a prefix.
        assert!(!KeyRefs::of(&e, &names[..2]).matches(&stored));
        let part = KeyRef::Ip("10.0.0.9".parse().expect("ip"));
        assert_eq!(hasher.hash_one(part), hasher.hash_one(part.to_key()));
    }

    fn login(src: &str, secs: f64, outcome: &'static str) -> Event<'static> {
        ev("telnet.login", src, "10.0.0.2:23", secs)
            .with("user", "root")
            .with("outcome", outcome)
    }

    /// Feeds events one by one; the ids that fired on each.
    fn feed(engine: &mut Engine, events: &[Event]) -> Vec<Vec<u32>> {
        events
            .iter()
            .map(|e| {
                let mut out = Vec::new();
                engine.on_event(e, &mut out);
                out.iter().map(|m| m.rule.id).collect()
            })
            .collect()
    }

    fn fired(engine: &mut Engine, events: &[Event]) -> Vec<bool> {
        feed(engine, events)
            .iter()
            .map(|ids| !ids.is_empty())
            .collect()
    }

    #[test]
    fn rules_see_only_events_of_their_kind() {
        let mut e = engine(&rule(1, "telnet.login", ""));
        let got = feed(
            &mut e,
            &[
                ev("telnet.command", "10.0.0.1:1", "10.0.0.2:23", 0.0).with("line", "sh"),
                login("10.0.0.1:1", 0.0, "failure"),
            ],
        );
        assert_eq!(got, [vec![], vec![1]]);
        let s = e.stats();
        assert_eq!((s.events, s.matches), (2, 1));
    }

    #[test]
    fn event_rule_fires_with_evidence_and_no_password() {
        let text = rule(
            1,
            "telnet.login",
            r#"where = { outcome = "success", has_password = true }"#,
        );
        let mut e = engine(&text);
        let mut event = login("10.0.0.1:1", 1.0, "success");
        event.credential = Some(digest("root", "hunter2-secret"));
        let mut out = Vec::new();
        e.on_event(&event, &mut out);
        assert_eq!(out.len(), 1);
        let m = &out[0];
        assert_eq!(m.rule.id, 1);
        assert_eq!(m.evidence.user.as_deref(), Some("root"));
        assert_eq!(m.evidence.count, None);
        assert_eq!(
            m.evidence.detail,
            [("outcome".to_string(), "success".to_string())]
        );
        let shown = format!("{:?}", m.evidence);
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    const THRESHOLD: &str = r#"where = { outcome = "failure" }
threshold = { count = 3, within_secs = 10, group_by = ["src_ip"] }"#;

    #[test]
    fn threshold_window_includes_its_edge() {
        // 0, 5 and 10 s: the third is exactly 10 s after the first.
        let mut e = engine(&rule(1, "telnet.login", THRESHOLD));
        let a = "10.0.0.1:1";
        let got = fired(
            &mut e,
            &[
                login(a, 0.0, "failure"),
                login(a, 5.0, "failure"),
                login(a, 10.0, "failure"),
            ],
        );
        assert_eq!(got, [false, false, true]);
    }

    #[test]
    fn threshold_window_slides_past_its_edge() {
        // 10 s + 1 ns after the first: the first has left the window; a
        // fourth at 12 s makes three within 10 s (5, 10.000000001, 12).
        let mut e = engine(&rule(1, "telnet.login", THRESHOLD));
        let a = "10.0.0.1:1";
        let got = fired(
            &mut e,
            &[
                login(a, 0.0, "failure"),
                login(a, 5.0, "failure"),
                login(a, 10.000_000_001, "failure"),
                login(a, 12.0, "failure"),
            ],
        );
        assert_eq!(got, [false, false, false, true]);
    }

    #[test]
    fn threshold_counts_per_group_and_restarts_after_firing() {
        let mut e = engine(&rule(1, "telnet.login", THRESHOLD));
        let (a, b) = ("10.0.0.1:1", "10.0.0.9:1");
        let got = fired(
            &mut e,
            &[
                login(a, 0.0, "failure"),
                login(b, 0.1, "failure"),
                login(a, 0.2, "failure"),
                login(b, 0.3, "failure"),
                login(a, 0.4, "success"),
                login(a, 0.5, "failure"),
                login(a, 0.6, "failure"),
                login(a, 0.7, "failure"),
                login(a, 0.8, "failure"),
                login(a, 0.9, "failure"),
            ],
        );
        // a's third failure fires (index 5); then a needs three more (index 8).
        assert_eq!(
            got,
            [
                false, false, false, false, false, true, false, false, true, false
            ]
        );
        let mut out = Vec::new();
        let mut e = engine(&rule(1, "telnet.login", THRESHOLD));
        for t in [0.0, 1.0, 2.0] {
            e.on_event(&login(a, t, "failure"), &mut out);
        }
        let m = out.first().expect("fired");
        assert_eq!(
            (m.evidence.count, m.evidence.window_secs),
            (Some(3), Some(10))
        );
        assert!(
            m.evidence
                .detail
                .contains(&("src_ip".to_string(), "10.0.0.1".to_string()))
        );
    }

    #[test]
    fn out_of_order_event_counts_at_the_newest_time() {
        let mut e = engine(&rule(1, "telnet.login", THRESHOLD));
        let a = "10.0.0.1:1";
        // 20 s, then 1 s (earlier: counts as 20 s), then 25 s: three in 5 s.
        let got = fired(
            &mut e,
            &[
                login(a, 20.0, "failure"),
                login(a, 1.0, "failure"),
                login(a, 25.0, "failure"),
            ],
        );
        assert_eq!(got, [false, false, true]);
    }

    fn syn(src: &str, port: u16, secs: f64) -> Event<'static> {
        ev("tcp.syn", src, &format!("10.0.0.2:{port}"), secs).with("dst_port", i64::from(port))
    }

    const DISTINCT: &str =
        r#"distinct = { field = "dst_port", count = 3, within_secs = 10, group_by = ["src_ip"] }"#;

    #[test]
    fn distinct_counts_values_not_events() {
        let mut e = engine(&rule(1, "tcp.syn", DISTINCT));
        let a = "10.0.0.1:1";
        let mut out = Vec::new();
        let mut got = Vec::new();
        for (port, t) in [(22, 0.0), (22, 1.0), (23, 2.0), (23, 3.0), (80, 4.0)] {
            e.on_event(&syn(a, port, t), &mut out);
            got.push(out.len());
        }
        assert_eq!(got, [0, 0, 0, 0, 1]);
        let m = &out[0];
        assert_eq!(m.evidence.distinct, Some(3));
        assert!(
            m.evidence
                .detail
                .contains(&("distinct_values".to_string(), "22,23,80".to_string()))
        );
    }

    #[test]
    fn distinct_values_expire_after_their_last_sighting() {
        let a = "10.0.0.1:1";
        // 22 at 0 s has expired by 11 s.
        let mut e = engine(&rule(1, "tcp.syn", DISTINCT));
        assert_eq!(
            fired(
                &mut e,
                &[syn(a, 22, 0.0), syn(a, 23, 5.0), syn(a, 80, 11.0)]
            ),
            [false; 3]
        );
        // Seen again at 9 s, 22 is still in the window at 15 s, and 23 (5 s)
        // is exactly on the edge.
        let mut e = engine(&rule(1, "tcp.syn", DISTINCT));
        assert_eq!(
            fired(
                &mut e,
                &[
                    syn(a, 22, 0.0),
                    syn(a, 23, 5.0),
                    syn(a, 22, 9.0),
                    syn(a, 80, 15.0)
                ]
            ),
            [false, false, false, true]
        );
        // Another source's ports do not count for this one.
        let mut e = engine(&rule(1, "tcp.syn", DISTINCT));
        assert_eq!(
            fired(
                &mut e,
                &[syn(a, 22, 0.0), syn("10.0.0.7:1", 23, 1.0), syn(a, 80, 2.0)]
            ),
            [false; 3]
        );
    }

    fn sequence_rules(after_body: &str) -> String {
        rule(1, "telnet.login", after_body)
            + &rule(
                2,
                "telnet.login",
                r#"where = { outcome = "success" }
sequence = { after_rule = 1, within_secs = 30, group_by = ["src_ip", "dst_ip"] }"#,
            )
    }

    #[test]
    fn sequence_fires_after_the_earlier_rule_within_its_window() {
        let brute = r#"where = { outcome = "failure" }
threshold = { count = 2, within_secs = 60, group_by = ["src_ip"] }"#;
        let a = "10.0.0.1:1";
        let mut e = engine(&sequence_rules(brute));
        let got = feed(
            &mut e,
            &[
                login(a, 0.0, "success"),
                login(a, 1.0, "failure"),
                login(a, 2.0, "failure"),
                login(a, 32.0, "success"),
                login(a, 33.0, "success"),
            ],
        );
        // Success before the brute force: nothing. Exactly 30 s after it: fires,
        // once (the arming is used up).
        assert_eq!(got, [vec![], vec![], vec![1], vec![2], vec![]]);

        let mut e = engine(&sequence_rules(brute));
        let got = feed(
            &mut e,
            &[
                login(a, 0.0, "failure"),
                login(a, 1.0, "failure"),
                login("10.0.0.5:1", 2.0, "success"),
                login(a, 31.001, "success"),
            ],
        );
        // Another source's success is another group; 30.001 s is too late.
        assert_eq!(got, [vec![], vec![1], vec![], vec![]]);
    }

    #[test]
    fn sequence_is_not_armed_by_the_event_that_triggers_it() {
        let mut e = engine(&sequence_rules(""));
        let a = "10.0.0.1:1";
        let got = feed(
            &mut e,
            &[login(a, 0.0, "success"), login(a, 1.0, "success")],
        );
        assert_eq!(got, [vec![1], vec![1, 2]]);
        let mut out = Vec::new();
        e.on_event(&login(a, 2.0, "success"), &mut out);
        let seq = out.iter().find(|m| m.rule.id == 2).expect("rule 2 fired");
        assert!(
            seq.evidence
                .detail
                .contains(&("after_rule".to_string(), "1".to_string()))
        );
        assert!(
            seq.evidence
                .detail
                .contains(&("after_secs".to_string(), "1.000".to_string()))
        );
    }

    #[test]
    fn memcap_bounds_groups_and_evicts_the_least_recently_used() {
        // A threshold grouped by source address: each source's group holds
        // one key field (an address, no text) and one entry per event.
        let text = rule(
            1,
            "telnet.login",
            r#"threshold = { count = 3, within_secs = 60, group_by = ["src_ip"] }"#,
        );
        let group = RULE_GROUP_BYTES + RULE_KEY_PART_BYTES + RULE_ENTRY_BYTES;
        let limits = EngineLimits {
            memcap_bytes: 10 * group,
            ..EngineLimits::default()
        };
        let mut e = engine_with(&text, limits);
        let src = |i: u32| format!("10.0.1.{i}:1000");
        for i in 1..=25 {
            let got = feed(&mut e, &[login(&src(i), f64::from(i), "failure")]);
            assert_eq!(got, [Vec::<u32>::new()]);
        }
        // 25 sources, room for 10 groups of one entry: 15 evicted.
        let s = e.stats();
        assert_eq!(e.groups(), 10);
        assert_eq!((s.memcap_evictions, s.evictions), (15, 0));
        assert_eq!(
            (s.memory_bytes, s.memory_peak_bytes),
            (10 * group, 10 * group)
        );
        assert_eq!(s.memcap_bytes, 10 * group);
        // Source 16, the oldest kept, still has its first event: two more
        // fire. Its second entry is over the cap by one entry: the group
        // used longest ago, source 17's, makes room. Firing empties source
        // 16's window, so source 1's new group (it was evicted: two events
        // are not enough) fits in 9 groups, 2 of them without entries.
        let got = feed(
            &mut e,
            &[
                login(&src(16), 30.0, "failure"),
                login(&src(16), 31.0, "failure"),
                login(&src(1), 32.0, "failure"),
                login(&src(1), 33.0, "failure"),
            ],
        );
        assert_eq!(got, [vec![], vec![1], vec![], vec![]]);
        let s = e.stats();
        assert_eq!(s.memcap_evictions, 16);
        assert_eq!(e.groups(), 10);
    }

    fn connect(src: &str, client_id: &'static str, secs: f64) -> Event<'static> {
        ev("mqtt.connect", src, "10.0.0.2:1883", secs).with("client_id", client_id)
    }

    fn close(src: &str, client_id: &'static str, secs: f64) -> Event<'static> {
        ev("mqtt.close", src, "10.0.0.2:1883", secs).with("client_id", client_id)
    }

    const TAKEOVER: &str = r#"concurrent = { key = "client_id", closed_by = "mqtt.close" }"#;

    #[test]
    fn concurrent_fires_on_a_second_address_while_open() {
        let mut e = engine(&rule(1, "mqtt.connect", TAKEOVER));
        let mut out = Vec::new();
        e.on_event(&connect("10.0.0.1:1000", "sensor-7", 0.0), &mut out);
        e.on_event(&connect("10.0.0.1:1001", "sensor-7", 1.0), &mut out);
        assert!(
            out.is_empty(),
            "same address reconnecting is not a takeover"
        );
        e.on_event(&connect("10.0.0.1:1002", "other", 1.0), &mut out);
        assert!(out.is_empty());
        e.on_event(&connect("10.0.0.66:2000", "sensor-7", 2.0), &mut out);
        assert_eq!(out.len(), 1);
        let d = &out[0].evidence.detail;
        assert!(
            d.contains(&("client_id".to_string(), "sensor-7".to_string())),
            "{d:?}"
        );
        assert!(
            d.contains(&("other_src_ip".to_string(), "10.0.0.1".to_string())),
            "{d:?}"
        );
    }

    #[test]
    fn concurrent_session_closes_only_from_its_own_endpoint() {
        let mut e = engine(&rule(1, "mqtt.connect", TAKEOVER));
        let got = fired(
            &mut e,
            &[
                connect("10.0.0.1:1000", "sensor-7", 0.0),
                close("10.0.0.1:1000", "sensor-7", 1.0),
                connect("10.0.0.66:2000", "sensor-7", 2.0),
            ],
        );
        assert_eq!(got, [false, false, false]);
        let mut e = engine(&rule(1, "mqtt.connect", TAKEOVER));
        let got = fired(
            &mut e,
            &[
                connect("10.0.0.1:1000", "sensor-7", 0.0),
                close("10.0.0.1:9999", "sensor-7", 1.0),
                connect("10.0.0.66:2000", "sensor-7", 2.0),
            ],
        );
        assert_eq!(got, [false, false, true]);
    }

    #[test]
    fn suppression_for_seconds_per_key() {
        let body = r#"suppress = { per = ["src_ip"], secs = 60 }"#;
        let mut e = engine(&rule(1, "telnet.login", body));
        let (a, b) = ("10.0.0.1:1", "10.0.0.9:1");
        let got = fired(
            &mut e,
            &[
                login(a, 0.0, "failure"),
                login(a, 59.9, "failure"),
                login(b, 59.9, "failure"),
                login(a, 60.0, "failure"),
                login(a, 61.0, "failure"),
            ],
        );
        assert_eq!(got, [true, false, true, true, false]);
        assert_eq!(e.stats().suppressed, 2);
        assert_eq!(e.stats().matches, 3);
    }

    #[test]
    fn suppression_forever_per_device_and_service() {
        let body = r#"suppress = { per = ["src_ip", "dst_ip", "dst_port"], secs = "forever" }"#;
        let mut e = engine(&rule(1, "telnet.login", body));
        let a = "10.0.0.1:1";
        let other_port = ev("telnet.login", a, "10.0.0.2:2323", 5.0);
        let got = fired(
            &mut e,
            &[
                login(a, 0.0, "failure"),
                login(a, 1e6, "failure"),
                other_port,
            ],
        );
        assert_eq!(got, [true, false, true]);
    }

    #[test]
    fn live_groups_evicted_when_full_are_counted() {
        let limits = EngineLimits {
            max_groups_per_rule: 2,
            ..EngineLimits::default()
        };
        let body = r#"where = { outcome = "failure" }
threshold = { count = 2, within_secs = 10, group_by = ["src_ip"] }"#;
        let mut e = engine_with(&rule(1, "telnet.login", body), limits);
        let got = fired(
            &mut e,
            &[
                login("10.0.0.1:1", 0.0, "failure"),
                login("10.0.0.2:1", 0.1, "failure"),
                login("10.0.0.3:1", 0.2, "failure"),
                // 10.0.0.1's first failure was evicted: this is its first again.
                login("10.0.0.1:1", 0.3, "failure"),
            ],
        );
        assert_eq!(got, [false; 4]);
        let s = e.stats();
        assert_eq!((s.evictions, s.expired), (2, 0));
        assert_eq!(e.groups(), 2);
    }

    #[test]
    fn stale_groups_dropped_when_full_count_as_expired() {
        let limits = EngineLimits {
            max_groups_per_rule: 2,
            ..EngineLimits::default()
        };
        let body = r#"threshold = { count = 2, within_secs = 10, group_by = ["src_ip"] }"#;
        let mut e = engine_with(&rule(1, "telnet.login", body), limits);
        fired(
            &mut e,
            &[
                login("10.0.0.1:1", 0.0, "failure"),
                login("10.0.0.2:1", 0.0, "failure"),
                login("10.0.0.3:1", 100.0, "failure"),
            ],
        );
        let s = e.stats();
        assert_eq!((s.evictions, s.expired), (0, 1));
    }

    #[test]
    fn entries_per_group_are_bounded_and_counted() {
        let limits = EngineLimits {
            max_entries_per_group: 2,
            ..EngineLimits::default()
        };
        let mut e = engine_with(&rule(1, "tcp.syn", DISTINCT), limits);
        let a = "10.0.0.1:1";
        let got = fired(&mut e, &[syn(a, 22, 0.0), syn(a, 23, 1.0), syn(a, 80, 2.0)]);
        // Only two values fit, so three distinct ports are never seen together.
        assert_eq!(got, [false; 3]);
        assert_eq!(e.stats().entry_evictions, 1);

        let body = r#"threshold = { count = 3, within_secs = 10 }"#;
        let mut e = engine_with(&rule(1, "telnet.login", body), limits);
        let got = fired(
            &mut e,
            &[login(a, 0.0, "x"), login(a, 1.0, "x"), login(a, 2.0, "x")],
        );
        assert_eq!(got, [false; 3]);
        assert_eq!(e.stats().entry_evictions, 1);
    }

    #[test]
    fn reload_resets_state_and_keeps_counters() {
        let body = r#"threshold = { count = 2, within_secs = 60 }"#;
        let mut e = engine(&rule(1, "telnet.login", body));
        let a = "10.0.0.1:1";
        assert_eq!(fired(&mut e, &[login(a, 0.0, "failure")]), [false]);
        e.reload(RuleSet::from_str("t.rules.toml", &rule(1, "telnet.login", body)).expect("rules"));
        assert_eq!(e.groups(), 0);
        // The failure before the reload is forgotten.
        assert_eq!(fired(&mut e, &[login(a, 1.0, "failure")]), [false]);
        assert_eq!(fired(&mut e, &[login(a, 2.0, "failure")]), [true]);
        let s = e.stats();
        assert_eq!((s.events, s.matches, s.reloads), (3, 1, 1));
        // New rules replace the old ones.
        e.reload(RuleSet::from_str("t.rules.toml", &rule(9, "telnet.command", "")).expect("rules"));
        assert_eq!(fired(&mut e, &[login(a, 3.0, "failure")]), [false]);
        let cmd = ev("telnet.command", a, "10.0.0.2:23", 4.0).with("line", "ls");
        assert_eq!(feed(&mut e, &[cmd]), [vec![9]]);
    }

    #[test]
    fn evidence_values_are_bounded() {
        let mut e = engine(&rule(
            1,
            "telnet.command",
            r#"where = { line = { exists = true } }"#,
        ));
        let long = "A".repeat(MAX_DETAIL_CHARS * 4);
        let mut out = Vec::new();
        e.on_event(
            &ev("telnet.command", "10.0.0.1:1", "10.0.0.2:23", 0.0)
                .with("line", long.clone())
                .with("user", long.clone()),
            &mut out,
        );
        let m = out.first().expect("fired");
        assert_eq!(m.evidence.detail[0].1.chars().count(), MAX_DETAIL_CHARS);
        assert_eq!(
            m.evidence.user.as_deref().map(str::len),
            Some(MAX_DETAIL_CHARS)
        );
    }
}
