//! A stateful stand-in for Microsoft Graph (Intune `managedDevices` and its
//! passcode actions) and the Entra ID token endpoint, served over plain HTTP
//! on loopback so the real function binaries can be tested end to end.
//!
//! One base URL serves both services:
//! * `POST /{tenant}/oauth2/v2.0/token` — client-credentials grant,
//!   secret or certificate assertion, Entra-shaped errors;
//! * `/{v1.0|beta}/deviceManagement/managedDevices[...]` — list (with the
//!   `$filter` trap), get, and `resetPasscode` / `recoverPasscode` /
//!   `remoteLock`, Graph-shaped errors, Intune's write throttle;
//! * `/_sim/...` — the control API wrapped by [`Control`].
//!
//! The seeded tenant is described in [`seed`]; how it and the service spell
//! things depends on the [`Profile`]. Every request to `managedDevices` is
//! checked against Graph's published schema (see `schema`); breaches are
//! kept as [`Violation`]s.

mod client;
mod control;
mod device;
mod faults;
mod filter;
mod graph;
mod http;
mod log;
mod profile;
mod query;
mod schema;
pub mod seed;
mod server;
mod state;
mod timefmt;
mod token;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use client::{AppCredentials, Control, ControlError};
pub use faults::{DropPoint, Endpoint, Fault, FaultMatch, FaultRule};
pub use log::LoggedRequest;
pub use profile::{PROFILE_ENV, Profile};
pub use schema::Violation;
pub use state::{Settings, WriteLimit};

/// Start a simulator on `bind` (use `127.0.0.1:0` for a free port) with the
/// standard profile.
///
/// Only loopback addresses are accepted: the simulator has an
/// unauthenticated control API and speaks plain HTTP.
pub async fn start(bind: SocketAddr) -> io::Result<RunningSim> {
    start_with(bind, Profile::Standard).await
}

/// Like [`start`], with the tenant and answers spelled as `profile` says.
pub async fn start_with(bind: SocketAddr, profile: Profile) -> io::Result<RunningSim> {
    if !bind.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("graph-sim only listens on loopback addresses, not {bind}"),
        ));
    }
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let sim = Arc::new(state::Sim::new(base_url.clone(), profile));
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(server::serve(listener, sim.clone(), stopped));
    Ok(RunningSim {
        base_url,
        addr,
        sim,
        stop: Some(stop),
        task: Some(task),
    })
}

/// A running simulator. Dropping it stops the server (best effort).
pub struct RunningSim {
    base_url: String,
    addr: SocketAddr,
    sim: Arc<state::Sim>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningSim {
    /// `http://127.0.0.1:PORT`, without a trailing slash. Graph paths and
    /// the token endpoint both live under it.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Graph root for `version` (`"v1.0"` or `"beta"`).
    pub fn graph_url(&self, version: &str) -> String {
        format!("{}/{version}", self.base_url)
    }

    /// Token endpoint of the seeded tenant.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.base_url, seed::TENANT_ID)
    }

    /// The profile this simulator answers with.
    pub fn profile(&self) -> Profile {
        self.sim.profile
    }

    /// Requests so far that break Graph's published schema (also served at
    /// `GET /_sim/violations`).
    pub fn schema_violations(&self) -> Vec<Violation> {
        self.sim.violations()
    }

    /// Typed control client.
    pub fn control(&self) -> Control {
        Control::new(&self.base_url)
    }

    /// Stop accepting connections, close open ones and wait for the server.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
