//! Address allocation on bridge networks, race-free across boxr processes.
//!
//! Each bridge network of a state root is one file, `<root>/network/<bridge>.json`: its subnet
//! and, per container id, the address, host-side veth and published ports it was given. Every
//! read-modify-write of these files (and the creation and removal of the bridges themselves)
//! happens under one lock, `<root>/network/lock`, which is never removed; a network's file is
//! removed with its last container. The file is written before anything is created on the host
//! for it, so whatever a killed boxr created is found again from it.

use crate::errno::describe;
use crate::ports::PortMapping;
use crate::state::{self, Lock, write_json_atomically};
use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// An IPv4 network in CIDR form, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

/// The shortest prefix boxr takes for a bridge (a /8 holds more containers than anyone needs).
const MIN_PREFIX: u8 = 8;
/// The longest: a /30 holds the gateway and one container.
const MAX_PREFIX: u8 = 30;

impl Subnet {
    /// Parses `a.b.c.d/len` as a bridge subnet: /8 to /30, without host bits.
    pub fn parse(text: &str) -> Result<Subnet, String> {
        let bad =
            || format!("subnet {text:?} is not of the form a.b.c.d/len, e.g. \"10.88.0.0/16\"");
        let (addr, len) = text.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        if !(MIN_PREFIX..=MAX_PREFIX).contains(&prefix) {
            return Err(format!(
                "subnet {text:?}: the prefix length must be {MIN_PREFIX} to {MAX_PREFIX} (room for the bridge and its containers)"
            ));
        }
        let subnet = Subnet::new(addr, prefix);
        if subnet.network != addr {
            return Err(format!("subnet {text:?} has host bits set: did you mean \"{subnet}\"?"));
        }
        Ok(subnet)
    }

    /// The subnet of `prefix` bits holding `addr`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        Subnet { network: Ipv4Addr::from(addr.to_bits() & mask(prefix)), prefix }
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        addr.to_bits() & mask(self.prefix) == self.network.to_bits()
    }

    /// Whether the two share any address (one holds the other).
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let shorter = self.prefix.min(other.prefix);
        (self.network.to_bits() ^ other.network.to_bits()) & mask(shorter) == 0
    }

    /// The bridge's own address: the first in the subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network.to_bits() + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network.to_bits() | !mask(self.prefix))
    }

    /// The addresses containers may get: all but the network, the gateway and the broadcast.
    fn container_range(&self) -> (u32, u32) {
        (self.network.to_bits() + 2, self.broadcast().to_bits() - 1)
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Subnet::parse(&text)
    }
}

impl From<Subnet> for String {
    fn from(subnet: Subnet) -> String {
        subnet.to_string()
    }
}

/// What one container got on a bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub address: Ipv4Addr,
    /// The host end of its veth pair.
    pub veth: String,
    pub ports: Vec<PortMapping>,
}

/// A bridge network of a state root: its subnet and its containers' allocations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeNetwork {
    pub bridge: String,
    pub subnet: Subnet,
    /// The address given out last: the search for a free one starts after it, so that a
    /// released address is not handed out again at once (neighbours may still cache it).
    last: Option<Ipv4Addr>,
    /// By container id.
    pub containers: BTreeMap<String, Allocation>,
}

impl BridgeNetwork {
    pub fn new(bridge: &str, subnet: Subnet) -> BridgeNetwork {
        BridgeNetwork {
            bridge: bridge.to_string(),
            subnet,
            last: None,
            containers: BTreeMap::new(),
        }
    }

    /// Gives container `id` the next free address.
    pub fn allocate(
        &mut self,
        id: &str,
        veth: String,
        ports: Vec<PortMapping>,
    ) -> Result<Allocation> {
        let (first, last) = self.subnet.container_range();
        let start = self.last.map_or(first, |a| a.to_bits().wrapping_add(1));
        let start = if (first..=last).contains(&start) { start } else { first };
        let taken: Vec<u32> = self.containers.values().map(|a| a.address.to_bits()).collect();
        let Some(address) =
            (start..=last).chain(first..start).find(|a| !taken.contains(a)).map(Ipv4Addr::from)
        else {
            bail!(
                "no free address left in subnet {} of bridge {} ({} containers): use a larger subnet or another bridge",
                self.subnet,
                self.bridge,
                self.containers.len()
            );
        };
        let allocation = Allocation { address, veth, ports };
        self.last = Some(address);
        self.containers.insert(id.to_string(), allocation.clone());
        Ok(allocation)
    }
}

/// The bridge networks of one state root, in `<root>/network/`.
pub struct Networks {
    dir: PathBuf,
}

impl Networks {
    pub fn open(root: &Path) -> Result<Networks> {
        let dir = root.join("network");
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| {
            anyhow!("cannot create the network state directory {}: {}", dir.display(), describe(&e))
        })?;
        Ok(Networks { dir })
    }

    /// Takes the lock all network changes of the state root hold.
    pub fn lock(&self) -> Result<Lock> {
        state::lock(&self.dir.join("lock"))
    }

    fn file(&self, bridge: &str) -> PathBuf {
        self.dir.join(format!("{bridge}.json"))
    }

    /// The network of `bridge`, if this state root has one.
    pub fn load(&self, bridge: &str) -> Result<Option<BridgeNetwork>> {
        let path = self.file(bridge);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => bail!("cannot read {}: {}", path.display(), describe(&e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            anyhow!(
                "{} is corrupt ({e}): remove the bridge {bridge} and the file to start it afresh",
                path.display()
            )
        })
    }

    /// Every network of this state root, by bridge name.
    pub fn list(&self) -> Result<Vec<BridgeNetwork>> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| anyhow!("cannot read {}: {}", self.dir.display(), describe(&e)))?;
        let mut networks = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(bridge) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            networks.extend(self.load(bridge)?);
        }
        networks.sort_by(|a, b| a.bridge.cmp(&b.bridge));
        Ok(networks)
    }

    /// Writes a network's file atomically.
    pub fn save(&self, network: &BridgeNetwork) -> Result<()> {
        write_json_atomically(&self.file(&network.bridge), network)
    }

    /// Deletes a network's file; a missing one is fine.
    pub fn remove(&self, bridge: &str) -> Result<()> {
        let path = self.file(bridge);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => bail!("cannot remove {}: {}", path.display(), describe(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Subnet {
        Subnet::parse(text).unwrap()
    }

    #[test]
    fn subnets_parse_and_are_checked() {
        let s = net("10.88.0.0/16");
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 88, 255, 255));
        assert!(s.contains(Ipv4Addr::new(10, 88, 3, 4)));
        assert!(!s.contains(Ipv4Addr::new(10, 89, 0, 1)));
        let e = Subnet::parse("10.88.0.1/16").unwrap_err();
        assert!(e.contains("host bits set: did you mean \"10.88.0.0/16\""), "{e}");
        for bad in ["10.88.0.0", "10.88.0/16", "10.88.0.0/", "10.88.0.0/x", "10.88.0.0/+8", "a/8"] {
            assert!(Subnet::parse(bad).unwrap_err().contains("a.b.c.d/len"), "{bad}");
        }
        for bad in ["10.0.0.0/7", "10.0.0.0/31", "10.0.0.0/32", "0.0.0.0/0"] {
            assert!(Subnet::parse(bad).unwrap_err().contains("8 to 30"), "{bad}");
        }
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"10.88.0.0/16\"");
        assert_eq!(serde_json::from_str::<Subnet>("\"10.88.0.0/16\"").unwrap(), s);
        assert!(serde_json::from_str::<Subnet>("\"10.88.0.1/16\"").is_err());
    }

    #[test]
    fn overlap_is_containment_either_way() {
        assert!(net("10.0.0.0/8").overlaps(&net("10.1.2.0/24")));
        assert!(net("10.1.2.0/24").overlaps(&net("10.0.0.0/8")));
        assert!(!net("10.1.2.0/24").overlaps(&net("10.1.3.0/24")));
        assert!(Subnet::new(Ipv4Addr::UNSPECIFIED, 0).overlaps(&net("192.168.0.0/16")));
        assert_eq!(Subnet::new(Ipv4Addr::new(192, 0, 2, 77), 24), net("192.0.2.0/24"));
    }

    #[test]
    fn allocation_skips_taken_addresses_and_does_not_reuse_at_once() {
        let mut n = BridgeNetwork::new("br", net("10.9.0.0/29"));
        let mut got = Vec::new();
        for i in 0..5 {
            got.push(n.allocate(&format!("c{i}"), format!("v{i}"), vec![]).unwrap().address);
        }
        // .0 is the network, .1 the gateway, .7 the broadcast.
        let expected: Vec<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(10, 9, 0, i)).collect();
        assert_eq!(got, expected);
        let e = n.allocate("c5", "v5".into(), vec![]).unwrap_err().to_string();
        assert!(e.contains("no free address left in subnet 10.9.0.0/29 of bridge br"), "{e}");
        n.containers.remove("c1");
        n.containers.remove("c3");
        // After .6 the search wraps around: .3 is the first free one.
        assert_eq!(
            n.allocate("c6", "v6".into(), vec![]).unwrap().address,
            Ipv4Addr::new(10, 9, 0, 3)
        );
        assert_eq!(
            n.allocate("c7", "v7".into(), vec![]).unwrap().address,
            Ipv4Addr::new(10, 9, 0, 5)
        );
        assert_eq!(n.containers["c7"].veth, "v7");
    }

    #[test]
    fn networks_are_saved_listed_and_removed() {
        let dir = std::env::temp_dir().join(format!("boxr-ipam-test-{}", std::process::id()));
        let networks = Networks::open(&dir).unwrap();
        let _lock = networks.lock().unwrap();
        assert_eq!(networks.load("br0").unwrap(), None);
        let mut n = BridgeNetwork::new("br0", net("10.9.0.0/24"));
        n.allocate("abc", "bxabc".into(), vec![PortMapping::parse("8080:80").unwrap()]).unwrap();
        networks.save(&n).unwrap();
        networks.save(&BridgeNetwork::new("br1", net("10.9.1.0/24"))).unwrap();
        assert_eq!(networks.load("br0").unwrap().as_ref(), Some(&n));
        let listed: Vec<String> = networks.list().unwrap().into_iter().map(|n| n.bridge).collect();
        assert_eq!(listed, ["br0", "br1"]);
        networks.remove("br0").unwrap();
        networks.remove("br0").unwrap();
        assert_eq!(networks.list().unwrap().len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
