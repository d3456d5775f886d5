//! Files through the page: an upload is written to a private directory and
//! sent with Chat.Say as any file is (then removed); a download is a file
//! Chat.Files lists, always as an attachment, so that a peer's HTML never
//! runs as the page.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Ctx;
use super::bridge::call_once;
use crate::rooms::files::safe_name;
use nexscope_proto::paths;
use nexscope_proto::varlink::Reply;

/// Longest file name kept from an upload.
const MAX_NAME: usize = 200;
/// Longest caption.
const MAX_TEXT: usize = 64 * 1024;

#[derive(Deserialize)]
pub(super) struct UploadQuery {
    project: String,
    name: String,
    #[serde(default)]
    text: Option<String>,
    /// Comma-separated names; empty: everyone.
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    thread: Option<String>,
}

/// `POST /api/upload?project=…&name=…[&text=…&to=a,b&thread=…]` with the
/// file as the body: Chat.Say's reply, as the bridge would give it.
pub(super) async fn upload(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> Response {
    if q.text.as_ref().is_some_and(|t| t.len() > MAX_TEXT) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the caption is over {MAX_TEXT} bytes"),
        );
    }
    let Ok(_slot) = ctx.uploads.clone().try_acquire_owned() else {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "other uploads are running; try again when they are done".into(),
        );
    };
    // Not joined (or no such project): said before the body is taken.
    let status = call_once(
        &ctx.daemon,
        "io.nexscope.Chat.Status",
        json!({ "project": q.project }),
    )
    .await;
    if status.error.is_some() {
        return reply(status);
    }
    let max = ctx
        .daemon
        .config()
        .settings_for(Path::new(&q.project))
        .max_file;
    let dir = Upload(uploads_dir().join(nexscope_proto::ids::random_hex(8)));
    let path = dir.0.join(safe_name(&q.name, MAX_NAME));
    if let Err((status, message)) = receive(&dir.0, &path, body, max).await {
        return refuse(status, message);
    }
    let to: Vec<&str> =
        q.to.as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|n| !n.is_empty())
            .collect();
    let parameters = json!({
        "project": q.project,
        "file": path.display().to_string(),
        "text": q.text,
        "to": to,
        "thread": q.thread,
        "role": "user",
    });
    // Sent to its end even if the page goes meanwhile (as on the control
    // socket); the copy goes with it.
    let daemon = ctx.daemon.clone();
    let said = tokio::spawn(async move {
        let said = call_once(&daemon, "io.nexscope.Chat.Say", parameters).await;
        drop(dir);
        said
    });
    match said.await {
        Ok(said) => reply(said),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "the send failed".into()),
    }
}

/// Where uploads wait to be sent.
pub(super) fn uploads_dir() -> PathBuf {
    paths::runtime_dir().join("web-uploads")
}

/// An upload's private directory, removed when dropped (sent, refused, or
/// the request given up).
struct Upload(PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the body to `path` in a new private `dir`, at most `max` bytes.
async fn receive(
    dir: &Path,
    path: &Path,
    body: Body,
    max: u64,
) -> Result<(), (StatusCode, String)> {
    let failed = |e: std::io::Error| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot keep the upload: {e}"),
        )
    };
    if let Some(parent) = dir.parent() {
        paths::ensure_private_dir(parent)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    paths::ensure_private_dir(dir)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut file = tokio::fs::File::create(path).await.map_err(failed)?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("the upload broke off: {e}"),
            )
        })?;
        size += chunk.len() as u64;
        if size > max {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the file is larger than this project's max_file ({max} bytes)"),
            ));
        }
        file.write_all(&chunk).await.map_err(failed)?;
    }
    file.flush().await.map_err(failed)
}

#[derive(Deserialize)]
pub(super) struct DownloadQuery {
    project: String,
    #[serde(rename = "msgId")]
    msg_id: String,
}

/// `GET /api/file?project=…&msgId=…`: a received file, as an attachment,
/// streamed from disk.
pub(super) async fn download(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Query<DownloadQuery>,
) -> Response {
    let listed = call_once(
        &ctx.daemon,
        "io.nexscope.Chat.Files",
        json!({ "project": q.project }),
    )
    .await;
    if listed.error.is_some() {
        return reply(listed);
    }
    let files = listed.parameters.unwrap_or_default();
    let Some(file) = files["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["msgId"] == q.msg_id.as_str()))
    else {
        return refuse(StatusCode::NOT_FOUND, "no such file in this project".into());
    };
    let name = file["name"].as_str().unwrap_or("file").to_string();
    let path = PathBuf::from(file["path"].as_str().unwrap_or_default());
    match tokio::fs::File::open(&path).await {
        Ok(opened) => attachment(&name, opened),
        Err(e) => refuse(
            StatusCode::GONE,
            format!("the file is no longer on disk: {e}"),
        ),
    }
}

/// Chunks of a file as they are read.
fn chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    futures_util::stream::unfold(file, |mut file| async move {
        let mut buffer = vec![0u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(bytes::Bytes::from(buffer)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
}

fn attachment(name: &str, file: tokio::fs::File) -> Response {
    let ascii = safe_name(name, MAX_NAME);
    let disposition = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent(name)
    );
    let mut response = (StatusCode::OK, Body::from_stream(chunks(file))).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // Opened anyway (a browser that ignores the disposition), it runs nothing.
    headers.insert(super::guard::SANDBOX, HeaderValue::from_static("1"));
    response
}

/// RFC 5987's encoding of a file name.
fn percent(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A varlink reply as JSON: 200, or 422 when it is an error.
fn reply(reply: Reply) -> Response {
    let status = if reply.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = serde_json::to_string(&reply).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A refusal in the shape of a varlink error, so the page reads both alike.
fn refuse(status: StatusCode, message: String) -> Response {
    let body: Value = json!({ "error": "io.nexscope.Chat.BadArgs", "parameters": { "code": "bad_upload", "message": message } });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
