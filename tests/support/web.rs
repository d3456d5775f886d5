//! The web page of a member's daemon, from outside: its login link, a
//! logged-in session cookie, and the page's WebSocket as a script would
//! open it.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::Env;
use crate::http::{self, Response};

/// Daemons in tests serve their page on a free port (parallel tests would
/// fight over the default one).
pub fn daemon_env() -> Vec<(String, String)> {
    vec![("NEXSCOPE_WEB_LISTEN".into(), "127.0.0.1:0".into())]
}

/// A one-time login URL from `nexscopectl web --no-open`.
pub fn login_url(env: &Env) -> String {
    let out = env.ctl_ok(&["--json", "web", "--no-open"]);
    let value: Value = serde_json::from_str(&out).expect("web --json prints JSON");
    assert_eq!(value["opened"], false, "{value}");
    value["url"].as_str().expect("a url").to_string()
}

/// `http://127.0.0.1:PORT/login?token=…` → (the address, "127.0.0.1:PORT",
/// the path).
pub fn split(url: &str) -> (SocketAddr, String, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    (
        host.parse().expect("an address"),
        host.to_string(),
        format!("/{path}"),
    )
}

/// A GET as a browser on the page's own address sends it.
pub fn get(url: &str, path: &str, extra: &[(&str, &str)]) -> Response {
    let (addr, host, _) = split(url);
    let mut headers = vec![("Host", host.as_str())];
    headers.extend_from_slice(extra);
    http::request(addr, "GET", path, &headers, b"", Duration::from_secs(10))
        .expect("the page answers")
}

/// A logged-in page's secrets: the link it came from, the
/// `nexscope_session=…` cookie pair and the page key.
pub struct Login {
    pub url: String,
    pub cookie: String,
    pub key: String,
}

/// Logs in with a fresh link, as a browser does.
pub fn login(env: &Env) -> Login {
    login_with(&login_url(env))
}

/// Logs in with `url` (a login link) as a browser does.
pub fn login_with(url: &str) -> Login {
    let (_, _, path) = split(url);
    let response = get(url, &path, &[]);
    assert_eq!(response.status, 303, "login: {}", response.text());
    let cookie = response
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let key = response
        .header("location")
        .and_then(|l| l.strip_prefix("/#key="))
        .expect("the page key in the redirect's fragment")
        .to_string();
    Login {
        url: url.to_string(),
        cookie,
        key,
    }
}

/// A request for a login link itself with this method (HEAD, say).
pub fn send_url(url: &str, method: &str) -> Response {
    let (addr, host, path) = split(url);
    http::request(
        addr,
        method,
        &path,
        &[("Host", &host)],
        b"",
        Duration::from_secs(10),
    )
    .expect("the page answers")
}

/// The page's WebSocket with these headers, or the handshake's HTTP status
/// when it is refused.
pub fn bridge(
    url: &str,
    key: &str,
    headers: &[(&str, &str)],
) -> Result<WebSocket<MaybeTlsStream<TcpStream>>, u16> {
    let (addr, host, _) = split(url);
    let mut request = format!("ws://{host}/api/ws?k={key}")
        .into_client_request()
        .expect("a request");
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(value).expect("a header value"));
    }
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    match tungstenite::client::client(request, MaybeTlsStream::Plain(stream)) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

/// One call over the bridge; its reply.
pub fn bridge_call(
    ws: &mut WebSocket<MaybeTlsStream<TcpStream>>,
    id: u64,
    method: &str,
    parameters: Value,
) -> Value {
    let call = serde_json::json!({ "id": id, "method": method, "parameters": parameters });
    ws.send(Message::text(call.to_string())).expect("send");
    loop {
        match ws.read().expect("a reply") {
            Message::Text(text) => {
                let reply: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if reply["id"] == id {
                    return reply;
                }
            }
            _ => continue,
        }
    }
}
