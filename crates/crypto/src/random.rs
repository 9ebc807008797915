use me2b_domain::Random;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::sync::Mutex;

/// The operating system's generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        // getrandom only fails when the OS has no entropy source at all; there is no
        // safe way to continue without one.
        #[allow(clippy::panic)]
        if let Err(e) = getrandom::getrandom(buf) {
            panic!("the operating system's random number generator failed: {e}");
        }
    }
}

/// A deterministic generator (ChaCha20 from a seed) for tests and the demo's
/// reproducible data. Never use it for keys in production.
#[derive(Debug)]
pub struct SeededRandom(Mutex<ChaCha20Rng>);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(ChaCha20Rng::seed_from_u64(seed)))
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        g.fill_bytes(buf);
    }
}
