//! Breakpoint and watchpoint packets: `Z0`..`Z4` and `z0`..`z4`.

use super::packet::push_hex_u64;
use crate::gdb::BreakKind;

/// The digit of `kind` in `Z<n>`.
pub fn type_digit(kind: BreakKind) -> u8 {
    match kind {
        BreakKind::Software => b'0',
        BreakKind::Hardware => b'1',
        BreakKind::WriteWatch => b'2',
        BreakKind::ReadWatch => b'3',
        BreakKind::AccessWatch => b'4',
    }
}

/// `Z<n>,<addr>,<len>` (`insert`) or `z<n>,<addr>,<len>`.
pub fn request(out: &mut Vec<u8>, insert: bool, kind: BreakKind, addr: u64, len: u64) {
    out.extend_from_slice(&[if insert { b'Z' } else { b'z' }, type_digit(kind), b',']);
    push_hex_u64(out, addr);
    out.push(b',');
    push_hex_u64(out, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let mut out = Vec::new();
        request(&mut out, true, BreakKind::Hardware, 0x104, 2);
        assert_eq!(out, b"Z1,104,2");
        out.clear();
        request(&mut out, false, BreakKind::AccessWatch, 0x2000_000c, 4);
        assert_eq!(out, b"z4,2000000c,4");
    }
}
