//! Passphrase hashing (Argon2id), with a bound on how many Argon2 computations
//! run at once.
//!
//! Each Argon2id computation holds its whole memory cost (19 MiB with the
//! recommended parameters) while it runs. Without a bound, a flood of logins
//! ran hundreds at once (300 concurrent wrong logins took a node from 37 MB to
//! 16.3 GB resident). Every Argon2 computation of a [`PassphraseHasher`] (and
//! of any function added to it) needs an [`ArgonSlot`], which only
//! [`PassphraseHasher::run`] hands out: it waits, without holding a thread, for
//! one of `max_concurrent` permits, then runs the computation on one of its
//! pool. So at most `max_concurrent × memory cost` is ever in use for Argon2,
//! whoever calls; callers beyond that queue.
//!
//! The computations run on `max_concurrent` threads of the hasher's own, each
//! with one Argon2 memory buffer it keeps and reuses
//! (`hash_password_into_with_memory`): memory the allocator got back from a
//! computation stayed with the thread's arena, so on tokio's blocking pool,
//! with the bound at 2, a flood still grew the node to 611 MiB (to 289 MiB on
//! two threads that allocated per computation). With the buffers, Argon2
//! holds `max_concurrent × memory cost` and no more, however many come.

use crate::CryptoError;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use me2b_domain::member::Passphrase;
use me2b_domain::Random;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

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

/// The largest memory cost a stored hash may ask for when it is verified
/// (a hash made with more is refused rather than allocated): 256 MiB.
pub const MAX_VERIFY_MEMORY_KIB: u32 = 256 * 1024;

/// Length of the hash in a PHC string this hasher makes.
const OUTPUT_LEN: usize = 32;

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
    /// Computations started since the hasher was made (its own first one
    /// included): a test reads that a request did no Argon2 work.
    pub started: u64,
}

#[derive(Debug)]
struct Slots {
    permits: Arc<Semaphore>,
    max: usize,
    running: AtomicUsize,
    peak: AtomicUsize,
    waiting: AtomicUsize,
    started: AtomicU64,
}

thread_local! {
    /// The Argon2 memory of one of the hasher's threads, kept between
    /// computations.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// The right to run one Argon2 computation, held while it runs on one of the
/// hasher's threads; it lends that thread's memory. Only the hasher makes
/// one, so every Argon2 computation counts against the bound.
#[derive(Debug)]
pub struct ArgonSlot {
    slots: Arc<Slots>,
    _permit: OwnedSemaphorePermit,
}

impl ArgonSlot {
    fn enter(slots: Arc<Slots>, permit: OwnedSemaphorePermit) -> Self {
        slots.started.fetch_add(1, Ordering::SeqCst);
        let now = slots.running.fetch_add(1, Ordering::SeqCst) + 1;
        slots.peak.fetch_max(now, Ordering::SeqCst);
        Self {
            slots,
            _permit: permit,
        }
    }

    /// Runs `f` with `blocks` blocks of this thread's Argon2 memory (grown
    /// once, then reused).
    fn with_memory<R>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        MEMORY.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() < blocks {
                m.resize(blocks, Block::default());
            }
            f(&mut m[..blocks])
        })
    }
}

impl Drop for ArgonSlot {
    fn drop(&mut self) {
        self.slots.running.fetch_sub(1, Ordering::SeqCst);
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passphrases with Argon2id (PHC string format, which records
/// the algorithm, version, parameters and salt, so parameters can change later).
/// At most `max_concurrent` computations run at once (see the module). Cheap to
/// clone: clones share the bound and the threads.
#[derive(Clone, Debug)]
pub struct PassphraseHasher {
    params: PassphraseParams,
    /// A hash of a random passphrase, verified against when an account does not
    /// exist, so that a failed login takes as long either way.
    dummy: Arc<str>,
    slots: Arc<Slots>,
    /// The queue of the hasher's own threads.
    jobs: Arc<Mutex<mpsc::Sender<Job>>>,
}

impl PassphraseHasher {
    /// A hasher with [`default_max_concurrent`] computations at once.
    pub fn new(params: PassphraseParams, rng: &dyn Random) -> Result<Self, CryptoError> {
        Self::with_max_concurrent(params, default_max_concurrent(), rng)
    }

    /// A hasher running at most `max_concurrent` (at least 1) Argon2
    /// computations at once, on as many threads of its own.
    pub fn with_max_concurrent(
        params: PassphraseParams,
        max_concurrent: usize,
        rng: &dyn Random,
    ) -> Result<Self, CryptoError> {
        let max = max_concurrent.max(1);
        let permits = Arc::new(Semaphore::new(max));
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..max {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("me2b-argon2-{i}"))
                .spawn(move || loop {
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        Ok(job) => job(),
                        // Every hasher clone is gone.
                        Err(_) => return,
                    }
                })
                .map_err(|e| CryptoError::PassphraseHash(format!("cannot start: {e}")))?;
        }
        let mut h = Self {
            params,
            dummy: Arc::from(""),
            slots: Arc::new(Slots {
                permits: permits.clone(),
                max,
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                started: AtomicU64::new(0),
            }),
            jobs: Arc::new(Mutex::new(jobs)),
        };
        let mut junk = [0u8; 24];
        rng.fill(&mut junk);
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        // Nobody else holds the semaphore yet: a permit is free.
        let permit = permits
            .try_acquire_owned()
            .map_err(|_| CryptoError::PassphraseHash("no Argon2 permit at start".into()))?;
        let (done, result) = mpsc::channel();
        h.dispatch(
            permit,
            move |h, slot| h.hash_in(slot, &hex::encode(junk), &salt),
            move |r| {
                let _ = done.send(r);
            },
        )?;
        let dummy = result
            .recv()
            .map_err(|_| CryptoError::PassphraseHash("the hashing threads stopped".into()))??;
        h.dummy = Arc::from(dummy);
        Ok(h)
    }

    /// The bound and the counters.
    pub fn stats(&self) -> ArgonStats {
        ArgonStats {
            max_concurrent: self.slots.max,
            running: self.slots.running.load(Ordering::SeqCst),
            peak: self.slots.peak.load(Ordering::SeqCst),
            waiting: self.slots.waiting.load(Ordering::SeqCst),
            started: self.slots.started.load(Ordering::SeqCst),
        }
    }

    /// Hands `f` to one of the hasher's threads, with a slot for `permit`;
    /// its result goes to `deliver` once the slot is given back.
    fn dispatch<T>(
        &self,
        permit: OwnedSemaphorePermit,
        f: impl FnOnce(&Self, &ArgonSlot) -> T + Send + 'static,
        deliver: impl FnOnce(T) + Send + 'static,
    ) -> Result<(), CryptoError> {
        let this = self.clone();
        let job: Job = Box::new(move || {
            let out = {
                let slot = ArgonSlot::enter(this.slots.clone(), permit);
                f(&this, &slot)
            };
            deliver(out);
        });
        let sent = match self.jobs.lock() {
            Ok(q) => q.send(job),
            Err(poisoned) => poisoned.into_inner().send(job),
        };
        sent.map_err(|_| CryptoError::PassphraseHash("the hashing threads stopped".into()))
    }

    /// Runs `f`, an Argon2 computation, once a permit is free: waits for it
    /// without holding a thread, then runs `f` on one of the hasher's threads
    /// with the slot that lends it memory and lets it make an [`Argon2`]
    /// instance. Every Argon2 use of this type goes through here.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self, &ArgonSlot) -> T + Send + 'static,
    ) -> Result<T, CryptoError> {
        self.slots.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = self.slots.permits.clone().acquire_owned().await;
        self.slots.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit =
            permit.map_err(|_| CryptoError::PassphraseHash("the Argon2 bound is closed".into()))?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.dispatch(permit, f, move |r| {
            let _ = done.send(r);
        })?;
        result
            .await
            .map_err(|_| CryptoError::PassphraseHash("the hashing task failed".into()))
    }

    /// The configured Argon2id parameters.
    fn argon_params(&self) -> Result<Params, CryptoError> {
        Params::new(
            self.params.memory_kib,
            self.params.iterations,
            self.params.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(|e| CryptoError::PassphraseHash(e.to_string()))
    }

    /// Argon2 over the slot's memory.
    fn compute(
        slot: &ArgonSlot,
        argon: &Argon2<'_>,
        params: &Params,
        passphrase: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        slot.with_memory(params.block_count(), |blocks| {
            argon.hash_password_into_with_memory(passphrase, salt, out, blocks)
        })
        .map_err(|e| CryptoError::PassphraseHash(e.to_string()))
    }

    fn hash_in(
        &self,
        slot: &ArgonSlot,
        passphrase: &str,
        salt: &[u8; 16],
    ) -> Result<String, CryptoError> {
        let err = |e: argon2::password_hash::Error| CryptoError::PassphraseHash(e.to_string());
        let params = self.argon_params()?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = [0u8; OUTPUT_LEN];
        Self::compute(slot, &argon, &params, passphrase.as_bytes(), salt, &mut out)?;
        let salt = SaltString::encode_b64(salt).map_err(err)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(err)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(err)?),
        };
        Ok(phc.to_string())
    }

    /// The parameters new hashes and keys are made with.
    pub fn params(&self) -> PassphraseParams {
        self.params
    }

    /// Argon2id over `secret` with `salt` and `params`: 32 bytes of key
    /// material, from which member-held keys are derived (never stored).
    /// `params` are those recorded with a stored wrap, so parameters can
    /// change later without making older wraps unreadable; a memory cost past
    /// [`MAX_VERIFY_MEMORY_KIB`] is refused rather than allocated. It needs an
    /// [`ArgonSlot`], so it runs only inside [`PassphraseHasher::run`], within
    /// the bound, on the slot's memory.
    pub fn derive_key(
        &self,
        slot: &ArgonSlot,
        secret: &[u8],
        salt: &[u8; 16],
        params: PassphraseParams,
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        if params.memory_kib > MAX_VERIFY_MEMORY_KIB {
            return Err(CryptoError::PassphraseHash(
                "memory cost past the bound".into(),
            ));
        }
        let p = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(|e| CryptoError::PassphraseHash(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p.clone());
        let mut out = Zeroizing::new([0u8; 32]);
        Self::compute(slot, &argon, &p, secret, salt, out.as_mut())?;
        Ok(out)
    }

    fn verify_in(&self, slot: &ArgonSlot, passphrase: &str, phc: Option<&str>) -> bool {
        let target = phc.unwrap_or(&self.dummy);
        // The parameters come from the PHC string (hashes made with older
        // parameters still verify), within MAX_VERIFY_MEMORY_KIB.
        let Ok(parsed) = PasswordHash::new(target) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::V0x13,
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        if params.m_cost() > MAX_VERIFY_MEMORY_KIB {
            return false;
        }
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let argon = Argon2::new(algorithm, version, params.clone());
        let mut out = vec![0u8; expected.len()];
        if Self::compute(slot, &argon, &params, passphrase.as_bytes(), salt, &mut out).is_err() {
            return false;
        }
        let ok: bool = out.as_slice().ct_eq(expected.as_bytes()).into();
        ok && phc.is_some()
    }

    /// Hashes a passphrase (a PHC string), within the bound.
    pub async fn hash(
        &self,
        passphrase: Passphrase,
        rng: Arc<dyn Random>,
    ) -> Result<String, CryptoError> {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        self.run(move |h, slot| h.hash_in(slot, passphrase.expose(), &salt))
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

    /// Hashes made by the argon2 crate's own PHC API (as this node stored
    /// them before) verify, and ours verify there: the format is the same.
    #[tokio::test]
    async fn phc_strings_agree_with_the_crate_s_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let rng: Arc<dyn Random> = Arc::new(SeededRandom::new(7));
        let h =
            PassphraseHasher::new(PassphraseParams::INSECURE_FAST_FOR_TESTS, rng.as_ref()).unwrap();
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        )
        .hash_password(
            b"correct horse battery",
            &SaltString::encode_b64(&[9; 16]).unwrap(),
        )
        .unwrap()
        .to_string();
        assert!(h
            .verify(pass("correct horse battery"), Some(theirs.clone()))
            .await
            .unwrap());
        assert!(!h
            .verify(pass("wrong horse battery"), Some(theirs))
            .await
            .unwrap());
        let ours = h.hash(pass("correct horse battery"), rng).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        // A stored hash asking for more memory than allowed is refused, not run.
        let greedy = ours.replace("m=8,", "m=4000000,");
        assert!(!h
            .verify(pass("correct horse battery"), Some(greedy))
            .await
            .unwrap());
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
