//! The one window extractor: keeps the device inventory and profiles up to
//! date and turns what each device did into [`Window`]s.
//!
//! Inputs, in packet order: at every tick of packet time, what each flow did
//! during the second that ended ([`FlowActivity`]) and the frames no flow
//! counted for its devices ([`FrameNote`]: frames without IP, with ARP telling
//! who announces which address; IP fragments held for reassembly; packets
//! whose MAC addresses are not their flow's); in between, the normalised
//! events of the parsers. A window closes at the first tick at or after its
//! end; a device that was active gets rows for [`IDLE_WINDOWS`] more windows
//! of silence, so that what stops shows.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::net::IpAddr;

use serde::Serialize;

use super::distinct::{Distinct, Ports};
use super::{FEATURE_COUNT, Feature, Window, WindowNotes};
use crate::capture::Timestamp;
use crate::decode::FrameNote;
use crate::device::inventory::{Device, Inventory, NameSource, Role, Seen, is_device_mac};
use crate::device::profile::{Service, TextBehaviour, behaviour_key_from, behaviour_seed};
use crate::device::zone::Zone;
use crate::flow::{Direction, FlowActivity};
use crate::proto::norm::{Event, Value};

/// Windows of silence a device still gets a row for after its last activity.
pub const IDLE_WINDOWS: u32 = 6;
/// Distinct peers and ports counted per device and window (more read as
/// this many).
pub const MAX_WINDOW_DISTINCT: usize = 4096;
/// Memory of one device in the device stage at its bounds: its profile
/// ([`MAX_PROFILE_BYTES`]), its open window (at most [`EXACT_DISTINCT`]
/// peers kept in a hash set of 512 slots and a 1 KiB bitmap, the 8 KiB
/// bitmap of ports, the notes: under 20 KiB) and its record (addresses and
/// names: under 2 KiB), with room for the allocator's rounding.
///
/// [`MAX_PROFILE_BYTES`]: crate::device::profile::MAX_PROFILE_BYTES
/// [`EXACT_DISTINCT`]: super::distinct::EXACT_DISTINCT
pub const MAX_DEVICE_BYTES: usize = 48 * 1024;
/// Memory of one TCP attempt waiting for its answer (its entry in a hash
/// map that grows by doubling).
pub const PENDING_ATTEMPT_BYTES: usize = 64;
/// TCP attempts waiting for an answer, over all devices.
pub const MAX_PENDING_ATTEMPTS: usize = 16_384;
/// Windows an attempt may wait for its answer before it is given up.
pub const PENDING_WINDOWS: i64 = 6;
/// A window with at least this many refused or unanswered attempts, or
/// distinct destination ports, makes its device scanner-like.
pub const SCAN_ATTEMPTS: f64 = 20.0;
/// ...or with at least this many distinct peers.
pub const SCAN_PEERS: f64 = 50.0;

/// The seed of the key of a flow opened, a periodic behaviour a profile learns.
const FLOW_OPEN: u64 = behaviour_seed("flow.open");

/// Content classes of a body that is a program or an archive of one.
const EXECUTABLE_CLASSES: [&str; 7] = ["elf", "pe", "script", "zip", "gzip", "xz", "bzip2"];
/// Path endings of firmware images.
const FIRMWARE_SUFFIXES: [&str; 4] = [".bin", ".img", ".fw", ".hex"];

/// One device's window being filled.
#[derive(Debug)]
struct Acc {
    start: Timestamp,
    values: [f64; FEATURE_COUNT],
    peers: Distinct<IpAddr>,
    ports: Ports,
    /// TCP attempts opened in this window and not answered yet.
    pending: u32,
    notes: WindowNotes,
    active: bool,
    /// Windows of silence since the last active one.
    idle: u32,
}

impl Acc {
    fn new(start: Timestamp) -> Self {
        Acc {
            start,
            values: [0.0; FEATURE_COUNT],
            peers: Distinct::default(),
            ports: Ports::default(),
            pending: 0,
            notes: WindowNotes::default(),
            active: false,
            idle: 0,
        }
    }

    /// Starts the next window at `start`, reusing this one's memory; the
    /// windows of silence are still counted.
    fn restart(&mut self, start: Timestamp) {
        self.start = start;
        self.values = [0.0; FEATURE_COUNT];
        self.peers.clear();
        self.ports.clear();
        self.pending = 0;
        self.notes = WindowNotes::default();
        self.active = false;
    }

    /// Adds `by` to `f`; the window is active when anything was counted.
    fn bump(&mut self, f: Feature, by: f64) {
        self.values[f.index()] += by;
        self.active |= by != 0.0;
    }
}

/// Counters of the extractor.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ExtractorStats {
    pub windows: u64,
    /// TCP attempts forgotten before an answer because too many waited.
    pub pending_dropped: u64,
}

/// Devices, profiles and feature windows.
#[derive(Debug)]
pub struct Extractor {
    inventory: Inventory,
    window_nanos: i64,
    /// TCP attempts waiting for an answer: flow id → (device, window start).
    pending: HashMap<u64, ([u8; 6], Timestamp), RandomState>,
    windows: Vec<Window>,
    /// The open window of each device, by its slot in the inventory.
    open: Vec<Option<Acc>>,
    /// No open window ends before this (nanoseconds): ticks before it close
    /// nothing.
    next_end: i64,
    stats: ExtractorStats,
    /// The text of the CoAP request being counted (kept for its room).
    request: String,
}

impl Extractor {
    pub fn new(window_secs: u64, max_devices: usize, zones: Vec<Zone>) -> Self {
        let window_nanos = i64::try_from(window_secs.max(1))
            .unwrap_or(i64::MAX)
            .saturating_mul(Timestamp::NANOS_PER_SEC);
        Extractor {
            inventory: Inventory::new(max_devices, zones),
            window_nanos,
            pending: HashMap::default(),
            windows: Vec::new(),
            open: Vec::new(),
            next_end: i64::MAX,
            stats: ExtractorStats::default(),
            request: String::new(),
        }
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn stats(&self) -> ExtractorStats {
        self.stats
    }

    /// The windows closed since the last call, with the inventory their
    /// devices are in.
    pub fn take_windows(&mut self) -> (std::vec::Drain<'_, Window>, &Inventory) {
        (self.windows.drain(..), &self.inventory)
    }

    /// The device `mac` (when it is one) and its window for `ts`.
    fn device(&mut self, mac: Option<[u8; 6]>, ts: Timestamp) -> Option<(&mut Device, &mut Acc)> {
        self.sender(mac, None, ts)
    }

    /// [`Extractor::device`] for a device that sent from `ip` (when it sent
    /// anything): the address is noted in the same lookup.
    fn sender(
        &mut self,
        mac: Option<[u8; 6]>,
        ip: Option<IpAddr>,
        ts: Timestamp,
    ) -> Option<(&mut Device, &mut Acc)> {
        let seen = match ip {
            Some(ip) => self.inventory.sent_from_slot(mac?, ip, ts)?,
            None => self.inventory.touch(mac?, ts)?,
        };
        let acc = open_window(
            &mut self.open,
            &mut self.next_end,
            &seen,
            ts,
            self.window_nanos,
        );
        Some((seen.device, acc))
    }

    /// The open window of the device `mac`, when it has one.
    fn window_of(&mut self, mac: &[u8; 6]) -> Option<&mut Acc> {
        let slot = self.inventory.slot_of(mac)?;
        self.open.get_mut(slot)?.as_mut()
    }

    /// A second of packet time ended at `now`: what the flows did in it and
    /// the frames counted by their addresses alone; then every window that
    /// ended closes.
    pub fn tick(
        &mut self,
        now: Timestamp,
        second: Timestamp,
        activity: &[FlowActivity],
        frames: &[FrameNote],
    ) {
        for a in activity {
            self.activity(second, a);
        }
        for f in frames {
            self.frame(second, f);
        }
        self.close_until(now);
    }

    /// End of input: every window closes.
    pub fn finish(&mut self) {
        self.close_until(Timestamp(i64::MAX));
    }

    fn activity(&mut self, ts: Timestamp, a: &FlowActivity) {
        let [to_server, to_client] = [Direction::ToServer.index(), Direction::ToClient.index()];
        let service = Service {
            transport: a.transport,
            port: a.server.1,
        };
        let is_tcp = a.transport == 6;
        let ported = is_tcp || a.transport == 17;
        // Frames sent with other MAC addresses than the flow's came as frames.
        let counted = a.packets != [0, 0];
        let sent = (a.packets[to_server] > 0).then_some(a.client.0);
        if let Some((d, acc)) = self.sender(a.client_mac, sent, ts) {
            d.sent(u64::from(a.packets[to_server]), a.bytes[to_server], ts);
            d.packets_in += u64::from(a.packets[to_client]);
            d.bytes_in += a.bytes[to_client];
            acc.bump(Feature::PacketsOut, f64::from(a.packets[to_server]));
            acc.bump(Feature::BytesOut, a.bytes[to_server] as f64);
            acc.bump(Feature::PacketsIn, f64::from(a.packets[to_client]));
            acc.bump(Feature::BytesIn, a.bytes[to_client] as f64);
            if a.opened && ported && !d.profile.peers.contains(&a.server.0) {
                WindowNotes::push(&mut acc.notes.new_peers_opened, a.server.0);
            }
            if counted {
                add_peer(d, acc, a.server.0);
            }
            if a.opened && ported {
                acc.bump(Feature::FlowsOut, 1.0);
                WindowNotes::push(&mut acc.notes.opened_to, a.server.0);
                if acc.ports.len() < MAX_WINDOW_DISTINCT {
                    acc.ports.insert(a.server.1);
                }
                d.profile.conversations.add((a.server.0, service));
                if d.profile.services_used.add(service) {
                    acc.bump(Feature::NewServices, 1.0);
                    WindowNotes::push(&mut acc.notes.new_services, service);
                }
                let mut detail = [0u8; 19];
                detail[..16].copy_from_slice(&ip_bytes(a.server.0));
                detail[16..18].copy_from_slice(&a.server.1.to_be_bytes());
                detail[18] = a.transport;
                d.profile
                    .occurred("flow.open", behaviour_key_from(FLOW_OPEN, &detail), ts);
                if is_tcp {
                    acc.pending += 1;
                }
            }
            if a.refused_by_server {
                acc.bump(Feature::TcpRefusedOut, 1.0);
                d.profile.outcomes.refused += 1;
            } else if a.answered {
                d.profile.outcomes.completed += 1;
            }
        }
        let sent = (a.packets[to_client] > 0).then_some(a.server.0);
        if let Some((d, acc)) = self.sender(a.server_mac, sent, ts) {
            d.sent(u64::from(a.packets[to_client]), a.bytes[to_client], ts);
            d.packets_in += u64::from(a.packets[to_server]);
            d.bytes_in += a.bytes[to_server];
            acc.bump(Feature::PacketsOut, f64::from(a.packets[to_client]));
            acc.bump(Feature::BytesOut, a.bytes[to_client] as f64);
            acc.bump(Feature::PacketsIn, f64::from(a.packets[to_server]));
            acc.bump(Feature::BytesIn, a.bytes[to_server] as f64);
            if counted {
                add_peer(d, acc, a.client.0);
            }
            if a.opened && ported {
                acc.bump(Feature::FlowsIn, 1.0);
                if d.profile.services_offered.add(service) {
                    acc.bump(Feature::NewServices, 1.0);
                    WindowNotes::push(&mut acc.notes.new_services, service);
                }
            }
            if a.refused_by_server {
                acc.bump(Feature::TcpRefusedIn, 1.0);
            }
        }
        self.attempt(ts, a);
    }

    /// Follows a TCP attempt until it is answered or refused.
    fn attempt(&mut self, ts: Timestamp, a: &FlowActivity) {
        if a.transport != 6 {
            return;
        }
        let Some(client) = a.client_mac.filter(|m| is_device_mac(*m)) else {
            return;
        };
        if a.opened && !a.answered && !a.refused_by_server {
            if self.pending.len() >= MAX_PENDING_ATTEMPTS {
                self.stats.pending_dropped += 1;
                return;
            }
            self.pending
                .insert(a.flow_id, (client, window_start(ts, self.window_nanos)));
        } else if a.opened {
            // Opened and answered within the same second: never pending.
            if let Some(acc) = self.window_of(&client) {
                acc.pending = acc.pending.saturating_sub(1);
            }
        } else if (a.answered || a.refused_by_server)
            && let Some((mac, start)) = self.pending.remove(&a.flow_id)
            && let Some(acc) = self.window_of(&mac)
            && acc.start == start
        {
            acc.pending = acc.pending.saturating_sub(1);
        }
    }

    fn frame(&mut self, ts: Timestamp, f: &FrameNote) {
        let len = f64::from(f.wire_len);
        if let Some((d, acc)) = self.sender(f.src_mac, f.ips.map(|(src, _)| src), ts) {
            d.sent(1, u64::from(f.wire_len), ts);
            acc.bump(Feature::PacketsOut, 1.0);
            acc.bump(Feature::BytesOut, len);
            if let Some((_, dst)) = f.ips {
                add_peer(d, acc, dst);
            }
        }
        if let Some((d, acc)) = self.device(f.dst_mac, ts) {
            d.packets_in += 1;
            d.bytes_in += u64::from(f.wire_len);
            acc.bump(Feature::PacketsIn, 1.0);
            acc.bump(Feature::BytesIn, len);
            if let Some((src, _)) = f.ips {
                add_peer(d, acc, src);
            }
        }
        if let Some(arp) = f.arp
            && let Some(seen) = self.inventory.announced(arp.mac, IpAddr::V4(arp.ip), ts)
            && seen.fresh
            && let Some(evicted) = self.open.get_mut(seen.slot)
        {
            // The slot was an evicted device's: its window went with it.
            *evicted = None;
        }
    }

    /// A normalised event (see `rules/README.md` for the catalogue).
    ///
    /// Roles are what a device did, not what was asked of it: a server role
    /// needs the server's own answer (a scan's probe makes no server). Each
    /// device an event is about is looked up once. Each kind has its own
    /// function, out of line: the dispatch stays small, and an event runs
    /// only its kind's code.
    pub fn event(&mut self, ev: &Event) {
        // Flow events (TCP attempts and refusals) reach the windows through
        // the flows' activity instead.
        if matches!(ev.proto, "tcp" | "udp") {
            return;
        }
        // The most frequent kinds first: a match on text tries its arms in order.
        match ev.kind {
            "mqtt.publish" => self.mqtt_publish(ev),
            "coap.request" => self.coap_request(ev),
            "coap.response" => self.coap_response(ev),
            "http.request" => self.http_request(ev),
            "http.response" => self.http_response(ev),
            "http.body" => self.http_body(ev),
            "mqtt.connect" => self.mqtt_connect(ev),
            "mqtt.connack" => self.mqtt_connack(ev),
            "mqtt.subscribe" => self.mqtt_subscribe(ev),
            "telnet.login" => self.telnet_login(ev),
            "telnet.banner" => self.telnet_banner(ev),
            "telnet.command" => self.count_for_sender(ev, Feature::TelnetCommands),
            "dhcp.request" => self.dhcp_request(ev),
            "anomaly" => self.count_for_sender(ev, Feature::Anomalies),
            _ => {}
        }
    }

    #[inline(never)]
    fn mqtt_publish(&mut self, ev: &Event) {
        let (sender, receiver) = ends(ev);
        if let Some((d, acc)) = self.device(sender, ev.ts) {
            acc.bump(Feature::MqttPublishOut, 1.0);
            if let Some(topic) = text(ev, "topic") {
                d.profile
                    .text_behaviour(TextBehaviour::MqttPublish, topic, ev.ts);
            }
        }
        if let Some((_, acc)) = self.device(receiver, ev.ts) {
            acc.bump(Feature::MqttPublishIn, 1.0);
        }
    }

    #[inline(never)]
    fn coap_response(&mut self, ev: &Event) {
        if text(ev, "from") == Some("server")
            && let Some((d, _)) = self.device(ev.dst_mac, ev.ts)
        {
            plays(d, server_role(ev), ev.proto);
        }
    }

    #[inline(never)]
    fn http_request(&mut self, ev: &Event) {
        let Some((d, acc)) = self.device(ev.src_mac, ev.ts) else {
            return;
        };
        plays(d, client_role(ev), ev.proto);
        acc.bump(Feature::HttpRequests, 1.0);
        if let Some(ua) = text(ev, "user_agent") {
            d.add_name(NameSource::HttpUserAgent, ua);
        }
        if let Some(host) = text(ev, "host") {
            d.profile.http_hosts.add_text(host);
        }
        if let Some(method) = text(ev, "method") {
            d.profile.http_methods.add_text(method);
        }
        if let Some(uri) = text(ev, "uri") {
            let path = uri.split('?').next().unwrap_or(uri);
            d.profile
                .text_behaviour(TextBehaviour::HttpRequest, path, ev.ts);
        }
    }

    #[inline(never)]
    fn http_response(&mut self, ev: &Event) {
        if let Some((d, _)) = self.device(ev.dst_mac, ev.ts) {
            plays(d, server_role(ev), ev.proto);
            if let Some(name) = text(ev, "server") {
                d.add_name(NameSource::HttpServer, name);
            }
        }
        let status = match ev.field("status") {
            Some(Value::Int(n)) => *n,
            _ => 0,
        };
        if let Some((d, acc)) = self.device(ev.src_mac, ev.ts) {
            let class = usize::try_from(status / 100).unwrap_or(0);
            let slot = if (1..=5).contains(&class) {
                class - 1
            } else {
                5
            };
            d.profile.http_status_classes[slot] += 1;
            if (400..500).contains(&status) {
                acc.bump(Feature::Http4xx, 1.0);
            }
            if status == 401 {
                acc.bump(Feature::Http401, 1.0);
            }
        }
    }

    #[inline(never)]
    fn http_body(&mut self, ev: &Event) {
        let by_content = text(ev, "magic").is_some_and(|m| EXECUTABLE_CLASSES.contains(&m));
        let by_path = text(ev, "uri").is_some_and(|u| {
            let path = u.split('?').next().unwrap_or(u).as_bytes();
            FIRMWARE_SUFFIXES.iter().any(|s| {
                path.len() >= s.len()
                    && path[path.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            })
        });
        if (by_content || by_path)
            && let Some((_, acc)) = self.device(ends(ev).1, ev.ts)
        {
            acc.bump(Feature::HttpExecutables, 1.0);
        }
    }

    #[inline(never)]
    fn mqtt_connect(&mut self, ev: &Event) {
        if let Some((d, acc)) = self.device(ev.src_mac, ev.ts) {
            plays(d, client_role(ev), ev.proto);
            acc.bump(Feature::MqttConnect, 1.0);
            if let Some(id) = text(ev, "client_id") {
                d.add_name(NameSource::MqttClientId, id);
            }
            if let Some(user) = text(ev, "user") {
                d.add_name(NameSource::MqttUser, user);
            }
        }
    }

    #[inline(never)]
    fn mqtt_connack(&mut self, ev: &Event) {
        if let Some((d, _)) = self.device(ev.dst_mac, ev.ts) {
            plays(d, server_role(ev), ev.proto);
        }
        if matches!(ev.field("accepted"), Some(Value::Bool(false)))
            && let Some((_, acc)) = self.device(ev.src_mac, ev.ts)
        {
            acc.bump(Feature::MqttConnackRefused, 1.0);
        }
    }

    #[inline(never)]
    fn mqtt_subscribe(&mut self, ev: &Event) {
        if let Some((d, acc)) = self.device(ev.src_mac, ev.ts) {
            acc.bump(Feature::MqttSubscribe, 1.0);
            if let Some(Value::List(filters)) = ev.field("filters") {
                for f in filters {
                    d.profile.mqtt_subscribed.add_text(f);
                    if f.contains(['#', '+']) {
                        acc.bump(Feature::MqttWildcardFilters, 1.0);
                    }
                }
            }
        }
    }

    #[inline(never)]
    fn telnet_login(&mut self, ev: &Event) {
        if let Some((d, acc)) = self.device(ev.src_mac, ev.ts) {
            plays(d, client_role(ev), ev.proto);
            match text(ev, "outcome") {
                Some("failure") => {
                    acc.bump(Feature::TelnetLoginFailed, 1.0);
                    d.profile.telnet_logins_failed += 1;
                }
                Some("success") => {
                    acc.bump(Feature::TelnetLoginOk, 1.0);
                    d.profile.telnet_logins_ok += 1;
                }
                _ => {}
            }
            if let Some(user) = text(ev, "user") {
                d.profile.telnet_users.add_text(user);
            }
        }
        // A login attempt shows a server that prompted for it.
        if let Some((d, _)) = self.device(ev.dst_mac, ev.ts) {
            plays(d, server_role(ev), ev.proto);
        }
    }

    #[inline(never)]
    fn telnet_banner(&mut self, ev: &Event) {
        if let Some((d, _)) = self.device(ev.dst_mac, ev.ts) {
            plays(d, server_role(ev), ev.proto);
            if let Some(banner) = text(ev, "banner") {
                d.add_name(NameSource::TelnetBanner, banner);
            }
        }
    }

    #[inline(never)]
    fn dhcp_request(&mut self, ev: &Event) {
        if let Some(name) = text(ev, "hostname")
            && let Some((d, _)) = self.device(ev.src_mac, ev.ts)
        {
            d.add_name(NameSource::DhcpHostname, name);
        }
    }

    /// Counts `f` in the window of the event's sender.
    #[inline(never)]
    fn count_for_sender(&mut self, ev: &Event, f: Feature) {
        if let Some((_, acc)) = self.device(ev.src_mac, ev.ts) {
            acc.bump(f, 1.0);
        }
    }

    /// A CoAP request: its sender plays the client role when it is the
    /// client (a request seen from the server's side makes no role).
    #[inline(never)]
    fn coap_request(&mut self, ev: &Event) {
        let ts = ev.ts;
        let role = if text(ev, "from") == Some("client") {
            client_role(ev)
        } else {
            None
        };
        let sender = ends(ev).0;
        let method = text(ev, "method").unwrap_or("UNKNOWN");
        let path = text(ev, "uri_path").unwrap_or("").trim_start_matches('/');
        // "METHOD /path", written into the extractor's buffer (no allocation
        // per request).
        let mut request = std::mem::take(&mut self.request);
        request.clear();
        request.push_str(method);
        request.push_str(" /");
        request.push_str(path);
        if let Some((d, acc)) = self.device(sender, ts) {
            plays(d, role, ev.proto);
            let f = match method {
                "GET" => Some(Feature::CoapGet),
                "PUT" => Some(Feature::CoapPut),
                "POST" => Some(Feature::CoapPost),
                "DELETE" => Some(Feature::CoapDelete),
                _ => None,
            };
            if let Some(f) = f {
                acc.bump(f, 1.0);
            }
            if path == ".well-known/core" {
                acc.bump(Feature::CoapDiscovery, 1.0);
            }
            d.profile
                .text_behaviour(TextBehaviour::CoapRequest, &request, ts);
        }
        self.request = request;
    }

    /// Closes every window that ended by `now`, in (end, device) order so
    /// that a capture always gives the same windows in the same order.
    fn close_until(&mut self, now: Timestamp) {
        let window = self.window_nanos;
        if now.0 >= self.next_end {
            let first = self.windows.len();
            let mut next_end = i64::MAX;
            for (slot, open) in self.open.iter_mut().enumerate() {
                let (Some(acc), Some(device)) = (open.as_mut(), self.inventory.at_mut(slot)) else {
                    continue;
                };
                let mut idle = false;
                while acc.start.0.saturating_add(window) <= now.0 {
                    let end = Timestamp(acc.start.0.saturating_add(window));
                    self.windows.push(close_window(acc, end, device));
                    self.stats.windows += 1;
                    if acc.active {
                        acc.idle = 0;
                    } else {
                        acc.idle += 1;
                    }
                    // Attempts still pending stay counted in the closed window.
                    acc.restart(end);
                    if acc.idle >= IDLE_WINDOWS {
                        idle = true;
                        break;
                    }
                }
                if idle {
                    *open = None;
                } else {
                    next_end = next_end.min(acc.start.0.saturating_add(window));
                }
            }
            self.next_end = next_end;
            self.windows[first..].sort_unstable_by_key(|w| (w.end, w.device));
        }
        // An attempt unanswered for PENDING_WINDOWS windows is given up.
        let horizon = now.0.saturating_sub(window.saturating_mul(PENDING_WINDOWS));
        if self.pending.len() >= MAX_PENDING_ATTEMPTS / 2 || now.0 == i64::MAX {
            self.pending.retain(|_, (_, start)| start.0 >= horizon);
        }
    }
}

/// The start of the window of `window` nanoseconds that holds `ts`.
fn window_start(ts: Timestamp, window: i64) -> Timestamp {
    Timestamp(ts.0.div_euclid(window) * window)
}

/// The open window in the slot `seen` found, made for the window of `ts`
/// when there is none (or it was an evicted device's); `next_end` is lowered
/// to its end.
fn open_window<'a>(
    open: &'a mut Vec<Option<Acc>>,
    next_end: &mut i64,
    seen: &Seen<'_>,
    ts: Timestamp,
    window: i64,
) -> &'a mut Acc {
    if open.len() <= seen.slot {
        open.resize_with(seen.slot + 1, || None);
    }
    let acc = &mut open[seen.slot];
    if seen.fresh {
        *acc = None;
    }
    acc.get_or_insert_with(|| new_window(next_end, ts, window))
}

/// A device's first window (or its first after a silence), for `ts`; out of
/// line, as it is rare.
#[cold]
#[inline(never)]
fn new_window(next_end: &mut i64, ts: Timestamp, window: i64) -> Acc {
    let start = window_start(ts, window);
    *next_end = (*next_end).min(start.0.saturating_add(window));
    Acc::new(start)
}

/// The values of a window that ended at `end`, and what it teaches the
/// device's profile.
fn close_window(acc: &mut Acc, end: Timestamp, d: &mut Device) -> Window {
    let mut values = acc.values;
    values[Feature::Peers.index()] = acc.peers.len().min(MAX_WINDOW_DISTINCT) as f64;
    values[Feature::DstPorts.index()] = acc.ports.len().min(MAX_WINDOW_DISTINCT) as f64;
    values[Feature::TcpUnansweredOut.index()] = f64::from(acc.pending);
    values[Feature::PeriodOverdue.index()] = d.profile.period_overdue(end);
    d.profile.outcomes.unanswered += u64::from(acc.pending);
    for peer in acc.peers.kept() {
        d.profile.peers.add(*peer);
    }
    let attempts =
        values[Feature::TcpRefusedOut.index()] + values[Feature::TcpUnansweredOut.index()];
    if attempts >= SCAN_ATTEMPTS
        || values[Feature::DstPorts.index()] >= SCAN_ATTEMPTS
        || values[Feature::Peers.index()] >= SCAN_PEERS
    {
        d.add_role(Role::ScannerLike);
    }
    Window {
        device: d.mac,
        start: acc.start,
        end,
        values,
        notes: std::mem::take(&mut acc.notes),
    }
}

/// The MACs of the sender of what `ev` is about and of its receiver (events
/// are oriented client → server, with `from` telling who sent).
fn ends(ev: &Event) -> (Option<[u8; 6]>, Option<[u8; 6]>) {
    if text(ev, "from") == Some("server") {
        (ev.dst_mac, ev.src_mac)
    } else {
        (ev.src_mac, ev.dst_mac)
    }
}

/// The server role of the event's protocol, when it has one.
fn server_role(ev: &Event) -> Option<Role> {
    Role::of_protocol(ev.proto).map(|(s, _)| s)
}

/// The client role of the event's protocol, when it has one.
fn client_role(ev: &Event) -> Option<Role> {
    Role::of_protocol(ev.proto).map(|(_, c)| c)
}

/// `d` played `role` (when the protocol has one) in `proto`.
fn plays(d: &mut Device, role: Option<Role>, proto: &'static str) {
    if let Some(role) = role {
        d.add_role(role);
        d.protocols.add_static(proto);
    }
}

/// Counts `peer` in the window; new when the profile never had it.
fn add_peer(d: &mut Device, acc: &mut Acc, peer: IpAddr) {
    if acc.peers.len() >= MAX_WINDOW_DISTINCT || !acc.peers.insert(peer) {
        return;
    }
    if !d.profile.peers.contains(&peer) {
        acc.bump(Feature::NewPeers, 1.0);
    }
}

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// A string field of an event.
fn text<'e>(ev: &'e Event, name: &str) -> Option<&'e str> {
    match ev.field(name) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}
