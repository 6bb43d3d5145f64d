//! Queries: `qSupported` (features, packet size) and `qXfer:features:read`
//! (target description documents).

use super::packet::{parse_hex_u64, push_hex_u64};

/// What we tell the stub we support.
pub const SUPPORTED_REQUEST: &[u8] = b"qSupported:swbreak+;hwbreak+;xmlRegisters=arm";

/// The stub's answer to `qSupported`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    /// The largest packet the stub accepts (`PacketSize`), in bytes.
    pub packet_size: Option<usize>,
    /// Whether `qXfer:features:read` works.
    pub xfer_features: bool,
    /// Whether `QStartNoAckMode` works.
    pub no_ack_mode: bool,
    /// Whether reverse execution (`bs` and `bc`) works: QEMU offers it
    /// while it replays a recording.
    pub reverse: bool,
}

/// Parses a `qSupported` reply.
pub fn parse_supported(reply: &[u8]) -> Features {
    let mut features = Features {
        packet_size: None,
        xfer_features: false,
        no_ack_mode: false,
        reverse: false,
    };
    let (mut reverse_step, mut reverse_continue) = (false, false);
    for item in reply.split(|&b| b == b';') {
        match item {
            b"qXfer:features:read+" => features.xfer_features = true,
            b"QStartNoAckMode+" => features.no_ack_mode = true,
            b"ReverseStep+" => reverse_step = true,
            b"ReverseContinue+" => reverse_continue = true,
            _ => {
                if let Some(size) = item.strip_prefix(b"PacketSize=") {
                    features.packet_size =
                        parse_hex_u64(size).and_then(|s| usize::try_from(s).ok());
                }
            }
        }
    }
    features.reverse = reverse_step && reverse_continue;
    features
}

/// `qXfer:features:read:<annex>:<offset>,<length>`.
pub fn xfer_features(out: &mut Vec<u8>, annex: &str, offset: usize, length: usize) {
    out.extend_from_slice(b"qXfer:features:read:");
    out.extend_from_slice(annex.as_bytes());
    out.push(b':');
    push_hex_u64(out, offset as u64);
    out.push(b',');
    push_hex_u64(out, length as u64);
}

/// A piece of a `qXfer` reply: its data (still escaped) and whether it is the last.
pub fn parse_xfer(reply: &[u8]) -> Option<(&[u8], bool)> {
    match reply.split_first()? {
        (b'm', data) => Some((data, false)),
        (b'l', data) => Some((data, true)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_features() {
        let f = parse_supported(b"PacketSize=1000;qXfer:features:read+;vContSupported+");
        assert_eq!(f.packet_size, Some(4096));
        assert!(f.xfer_features);
        assert!(!f.no_ack_mode);
        assert!(!f.reverse);
        let replaying = parse_supported(b"PacketSize=1000;ReverseStep+;ReverseContinue+");
        assert!(replaying.reverse);
    }

    #[test]
    fn xfer() {
        let mut out = Vec::new();
        xfer_features(&mut out, "target.xml", 0, 0xffb);
        assert_eq!(out, b"qXfer:features:read:target.xml:0,ffb");
        assert_eq!(parse_xfer(b"l<x/>"), Some((&b"<x/>"[..], true)));
        assert_eq!(parse_xfer(b"E00"), None);
    }
}
