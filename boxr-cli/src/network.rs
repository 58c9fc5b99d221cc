//! Container networking: the modes, the checked `[network]` settings, and what bridge mode puts
//! on the host, from allocation to teardown.
//!
//! - `host`: no network namespace; nothing to do.
//! - `none`: a network namespace of its own with `lo`, which boxr-init brings up before the
//!   workload starts.
//! - `bridge`: `none` plus a veth pair from the bridge (created with the network's first
//!   container, with the subnet's first address; removed with its last) to the container's
//!   `eth0`, an address from the subnet ([`ipam`]), a default route via the bridge, and the
//!   bridge's nftables table ([`nft`]) masquerading outbound traffic and publishing ports.
//!
//! The order, for a bridge-mode `boxr run`: [`ports::reserve`] (before anything else, so a port
//! in use leaves nothing), [`allocate`] (after the container's state exists: the allocation is
//! keyed by its id), then, from `spawn`'s `while_setting_up` (while the init sets up, before it
//! starts the workload), [`attach`]: the veth pair, the container's side configured through a netlink socket opened in
//! its namespace, the published ports. [`release`] undoes it all when the container has exited
//! or is removed; [`reconcile`] (run before each allocation and by `boxr network ls`) releases
//! what containers that are gone without a word (a killed boxr) still hold.

use crate::config::{Config, Namespace};
use crate::errno::describe;
use crate::ipam::{Allocation, BridgeNetwork, Networks, Subnet};
use crate::netlink::Netlink;
use crate::plan::GeneratedFile;
use crate::ports::{self, PortMapping};
use crate::state::{ContainerState, Status, Store};
use crate::{lifecycle, nft, paths, storage};
use anyhow::{Context, Result, anyhow, bail};
use rustix::fd::AsFd;
use rustix::process::Pid;
use serde::{Deserialize, Serialize};
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

pub const DEFAULT_BRIDGE: &str = "boxr0";

/// The longest interface name Linux takes (`IFNAMSIZ` less the NUL).
const MAX_INTERFACE_NAME: usize = 15;

/// Subnets tried, in order, for a bridge whose config names none: the first that no host route
/// and no other network of the state root uses.
fn default_subnets() -> impl Iterator<Item = Subnet> {
    (17..=31).map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    None,
    Host,
    Bridge,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "none" => Some(Mode::None),
            "host" => Some(Mode::Host),
            "bridge" => Some(Mode::Bridge),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Host => "host",
            Mode::Bridge => "bridge",
        }
    }
}

/// The checked `[network]` settings (with `--network` and `-p` applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    /// The bridge's name (bridge mode).
    pub bridge: String,
    /// The bridge's subnet, when the config gives one.
    pub subnet: Option<Subnet>,
    pub ports: Vec<PortMapping>,
}

/// A container's place on its bridge network, as recorded in its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub bridge: String,
    pub subnet: Subnet,
    pub address: Ipv4Addr,
    /// The host end of its veth pair.
    pub veth: String,
    pub ports: Vec<PortMapping>,
}

/// Bridge names: letters, digits, `_` and `-`, starting with a letter, at most 15 characters
/// (an interface name, also naming the bridge's nftables table and state file).
pub fn check_bridge_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= MAX_INTERFACE_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(format!(
            "bridge name {name:?}: use 1 to {MAX_INTERFACE_NAME} letters, digits, '_' and '-', starting with a letter"
        ));
    }
    Ok(())
}

/// Refuses a subnet that overlaps a route of the host's other than the bridge's own.
pub fn check_subnet_free(subnet: Subnet, bridge: &str) -> Result<(), String> {
    match clash(subnet, bridge, &host_routes()) {
        Some((iface, route)) => Err(format!(
            "subnet {subnet} overlaps the host's route to {route} via {iface}: choose a subnet the host does not use"
        )),
        None => Ok(()),
    }
}

fn clash<'a>(
    subnet: Subnet,
    bridge: &str,
    routes: &'a [(String, Subnet)],
) -> Option<&'a (String, Subnet)> {
    routes.iter().find(|(iface, route)| iface != bridge && route.overlaps(&subnet))
}

/// The host's IPv4 routes but the default ones, as (interface, destination).
fn host_routes() -> Vec<(String, Subnet)> {
    parse_routes(&fs::read_to_string("/proc/net/route").unwrap_or_default())
}

/// Parses /proc/net/route: destination and mask are hex of the address's bytes in host order.
fn parse_routes(text: &str) -> Vec<(String, Subnet)> {
    let hex =
        |field: &str| u32::from_str_radix(field, 16).ok().map(|v| Ipv4Addr::from(v.to_ne_bytes()));
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (destination, mask) = (hex(fields.get(1)?)?, hex(fields.get(7)?)?);
            let prefix = mask.to_bits().count_ones() as u8;
            (prefix > 0).then(|| (fields[0].to_string(), Subnet::new(destination, prefix)))
        })
        .collect()
}

/// The host end of a container's veth pair: `bx` and the first 12 characters of its id.
fn veth_name(id: &str) -> String {
    format!("bx{}", &id[..12])
}

/// Whether the container may still be using what it was given: it is not recorded as exited
/// and a process still answers for it ([`lifecycle::supervised`]). Its state is read again
/// after finding its processes gone, until it is the same: a monitor that handed over to another
/// (`boxr run -d` to its detached monitor) writes that before it exits.
fn in_use(store: &Store, mut state: ContainerState) -> bool {
    loop {
        if state.status == Status::Exited {
            return false;
        }
        if lifecycle::supervised(&state) {
            return true;
        }
        // Gone meanwhile: removed, and so released.
        let Ok(again) = store.load(&state.id) else { return false };
        if (again.status, again.monitor, again.init) == (state.status, state.monitor, state.init) {
            return false;
        }
        state = again;
    }
}

/// The state root's networks, if it has any (none is created just to look).
fn existing_networks(store: &Store) -> Result<Option<Networks>> {
    if store.root().join("network").is_dir() {
        Networks::open(store.root()).map(Some)
    } else {
        Ok(None)
    }
}

/// Bridge mode: gives the container an address on its bridge network, first creating the
/// network (bridge, address, nftables table) if this is its first container. Releases what
/// containers that are gone still hold first.
pub fn allocate(
    store: &Store,
    state: &ContainerState,
    settings: &Settings,
) -> Result<Option<Attachment>> {
    if settings.mode != Mode::Bridge {
        return Ok(None);
    }
    let networks = Networks::open(store.root())?;
    let _lock = networks.lock()?;
    reconcile_locked(store, &networks)?;
    let bridge = settings.bridge.as_str();
    let (mut network, new) = match networks.load(bridge)? {
        Some(network) => {
            if let Some(asked) = settings.subnet.filter(|s| *s != network.subnet) {
                bail!(
                    "bridge {bridge} has subnet {} (given by the container that created it); this config asks for {asked}: use {} or another bridge name",
                    network.subnet,
                    network.subnet
                );
            }
            (network, false)
        }
        None => {
            let subnet = match settings.subnet {
                Some(subnet) => subnet,
                None => default_subnet(&networks, bridge)?,
            };
            let network = BridgeNetwork::new(bridge, subnet);
            // Written first: a boxr killed while creating the bridge leaves it findable.
            networks.save(&network)?;
            (network, true)
        }
    };
    // An existing network's bridge is made again if it was deleted by hand.
    let missing = || -> Result<bool> {
        let index = host_netlink()?.link_index(bridge);
        Ok(netlink_do(index, || format!("cannot look up the bridge {bridge}"))?.is_none())
    };
    if (new || missing()?)
        && let Err(e) = create_bridge(&network, store.root())
    {
        if new {
            networks.remove(bridge)?;
        }
        return Err(e);
    }
    let allocation = network.allocate(&state.id, veth_name(&state.id), settings.ports.clone())?;
    networks.save(&network)?;
    Ok(Some(Attachment {
        bridge: network.bridge,
        subnet: network.subnet,
        address: allocation.address,
        veth: allocation.veth,
        ports: allocation.ports,
    }))
}

fn default_subnet(networks: &Networks, bridge: &str) -> Result<Subnet> {
    let routes = host_routes();
    let others: Vec<Subnet> = networks.list()?.into_iter().map(|n| n.subnet).collect();
    default_subnets()
        .find(|s| clash(*s, bridge, &routes).is_none() && !others.iter().any(|o| o.overlaps(s)))
        .ok_or_else(|| {
            anyhow!("no free subnet for bridge {bridge} among 172.17.0.0/16 to 172.31.0.0/16: set [network] subnet")
        })
}

/// Creates the network's bridge and the rest the network needs on the host; on a failure, what
/// it created is removed again. An interface of the bridge's name that is there already is not
/// boxr's (the network's file would say so): an error, and left alone.
fn create_bridge(network: &BridgeNetwork, root: &Path) -> Result<()> {
    let bridge = network.bridge.as_str();
    let mut netlink = host_netlink()?;
    let mut mac = [0u8; 6];
    rustix::rand::getrandom(&mut mac, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| anyhow!("cannot get random bytes: {}", describe(&e.into())))?;
    // Unicast, locally administered.
    mac[0] = (mac[0] & 0xfe) | 0x02;
    match netlink.create_bridge(bridge, mac) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => bail!(
            "cannot create the bridge {bridge}: the host has a network interface of that name that is not a boxr bridge of {}: choose another [network] bridge name",
            root.display()
        ),
        other => netlink_do(other, || format!("cannot create the bridge {bridge}"))?,
    }
    let configured = configure_bridge(network, &mut netlink);
    if configured.is_err() {
        let _ = remove_bridge(bridge);
    }
    configured
}

/// The bridge's address, its sysctls and its nftables table.
fn configure_bridge(network: &BridgeNetwork, netlink: &mut Netlink) -> Result<()> {
    let bridge = network.bridge.as_str();
    let index =
        netlink_do(netlink.link_index(bridge), || format!("cannot look up the bridge {bridge}"))?
            .ok_or_else(|| anyhow!("the bridge {bridge} vanished right after it was created"))?;
    let gateway = network.subnet.gateway();
    netlink_do(netlink.add_address(index, gateway, network.subnet.prefix()), || {
        format!("cannot give the bridge {bridge} the address {gateway}")
    })?;
    // Lets the host's 127.0.0.1 reach published ports: DNATed, such connections leave through
    // the bridge with a loopback source (masqueraded by the table).
    write_sysctl(&format!("net/ipv4/conf/{bridge}/route_localnet"), "1")?;
    // Routing between the bridge and the rest: outbound traffic, and a container reaching a
    // port published by the host. Host-wide, and left on (other things may rely on it).
    if fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "0") {
        write_sysctl("net/ipv4/ip_forward", "1")?;
    }
    nft::apply(&nft::create_table(bridge, network.subnet))
        .with_context(|| format!("cannot create the nftables table of bridge {bridge}"))
}

fn write_sysctl(name: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(name);
    fs::write(&path, value)
        .map_err(|e| anyhow!("cannot write {}: {}", path.display(), describe(&e)))
}

/// Deletes the bridge and its nftables table (each even if the other fails); missing ones are
/// fine.
fn remove_bridge(bridge: &str) -> Result<()> {
    let table = nft::apply(&nft::delete_table(bridge))
        .with_context(|| format!("cannot delete the nftables table of bridge {bridge}"));
    let link = host_netlink().and_then(|mut netlink| {
        netlink_do(netlink.delete_link(bridge), || format!("cannot delete the bridge {bridge}"))
    });
    table.and(link.map(drop))
}

fn host_netlink() -> Result<Netlink> {
    Netlink::open().map_err(|e| anyhow!("cannot open a netlink socket: {}", describe(&e)))
}

/// A netlink result with the error worded: `what` and the errno's text.
fn netlink_do<T>(result: std::io::Result<T>, what: impl FnOnce() -> String) -> Result<T> {
    result.map_err(|e| anyhow!("{}: {}", what(), describe(&e)))
}

/// From `spawn`'s `while_setting_up`: in bridge mode, sets up the network namespace of the
/// container whose init is `pid` before the workload runs: `eth0` on the bridge with its
/// address and default route, and its published ports. (The init brings `lo` up itself.)
pub fn attach(state: &ContainerState, pid: Pid) -> Result<()> {
    let Some(a) = &state.network else { return Ok(()) };
    let path = format!("/proc/{}/ns/net", pid.as_raw_nonzero());
    let netns = fs::File::open(&path).map_err(|e| {
        anyhow!("cannot open the container's network namespace {path}: {}", describe(&e))
    })?;
    let mut inside = Netlink::open_in(netns.as_fd()).map_err(|e| {
        anyhow!(
            "cannot open a netlink socket in the container's network namespace: {}",
            describe(&e)
        )
    })?;
    let mut host = host_netlink()?;
    let bridge = netlink_do(host.link_index(&a.bridge), || {
        format!("cannot look up the bridge {}", a.bridge)
    })?
    .ok_or_else(|| {
        anyhow!("the bridge {} is gone (deleted by hand?): run the container again", a.bridge)
    })?;
    netlink_do(host.create_veth(&a.veth, bridge, "eth0", netns.as_fd()), || {
        format!("cannot create the veth pair {} on bridge {}", a.veth, a.bridge)
    })?;
    let eth0 = netlink_do(inside.link_index("eth0"), || {
        "cannot look up the container's eth0".to_string()
    })?
    .ok_or_else(|| anyhow!("the container's eth0 vanished right after it was created"))?;
    netlink_do(inside.add_address(eth0, a.address, a.subnet.prefix()), || {
        format!("cannot give the container's eth0 the address {}", a.address)
    })?;
    netlink_do(inside.set_up(eth0), || "cannot bring the container's eth0 up".to_string())?;
    let gateway = a.subnet.gateway();
    netlink_do(inside.add_default_route(gateway), || {
        format!("cannot add the container's default route via {gateway}")
    })?;
    if !a.ports.is_empty() {
        nft::apply(&nft::add_ports(&a.bridge, a.address, &a.ports))
            .context("cannot publish the container's ports")?;
    }
    Ok(())
}

/// Releases everything container `id` holds on bridge networks of the state root: its veth,
/// its published ports, its address, and the bridge with its table if it was the last one there.
/// Idempotent; for containers that are not running.
pub fn release(store: &Store, id: &str) -> Result<()> {
    let Some(networks) = existing_networks(store)? else { return Ok(()) };
    let _lock = networks.lock()?;
    for mut network in networks.list()? {
        if let Some(allocation) = network.containers.remove(id) {
            release_allocation(&networks, &network, &[(id.to_string(), allocation)])?;
        }
    }
    Ok(())
}

/// Releases what containers hold that no longer run (their boxr was killed, or their state is
/// gone), and networks without containers.
pub fn reconcile(store: &Store) -> Result<()> {
    let Some(networks) = existing_networks(store)? else { return Ok(()) };
    let _lock = networks.lock()?;
    reconcile_locked(store, &networks)
}

/// [`reconcile`], under the networks' lock: every allocation made before it was taken has its
/// container's state written already, so a container being started is never taken for gone.
fn reconcile_locked(store: &Store, networks: &Networks) -> Result<()> {
    let states = store.list()?;
    for mut network in networks.list()? {
        let stale: Vec<(String, Allocation)> = network
            .containers
            .iter()
            .filter(|(id, _)| !states.iter().any(|s| &s.id == *id && in_use(store, s.clone())))
            .map(|(id, a)| (id.clone(), a.clone()))
            .collect();
        if stale.is_empty() && !network.containers.is_empty() {
            continue;
        }
        for (id, _) in &stale {
            network.containers.remove(id);
        }
        release_allocation(networks, &network, &stale)?;
    }
    Ok(())
}

/// Deletes the veths and withdraws the ports of `released` (already out of `network`), then
/// saves the network, or removes it with its bridge if no container is left.
fn release_allocation(
    networks: &Networks,
    network: &BridgeNetwork,
    released: &[(String, Allocation)],
) -> Result<()> {
    let bridge = network.bridge.as_str();
    let mut netlink = host_netlink()?;
    for (_, allocation) in released {
        netlink_do(netlink.delete_link(&allocation.veth), || {
            format!("cannot delete the veth {}", allocation.veth)
        })?;
    }
    if network.containers.is_empty() {
        remove_bridge(bridge)?;
        return networks.remove(bridge);
    }
    for (id, allocation) in released.iter().filter(|(_, a)| !a.ports.is_empty()) {
        let withdrawn =
            nft::apply(&nft::delete_ports(bridge, allocation.address, &allocation.ports));
        // The table may be gone already (deleted by hand): then so are the ports.
        if let Err(e) = withdrawn
            && nft::table_exists(bridge)?
        {
            return Err(e.context(format!("cannot withdraw the published ports of container {id}")));
        }
    }
    networks.save(network)
}

/// `boxr network ls`: each container on a bridge network of the state root, after releasing
/// what containers that are gone still held.
pub fn ls(store: &Store) -> Result<()> {
    reconcile(store)?;
    let networks = match existing_networks(store)? {
        Some(networks) => networks.list()?,
        None => Vec::new(),
    };
    print!("{}", table(&networks, &store.list()?));
    Ok(())
}

fn table(networks: &[BridgeNetwork], states: &[ContainerState]) -> String {
    let mut rows = vec![["BRIDGE", "SUBNET", "CONTAINER", "ADDRESS", "PORTS"].map(String::from)];
    for network in networks {
        for (id, a) in &network.containers {
            let name =
                states.iter().find(|s| &s.id == id).map_or(id.get(..12).unwrap_or(id), |s| &s.name);
            let ports: Vec<String> = a.ports.iter().map(ToString::to_string).collect();
            rows.push([
                network.bridge.clone(),
                network.subnet.to_string(),
                name.to_string(),
                a.address.to_string(),
                if ports.is_empty() { "-".to_string() } else { ports.join(", ") },
            ]);
        }
    }
    let mut widths = [0; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in &rows {
        let cells: Vec<String> =
            row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        text.push_str(cells.join("   ").trim_end());
        text.push('\n');
    }
    text
}

/// The host-side port reservation for the container's published ports (none outside bridge
/// mode).
pub fn reserve_ports(settings: &Settings) -> Result<ports::Reservation> {
    ports::reserve(&settings.ports)
}

/// A file boxr writes for the container and binds over the rootfs's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EtcFile {
    /// The path inside the container.
    pub destination: &'static str,
    pub contents: String,
}

/// The container's `/etc/hostname` and `/etc/hosts` (with a network namespace of its own) and
/// `/etc/resolv.conf` (bridge mode, the host's).
fn etc_files(config: &Config, attachment: Option<&Attachment>) -> Result<Vec<EtcFile>> {
    if !config.has(Namespace::Net) {
        return Ok(Vec::new());
    }
    let hostname = match &config.hostname {
        Some(name) => name.clone(),
        None => rustix::system::uname().nodename().to_string_lossy().into_owned(),
    };
    let address = attachment.map_or(Ipv4Addr::new(127, 0, 1, 1), |a| a.address);
    let mut files = vec![
        EtcFile { destination: "/etc/hostname", contents: format!("{hostname}\n") },
        EtcFile { destination: "/etc/hosts", contents: hosts(&hostname, address) },
    ];
    if attachment.is_some() {
        files.push(EtcFile { destination: "/etc/resolv.conf", contents: host_resolv_conf()? });
    }
    Ok(files)
}

fn hosts(hostname: &str, address: Ipv4Addr) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{address}\t{hostname}\n"
    )
}

/// The host's resolv.conf; when it only names resolvers on the host's loopback (a local stub
/// such as systemd-resolved's, unreachable from the container), the stub's upstream list.
fn host_resolv_conf() -> Result<String> {
    let read = |path: &str| match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("cannot read the host's {path}: {}", describe(&e))),
    };
    let host = read("/etc/resolv.conf")?.unwrap_or_default();
    if only_loopback_resolvers(&host)
        && let Some(upstream) = read("/run/systemd/resolve/resolv.conf")?
    {
        return Ok(upstream);
    }
    Ok(host)
}

fn only_loopback_resolvers(resolv_conf: &str) -> bool {
    let servers: Vec<&str> = resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    !servers.is_empty()
        && servers.iter().all(|s| s.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

/// Writes the container's generated files into its storage directory `dir` and pairs each with
/// its target in the rootfs (resolved through the rootfs's symlinks, as mount destinations are),
/// for the plan to bind. A file the config mounts something on itself is left to that mount.
pub fn etc_binds(
    dir: &Path,
    config: &Config,
    attachment: Option<&Attachment>,
) -> Result<Vec<GeneratedFile>> {
    let mut binds = Vec::new();
    for file in etc_files(config, attachment)? {
        if config.mounts.iter().any(|m| m.destination == file.destination) {
            continue;
        }
        let target = paths::resolve_in_rootfs(&config.rootfs, file.destination).map_err(|e| {
            anyhow!("{} in the rootfs {}: {e}", file.destination, config.rootfs.display())
        })?;
        let source = storage::write_generated(dir, file.destination, &file.contents)?;
        binds.push(GeneratedFile { source, target });
    }
    Ok(binds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        for mode in [Mode::None, Mode::Host, Mode::Bridge] {
            assert_eq!(Mode::parse(mode.name()), Some(mode));
        }
        assert_eq!(Mode::parse("Bridge"), None);
    }

    #[test]
    fn bridge_names_are_interface_names() {
        for ok in ["boxr0", "b", "br_1-x", "abcdefghijklmno"] {
            assert_eq!(check_bridge_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "0br", "-br", "br.0", "br 0", "br/0", "abcdefghijklmnop"] {
            assert!(check_bridge_name(bad).unwrap_err().contains("1 to 15 letters"), "{bad:?}");
        }
    }

    #[test]
    fn routes_are_read_from_proc_net_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    br7\t0000070A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        if cfg!(target_endian = "little") {
            let routes = parse_routes(text);
            let subnet = |s: &str| Subnet::parse(s).unwrap();
            assert_eq!(
                routes,
                [
                    ("eth0".to_string(), subnet("192.0.2.0/24")),
                    ("br7".to_string(), subnet("10.7.0.0/16"))
                ]
            );
            assert_eq!(clash(subnet("192.0.0.0/16"), "br7", &routes), Some(&routes[0]));
            assert_eq!(clash(subnet("10.7.1.0/24"), "br7", &routes), None);
            assert_eq!(clash(subnet("10.7.1.0/24"), "br8", &routes), Some(&routes[1]));
            assert_eq!(clash(subnet("172.17.0.0/16"), "br8", &routes), None);
        }
    }

    #[test]
    fn veths_are_named_after_the_container() {
        assert_eq!(veth_name(&"0123456789abcdef".repeat(4)), "bx0123456789ab");
        assert!(veth_name(&"f".repeat(64)).len() <= MAX_INTERFACE_NAME);
    }

    #[test]
    fn ls_lists_containers_by_name() {
        let mut network = BridgeNetwork::new("br7", Subnet::parse("10.7.0.0/24").unwrap());
        let (web, gone) = ("a".repeat(64), "b".repeat(64));
        let port = PortMapping::parse("8080:80").unwrap();
        network.allocate(&web, veth_name(&web), vec![port, port]).unwrap();
        network.allocate(&gone, veth_name(&gone), vec![]).unwrap();
        let states = [ContainerState::for_test(web, "web".into())];
        assert_eq!(
            table(&[network], &states),
            "BRIDGE   SUBNET        CONTAINER      ADDRESS    PORTS\n\
             br7      10.7.0.0/24   web            10.7.0.2   8080:80/tcp, 8080:80/tcp\n\
             br7      10.7.0.0/24   bbbbbbbbbbbb   10.7.0.3   -\n"
        );
    }

    #[test]
    fn hosts_maps_the_hostname_to_the_address() {
        assert_eq!(
            hosts("web", Ipv4Addr::new(10, 7, 0, 2)),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.7.0.2\tweb\n"
        );
    }

    #[test]
    fn a_local_stub_resolver_is_recognised() {
        assert!(only_loopback_resolvers("nameserver 127.0.0.53\noptions edns0\n"));
        assert!(only_loopback_resolvers("nameserver ::1\n"));
        assert!(!only_loopback_resolvers("nameserver 127.0.0.53\nnameserver 192.0.2.1\n"));
        assert!(!only_loopback_resolvers("search example.org\n"));
    }
}
