//! Hosts as network namespaces: a bridge on this machine with an address in the
//! benchmark range 198.18.0.0/24 (for test networks; it never leaves the machine),
//! and namespaces joined to it by veth pairs, each with an address of its own. Made
//! with `ip` (iproute2) as root, as CI runs; a test needing them fails, with what to
//! install or run, where they cannot be made. Removed on drop.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::require;

/// Networks made by this process so far (names must differ between parallel tests).
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A bridge on this machine, `198.18.<net>.1/24`, with hosts on it.
pub struct Network {
    bridge: String,
    /// The third octet: each network of a test run gets its own /24.
    net: u8,
    hosts: Vec<String>,
}

fn ip(args: &[&str]) -> Output {
    let out = Command::new(require("ip", "iproute2"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {} (namespaces need root, as CI runs)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Network {
    /// A new bridge with the machine's side at `198.18.<net>.1`.
    pub fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        // A /24 per network: pid and counter spread them over 198.18.1–250.
        let net = u8::try_from(1 + (std::process::id() * 7 + n) % 250).expect("fits");
        let bridge = format!("wpb{tag}");
        ip(&["link", "add", &bridge, "type", "bridge"]);
        let me = Self {
            bridge,
            net,
            hosts: Vec::new(),
        };
        ip(&[
            "addr",
            "add",
            &format!("{}/24", me.gateway()),
            "dev",
            &me.bridge,
        ]);
        ip(&["link", "set", &me.bridge, "up"]);
        me
    }

    /// This machine's address on the network.
    pub fn gateway(&self) -> String {
        format!("198.18.{}.1", self.net)
    }

    /// A host (namespace) at `198.18.<net>.<last>`; its name, for `exec`.
    pub fn host(&mut self, last: u8) -> Host {
        let name = format!("{}h{last}", self.bridge);
        let (outside, inside) = (
            format!("{}a{last}", &self.bridge[3..]),
            format!("{}b{last}", &self.bridge[3..]),
        );
        ip(&["netns", "add", &name]);
        self.hosts.push(name.clone());
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ]);
        ip(&["link", "set", &outside, "master", &self.bridge, "up"]);
        ip(&["link", "set", &inside, "netns", &name]);
        let addr = format!("198.18.{}.{last}", self.net);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &inside,
        ]);
        ip(&["-n", &name, "link", "set", &inside, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Host { name, addr }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", h]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// One host of a [`Network`].
pub struct Host {
    pub name: String,
    /// Its address.
    pub addr: String,
}

impl Host {
    /// A command run inside the host's namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(require("ip", "iproute2"));
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// `curl` from this host: the status code of `method url` (0 when not reached).
    pub fn http_status(&self, method: &str, url: &str) -> u16 {
        let out = self
            .command(&require("curl", "curl").display().to_string())
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-m",
                "10",
                "-X",
                method,
                url,
            ])
            .output()
            .expect("curl in the namespace");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }
}
