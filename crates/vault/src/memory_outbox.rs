//! An outbox that keeps messages in memory: for tests, benchmarks and
//! in-process tools that play the member's own mail client.

use crate::keys::CONFIRM_PREFIX;
use crate::mail::{Mail, Outbox};
use me2b_domain::member::Email;
use std::sync::Mutex;

/// Keeps every message sent through it.
#[derive(Debug, Default)]
pub struct MemoryOutbox(Mutex<Vec<Mail>>);

impl MemoryOutbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Mail>> {
        match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The subjects of the messages sent to `to`, oldest first.
    pub fn subjects_to(&self, to: &Email) -> Vec<&'static str> {
        self.lock()
            .iter()
            .filter(|m| &m.to == to)
            .map(|m| m.subject)
            .collect()
    }

    /// The bodies of the messages sent to `to`, oldest first.
    pub fn bodies_to(&self, to: &Email) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|m| &m.to == to)
            .map(|m| m.body().to_owned())
            .collect()
    }

    /// The confirmation token of the latest message to `to` that has one.
    pub fn confirmation_token(&self, to: &Email) -> Option<String> {
        self.lock()
            .iter()
            .rev()
            .filter(|m| &m.to == to)
            .find_map(|m| find_token(m.body()))
    }

    /// Signs a member up through `vault` (whose outbox this is) and
    /// confirms with the token from the message, as the member would.
    pub async fn sign_up(
        &self,
        vault: &crate::Vault,
        email: Email,
        passphrase: me2b_domain::member::Passphrase,
    ) -> Result<crate::SignedUp, crate::VaultError> {
        vault.request_sign_up(email.clone(), passphrase).await?;
        let token = self
            .confirmation_token(&email)
            .ok_or(crate::VaultError::UnknownConfirmation)?;
        vault.confirm_sign_up(&token).await
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// The first confirmation token in a message's text.
pub fn find_token(text: &str) -> Option<String> {
    let at = text.find(CONFIRM_PREFIX)?;
    Some(
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect(),
    )
}

#[async_trait::async_trait]
impl Outbox for MemoryOutbox {
    async fn send(&self, mail: Mail) -> Result<(), String> {
        self.lock().push(mail);
        Ok(())
    }
}
