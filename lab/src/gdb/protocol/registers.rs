//! Register packets: `g`/`G` (all registers) and `p`/`P` (one register).

use super::packet::{push_hex, push_hex_u64};

/// `G<hex>`: writes all registers of the `g` packet.
pub fn write_all(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'G');
    push_hex(out, bytes);
}

/// `p<n>`: reads register `regnum`.
pub fn read_one(out: &mut Vec<u8>, regnum: usize) {
    out.push(b'p');
    push_hex_u64(out, regnum as u64);
}

/// `P<n>=<hex>`: writes register `regnum`.
pub fn write_one(out: &mut Vec<u8>, regnum: usize, bytes: &[u8]) {
    out.push(b'P');
    push_hex_u64(out, regnum as u64);
    out.push(b'=');
    push_hex(out, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let mut out = Vec::new();
        read_one(&mut out, 25);
        assert_eq!(out, b"p19");
        out.clear();
        write_one(&mut out, 15, &[0x04, 0x01, 0, 0]);
        assert_eq!(out, b"Pf=04010000");
        out.clear();
        write_all(&mut out, &[1, 2]);
        assert_eq!(out, b"G0102");
    }
}
