//! The one network step the init runs itself: bringing `lo` up in the container's network
//! namespace (the frontend configures any other link from the host).

use rustix::io::Result;
use rustix::ioctl::{Updater, ioctl};
use rustix::net::{AddressFamily, SocketType, socket};

const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCSIFFLAGS: u32 = 0x8914;
const IFF_UP: u16 = 0x1;

/// `struct ifreq` with its `ifr_flags` member (the union is 24 bytes).
#[repr(C)]
struct InterfaceFlags {
    name: [u8; 16],
    flags: u16,
    _rest: [u8; 22],
}

/// Sets `IFF_UP` on `lo`, keeping its other flags.
pub fn bring_up_loopback() -> Result<()> {
    let socket = socket(AddressFamily::INET, SocketType::DGRAM, None)?;
    let mut name = [0u8; 16];
    name[..2].copy_from_slice(b"lo");
    let mut request = InterfaceFlags { name, flags: 0, _rest: [0; 22] };
    // SAFETY: both opcodes take a `struct ifreq`, which `InterfaceFlags` lays out (name, then
    // the flags member of the union, padded to the union's size).
    unsafe { ioctl(&socket, Updater::<SIOCGIFFLAGS, _>::new(&mut request)) }?;
    request.flags |= IFF_UP;
    // SAFETY: as above.
    unsafe { ioctl(&socket, Updater::<SIOCSIFFLAGS, _>::new(&mut request)) }
}
