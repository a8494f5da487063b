//! Structured input from fuzz bytes: a reader that hands out small numbers and
//! slices and never fails (past the end it yields zeros), so every byte string is
//! a valid input and the fuzzer spends no time on rejected shapes.

/// Reads typed values off the front of the fuzz input.
#[derive(Debug)]
pub struct Bytes<'a> {
    rest: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { rest: data }
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, big-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next eight bytes, big-endian.
    pub fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::from(self.u16()) % n
        }
    }

    /// Up to `max` bytes: a length byte, then that many bytes (fewer at the end).
    pub fn slice(&mut self, max: usize) -> &'a [u8] {
        let want = usize::from(self.u8()).min(max);
        let n = want.min(self.rest.len());
        let (s, rest) = self.rest.split_at(n);
        self.rest = rest;
        s
    }

    /// What is left, without reading it.
    pub fn peek(&self) -> &'a [u8] {
        self.rest
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_and_zeros_past_the_end() {
        let mut b = Bytes::new(&[1, 2, 3, 4, 5, 2, 9, 9, 9]);
        assert_eq!(b.u8(), 1);
        assert_eq!(b.u16(), 0x0203);
        assert_eq!(b.below(7), 0x0405 % 7);
        assert_eq!(b.slice(8), [9, 9]);
        assert_eq!(b.rest(), [9]);
        assert!(b.is_empty());
        assert_eq!(b.u64(), 0);
        assert_eq!(b.slice(4), [] as [u8; 0]);
    }
}
