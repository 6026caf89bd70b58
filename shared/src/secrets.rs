//! The Graph app credentials, read from AWS Secrets Manager and cached.
//!
//! The secret is fetched on first use (not at init, so a cold start pays for
//! it only when a request needs Graph), kept for `SECRET_CACHE_TTL_SECONDS`,
//! and read again at once when Entra or Graph refuses the credentials, which
//! is how a rotated secret is picked up. Only `GetSecretValue` is called, so
//! the IAM policy needs nothing else. What the secret holds is parsed in
//! `credentials`.
//!
//! A certificate is checked on every use: an expired one is a
//! `configurationError` that says so, without asking Entra. Each read of a
//! certificate secret logs its days left as a CloudWatch metric
//! (`CertificateDaysLeft`, Embedded Metric Format) and warns below
//! [`EXPIRY_WARNING_DAYS`], so an alarm fires weeks before calls fail.

use crate::credentials::{GraphCredentials, parse_secret};
use crate::error::{ErrorCode, ServiceError};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// Below this many days left, each read of the certificate logs a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

struct Cached {
    credentials: Arc<GraphCredentials>,
    fetched_at: Instant,
}

/// Secrets Manager reader with a TTL cache, one per execution environment.
pub struct SecretStore {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    ttl: Duration,
    cache: Mutex<Option<Cached>>,
    generation: std::sync::atomic::AtomicU64,
    /// CloudWatch namespace of the `CertificateDaysLeft` metric.
    metrics_namespace: String,
}

impl SecretStore {
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
        ttl: Duration,
        metrics_namespace: String,
    ) -> SecretStore {
        SecretStore {
            client,
            secret_id,
            ttl,
            cache: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
            metrics_namespace,
        }
    }

    /// The cached credentials, or freshly read ones when the cache is empty,
    /// older than the TTL, or `refresh` is set. An expired certificate is an
    /// error whether it is cached or fresh.
    pub async fn get(&self, refresh: bool) -> Result<Arc<GraphCredentials>, ServiceError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && !refresh
            && cached.fetched_at.elapsed() < self.ttl
        {
            self.refuse_expired(&cached.credentials, OffsetDateTime::now_utc())?;
            return Ok(cached.credentials.clone());
        }
        let text = self.fetch().await?;
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let credentials = Arc::new(parse_secret(&self.secret_id, &text, generation)?);
        tracing::debug!(
            secret_id = %self.secret_id,
            credential = credentials.kind(),
            generation,
            "read Graph credentials from Secrets Manager"
        );
        let now = OffsetDateTime::now_utc();
        if let Some(not_after) = credentials.certificate_not_after() {
            self.report_days_left(not_after, now);
        }
        self.refuse_expired(&credentials, now)?;
        *cache = Some(Cached {
            credentials: credentials.clone(),
            fetched_at: Instant::now(),
        });
        Ok(credentials)
    }

    /// `configurationError` once the certificate's `notAfter` has passed:
    /// Entra would refuse every assertion signed for it.
    fn refuse_expired(
        &self,
        credentials: &GraphCredentials,
        now: OffsetDateTime,
    ) -> Result<(), ServiceError> {
        match credentials.certificate_not_after() {
            Some(not_after) if not_after <= now => Err(ServiceError::config(format!(
                "the certificate in secret {:?} expired on {}: create a new certificate, upload it to the app registration, and put it and its private key in the secret",
                self.secret_id,
                day(not_after)
            ))),
            _ => Ok(()),
        }
    }

    /// The days-left metric line, and a warning when few are left.
    fn report_days_left(&self, not_after: OffsetDateTime, now: OffsetDateTime) {
        let days_left = (not_after - now).whole_days();
        println!(
            "{}",
            days_left_metric(&self.metrics_namespace, days_left, now)
        );
        if (0..EXPIRY_WARNING_DAYS).contains(&days_left) {
            tracing::warn!(
                secret_id = %self.secret_id,
                days_left,
                not_after = %day(not_after),
                "the Graph app certificate expires in {days_left} days: rotate it before then"
            );
        }
    }

    async fn fetch(&self) -> Result<String, ServiceError> {
        let id = &self.secret_id;
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| {
                let code = e.code().map(str::to_string);
                match code.as_deref() {
                    Some("ResourceNotFoundException") => ServiceError::config(format!(
                        "secret {id:?} does not exist (or has no current value): create it and put the Graph app credentials in it"
                    )),
                    Some("AccessDeniedException") => ServiceError::config(format!(
                        "the function's role may not read secret {id:?}: allow secretsmanager:GetSecretValue on it (and kms:Decrypt for a customer-managed key)"
                    )),
                    Some("DecryptionFailure") => ServiceError::config(format!(
                        "secret {id:?} could not be decrypted: the function's role needs kms:Decrypt on the secret's key"
                    )),
                    Some("InvalidRequestException") => ServiceError::config(format!(
                        "secret {id:?} can't be read now (it may be scheduled for deletion)"
                    )),
                    Some(code @ ("InternalServiceError" | "ThrottlingException")) => {
                        ServiceError::new(
                            ErrorCode::SecretsUnavailable,
                            format!("Secrets Manager failed to read secret {id:?} ({code}); retry later"),
                        )
                    }
                    Some(other) => ServiceError::config(format!(
                        "reading secret {id:?} failed: {other}"
                    )),
                    None => ServiceError::new(
                        ErrorCode::SecretsUnavailable,
                        format!("Secrets Manager could not be reached to read secret {id:?}; retry later"),
                    ),
                }
            })?;
        out.secret_string().map(str::to_string).ok_or_else(|| {
            ServiceError::config(format!(
                "secret {id:?} has no SecretString (binary secrets are not supported)"
            ))
        })
    }
}

/// `2027-01-31`: the day, which is all a rotation plan needs.
fn day(at: OffsetDateTime) -> String {
    let date = at.date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// One CloudWatch Embedded Metric Format line with `CertificateDaysLeft`.
/// No dimensions (`[[]]`): every function reports into one metric, so one
/// alarm watches the certificate whichever function reads it.
pub fn days_left_metric(namespace: &str, days_left: i64, now: OffsetDateTime) -> String {
    let timestamp_ms = now.unix_timestamp_nanos() / 1_000_000;
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms as i64,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[]],
                "Metrics": [{"Name": "CertificateDaysLeft", "Unit": "None"}],
            }],
        },
        "CertificateDaysLeft": days_left,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_line_is_embedded_metric_format_without_dimensions() {
        let now = OffsetDateTime::from_unix_timestamp(1_796_032_800).unwrap();
        let line = days_left_metric("IntunePasscode", 12, now);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_796_032_800_000i64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "IntunePasscode");
        assert_eq!(directive["Dimensions"], serde_json::json!([[]]));
        assert_eq!(directive["Metrics"][0]["Name"], "CertificateDaysLeft");
        assert_eq!(directive["Metrics"][0]["Unit"], "None");
        assert_eq!(v["CertificateDaysLeft"], 12);
    }

    #[test]
    fn days_are_written_as_dates() {
        let at = OffsetDateTime::from_unix_timestamp(1_796_032_800).unwrap();
        assert_eq!(day(at), "2026-11-30");
    }
}
