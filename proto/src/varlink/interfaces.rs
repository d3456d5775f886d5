//! The interface definitions we serve, checked in as `.varlink` files and
//! embedded verbatim: `GetInterfaceDescription` returns exactly these texts.

pub const SERVICE: &str = include_str!("../../interfaces/org.varlink.service.varlink");
pub const DAEMON: &str = include_str!("../../interfaces/io.nexscope.Daemon.varlink");
pub const CHAT: &str = include_str!("../../interfaces/io.nexscope.Chat.varlink");
pub const AGENT: &str = include_str!("../../interfaces/io.nexscope.Agent.varlink");

/// Every interface of nexscoped, by name, in the order GetInfo lists them.
pub const ALL: &[(&str, &str)] = &[
    ("org.varlink.service", SERVICE),
    ("io.nexscope.Daemon", DAEMON),
    ("io.nexscope.Chat", CHAT),
    ("io.nexscope.Agent", AGENT),
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
}
