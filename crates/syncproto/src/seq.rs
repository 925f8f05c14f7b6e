//! Serial-number arithmetic on 32-bit sequence numbers (docs/wire-protocol.md §4).

/// `a` comes before `b`, modulo 2^32.
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` comes after `b`, modulo 2^32.
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around() {
        assert!(before(1, 2));
        assert!(before(u32::MAX, 0));
        assert!(after(0, u32::MAX));
        assert!(!before(5, 5) && !after(5, 5));
    }
}
