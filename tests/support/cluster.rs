//! A relay tier on loopback for the tests: Debian's nats-server with
//! JetStream, and `nexscoped relay --cluster` nodes on it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;
use crate::relay::{Relay, TOKEN};

/// nats-server, or the test fails with the install hint (group `cluster`).
pub fn nats_server() -> Option<PathBuf> {
    crate::prereq::program("cluster", "nats-server", "nats-server")
        .then(|| PathBuf::from("nats-server"))
}

/// A nats-server with JetStream on a port of its own, its store in a
/// directory that outlives a restart.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    store: TempDir,
    program: PathBuf,
}

impl Nats {
    pub fn start(program: PathBuf) -> Nats {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut nats = Nats {
            child: None,
            port,
            store: TempDir::new("nats"),
            program,
        };
        nats.up();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, on the same port and store) and waits for it.
    pub fn up(&mut self) {
        let child = Command::new(&self.program)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (kill -9).
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.down();
    }
}

/// A node of the tier, on the given NATS url (a proxy's, say).
pub fn node(nats_url: &str, id: &str) -> Relay {
    Relay::start_with(
        &["--cluster", nats_url, "--node-id", id],
        &[("NEXSCOPE_TOKEN", TOKEN)],
    )
}

/// Starts `node` again on its port (after a kill).
pub fn restart(relay: &mut Relay, nats_url: &str, id: &str) {
    relay.restart(&["--cluster", nats_url, "--node-id", id]);
}

/// The node that is home of the one room in use: the one whose
/// `rooms_homed` is 1.
pub fn home(nodes: &[Relay]) -> usize {
    let started = Instant::now();
    loop {
        if let Some(i) = nodes
            .iter()
            .position(|n| n.metric("nexscope_cluster_rooms_homed") == 1)
        {
            return i;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no node homes the room"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
