//! Helpers shared by the engine's integration tests.

/// xorshift64*: deterministic pseudo-random numbers without a dependency,
/// so every randomised test replays from its seed.
pub struct Rng(pub u64);

#[allow(dead_code)] // each test binary uses its own subset
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below_u64(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
