//! The `Random` trait as a `rand_core` generator, for the RustCrypto APIs that
//! take one (ephemeral keys of sealed boxes).

use me2b_domain::Random;

/// Adapts `&dyn Random` (the OS generator in production, a seeded one in
/// tests) to `rand_core`'s traits.
pub(crate) struct RngAdapter<'a>(pub(crate) &'a dyn Random);

impl rand_core::RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

/// Every `Random` the node uses is a cryptographic generator (the OS's, or
/// ChaCha20 from a seed in tests).
impl rand_core::CryptoRng for RngAdapter<'_> {}
