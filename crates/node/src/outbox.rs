//! Where messages to members go: by default a directory of `.eml` files in
//! the data directory (`outbox/`, each file 0600: a confirmation carries a
//! one-time token) that the operator's mail relay sends; with `smtp_url`
//! set, an SMTP relay through lettre (TLS unless the relay is on loopback).

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use me2b_domain::Random;
use me2b_vault::{Mail, Outbox};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the outbox directory in the data directory.
pub const OUTBOX_DIR: &str = "outbox";

fn message(from: &str, mail: &Mail) -> Result<Message, String> {
    let from = from
        .parse()
        .map_err(|_| "the sender address (mail_from) is not a valid address".to_owned())?;
    let to = mail
        .to
        .as_str()
        .parse()
        .map_err(|_| "a recipient address could not be used".to_owned())?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body().to_owned())
        .map_err(|_| "the message could not be built".to_owned())
}

/// Writes each message as an `.eml` file the operator's mail relay sends.
#[derive(Debug)]
pub struct FileOutbox {
    dir: PathBuf,
    from: String,
    rng: Arc<dyn Random>,
}

impl FileOutbox {
    pub fn new(dir: PathBuf, from: String, rng: Arc<dyn Random>) -> Result<Self, String> {
        crate::create_private_dir(&dir).map_err(|e| e.to_string())?;
        Ok(Self { dir, from, rng })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[async_trait::async_trait]
impl Outbox for FileOutbox {
    async fn send(&self, mail: Mail) -> Result<(), String> {
        let bytes = zeroize::Zeroizing::new(message(&self.from, &mail)?.formatted());
        let mut id = [0u8; 8];
        self.rng.fill(&mut id);
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!("{millis:013}-{}.eml", hex::encode(id));
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let done = self.dir.join(name);
        let tmp2 = tmp.clone();
        tokio::task::spawn_blocking(move || {
            write_private(&tmp2, &bytes)?;
            std::fs::rename(&tmp2, &done)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write to the outbox: {e}")
        })
    }
}

/// Sends through an SMTP relay.
pub struct SmtpOutbox {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
}

impl std::fmt::Debug for SmtpOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpOutbox")
    }
}

/// True when `url`'s relay is on this machine, or the link is TLS
/// (`smtps://`, or `smtp://…?tls=required`).
fn smtp_url_allowed(url: &str) -> bool {
    if url.starts_with("smtps://") || url.contains("tls=required") {
        return true;
    }
    let Some(rest) = url.strip_prefix("smtp://") else {
        return false;
    };
    let host_port = rest.rsplit('@').next().unwrap_or("");
    let host_port = host_port.split(['/', '?']).next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl SmtpOutbox {
    /// `smtp://host:port` (loopback only), `smtp://…?tls=required`
    /// (STARTTLS) or `smtps://host:port`; credentials as `user:pass@`.
    pub fn new(url: &str, from: String) -> Result<Self, String> {
        if !smtp_url_allowed(url) {
            return Err(
                "an SMTP relay off this machine needs TLS: use smtps://… or smtp://…?tls=required"
                    .into(),
            );
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| "smtp_url is not a valid SMTP URL".to_owned())?
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait::async_trait]
impl Outbox for SmtpOutbox {
    async fn send(&self, mail: Mail) -> Result<(), String> {
        let m = message(&self.from, &mail)?;
        self.transport
            .send(m)
            .await
            .map(|_| ())
            .map_err(|e| format!("the SMTP relay refused or could not be reached: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use me2b_crypto::SeededRandom;
    use me2b_domain::member::Email;

    #[test]
    fn only_loopback_relays_go_without_tls() {
        for (url, ok) in [
            ("smtp://127.0.0.1:25", true),
            ("smtp://localhost:2525", true),
            ("smtp://[::1]:25", true),
            ("smtp://user:pw@127.0.0.1:25", true),
            ("smtp://mail.example.org:25", false),
            ("smtp://127.0.0.1.example.org:25", false),
            ("smtp://mail.example.org:587?tls=required", true),
            ("smtps://mail.example.org:465", true),
            ("http://127.0.0.1", false),
        ] {
            assert_eq!(smtp_url_allowed(url), ok, "{url}");
        }
        assert!(SmtpOutbox::new("smtp://mail.example.org:25", "me2b@localhost".into()).is_err());
        assert!(SmtpOutbox::new("smtp://127.0.0.1:25", "me2b@localhost".into()).is_ok());
    }

    #[tokio::test]
    async fn the_file_outbox_writes_private_eml_files() {
        let dir = tempfile::tempdir().unwrap();
        let o = FileOutbox::new(
            dir.path().join(OUTBOX_DIR),
            "me2b@localhost".into(),
            Arc::new(SeededRandom::new(1)),
        )
        .unwrap();
        let to = Email::parse("ana@example.org").unwrap();
        o.send(Mail::confirm_sign_up(
            to,
            "me2b_c_abc",
            me2b_domain::Timestamp::from_unix_millis(0),
        ))
        .await
        .unwrap();
        let files: Vec<_> = std::fs::read_dir(o.dir()).unwrap().collect();
        assert_eq!(files.len(), 1);
        let path = files[0].as_ref().unwrap().path();
        assert!(path.extension().is_some_and(|e| e == "eml"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("To: ana@example.org"));
        assert!(text.contains("me2b_c_abc"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
