//! Published ports (`ports = ["8080:80"]`, `-p`): parsing and checking them, and holding the
//! host ports while the container runs.
//!
//! boxr publishes a port by DNAT (see [`crate::nft`]); no host process listens on it. So that a
//! port in use is an error before the container starts, and no other program (or container)
//! takes it while it runs, boxr binds a socket to each published host port and holds it, unused
//! (a TCP socket is bound, never listening), for as long as it supervises the container.

use crate::errno::describe;
use anyhow::{Result, anyhow};
use rustix::fd::{AsRawFd, OwnedFd, RawFd};
use rustix::net::{AddressFamily, SocketAddrV4, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A host port published to a container port: `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortMapping {
    /// The host address it is published on; `None`: every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

const FORM: &str = "give HOST_PORT:CONTAINER_PORT, optionally with a host address in front and /tcp or /udp behind, e.g. \"8080:80\" or \"127.0.0.1:8081:80/tcp\"";

impl PortMapping {
    pub fn parse(text: &str) -> Result<PortMapping, String> {
        let whole = |problem: String| format!("port mapping {text:?}: {problem}");
        let (spec, protocol) = match text.rsplit_once('/') {
            Some((spec, "tcp")) => (spec, Protocol::Tcp),
            Some((spec, "udp")) => (spec, Protocol::Udp),
            Some((_, other)) => {
                return Err(whole(format!("unknown protocol {other:?}: use tcp or udp")));
            }
            None => (text, Protocol::Tcp),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (host_ip, host_port, container_port) = match parts.as_slice() {
            [host, container] => (None, *host, *container),
            [ip, host, container] => {
                let ip: Ipv4Addr = ip.parse().map_err(|_| {
                    whole(format!("host address {ip:?} is not an IPv4 address such as 127.0.0.1"))
                })?;
                if ip.is_multicast() || ip.is_broadcast() {
                    return Err(whole(format!("host address {ip} is not a unicast address")));
                }
                (Some(ip).filter(|ip| !ip.is_unspecified()), *host, *container)
            }
            _ => return Err(whole(FORM.to_string())),
        };
        let port = |value: &str, which: &str| -> Result<u16, String> {
            let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            match value.parse::<u16>() {
                Ok(port) if ok && port > 0 => Ok(port),
                _ => Err(whole(format!("{which} port {value:?} is not a number from 1 to 65535"))),
            }
        };
        Ok(PortMapping {
            host_ip,
            host_port: port(host_port, "host")?,
            container_port: port(container_port, "container")?,
            protocol,
        })
    }

    /// Whether the two claim the same host port.
    fn clashes_with(&self, other: &PortMapping) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }

    /// The host side, as `127.0.0.1:8080/tcp` or `8080/tcp`.
    pub fn host_side(&self) -> String {
        match self.host_ip {
            Some(ip) => format!("{ip}:{}/{}", self.host_port, self.protocol.name()),
            None => format!("{}/{}", self.host_port, self.protocol.name()),
        }
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.host_ip {
            write!(f, "{ip}:")?;
        }
        write!(f, "{}:{}/{}", self.host_port, self.container_port, self.protocol.name())
    }
}

impl TryFrom<String> for PortMapping {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        PortMapping::parse(&text)
    }
}

impl From<PortMapping> for String {
    fn from(port: PortMapping) -> String {
        port.to_string()
    }
}

/// Refuses two mappings of the same host port (and protocol, on overlapping addresses):
/// `Err((index of the second, message))`.
pub fn check_distinct(ports: &[PortMapping]) -> Result<(), (usize, String)> {
    for (i, port) in ports.iter().enumerate() {
        if let Some(earlier) = ports[..i].iter().find(|p| p.clashes_with(port)) {
            return Err((
                i,
                format!(
                    "port mapping \"{port}\" publishes host port {} again (\"{earlier}\" does already)",
                    port.host_side()
                ),
            ));
        }
    }
    Ok(())
}

/// The published host ports, bound and held until dropped (or until the process holding them
/// exits).
pub struct Reservation(Vec<OwnedFd>);

impl Reservation {
    /// The held sockets, for a forked monitor that must keep them open.
    pub fn fds(&self) -> Vec<RawFd> {
        self.0.iter().map(|fd| fd.as_raw_fd()).collect()
    }
}

/// Binds every published host port; a port in use is an error naming it.
pub fn reserve(ports: &[PortMapping]) -> Result<Reservation> {
    let mut held = Vec::with_capacity(ports.len());
    for port in ports {
        let kind = match port.protocol {
            Protocol::Tcp => SocketType::STREAM,
            Protocol::Udp => SocketType::DGRAM,
        };
        let socket =
            rustix::net::socket_with(AddressFamily::INET, kind, SocketFlags::CLOEXEC, None)
                .map_err(|e| anyhow!("cannot create a socket: {}", describe(&e.into())))?;
        let address =
            SocketAddrV4::new(port.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port.host_port);
        rustix::net::bind(&socket, &address).map_err(|e| {
            let hint = match e {
                rustix::io::Errno::ADDRINUSE => {
                    "another program or container uses it: stop it, or publish another host port"
                }
                rustix::io::Errno::ADDRNOTAVAIL => "the host has no such address",
                rustix::io::Errno::ACCESS => "boxr may not bind it",
                _ => "cannot bind it",
            };
            anyhow!(
                "cannot publish host port {} (\"{port}\"): {} ({hint})",
                port.host_side(),
                describe(&e.into())
            )
        })?;
        held.push(socket);
    }
    Ok(Reservation(held))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> PortMapping {
        PortMapping::parse(text).unwrap()
    }

    #[test]
    fn mappings_parse_with_optional_address_and_protocol() {
        assert_eq!(
            p("8080:80"),
            PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(
            p("127.0.0.1:8081:80/udp"),
            PortMapping {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 8081,
                container_port: 80,
                protocol: Protocol::Udp
            }
        );
        assert_eq!(p("0.0.0.0:1:65535/tcp").host_ip, None);
        assert_eq!(p("127.0.0.1:8081:80/tcp").to_string(), "127.0.0.1:8081:80/tcp");
        assert_eq!(p("8080:80").to_string(), "8080:80/tcp");
        assert_eq!(p("8080:80").host_side(), "8080/tcp");
        assert_eq!(serde_json::to_string(&p("53:53/udp")).unwrap(), "\"53:53/udp\"");
        assert_eq!(serde_json::from_str::<PortMapping>("\"53:53/udp\"").unwrap(), p("53:53/udp"));
    }

    #[test]
    fn bad_mappings_say_what_is_wrong() {
        for (text, problem) in [
            ("80", "give HOST_PORT:CONTAINER_PORT"),
            ("1:2:3:4", "give HOST_PORT:CONTAINER_PORT"),
            ("8080:80/sctp", "unknown protocol \"sctp\": use tcp or udp"),
            ("0:80", "host port \"0\" is not a number from 1 to 65535"),
            ("8080:65536", "container port \"65536\" is not a number from 1 to 65535"),
            ("+1:80", "host port \"+1\""),
            (":80", "host port \"\""),
            ("localhost:8080:80", "host address \"localhost\" is not an IPv4 address"),
            ("[::1]:8080:80", "give HOST_PORT:CONTAINER_PORT"),
            ("224.0.0.1:8080:80", "not a unicast address"),
        ] {
            let e = PortMapping::parse(text).unwrap_err();
            assert!(e.starts_with(&format!("port mapping {text:?}: ")), "{e}");
            assert!(e.contains(problem), "{text}: {e}");
        }
    }

    #[test]
    fn a_host_port_is_published_once() {
        let ok = [p("8080:80"), p("8080:80/udp"), p("127.0.0.1:8081:80"), p("127.0.0.2:8081:80")];
        assert_eq!(check_distinct(&ok), Ok(()));
        for (first, second) in
            [("8080:80", "8080:81"), ("8080:80", "127.0.0.1:8080:80"), ("127.0.0.1:9:9", "9:9")]
        {
            let (at, e) = check_distinct(&[p("1:1"), p(first), p(second)]).unwrap_err();
            assert_eq!(at, 2);
            assert!(e.contains("publishes host port") && e.contains(first), "{e}");
        }
    }

    #[test]
    fn a_reserved_port_is_in_use_until_released() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let mapping = p(&format!("127.0.0.1:{port}:80"));
        let held = reserve(&[mapping]).unwrap();
        assert_eq!(held.fds().len(), 1);
        let e = reserve(&[mapping]).err().unwrap().to_string();
        assert!(e.contains(&format!("cannot publish host port 127.0.0.1:{port}/tcp")), "{e}");
        assert!(e.contains("address already in use"), "{e}");
        drop(held);
        reserve(&[mapping]).unwrap();
    }
}
