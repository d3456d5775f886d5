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

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
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

/// A TCP proxy in the test, between a node and NATS, that can cut the
/// node off (every connection closed, new ones refused) and let it back.
pub struct Proxy {
    pub port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("its address").port();
        let open = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let (accept_open, accept_generation) = (open.clone(), generation.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !accept_open.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let born = accept_generation.load(Ordering::SeqCst);
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else {
                        continue;
                    };
                    let generation = accept_generation.clone();
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
                        let mut buffer = [0u8; 16 * 1024];
                        while generation.load(Ordering::SeqCst) == born {
                            match from.read(&mut buffer) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if to.write_all(&buffer[..n]).is_err() {
                                        break;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy {
            port,
            open,
            generation,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Cuts every connection through it and refuses new ones.
    pub fn cut(&self) {
        use std::sync::atomic::Ordering;
        self.open.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
