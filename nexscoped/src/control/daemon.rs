//! `io.nexscope.Daemon`: Ping, Status, Monitor, Reload, Shutdown.

use std::sync::Arc;

use serde_json::{Value, json};

use super::service::to_value;
use super::{Failure, Replies};
use nexscope_proto::api::daemon::{ERROR_CONFIG_INVALID, EmbeddedRelayOut, Empty, ReloadOut, StatusOut};
use crate::state::Daemon;
use nexscope_proto::varlink::{Call, VarlinkError};

pub async fn call(
    daemon: &Arc<Daemon>,
    call: &Call,
    member: &str,
    replies: &mut Replies<'_>,
) -> Result<Value, Failure> {
    match member {
        "Ping" => {
            call.decode::<Empty>()?;
            Ok(json!({}))
        }
        "Status" => {
            call.decode::<Empty>()?;
            Ok(to_value(StatusOut {
                status: daemon.status(),
            })?)
        }
        "Monitor" => {
            call.decode::<Empty>()?;
            if !call.more {
                return Err(VarlinkError::expected_more().into());
            }
            monitor(daemon, replies).await
        }
        "Reload" => {
            call.decode::<Empty>()?;
            let file = daemon.reload().map_err(|error| {
                VarlinkError::coded(ERROR_CONFIG_INVALID, error.code(), error.to_string())
            })?;
            Ok(to_value(ReloadOut {
                config_file: file.display().to_string(),
            })?)
        }
        "EmbeddedRelay" => {
            call.decode::<Empty>()?;
            let (url, token) = daemon.embedded_relay();
            Ok(to_value(EmbeddedRelayOut {
                url: url.to_string(),
                token: token.to_string(),
            })?)
        }
        "Shutdown" => {
            call.decode::<Empty>()?;
            // The reply goes out before the connection sees the shutdown.
            daemon.request_shutdown();
            Ok(json!({}))
        }
        _ => Err(VarlinkError::method_not_found(&call.method).into()),
    }
}

/// The status now, then again after every change, until shutdown ends the
/// stream with a last reply.
async fn monitor(daemon: &Arc<Daemon>, replies: &mut Replies<'_>) -> Result<Value, Failure> {
    let mut changes = daemon.subscribe_changes();
    let mut shutdown = daemon.shutdown_signal();
    loop {
        let status = to_value(StatusOut {
            status: daemon.status(),
        })?;
        replies.send(status, true).await?;
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    Ok(to_value(StatusOut {
        status: daemon.status(),
    })?)
}
