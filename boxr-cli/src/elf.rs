//! Checks that an executable is a static x86-64/aarch64 ELF (no program interpreter), as
//! boxr-init must be: it runs in the container's mount namespace, where the host's dynamic
//! loader and libraries do not exist.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;

const PT_INTERP: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    NotElf,
    Not64BitLittleEndian,
    NotExecutable,
    Dynamic,
    Truncated,
    Read(String),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElfError::NotElf => "not an ELF executable",
            ElfError::Not64BitLittleEndian => "not a 64-bit little-endian ELF file",
            ElfError::NotExecutable => "an ELF file that is not an executable",
            ElfError::Dynamic => {
                "dynamically linked (it has a program interpreter); it must be static"
            }
            ElfError::Truncated => "a truncated ELF file",
            ElfError::Read(e) => e,
        })
    }
}

impl std::error::Error for ElfError {}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Whether the ELF file in `file` is a static executable.
pub fn check_static(file: &File) -> Result<(), ElfError> {
    let mut header = [0u8; 64];
    let read = |buf: &mut [u8], at: u64| match file.read_exact_at(buf, at) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ElfError::Truncated),
        Err(e) => Err(ElfError::Read(crate::errno::describe(&e))),
    };
    read(&mut header, 0)
        .map_err(|e| if e == ElfError::Truncated { ElfError::NotElf } else { e })?;
    let (phoff, phentsize, phnum) = program_header_table(&header)?;
    let mut table = vec![0u8; phentsize * phnum];
    read(&mut table, phoff)?;
    check_program_headers(&table, phentsize)
}

/// Whether the ELF image in `bytes` (a whole file) is a static executable.
pub fn check_static_bytes(bytes: &[u8]) -> Result<(), ElfError> {
    let header: &[u8; 64] =
        bytes.get(..64).and_then(|h| h.try_into().ok()).ok_or(ElfError::NotElf)?;
    let (phoff, phentsize, phnum) = program_header_table(header)?;
    let table = usize::try_from(phoff)
        .ok()
        .and_then(|start| bytes.get(start..start.checked_add(phentsize * phnum)?))
        .ok_or(ElfError::Truncated)?;
    check_program_headers(table, phentsize)
}

/// Offset, entry size and count of the program headers, from the ELF header.
fn program_header_table(h: &[u8; 64]) -> Result<(u64, usize, usize), ElfError> {
    if &h[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    if h[4] != 2 || h[5] != 1 {
        return Err(ElfError::Not64BitLittleEndian);
    }
    // e_type: ET_EXEC or ET_DYN (static-pie is fine as long as there is no interpreter).
    if !matches!(u16_at(h, 16), 2 | 3) {
        return Err(ElfError::NotExecutable);
    }
    let phoff = u64::from_le_bytes(h[32..40].try_into().expect("8 bytes"));
    let phentsize = usize::from(u16_at(h, 54));
    let phnum = usize::from(u16_at(h, 56));
    if phentsize < 4 || phnum == 0 {
        return Err(ElfError::NotExecutable);
    }
    Ok((phoff, phentsize, phnum))
}

fn check_program_headers(table: &[u8], phentsize: usize) -> Result<(), ElfError> {
    let dynamic = table
        .chunks_exact(phentsize)
        .any(|ph| u32::from_le_bytes(ph[..4].try_into().expect("4 bytes")) == PT_INTERP);
    if dynamic { Err(ElfError::Dynamic) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(e_type: u16, phnum: u16) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[16..18].copy_from_slice(&e_type.to_le_bytes());
        h[32..40].copy_from_slice(&64u64.to_le_bytes());
        h[54..56].copy_from_slice(&56u16.to_le_bytes());
        h[56..58].copy_from_slice(&phnum.to_le_bytes());
        h
    }

    fn phdrs(types: &[u32]) -> Vec<u8> {
        types.iter().flat_map(|t| t.to_le_bytes().into_iter().chain([0u8; 52])).collect()
    }

    #[test]
    fn header_fields_are_read() {
        assert_eq!(program_header_table(&header(2, 3)), Ok((64, 56, 3)));
        let mut h = header(2, 3);
        h[0] = b'#';
        assert_eq!(program_header_table(&h), Err(ElfError::NotElf));
        let mut h = header(2, 3);
        h[4] = 1;
        assert_eq!(program_header_table(&h), Err(ElfError::Not64BitLittleEndian));
        assert_eq!(program_header_table(&header(1, 3)), Err(ElfError::NotExecutable));
    }

    #[test]
    fn interpreter_means_dynamic() {
        assert_eq!(check_program_headers(&phdrs(&[6, 3, 1]), 56), Err(ElfError::Dynamic));
        assert_eq!(check_program_headers(&phdrs(&[1, 1, 4]), 56), Ok(()));
    }

    #[test]
    fn real_binaries_are_classified() {
        let ls = File::open("/bin/ls").unwrap();
        assert_eq!(check_static(&ls), Err(ElfError::Dynamic));
        let script = File::open("/etc/passwd").unwrap();
        assert_eq!(check_static(&script), Err(ElfError::NotElf));
        assert_eq!(check_static_bytes(&std::fs::read("/bin/ls").unwrap()), Err(ElfError::Dynamic));
        let mut image = header(2, 2).to_vec();
        image.extend(phdrs(&[1, 4]));
        assert_eq!(check_static_bytes(&image), Ok(()));
        assert_eq!(check_static_bytes(&image[..100]), Err(ElfError::Truncated));
        assert_eq!(check_static_bytes(b"#!/bin/sh"), Err(ElfError::NotElf));
    }
}
