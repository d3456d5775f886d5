//! Logging in to the page: `nexscopectl web` asks the daemon (over the
//! control socket, so only its user can) for a one-time token in a URL; the
//! page trades it for a session: a cookie (HttpOnly, SameSite=Strict) and a
//! page key, which the page keeps in its origin's storage and sends with
//! every API request. Both are needed: browsers send a cookie for
//! 127.0.0.1 to every port of it, so another local user's server on
//! another port could collect the cookie, but storage is kept per port.
//! Tokens, cookies and keys are kept as their sha256 only, so that a lookup
//! compares hashes and a memory dump shows no usable secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
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
    tokens: HashMap<String, Entry>,
    /// sha256 of a session cookie → its page key's sha256, and when it
    /// expires.
    sessions: HashMap<String, Entry>,
}

struct Entry {
    expires: Instant,
    /// sha256 of the page key (sessions only).
    key: String,
}

/// A session as the page holds it.
pub(crate) struct Granted {
    pub cookie: String,
    pub key: String,
}

impl Logins {
    /// A new one-time login token.
    pub(crate) fn mint(&self) -> String {
        let token = random_hex(32);
        let entry = Entry {
            expires: Instant::now() + LOGIN_TTL,
            key: String::new(),
        };
        keep(
            &mut self.lock().tokens,
            sha256_hex(token.as_bytes()),
            entry,
            MAX_TOKENS,
        );
        token
    }

    /// The token's session, once: the token is gone after this whether it
    /// was good or not.
    fn redeem(&self, token: &str) -> Option<Granted> {
        let mut inner = self.lock();
        let token = inner.tokens.remove(&sha256_hex(token.as_bytes()))?;
        if token.expires <= Instant::now() {
            return None;
        }
        let granted = Granted {
            cookie: random_hex(32),
            key: random_hex(32),
        };
        let entry = Entry {
            expires: Instant::now() + SESSION_TTL,
            key: sha256_hex(granted.key.as_bytes()),
        };
        keep(
            &mut inner.sessions,
            sha256_hex(granted.cookie.as_bytes()),
            entry,
            MAX_SESSIONS,
        );
        Some(granted)
    }

    /// The session of a request that carries a live session cookie and its
    /// page key (`key`: from the header or the query), as the id `alive`
    /// takes.
    pub(crate) fn authorized(&self, headers: &HeaderMap, key: Option<&str>) -> Option<String> {
        let (cookie, key) = (session_cookie(headers)?, key?);
        let id = sha256_hex(cookie.as_bytes());
        let inner = self.lock();
        let session = inner.sessions.get(&id)?;
        let valid = session.expires > Instant::now() && session.key == sha256_hex(key.as_bytes());
        valid.then_some(id)
    }

    /// Whether the session `id` (from `authorized`) is still on: an open
    /// page is closed once it is not.
    pub(crate) fn alive(&self, id: &str) -> bool {
        self.lock()
            .sessions
            .get(id)
            .is_some_and(|s| s.expires > Instant::now())
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
fn keep(map: &mut HashMap<String, Entry>, id: String, entry: Entry, max: usize) {
    let now = Instant::now();
    map.retain(|_, e| e.expires > now);
    if map.len() >= max
        && let Some(oldest) = map
            .iter()
            .min_by_key(|(_, e)| e.expires)
            .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    map.insert(id, entry);
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

/// `GET /login?token=…`: the session cookie and on to the page (with its
/// page key in the fragment, which never leaves the browser), or a page
/// that says how to get a new link. A HEAD (a link preview) uses nothing.
pub(crate) async fn login(
    State(ctx): State<Arc<Ctx>>,
    method: Method,
    Query(q): Query<LoginQuery>,
) -> Response {
    if method == Method::HEAD {
        return StatusCode::OK.into_response();
    }
    let granted = (q.token.len() == 64)
        .then(|| ctx.web.logins.redeem(&q.token))
        .flatten();
    let Some(granted) = granted else {
        return (
            StatusCode::FORBIDDEN,
            "This login link was already used or has expired (links work once, for a minute).\nRun `nexscopectl web` for a new one.\n",
        )
            .into_response();
    };
    let secure = if ctx.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        granted.cookie,
        SESSION_TTL.as_secs()
    );
    let location = format!("/#key={}", granted.key);
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
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
    fn a_token_works_once_and_a_session_needs_its_cookie_and_key() {
        let logins = Logins::default();
        let token = logins.mint();
        let granted = logins.redeem(&token).unwrap();
        assert!(logins.redeem(&token).is_none());
        let headers = cookie(&format!("a=b; {COOKIE}={}", granted.cookie));
        let id = logins.authorized(&headers, Some(&granted.key)).unwrap();
        assert!(logins.alive(&id));
        assert!(
            logins.authorized(&headers, None).is_none(),
            "the cookie alone"
        );
        assert!(
            logins.authorized(&headers, Some(&token)).is_none(),
            "a wrong key"
        );
        let token_cookie = cookie(&format!("{COOKIE}={token}"));
        assert!(
            logins
                .authorized(&token_cookie, Some(&granted.key))
                .is_none()
        );
        assert!(
            logins
                .authorized(&HeaderMap::new(), Some(&granted.key))
                .is_none()
        );
        logins.end(&headers);
        assert!(!logins.alive(&id), "logged out");
    }

    #[test]
    fn an_expired_token_is_refused_and_gone() {
        let logins = Logins::default();
        let token = logins.mint();
        let key = sha256_hex(token.as_bytes());
        let expired = Entry {
            expires: Instant::now(),
            key: String::new(),
        };
        logins.lock().tokens.insert(key.clone(), expired);
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
