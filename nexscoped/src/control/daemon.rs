//! `io.nexscope.Daemon`: Ping, Status, Monitor, Reload, Shutdown.

use std::sync::Arc;

use serde_json::{Value, json};

use super::service::to_value;
use super::{Failure, Replies};
use crate::state::Daemon;
use nexscope_proto::api::daemon::{
    EmbeddedRelayOut, ErrorName, Method, ReloadOut, StatusOut, WebLoginOut,
};
use nexscope_proto::varlink::{Call, VarlinkError};

pub async fn call(
    daemon: &Arc<Daemon>,
    call: &Call,
    replies: &mut Replies<'_>,
) -> Result<Value, Failure> {
    match Method::decode(call)? {
        Method::Ping(_) => Ok(json!({})),
        Method::Status(_) => Ok(to_value(StatusOut {
            status: daemon.status(),
        })?),
        Method::Monitor(_) => {
            if !call.more {
                return Err(VarlinkError::expected_more().into());
            }
            monitor(daemon, replies).await
        }
        Method::Reload(_) => {
            let file = daemon.reload().map_err(|error| {
                VarlinkError::coded(
                    ErrorName::ConfigInvalid.name(),
                    error.code(),
                    error.to_string(),
                )
            })?;
            Ok(to_value(ReloadOut {
                config_file: file.display().to_string(),
            })?)
        }
        Method::EmbeddedRelay(_) => {
            let (url, token) = daemon.embedded_relay();
            Ok(to_value(EmbeddedRelayOut {
                url: url.to_string(),
                token: token.to_string(),
            })?)
        }
        Method::WebLogin(_) => {
            let url = daemon.web.login_url().map_err(|reason| {
                VarlinkError::coded(
                    ErrorName::WebOff.name(),
                    "web_off",
                    format!("the web page does not serve: {reason}"),
                )
            })?;
            Ok(to_value(WebLoginOut {
                url,
                expires_in: crate::web::LOGIN_TTL.as_secs(),
            })?)
        }
        Method::Shutdown(_) => {
            // The reply goes out before the connection sees the shutdown.
            daemon.request_shutdown();
            Ok(json!({}))
        }
    }
}

/// The status now, then again after every change, until shutdown ends the
/// stream with a last reply.
async fn monitor(daemon: &Arc<Daemon>, replies: &mut Replies<'_>) -> Result<Value, Failure> {
    let mut changes = daemon.subscribe_changes();
    let shutdown = daemon.shutdown_signal();
    loop {
        let status = to_value(StatusOut {
            status: daemon.status(),
        })?;
        replies.send(status, true).await?;
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            _ = shutdown.wait() => break,
        }
    }
    Ok(to_value(StatusOut {
        status: daemon.status(),
    })?)
}
