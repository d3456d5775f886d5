//! What a local web service must refuse, checked before any handler runs:
//! a Host that is not the page's (DNS rebinding: a site whose name now
//! points at 127.0.0.1), a state-changing request or WebSocket upgrade whose
//! Origin is not the page's own (cross-site requests), and an API request
//! without a session. Every response carries a Content-Security-Policy that
//! allows the page's own scripts only, and no CORS header is ever sent.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Ctx;

/// Set by a handler whose response must run nothing (a peer's file).
pub(super) const SANDBOX: &str = "x-nexscope-sandbox";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The Host header values the page answers to: the loopback names with the
/// port, and for a remote page its address and configured name.
pub(super) fn hosts(bound: SocketAddr, name: Option<&str>) -> Vec<String> {
    let port = bound.port();
    let mut hosts = vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ];
    if !bound.ip().is_loopback() && !bound.ip().is_unspecified() {
        hosts.push(bound.to_string());
    }
    if let Some(name) = name {
        hosts.push(format!("{name}:{port}"));
    }
    hosts
}

pub(super) async fn guard(
    State(ctx): State<Arc<Ctx>>,
    mut request: Request,
    next: Next,
) -> Response {
    match check(&ctx, &request) {
        Ok(session) => {
            if let Some(session) = session {
                request.extensions_mut().insert(Session(session));
            }
            secure(next.run(request).await)
        }
        Err(refusal) => secure(refusal.into_response()),
    }
}

/// The logged-in session a private request came with (for the bridge,
/// which closes when it ends).
#[derive(Clone)]
pub(super) struct Session(pub String);

/// The header the page sends its key in; `k` in the query where it cannot
/// send headers (its WebSocket, a download link).
const KEY_HEADER: &str = "x-nexscope-key";

/// Why a request is refused: its status and a line for the person.
type Refusal = (StatusCode, String);

/// The request's session when it needs one; why it is refused otherwise.
fn check(ctx: &Ctx, request: &Request) -> Result<Option<String>, Refusal> {
    let (method, path, headers) = (request.method(), request.uri().path(), request.headers());
    if headers.get_all(header::HOST).iter().count() > 1 {
        return Err((
            StatusCode::BAD_REQUEST,
            "more than one Host header\n".into(),
        ));
    }
    let host = header_str(headers, header::HOST).map(str::to_ascii_lowercase);
    let Some(host) = host.filter(|h| ctx.hosts.iter().any(|ours| ours == h)) else {
        return Err((
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this page answers only to the Host {}; open the address nexscopectl web prints\n",
                ctx.hosts.join(" or ")
            ),
        ));
    };
    let changes =
        !matches!(*method, Method::GET | Method::HEAD) || headers.contains_key(header::UPGRADE);
    if changes {
        let scheme = if ctx.tls { "https" } else { "http" };
        let own = format!("{scheme}://{host}");
        if header_str(headers, header::ORIGIN) != Some(own.as_str()) {
            return Err((
                StatusCode::FORBIDDEN,
                format!(
                    "refused: a request that changes something must come from the page itself (Origin {own})\n"
                ),
            ));
        }
    }
    let private = path.starts_with("/api/") || path == "/logout";
    if !private {
        return Ok(None);
    }
    let key = headers
        .get(KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| query_key(request.uri().query()));
    match ctx.web.logins.authorized(headers, key) {
        Some(session) => Ok(Some(session)),
        None => Err((
            StatusCode::UNAUTHORIZED,
            "not logged in: run `nexscopectl web` and open the link it prints\n".into(),
        )),
    }
}

/// The page key in a query (`k=…`).
fn query_key(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "k")
        .map(|(_, value)| value)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The headers every response carries; a download (marked by `files`) gets
/// a sandbox that runs nothing, whatever it holds.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let csp = match headers.remove(SANDBOX) {
        Some(_) => "sandbox; default-src 'none'",
        None => CSP,
    };
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}
