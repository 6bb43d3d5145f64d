//! Memory packets: `m` (read) and `M` (write, hex).

use super::packet::{push_hex, push_hex_u64};

/// Bytes of `M` framing besides the data (`M`, two hex numbers, `,` `:`),
/// with room to spare.
const WRITE_OVERHEAD: usize = 1 + 16 + 1 + 16 + 1;

/// The largest `m` read whose hex reply fits in `packet_size` bytes.
pub fn read_chunk(packet_size: usize) -> usize {
    (packet_size / 2).max(1)
}

/// The largest `M` write that fits in a `packet_size`-byte packet.
pub fn write_chunk(packet_size: usize) -> usize {
    (packet_size.saturating_sub(WRITE_OVERHEAD) / 2).max(1)
}

/// `m<addr>,<len>`.
pub fn read(out: &mut Vec<u8>, addr: u64, len: usize) {
    out.push(b'm');
    push_hex_u64(out, addr);
    out.push(b',');
    push_hex_u64(out, len as u64);
}

/// `M<addr>,<len>:<hex>`.
pub fn write(out: &mut Vec<u8>, addr: u64, data: &[u8]) {
    out.push(b'M');
    push_hex_u64(out, addr);
    out.push(b',');
    push_hex_u64(out, data.len() as u64);
    out.push(b':');
    push_hex(out, data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_chunks() {
        let mut out = Vec::new();
        read(&mut out, 0x2000_0000, 2048);
        assert_eq!(out, b"m20000000,800");
        out.clear();
        write(&mut out, 0x10, &[0x2a, 0, 0, 0]);
        assert_eq!(out, b"M10,4:2a000000");
        assert_eq!(read_chunk(4096), 2048);
        assert!(write_chunk(4096) * 2 + WRITE_OVERHEAD <= 4096);
    }
}
