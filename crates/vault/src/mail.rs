//! Messages the vault sends to members' addresses (sign-up confirmation, a
//! note to an address that already has an account, the warning before an
//! older node's key wrap is retired) and the outbox they go through. The
//! node supplies the outbox: a directory of `.eml` files by default, or an
//! SMTP relay.

use me2b_domain::member::Email;
use me2b_domain::Timestamp;
use secrecy::{ExposeSecret, SecretString};

/// One message to one member's address. Its body may carry a one-time
/// token: `Debug` shows neither address nor body.
pub struct Mail {
    pub to: Email,
    pub subject: &'static str,
    body: SecretString,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Mail {
    pub fn body(&self) -> &str {
        self.body.expose_secret()
    }

    /// The confirmation of a new address: it carries the one-time token.
    pub fn confirm_sign_up(to: Email, token: &str, expires_at: Timestamp) -> Self {
        Self {
            to,
            subject: "Confirm your me2b account",
            body: SecretString::from(format!(
                "Someone (we hope you) asked to open a me2b account with this address.\n\
                 \n\
                 To open it, open the confirmation page of your me2b node's web site,\n\
                 /signup/confirm (the site where you signed up), and enter this one-time\n\
                 token there (it works once, until {}):\n\
                 \n\
                 \u{20}   {token}\n\
                 \n\
                 (A program confirms through the API instead:\n\
                 POST /v1/members/confirm {{\"token\": \"<the token>\"}}.)\n\
                 \n\
                 You will then be shown a recovery code once. Print it or write it down:\n\
                 with your passphrase it is the only way into your vault. If you lose\n\
                 both, nobody can open your vault again, not even the node's operator.\n\
                 \n\
                 If you did not ask for this, ignore this message: no account is made.\n",
                expires_at.to_rfc3339()
            )),
        }
    }

    /// The note to an address that already has an account (no token).
    pub fn already_registered(to: Email) -> Self {
        Self {
            to,
            subject: "You already have a me2b account",
            body: SecretString::from(
                "Someone (perhaps you) asked to open a me2b account with this address,\n\
                 but you already have one. Nothing was changed.\n\
                 \n\
                 Log in with your passphrase (POST /v1/sessions). If you forgot it, use\n\
                 your recovery code (POST /v1/sessions/recovery) to set a new one.\n\
                 \n\
                 If this was not you, you need do nothing: the attempt is in your audit\n\
                 log (GET /v1/me/audit)."
                    .to_owned(),
            ),
        }
    }

    /// The warning before an older node's wrap of the data key is retired.
    pub fn legacy_wrap_retiring(to: Email, deadline: Timestamp) -> Self {
        Self {
            to,
            subject: "Log in to keep your me2b vault",
            body: SecretString::from(format!(
                "Your me2b node now keeps your vault under keys only you hold: your\n\
                 passphrase and a recovery code. Your vault moves to them the next time\n\
                 you log in (you will be shown your recovery code then).\n\
                 \n\
                 You have not logged in since. Please log in before {}.\n\
                 After that date the node's old key to your vault is destroyed, and\n\
                 with it your vault and your account: nobody can open it again.\n",
                deadline.to_rfc3339()
            )),
        }
    }
}

/// Where messages go. The node's default writes each to a file the
/// operator's mail relay sends; with an SMTP relay configured, they go there.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync + std::fmt::Debug {
    /// Sends (or durably queues) the message. The error is a message for the
    /// operator's log; it must not carry the address or the body.
    async fn send(&self, mail: Mail) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_confirmation_sends_the_member_to_the_web_page_first() {
        let m = Mail::confirm_sign_up(
            Email::parse("ana@example.org").unwrap(),
            "me2b_c_TOKEN",
            Timestamp::from_unix_millis(0),
        );
        let page = m.body().find("/signup/confirm").unwrap();
        let api = m.body().find("POST /v1/members/confirm").unwrap();
        assert!(page < api, "{}", m.body());
        assert_eq!(crate::find_token(m.body()).as_deref(), Some("me2b_c_TOKEN"));
    }
}
