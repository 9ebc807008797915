//! A transcryptor in another process, reached over HTTP (`me2b transcryptor`).
//!
//! Two routes, both `POST` with a JSON body and `Authorization: Bearer <token>`:
//!
//! * `{base}/v1/transcrypt`: a [`TranscryptRequest`] in, a
//!   [`TranscryptResponse`] out;
//! * `{base}/v1/key-share`: a [`KeyShareRequest`] in, the transcryptor's
//!   `SessionKeyShares` for that domain out.
//!
//! Errors come back as `{"error": {"code", "message"}}` and are mapped to
//! [`TrustError`]: an unreachable or silent transcryptor is
//! [`TrustError::TranscryptorDown`]; a refusal (403 `transcription_refused`,
//! `grant_expired`, `bad_grant`) is the matching refusal; anything else is
//! [`TrustError::TranscryptorFailed`] with the server's code.
//!
//! **Transport security.** A link to another host is `https://` with the
//! transcryptor's certificate pinned (rustls; `me2b trust init` makes each
//! transcryptor a self-signed certificate and writes it into the links, so no
//! certificate authority is trusted at all). Plain `http://` is refused
//! except on loopback (a transcryptor on the same host).

use crate::domain::{Domain, Requester};
use crate::link::TranscryptorLink;
use crate::wire::{Item, KeyShareRequest, TranscryptRequest, TranscryptResponse};
use crate::TrustError;
use async_trait::async_trait;
use base64::Engine as _;
use libpep::keys::distribution::SessionKeyShares;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use zeroize::Zeroizing;

/// How long connecting to a transcryptor may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one request may take, answer included (a full batch of
/// [`crate::wire::MAX_BATCH`] items takes a couple of seconds).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A transcryptor behind HTTP.
#[derive(Clone)]
pub struct RemoteLink {
    name: String,
    base_url: String,
    token: Zeroizing<String>,
    client: reqwest::Client,
}

/// The token is a secret: printed without it.
impl std::fmt::Debug for RemoteLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLink")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("token", &"<secret>")
            .finish_non_exhaustive()
    }
}

/// The error body every me2b server answers with.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
}

/// Whether `base_url` (`http://host:port`) names a loopback host.
fn is_loopback(base_url: &str) -> bool {
    let rest = base_url.trim_start_matches("http://");
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.split([':', '/']).next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl RemoteLink {
    /// A link to the transcryptor `name` at `base_url` (`https://host:port`,
    /// or `http://` on loopback only; without a path), authenticating with
    /// `token`. An `https` link trusts only `cert_der`, the transcryptor's
    /// own certificate.
    pub fn new(
        name: impl Into<String>,
        base_url: &str,
        token: impl Into<String>,
    ) -> Result<Self, TrustError> {
        Self::pinned(name, base_url, token, None)
    }

    /// [`RemoteLink::new`] with the transcryptor's certificate (DER) pinned.
    pub fn pinned(
        name: impl Into<String>,
        base_url: &str,
        token: impl Into<String>,
        cert_der: Option<&[u8]>,
    ) -> Result<Self, TrustError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://"))
            || base_url.len() <= "https://".len()
        {
            return Err(TrustError::Invalid(
                "a transcryptor url is https://host:port, or http://host:port on loopback",
            ));
        }
        let https = base_url.starts_with("https://");
        if !https && !is_loopback(&base_url) {
            return Err(TrustError::Invalid(
                "plain http:// is refused except on loopback: give the transcryptor an https:// url and its certificate",
            ));
        }
        let token = Zeroizing::new(token.into());
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TrustError::Invalid(
                "a transcryptor token is non-empty and has no spaces",
            ));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .https_only(https);
        if https {
            let der = cert_der.ok_or(TrustError::Invalid(
                "an https:// transcryptor needs its certificate (links.json `cert`) to pin",
            ))?;
            let cert = reqwest::Certificate::from_der(der)
                .map_err(|_| TrustError::Invalid("the transcryptor's certificate is not DER"))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|_| TrustError::Invalid("cannot build the HTTP client"))?;
        Ok(Self {
            name: name.into(),
            base_url,
            token,
            client,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn down(&self) -> TrustError {
        TrustError::TranscryptorDown {
            name: self.name.clone(),
        }
    }

    fn failed(&self, code: impl Into<String>) -> TrustError {
        TrustError::TranscryptorFailed {
            name: self.name.clone(),
            code: code.into(),
        }
    }

    /// Maps a transport error. Anything before an answer arrived (refused,
    /// reset, timed out) means the transcryptor is down for this request.
    fn transport(&self, e: &reqwest::Error) -> TrustError {
        if e.is_builder() {
            self.failed("bad_request")
        } else if e.is_decode() {
            self.failed("bad_response")
        } else {
            self.down()
        }
    }

    /// POSTs `body` to `path` and returns the successful response, or the
    /// error the server's code means (`refused_pair` names the pair for a
    /// `transcription_refused` answer).
    #[tracing::instrument(skip_all, fields(transcryptor = %self.name, path = %path))]
    async fn post<B: Serialize + Sync, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        refused_pair: Option<(&str, &str)>,
    ) -> Result<T, TrustError> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(self.token.as_str())
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = resp.status();
        if status.is_success() {
            return resp.json::<T>().await.map_err(|e| self.transport(&e));
        }
        let code = match resp.json::<ErrorBody>().await {
            Ok(b) => b.error.code,
            Err(e) if e.is_timeout() => return Err(self.down()),
            Err(_) => format!("http_{}", status.as_u16()),
        };
        tracing::debug!(status = status.as_u16(), code = %code, "transcryptor answered an error");
        Err(match (status.as_u16(), code.as_str(), refused_pair) {
            (403, "transcription_refused", Some((from, to))) => TrustError::TranscryptionRefused {
                from: from.to_owned(),
                to: to.to_owned(),
            },
            (403, "grant_expired", _) => TrustError::GrantExpired,
            (403, "bad_grant", _) => TrustError::BadGrant,
            _ => self.failed(code),
        })
    }
}

#[async_trait]
impl TranscryptorLink for RemoteLink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn transcrypt(&self, req: &TranscryptRequest) -> Result<Vec<Item>, TrustError> {
        let resp: TranscryptResponse = self
            .post(
                "/v1/transcrypt",
                req,
                Some((req.from.as_str(), req.to.as_str())),
            )
            .await?;
        if resp.items.len() != req.items.len() {
            return Err(self.failed("wrong_batch_size"));
        }
        Ok(resp.items)
    }

    async fn key_share(
        &self,
        requester: Requester,
        domain: Domain,
    ) -> Result<SessionKeyShares, TrustError> {
        let req = KeyShareRequest {
            requester: requester.to_string(),
            domain: domain.to_string(),
        };
        self.post("/v1/key-share", &req, None)
            .await
            .map_err(|e| match e {
                TrustError::TranscryptorFailed { code, .. } if code == "key_share_refused" => {
                    TrustError::KeyShareRefused {
                        domain: domain.to_string(),
                    }
                }
                other => other,
            })
    }
}

/// One transcryptor as the node's links file names it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    pub name: String,
    pub url: String,
    pub token: String,
    /// The transcryptor's TLS certificate (DER, base64), pinned: needed for
    /// an `https://` url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
}

impl LinkEntry {
    /// The link this entry names.
    pub fn link(&self) -> Result<RemoteLink, TrustError> {
        let der = self
            .cert
            .as_deref()
            .map(|c| {
                base64::engine::general_purpose::STANDARD
                    .decode(c.trim())
                    .map_err(|_| TrustError::Invalid("a links.json cert is base64 DER"))
            })
            .transpose()?;
        RemoteLink::pinned(
            self.name.clone(),
            &self.url,
            self.token.clone(),
            der.as_deref(),
        )
    }
}

impl std::fmt::Debug for LinkEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkEntry")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("token", &"<secret>")
            .finish()
    }
}

impl Drop for LinkEntry {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token);
    }
}

/// The node's links file (`links.json`, format version 1): where each
/// transcryptor of the set listens and the token it expects. Keep it private
/// (mode 0600): the tokens are secrets.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksFile {
    pub v: u8,
    pub transcryptors: Vec<LinkEntry>,
}

impl LinksFile {
    /// The stored form (pretty JSON). It holds the tokens: keep it private.
    pub fn to_json(&self) -> Zeroizing<String> {
        Zeroizing::new(serde_json::to_string_pretty(self).unwrap_or_default())
    }

    /// Parses a links file; refuses another format version or an empty set.
    pub fn from_json(s: &str) -> Result<Self, TrustError> {
        let f: Self =
            serde_json::from_str(s).map_err(|_| TrustError::Invalid("not a links file"))?;
        if f.v != 1 {
            return Err(TrustError::Invalid("unsupported links file format version"));
        }
        if f.transcryptors.is_empty() {
            return Err(TrustError::Invalid("the links file names no transcryptor"));
        }
        Ok(f)
    }

    /// One link per transcryptor, in the file's order (the chain's order).
    pub fn links(&self) -> Result<Vec<RemoteLink>, TrustError> {
        self.transcryptors.iter().map(LinkEntry::link).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_prints() {
        let l =
            RemoteLink::new("transcryptor-1", "http://127.0.0.1:7100/", "s3cret-token").unwrap();
        let shown = format!("{l:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(l.base_url(), "http://127.0.0.1:7100");
        let f = LinksFile {
            v: 1,
            transcryptors: vec![LinkEntry {
                name: "transcryptor-1".into(),
                url: "http://127.0.0.1:7100".into(),
                token: "s3cret-token".into(),
                cert: None,
            }],
        };
        assert!(!format!("{f:?}").contains("s3cret"));
        let back = LinksFile::from_json(&f.to_json()).unwrap();
        assert_eq!(back.links().unwrap().len(), 1);
    }

    #[test]
    fn bad_urls_tokens_and_files_are_refused() {
        assert!(RemoteLink::new("t", "127.0.0.1:7100", "tok").is_err());
        assert!(RemoteLink::new("t", "http://", "tok").is_err());
        assert!(RemoteLink::new("t", "http://127.0.0.1:1", "").is_err());
        assert!(RemoteLink::new("t", "http://127.0.0.1:1", "a b").is_err());
        // Plain http only on loopback; https only with a pinned certificate.
        for ok in [
            "http://127.0.0.1:1",
            "http://127.9.9.9:1",
            "http://localhost:1",
            "http://[::1]:1",
        ] {
            assert!(RemoteLink::new("t", ok, "tok").is_ok(), "{ok}");
        }
        for plain in [
            "http://10.0.0.2:7100",
            "http://transcryptor.example:7100",
            "http://[2001:db8::1]:1",
            "http://127.0.0.1.evil.example:1",
        ] {
            assert!(RemoteLink::new("t", plain, "tok").is_err(), "{plain}");
        }
        assert!(
            RemoteLink::new("t", "https://transcryptor.example:7100", "tok").is_err(),
            "no cert to pin"
        );
        assert!(
            RemoteLink::pinned("t", "https://t.example:7100", "tok", Some(b"not der")).is_err()
        );
        assert!(LinksFile::from_json(r#"{"v":2,"transcryptors":[]}"#).is_err());
        assert!(LinksFile::from_json(r#"{"v":1,"transcryptors":[]}"#).is_err());
    }

    /// Serves one canned HTTP answer per connection, forever.
    async fn canned(status: &'static str, body: String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let body = body.clone();
                tokio::spawn(async move {
                    // Read the head and the body (Content-Length) before answering.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = s.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}")
    }

    fn request(n: usize) -> TranscryptRequest {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (fed, _) = crate::pseudonym::setup(1, &mut rng);
        TranscryptRequest {
            requester: "trust".into(),
            from: "coop:a".into(),
            to: "coop:b".into(),
            grant: None,
            items: (0..n)
                .map(|_| Item {
                    ct: fed.enrol(&mut rng),
                    key: fed.origin_key(),
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn server_codes_map_to_trust_errors() {
        let err = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        let req = request(2);
        let cases = [
            (
                "403 Forbidden",
                err("transcription_refused"),
                TrustError::TranscryptionRefused {
                    from: "coop:a".into(),
                    to: "coop:b".into(),
                },
            ),
            (
                "403 Forbidden",
                err("grant_expired"),
                TrustError::GrantExpired,
            ),
            ("403 Forbidden", err("bad_grant"), TrustError::BadGrant),
            (
                "401 Unauthorized",
                err("unauthenticated"),
                TrustError::TranscryptorFailed {
                    name: "t1".into(),
                    code: "unauthenticated".into(),
                },
            ),
            (
                "502 Bad Gateway",
                "<html>".to_owned(),
                TrustError::TranscryptorFailed {
                    name: "t1".into(),
                    code: "http_502".into(),
                },
            ),
            (
                // One item back for two sent.
                "200 OK",
                serde_json::to_string(&TranscryptResponse {
                    items: req.items[..1].to_vec(),
                })
                .unwrap(),
                TrustError::TranscryptorFailed {
                    name: "t1".into(),
                    code: "wrong_batch_size".into(),
                },
            ),
            (
                "200 OK",
                "{\"items\": 3}".to_owned(),
                TrustError::TranscryptorFailed {
                    name: "t1".into(),
                    code: "bad_response".into(),
                },
            ),
        ];
        for (status, body, want) in cases {
            let base = canned(status, body).await;
            let l = RemoteLink::new("t1", &base, "tok").unwrap();
            assert_eq!(l.transcrypt(&req).await.unwrap_err(), want, "{status}");
        }
        let base = canned(
            "200 OK",
            serde_json::to_string(&TranscryptResponse {
                items: req.items.clone(),
            })
            .unwrap(),
        )
        .await;
        let l = RemoteLink::new("t1", &base, "tok").unwrap();
        assert_eq!(l.transcrypt(&req).await.unwrap(), req.items);
    }

    #[tokio::test]
    async fn nobody_listening_is_down() {
        // Bind then drop a listener: the port is very likely closed afterwards.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let l =
            RemoteLink::new("transcryptor-9", &format!("http://127.0.0.1:{port}"), "tok").unwrap();
        let err = l
            .key_share(Requester::Trust, Domain::Research)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            TrustError::TranscryptorDown {
                name: "transcryptor-9".into()
            }
        );
    }
}
