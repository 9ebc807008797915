//! Configuration: defaults < TOML file < `ME2B_*` environment < command-line flags.
//!
//! clap reads flags and environment variables (a flag wins over its variable);
//! what neither gives comes from the TOML file, then from the defaults here.

use anyhow::Context;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./me2b-data";
pub const DEFAULT_SESSION_TTL_SECONDS: i64 = 12 * 3600;

/// The TOML file's keys; every one optional.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub session_ttl_seconds: Option<i64>,
    pub log: Option<String>,
    pub trust_dir: Option<PathBuf>,
    pub governance: Option<PathBuf>,
    pub header_timeout_seconds: Option<u64>,
    pub idle_timeout_seconds: Option<u64>,
    pub request_timeout_seconds: Option<u64>,
    pub max_connections: Option<usize>,
    /// The federation's name, the `federation` claim of every credential.
    pub federation: Option<String>,
    /// The federation's credential validity period, in weeks (1 to 26).
    pub credential_period_weeks: Option<u32>,
    /// Login throttling and the bound on concurrent Argon2 computations
    /// (README: Configuration).
    pub login_account_burst: Option<u32>,
    pub login_account_interval_seconds: Option<u64>,
    pub login_ip_burst: Option<u32>,
    pub login_ip_interval_seconds: Option<u64>,
    pub trusted_proxies: Option<Vec<std::net::IpAddr>>,
    pub optout_burst: Option<u32>,
    pub optout_interval_seconds: Option<u64>,
    pub signup_burst: Option<u32>,
    pub signup_interval_seconds: Option<u64>,
    pub argon2_max_concurrent: Option<usize>,
    /// `[storage]`.
    pub storage: Option<StorageFile>,
}

/// The file's `[storage]` table.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageFile {
    /// How often `me2b serve` rewrites the member tables in key order
    /// (`Store::compact_if_written`): `"1h"`, `"30m"`, `"0"` or `"off"`.
    pub compact_every: Option<String>,
}

/// `compact_every`: a whole number and a unit (`s`, `m`, `h`, `d`), or `0`
/// / `off` (none).
fn parse_every(v: &str) -> anyhow::Result<Option<std::time::Duration>> {
    let bad = || {
        anyhow::anyhow!(
            "compact_every is a whole number and a unit (s, m, h or d), e.g. \"1h\", or \"off\""
        )
    };
    let v = v.trim();
    if v == "off" {
        return Ok(None);
    }
    let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "" if n == 0 => 1,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(std::time::Duration::from_secs(
        n.checked_mul(unit).ok_or_else(bad)?,
    )))
}

impl FileConfig {
    fn throttle(&self) -> anyhow::Result<me2b_server::ThrottleSettings> {
        let d = me2b_server::ThrottleSettings::default();
        let positive = |v: Option<u64>, d: std::time::Duration, name: &str| match v {
            None => Ok(d),
            Some(0) => anyhow::bail!("{name} must be at least 1"),
            Some(s) => Ok(std::time::Duration::from_secs(s)),
        };
        let burst = |v: Option<u32>, d: u32, name: &str| match v {
            None => Ok(d),
            Some(0) => anyhow::bail!("{name} must be at least 1"),
            Some(n) => Ok(n),
        };
        Ok(me2b_server::ThrottleSettings {
            account_burst: burst(
                self.login_account_burst,
                d.account_burst,
                "login_account_burst",
            )?,
            account_interval: positive(
                self.login_account_interval_seconds,
                d.account_interval,
                "login_account_interval_seconds",
            )?,
            ip_burst: burst(self.login_ip_burst, d.ip_burst, "login_ip_burst")?,
            ip_interval: positive(
                self.login_ip_interval_seconds,
                d.ip_interval,
                "login_ip_interval_seconds",
            )?,
            trusted_proxies: self.trusted_proxies.clone().unwrap_or_default(),
            optout_burst: burst(self.optout_burst, d.optout_burst, "optout_burst")?,
            optout_interval: positive(
                self.optout_interval_seconds,
                d.optout_interval,
                "optout_interval_seconds",
            )?,
            signup_burst: burst(self.signup_burst, d.signup_burst, "signup_burst")?,
            signup_interval: positive(
                self.signup_interval_seconds,
                d.signup_interval,
                "signup_interval_seconds",
            )?,
        })
    }
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// Options every command shares (flag or environment; `None` when neither).
#[derive(Debug, Clone, clap::Args, Default)]
pub struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, env = "ME2B_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory: the SQLite database and the master key live here.
    #[arg(long, env = "ME2B_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (default: SQLite in the data directory).
    #[arg(long, env = "ME2B_DATABASE_URL", global = true)]
    pub database: Option<String>,
    /// Master key file (default: master.key in the data directory; created 0600 on first start).
    #[arg(long, env = "ME2B_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// Log filter, e.g. info or me2b=debug (logs never contain personal data).
    #[arg(long, env = "ME2B_LOG", global = true)]
    pub log: Option<String>,
    /// The data trust's transcryptor set: a directory with federation.json and
    /// links.json from `me2b trust init` (default: three transcryptors in this
    /// process, single-party).
    #[arg(long, env = "ME2B_TRUST_DIR", global = true)]
    pub trust_dir: Option<PathBuf>,
    /// The governance file: privacy budgets per data pool, the trust, offers
    /// (default: governance.toml in the data directory, if present).
    #[arg(long, env = "ME2B_GOVERNANCE", global = true)]
    pub governance: Option<PathBuf>,
}

/// Connection limits of a server (`serve`, `transcryptor`): flag or environment.
#[derive(Debug, Clone, clap::Args, Default)]
pub struct ConnArgs {
    /// Seconds a request's line and headers may take to arrive once the
    /// connection is ready for one (after accept, and after each answer on a
    /// kept-alive connection) [default: 10].
    #[arg(long, env = "ME2B_HEADER_TIMEOUT", value_name = "SECONDS")]
    pub header_timeout: Option<u64>,
    /// Seconds without a byte either way, while no request is handled, before
    /// a connection is closed [default: 60].
    #[arg(long, env = "ME2B_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
    /// Seconds to handle one request, body included, before answering 503
    /// request_timeout [default: 120].
    #[arg(long, env = "ME2B_REQUEST_TIMEOUT", value_name = "SECONDS")]
    pub request_timeout: Option<u64>,
    /// Most connections open at once; lowered to fit the open-file limit
    /// [default: 4096].
    #[arg(long, env = "ME2B_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
}

impl ConnArgs {
    /// Flags and environment over the file's values over the defaults.
    pub fn limits(&self, file: &FileConfig) -> anyhow::Result<me2b_server::ConnLimits> {
        let d = me2b_server::ConnLimits::default();
        let secs =
            |flag: Option<u64>, file: Option<u64>, default: std::time::Duration, name: &str| {
                match flag.or(file) {
                    None => Ok(default),
                    Some(0) => anyhow::bail!("{name} must be at least 1 second"),
                    Some(s) => Ok(std::time::Duration::from_secs(s)),
                }
            };
        let max_connections = self
            .max_connections
            .or(file.max_connections)
            .unwrap_or(d.max_connections);
        anyhow::ensure!(max_connections > 0, "max_connections must be at least 1");
        Ok(me2b_server::ConnLimits {
            header_timeout: secs(
                self.header_timeout,
                file.header_timeout_seconds,
                d.header_timeout,
                "header_timeout_seconds",
            )?,
            idle_timeout: secs(
                self.idle_timeout,
                file.idle_timeout_seconds,
                d.idle_timeout,
                "idle_timeout_seconds",
            )?,
            request_timeout: secs(
                self.request_timeout,
                file.request_timeout_seconds,
                d.request_timeout,
                "request_timeout_seconds",
            )?,
            max_connections,
        })
    }
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub session_ttl_seconds: i64,
    pub log: String,
    pub trust_dir: Option<PathBuf>,
    pub governance: Option<PathBuf>,
    pub limits: me2b_server::ConnLimits,
    /// Set once for the federation: never per code.
    pub credentials: me2b_credentials::service::FederationSettings,
    pub throttle: me2b_server::ThrottleSettings,
    pub argon2_max_concurrent: usize,
    /// Between scheduled compactions; none: off.
    pub compact_every: Option<std::time::Duration>,
}

impl Settings {
    pub fn resolve(
        args: &CommonArgs,
        listen: Option<SocketAddr>,
        conn: &ConnArgs,
        file: FileConfig,
    ) -> anyhow::Result<Self> {
        let limits = conn.limits(&file)?;
        let throttle = file.throttle()?;
        let argon2_max_concurrent = match file.argon2_max_concurrent {
            None => me2b_crypto::default_max_concurrent(),
            Some(0) => anyhow::bail!("argon2_max_concurrent must be at least 1"),
            Some(n) => n,
        };
        let compact_every = match file
            .storage
            .as_ref()
            .and_then(|s| s.compact_every.as_deref())
        {
            None => Some(me2b_node::compaction::COMPACT_EVERY),
            Some(v) => parse_every(v)?,
        };
        let default_listen: SocketAddr = DEFAULT_LISTEN.parse()?;
        let ttl = file
            .session_ttl_seconds
            .unwrap_or(DEFAULT_SESSION_TTL_SECONDS);
        anyhow::ensure!(ttl > 0, "session_ttl_seconds must be positive");
        let mut credentials = me2b_credentials::service::FederationSettings::default();
        if let Some(name) = &file.federation {
            credentials.federation = me2b_credentials::ClaimText::new(name).map_err(|_| {
                anyhow::anyhow!(
                    "federation is 1 to 64 bytes, without control characters or surrounding spaces"
                )
            })?;
        }
        if let Some(weeks) = file.credential_period_weeks {
            credentials.period = me2b_credentials::ValidityPeriod::weeks(weeks)
                .map_err(|_| anyhow::anyhow!("credential_period_weeks is 1 to 26"))?;
        }
        Ok(Self {
            listen: listen.or(file.listen).unwrap_or(default_listen),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            database: args.database.clone().or(file.database),
            master_key_file: args.master_key_file.clone().or(file.master_key_file),
            session_ttl_seconds: ttl,
            log: args
                .log
                .clone()
                .or(file.log)
                .unwrap_or_else(|| "info".to_owned()),
            trust_dir: args.trust_dir.clone().or(file.trust_dir),
            governance: args.governance.clone().or(file.governance),
            limits,
            credentials,
            throttle,
            argon2_max_concurrent,
            compact_every,
        })
    }

    pub fn node_config(&self) -> me2b_node::NodeConfig {
        let mut c = me2b_node::NodeConfig::new(&self.data_dir);
        c.database_url = self.database.clone();
        c.master_key_file = self.master_key_file.clone();
        c.session_ttl_seconds = self.session_ttl_seconds;
        c.trust_dir = self.trust_dir.clone();
        c.governance = self.governance.clone();
        c.credentials = self.credentials.clone();
        c.passphrase_max_concurrent = self.argon2_max_concurrent;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_defaults_then_file_then_flags_or_env() {
        let file: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/me2b\"\nlog = \"debug\"\n",
        )
        .unwrap();
        let args = CommonArgs {
            data_dir: Some("/flag/dir".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&args, None, &ConnArgs::default(), file).unwrap();
        assert_eq!(
            s.listen,
            "127.0.0.1:9000".parse().unwrap(),
            "file beats default"
        );
        assert_eq!(
            s.data_dir,
            PathBuf::from("/flag/dir"),
            "flag/env beats file"
        );
        assert_eq!(s.log, "debug");
        assert_eq!(
            s.session_ttl_seconds, DEFAULT_SESSION_TTL_SECONDS,
            "default"
        );
        let s = Settings::resolve(
            &CommonArgs::default(),
            Some("0.0.0.0:1".parse().unwrap()),
            &ConnArgs::default(),
            FileConfig::default(),
        )
        .unwrap();
        assert_eq!(s.listen, "0.0.0.0:1".parse().unwrap());
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(s.limits, me2b_server::ConnLimits::default());
    }

    #[test]
    fn connection_limits_come_from_flags_then_the_file() {
        let file: FileConfig = toml::from_str(
            "header_timeout_seconds = 5
max_connections = 100
idle_timeout_seconds = 7
",
        )
        .unwrap();
        let conn = ConnArgs {
            header_timeout: Some(2),
            ..Default::default()
        };
        let l = conn.limits(&file).unwrap();
        assert_eq!(
            l.header_timeout,
            std::time::Duration::from_secs(2),
            "flag beats file"
        );
        assert_eq!(l.idle_timeout, std::time::Duration::from_secs(7));
        assert_eq!(l.max_connections, 100);
        assert_eq!(
            l.request_timeout,
            me2b_server::ConnLimits::default().request_timeout
        );
        let zero = ConnArgs {
            request_timeout: Some(0),
            ..Default::default()
        };
        assert!(zero.limits(&FileConfig::default()).is_err());
    }

    #[test]
    fn the_federation_sets_credential_validity_once() {
        let s = Settings::resolve(
            &CommonArgs::default(),
            None,
            &ConnArgs::default(),
            FileConfig::default(),
        )
        .unwrap();
        assert_eq!(s.credentials.period.get(), 4);
        assert_eq!(s.credentials.federation.as_str(), "Fair Economy Federation");
        let file: FileConfig =
            toml::from_str("federation = \"Co-ops of Utrecht\"\ncredential_period_weeks = 2\n")
                .unwrap();
        let s =
            Settings::resolve(&CommonArgs::default(), None, &ConnArgs::default(), file).unwrap();
        assert_eq!(s.node_config().credentials.period.get(), 2);
        assert_eq!(s.credentials.federation.as_str(), "Co-ops of Utrecht");
        for bad in [
            "credential_period_weeks = 0",
            "credential_period_weeks = 27",
            "federation = \" x\"",
        ] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            assert!(
                Settings::resolve(&CommonArgs::default(), None, &ConnArgs::default(), file)
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn login_throttling_comes_from_the_file() {
        let file: FileConfig = toml::from_str(
            "login_account_burst = 3\nlogin_ip_interval_seconds = 9\ntrusted_proxies = [\"127.0.0.1\"]\nargon2_max_concurrent = 4\nsignup_burst = 2\n",
        )
        .unwrap();
        let s =
            Settings::resolve(&CommonArgs::default(), None, &ConnArgs::default(), file).unwrap();
        assert_eq!(s.throttle.account_burst, 3);
        assert_eq!(s.throttle.ip_interval, std::time::Duration::from_secs(9));
        assert_eq!(s.throttle.ip_burst, 30);
        assert_eq!(s.throttle.trusted_proxies.len(), 1);
        assert_eq!(s.node_config().passphrase_max_concurrent, 4);
        assert_eq!(s.throttle.signup_burst, 2);
        assert_eq!(
            s.throttle.signup_interval,
            std::time::Duration::from_secs(600)
        );
        for bad in [
            "login_account_burst = 0",
            "argon2_max_concurrent = 0",
            "signup_burst = 0",
            "signup_interval_seconds = 0",
        ] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            assert!(
                Settings::resolve(&CommonArgs::default(), None, &ConnArgs::default(), file)
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn compaction_runs_hourly_unless_the_file_says_otherwise() {
        let resolve = |toml_text: &str| {
            let file: FileConfig = toml::from_str(toml_text).unwrap();
            Settings::resolve(&CommonArgs::default(), None, &ConnArgs::default(), file)
        };
        let every = |t: &str| resolve(t).unwrap().compact_every;
        let secs = |s| Some(std::time::Duration::from_secs(s));
        assert_eq!(every(""), secs(3600));
        assert_eq!(every("[storage]\ncompact_every = \"30m\""), secs(1800));
        assert_eq!(every("[storage]\ncompact_every = \"2d\""), secs(172_800));
        assert_eq!(every("[storage]\ncompact_every = \"5s\""), secs(5));
        for off in ["off", "0", "0h"] {
            assert_eq!(
                every(&format!("[storage]\ncompact_every = \"{off}\"")),
                None
            );
        }
        for bad in ["1", "h", "1 h", "-1h", "1.5h", "1w"] {
            assert!(
                resolve(&format!("[storage]\ncompact_every = \"{bad}\"")).is_err(),
                "{bad}"
            );
        }
        assert!(toml::from_str::<FileConfig>("[storage]\ncompact = \"1h\"").is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }
}
