//! The whole local stack: Graph simulator, moto with the app's credentials
//! stored as a secret, and function processes wired to both.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use passcode_core::Action;
use serde_json::json;

use crate::moto::Moto;
use crate::process::guarded_command;
use crate::runtime::{FunctionProcess, FunctionSpec};

use passcode_core::action::TRACKER_FUNCTION as TRACKER;

/// How the Graph app authenticates: the two secret shapes the functions accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretForm {
    ClientSecret,
    Certificate,
}

/// The credentials generated for one stack.
enum Credential {
    ClientSecret(String),
    Certificate {
        certificate_pem: String,
        private_key_pem: String,
    },
}

/// A Graph simulator and a moto server holding fresh app credentials that the
/// simulator accepts. Dropping it stops both.
pub struct Stack {
    pub sim: graph_sim::RunningSim,
    pub moto: Moto,
    /// ARN of the secret the functions read (`GRAPH_SECRET_ID`).
    pub secret_id: String,
    /// Name of that secret in moto.
    pub secret_name: String,
    pub form: SecretForm,
    /// The idempotency table the functions use, once
    /// [`Stack::enable_idempotency`] made one.
    pub idempotency_table: Option<String>,
    /// The action log, bus and result queue, once
    /// [`Stack::enable_tracking`] made them.
    pub tracking: Option<TrackingSetup>,
    /// Holds the functions' clock offset (`PASSCODE_TEST_CLOCK_FILE`), which
    /// [`Stack::advance_clock`] moves together with the simulator's.
    clock: tempfile::NamedTempFile,
    credential: Credential,
}

/// What completion tracking needs in moto.
#[derive(Debug, Clone)]
pub struct TrackingSetup {
    pub actions_table: String,
    pub event_bus: String,
    /// A queue a rule copies every result event into, as a deployer's
    /// rule would route them.
    pub result_queue_url: String,
}

/// The `source` of the tracker's result events.
pub const EVENT_SOURCE: &str = "intune-passcode";

impl Stack {
    /// Starts the stack with the simulator profile named by
    /// `GRAPH_SIM_PROFILE` (standard when unset).
    pub async fn start(form: SecretForm) -> anyhow::Result<Stack> {
        let profile = graph_sim::Profile::from_env().map_err(anyhow::Error::msg)?;
        let sim = graph_sim::start_with(([127, 0, 0, 1], 0).into(), profile)
            .await
            .context("starting the Graph simulator")?;
        let (moto, credential) = tokio::join!(Moto::start(), generate_credential(form));
        let (moto, credential) = (moto?, credential?);

        let control = sim.control();
        let mut secret = json!({
            "tenantId": graph_sim::seed::TENANT_ID,
            "clientId": graph_sim::seed::CLIENT_ID,
        });
        match &credential {
            Credential::ClientSecret(value) => {
                control.set_secrets(&[value.as_str()]).await?;
                secret["clientSecret"] = value.as_str().into();
            }
            Credential::Certificate {
                certificate_pem,
                private_key_pem,
            } => {
                control.set_certificate(Some(certificate_pem)).await?;
                secret["certificate"] = certificate_pem.as_str().into();
                secret["privateKey"] = private_key_pem.as_str().into();
            }
        }

        let secret_name = format!(
            "passcode/graph-app-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let secret_id = moto.put_secret(&secret_name, &secret.to_string()).await?;
        Ok(Stack {
            sim,
            moto,
            secret_id,
            secret_name,
            form,
            idempotency_table: None,
            tracking: None,
            clock: tempfile::NamedTempFile::new().context("clock file")?,
            credential,
        })
    }

    /// Creates an idempotency table in moto; functions spawned from now on
    /// get `IDEMPOTENCY_TABLE`. Returns the table name.
    pub async fn enable_idempotency(&mut self) -> anyhow::Result<String> {
        let name = format!(
            "passcode-idempotency-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        self.moto.create_idempotency_table(&name).await?;
        self.idempotency_table = Some(name.clone());
        Ok(name)
    }

    /// Creates the action log, an event bus and a queue of its result events
    /// in moto; functions spawned from now on get `ACTIONS_TABLE` and
    /// `EVENT_BUS_NAME`.
    pub async fn enable_tracking(&mut self) -> anyhow::Result<TrackingSetup> {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let actions_table = format!("passcode-actions-{suffix}");
        let event_bus = format!("passcode-bus-{suffix}");
        self.moto.create_actions_table(&actions_table).await?;
        let result_queue_url = self
            .moto
            .route_events_to_queue(&event_bus, EVENT_SOURCE)
            .await?;
        let setup = TrackingSetup {
            actions_table,
            event_bus,
            result_queue_url,
        };
        self.tracking = Some(setup.clone());
        Ok(setup)
    }

    /// The result events that arrived since the last call.
    pub async fn take_result_events(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let setup = self.tracking.as_ref().context("tracking is not enabled")?;
        self.moto.drain_events(&setup.result_queue_url).await
    }

    /// Moves the functions' and the simulated tenant's clocks to
    /// `seconds` ahead of real time (debug builds of the functions read
    /// the offset on every use; see `clock` in the core crate).
    pub async fn set_clock_offset(&self, seconds: i64) -> anyhow::Result<()> {
        std::fs::write(self.clock.path(), seconds.to_string()).context("writing the clock file")?;
        self.sim.control().set_clock_offset(seconds).await?;
        Ok(())
    }

    /// Adds `count` copies of the seeded device `template` to the
    /// simulator, each with identifiers of its own and no action history;
    /// returns their ids (`<id_prefix>-0000-4000-8000-<n>`, `id_prefix`
    /// eight hex digits).
    pub async fn add_device_clones(
        &self,
        template: &str,
        count: usize,
        id_prefix: &str,
    ) -> anyhow::Result<Vec<String>> {
        let control = self.sim.control();
        let original = control.device(template).await?;
        let mut ids = Vec::with_capacity(count);
        for n in 0..count {
            let mut device = original.clone();
            let id = format!("{id_prefix}-0000-4000-8000-{n:012}");
            for (field, value) in [
                ("id", json!(id)),
                ("serialNumber", json!(format!("C{id_prefix}{n:06}"))),
                ("imei", json!(format!("354{n:012}"))),
                (
                    "azureADDeviceId",
                    json!(format!("{id_prefix}-1111-4000-8000-{n:012}")),
                ),
                ("deviceName", json!(format!("CLONE-{id_prefix}-{n:05}"))),
                ("deviceActionResults", json!([])),
            ] {
                device[field] = value;
            }
            control.put_device(&device).await?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Starts `passcode-tracker` with [`Stack::function_env`] plus `extra_env`.
    pub async fn spawn_tracker(
        &self,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<FunctionProcess> {
        self.spawn_named(TRACKER, extra_env).await
    }

    /// Starts `bulk-passcode` with [`Stack::function_env`] plus `extra_env`.
    pub async fn spawn_bulk(&self, extra_env: &[(&str, &str)]) -> anyhow::Result<FunctionProcess> {
        self.spawn_named(passcode_core::action::BULK_FUNCTION, extra_env)
            .await
    }

    /// What every function needs to find the secret, Graph and the token endpoint.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let sim = self.sim.base_url();
        let moto = self.moto.endpoint();
        let tracking = self.tracking.as_ref();
        let clock = self.clock.path().to_string_lossy().into_owned();
        [
            ("GRAPH_SECRET_ID", self.secret_id.as_str()),
            ("GRAPH_ENDPOINT", sim),
            ("AZURE_AUTHORITY_HOST", sim),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto),
            ("AWS_ENDPOINT_URL", moto),
            (
                "IDEMPOTENCY_TABLE",
                self.idempotency_table.as_deref().unwrap_or(""),
            ),
            (
                "ACTIONS_TABLE",
                tracking.map_or("", |t| t.actions_table.as_str()),
            ),
            (
                "EVENT_BUS_NAME",
                tracking.map_or("", |t| t.event_bus.as_str()),
            ),
            ("PASSCODE_TEST_CLOCK_FILE", clock.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Starts the function for `action` with [`Stack::function_env`] plus `extra_env`.
    pub async fn spawn(
        &self,
        action: Action,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<FunctionProcess> {
        self.spawn_named(action.function_name(), extra_env).await
    }

    async fn spawn_named(
        &self,
        name: &str,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<FunctionProcess> {
        let mut env = self.function_env();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        FunctionProcess::spawn(FunctionSpec {
            name: name.to_owned(),
            env,
        })
        .await
    }

    /// Every sensitive string this stack made, for asserting that none of
    /// them shows up in logs or responses: the client secret, or the private
    /// key PEM and each line of its base64 body.
    pub fn secret_values(&self) -> Vec<String> {
        match &self.credential {
            Credential::ClientSecret(value) => vec![value.clone()],
            Credential::Certificate {
                private_key_pem, ..
            } => {
                let mut values = vec![private_key_pem.clone()];
                values.extend(
                    private_key_pem
                        .lines()
                        .filter(|line| !line.starts_with("-----") && line.len() >= 16)
                        .map(str::to_owned),
                );
                values
            }
        }
    }

    /// The certificate registered with the simulator (certificate form only).
    pub fn certificate_pem(&self) -> Option<&str> {
        match &self.credential {
            Credential::Certificate {
                certificate_pem, ..
            } => Some(certificate_pem),
            Credential::ClientSecret(_) => None,
        }
    }
}

async fn generate_credential(form: SecretForm) -> anyhow::Result<Credential> {
    match form {
        SecretForm::ClientSecret => Ok(Credential::ClientSecret(client_secret())),
        SecretForm::Certificate => {
            let dir = tempfile::tempdir().context("temporary directory for the key pair")?;
            let (certificate_pem, private_key_pem) = self_signed(dir.path(), 2).await?;
            Ok(Credential::Certificate {
                certificate_pem,
                private_key_pem,
            })
        }
    }
}

/// 40 characters in the shape Entra ID issues (`xxx8Q~…`).
fn client_secret() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!("{}8Q~{}", &random[..3], &random[3..37])
}

/// An RSA 2048 key (PKCS#8 PEM) and a self-signed certificate valid from
/// now for `days` days, written into `dir`: (certificate PEM, key PEM).
pub async fn self_signed(dir: &Path, days: u32) -> anyhow::Result<(String, String)> {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-days",
        &days.to_string(),
        "-subj",
        "/CN=local-stack",
        "-keyout",
        &key.to_string_lossy(),
        "-out",
        &cert.to_string_lossy(),
    ])
    .await?;
    let mut private_key_pem = std::fs::read_to_string(&key)?;
    // OpenSSL 1.x writes PKCS#1 ("BEGIN RSA PRIVATE KEY"); the secret wants PKCS#8.
    if !private_key_pem.contains("BEGIN PRIVATE KEY") {
        let pkcs8 = dir.join("key8.pem");
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &key.to_string_lossy(),
            "-out",
            &pkcs8.to_string_lossy(),
        ])
        .await?;
        private_key_pem = std::fs::read_to_string(&pkcs8)?;
    }
    Ok((std::fs::read_to_string(&cert)?, private_key_pem))
}

async fn openssl(args: &[&str]) -> anyhow::Result<()> {
    let output = guarded_command("openssl")
        .args(args)
        .output()
        .await
        .context("running openssl (is it installed?)")?;
    if !output.status.success() {
        anyhow::bail!(
            "openssl {} failed: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::client_secret;

    #[test]
    fn client_secrets_look_like_entra_ones_and_differ() {
        let a = client_secret();
        assert_eq!(a.len(), 40);
        assert_eq!(&a[4..6], "Q~");
        assert_ne!(a, client_secret());
    }
}
