//! Configuration from the environment, read once at init.
//!
//! A bad value stops the function at init with one clear line, so a
//! misconfigured deployment fails loudly on its first invocation instead of
//! half-working.

use reqwest::Url;
use std::time::Duration;

/// Microsoft cloud the tenant lives in; picks the Graph and login hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Global,
    UsGov,
    UsGovDod,
    China,
}

impl Cloud {
    fn parse(value: &str) -> Option<Cloud> {
        match value.to_ascii_lowercase().as_str() {
            "" | "global" => Some(Cloud::Global),
            "usgov" => Some(Cloud::UsGov),
            "usgovdod" => Some(Cloud::UsGovDod),
            "china" => Some(Cloud::China),
            _ => None,
        }
    }

    pub fn graph_root(self) -> &'static str {
        match self {
            Cloud::Global => "https://graph.microsoft.com",
            Cloud::UsGov => "https://graph.microsoft.us",
            Cloud::UsGovDod => "https://dod-graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }

    /// Microsoft's pages disagree on China's login host
    /// (`login.partner.microsoftonline.cn` vs `login.chinacloudapi.cn`); we use
    /// the one the identity platform's national-cloud page gives. Set
    /// `AZURE_AUTHORITY_HOST` to override it.
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Global => "https://login.microsoftonline.com",
            Cloud::UsGov | Cloud::UsGovDod => "https://login.microsoftonline.us",
            Cloud::China => "https://login.partner.microsoftonline.cn",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Secrets Manager id or ARN of the Graph app credentials.
    pub secret_id: String,
    /// Graph service root without trailing slash, e.g. `https://graph.microsoft.com`.
    pub graph_root: String,
    /// Login host without trailing slash, e.g. `https://login.microsoftonline.com`.
    pub authority_host: String,
    /// A `resetPasscode` started within this window and still pending counts
    /// as "already pending": no second POST.
    pub pending_window: Duration,
    /// How long the fetched secret is trusted before it is read again.
    pub secret_ttl: Duration,
    /// DynamoDB table of idempotency records; `None` falls back to the
    /// `deviceActionResults` check alone (see `idempotency`).
    pub idempotency_table: Option<String>,
    /// DynamoDB table of accepted actions (see `tracking`); `None`: actions
    /// are not tracked and `passcode-status` shows no tracking.
    pub actions_table: Option<String>,
    /// How long a finished request's record answers repeats of it.
    pub idempotency_ttl: Duration,
    /// Requests without an `idempotencyKey` or event id count as the same
    /// request when action, device and caller match within this window.
    pub idempotency_window: Duration,
    /// CloudWatch namespace of the functions' metrics (`CertificateDaysLeft`).
    pub metrics_namespace: String,
    /// Writes per 20 s across every environment (see `budget`); 0: none.
    pub write_budget_per_20s: u32,
    /// How long an environment trusts its last read of the bulk stop switch.
    pub stop_check: Duration,
}

/// One environment variable, trimmed; `None` when unset or empty. Every
/// variable the functions read (theirs and the AWS SDK's) goes through here.
pub fn env_var(name: &str) -> Option<String> {
    cleaned(std::env::var(name).ok())
}

/// A variable that is `true` (any case); anything else is false.
pub fn env_flag(name: &str) -> bool {
    env_var(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn cleaned(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(env_var)
    }

    /// Same as [`Config::from_env`], reading variables through `get` (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let get = |name: &str| cleaned(get(name));
        let whole = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| {
            whole_number(get(name), name, default, range)
        };
        let seconds = |name: &str, default: u64, range| whole(name, default, range).map(Duration::from_secs);

        let secret_id = get("GRAPH_SECRET_ID").ok_or(
            "GRAPH_SECRET_ID is not set: give the name or ARN of the Secrets Manager secret that holds the Graph app credentials",
        )?;
        let cloud_value = get("GRAPH_CLOUD").unwrap_or_default();
        let cloud = Cloud::parse(&cloud_value).ok_or_else(|| {
            format!("GRAPH_CLOUD={cloud_value:?} is not one of global, usgov, usgovdod, china")
        })?;
        let graph_root = match get("GRAPH_ENDPOINT") {
            Some(url) => endpoint_url("GRAPH_ENDPOINT", &url)?,
            None => cloud.graph_root().to_string(),
        };
        let authority_host = match get("AZURE_AUTHORITY_HOST") {
            Some(url) => endpoint_url("AZURE_AUTHORITY_HOST", &url)?,
            None => cloud.authority_host().to_string(),
        };
        let pending_window =
            Duration::from_secs(60 * whole("PENDING_WINDOW_MINUTES", 480, 1..=1440)?);
        let secret_ttl = seconds("SECRET_CACHE_TTL_SECONDS", 300, 0..=86_400)?;

        let idempotency_table = get("IDEMPOTENCY_TABLE");
        if let Some(table) = &idempotency_table
            && !valid_table_name(table)
        {
            return Err(format!(
                "IDEMPOTENCY_TABLE={table:?} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ - .) or table ARN"
            ));
        }
        let actions_table = get("ACTIONS_TABLE");
        if let Some(table) = &actions_table
            && !valid_table_name(table)
        {
            return Err(format!(
                "ACTIONS_TABLE={table:?} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ - .) or table ARN"
            ));
        }
        let idempotency_ttl = seconds("IDEMPOTENCY_TTL_SECONDS", 3600, 60..=7 * 86_400)?;
        let idempotency_window = seconds("IDEMPOTENCY_WINDOW_SECONDS", 300, 1..=3600)?;

        let metrics_namespace =
            get("METRICS_NAMESPACE").unwrap_or_else(|| "IntunePasscode".to_string());
        if !valid_namespace(&metrics_namespace) {
            return Err(format!(
                "METRICS_NAMESPACE={metrics_namespace:?} is not a CloudWatch namespace (up to 255 printable ASCII characters, not starting with \"AWS/\")"
            ));
        }

        let write_budget_per_20s = whole("WRITE_BUDGET_PER_20S", 100, 0..=200)
            .map_err(|e| format!("{e} (0: no budget; 200: Intune's limit per app and tenant)"))?
            as u32;
        let stop_check = seconds("BULK_STOP_CHECK_SECONDS", 60, 1..=3600)?;

        Ok(Config {
            secret_id,
            graph_root,
            authority_host,
            pending_window,
            secret_ttl,
            idempotency_table,
            actions_table,
            idempotency_ttl,
            idempotency_window,
            metrics_namespace,
            write_budget_per_20s,
            stop_check,
        })
    }

    /// The `.default` scope of the Graph root in use; each national cloud needs
    /// its own Graph host here.
    pub fn graph_scope(&self) -> String {
        format!("{}/.default", self.graph_root)
    }

    /// Token endpoint of a tenant; also the `aud` of a client assertion.
    pub fn token_url(&self, tenant_id: &str) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.authority_host, tenant_id)
    }
}

/// A table name, or a table ARN (which DynamoDB accepts as `TableName`).
fn valid_table_name(value: &str) -> bool {
    if let Some(rest) = value.strip_prefix("arn:") {
        return rest.contains(":dynamodb:") && rest.contains(":table/");
    }
    (3..=255).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// CloudWatch namespaces: printable ASCII, at most 255, and `AWS/` is
/// reserved for AWS's own.
fn valid_namespace(value: &str) -> bool {
    value.len() <= 255
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with("AWS/")
}

/// A whole number setting within `range`; `default` when unset. Every
/// function's settings are read through this one parser, so they all
/// explain a bad value the same way.
pub(crate) fn whole_number(
    value: Option<String>,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "{name}={value:?} must be a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// Accepts `https://` anywhere and plain `http://` only on loopback, so a
/// typo can never send a bearer token over the network in clear text.
fn endpoint_url(name: &str, value: &str) -> Result<String, String> {
    let url = Url::parse(value).map_err(|_| format!("{name}={value:?} is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{name}={value:?}: plain http is only allowed for loopback hosts; use https"
            ));
        }
        _ => return Err(format!("{name}={value:?} must be an https URL")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!("{name}={value:?} must be a plain base URL"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_global_cloud_and_safe() {
        let c = load(&[("GRAPH_SECRET_ID", "graph/app")]).unwrap();
        assert_eq!(c.graph_root, "https://graph.microsoft.com");
        assert_eq!(c.authority_host, "https://login.microsoftonline.com");
        assert_eq!(c.graph_scope(), "https://graph.microsoft.com/.default");
        assert_eq!(c.pending_window, Duration::from_secs(8 * 3600));
        assert_eq!(
            c.token_url("t1"),
            "https://login.microsoftonline.com/t1/oauth2/v2.0/token"
        );
    }

    #[test]
    fn national_clouds_pick_their_hosts() {
        let c = load(&[("GRAPH_SECRET_ID", "s"), ("GRAPH_CLOUD", "usgovdod")]).unwrap();
        assert_eq!(c.graph_scope(), "https://dod-graph.microsoft.us/.default");
        assert_eq!(c.authority_host, "https://login.microsoftonline.us");
        let c = load(&[("GRAPH_SECRET_ID", "s"), ("GRAPH_CLOUD", "China")]).unwrap();
        assert_eq!(c.graph_root, "https://microsoftgraph.chinacloudapi.cn");
    }

    #[test]
    fn missing_secret_id_is_one_clear_line() {
        let err = load(&[]).unwrap_err();
        assert!(err.starts_with("GRAPH_SECRET_ID is not set"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let ok = load(&[
            ("GRAPH_SECRET_ID", "s"),
            ("GRAPH_ENDPOINT", "http://127.0.0.1:8080/"),
            ("AZURE_AUTHORITY_HOST", "http://localhost:9"),
        ])
        .unwrap();
        assert_eq!(ok.graph_root, "http://127.0.0.1:8080");
        assert_eq!(ok.authority_host, "http://localhost:9");
        let err = load(&[
            ("GRAPH_SECRET_ID", "s"),
            ("GRAPH_ENDPOINT", "http://10.0.0.5"),
        ])
        .unwrap_err();
        assert!(err.contains("only allowed for loopback"), "{err}");
        assert!(load(&[("GRAPH_SECRET_ID", "s"), ("GRAPH_ENDPOINT", "ftp://x")]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(load(&[("GRAPH_SECRET_ID", "s"), ("GRAPH_CLOUD", "mars")]).is_err());
        assert!(load(&[("GRAPH_SECRET_ID", "s"), ("PENDING_WINDOW_MINUTES", "0")]).is_err());
    }

    #[test]
    fn metrics_namespace_defaults_and_is_checked() {
        let c = load(&[("GRAPH_SECRET_ID", "s")]).unwrap();
        assert_eq!(c.metrics_namespace, "IntunePasscode");
        let c = load(&[
            ("GRAPH_SECRET_ID", "s"),
            ("METRICS_NAMESPACE", " Ops/Intune "),
        ])
        .unwrap();
        assert_eq!(c.metrics_namespace, "Ops/Intune");
        for bad in ["AWS/Lambda", "caf\u{e9}", "x".repeat(256).as_str()] {
            let err = load(&[("GRAPH_SECRET_ID", "s"), ("METRICS_NAMESPACE", bad)]).unwrap_err();
            assert!(err.starts_with("METRICS_NAMESPACE="), "{err}");
        }
    }

    #[test]
    fn idempotency_table_is_optional_and_checked() {
        let c = load(&[("GRAPH_SECRET_ID", "s")]).unwrap();
        assert_eq!(c.idempotency_table, None);
        assert_eq!(c.idempotency_ttl, Duration::from_secs(3600));
        assert_eq!(c.idempotency_window, Duration::from_secs(300));
        for table in [
            "passcode-idempotency",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/passcode-idempotency",
        ] {
            let c = load(&[("GRAPH_SECRET_ID", "s"), ("IDEMPOTENCY_TABLE", table)]).unwrap();
            assert_eq!(c.idempotency_table.as_deref(), Some(table));
        }
        for table in ["ab", "has space", "arn:aws:s3:::bucket"] {
            let err = load(&[("GRAPH_SECRET_ID", "s"), ("IDEMPOTENCY_TABLE", table)]).unwrap_err();
            assert!(err.starts_with("IDEMPOTENCY_TABLE="), "{err}");
        }
        for (name, value) in [
            ("IDEMPOTENCY_TTL_SECONDS", "59"),
            ("IDEMPOTENCY_WINDOW_SECONDS", "0"),
            ("IDEMPOTENCY_WINDOW_SECONDS", "3601"),
        ] {
            assert!(
                load(&[("GRAPH_SECRET_ID", "s"), (name, value)]).is_err(),
                "{name}={value}"
            );
        }
    }
}
