//! A device's behaviour profile: what it normally does, learned in packet
//! time. Every set is bounded (the constants below); what does not fit is
//! counted, never stored.
//!
//! Memory per device, at the bounds: peers 64 × 44 B, services 2 × 32 × 20 B,
//! conversations 64 × 36 B,
//! topics, filters, resources and paths (32 + 16 + 32 + 32) × (64 B of text
//! and 28 B), hosts 16, methods 8, users 8 of the same (each entry with its
//! 4-byte hash), periodic behaviours 16 × 48 B, the last occurrence of each
//! of the 3 [`TextBehaviour`]s (40 B each), and a set's 128-byte bitmap of
//! what it could not keep: under 20 KiB ([`MAX_PROFILE_BYTES`]).

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use serde::Serialize;

use crate::capture::Timestamp;

/// Peers kept per device.
pub const MAX_PEERS: usize = 64;
/// Services offered, and services used, kept per device.
pub const MAX_SERVICES: usize = 32;
/// Conversations (a peer and a service of it) the device opened, kept.
pub const MAX_CONVERSATIONS: usize = 64;
/// MQTT topics published, CoAP resources, HTTP paths kept per device.
pub const MAX_NAMES: usize = 32;
/// MQTT filters subscribed, HTTP hosts kept per device.
pub const MAX_FEW_NAMES: usize = 16;
/// HTTP methods and Telnet users kept per device.
pub const MAX_TINY_NAMES: usize = 8;
/// Periodic behaviours followed per device.
pub const MAX_PERIODIC: usize = 16;
/// Longest text kept of a topic, path, resource or user name, in bytes.
pub const MAX_TEXT_BYTES: usize = 64;
/// Upper bound of one profile's memory (see the module documentation).
pub const MAX_PROFILE_BYTES: usize = 20 * 1024;

/// Occurrences a behaviour needs before its period counts as learned.
pub const PERIOD_MIN_OCCURRENCES: u32 = 4;
/// A behaviour is periodic when its intervals vary by less than this
/// fraction of the period (mean absolute deviation over the mean).
pub const PERIOD_MAX_JITTER: f64 = 0.5;
/// Intervals shorter than this are bursts, not a period.
pub const PERIOD_MIN_NANOS: f64 = 500_000_000.0;
/// Cap of `period_overdue`, in periods.
pub const MAX_OVERDUE_PERIODS: f64 = 1_000.0;

/// Counts of up to `cap` keys; further keys are counted in `dropped`.
#[derive(Clone, Debug, Serialize)]
pub struct Bounded<K> {
    entries: Vec<(K, u64)>,
    /// A hash of each entry's key, apart: a lookup reads these 4-byte
    /// hashes and compares whole keys only where one matches.
    #[serde(skip)]
    hashes: Vec<u32>,
    #[serde(skip)]
    cap: usize,
    /// Keys seen beyond the cap (distinct, as far as [`Bounded::beyond`]
    /// tells them apart).
    pub dropped: u64,
    /// Keys seen beyond the cap, one bit each by hash: a key dropped once
    /// is not new the next time (but for the odd collision). Made when the
    /// cap is first reached: most sets never are, and a small set keeps
    /// the profile's hot fields close together.
    #[serde(skip)]
    beyond: Option<Box<[u64; BEYOND_WORDS]>>,
}

/// Words of the bitmap of keys seen beyond a bounded set's cap (1024 bits).
pub const BEYOND_WORDS: usize = 16;

impl<K: PartialEq + Hash> Bounded<K> {
    pub fn new(cap: usize) -> Self {
        Bounded {
            entries: Vec::new(),
            hashes: Vec::new(),
            cap,
            dropped: 0,
            beyond: None,
        }
    }

    pub fn contains(&self, key: &K) -> bool {
        self.find(key, key_hash(key)).is_some()
    }

    /// The entry of `key`, whose [`key_hash`] is `hash`.
    fn find<Q>(&self, key: &Q, hash: u32) -> Option<usize>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.hashes
            .iter()
            .enumerate()
            .filter(|(_, h)| **h == hash)
            .map(|(i, _)| i)
            .find(|&i| self.entries[i].0.borrow() == key)
    }

    /// Counts `key` once; `true` when it was new (kept, or seen beyond the
    /// cap for the first time).
    pub fn add(&mut self, key: K) -> bool {
        let hash = key_hash(&key);
        self.add_hashed(key, hash)
    }

    fn add_hashed(&mut self, key: K, hash: u32) -> bool {
        if let Some(i) = self.find(&key, hash) {
            self.entries[i].1 += 1;
            return false;
        }
        if self.entries.len() < self.cap {
            self.entries.push((key, 1));
            self.hashes.push(hash);
            return true;
        }
        self.add_beyond(&key)
    }

    /// [`Bounded::add`] of a key not kept, the set being full; out of line
    /// (most sets never fill).
    #[cold]
    #[inline(never)]
    fn add_beyond(&mut self, key: &K) -> bool {
        // The same hasher every run (SipHash with fixed keys).
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        let bit = (h.finish() % (BEYOND_WORDS as u64 * 64)) as usize;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        let beyond = self
            .beyond
            .get_or_insert_with(|| Box::new([0; BEYOND_WORDS]));
        if beyond[word] & mask != 0 {
            return false;
        }
        beyond[word] |= mask;
        self.dropped += 1;
        true
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, u64)> {
        self.entries.iter().map(|(k, n)| (k, *n))
    }
}

impl Bounded<String> {
    /// Counts a name, cut to [`MAX_TEXT_BYTES`]; `true` when it was new.
    /// A name kept already is counted without a copy.
    pub fn add_text(&mut self, text: &str) -> bool {
        self.add_text_at(text).0
    }

    /// [`Bounded::add_text`], and the entry that counts the name (none
    /// beyond the cap).
    fn add_text_at(&mut self, text: &str) -> (bool, Option<usize>) {
        let kept = crate::proto::text::cap_str(text, MAX_TEXT_BYTES);
        let hash = key_hash(kept);
        if let Some(i) = self.find(kept, hash) {
            self.entries[i].1 += 1;
            return (false, Some(i));
        }
        let at = self.entries.len();
        let new = self.add_hashed(kept.to_string(), hash);
        (new, (self.entries.len() > at).then_some(at))
    }
}

impl Bounded<&'static str> {
    /// [`Bounded::add`] of a name from the program's text: the same name
    /// is mostly the same constant, found by its address before any hash.
    pub fn add_static(&mut self, key: &'static str) -> bool {
        if let Some(e) = self.entries.iter_mut().find(|(k, _)| std::ptr::eq(*k, key)) {
            e.1 += 1;
            return false;
        }
        self.add(key)
    }
}

/// The hash a bounded set keeps of a key (a `String`'s is its `str`'s).
fn key_hash<Q: Hash + ?Sized>(key: &Q) -> u32 {
    use std::hash::BuildHasher;
    // The low half of a 64-bit hash: a match is checked on the whole key.
    foldhash::fast::FixedState::default().hash_one(key) as u32
}

/// A transport and port: a service a device offers or uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Service {
    /// IANA protocol number (6 TCP, 17 UDP).
    pub transport: u8,
    pub port: u16,
}

/// How the connections a device opened ended.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Outcomes {
    /// The handshake completed (or data flowed).
    pub completed: u64,
    /// The peer answered with a RST before the handshake completed.
    pub refused: u64,
    /// No answer at all.
    pub unanswered: u64,
}

/// One regular behaviour (a topic published, a resource polled, a server
/// connected to) and its period, learned as it happens.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Periodic {
    /// What it is: "mqtt.publish", "coap.request", "flow.open"...
    pub kind: &'static str,
    #[serde(skip)]
    last: Timestamp,
    pub occurrences: u32,
    /// Mean interval and mean absolute deviation from it, in nanoseconds
    /// (exponentially weighted, 1/8 per interval).
    pub period_nanos: f64,
    pub jitter_nanos: f64,
}

impl Periodic {
    /// Whether the period is known and regular enough to be relied on.
    pub fn learned(&self) -> bool {
        self.occurrences >= PERIOD_MIN_OCCURRENCES
            && self.period_nanos >= PERIOD_MIN_NANOS
            && self.jitter_nanos <= PERIOD_MAX_JITTER * self.period_nanos
    }

    /// Seconds since the behaviour last happened.
    pub fn since_secs(&self, now: Timestamp) -> f64 {
        now.nanos_since(self.last) as f64 / 1e9
    }

    /// How many periods late the behaviour, whose period is learned, is at
    /// `now`; 0 when on time.
    fn overdue(&self, now: Timestamp) -> f64 {
        let since = now.nanos_since(self.last) as f64;
        (since / self.period_nanos - 1.0).clamp(0.0, MAX_OVERDUE_PERIODS)
    }
}

/// What a device normally does.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    pub peers: Bounded<IpAddr>,
    /// Services others used on the device (it was the server).
    pub services_offered: Bounded<Service>,
    /// Services the device used on others (it was the client).
    pub services_used: Bounded<Service>,
    /// Services of peers the device opened flows to: (peer, service).
    pub conversations: Bounded<(IpAddr, Service)>,
    pub mqtt_published: Bounded<String>,
    pub mqtt_subscribed: Bounded<String>,
    /// CoAP requests the device sent: "METHOD /path".
    pub coap_requests: Bounded<String>,
    pub http_hosts: Bounded<String>,
    pub http_paths: Bounded<String>,
    pub http_methods: Bounded<String>,
    /// Responses the device received, by status class: 1xx..5xx, other.
    pub http_status_classes: [u64; 6],
    pub telnet_users: Bounded<String>,
    pub telnet_logins_ok: u64,
    pub telnet_logins_failed: u64,
    pub outcomes: Outcomes,
    periodic: Vec<Periodic>,
    /// The key of each of `periodic` (a hash of what it is), apart: a
    /// behaviour is found in two cache lines instead of twelve.
    #[serde(skip)]
    keys: Vec<u64>,
    /// Bit `i` set: the period of `periodic[i]` is learned.
    #[serde(skip)]
    learned: u16,
    /// Periodic behaviours not followed (the list was full).
    pub periodic_dropped: u64,
    /// The last occurrence of each [`TextBehaviour`].
    #[serde(skip)]
    recent: [Option<Recent>; TEXT_BEHAVIOURS],
}

/// The behaviours named by a text: counted in a set of the profile and
/// followed as periodic behaviours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextBehaviour {
    /// A PUBLISH, by topic.
    MqttPublish,
    /// An HTTP request, by path.
    HttpRequest,
    /// A CoAP request, by "METHOD /path".
    CoapRequest,
}

const TEXT_BEHAVIOURS: usize = 3;

impl TextBehaviour {
    /// The kind named in the periodic behaviours, and its key's seed.
    fn kind(self) -> (&'static str, u64) {
        const MQTT_PUBLISH: u64 = behaviour_seed("mqtt.publish");
        const HTTP_REQUEST: u64 = behaviour_seed("http.request");
        const COAP_REQUEST: u64 = behaviour_seed("coap.request");
        match self {
            TextBehaviour::MqttPublish => ("mqtt.publish", MQTT_PUBLISH),
            TextBehaviour::HttpRequest => ("http.request", HTTP_REQUEST),
            TextBehaviour::CoapRequest => ("coap.request", COAP_REQUEST),
        }
    }
}

/// The text of a behaviour's last occurrence, by where it is: its entry in
/// its set (the text kept whole), its key, and its periodic behaviour
/// (none when the list was full).
#[derive(Clone, Copy, Debug)]
struct Recent {
    entry: usize,
    key: u64,
    periodic: Option<usize>,
}

// Every periodic behaviour has its bit in `Profile::learned`.
const _: () = assert!(MAX_PERIODIC <= u16::BITS as usize);

impl Default for Profile {
    fn default() -> Self {
        Profile {
            peers: Bounded::new(MAX_PEERS),
            services_offered: Bounded::new(MAX_SERVICES),
            services_used: Bounded::new(MAX_SERVICES),
            conversations: Bounded::new(MAX_CONVERSATIONS),
            mqtt_published: Bounded::new(MAX_NAMES),
            mqtt_subscribed: Bounded::new(MAX_FEW_NAMES),
            coap_requests: Bounded::new(MAX_NAMES),
            http_hosts: Bounded::new(MAX_FEW_NAMES),
            http_paths: Bounded::new(MAX_NAMES),
            http_methods: Bounded::new(MAX_TINY_NAMES),
            http_status_classes: [0; 6],
            telnet_users: Bounded::new(MAX_TINY_NAMES),
            telnet_logins_ok: 0,
            telnet_logins_failed: 0,
            outcomes: Outcomes::default(),
            periodic: Vec::new(),
            keys: Vec::new(),
            learned: 0,
            periodic_dropped: 0,
            recent: [None; TEXT_BEHAVIOURS],
        }
    }
}

/// A behaviour's key is a stable 64-bit hash of its kind and detail (FNV-1a:
/// the same in every run, so a profile saved and read back keeps its keys),
/// in two steps: this seed of the kind (a constant for a kind known when
/// compiling), then [`behaviour_key_from`] the seed and the detail.
pub const fn behaviour_seed(kind: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = kind.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        h = (h ^ bytes[i] as u64).wrapping_mul(FNV_PRIME);
        i += 1;
    }
    // The separator, a NUL byte.
    h.wrapping_mul(FNV_PRIME)
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The key of `detail` for the kind whose [`behaviour_seed`] is `seed`.
pub fn behaviour_key_from(seed: u64, detail: &[u8]) -> u64 {
    detail
        .iter()
        .fold(seed, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

impl Profile {
    /// The behaviour `b`, named by `text`, happened at `ts`: the text is
    /// counted in its set ([`Bounded::add_text`]) and the behaviour followed
    /// ([`Profile::occurred`], its key [`behaviour_key_from`] the seed of
    /// its kind and the whole text). The profile remembers the last text of
    /// each behaviour: a device mostly repeats itself (a sensor publishes to
    /// the same topic, polls the same path), and the same text again is
    /// found without hashing it or searching.
    pub fn text_behaviour(&mut self, b: TextBehaviour, text: &str, ts: Timestamp) {
        let (kind, seed) = b.kind();
        let recent = self.recent[b as usize];
        let set = match b {
            TextBehaviour::MqttPublish => &mut self.mqtt_published,
            TextBehaviour::HttpRequest => &mut self.http_paths,
            TextBehaviour::CoapRequest => &mut self.coap_requests,
        };
        let (entry, key, hint) = match recent {
            Some(r) if text.len() <= MAX_TEXT_BYTES && set.entries[r.entry].0 == text => {
                set.entries[r.entry].1 += 1;
                (Some(r.entry), r.key, r.periodic)
            }
            _ => {
                let (_, entry) = set.add_text_at(text);
                // Only a text kept whole is known again by its entry.
                let entry = entry.filter(|_| text.len() <= MAX_TEXT_BYTES);
                (entry, behaviour_key_from(seed, text.as_bytes()), None)
            }
        };
        let periodic = self.occurred_at(kind, key, ts, hint);
        self.recent[b as usize] = entry.map(|entry| Recent {
            entry,
            key,
            periodic,
        });
    }

    /// A behaviour happened at `ts`: its period is learned from the intervals.
    pub fn occurred(&mut self, kind: &'static str, key: u64, ts: Timestamp) {
        self.occurred_at(kind, key, ts, None);
    }

    /// [`Profile::occurred`], looking first at `hint` for the behaviour;
    /// where the behaviour is (none when the list is full).
    fn occurred_at(
        &mut self,
        kind: &'static str,
        key: u64,
        ts: Timestamp,
        hint: Option<usize>,
    ) -> Option<usize> {
        let found = hint
            .filter(|&i| self.keys.get(i) == Some(&key))
            .or_else(|| self.keys.iter().position(|&k| k == key));
        let Some(i) = found else {
            if self.periodic.len() < MAX_PERIODIC {
                self.keys.push(key);
                self.periodic.push(Periodic {
                    kind,
                    last: ts,
                    occurrences: 1,
                    period_nanos: 0.0,
                    jitter_nanos: 0.0,
                });
                return Some(self.periodic.len() - 1);
            }
            self.periodic_dropped += 1;
            return None;
        };
        let p = &mut self.periodic[i];
        if ts <= p.last {
            return Some(i);
        }
        let interval = ts.nanos_since(p.last) as f64;
        if p.occurrences == 1 {
            p.period_nanos = interval;
            p.jitter_nanos = 0.0;
        } else {
            let dev = (interval - p.period_nanos).abs();
            p.period_nanos += (interval - p.period_nanos) / 8.0;
            p.jitter_nanos += (dev - p.jitter_nanos) / 8.0;
        }
        p.last = ts;
        p.occurrences = p.occurrences.saturating_add(1);
        if p.learned() {
            self.learned |= 1 << i;
        } else {
            self.learned &= !(1 << i);
        }
        Some(i)
    }

    /// The most overdue learned behaviour at `now`, in periods.
    pub fn period_overdue(&self, now: Timestamp) -> f64 {
        self.learned_periodic()
            .map(|p| p.overdue(now))
            .fold(0.0, f64::max)
    }

    /// The behaviours whose period is learned (none read when none is).
    pub fn learned_periodic(&self) -> impl Iterator<Item = &Periodic> + '_ {
        let learned = self.learned;
        (0..self.periodic.len())
            .filter(move |i| learned & (1 << i) != 0)
            .map(|i| &self.periodic[i])
    }

    /// Learned periods, for the inventory: (kind, seconds).
    pub fn periods(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.learned_periodic()
            .map(|p| (p.kind, p.period_nanos / 1e9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64) -> Timestamp {
        Timestamp((secs * 1e9) as i64)
    }

    #[test]
    fn bounded_sets_count_and_drop_beyond_their_cap() {
        let mut b = Bounded::new(2);
        assert!(b.add("a"));
        assert!(!b.add("a"));
        assert!(b.add("b"));
        assert!(b.add("c"));
        assert!(!b.add("c"), "a key dropped once is not new again");
        assert_eq!((b.len(), b.dropped), (2, 1));
        assert_eq!(b.iter().collect::<Vec<_>>(), [(&"a", 2), (&"b", 1)]);
        let mut t = Bounded::new(4);
        t.add_text(&"x".repeat(500));
        assert_eq!(t.iter().next().map(|(k, _)| k.len()), Some(MAX_TEXT_BYTES));
    }

    #[test]
    fn a_regular_behaviour_is_learned_and_its_silence_measured() {
        let mut p = Profile::default();
        let key = behaviour_key_from(behaviour_seed("mqtt.publish"), b"home/t1");
        // Every 5 s, ±0.2 s.
        for (i, jitter) in [0.0, 0.2, -0.1, 0.1, -0.2, 0.0].iter().enumerate() {
            p.occurred("mqtt.publish", key, at(100.0 + 5.0 * i as f64 + jitter));
        }
        let learned: Vec<_> = p.periods().collect();
        assert_eq!(learned.len(), 1);
        assert!((learned[0].1 - 5.0).abs() < 0.3, "{learned:?}");
        // Last at 125 s: on time at 129 s, 3 periods late at 145 s.
        assert_eq!(p.period_overdue(at(129.0)), 0.0);
        let late = p.period_overdue(at(145.0));
        assert!((late - 3.0).abs() < 0.3, "{late}");
    }

    #[test]
    fn bursts_and_irregular_behaviours_are_not_periods() {
        let mut p = Profile::default();
        let burst = behaviour_key_from(behaviour_seed("mqtt.publish"), b"flood");
        for i in 0..20 {
            p.occurred("mqtt.publish", burst, at(1.0 + 0.01 * f64::from(i)));
        }
        let irregular = behaviour_key_from(behaviour_seed("http.request"), b"/");
        for t in [1.0, 2.0, 30.0, 31.0, 90.0, 200.0] {
            p.occurred("http.request", irregular, at(t));
        }
        assert_eq!(p.periods().count(), 0);
        assert_eq!(p.period_overdue(at(10_000.0)), 0.0);
    }

    #[test]
    fn a_text_behaviour_counts_and_learns_as_its_set_and_occurrences_do() {
        let long = "t/".repeat(40);
        let long_other = format!("{}x", &long[..long.len() - 1]);
        let mut texts: Vec<String> = Vec::new();
        texts.extend(std::iter::repeat_n("a/temp".to_string(), 5));
        for _ in 0..5 {
            texts.extend(["a/temp".to_string(), "a/hum".to_string()]);
        }
        // Long topics share their kept 64 bytes, not their keys.
        texts.extend([&long, &long_other, &long, &long].map(String::from));
        // More topics than are kept, and more behaviours than are followed.
        texts.extend((0..40).map(|i| format!("x/{i}")));
        texts.extend(std::iter::repeat_n("x/39".to_string(), 3));
        texts.extend(std::iter::repeat_n("a/temp".to_string(), 3));
        let (mut remembered, mut plain) = (Profile::default(), Profile::default());
        let seed = behaviour_seed("mqtt.publish");
        for (i, text) in texts.iter().enumerate() {
            let ts = at(i as f64 * 2.0);
            remembered.text_behaviour(TextBehaviour::MqttPublish, text, ts);
            plain.mqtt_published.add_text(text);
            plain.occurred(
                "mqtt.publish",
                behaviour_key_from(seed, text.as_bytes()),
                ts,
            );
        }
        let json = |p: &Profile| serde_json::to_value(p).expect("profile as JSON");
        assert_eq!(json(&remembered), json(&plain));
        assert_eq!(
            (&remembered.keys, remembered.learned),
            (&plain.keys, plain.learned)
        );
        assert_eq!(remembered.mqtt_published.len(), MAX_NAMES);
        // As the module documentation counts it.
        assert!(std::mem::size_of::<Option<Recent>>() <= 40);
        assert!(remembered.mqtt_published.dropped > 0 && remembered.periodic_dropped > 0);
        assert!(remembered.periods().count() > 0);
    }

    #[test]
    fn behaviour_keys_are_stable_and_distinct() {
        // FNV-1a of "a\0b" (offset basis 0xcbf29ce484222325, prime 0x100000001b3),
        // computed with Python: h = (h ^ b) * prime mod 2^64 per byte.
        assert_eq!(
            behaviour_key_from(behaviour_seed("a"), b"b"),
            0xe5d2_9919_0426_66b2
        );
        assert_ne!(
            behaviour_key_from(behaviour_seed("ab"), b""),
            behaviour_key_from(behaviour_seed("a"), b"b")
        );
    }
}
