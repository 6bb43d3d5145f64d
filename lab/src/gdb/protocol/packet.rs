//! Packet framing: `$payload#cs`, acks, checksums, `}` escapes, run-length
//! encoding and hex helpers.

use std::io::Write as _;

/// The escape character of binary data (`}`); the next byte is XOR 0x20.
pub const ESCAPE: u8 = b'}';
/// The byte that asks a running target to stop.
pub const INTERRUPT: u8 = 0x03;

/// What the head of a receive buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet for a whole frame.
    Incomplete,
    /// `+`: the peer accepted our last packet.
    Ack,
    /// `-`: the peer wants our last packet again.
    Nack,
    /// The interrupt byte (0x03).
    Interrupt,
    /// A packet whose body is `buf[1..body_end]`.
    Packet {
        /// Index of the `#` that ends the body.
        body_end: usize,
        /// Whether the checksum matched.
        checksum_ok: bool,
    },
    /// A byte outside any frame (line noise), to be dropped.
    Junk,
}

impl Frame {
    /// How many bytes of the buffer this frame takes.
    pub fn size(self) -> usize {
        match self {
            Frame::Incomplete => 0,
            Frame::Packet { body_end, .. } => body_end + 3,
            _ => 1,
        }
    }
}

/// Recognises the frame at the start of `buf` without copying.
pub fn scan(buf: &[u8]) -> Frame {
    let Some(&first) = buf.first() else {
        return Frame::Incomplete;
    };
    match first {
        b'+' => Frame::Ack,
        b'-' => Frame::Nack,
        INTERRUPT => Frame::Interrupt,
        b'$' | b'%' => match memchr::memchr(b'#', &buf[1..]) {
            Some(i) if buf.len() >= i + 4 => {
                let body_end = i + 1;
                let sent = hex_byte(buf[body_end + 1], buf[body_end + 2]);
                Frame::Packet {
                    body_end,
                    checksum_ok: sent == Some(checksum(&buf[1..body_end])),
                }
            }
            _ => Frame::Incomplete,
        },
        _ => Frame::Junk,
    }
}

/// The modulo-256 sum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
}

/// Appends `$payload#cs` to `out`, escaping `$`, `#`, `}` and `*`.
pub fn encode(out: &mut Vec<u8>, payload: &[u8]) {
    out.reserve(payload.len() + 4);
    out.push(b'$');
    let start = out.len();
    for &b in payload {
        if matches!(b, b'$' | b'#' | b'}' | b'*') {
            out.extend_from_slice(&[ESCAPE, b ^ 0x20]);
        } else {
            out.push(b);
        }
    }
    let sum = checksum(&out[start..]);
    out.push(b'#');
    push_hex(out, &[sum]);
}

/// Copies a packet body into `out`, expanding run-length encoding (`X*n`
/// repeats `X` `n - 29` more times). Escapes are left in place: only binary
/// replies carry them (see [`unescape`]).
pub fn decode_body(body: &[u8], out: &mut Vec<u8>) {
    out.clear();
    if memchr::memchr(b'*', body).is_none() {
        out.extend_from_slice(body);
        return;
    }
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'*' && i + 1 < body.len() {
            if let Some(&last) = out.last() {
                let count = usize::from(body[i + 1].saturating_sub(29));
                out.resize(out.len() + count, last);
            }
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
}

/// Removes `}` escapes from binary data in place.
pub fn unescape(data: &mut Vec<u8>) {
    let mut w = 0;
    let mut r = 0;
    while r < data.len() {
        let b = data[r];
        data[w] = if b == ESCAPE && r + 1 < data.len() {
            r += 1;
            data[r] ^ 0x20
        } else {
            b
        };
        w += 1;
        r += 1;
    }
    data.truncate(w);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex.
pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
    }
}

/// Appends `value` as hex without leading zeros.
pub fn push_hex_u64(out: &mut Vec<u8>, value: u64) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{value:x}");
}

/// The value of one hex digit.
pub fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The byte of two hex digits.
pub fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    Some(hex_digit(hi)? << 4 | hex_digit(lo)?)
}

/// Decodes hex into `out` (cleared first); `None` on odd length or a bad digit.
/// Unavailable bytes (`xx`) decode as 0.
pub fn decode_hex_into(hex: &[u8], out: &mut Vec<u8>) -> Option<()> {
    out.clear();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    out.reserve(hex.len() / 2);
    for pair in hex.chunks_exact(2) {
        out.push(if pair == b"xx" {
            0
        } else {
            hex_byte(pair[0], pair[1])?
        });
    }
    Some(())
}

/// Hex digit values by byte; 0xff for anything else.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        table[HEX[i] as usize] = i as u8;
        table[b"0123456789ABCDEF"[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes exactly `dst.len()` bytes of hex from the start of `hex` (the
/// hot path of memory reads: a table lookup per digit, one check per slice).
pub fn decode_hex_to_slice(hex: &[u8], dst: &mut [u8]) -> Option<()> {
    if hex.len() < dst.len() * 2 {
        return None;
    }
    let mut bad = 0;
    for (d, pair) in dst.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        bad |= hi | lo;
        *d = hi << 4 | lo;
    }
    (bad & 0xf0 == 0).then_some(())
}

/// Parses a hex number (at most 16 digits).
pub fn parse_hex_u64(hex: &[u8]) -> Option<u64> {
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    hex.iter()
        .try_fold(0u64, |acc, &c| Some(acc << 4 | u64::from(hex_digit(c)?)))
}

/// An `Exx` error reply's code, if `reply` is one.
pub fn error_code(reply: &[u8]) -> Option<u8> {
    match reply {
        [b'E', hi, lo] => hex_byte(*hi, *lo),
        [b'E', ..] => Some(0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_checksums() {
        let mut out = Vec::new();
        encode(&mut out, b"m0,4");
        assert_eq!(out, b"$m0,4#fd");
        assert_eq!(
            scan(&out),
            Frame::Packet {
                body_end: 5,
                checksum_ok: true
            }
        );
        assert_eq!(
            scan(b"$OK#9b"),
            Frame::Packet {
                body_end: 3,
                checksum_ok: false
            }
        );
        assert_eq!(scan(b"$OK#9"), Frame::Incomplete);
        assert_eq!(scan(b"+$OK#9a"), Frame::Ack);
        assert_eq!(scan(b"x"), Frame::Junk);
    }

    #[test]
    fn escapes_round_trip() {
        let mut out = Vec::new();
        encode(&mut out, b"a#b}c");
        assert_eq!(&out[..8], b"$a}\x03b}]c");
        let mut body = out[1..out.len() - 3].to_vec();
        unescape(&mut body);
        assert_eq!(body, b"a#b}c");
    }

    #[test]
    fn run_length_decoding() {
        let mut out = Vec::new();
        decode_body(b"0* 1", &mut out);
        assert_eq!(out, b"00001");
        decode_body(b"ab", &mut out);
        assert_eq!(out, b"ab");
    }

    #[test]
    fn hex_helpers() {
        let mut out = Vec::new();
        decode_hex_into(b"00ff7fxx", &mut out).unwrap();
        assert_eq!(out, [0, 255, 127, 0]);
        assert_eq!(parse_hex_u64(b"2000000c"), Some(0x2000_000c));
        assert_eq!(error_code(b"E14"), Some(0x14));
        assert_eq!(error_code(b"OK"), None);
        let mut dst = [0; 3];
        assert_eq!(decode_hex_to_slice(b"00fF7a", &mut dst), Some(()));
        assert_eq!(dst, [0, 255, 0x7a]);
        assert_eq!(decode_hex_to_slice(b"00g07a", &mut dst), None);
        assert_eq!(decode_hex_to_slice(b"00ff", &mut dst), None);
    }
}
