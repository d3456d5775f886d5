//! `io.nexscope.Agent`: thin handlers over `agents`.

use std::sync::Arc;

use serde_json::Value;

use super::service::to_value;
use super::{Failure, Replies};
use crate::state::Daemon;
use nexscope_proto::api::agent::*;
use nexscope_proto::varlink::{Call, VarlinkError};

impl From<AgentError> for Failure {
    fn from(error: AgentError) -> Self {
        Failure::Error(error.into())
    }
}

/// The dispatch of `io.nexscope.Agent`: one short arm per method, thin
/// over `agents` (long only for their number).
pub async fn call(
    daemon: &Arc<Daemon>,
    call: &Call,
    replies: &mut Replies<'_>,
) -> Result<Value, Failure> {
    let agents = &daemon.agents;
    match Method::decode(call)? {
        Method::Query(input) => {
            if !call.more {
                return Err(VarlinkError::expected_more().into());
            }
            let id = input.id.clone();
            let mut stream = agents.query(input).await?;
            while let Some(event) = stream.recv().await {
                let last = matches!(event, TurnEvent::Done { .. });
                let out = to_value(QueryOut {
                    event,
                    id: id.clone(),
                })?;
                if last {
                    return Ok(out);
                }
                replies.send(out, true).await?;
            }
            Err(AgentError::Stopped.into())
        }
        Method::Cancel(input) => {
            let key = agents.key(&input.target())?;
            Ok(to_value(CancelOut {
                session: agents.cancel(&key).await?,
            })?)
        }
        Method::Sessions(_) => Ok(to_value(SessionsOut {
            sessions: agents.sessions().await?,
        })?),
        Method::Status(input) => {
            let key = agents.key(&input.target())?;
            Ok(to_value(StatusOut {
                session: agents.status(&key).await?,
            })?)
        }
        Method::Close(input) => {
            let name = input
                .session
                .clone()
                .unwrap_or_else(|| DEFAULT_SESSION.into());
            let key = match &input.cwd {
                Some(_) => Some(agents.key(&SessionRef {
                    session: input.session,
                    cwd: input.cwd,
                })?),
                None => None,
            };
            let closed = agents
                .close(&name, key.as_ref(), input.forget.unwrap_or(false))
                .await?;
            Ok(to_value(CloseOut { closed })?)
        }
        Method::Skills(input) => {
            let key = agents.key(&input.target())?;
            Ok(to_value(SkillsOut {
                metadata: agents.skills(&key, None).await?,
            })?)
        }
        Method::Usage(input) => {
            let key = agents.key(&SessionRef {
                session: input.session,
                cwd: input.cwd,
            })?;
            Ok(to_value(
                agents.usage(&key, input.turns.unwrap_or(0)).await?,
            )?)
        }
    }
}
