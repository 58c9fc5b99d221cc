//! boxr's nftables rules: one table per bridge, `ip boxr-<bridge>`, made with the bridge and
//! deleted with it, so that boxr never touches a table it did not make.
//!
//! The table masquerades the subnet's traffic leaving through any other interface, and
//! publishes ports by DNAT through two maps, `ports_any` (`proto . port`, on every host address)
//! and `ports_addr` (`address . proto . port`, on one), consulted for traffic to a local address
//! both from outside (`prerouting`) and from the host itself (`output`). A container's ports are
//! elements of these maps, added and deleted by key: no rule handles to keep. Connections from
//! the host's `127.0.0.1` leave through the bridge thanks to `route_localnet` on it, and are
//! masqueraded to the bridge's address so that the container can answer; so are connections a
//! container makes to a port published by the same bridge (hairpin).
//!
//! The scripts go to `nft -f -`, each applied as one transaction: all or nothing.

use crate::errno::describe;
use crate::ipam::Subnet;
use crate::ports::PortMapping;
use anyhow::{Result, anyhow, bail};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The table of `bridge`.
pub fn table(bridge: &str) -> String {
    format!("boxr-{bridge}")
}

/// Creates the table of `bridge` afresh (a leftover one is replaced).
pub fn create_table(bridge: &str, subnet: Subnet) -> String {
    let table = table(bridge);
    format!(
        "add table ip {table}
delete table ip {table}
table ip {table} {{
	map ports_any {{
		type inet_proto . inet_service : ipv4_addr . inet_service
	}}
	map ports_addr {{
		type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
	}}
	chain published {{
		dnat to ip daddr . meta l4proto . th dport map @ports_addr
		dnat to meta l4proto . th dport map @ports_any
	}}
	chain prerouting {{
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump published
	}}
	chain output {{
		type nat hook output priority -100; policy accept;
		fib daddr type local jump published
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr {subnet} oifname != \"{bridge}\" masquerade
		oifname \"{bridge}\" ip saddr 127.0.0.0/8 masquerade
		oifname \"{bridge}\" ip saddr {subnet} ct status dnat masquerade
	}}
}}
"
    )
}

/// Deletes the table of `bridge`, if there is one.
pub fn delete_table(bridge: &str) -> String {
    let table = table(bridge);
    format!("add table ip {table}\ndelete table ip {table}\n")
}

/// The map element publishing `port` to `address`: (map, key, value).
fn element(port: &PortMapping, address: Ipv4Addr) -> (&'static str, String, String) {
    let proto = port.protocol.name();
    let value = format!("{address} . {}", port.container_port);
    match port.host_ip {
        Some(ip) => ("ports_addr", format!("{ip} . {proto} . {}", port.host_port), value),
        None => ("ports_any", format!("{proto} . {}", port.host_port), value),
    }
}

/// Publishes `ports` of the container at `address`.
pub fn add_ports(bridge: &str, address: Ipv4Addr, ports: &[PortMapping]) -> String {
    let table = table(bridge);
    let mut script = String::new();
    for port in ports {
        let (map, key, value) = element(port, address);
        let _ = writeln!(script, "add element ip {table} {map} {{ {key} : {value} }}");
    }
    script
}

/// Withdraws `ports` of the container at `address`; elements already gone are fine (each is
/// added before it is deleted, in the same transaction).
pub fn delete_ports(bridge: &str, address: Ipv4Addr, ports: &[PortMapping]) -> String {
    let table = table(bridge);
    let mut script = add_ports(bridge, address, ports);
    for port in ports {
        let (map, key, _) = element(port, address);
        let _ = writeln!(script, "delete element ip {table} {map} {{ {key} }}");
    }
    script
}

/// Whether the table of `bridge` exists.
pub fn table_exists(bridge: &str) -> Result<bool> {
    let out = nft().args(["list", "table", "ip", &table(bridge)]).stdout(Stdio::null()).output();
    let out = out.map_err(|e| not_runnable(&e))?;
    Ok(out.status.success())
}

/// Applies `script` with `nft -f -`.
pub fn apply(script: &str) -> Result<()> {
    let mut child = nft()
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| not_runnable(&e))?;
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(script.as_bytes()));
    let out = child.wait_with_output().map_err(|e| anyhow!("cannot run nft: {}", describe(&e)))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        bail!("nft failed to change boxr's nftables rules ({}): {first}", out.status);
    }
    if let Some(Err(e)) = written {
        bail!("cannot send the rules to nft: {}", describe(&e));
    }
    Ok(())
}

/// `nft` from `PATH`, or from the sbin directories a `PATH` without them misses.
fn nft() -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    let program = dirs.map(|d| d.join("nft")).find(|p| p.is_file()).unwrap_or_else(|| "nft".into());
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null());
    cmd
}

fn not_runnable(e: &std::io::Error) -> anyhow::Error {
    anyhow!(
        "cannot run nft, which bridge networking needs: {} (install Debian's nftables package)",
        describe(e)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Vec<PortMapping> {
        ["8080:80", "127.0.0.1:5353:53/udp"]
            .iter()
            .map(|p| PortMapping::parse(p).unwrap())
            .collect()
    }

    #[test]
    fn the_table_masquerades_the_subnet_and_dnats_published_ports() {
        let script = create_table("br7", Subnet::parse("10.7.0.0/24").unwrap());
        assert!(
            script.starts_with("add table ip boxr-br7\ndelete table ip boxr-br7\n"),
            "{script}"
        );
        for line in [
            "table ip boxr-br7 {",
            "dnat to meta l4proto . th dport map @ports_any",
            "dnat to ip daddr . meta l4proto . th dport map @ports_addr",
            "type nat hook prerouting priority dstnat; policy accept;",
            "type nat hook output priority -100; policy accept;",
            "fib daddr type local jump published",
            "ip saddr 10.7.0.0/24 oifname != \"br7\" masquerade",
            "oifname \"br7\" ip saddr 127.0.0.0/8 masquerade",
            "oifname \"br7\" ip saddr 10.7.0.0/24 ct status dnat masquerade",
        ] {
            assert!(script.lines().any(|l| l.trim() == line), "no {line:?} in\n{script}");
        }
        assert_eq!(delete_table("br7"), "add table ip boxr-br7\ndelete table ip boxr-br7\n");
    }

    #[test]
    fn ports_are_map_elements_added_and_deleted_by_key() {
        let address = Ipv4Addr::new(10, 7, 0, 2);
        let add = add_ports("br7", address, &ports());
        assert_eq!(
            add,
            "add element ip boxr-br7 ports_any { tcp . 8080 : 10.7.0.2 . 80 }\n\
             add element ip boxr-br7 ports_addr { 127.0.0.1 . udp . 5353 : 10.7.0.2 . 53 }\n"
        );
        let delete = delete_ports("br7", address, &ports());
        assert_eq!(
            delete,
            format!(
                "{add}delete element ip boxr-br7 ports_any {{ tcp . 8080 }}\n\
                 delete element ip boxr-br7 ports_addr {{ 127.0.0.1 . udp . 5353 }}\n"
            )
        );
        assert_eq!(add_ports("br7", address, &[]), "");
    }
}
