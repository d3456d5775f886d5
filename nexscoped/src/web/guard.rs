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

pub(super) async fn guard(State(ctx): State<Arc<Ctx>>, request: Request, next: Next) -> Response {
    if let Err(refusal) = check(
        &ctx,
        request.method(),
        request.uri().path(),
        request.headers(),
    ) {
        return secure(refusal.into_response());
    }
    secure(next.run(request).await)
}

/// Why a request is refused: its status and a line for the person.
type Refusal = (StatusCode, String);

fn check(ctx: &Ctx, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), Refusal> {
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
    if private && !ctx.web.logins.authorized(headers) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "not logged in: run `nexscopectl web` and open the link it prints\n".into(),
        ));
    }
    Ok(())
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The headers every response carries.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
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
