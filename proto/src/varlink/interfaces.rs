//! The interface definitions we serve, checked in as `.varlink` files and
//! embedded verbatim: `GetInterfaceDescription` returns exactly these texts.

use crate::api;

pub const SERVICE: &str = include_str!("../../interfaces/org.varlink.service.varlink");
pub const DAEMON: &str = include_str!("../../interfaces/io.nexscope.Daemon.varlink");
pub const CHAT: &str = include_str!("../../interfaces/io.nexscope.Chat.varlink");
pub const AGENT: &str = include_str!("../../interfaces/io.nexscope.Agent.varlink");

/// Every interface of nexscoped, by name, in the order GetInfo lists them.
pub const ALL: &[(&str, &str)] = &[
    (api::service::INTERFACE, SERVICE),
    (api::daemon::INTERFACE, DAEMON),
    (api::chat::INTERFACE, CHAT),
    (api::agent::INTERFACE, AGENT),
];

pub fn description(interface: &str) -> Option<&'static str> {
    ALL.iter()
        .find(|(name, _)| *name == interface)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_file_declares_the_interface_it_is_listed_under() {
        for (name, text) in ALL {
            let declared = text
                .lines()
                .find_map(|line| line.strip_prefix("interface "))
                .map(str::trim);
            assert_eq!(declared, Some(*name));
        }
    }

    /// The names a file declares with `method` or `error`, in its order.
    fn declared(text: &str, kind: &str) -> Vec<String> {
        text.lines()
            .filter_map(|line| line.strip_prefix(kind)?.strip_prefix(' '))
            .map(|rest| rest.split(['(', ' ']).next().unwrap_or("").to_string())
            .collect()
    }

    fn check(text: &str, interface: &str, methods: &[&str], errors: &[&str]) {
        assert_eq!(
            declared(text, "method"),
            methods,
            "{interface}: the methods of the file and of `Method` differ"
        );
        let errors: Vec<String> = errors
            .iter()
            .map(|full| {
                let short = full
                    .strip_prefix(interface)
                    .and_then(|s| s.strip_prefix('.'));
                short.unwrap_or(full).to_string()
            })
            .collect();
        assert_eq!(
            declared(text, "error"),
            errors,
            "{interface}: the errors of the file and of `ErrorName` differ"
        );
    }

    #[test]
    fn every_method_and_error_of_each_file_has_its_variant_and_back() {
        use api::{agent, chat, daemon, service};
        let declared: [(&str, &str, &[&str], &[&str]); 4] = [
            (
                SERVICE,
                service::INTERFACE,
                service::Method::MEMBERS,
                service::ErrorName::NAMES,
            ),
            (
                DAEMON,
                daemon::INTERFACE,
                daemon::Method::MEMBERS,
                daemon::ErrorName::NAMES,
            ),
            (
                CHAT,
                chat::INTERFACE,
                chat::Method::MEMBERS,
                chat::ErrorName::NAMES,
            ),
            (
                AGENT,
                agent::INTERFACE,
                agent::Method::MEMBERS,
                agent::ErrorName::NAMES,
            ),
        ];
        for (text, interface, methods, errors) in declared {
            check(text, interface, methods, errors);
        }
    }
}
