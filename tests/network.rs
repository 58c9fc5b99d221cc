//! Networking: `none` (only `lo`, up), `host` (the host's interfaces), and `bridge`: addresses
//! from the subnet, traffic between containers over the bridge, published ports reached from
//! the host (on 127.0.0.1 and on the bridge's address), the generated /etc files, distinct
//! addresses under parallel starts, and nothing left on the host afterwards — after `rm`, after
//! a failed start, and after a killed boxr (on the next command).
//!
//! Every test has a bridge and a subnet of its own (and its own state root), so tests run in
//! parallel; traffic only flows between the host and the test's own containers.

use boxr_tests::containers::{Containers, Json, assert_fails, eventually, printed_id};
use boxr_tests::{Boxr, Config, DEFAULT_NAMESPACES, Marker, Scratch, toml_array, toml_str};
use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The page configs/web.toml serves.
const WWW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/www");
const WEB_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/web.toml");

/// A bridge network of the test's own: a unique bridge name and /24 subnet, in a state root of
/// its own. Dropping it removes its containers and then anything of the bridge still on the
/// host (so a failed test leaves nothing behind either).
struct Net {
    c: Containers,
    bridge: String,
    /// `10.A.B`, the subnet being `10.A.B.0/24`.
    prefix: String,
}

impl Net {
    /// A network whose containers run [`Config::new`] in bridge mode.
    fn new(name: &str) -> Net {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let bridge = format!("bxt{pid}-{n}");
        assert!(bridge.len() <= 15, "{bridge}");
        let prefix = free_subnet(pid, n);
        let net = Net { c: Containers::new(name), bridge, prefix };
        net.configure(&Config::new(), "");
        net
    }

    fn subnet(&self) -> String {
        format!("{}.0/24", self.prefix)
    }

    fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// The `[network]` table for this network, with `extra` lines.
    fn table(&self, extra: &str) -> String {
        format!(
            "\n[network]\nmode = \"bridge\"\nbridge = {}\nsubnet = {}\n{extra}",
            toml_str(&self.bridge),
            toml_str(&self.subnet())
        )
    }

    /// Makes `config` plus this network's table (and `extra` lines in it) the config of the
    /// containers started from now on.
    fn configure(&self, config: &Config, extra: &str) {
        fs::write(self.c.config_path(), config.render() + &self.table(extra))
            .expect("write config");
    }

    /// The address `boxr inspect` shows for container `name`.
    fn address(&self, name: &str) -> String {
        let state = self.c.inspect(name);
        state["network"]["address"].as_str().to_string()
    }

    fn network_file(&self) -> PathBuf {
        self.c.dirs().root().join("network").join(format!("{}.json", self.bridge))
    }

    /// Asserts that nothing of this network is on the host: no bridge, no veth of any of
    /// `ids`, no nftables table, no allocation file.
    #[track_caller]
    fn assert_nothing_left(&self, ids: &[String]) {
        let links = links();
        assert!(!links.contains(&self.bridge), "the bridge {} is left: {links:?}", self.bridge);
        for id in ids {
            let veth = format!("bx{}", &id[..12]);
            assert!(!links.contains(&veth), "the veth {veth} is left");
            assert!(!self.c.dirs().root().join(id).exists(), "the state of {id} is left");
        }
        let tables = nft(&["list", "tables"]);
        assert!(!tables.contains(&format!("boxr-{}", self.bridge)), "nft table left:\n{tables}");
        assert!(!self.network_file().exists(), "{} is left", self.network_file().display());
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let root = self.c.dirs().root();
        let ids: Vec<String> = fs::read_dir(&root)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().join("state.json").exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            let _ = self.c.cmd(
                &[&["rm", "-f"], &ids.iter().map(String::as_str).collect::<Vec<_>>()[..]].concat(),
            );
        }
        let _ = Command::new("ip").args(["link", "delete", &self.bridge]).output();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &format!("boxr-{}", self.bridge)])
            .output();
    }
}

/// A `10.A.B` prefix, A from 100 to 249, for a /24 that no host route overlaps, starting from
/// one spread by the test process's pid and the test's number, so that parallel tests (and test
/// processes) do not meet.
fn free_subnet(pid: u32, n: u32) -> String {
    const SUBNETS: u32 = 150 * 256;
    let routes = host_routes();
    let start = (pid.wrapping_mul(7919) + n * 131) % SUBNETS;
    for i in (start..SUBNETS).chain(0..start) {
        let candidate = u32::from(Ipv4Addr::new(10, (100 + i / 256) as u8, (i % 256) as u8, 0));
        let clash = routes.iter().any(|&(_, dest, mask)| {
            let both = mask & 0xffff_ff00;
            dest & both == candidate & both
        });
        if !clash {
            let [_, a, b, _] = candidate.to_be_bytes();
            return format!("10.{a}.{b}");
        }
    }
    panic!("no free /24 in 10.100.0.0 to 10.249.255.0: {routes:?}");
}

/// The host's routes but the default ones, as (interface, destination, mask).
fn host_routes() -> Vec<(String, u32, u32)> {
    let text = fs::read_to_string("/proc/net/route").expect("read /proc/net/route");
    let hex = |f: &str| u32::from_be_bytes(u32::from_str_radix(f, 16).unwrap().to_ne_bytes());
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .map(|f| (f[0].to_string(), hex(f[1]), hex(f[7])))
        .filter(|&(_, _, mask)| mask != 0)
        .collect()
}

/// The host's network interfaces.
fn links() -> BTreeSet<String> {
    fs::read_dir("/sys/class/net")
        .expect("read /sys/class/net")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// `nft ARGS`'s output, asserting success.
fn nft(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().expect("run nft (install nftables)");
    assert!(out.status.success(), "nft {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The interface names in a text holding `/proc/net/dev` (the lines `NAME: NUMBERS`).
fn dev_names(proc_net_dev: &str) -> BTreeSet<String> {
    proc_net_dev
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, counts)| {
            !name.trim().is_empty() && counts.trim_start().starts_with(|c: char| c.is_ascii_digit())
        })
        .map(|(name, _)| name.trim().to_string())
        .collect()
}

/// A host port nothing uses right now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0").expect("bind a free port").local_addr().unwrap().port()
}

/// `GET /` from `address` over plain HTTP/1.0; retries while the server is not up yet.
fn http_get(address: &str) -> String {
    let address: SocketAddr = address.parse().expect("an address");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt =
            TcpStream::connect_timeout(&address, Duration::from_secs(2)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(b"GET / HTTP/1.0\r\nHost: boxr\r\n\r\n")?;
                let mut response = String::new();
                s.read_to_string(&mut response)?;
                Ok(response)
            });
        match attempt {
            Ok(response) if response.starts_with("HTTP/1") => return response,
            _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
            other => panic!("GET http://{address}/: {other:?}"),
        }
    }
}

#[test]
fn none_mode_has_only_lo_and_it_is_up() {
    // The default namespaces hold "net" and the config has no [network]: mode "none".
    let out = Config::new().set("hostname", "\"alone\"").sh(
        "cat /proc/net/dev; ip -o link show lo; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping-ok; \
         cat /etc/hostname /etc/hosts",
    );
    let text = out.ok();
    assert_eq!(dev_names(text), BTreeSet::from(["lo".to_string()]), "\n{out}");
    assert!(text.contains("<LOOPBACK,UP,LOWER_UP>"), "lo is not up\n{out}");
    assert!(text.contains("ping-ok"), "\n{out}");
    assert!(text.contains("alone\n127.0.0.1\tlocalhost\n"), "\n{out}");
    assert!(text.contains("127.0.1.1\talone\n"), "\n{out}");

    // --network none gives a config without "net" a network namespace of its own.
    let host_only = Config::new().namespaces(&["pid", "mount", "uts", "ipc"]);
    let scratch = Scratch::new("none-flag");
    let out = Boxr::run(&scratch.config(&host_only))
        .args(["--network", "none"])
        .command(&["cat", "/proc/net/dev"])
        .output();
    assert_eq!(dev_names(out.ok()), BTreeSet::from(["lo".to_string()]), "\n{out}");
}

#[test]
fn host_mode_sees_the_hosts_interfaces() {
    let before = links();
    let config = Config::new().namespaces(&["pid", "mount", "uts", "ipc"]);
    let inside = dev_names(config.sh("cat /proc/net/dev").ok());
    // --network host takes "net" out of a config's namespaces.
    let scratch = Scratch::new("host-flag");
    let flagged = Boxr::run(&scratch.config(&Config::new()))
        .args(["--network", "host"])
        .command(&["cat", "/proc/net/dev"])
        .output();
    let flagged = dev_names(flagged.ok());
    // Other tests add and remove bridges and veths meanwhile: the others must all be seen.
    let steady: BTreeSet<String> =
        before.intersection(&links()).filter(|l| !l.starts_with("bx")).cloned().collect();
    assert!(steady.len() > 1 && steady.contains("lo"), "{steady:?}");
    assert!(steady.is_subset(&inside), "host: {steady:?}\ncontainer: {inside:?}");
    assert!(steady.is_subset(&flagged), "host: {steady:?}\ncontainer: {flagged:?}");
}

#[test]
fn containers_on_a_bridge_ping_and_fetch_from_each_other() {
    let net = Net::new("bridge-pair");
    let marker = Marker::new();
    let scratch = Scratch::new("bridge-pair-www");
    let www = scratch.write("www/index.html", "served by the first container\n");
    let server =
        Config::new().set("hostname", "\"server\"").bind(www.parent().unwrap(), "/www", true);
    net.configure(&server, "");
    let script = "httpd -p 80 -h /www; echo ready; exec sleep \"$0\"";
    let server_id = net.c.start_sh("server", script, &marker);
    let server_ip = net.address("server");
    assert!(server_ip.starts_with(&format!("{}.", net.prefix)), "{server_ip}");

    net.configure(&Config::new().set("hostname", "\"client\""), "");
    let client = net.c.run(
        &["--name", "client"],
        &[
            "sh",
            "-c",
            &format!(
                "ip -4 -o addr show eth0; ip route; ping -c 1 -W 2 {server_ip} >/dev/null && echo ping-ok; \
                 wget -q -O - http://{server_ip}/; cat /etc/hostname /etc/hosts /etc/resolv.conf"
            ),
        ],
    );
    let out = client.output();
    let text = out.ok();
    // Released when the container exited.
    let released = net.c.inspect("client")["network"].clone();
    assert_eq!(released, Json::Null, "the exited client still holds its address");
    let own = text.lines().next().unwrap_or_default();
    let own_ip = own
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no address on eth0\n{out}"));
    assert!(own.contains(&format!("{own_ip}/24")), "\n{out}");
    assert_ne!(own_ip, server_ip);
    assert!(text.contains(&format!("default via {} dev eth0", net.gateway())), "\n{out}");
    assert!(text.contains("ping-ok\n"), "\n{out}");
    assert!(text.contains("served by the first container\n"), "\n{out}");
    assert!(text.contains("client\n127.0.0.1\tlocalhost\n"), "\n{out}");
    assert!(text.contains(&format!("{own_ip}\tclient\n")), "\n{out}");
    let resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert!(text.ends_with(&resolv), "resolv.conf is not the host's\n{out}");

    assert_eq!(net.c.cmd(&["rm", "-f", "server", "client"]).ok(), "server\nclient\n");
    assert!(net.c.ps(&["-a"]).is_empty());
    net.assert_nothing_left(&[server_id]);
}

/// configs/web.toml with a private rootfs, the absolute path of configs/www, this network's
/// bridge and subnet, and host port `port` instead of 8080.
fn web_toml(net: &Net, rootfs: &Path, port: u16) -> String {
    let original = fs::read_to_string(WEB_TOML).expect("read configs/web.toml");
    let mut text = original.clone();
    for (from, to) in [
        (
            "rootfs = \"../target/rootfs\"".to_string(),
            format!("rootfs = {}", toml_str(rootfs.to_str().unwrap())),
        ),
        ("source = \"www\"".to_string(), format!("source = {}", toml_str(WWW))),
        ("ports = [\"8080:80\"]".to_string(), format!("ports = [\"{port}:80\"]")),
        (
            "[network]\n".to_string(),
            format!(
                "[network]\nbridge = {}\nsubnet = {}\n",
                toml_str(&net.bridge),
                toml_str(&net.subnet())
            ),
        ),
    ] {
        assert!(text.contains(&from), "configs/web.toml has no {from:?}:\n{original}");
        text = text.replacen(&from, &to, 1);
    }
    text
}

#[test]
fn web_config_is_reached_through_its_published_port_on_loopback_and_the_bridge() {
    let net = Net::new("web");
    let scratch = Scratch::new("web-rootfs");
    let rootfs = scratch.private_rootfs();
    let port = free_port();
    fs::write(net.c.config_path(), web_toml(&net, &rootfs, port)).unwrap();
    let out = net
        .c
        .boxr()
        .args(["run", "-d", "--name", "web", "--config"])
        .arg(net.c.config_path())
        .output();
    let id = printed_id(&out);
    let page = fs::read_to_string(Path::new(WWW).join("index.html")).unwrap();
    for host in ["127.0.0.1".to_string(), net.gateway()] {
        let response = http_get(&format!("{host}:{port}"));
        assert!(
            response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
            "{response}"
        );
        assert!(response.ends_with(&page), "{host}:{port} answered\n{response}");
    }
    let ls = net.c.cmd(&["network", "ls"]);
    let row = ls.ok().lines().find(|l| l.contains("web")).unwrap_or_else(|| panic!("{ls}"));
    let address = net.address("web");
    for cell in [&net.bridge, &net.subnet(), &address, &format!("{port}:80/tcp")] {
        assert!(
            row.split_whitespace().any(|w| w.trim_end_matches(',') == cell),
            "{cell} not in {row:?}"
        );
    }

    // The port is taken now: a second container publishing it fails before it starts, and
    // leaves nothing behind.
    let second = net
        .c
        .boxr()
        .args(["run", "--name", "second", "--config"])
        .arg(net.c.config_path())
        .output();
    assert_fails(&second, 125, &[&format!("host port {port}/tcp"), "in use"]);
    assert!(net.c.ps_row("second").is_none(), "the failed container was registered");
    let allocated = fs::read_to_string(net.network_file()).expect("the network's file");
    assert_eq!(allocated.matches("\"address\"").count(), 1, "{allocated}");

    assert_eq!(net.c.cmd(&["rm", "-f", "web"]).ok(), "web\n");
    net.assert_nothing_left(&[id]);
    assert!(TcpListener::bind(("0.0.0.0", port)).is_ok(), "the host port is still held");
}

#[test]
fn twenty_parallel_containers_get_distinct_addresses() {
    let net = Net::new("parallel");
    let marker = Marker::new();
    let ids: Vec<String> = thread::scope(|s| {
        let runs: Vec<_> = (0..20)
            .map(|i| {
                let (net, marker) = (&net, &marker);
                s.spawn(move || net.c.start(&format!("p{i}"), &["sleep", marker.as_str()]))
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("a run")).collect()
    });
    let addresses: BTreeSet<String> = (0..20).map(|i| net.address(&format!("p{i}"))).collect();
    assert_eq!(addresses.len(), 20, "{addresses:?}");
    for address in &addresses {
        let host: u8 = address.strip_prefix(&format!("{}.", net.prefix)).unwrap().parse().unwrap();
        assert!((2..255).contains(&host), "{address}");
    }
    // What a container sees is what was recorded.
    let seen = net.c.exec_sh(&[], "p7", "ip -4 -o addr show eth0");
    assert!(seen.ok().contains(&format!("inet {}/24", net.address("p7"))), "{seen}");
    let links = links();
    for id in &ids {
        assert!(links.contains(&format!("bx{}", &id[..12])), "no veth for {id}");
    }

    let rm: Vec<&str> = ["rm", "-f"].into_iter().chain(ids.iter().map(String::as_str)).collect();
    net.c.cmd(&rm).ok();
    net.assert_nothing_left(&ids);
}

#[test]
fn addresses_are_released_when_containers_exit() {
    let net = Net::new("release");
    let first = net.c.start("first", &["true"]);
    net.c.wait_exited("first");
    assert_eq!(net.c.inspect("first")["network"].clone(), Json::Null);
    // Its network went with it: it was the bridge's only container.
    net.assert_nothing_left(&[]);
    let out = net.c.run(&["--rm"], &["sh", "-c", "ip -4 -o addr show eth0"]).output();
    assert!(out.ok().contains(&format!("inet {}.", net.prefix)), "\n{out}");
    assert_eq!(net.c.cmd(&["rm", "first"]).ok(), "first\n");
    net.assert_nothing_left(&[first]);
}

#[test]
fn a_killed_boxr_leaves_nothing_after_the_next_command() {
    let net = Net::new("killed");
    let port = free_port();
    net.configure(&Config::new(), &format!("ports = [\"127.0.0.1:{port}:80\"]\n"));
    let mut running = net
        .c
        .boxr()
        .args(["run", "--config"])
        .arg(net.c.config_path())
        .command(&["sh", "-c", "echo ready; exec sleep 600"])
        .spawn();
    running.wait_for_line("ready");
    let ruleset = nft(&["list", "table", "ip", &format!("boxr-{}", net.bridge)]);
    assert!(ruleset.contains(&format!("127.0.0.1 . tcp . {port}")), "{ruleset}");
    let short_id = net.c.ps(&[])[0].id.clone();
    running.signal("KILL");
    running.wait();
    // Its init died with it, and its eth0 with its namespace; the rest waits for a command.
    assert!(net.network_file().exists());
    assert!(links().contains(&net.bridge));

    // The init may take an instant to die after boxr.
    eventually(10, "ps shows the container exited", || {
        net.c.ps(&["-a"]).iter().all(|row| row.status == "exited (unknown)")
    });
    net.assert_nothing_left(&[]);
    assert!(!links().contains(&format!("bx{short_id}")));
    assert!(TcpListener::bind(("127.0.0.1", port)).is_ok(), "the host port is still held");
}

#[test]
fn network_settings_are_checked_before_anything_starts() {
    let net = Net::new("checks");
    let run = |flags: &[&str]| net.c.run(flags, &["true"]).output();
    let out = run(&["--network", "none", "-p", "8080:80"]);
    assert_fails(&out, 125, &["-p 8080:80", "needs bridge mode", "\"none\""]);
    let out = run(&["--network", "bridged"]);
    assert_fails(&out, 125, &["--network", "unknown network mode \"bridged\""]);
    let out = run(&["-p", "8080:99999"]);
    assert_fails(&out, 125, &["-p 8080:99999", "container port \"99999\""]);

    // A subnet the host routes already (not through a bridge of another test, which may go).
    let (_, dest, mask) = host_routes()
        .into_iter()
        .find(|(iface, _, _)| !iface.starts_with("bx"))
        .expect("the host has a route besides the default one");
    let taken = format!("{}/{}", Ipv4Addr::from(dest), mask.count_ones());
    let text = format!(
        "{}\n[network]\nbridge = {}\nsubnet = {}\n",
        Config::new().render(),
        toml_str(&net.bridge),
        toml_str(&taken)
    );
    fs::write(net.c.config_path(), &text).unwrap();
    let out = run(&[]);
    let line = assert_fails(&out, 125, &["network.subnet", "overlaps the host's route"]);
    assert!(line.contains(&format!("{}:", net.c.config_path().display())), "{line}");

    let namespaces = format!("{}\n", toml_array(&DEFAULT_NAMESPACES[..4]));
    net.configure(&Config::new().set("namespaces", namespaces.trim()), "");
    let out = run(&[]);
    assert_fails(&out, 125, &["needs the \"net\" namespace"]);
    assert!(net.c.ps(&["-a"]).is_empty(), "a refused run registered a container");
    net.assert_nothing_left(&[]);
}
