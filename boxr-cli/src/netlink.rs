//! rtnetlink requests: links (bridges, veth pairs), addresses and routes, sent on a
//! `NETLINK_ROUTE` socket of the host's network namespace or of a container's.
//!
//! A socket works in the network namespace it was created in, whatever namespace its user is
//! in later: [`Netlink::open_in`] enters the container's namespace just long enough to create
//! one (boxr is single-threaded, as `setns` needs) and goes back to its own.

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd};
use rustix::thread::LinkNameSpaceType;
use std::fs::File;
use std::io::{Error, ErrorKind, Result};
use std::net::{IpAddr, Ipv4Addr};

/// An rtnetlink socket and the sequence number of its last request.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    /// A socket in boxr's own network namespace.
    pub fn open() -> Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { socket, sequence: 0 })
    }

    /// A socket in the network namespace `netns` (an open `/proc/PID/ns/net`).
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink> {
        let own = File::open("/proc/self/ns/net")?;
        rustix::thread::move_into_link_name_space(netns, Some(LinkNameSpaceType::Network))?;
        let opened = Netlink::open();
        // Back at once: everything else boxr does is in its own namespace. Failing to return
        // would leave boxr in the container's, so that is fatal.
        if let Err(e) =
            rustix::thread::move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::Network))
        {
            eprintln!("boxr: cannot return to boxr's own network namespace: {e}");
            std::process::abort();
        }
        opened
    }

    /// The index of the link named `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(message), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the bridge `name` with the hardware address `mac` (fixed, so that it does not
    /// follow its ports' addresses as containers come and go), up.
    pub fn create_bridge(&mut self, name: &str, mac: [u8; 6]) -> Result<()> {
        let mut message = up(LinkMessage::default());
        message.attributes.push(LinkAttribute::IfName(name.to_string()));
        message.attributes.push(LinkAttribute::Address(mac.to_vec()));
        message.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        self.request(RouteNetlinkMessage::NewLink(message), NLM_F_CREATE | NLM_F_EXCL).map(drop)
    }

    /// Creates a veth pair: `name`, up and a port of the bridge with index `master`, here, and
    /// its peer `peer` in the network namespace `netns`.
    pub fn create_veth(
        &mut self,
        name: &str,
        master: u32,
        peer: &str,
        netns: BorrowedFd<'_>,
    ) -> Result<()> {
        let mut peer_message = LinkMessage::default();
        peer_message.attributes.push(LinkAttribute::IfName(peer.to_string()));
        peer_message.attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        let mut message = up(LinkMessage::default());
        message.attributes.push(LinkAttribute::IfName(name.to_string()));
        message.attributes.push(LinkAttribute::Controller(master));
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(message), NLM_F_CREATE | NLM_F_EXCL).map(drop)
    }

    /// Brings the link with index `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut message = up(LinkMessage::default());
        message.header.index = index;
        self.request(RouteNetlinkMessage::SetLink(message), 0).map(drop)
    }

    /// Deletes the link `name` (a veth takes its peer with it); false if there was none.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(message), 0) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the link with index `index` the address `address/prefix`.
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix;
        message.header.index = index;
        let broadcast = Ipv4Addr::from(address.to_bits() | (u32::MAX >> prefix));
        message.attributes.push(AddressAttribute::Local(IpAddr::V4(address)));
        message.attributes.push(AddressAttribute::Address(IpAddr::V4(address)));
        message.attributes.push(AddressAttribute::Broadcast(broadcast));
        self.request(RouteNetlinkMessage::NewAddress(message), NLM_F_CREATE | NLM_F_EXCL).map(drop)
    }

    /// Adds the default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Boot;
        message.header.scope = RouteScope::Universe;
        message.header.kind = RouteType::Unicast;
        message.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(RouteNetlinkMessage::NewRoute(message), NLM_F_CREATE | NLM_F_EXCL).map(drop)
    }

    /// Sends one request (with an acknowledgement asked for) and collects the replies until
    /// the acknowledgement; a negative acknowledgement is its errno.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;
        let mut replies = Vec::new();
        loop {
            let (datagram, _) = self.socket.recv_from_full()?;
            let mut rest = datagram.as_slice();
            while !rest.is_empty() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                    .map_err(|e| Error::new(ErrorKind::InvalidData, e.to_string()))?;
                let length = (reply.header.length as usize).next_multiple_of(4).min(rest.len());
                if length == 0 {
                    return Err(Error::new(ErrorKind::InvalidData, "empty netlink message"));
                }
                rest = &rest[length..];
                if reply.header.sequence_number != self.sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok(replies),
                            Some(code) => Err(Error::from_raw_os_error(-code.get())),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    _ => {}
                }
            }
        }
    }
}

/// `message` with the up flag set (and marked as changed).
fn up(mut message: LinkMessage) -> LinkMessage {
    message.header.flags |= LinkFlags::Up;
    message.header.change_mask |= LinkFlags::Up;
    message
}
