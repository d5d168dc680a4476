//! Loopback ports a test holds, refuses or never accepts on, so no port is guessed free.

use std::net::TcpListener;
use std::process::Command;

/// A port the kernel just handed out and took back: only for servers that cannot take a held
/// socket, through [`start_on_a_port`] (which retries a start that loses it) or nginx's own retry.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// A loopback port that refuses connections for as long as the returned socket lives: bound but
/// never listening, so no other test can take it meanwhile (a merely free port could be).
pub fn refusing_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind loopback");
    let addr = socket.local_addr().expect("local addr");
    (socket, addr)
}

/// A loopback port whose connects time out for as long as this lives, as a target behind a
/// security group that admits only the load balancer: it listens with a backlog of one and never
/// accepts, and the connection it holds fills that backlog, so the kernel drops every further SYN.
pub struct NeverAccepting {
    _listener: tokio::net::TcpListener,
    _filler: std::net::TcpStream,
    pub addr: std::net::SocketAddr,
}

impl NeverAccepting {
    /// Within a Tokio runtime.
    pub fn new() -> NeverAccepting {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind loopback");
        let listener = socket.listen(0).expect("listen");
        let addr = listener.local_addr().expect("local addr");
        let filler = std::net::TcpStream::connect(addr).expect("fill the backlog");
        NeverAccepting {
            _listener: listener,
            _filler: filler,
            addr,
        }
    }
}

/// A loopback port bound and listening for as long as this lives. A child process gets the socket
/// itself (as fd 3, `--listen-fd 3`), so the port is never guessed free and nothing else can take
/// it, not even while the child restarts.
pub struct HeldPort {
    listener: TcpListener,
    pub port: u16,
}

impl HeldPort {
    pub fn new() -> HeldPort {
        Self::on(0)
    }

    /// `port` again (a restart on the port clients know); 0 lets the kernel choose.
    pub fn on(port: u16) -> HeldPort {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        HeldPort { listener, port }
    }

    /// The child of `command` finds the socket at fd 3.
    pub fn pass_to(&self, command: &mut Command) {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::process::CommandExt as _;
        let fd = self.listener.as_raw_fd();
        // SAFETY: runs in the child between fork and exec, calling only async-signal-safe
        // functions (dup2, fcntl) on a descriptor the parent keeps open.
        unsafe {
            command.pre_exec(move || {
                if fd == 3 {
                    // dup2 onto itself keeps close-on-exec: clear it instead.
                    if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}
