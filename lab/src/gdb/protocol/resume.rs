//! Resuming (`c`, `s`) and what the stub sends back while the target runs:
//! stop replies (`S`, `T`, `W`, `X`) and console output (`O`).

use super::packet::{hex_byte, parse_hex_u64};
use crate::gdb::{BreakKind, StopReason};

/// A packet the stub sends while the target runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Async<'a> {
    /// The target stopped.
    Stop(StopReason),
    /// `O<hex>`: console output, still hex-encoded.
    Output(&'a [u8]),
}

/// Parses a reply to `c`, `s` or `?`; `None` if it is not one.
pub fn parse(reply: &[u8]) -> Option<Async<'_>> {
    let (&kind, rest) = reply.split_first()?;
    let code = |rest: &[u8]| hex_byte(*rest.first()?, *rest.get(1)?);
    Some(match kind {
        b'O' if is_hex(rest) => Async::Output(rest),
        b'S' => Async::Stop(signal(code(rest)?, &[])),
        b'T' => Async::Stop(signal(code(rest)?, rest.get(2..)?)),
        b'W' => Async::Stop(StopReason::Exited(code(rest)?)),
        b'X' => Async::Stop(StopReason::Terminated(code(rest)?)),
        _ => return None,
    })
}

/// Whether `data` is non-empty, even-length hex (so `OK` is not output).
fn is_hex(data: &[u8]) -> bool {
    !data.is_empty() && data.len().is_multiple_of(2) && data.iter().all(u8::is_ascii_hexdigit)
}

/// A signal stop with the `n:r;` pairs of a `T` reply.
fn signal(signal: u8, pairs: &[u8]) -> StopReason {
    let mut watch = None;
    let mut breakpoint = None;
    for pair in pairs.split(|&b| b == b';') {
        let mut parts = pair.splitn(2, |&b| b == b':');
        let (Some(name), value) = (parts.next(), parts.next()) else {
            continue;
        };
        let watch_kind = match name {
            b"watch" => Some(BreakKind::WriteWatch),
            b"rwatch" => Some(BreakKind::ReadWatch),
            b"awatch" => Some(BreakKind::AccessWatch),
            b"swbreak" => {
                breakpoint = Some(BreakKind::Software);
                None
            }
            b"hwbreak" => {
                breakpoint = Some(BreakKind::Hardware);
                None
            }
            _ => None,
        };
        if let (Some(kind), Some(addr)) = (watch_kind, value.and_then(parse_hex_u64)) {
            watch = Some((kind, addr));
        }
    }
    StopReason::Signal {
        signal,
        watch,
        breakpoint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_replies() {
        assert_eq!(
            parse(b"T05thread:01;awatch:2000000c;"),
            Some(Async::Stop(StopReason::Signal {
                signal: 5,
                watch: Some((BreakKind::AccessWatch, 0x2000_000c)),
                breakpoint: None
            }))
        );
        assert_eq!(
            parse(b"T05swbreak:;"),
            Some(Async::Stop(StopReason::Signal {
                signal: 5,
                watch: None,
                breakpoint: Some(BreakKind::Software)
            }))
        );
        assert_eq!(parse(b"W2a"), Some(Async::Stop(StopReason::Exited(42))));
        assert_eq!(
            parse(b"W00;process:1"),
            Some(Async::Stop(StopReason::Exited(0)))
        );
        assert_eq!(parse(b"X09"), Some(Async::Stop(StopReason::Terminated(9))));
        assert_eq!(parse(b"O6869"), Some(Async::Output(b"6869")));
        assert_eq!(parse(b"OK"), None);
    }
}
