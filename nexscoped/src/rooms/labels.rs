//! How people and targets are shown (spec §2.8, §2.13): role labels with peer
//! indexes, targets, and the one-line renderings of events that hooks,
//! `nexscopectl watch` and the MCP shim print.

use serde_json::Value;

/// `[userAgent1 alice]`, or `[user1 alice]` when alice speaks as a person.
pub fn peer_label(role: &str, index: u32, name: &str) -> String {
    let role = if role == "user" { "user" } else { "userAgent" };
    format!("[{role}{index} {name}]")
}

/// `@all` for a broadcast, `@me`, `@me,@bob`, `@bob,@carol`.
pub fn target(to: &[String], me: &str) -> String {
    if to.is_empty() {
        return "@all".into();
    }
    let mut names: Vec<String> = Vec::new();
    if to.iter().any(|n| n == me) {
        names.push("@me".into());
    }
    names.extend(to.iter().filter(|n| *n != me).map(|n| format!("@{n}")));
    names.join(",")
}

/// The `users` of a presence row, as `a, b`.
fn online(row: &Value) -> String {
    row["users"]
        .as_array()
        .map(|u| {
            u.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// One history row (§4): `<ISO> ←|→ <from|me> [<to>|[broadcast]] <role> …`;
/// `ascii` gives the MCP shim's `<-`/`->`.
pub fn history_line(m: &Value, ascii: bool) -> String {
    let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
    let inbound = m["dir"] == "in";
    let to = match m["to"].as_array() {
        Some(a) if a.is_empty() => "[broadcast]".to_string(),
        Some(a) => format!(
            "[{}]",
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        ),
        None => "[?]".to_string(),
    };
    let who = if inbound { s("from") } else { "me".into() };
    let body = if m["type"] == "file-start" {
        format!(
            "(file) {} ({}B) thread={}",
            m["attachment"]["name"].as_str().unwrap_or_default(),
            m["attachment"]["size"].as_u64().unwrap_or(0),
            s("threadId")
        )
    } else {
        format!("thread={}: {}", s("threadId"), indent(&s("text")))
    };
    let arrow = match (inbound, ascii) {
        (true, false) => "←",
        (false, false) => "→",
        (true, true) => "<-",
        (false, true) => "->",
    };
    format!(
        "{} {arrow} {who} {to} {} {body}",
        iso(m["ts"].as_i64().unwrap_or(0)),
        s("role")
    )
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n  ")
}

/// One event as a line (§2.13).
pub fn render(row: &Value) -> String {
    let s = |key: &str| row[key].as_str().unwrap_or_default();
    match s("kind") {
        "presence" => {
            let online = online(row);
            match s("event") {
                "snapshot" => format!("[nexscope presence] online: {online}"),
                event => format!(
                    "[nexscope presence] {} {event} | online: {online}",
                    s("user")
                ),
            }
        }
        "msg" => {
            let hop = row["hopCount"].as_i64().unwrap_or(0);
            let thread = if s("threadId").is_empty() {
                String::new()
            } else {
                format!(" (thread={})", s("threadId"))
            };
            let hop = if hop > 0 {
                format!(" hop={hop}")
            } else {
                String::new()
            };
            format!(
                "{} → {}{thread}{hop}: {}",
                s("label"),
                s("target"),
                indent(s("text"))
            )
        }
        "file_start" => format!(
            "{} → {} (file incoming) name={} size={}B thread={}",
            s("label"),
            s("target"),
            s("name"),
            row["size"].as_u64().unwrap_or(0),
            s("threadId")
        ),
        "file_end" => format!(
            "{} → {} (file received) {} saved to {}",
            s("label"),
            s("target"),
            s("name"),
            s("path")
        ),
        "system" => s("text").to_string(),
        _ => format!("[nexscope] {row}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_and_targets_follow_the_spec() {
        assert_eq!(peer_label("userAgent", 1, "alice"), "[userAgent1 alice]");
        assert_eq!(peer_label("user", 1, "alice"), "[user1 alice]");
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(target(&[], "bob"), "@all");
        assert_eq!(target(&names(&["bob"]), "bob"), "@me");
        assert_eq!(target(&names(&["carol", "bob"]), "bob"), "@me,@carol");
        assert_eq!(target(&names(&["carol", "dave"]), "bob"), "@carol,@dave");
    }

    #[test]
    fn lines_match_section_2_13() {
        let msg = json!({"kind":"msg","label":"[userAgent1 alice]","target":"@me","threadId":"t1","hopCount":0,"text":"a\nb"});
        assert_eq!(render(&msg), "[userAgent1 alice] → @me (thread=t1): a\n  b");
        let joined =
            json!({"kind":"presence","event":"joined","user":"bob","users":["alice","bob"]});
        assert_eq!(
            render(&joined),
            "[nexscope presence] bob joined | online: alice, bob"
        );
    }
}

/// Epoch milliseconds as ISO 8601 UTC (`2026-11-22T02:07:43.123Z`), as v1
/// prints times.
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod iso_tests {
    #[test]
    fn iso_matches_known_instants() {
        assert_eq!(super::iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::iso(1_795_313_263_123), "2026-11-22T02:07:43.123Z");
        assert_eq!(super::iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}

/// One event as the MCP shim shows it (v1's formatEvent, §3): the hooks'
/// lines with other prefixes for presence and the hop inside the brackets.
pub fn render_mcp(row: &Value) -> String {
    let s = |key: &str| row[key].as_str().unwrap_or_default();
    match s("kind") {
        "presence" => {
            let online = online(row);
            match s("event") {
                "snapshot" => format!("[presence snapshot] online: {online}"),
                event => format!("[presence] {} {event} | online: {online}", s("user")),
            }
        }
        "msg" => {
            let hop = row["hopCount"].as_i64().unwrap_or(0);
            let hop = if hop > 0 {
                format!(" hop={hop}")
            } else {
                String::new()
            };
            format!(
                "{} → {} (thread={}{hop}): {}",
                s("label"),
                s("target"),
                s("threadId"),
                indent(s("text"))
            )
        }
        "file_start" | "file_end" | "system" => render(row),
        _ => format!("[event] {row}"),
    }
}
