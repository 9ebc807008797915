//! Passphrase hashing (Argon2id), with a bound on how many Argon2 computations
//! run at once.
//!
//! Each Argon2id computation holds its whole memory cost (19 MiB with the
//! recommended parameters) while it runs. Without a bound, a flood of logins
//! ran hundreds at once (300 concurrent wrong logins took a node from 37 MB to
//! 16.3 GB resident). Every Argon2 computation of a [`PassphraseHasher`] (and
//! of any function added to it) needs an [`ArgonSlot`], which only
//! [`PassphraseHasher::run`] hands out: it waits, without holding a thread, for
//! one of `max_concurrent` permits, then runs the computation on the blocking
//! pool. So at most `max_concurrent × memory cost` is ever in use for Argon2,
//! whoever calls; callers beyond that queue.

use crate::CryptoError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use me2b_domain::member::Passphrase;
use me2b_domain::Random;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassphraseParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl PassphraseParams {
    /// OWASP's recommended Argon2id setting: 19 MiB, 2 iterations, 1 lane.
    pub const RECOMMENDED: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
    /// The smallest parameters Argon2 accepts: for tests only.
    pub const INSECURE_FAST_FOR_TESTS: Self = Self {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
}

/// The default bound on concurrent Argon2 computations: one per core (more
/// would not finish sooner, only hold more memory at once).
pub fn default_max_concurrent() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// How many Argon2 computations are running, and the most that ever ran at
/// once: what a test or an operator reads to check the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgonStats {
    /// The bound.
    pub max_concurrent: usize,
    /// Running now.
    pub running: usize,
    /// The most that ran at once since the hasher was made.
    pub peak: usize,
    /// Waiting for a permit now.
    pub waiting: usize,
}

#[derive(Debug)]
struct Slots {
    permits: Arc<Semaphore>,
    max: usize,
    running: AtomicUsize,
    peak: AtomicUsize,
    waiting: AtomicUsize,
}

/// The right to run one Argon2 computation: held while it runs. Only
/// [`PassphraseHasher::run`] (and the constructor, before the hasher is
/// shared) make one, so every Argon2 computation counts against the bound.
#[derive(Debug)]
pub struct ArgonSlot {
    slots: Arc<Slots>,
    _permit: OwnedSemaphorePermit,
}

impl ArgonSlot {
    fn enter(slots: Arc<Slots>, permit: OwnedSemaphorePermit) -> Self {
        let now = slots.running.fetch_add(1, Ordering::SeqCst) + 1;
        slots.peak.fetch_max(now, Ordering::SeqCst);
        Self {
            slots,
            _permit: permit,
        }
    }
}

impl Drop for ArgonSlot {
    fn drop(&mut self) {
        self.slots.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Hashes and verifies passphrases with Argon2id (PHC string format, which records
/// the algorithm, version, parameters and salt, so parameters can change later).
/// At most `max_concurrent` computations run at once (see the module). Cheap to
/// clone: clones share the bound.
#[derive(Clone, Debug)]
pub struct PassphraseHasher {
    params: PassphraseParams,
    /// A hash of a random passphrase, verified against when an account does not
    /// exist, so that a failed login takes as long either way.
    dummy: Arc<str>,
    slots: Arc<Slots>,
}

impl PassphraseHasher {
    /// A hasher with [`default_max_concurrent`] computations at once.
    pub fn new(params: PassphraseParams, rng: &dyn Random) -> Result<Self, CryptoError> {
        Self::with_max_concurrent(params, default_max_concurrent(), rng)
    }

    /// A hasher running at most `max_concurrent` (at least 1) Argon2
    /// computations at once.
    pub fn with_max_concurrent(
        params: PassphraseParams,
        max_concurrent: usize,
        rng: &dyn Random,
    ) -> Result<Self, CryptoError> {
        let max = max_concurrent.max(1);
        let permits = Arc::new(Semaphore::new(max));
        let slots = Arc::new(Slots {
            permits: permits.clone(),
            max,
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        });
        let mut h = Self {
            params,
            dummy: Arc::from(""),
            slots: slots.clone(),
        };
        let mut junk = [0u8; 24];
        rng.fill(&mut junk);
        // Nobody else holds this semaphore yet: a permit is free.
        let permit = permits
            .try_acquire_owned()
            .map_err(|_| CryptoError::PassphraseHash("no Argon2 permit at start".into()))?;
        let slot = ArgonSlot::enter(slots, permit);
        h.dummy = Arc::from(h.hash_in(&slot, &hex::encode(junk), rng)?);
        Ok(h)
    }

    /// The bound and the counters.
    pub fn stats(&self) -> ArgonStats {
        ArgonStats {
            max_concurrent: self.slots.max,
            running: self.slots.running.load(Ordering::SeqCst),
            peak: self.slots.peak.load(Ordering::SeqCst),
            waiting: self.slots.waiting.load(Ordering::SeqCst),
        }
    }

    /// Runs `f`, an Argon2 computation, once a permit is free: waits for it
    /// without holding a thread, then runs `f` on the blocking pool with the
    /// slot that lets it make an [`Argon2`] instance. Every Argon2 use of this
    /// type goes through here.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self, &ArgonSlot) -> T + Send + 'static,
    ) -> Result<T, CryptoError> {
        self.slots.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = self.slots.permits.clone().acquire_owned().await;
        self.slots.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit =
            permit.map_err(|_| CryptoError::PassphraseHash("the Argon2 bound is closed".into()))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let slot = ArgonSlot::enter(this.slots.clone(), permit);
            f(&this, &slot)
        })
        .await
        .map_err(|_| CryptoError::PassphraseHash("the hashing task failed".into()))
    }

    /// The configured Argon2id instance; needs a slot.
    fn argon(&self, _slot: &ArgonSlot) -> Result<Argon2<'static>, CryptoError> {
        let p = Params::new(
            self.params.memory_kib,
            self.params.iterations,
            self.params.parallelism,
            None,
        )
        .map_err(|e| CryptoError::PassphraseHash(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
    }

    fn hash_in(
        &self,
        slot: &ArgonSlot,
        passphrase: &str,
        rng: &dyn Random,
    ) -> Result<String, CryptoError> {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        let salt = SaltString::encode_b64(&salt)
            .map_err(|e| CryptoError::PassphraseHash(e.to_string()))?;
        self.argon(slot)?
            .hash_password(passphrase.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CryptoError::PassphraseHash(e.to_string()))
    }

    fn verify_in(&self, slot: &ArgonSlot, passphrase: &str, phc: Option<&str>) -> bool {
        let target = phc.unwrap_or(&self.dummy);
        let Ok(parsed) = PasswordHash::new(target) else {
            return false;
        };
        // The parameters come from the PHC string (hashes made with older
        // parameters still verify); the slot bounds it like any other.
        let ok = match self.argon(slot) {
            Ok(a) => a.verify_password(passphrase.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        };
        ok && phc.is_some()
    }

    /// Hashes a passphrase (a PHC string), within the bound.
    pub async fn hash(
        &self,
        passphrase: Passphrase,
        rng: Arc<dyn Random>,
    ) -> Result<String, CryptoError> {
        self.run(move |h, slot| h.hash_in(slot, passphrase.expose(), rng.as_ref()))
            .await?
    }

    /// True when `passphrase` matches `phc`, within the bound. With `phc` =
    /// None, verifies against a dummy hash (same cost) and returns false.
    pub async fn verify(
        &self,
        passphrase: Passphrase,
        phc: Option<String>,
    ) -> Result<bool, CryptoError> {
        self.run(move |h, slot| h.verify_in(slot, passphrase.expose(), phc.as_deref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;

    fn pass(s: &str) -> Passphrase {
        Passphrase::parse(s.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let rng: Arc<dyn Random> = Arc::new(SeededRandom::new(5));
        let h =
            PassphraseHasher::new(PassphraseParams::INSECURE_FAST_FOR_TESTS, rng.as_ref()).unwrap();
        let phc = h
            .hash(pass("correct horse battery"), rng.clone())
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(h
            .verify(pass("correct horse battery"), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!h
            .verify(pass("wrong horse battery"), Some(phc))
            .await
            .unwrap());
        assert!(!h.verify(pass("correct horse battery"), None).await.unwrap());
        assert!(!h
            .verify(pass("xxxxxxxxxxxx"), Some("not a phc string".into()))
            .await
            .unwrap());
    }

    /// Many callers at once: never more computations than the bound, and all
    /// of them finish.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_computations_stay_within_the_bound() {
        let rng: Arc<dyn Random> = Arc::new(SeededRandom::new(6));
        let h = PassphraseHasher::with_max_concurrent(
            PassphraseParams {
                memory_kib: 256,
                iterations: 2,
                parallelism: 1,
            },
            3,
            rng.as_ref(),
        )
        .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                h.verify(pass("a wrong passphrase"), None).await.unwrap()
            }));
        }
        for t in tasks {
            assert!(!t.await.unwrap());
        }
        let s = h.stats();
        assert_eq!(s.max_concurrent, 3);
        assert!(s.peak <= 3, "{s:?}");
        assert!(s.peak >= 1);
        assert_eq!(s.running, 0);
        assert_eq!(s.waiting, 0);
    }

    /// RFC 9106 section 5.3 (Argon2id) vector, through the argon2 crate we use.
    #[test]
    fn argon2id_rfc9106_vector() {
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .output_len(32)
            .data(argon2::AssociatedData::new(&[4u8; 12]).unwrap())
            .build()
            .unwrap();
        let argon = Argon2::new_with_secret(&[3u8; 8], Algorithm::Argon2id, Version::V0x13, params)
            .unwrap();
        let mut out = [0u8; 32];
        argon
            .hash_password_into(&[1u8; 32], &[2u8; 16], &mut out)
            .unwrap();
        assert_eq!(
            hex::encode(out),
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
        );
    }
}
