//! A small network lab for the live protocol tests: two network namespaces
//! joined by a veth pair, real daemons in the server namespace, real clients
//! and tcpdump in the client namespace, and tshark to judge the capture.
//!
//! Everything is bounded: each wait has a deadline, each process the lab
//! starts is remembered and ended by its PID (SIGTERM, then SIGKILL), and
//! `Drop` removes the namespaces, the temporary directory and any local
//! account the lab created. The namespaces have no route out: the only link
//! is the veth pair between them. Needs root.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Address of the client end of the veth pair (tcpdump and clients run here).
pub const CLIENT_ADDR: &str = "10.233.0.1";
/// Address of the server end of the veth pair (daemons listen here).
pub const SERVER_ADDR: &str = "10.233.0.2";
/// tcpdump's kernel buffer, in KiB: large, so a busy machine that schedules
/// tcpdump late does not make the kernel drop packets.
const CAPTURE_BUFFER_KIB: &str = "65536";
/// How long a daemon may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a process may take to end after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `useradd` is tried (it fails while /etc/passwd is locked).
const USERADD_ATTEMPTS: u32 = 5;
/// Most descendants of one daemon that cleanup looks for.
const MAX_DESCENDANTS: usize = 64;
/// Poll interval of every bounded wait.
const POLL: Duration = Duration::from_millis(50);
/// How long tshark may take on one of our (small) captures.
const TSHARK_TIMEOUT: Duration = Duration::from_secs(120);
/// Time for packets still in the capture ring to reach tcpdump's file before
/// it is stopped (it runs in immediate mode, so this is generous).
const CAPTURE_SETTLE: Duration = Duration::from_millis(500);
/// curl's own limit on one HTTP fetch, and the bound on its run.
const HTTP_MAX_TIME: &str = "10";
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `spanwatch live` may take to open its interface.
const SENSOR_START_TIMEOUT: Duration = Duration::from_secs(30);
/// tcprewrite's map of a bundled capture's addresses into the link's subnet
/// (CLIENT_ADDR/SERVER_ADDR's /24): the lab samples' 10.77.0.0/24 first,
/// then every other IPv4 address.
const REWRITE_INTO_LINK: &str = "10.77.0.0/24:10.233.0.0/24,0.0.0.0/0:10.233.0.0/24";

/// Which listening sockets `wait_listening` looks for.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Where a `spanwatch live` of the lab captures (see [`Lab::start_live`]).
#[derive(Clone, Copy, Debug)]
pub enum Tap {
    /// The client end of the link, in the client namespace.
    Client,
    /// Mirror port N of a switched lab, in the sensor namespace.
    Mirror(usize),
}

/// A process the lab started and must end.
struct Proc {
    what: String,
    child: Child,
    log: PathBuf,
}

/// Handle of a process started by [`Lab::start_server`] or [`Lab::start_client`].
#[derive(Clone, Copy, Debug)]
pub struct ProcId(usize);

/// A running tcpdump and the file it writes.
pub struct Capture {
    proc: ProcId,
    pcap: PathBuf,
}

impl Capture {
    /// The tcpdump process, for a test that judges its exit counts itself
    /// (e.g. under load, where it may drop).
    pub fn proc_id(&self) -> ProcId {
        self.proc
    }
}

/// What a client run left behind.
pub struct ClientRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// One lab at a time per test binary: the labs' daemons, clients and capture
/// then have the machine to themselves, and captures stay complete.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Namespaces, link, processes, accounts and files of one test; removed on drop.
pub struct Lab {
    /// Held for the lab's lifetime; released after `Drop` has cleaned up.
    _turn: std::sync::MutexGuard<'static, ()>,
    ns_client: String,
    ns_server: String,
    veth_client: String,
    veth_server: String,
    /// A switched lab's switch and sensor namespaces (see [`Lab::switched`]).
    ns_switch: Option<String>,
    ns_sensor: Option<String>,
    /// A switched lab's capture interfaces, in the sensor namespace.
    mirrors: Vec<String>,
    dir: PathBuf,
    procs: Vec<Proc>,
    users: Vec<String>,
}

/// Panic with an install hint unless `program` is on PATH (or is a path that exists).
pub fn require_program(program: &str, package: &str) {
    let found = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
            .unwrap_or(false)
    };
    assert!(
        found,
        "{program} not found: this test needs the Debian package {package} (apt-get install {package})"
    );
}

/// A fresh random secret (hex of 12 bytes from /dev/urandom). Never printed.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 12];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random secret other than `secret` (a wrong password). Never printed.
pub fn other_secret(secret: &str) -> String {
    loop {
        let candidate = random_secret();
        if candidate != secret {
            return candidate;
        }
    }
}

/// Run `program args` to completion within `timeout`, ending it by PID if it
/// overruns. Output goes to files in `dir` (no pipe can fill up and block it).
fn run_bounded(
    dir: &Path,
    what: &str,
    mut cmd: Command,
    stdin: Option<&str>,
    timeout: Duration,
) -> ClientRun {
    let stem = dir.join(format!(
        "run-{}",
        what.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let out_path = stem.with_extension("out");
    let err_path = stem.with_extension("err");
    let out = File::create(&out_path).expect("create stdout file");
    let err = File::create(&err_path).expect("create stderr file");
    cmd.stdout(out).stderr(err);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("write stdin of {what}: {e}"));
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for client") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {timeout:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(POLL);
    };
    ClientRun {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// `ip ARGS`, which must succeed.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (Debian package iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?} failed (this test needs root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// IPv6 off in namespace `ns` (no router solicitations or neighbour
/// discovery in the captures).
fn no_ipv6(ns: &str) {
    for key in ["all", "default"] {
        let setting = format!("net.ipv6.conf.{key}.disable_ipv6=1");
        ip(&["netns", "exec", ns, "sysctl", "-q", "-w", &setting]);
    }
}

/// `tc ARGS` in namespace `ns`, which must succeed.
fn tc(ns: &str, args: &[&str]) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "tc"])
        .args(args)
        .output()
        .expect("run tc (Debian package iproute2)");
    assert!(
        out.status.success(),
        "tc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    /// Two namespaces `swpl-TAG-{c,s}-PID` and a veth pair `TAG{c,s}PID`
    /// between them, IPv6 off (no router solicitations in the capture).
    /// `tag` is two lowercase letters, unique per test of this binary.
    pub fn new(tag: &str) -> Lab {
        let lab = Lab::hosts(tag);
        ip(&[
            "link",
            "add",
            &lab.veth_client,
            "type",
            "veth",
            "peer",
            "name",
            &lab.veth_server,
        ]);
        ip(&["link", "set", &lab.veth_client, "netns", &lab.ns_client]);
        ip(&["link", "set", &lab.veth_server, "netns", &lab.ns_server]);
        lab.address_hosts();
        lab
    }

    /// The two hosts of [`Lab::new`] joined through a switch instead of a
    /// cable: a bridge in a namespace `swpl-TAG-w-PID`, one veth pair from
    /// each host to a bridge port. The frames arriving at both host ports
    /// are mirrored (tc clsact ingress, a filter matching everything with
    /// `action mirred egress mirror`, as a switch's SPAN session) to each of `mirrors` capture
    /// interfaces in a sensor namespace `swpl-TAG-m-PID`: up, without an
    /// address, IPv6 off, so nothing there ever sends.
    pub fn switched(tag: &str, mirrors: usize) -> Lab {
        require_program("tc", "iproute2");
        let mut lab = Lab::hosts(tag);
        let id = std::process::id();
        let switch = format!("swpl-{tag}-w-{id}");
        let sensor = format!("swpl-{tag}-m-{id}");
        // Remembered before anything else, so that Drop removes them.
        lab.ns_switch = Some(switch.clone());
        lab.ns_sensor = Some(sensor.clone());
        for ns in [&switch, &sensor] {
            ip(&["netns", "add", ns]);
            no_ipv6(ns);
        }
        // The sensor namespace's loopback, for /metrics and a Prometheus
        // beside the sensors: nothing it carries leaves the namespace.
        ip(&["-n", &sensor, "link", "set", "lo", "up"]);
        let bridge = format!("{tag}br{id}");
        ip(&["-n", &switch, "link", "add", &bridge, "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", &bridge, "up"]);
        let mut ports = Vec::new();
        for (host_ns, host_dev, side) in [
            (&lab.ns_client, &lab.veth_client, "c"),
            (&lab.ns_server, &lab.veth_server, "s"),
        ] {
            let port = format!("{tag}p{side}{id}");
            ip(&[
                "link", "add", host_dev, "type", "veth", "peer", "name", &port,
            ]);
            ip(&["link", "set", host_dev, "netns", host_ns]);
            ip(&["link", "set", &port, "netns", &switch]);
            ip(&["-n", &switch, "link", "set", &port, "master", &bridge]);
            ip(&["-n", &switch, "link", "set", &port, "up"]);
            ports.push(port);
        }
        let mut mirror_action = Vec::new();
        for i in 0..mirrors {
            let (port, capture) = (format!("{tag}pm{i}{id}"), format!("{tag}m{i}{id}"));
            ip(&[
                "link", "add", &port, "type", "veth", "peer", "name", &capture,
            ]);
            ip(&["link", "set", &port, "netns", &switch]);
            ip(&["link", "set", &capture, "netns", &sensor]);
            ip(&["-n", &switch, "link", "set", &port, "up"]);
            ip(&["-n", &sensor, "link", "set", &capture, "up"]);
            mirror_action.extend(["action", "mirred", "egress", "mirror", "dev"].map(String::from));
            mirror_action.push(port);
            lab.mirrors.push(capture);
        }
        if mirrors > 0 {
            for port in &ports {
                tc(&switch, &["qdisc", "add", "dev", port, "clsact"]);
                // u32 with an empty mask matches every frame (cls_u32 is
                // there where matchall is not built in).
                let mut filter: Vec<&str> = vec![
                    "filter", "add", "dev", port, "ingress", "protocol", "all", "u32", "match",
                    "u32", "0", "0",
                ];
                filter.extend(mirror_action.iter().map(String::as_str));
                tc(&switch, &filter);
            }
        }
        lab.address_hosts();
        lab
    }

    /// The client and server namespaces, not linked yet.
    fn hosts(tag: &str) -> Lab {
        assert!(tag.len() == 2, "lab tag must be two letters");
        require_program("ip", "iproute2");
        require_program("sysctl", "procps");
        let id = std::process::id();
        let dir = std::env::temp_dir().join(format!("swpl-{tag}-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create lab directory");
        // A test that panicked while holding the lock poisoned it; its lab was
        // still cleaned up by Drop, so the next one may go on.
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let lab = Lab {
            _turn: turn,
            ns_client: format!("swpl-{tag}-c-{id}"),
            ns_server: format!("swpl-{tag}-s-{id}"),
            veth_client: format!("{tag}c{id}"),
            veth_server: format!("{tag}s{id}"),
            ns_switch: None,
            ns_sensor: None,
            mirrors: Vec::new(),
            dir,
            procs: Vec::new(),
            users: Vec::new(),
        };
        ip(&["netns", "add", &lab.ns_client]);
        ip(&["netns", "add", &lab.ns_server]);
        for ns in [&lab.ns_client, &lab.ns_server] {
            no_ipv6(ns);
        }
        lab
    }

    /// Addresses on the hosts' ends of their links; links and loopback up.
    fn address_hosts(&self) {
        for (ns, dev, addr) in [
            (&self.ns_client, &self.veth_client, CLIENT_ADDR),
            (&self.ns_server, &self.veth_server, SERVER_ADDR),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
    }

    /// A switched lab's capture interfaces (in the sensor namespace).
    pub fn mirror_interfaces(&self) -> &[String] {
        &self.mirrors
    }

    /// Start a long-running process in a switched lab's sensor namespace.
    pub fn start_sensor(&mut self, what: &str, program: &str, args: &[&str]) -> ProcId {
        let ns = self.ns_sensor.clone().expect("a switched lab");
        self.spawn(ns, what, program, args)
    }

    /// Run a program in a switched lab's sensor namespace to completion
    /// (bounded); it must exit 0. Its stdout.
    pub fn sensor_ok(&self, what: &str, program: &str, args: &[&str], timeout: Duration) -> String {
        let ns = self.ns_sensor.as_ref().expect("a switched lab");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]).args(args);
        let run = run_bounded(&self.dir, what, cmd, None, timeout);
        assert!(
            run.status.success(),
            "{what} failed ({}): {}",
            run.status,
            run.stderr
        );
        run.stdout
    }

    /// Frames an interface of the sensor namespace sent and received, from
    /// the kernel's counters (`ip -s -j link`).
    pub fn sensor_interface_packets(&self, dev: &str) -> (u64, u64) {
        let ns = self.ns_sensor.as_ref().expect("a switched lab");
        let out = Command::new("ip")
            .args(["-n", ns, "-s", "-j", "link", "show", "dev", dev])
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let links: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("ip -j prints JSON");
        let stats = &links[0]["stats64"];
        let count = |dir: &str| {
            stats[dir]["packets"]
                .as_u64()
                .unwrap_or_else(|| panic!("no {dir} packets for {dev}: {links}"))
        };
        (count("tx"), count("rx"))
    }

    /// The MAC address of the client's and the server's interface.
    pub fn host_macs(&self) -> [String; 2] {
        [
            (&self.ns_client, &self.veth_client),
            (&self.ns_server, &self.veth_server),
        ]
        .map(|(ns, dev)| {
            let out = Command::new("ip")
                .args(["-n", ns, "-j", "link", "show", "dev", dev])
                .output()
                .expect("run ip");
            let links: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("ip -j prints JSON");
            links[0]["address"]
                .as_str()
                .unwrap_or_else(|| panic!("no address for {dev}: {links}"))
                .to_string()
        })
    }

    /// The PID of a process the lab started.
    pub fn pid(&self, id: ProcId) -> u32 {
        self.procs[id.0].child.id()
    }

    /// The lab's private temporary directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The client end of the veth pair (where tcpdump and `spanwatch live` capture).
    /// The client namespace's name (for `ip -n`).
    pub fn client_namespace(&self) -> &str {
        &self.ns_client
    }

    pub fn client_interface(&self) -> &str {
        &self.veth_client
    }

    /// The server end of the veth pair (for a daemon that binds to an interface).
    pub fn server_interface(&self) -> &str {
        &self.veth_server
    }

    fn spawn(&mut self, ns: String, what: &str, program: &str, args: &[&str]) -> ProcId {
        let log = self.dir.join(format!("{what}.log"));
        let file = File::create(&log).expect("create log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what} ({program}): {e}"));
        self.procs.push(Proc {
            what: what.to_string(),
            child,
            log,
        });
        ProcId(self.procs.len() - 1)
    }

    /// Start a long-running process in the server namespace.
    pub fn start_server(&mut self, what: &str, program: &str, args: &[&str]) -> ProcId {
        self.spawn(self.ns_server.clone(), what, program, args)
    }

    /// Start a long-running process in the client namespace.
    pub fn start_client(&mut self, what: &str, program: &str, args: &[&str]) -> ProcId {
        self.spawn(self.ns_client.clone(), what, program, args)
    }

    /// `spanwatch live -i IFACE --stats-interval 0 ARGS...`, named `what`, on
    /// `tap`; returns once it says it is capturing.
    pub fn start_live(&mut self, what: &str, tap: Tap, args: &[&str]) -> ProcId {
        let iface = match tap {
            Tap::Client => self.veth_client.clone(),
            Tap::Mirror(i) => self.mirrors[i].clone(),
        };
        let mut live = vec!["live", "-i", &iface, "--stats-interval", "0"];
        live.extend_from_slice(args);
        let program = env!("CARGO_BIN_EXE_spanwatch");
        let id = match tap {
            Tap::Client => self.start_client(what, program, &live),
            Tap::Mirror(_) => self.start_sensor(what, program, &live),
        };
        self.wait_log(id, "capturing on", SENSOR_START_TIMEOUT);
        id
    }

    /// The JSON summary `spanwatch live --json` printed as it stopped: the
    /// last JSON object of its log (stderr lines come before it).
    pub fn final_summary(&self, id: ProcId) -> serde_json::Value {
        let log = self.log(id);
        let start = log.find("\n{").map_or(0, |i| i + 1);
        let end = log.rfind('}').map_or(log.len(), |i| i + 1);
        serde_json::from_str(&log[start..end])
            .unwrap_or_else(|e| panic!("summary not JSON ({e}):\n{log}"))
    }

    /// busybox httpd on SERVER_ADDR:`port` in the server namespace, serving
    /// `index_html` as /index.html; its listening address.
    pub fn start_httpd(&mut self, port: u16, index_html: &str) -> String {
        require_program("busybox", "busybox");
        let www = self.dir.join("www");
        std::fs::create_dir_all(&www).expect("create www directory");
        std::fs::write(www.join("index.html"), index_html).expect("write index.html");
        let listen = format!("{SERVER_ADDR}:{port}");
        let www = www.to_str().expect("utf-8 temp path").to_string();
        let httpd = self.start_server(
            "httpd",
            "busybox",
            &["httpd", "-f", "-p", &listen, "-h", &www],
        );
        self.wait_listening(httpd, Transport::Tcp, port);
        listen
    }

    /// mosquitto on SERVER_ADDR:1883 in the server namespace, once it
    /// listens: anonymous, or with the one account `(user, password)` (the
    /// password goes to mosquitto_passwd's file only).
    pub fn start_mosquitto(&mut self, account: Option<(&str, &str)>) -> ProcId {
        require_program("mosquitto", "mosquitto");
        let access = match account {
            None => "allow_anonymous true\n".to_string(),
            Some((user, password)) => {
                let passwd = self.dir.join("passwd");
                std::fs::write(&passwd, "").expect("create mosquitto's password file");
                let passwd = passwd.to_str().expect("utf-8 temp path");
                let run = self.client(
                    "mosquitto_passwd",
                    "mosquitto_passwd",
                    &["-b", passwd, user, password],
                    None,
                    START_TIMEOUT,
                );
                assert!(
                    run.status.success(),
                    "mosquitto_passwd failed: {}",
                    run.stderr
                );
                format!("allow_anonymous false\npassword_file {passwd}\n")
            }
        };
        let conf = self.dir.join("mosquitto.conf");
        // `user root`: stay root, so the broker can read the files of our
        // root-owned temporary directory.
        std::fs::write(
            &conf,
            format!(
                "listener 1883 {SERVER_ADDR}\n{access}persistence false\nlog_dest stderr\nuser root\n"
            ),
        )
        .expect("write mosquitto.conf");
        let conf = conf.to_str().expect("utf-8 temp path").to_string();
        let broker = self.start_server("mosquitto", "mosquitto", &["-c", &conf]);
        self.wait_listening(broker, Transport::Tcp, 1883);
        broker
    }

    /// The bundled capture at `path` (relative to the crate) with its
    /// addresses rewritten into the link's subnet by tcprewrite (checksums
    /// fixed), as a file in the lab directory, for tcpreplay onto the link.
    pub fn rewritten_capture(&self, path: &str) -> PathBuf {
        require_program("tcprewrite", "tcpreplay");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let stem = source
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("capture file name");
        let rewritten = self.dir.join(format!("{stem}-rewritten.pcap"));
        let out = Command::new("tcprewrite")
            .arg(format!("--pnat={REWRITE_INTO_LINK}"))
            .arg("--fixcsum")
            .arg("-i")
            .arg(&source)
            .arg("-o")
            .arg(&rewritten)
            .output()
            .expect("run tcprewrite (Debian package tcpreplay)");
        assert!(
            out.status.success(),
            "tcprewrite {}: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        rewritten
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self, id: ProcId) -> String {
        std::fs::read_to_string(&self.procs[id.0].log).unwrap_or_default()
    }

    /// Panic with the process's log if it has already exited.
    fn assert_running(&mut self, id: ProcId) {
        let proc = &mut self.procs[id.0];
        if let Some(status) = proc.child.try_wait().expect("poll child") {
            let what = proc.what.clone();
            panic!(
                "{what} exited ({status}) instead of running; its output:\n{}",
                self.log(id)
            );
        }
    }

    /// Wait (bounded) until the process's output contains `needle`.
    pub fn wait_log(&mut self, id: ProcId, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log(id).contains(needle) {
            self.assert_running(id);
            assert!(
                Instant::now() < deadline,
                "{} did not print {needle:?} within {timeout:?}; its output:\n{}",
                self.procs[id.0].what,
                self.log(id)
            );
            std::thread::sleep(POLL);
        }
    }

    /// Wait (bounded) until a socket listens on SERVER_ADDR:port in the server
    /// namespace; fail with the daemon's own output if it died or never listened.
    pub fn wait_listening(&mut self, id: ProcId, transport: Transport, port: u16) {
        let flags = match transport {
            Transport::Tcp => "-Hltn",
            Transport::Udp => "-Hlun",
        };
        let want = format!("{SERVER_ADDR}:{port} ");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.assert_running(id);
            let out = Command::new("ip")
                .args(["netns", "exec", &self.ns_server, "ss", flags])
                .output()
                .expect("run ss (Debian package iproute2)");
            if String::from_utf8_lossy(&out.stdout).contains(&want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} is not listening on {transport:?} {SERVER_ADDR}:{port} after {START_TIMEOUT:?}; its output:\n{}",
                self.procs[id.0].what,
                self.log(id)
            );
            std::thread::sleep(POLL);
        }
    }

    /// Wait (bounded) for a process to exit by itself; its status.
    pub fn wait_exit(&mut self, id: ProcId, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.procs[id.0].child.try_wait().expect("poll child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}; its output:\n{}",
                self.procs[id.0].what,
                self.log(id)
            );
            std::thread::sleep(POLL);
        }
    }

    /// Send a signal (e.g. "HUP") to one process we started, by its PID.
    pub fn signal(&mut self, id: ProcId, signal: &str) {
        let pid = self.procs[id.0].child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// SIGTERM one process we started, by its PID; wait (bounded) for it to end.
    pub fn stop(&mut self, id: ProcId) {
        let proc = &mut self.procs[id.0];
        if proc.child.try_wait().expect("poll child").is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &proc.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while proc.child.try_wait().expect("poll child").is_none() {
            if Instant::now() >= deadline {
                let _ = proc.child.kill();
                let _ = proc.child.wait();
                panic!(
                    "{} did not stop on SIGTERM within {STOP_TIMEOUT:?}",
                    proc.what
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Run a client in the client namespace to completion (bounded).
    /// `what` names it in messages; args are not echoed (they may hold secrets).
    pub fn client(
        &self,
        what: &str,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
        timeout: Duration,
    ) -> ClientRun {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_client, program])
            .args(args);
        run_bounded(&self.dir, what, cmd, stdin, timeout)
    }

    /// Like [`Lab::client`], and the client must exit 0.
    pub fn client_ok(&self, what: &str, program: &str, args: &[&str], timeout: Duration) -> String {
        let run = self.client(what, program, args, None, timeout);
        assert!(
            run.status.success(),
            "{what} failed ({}):\n{}{}",
            run.status,
            run.stdout,
            run.stderr
        );
        run.stdout
    }

    /// GET `url` with curl from the client namespace, with `-u CREDENTIAL`
    /// when one is given; it must succeed. The body is discarded.
    pub fn http_get(&self, url: &str, credential: Option<&str>) {
        let mut args = vec!["-s", "-o", "/dev/null", "--max-time", HTTP_MAX_TIME];
        if let Some(credential) = credential {
            args.extend(["-u", credential]);
        }
        args.push(url);
        self.client_ok("curl", "curl", &args, HTTP_TIMEOUT);
    }

    /// tcpdump on the client end of the link, writing `NAME.pcap` in the lab
    /// directory; returns once tcpdump says it is listening.
    pub fn start_capture(&mut self, name: &str) -> Capture {
        require_program("tcpdump", "tcpdump");
        let pcap = self.dir.join(format!("{name}.pcap"));
        let veth = self.veth_client.clone();
        let pcap_arg = pcap.to_str().expect("utf-8 temp path").to_string();
        // -Z root: keep writing as root into our root-owned directory.
        let args = [
            "-i",
            veth.as_str(),
            "-n",
            "-U",
            "--immediate-mode",
            "-B",
            CAPTURE_BUFFER_KIB,
            "-Z",
            "root",
            "-w",
            pcap_arg.as_str(),
        ];
        let proc = self.start_client("tcpdump", "tcpdump", &args);
        self.wait_log(proc, "listening on", START_TIMEOUT);
        Capture { proc, pcap }
    }

    /// Stop tcpdump (SIGTERM by PID) and check the kernel dropped nothing;
    /// the pcap path. (tshark and spanwatch both judge this same file, so a
    /// packet arriving while tcpdump stops cannot make them disagree.)
    pub fn finish_capture(&mut self, capture: Capture) -> PathBuf {
        std::thread::sleep(CAPTURE_SETTLE);
        self.stop(capture.proc);
        let log = self.log(capture.proc);
        let number_before = |suffix: &str| -> Option<u64> {
            log.lines()
                .find(|l| l.ends_with(suffix))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        };
        let captured = number_before("packets captured");
        let dropped = number_before("packets dropped by kernel");
        assert!(
            captured > Some(0) && dropped == Some(0),
            "tcpdump captured nothing, dropped packets or did not report its counts:\n{log}"
        );
        capture.pcap
    }

    /// Create a throwaway local account with a random password (removed on
    /// drop); its name and password. The password is never printed.
    pub fn add_user(&mut self, name: &str) -> String {
        require_program("useradd", "passwd");
        require_program("chpasswd", "passwd");
        // Bounded retries: another tool may hold the lock on /etc/passwd.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let out = Command::new("useradd")
                .args(["-M", "-d", "/", "-s", "/bin/sh", name])
                .output()
                .expect("run useradd");
            if out.status.success() {
                break;
            }
            assert!(
                attempts < USERADD_ATTEMPTS,
                "useradd {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        self.users.push(name.to_string());
        let password = random_secret();
        let run = run_bounded(
            &self.dir,
            "chpasswd",
            Command::new("chpasswd"),
            Some(&format!("{name}:{password}\n")),
            Duration::from_secs(30),
        );
        assert!(run.status.success(), "chpasswd failed: {}", run.stderr);
        password
    }
}

/// PIDs of the live descendants of `pid` (from /proc/PID/task/*/children),
/// at most `MAX_DESCENDANTS` of them.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if found.len() < MAX_DESCENDANTS {
                    found.push(child);
                    queue.push(child);
                }
            }
        }
    }
    found
}

impl Drop for Lab {
    fn drop(&mut self) {
        for proc in self.procs.iter_mut().rev() {
            if proc.child.try_wait().ok().flatten().is_some() {
                continue;
            }
            // What a daemon started for a session that is still open (telnetd,
            // login, a shell after a failed test): ended by PID first.
            for pid in descendants(proc.child.id()) {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            let _ = Command::new("kill")
                .args(["-TERM", &proc.child.id().to_string()])
                .status();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while proc.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
            let _ = proc.child.kill();
            let _ = proc.child.wait();
        }
        for user in &self.users {
            let _ = Command::new("userdel").args(["-f", user]).status();
        }
        let namespaces = [Some(&self.ns_client), Some(&self.ns_server)]
            .into_iter()
            .chain([self.ns_switch.as_ref(), self.ns_sensor.as_ref()]);
        for ns in namespaces.flatten() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One tshark row per matching frame: per field, every occurrence's value.
pub type Rows = Vec<Vec<Vec<String>>>;

/// `tshark -r PCAP -Y FILTER -T fields -E occurrence=a -e FIELD...`, split
/// into rows × fields × occurrences.
pub fn tshark_fields(pcap: &Path, filter: &str, fields: &[&str]) -> Rows {
    let dir = pcap.parent().expect("pcap in a directory");
    tshark_fields_in(dir, pcap, filter, fields)
}

/// [`tshark_fields`] with tshark's output files in `scratch` (for a capture
/// in a read-only directory).
pub fn tshark_fields_in(scratch: &Path, pcap: &Path, filter: &str, fields: &[&str]) -> Rows {
    require_program("tshark", "tshark");
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap).args([
        "-Y",
        filter,
        "-T",
        "fields",
        "-E",
        "header=n",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=\u{1e}",
    ]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    let run = run_bounded(scratch, "tshark", cmd, None, TSHARK_TIMEOUT);
    assert!(
        run.status.success(),
        "tshark -Y {filter} failed: {}",
        run.stderr
    );
    run.stdout
        .lines()
        .map(|line| {
            let mut row: Vec<Vec<String>> = line
                .split('\t')
                .map(|cell| {
                    cell.split('\u{1e}')
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .collect();
            row.resize(fields.len(), Vec::new());
            row
        })
        .collect()
}

/// Panic, listing them, if any frame of `pcap` matches the display filter.
pub fn assert_no_frames(pcap: &Path, filter: &str, why: &str) {
    let rows = tshark_fields(pcap, filter, &["frame.number", "_ws.col.Info"]);
    let frames: Vec<String> = rows.iter().map(|r| r.concat().join(" ")).collect();
    assert!(
        frames.is_empty(),
        "{why}; tshark's frames matching {filter}:\n{}",
        frames.join("\n")
    );
}

/// How often each value of field `col` occurs over all rows.
pub fn count_values(rows: &Rows, col: usize) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for value in rows.iter().flat_map(|r| r[col].iter()) {
        *counts.entry(value.clone()).or_insert(0) += 1;
    }
    counts
}

/// Total number of values of field `col` over all rows.
pub fn count_occurrences(rows: &Rows, col: usize) -> u64 {
    rows.iter().map(|r| r[col].len() as u64).sum()
}

/// Number of rows in which field `col` has at least one value.
pub fn rows_with(rows: &Rows, col: usize) -> u64 {
    rows.iter().filter(|r| !r[col].is_empty()).count() as u64
}

/// Distinct values of field `col`, sorted.
pub fn distinct(rows: &Rows, col: usize) -> Vec<String> {
    let mut values: Vec<String> = rows.iter().flat_map(|r| r[col].iter().cloned()).collect();
    values.sort();
    values.dedup();
    values
}
