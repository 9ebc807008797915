//! Member-held keys: sign-up by confirmation, login, sessions, passphrase
//! change, recovery, and the move off an older node's master-key wrap.
//!
//! The member's data key is stored only wrapped under their passphrase and
//! their recovery code (Argon2id through the node's passphrase hasher) and,
//! per session, under the session token (HKDF). The node reads a vault only
//! while its member has a session; the database and the master key together
//! open nothing of a member who is not logged in.

use crate::mail::Mail;
use crate::{MemberSession, NewSession, Vault, VaultError, SESSION_PREFIX};
use me2b_crypto::member_key::{self, TokenPurpose, WrapKind, WrapLock};
use me2b_crypto::ArgonSlot;
use me2b_crypto::{Aad, DataKey, RecoveryCode, SecretToken};
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::{MemberId, Timestamp};
use me2b_storage::{MemberRow, MemberWraps, NewMember, SessionRow, SignUpRow, StorageError};

/// Prefix of sign-up confirmation tokens.
pub const CONFIRM_PREFIX: &str = "me2b_c_";
/// How long a confirmation token works.
pub const SIGN_UP_TTL_SECONDS: i64 = 24 * 3600;

/// What a member is told once, in plain words, with their recovery code.
pub const RECOVERY_NOTICE: &str = "This is your recovery code. It is shown once: print it or write it down and keep it apart from your passphrase. Your vault is locked with keys only you hold. If you lose both your passphrase and this code, nobody can open your vault again, not even the node's operator.";

/// A confirmed sign-up: the first session and the recovery code (shown once).
#[derive(Debug)]
pub struct SignedUp {
    pub session: NewSession,
    pub recovery_code: RecoveryCode,
}

/// A login. `recovery_code` is set when the member's key was just moved
/// off an older node's master key (or after a recovery): shown once.
#[derive(Debug)]
pub struct LoggedIn {
    pub session: NewSession,
    pub recovery_code: Option<RecoveryCode>,
}

/// What `retire_legacy_wraps` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegacyReport {
    /// Members still on the master-key wrap before this run.
    pub legacy: usize,
    /// Warned now (inactive longer than the limit, not warned before).
    pub warned: usize,
    /// Warned at least the grace period ago and still not logged in: their
    /// master-key wrap was destroyed, and with it their vault (erased).
    pub erased: usize,
    /// Warned, still within the grace period.
    pub waiting: usize,
    /// Could not be warned (no outbox, or their address is unreadable):
    /// left alone.
    pub unreachable: usize,
}

fn internal(e: impl std::fmt::Display) -> VaultError {
    VaultError::Internal(e.to_string())
}

impl Vault {
    /// Runs `f`, an Argon2 computation, through the passphrase hasher's
    /// bound ([`me2b_crypto::PassphraseHasher::run`]): it waits for an
    /// [`ArgonSlot`] and runs on one of the hasher's threads, on the slot's
    /// memory, so a flood of sign-ups or logins cannot hold more than the
    /// bound's memory at once.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&me2b_crypto::PassphraseHasher, &ArgonSlot, &dyn me2b_domain::Random) -> T
            + Send
            + 'static,
    ) -> Result<T, VaultError> {
        let rng = self.rng.clone();
        self.hasher
            .run(move |h, slot| f(h, slot, rng.as_ref()))
            .await
            .map_err(internal)
    }

    /// Asks to open an account. Whether or not the address has one, the
    /// answer, the work (Argon2id included) and the writes are the same: a
    /// sign-up row and a message to the address. A new address's message
    /// carries a one-time confirmation token; a taken one's says the owner
    /// already has an account, and carries none.
    #[tracing::instrument(skip_all)]
    pub async fn request_sign_up(
        &self,
        email: Email,
        passphrase: Passphrase,
    ) -> Result<(), VaultError> {
        let outbox = self.outbox.get().cloned().ok_or_else(|| {
            internal("no outbox is configured: sign-up confirmations cannot be sent")
        })?;
        let index = self.keys.email_index(&email);
        let existing = self.store.member_by_email_index(&index).await?;
        let member = MemberId::generate(self.rng.as_ref());
        let token = SecretToken::generate(CONFIRM_PREFIX, self.rng.as_ref());
        let lock = self
            .blocking(move |h, slot, rng| {
                WrapLock::derive(h, slot, WrapKind::Passphrase, passphrase.expose(), rng)
            })
            .await?
            .map_err(internal)?;
        let now = self.clock.now();
        let expires_at = now.plus_seconds(SIGN_UP_TTL_SECONDS);
        self.store
            .insert_sign_up(&SignUpRow {
                token_hash: token.hash(),
                member,
                email_index: index,
                email_ct: member_key::wrap_under_token(
                    TokenPurpose::SignUp,
                    token.expose(),
                    member,
                    email.as_str().as_bytes(),
                    self.rng.as_ref(),
                ),
                passphrase_lock: lock.to_bytes(),
                created_at: now,
                expires_at,
            })
            .await?;
        let mut ev = AuditEvent::new(Actor::Anonymous, Action::MemberSignupRequest);
        let mail = match &existing {
            // The token is dropped unsent: that sign-up row can never be confirmed.
            Some(row) => {
                ev = ev.subject(row.id);
                Mail::already_registered(email)
            }
            None => Mail::confirm_sign_up(email, token.expose(), expires_at),
        };
        outbox.send(mail).await.map_err(|e| {
            tracing::error!(error = %e, "a sign-up message could not be sent");
            VaultError::Internal("the confirmation message could not be sent".into())
        })?;
        self.audit.record(ev).await?;
        Ok(())
    }

    /// Confirms a sign-up: creates the account with a fresh data key, wrapped
    /// for the passphrase given at sign-up (through its public half) and for a
    /// new recovery code, and opens the first session.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_sign_up(&self, token: &str) -> Result<SignedUp, VaultError> {
        if !token.starts_with(CONFIRM_PREFIX) || token.len() > 128 {
            return Err(VaultError::UnknownConfirmation);
        }
        let hash = me2b_crypto::hash_token(token);
        let now = self.clock.now();
        let row = self
            .store
            .sign_up(&hash, now)
            .await?
            .ok_or(VaultError::UnknownConfirmation)?;
        let member = row.member;
        let email =
            member_key::unwrap_under_token(TokenPurpose::SignUp, token, member, &row.email_ct)
                .ok()
                .and_then(|b| String::from_utf8(b.to_vec()).ok())
                .and_then(|t| Email::parse(&t).ok())
                .ok_or(VaultError::Integrity { what: "sign-up" })?;
        let lock = WrapLock::parse(&row.passphrase_lock, WrapKind::Passphrase)
            .map_err(|_| VaultError::Integrity { what: "sign-up" })?;
        let dek = DataKey::generate(self.rng.as_ref());
        let code = RecoveryCode::generate(self.rng.as_ref());
        let recovery_wrap = self.recovery_wrap(member, &dek, &code).await?;
        let (session, session_row) = self.new_session(member, &dek);
        let new = NewMember {
            id: member,
            email_index: row.email_index,
            email_ct: dek.seal(
                self.rng.as_ref(),
                &Aad::email(member),
                email.as_str().as_bytes(),
            ),
            passphrase_wrap: lock.wrap(member, &dek, self.rng.as_ref()),
            recovery_wrap,
            created_at: now,
        };
        match self.store.confirm_sign_up(&hash, &new, &session_row).await {
            Ok(true) => {}
            Ok(false) => return Err(VaultError::UnknownConfirmation),
            Err(StorageError::Conflict) => return Err(VaultError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        self.audit
            .record_all(vec![
                AuditEvent::new(Actor::Member(member), Action::MemberSignup).subject(member),
                AuditEvent::new(Actor::Node, Action::DataKeyCreate)
                    .subject(member)
                    .object(member),
            ])
            .await?;
        Ok(SignedUp {
            session,
            recovery_code: code,
        })
    }

    /// The recovery wrap of `dek` for `code` (Argon2id within the hasher's bound).
    async fn recovery_wrap(
        &self,
        member: MemberId,
        dek: &DataKey,
        code: &RecoveryCode,
    ) -> Result<Vec<u8>, VaultError> {
        let secret = zeroize::Zeroizing::new(code.expose().to_owned());
        let lock = self
            .blocking(move |h, slot, rng| {
                WrapLock::derive(h, slot, WrapKind::RecoveryCode, &secret, rng)
            })
            .await?
            .map_err(internal)?;
        Ok(lock.wrap(member, dek, self.rng.as_ref()))
    }

    /// The passphrase wrap of `dek` (Argon2id within the hasher's bound).
    async fn passphrase_wrap(
        &self,
        member: MemberId,
        dek: &DataKey,
        passphrase: Passphrase,
    ) -> Result<Vec<u8>, VaultError> {
        let lock = self
            .blocking(move |h, slot, rng| {
                WrapLock::derive(h, slot, WrapKind::Passphrase, passphrase.expose(), rng)
            })
            .await?
            .map_err(internal)?;
        Ok(lock.wrap(member, dek, self.rng.as_ref()))
    }

    /// A new session: its token (shown once) and the row holding the data
    /// key wrapped for that token.
    fn new_session(&self, member: MemberId, dek: &DataKey) -> (NewSession, SessionRow) {
        let token = SecretToken::generate(SESSION_PREFIX, self.rng.as_ref());
        let now = self.clock.now();
        let expires_at = now.plus_seconds(self.session_ttl_seconds);
        let row = SessionRow {
            token_hash: token.hash(),
            member,
            created_at: now,
            expires_at,
            wrapped_dek: member_key::wrap_for_session(
                token.expose(),
                member,
                dek,
                self.rng.as_ref(),
            ),
        };
        (
            NewSession {
                member,
                token,
                expires_at,
            },
            row,
        )
    }

    async fn open_session(
        &self,
        member: MemberId,
        dek: &DataKey,
    ) -> Result<NewSession, VaultError> {
        let (session, row) = self.new_session(member, dek);
        self.store.insert_session(&row).await?;
        Ok(session)
    }

    /// Opens a wrap with a secret the member typed, or does the same
    /// Argon2id work for nothing when there is no wrap: Ok(None) when the
    /// secret does not open it.
    async fn open_with_secret(
        &self,
        kind: WrapKind,
        member: Option<MemberId>,
        wrap: Option<Vec<u8>>,
        secret: zeroize::Zeroizing<String>,
    ) -> Result<Option<DataKey>, VaultError> {
        self.blocking(move |h, slot, _| match (member, wrap) {
            (Some(m), Some(w)) => {
                member_key::unwrap_with_secret(h, slot, kind, m, &secret, &w).ok()
            }
            _ => {
                member_key::burn_secret(h, slot, &secret);
                None
            }
        })
        .await
    }

    /// The data key of a member on an older node's wrap, if the passphrase
    /// matches its PHC hash.
    async fn open_legacy(
        &self,
        row: &MemberRow,
        passphrase: &Passphrase,
    ) -> Result<Option<DataKey>, VaultError> {
        let (Some(phc), Some(wrapped)) = (row.passphrase_hash.clone(), row.wrapped_dek.clone())
        else {
            return Ok(None);
        };
        let ok = self
            .hasher
            .verify(passphrase.clone(), Some(phc))
            .await
            .map_err(internal)?;
        if !ok {
            return Ok(None);
        }
        self.keys
            .legacy_unwrap(row.id, &wrapped)
            .map(Some)
            .map_err(|_| VaultError::Integrity { what: "data key" })
    }

    /// A failed login (or recovery) for the address with keyed index
    /// `index`: one audit entry per account per minute, with a count; the
    /// account owner sees it in their audit log. Unknown addresses are
    /// tallied the same way, under no member.
    async fn login_failed(
        &self,
        index: [u8; 32],
        row: Option<&MemberRow>,
    ) -> Result<VaultError, VaultError> {
        let subject = row.map(|r| r.id);
        let now = self.clock.now().unix_millis();
        if let Some(due) = self.failed_logins.fail(index, subject, now) {
            self.audit.record(crate::failed_login_event(due)).await?;
        }
        Ok(VaultError::InvalidCredentials)
    }

    /// Opens the passphrase wrap and a session. An unknown address costs the
    /// same Argon2id work. A member still on an older node's master-key wrap
    /// has their key moved to wraps they hold now (a new recovery code is
    /// returned, shown once), and the old wrap is cleared.
    #[tracing::instrument(skip_all)]
    pub async fn log_in(
        &self,
        email: Email,
        passphrase: Passphrase,
    ) -> Result<LoggedIn, VaultError> {
        let index = self.keys.email_index(&email);
        let row = self.store.member_by_email_index(&index).await?;
        let legacy = row
            .as_ref()
            .is_some_and(|r| r.passphrase_wrap.is_none() && r.wrapped_dek.is_some());
        let (dek, moved) = if legacy {
            let r = row.as_ref().ok_or(VaultError::InvalidCredentials)?;
            (self.open_legacy(r, &passphrase).await?, true)
        } else {
            let secret = zeroize::Zeroizing::new(passphrase.expose().to_owned());
            let found = row.as_ref().map(|r| r.id);
            let wrap = row.as_ref().and_then(|r| r.passphrase_wrap.clone());
            (
                self.open_with_secret(WrapKind::Passphrase, found, wrap, secret)
                    .await?,
                false,
            )
        };
        let (Some(row), Some(dek)) = (row.as_ref(), dek) else {
            return Err(self.login_failed(index, row.as_ref()).await?);
        };
        let member = row.id;
        let recovery_code = if moved {
            let code = RecoveryCode::generate(self.rng.as_ref());
            let wraps = MemberWraps {
                passphrase_wrap: self.passphrase_wrap(member, &dek, passphrase).await?,
                recovery_wrap: Some(self.recovery_wrap(member, &dek, &code).await?),
            };
            if !self.store.replace_member_wraps(member, &wraps).await? {
                return Err(VaultError::InvalidCredentials);
            }
            self.audit
                .record(
                    AuditEvent::new(Actor::Member(member), Action::DataKeyRewrap)
                        .subject(member)
                        .object("master-key-wrap-retired"),
                )
                .await?;
            Some(code)
        } else {
            None
        };
        let session = self.open_session(member, &dek).await?;
        self.store
            .touch_member_login(member, self.clock.now())
            .await?;
        self.audit
            .record(AuditEvent::new(Actor::Member(member), Action::MemberLogin).subject(member))
            .await?;
        self.after_login(member, session.expires_at, dek).await;
        Ok(LoggedIn {
            session,
            recovery_code,
        })
    }

    /// Tells the session hook (the consent service) that the member's key is
    /// at hand, so that what runs for them (their envelopes) is brought up
    /// to date. A failure is logged; the next login tries again.
    async fn after_login(&self, member: MemberId, expires_at: Timestamp, key: DataKey) {
        if let Some(hook) = self.session_hook.get() {
            let s = MemberSession {
                member,
                expires_at,
                key,
            };
            if let Err(e) = hook.logged_in(&s).await {
                tracing::warn!(error = %e, "what runs in a member's session could not be brought up to date at login");
            }
        }
    }

    /// Changes the passphrase: the current one must open the key; the key
    /// is wrapped under the new one, and every other session of the member
    /// ends (`keep`: the token of this one).
    #[tracing::instrument(skip_all)]
    pub async fn change_passphrase(
        &self,
        s: &MemberSession,
        keep: &str,
        current: Passphrase,
        new: Passphrase,
    ) -> Result<(), VaultError> {
        let row = self
            .store
            .member(s.member)
            .await?
            .ok_or(VaultError::InvalidSession)?;
        let secret = zeroize::Zeroizing::new(current.expose().to_owned());
        let opened = self
            .open_with_secret(
                WrapKind::Passphrase,
                Some(s.member),
                row.passphrase_wrap.clone(),
                secret,
            )
            .await?;
        if opened.is_none() {
            self.audit
                .record(
                    AuditEvent::new(Actor::Member(s.member), Action::DataKeyRewrap)
                        .subject(s.member)
                        .object("passphrase")
                        .outcome(Outcome::Denied),
                )
                .await?;
            return Err(VaultError::InvalidCredentials);
        }
        let wraps = MemberWraps {
            passphrase_wrap: self.passphrase_wrap(s.member, &s.key, new).await?,
            recovery_wrap: None,
        };
        if !self.store.replace_member_wraps(s.member, &wraps).await? {
            return Err(VaultError::InvalidSession);
        }
        let keep = me2b_crypto::hash_token(keep);
        self.store
            .delete_member_sessions(s.member, Some(&keep))
            .await?;
        self.sessions.remove_member(s.member);
        self.audit
            .record(
                AuditEvent::new(Actor::Member(s.member), Action::DataKeyRewrap)
                    .subject(s.member)
                    .object("passphrase"),
            )
            .await?;
        Ok(())
    }

    /// Recovery: the e-mail address and the recovery code open the key; it
    /// is wrapped under the new passphrase and a new recovery code (the old
    /// one stops working), every session ends, and a new one opens. An
    /// unknown address costs the same Argon2id work as a wrong code.
    #[tracing::instrument(skip_all)]
    pub async fn recover(
        &self,
        email: Email,
        code: RecoveryCode,
        new: Passphrase,
    ) -> Result<LoggedIn, VaultError> {
        let index = self.keys.email_index(&email);
        let row = self.store.member_by_email_index(&index).await?;
        let secret = zeroize::Zeroizing::new(code.expose().to_owned());
        let dek = self
            .open_with_secret(
                WrapKind::RecoveryCode,
                row.as_ref().map(|r| r.id),
                row.as_ref().and_then(|r| r.recovery_wrap.clone()),
                secret,
            )
            .await?;
        let (Some(row), Some(dek)) = (row.as_ref(), dek) else {
            return Err(self.login_failed(index, row.as_ref()).await?);
        };
        let member = row.id;
        let next = RecoveryCode::generate(self.rng.as_ref());
        let wraps = MemberWraps {
            passphrase_wrap: self.passphrase_wrap(member, &dek, new).await?,
            recovery_wrap: Some(self.recovery_wrap(member, &dek, &next).await?),
        };
        if !self.store.replace_member_wraps(member, &wraps).await? {
            return Err(VaultError::InvalidCredentials);
        }
        self.store.delete_member_sessions(member, None).await?;
        self.sessions.remove_member(member);
        let session = self.open_session(member, &dek).await?;
        self.store
            .touch_member_login(member, self.clock.now())
            .await?;
        self.audit
            .record_all(vec![
                AuditEvent::new(Actor::Member(member), Action::MemberRecover).subject(member),
                AuditEvent::new(Actor::Member(member), Action::DataKeyRewrap)
                    .subject(member)
                    .object("recovery"),
            ])
            .await?;
        self.after_login(member, session.expires_at, dek).await;
        Ok(LoggedIn {
            session,
            recovery_code: Some(next),
        })
    }

    /// Checks the member's passphrase (their wrap, or an older node's hash).
    pub(crate) async fn passphrase_matches(
        &self,
        row: &MemberRow,
        passphrase: Passphrase,
    ) -> Result<bool, VaultError> {
        if row.passphrase_wrap.is_none() && row.wrapped_dek.is_some() {
            return Ok(self.open_legacy(row, &passphrase).await?.is_some());
        }
        let secret = zeroize::Zeroizing::new(passphrase.expose().to_owned());
        Ok(self
            .open_with_secret(
                WrapKind::Passphrase,
                Some(row.id),
                row.passphrase_wrap.clone(),
                secret,
            )
            .await?
            .is_some())
    }

    /// Members whose data key is still wrapped under the master key (they
    /// have not logged in since the node moved to member-held keys).
    pub async fn legacy_member_count(&self) -> Result<u64, VaultError> {
        Ok(self.store.count_legacy_members().await?)
    }

    /// Finishes the move off the master key for members who stay away. A
    /// member on the old wrap who has not logged in for `inactive_seconds`
    /// is warned once (a message to their address, which only the old wrap
    /// can still open); one warned at least `grace_seconds` ago who still
    /// has not logged in loses the old wrap, and with it the vault: they are
    /// erased as `DELETE /v1/me` would (the erasure hooks run too).
    #[tracing::instrument(skip_all)]
    pub async fn retire_legacy_wraps(
        &self,
        inactive_seconds: i64,
        grace_seconds: i64,
    ) -> Result<LegacyReport, VaultError> {
        let now = self.clock.now();
        let members = self.store.legacy_members().await?;
        let mut report = LegacyReport {
            legacy: members.len(),
            ..LegacyReport::default()
        };
        for m in members {
            if m.last_login_at.plus_seconds(inactive_seconds) > now {
                continue;
            }
            match m.warned_at {
                None => {
                    let email = self
                        .keys
                        .legacy_unwrap(m.id, &m.wrapped_dek)
                        .ok()
                        .zip(m.email_ct.as_ref())
                        .and_then(|(k, ct)| k.open(&Aad::email(m.id), ct).ok())
                        .and_then(|b| String::from_utf8(b).ok())
                        .and_then(|t| Email::parse(&t).ok());
                    let (Some(email), Some(outbox)) = (email, self.outbox.get()) else {
                        report.unreachable += 1;
                        continue;
                    };
                    let deadline = now.plus_seconds(grace_seconds);
                    if let Err(e) = outbox
                        .send(Mail::legacy_wrap_retiring(email, deadline))
                        .await
                    {
                        tracing::warn!(error = %e, "a member could not be warned; they will be tried again");
                        report.unreachable += 1;
                        continue;
                    }
                    self.store.mark_legacy_warned(m.id, now).await?;
                    self.audit
                        .record(
                            AuditEvent::new(Actor::Operator, Action::DataKeyLegacyWarning)
                                .subject(m.id),
                        )
                        .await?;
                    report.warned += 1;
                }
                Some(w) if w.plus_seconds(grace_seconds) <= now => {
                    self.erase_member(Actor::Operator, m.id).await?;
                    report.erased += 1;
                }
                Some(_) => report.waiting += 1,
            }
        }
        Ok(report)
    }
}
