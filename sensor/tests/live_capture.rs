//! `spanwatch live` on a veth link between two network namespaces this test
//! creates: real HTTP traffic (curl against busybox httpd) crosses the link while
//! tcpdump and spanwatch capture the same interface. spanwatch must count at
//! least the packets tcpdump counts. Needs root (network namespaces).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Namespaces, link and processes of one test run; removed on drop.
struct Lab {
    ns_client: String,
    ns_server: String,
    children: Vec<Child>,
    dir: std::path::PathBuf,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(
        status.success(),
        "ip {args:?} failed (this test needs root)"
    );
}

impl Lab {
    fn new() -> Lab {
        let id = std::process::id();
        let lab = Lab {
            ns_client: format!("swlive-c-{id}"),
            ns_server: format!("swlive-s-{id}"),
            children: Vec::new(),
            dir: std::env::temp_dir().join(format!("swlive-{id}")),
        };
        std::fs::create_dir_all(lab.dir.join("www")).unwrap();
        ip(&["netns", "add", &lab.ns_client]);
        ip(&["netns", "add", &lab.ns_server]);
        let (veth_c, veth_s) = (format!("swc{id}"), format!("sws{id}"));
        ip(&[
            "link", "add", &veth_c, "type", "veth", "peer", "name", &veth_s,
        ]);
        ip(&["link", "set", &veth_c, "netns", &lab.ns_client]);
        ip(&["link", "set", &veth_s, "netns", &lab.ns_server]);
        for (ns, dev, addr) in [
            (&lab.ns_client, &veth_c, "10.231.0.1/24"),
            (&lab.ns_server, &veth_s, "10.231.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    fn veth_client(&self) -> String {
        format!("swc{}", std::process::id())
    }

    fn spawn(&mut self, ns: &str, program: &str, args: &[&str]) -> usize {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        self.children.push(child);
        self.children.len() - 1
    }

    /// SIGTERM one child we started, by its PID, and collect its output.
    fn terminate(&mut self, index: usize) -> (String, String) {
        let child = &mut self.children[index];
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "child did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = child.stdout.take() {
            s.read_to_string(&mut out).unwrap();
        }
        if let Some(mut s) = child.stderr.take() {
            s.read_to_string(&mut err).unwrap();
        }
        (out, err)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for ns in [&self.ns_client, &self.ns_server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Wait until a line containing `needle` appears on the child's stderr; the
/// rest of stderr is handed back through a channel when the child ends.
fn wait_for_stderr(child: &mut Child, needle: &'static str) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (rest_tx, rest_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        let mut signalled = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !signalled && line.contains(needle) {
                let _ = ready_tx.send(());
                signalled = true;
            }
            all.push_str(&line);
            all.push('\n');
        }
        let _ = rest_tx.send(all);
    });
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no {needle:?} on stderr within 20 s"));
    rest_rx
}

#[test]
fn live_counts_at_least_what_tcpdump_counts_on_a_veth_link() {
    let mut lab = Lab::new();
    let www = lab.dir.join("www");
    std::fs::write(www.join("index.html"), "x".repeat(20_000)).unwrap();
    let server_ns = lab.ns_server.clone();
    let client_ns = lab.ns_client.clone();
    let veth = lab.veth_client();
    let pcap = lab.dir.join("tcpdump.pcap");

    lab.spawn(
        &server_ns,
        "busybox",
        &[
            "httpd",
            "-f",
            "-p",
            "10.231.0.2:8080",
            "-h",
            www.to_str().unwrap(),
        ],
    );
    let tcpdump = lab.spawn(
        &client_ns,
        "tcpdump",
        &["-i", &veth, "-n", "-U", "-w", pcap.to_str().unwrap()],
    );
    let tcpdump_err = wait_for_stderr(&mut lab.children[tcpdump], "listening on");
    let spanwatch_bin = env!("CARGO_BIN_EXE_spanwatch");
    let spanwatch = lab.spawn(
        &client_ns,
        spanwatch_bin,
        &["live", "-i", &veth, "--json", "--stats-interval", "0"],
    );
    let spanwatch_err = wait_for_stderr(&mut lab.children[spanwatch], "capturing on");

    // Bounded real traffic: 20 HTTP fetches across the link.
    for _ in 0..20 {
        let status = Command::new("ip")
            .args(["netns", "exec", &client_ns, "curl", "-s", "-o", "/dev/null"])
            .args(["--max-time", "5", "http://10.231.0.2:8080/index.html"])
            .status()
            .unwrap();
        assert!(status.success(), "curl failed");
    }
    std::thread::sleep(Duration::from_millis(500));

    let (summary, _) = lab.terminate(spanwatch);
    let spanwatch_stderr = spanwatch_err.recv().unwrap_or_default();
    let _ = lab.terminate(tcpdump);
    let _ = tcpdump_err.recv();

    let summary: serde_json::Value = serde_json::from_str(&summary)
        .unwrap_or_else(|e| panic!("summary not JSON ({e}): {summary}\n{spanwatch_stderr}"));
    let read = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    let tcpdump_packets = String::from_utf8_lossy(&read.stdout).lines().count() as u64;
    let ours = summary["packets"].as_u64().unwrap();
    assert!(
        tcpdump_packets >= 20 * 6,
        "tcpdump saw only {tcpdump_packets} packets"
    );
    assert!(
        ours >= tcpdump_packets,
        "spanwatch counted {ours} packets, tcpdump {tcpdump_packets}"
    );
    assert!(summary["flows"]["tcp"].as_u64().unwrap() >= 20);
    assert!(summary["reassembly"]["delivered_bytes"].as_u64().unwrap() >= 20 * 20_000);
    assert!(summary["kernel"]["received"].as_u64().is_some());
}

#[test]
fn live_on_a_missing_interface_is_exit_4_naming_it() {
    let out = common::spanwatch()
        .args(["live", "-i", "swnosuchif0", "--duration", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("swnosuchif0"), "{stderr}");
}
