//! The byte order of keys, compared without a call to `memcmp`.
//!
//! Stores and tables sort and search keys that are short and share long prefixes (a windowed
//! table's keys are ~29 bytes, the first ~15 the same for every window of a key): there the
//! call into `memcmp` per comparison cost more than the comparison (a tenth of a windowed
//! update's profile, benches/WINDOWS.md "Sixth step"). Comparing 8 bytes at a time inline
//! gives the same order.

use std::cmp::Ordering;

/// `a.cmp(b)` for byte strings (lexicographic: the first differing byte decides, then the
/// length), compared a word at a time.
#[inline]
pub fn key_order(a: &[u8], b: &[u8]) -> Ordering {
    let mut a_words = a.chunks_exact(8);
    let mut b_words = b.chunks_exact(8);
    for (x, y) in (&mut a_words).zip(&mut b_words) {
        let x = u64::from_be_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_be_bytes(y.try_into().unwrap_or_default());
        if x != y {
            return x.cmp(&y);
        }
    }
    // Equal so far: the rest of the shorter key decides, byte by byte, then the length.
    let done = a.len().min(b.len()) / 8 * 8;
    for (x, y) in a[done..].iter().zip(&b[done..]) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges() {
        assert_eq!(key_order(b"", b""), Ordering::Equal);
        assert_eq!(key_order(b"", b"a"), Ordering::Less);
        assert_eq!(key_order(b"abcdefgh", b"abcdefgh\x00"), Ordering::Less);
        assert_eq!(key_order(b"abcdefghi", b"abcdefgh"), Ordering::Greater);
        assert_eq!(key_order(b"abcdefgz", b"abcdefgha"), Ordering::Greater);
        assert_eq!(key_order(&[0xff; 9], &[0xff; 9]), Ordering::Equal);
    }

    proptest! {
        #[test]
        fn same_order_as_slices(
            prefix in proptest::collection::vec(any::<u8>(), 0..20),
            a in proptest::collection::vec(any::<u8>(), 0..20),
            b in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let a: Vec<u8> = prefix.iter().chain(&a).copied().collect();
            let b: Vec<u8> = prefix.iter().chain(&b).copied().collect();
            prop_assert_eq!(key_order(&a, &b), a.cmp(&b));
            prop_assert_eq!(key_order(&a, &a), Ordering::Equal);
        }
    }
}
