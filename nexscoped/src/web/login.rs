//! Logging in to the page: `nexscopectl web` asks the daemon (over the
//! control socket, so only its user can) for a one-time token in a URL; the
//! page trades it for a session cookie (HttpOnly, SameSite=Strict). Tokens
//! and sessions are kept as their sha256 only, so that a lookup compares
//! hashes and a memory dump shows no usable secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Ctx;
use nexscope_proto::ids::{random_hex, sha256_hex};

/// How long a login URL works.
pub(crate) const LOGIN_TTL: Duration = Duration::from_secs(60);
/// How long a session lasts; then `nexscopectl web` again.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Unused login URLs kept; the oldest goes first.
const MAX_TOKENS: usize = 16;
/// Sessions kept; the oldest goes first.
const MAX_SESSIONS: usize = 32;
pub(crate) const COOKIE: &str = "nexscope_session";

#[derive(Default)]
pub(crate) struct Logins {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// sha256 of a login token → when it expires.
    tokens: HashMap<String, Instant>,
    /// sha256 of a session cookie → when it expires.
    sessions: HashMap<String, Instant>,
}

impl Logins {
    /// A new one-time login token.
    pub(crate) fn mint(&self) -> String {
        let token = random_hex(32);
        let mut inner = self.lock();
        keep(
            &mut inner.tokens,
            sha256_hex(token.as_bytes()),
            LOGIN_TTL,
            MAX_TOKENS,
        );
        token
    }

    /// The token's session cookie value, once: the token is gone after this
    /// whether it was good or not.
    fn redeem(&self, token: &str) -> Option<String> {
        let mut inner = self.lock();
        let expires = inner.tokens.remove(&sha256_hex(token.as_bytes()))?;
        if expires <= Instant::now() {
            return None;
        }
        let session = random_hex(32);
        keep(
            &mut inner.sessions,
            sha256_hex(session.as_bytes()),
            SESSION_TTL,
            MAX_SESSIONS,
        );
        Some(session)
    }

    /// Whether the request carries a live session cookie.
    pub(crate) fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(session) = session_cookie(headers) else {
            return false;
        };
        let inner = self.lock();
        inner
            .sessions
            .get(&sha256_hex(session.as_bytes()))
            .is_some_and(|expires| *expires > Instant::now())
    }

    fn end(&self, headers: &HeaderMap) {
        if let Some(session) = session_cookie(headers) {
            self.lock().sessions.remove(&sha256_hex(session.as_bytes()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The maps hold no invariant a panic could break halfway.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds `key`, first dropping what expired and, when full, the entry that
/// expires soonest.
fn keep(map: &mut HashMap<String, Instant>, key: String, ttl: Duration, max: usize) {
    let now = Instant::now();
    map.retain(|_, expires| *expires > now);
    if map.len() >= max
        && let Some(oldest) = map.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    map.insert(key, now + ttl);
}

/// The session cookie's value, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    token: String,
}

/// `GET /login?token=…`: the session cookie and on to the page, or a page
/// that says how to get a new link.
pub(crate) async fn login(State(ctx): State<Arc<Ctx>>, Query(q): Query<LoginQuery>) -> Response {
    let Some(session) = (q.token.len() == 64)
        .then(|| ctx.web.logins.redeem(&q.token))
        .flatten()
    else {
        return (
            StatusCode::FORBIDDEN,
            "This login link was already used or has expired (links work once, for a minute).\nRun `nexscopectl web` for a new one.\n",
        )
            .into_response();
    };
    let secure = if ctx.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    );
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /api/me`: 200 when logged in (the guard answers 401 otherwise), so
/// the page knows whether to show the login notice.
pub(crate) async fn me() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
}

/// `POST /logout`: the session ends here and in the browser.
pub(crate) async fn logout(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    ctx.web.logins.end(&headers);
    let expired = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_token_works_once() {
        let logins = Logins::default();
        let token = logins.mint();
        let session = logins.redeem(&token).unwrap();
        assert!(logins.redeem(&token).is_none());
        assert!(logins.authorized(&cookie(&format!("a=b; {COOKIE}={session}"))));
        assert!(!logins.authorized(&cookie(&format!("{COOKIE}={token}"))));
        assert!(!logins.authorized(&HeaderMap::new()));
    }

    #[test]
    fn an_expired_token_is_refused_and_gone() {
        let logins = Logins::default();
        let token = logins.mint();
        let key = sha256_hex(token.as_bytes());
        logins.lock().tokens.insert(key.clone(), Instant::now());
        assert!(logins.redeem(&token).is_none());
        assert!(!logins.lock().tokens.contains_key(&key));
    }

    #[test]
    fn unused_tokens_are_bounded() {
        let logins = Logins::default();
        let first = logins.mint();
        for _ in 0..MAX_TOKENS {
            logins.mint();
        }
        assert_eq!(logins.lock().tokens.len(), MAX_TOKENS);
        assert!(logins.redeem(&first).is_none(), "the oldest made room");
    }
}
