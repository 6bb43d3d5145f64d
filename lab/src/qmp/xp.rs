//! HMP `xp /1wx`: one 32-bit word of guest physical memory, read through
//! the device's own read handler when the address is a register.

/// The monitor command that reads the word at `address`.
pub fn command(address: u64) -> String {
    format!("xp /1wx {address:#x}")
}

/// The word in the command's answer (`0000000040028018: 0x037ccc66`), or
/// `None` when the answer holds none (`Cannot access memory`).
pub fn word(answer: &str) -> Option<u32> {
    let (_, value) = answer.trim().split_once(": ")?;
    u32::from_str_radix(value.trim().strip_prefix("0x")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::{command, word};

    #[test]
    fn answers_parse() {
        assert_eq!(command(0x4002_8018), "xp /1wx 0x40028018");
        assert_eq!(word("0000000040028018: 0x037ccc66\r\n"), Some(0x037c_cc66));
        assert_eq!(word("0000000040000064: 0x00000002\r\n"), Some(2));
        assert_eq!(word("Cannot access memory"), None);
        assert_eq!(word("0000000040028018: 0xzz"), None);
    }
}
