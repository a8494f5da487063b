//! A unix-socket relay between a QMP client and QEMU's QMP socket, which a test
//! can cut: after it has passed on the next command, it closes both ends before
//! QEMU's reply goes back (the client sees its monitor close mid-command, as if
//! QEMU had closed it), and its socket is gone until the test restores it.

use std::io::{BufRead, BufReader, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Ctl {
    /// Cut the session at the next command.
    cut: AtomicBool,
    /// The socket is gone (after a cut, until restored).
    down: AtomicBool,
    /// Sessions cut.
    cuts: AtomicU64,
    /// Sessions accepted.
    sessions: AtomicU64,
    /// The relay's owner is gone.
    end: AtomicBool,
}

/// The relay; it stops when dropped.
pub struct Relay {
    path: PathBuf,
    ctl: Arc<Ctl>,
}

impl Relay {
    /// Listens on `path` and passes every session on to `upstream`.
    pub fn start(upstream: &Path, path: PathBuf) -> Relay {
        let ctl = Arc::new(Ctl::default());
        let (c, up, p) = (ctl.clone(), upstream.to_path_buf(), path.clone());
        let _ = std::fs::remove_file(&p);
        let mut listener = Some(UnixListener::bind(&p).expect("relay socket"));
        std::thread::spawn(move || loop {
            if c.end.load(SeqCst) {
                return;
            }
            if c.down.load(SeqCst) {
                // Gone: nothing listens until restored.
                if listener.take().is_some() {
                    let _ = std::fs::remove_file(&p);
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let l = listener.get_or_insert_with(|| {
                let _ = std::fs::remove_file(&p);
                UnixListener::bind(&p).expect("relay socket again")
            });
            l.set_nonblocking(true).expect("nonblocking listener");
            match l.accept() {
                Ok((client, _)) => {
                    let _ = client.set_nonblocking(false);
                    c.sessions.fetch_add(1, SeqCst);
                    pass(client, &up, c.clone());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        });
        Relay { path, ctl }
    }

    /// The relay's socket, for the client.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cuts the session at the client's next command and takes the socket away.
    pub fn cut_mid_command(&self) {
        self.ctl.cut.store(true, SeqCst);
    }

    /// Sessions cut so far.
    pub fn cuts(&self) -> u64 {
        self.ctl.cuts.load(SeqCst)
    }

    /// Sessions accepted so far.
    pub fn sessions(&self) -> u64 {
        self.ctl.sessions.load(SeqCst)
    }

    /// Brings the socket back after a cut.
    pub fn restore(&self) {
        self.ctl.down.store(false, SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.ctl.end.store(true, SeqCst);
    }
}

/// Relays one session in two threads.
fn pass(client: UnixStream, upstream: &Path, c: Arc<Ctl>) {
    let Ok(qemu) = UnixStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(mut to_client), Ok(mut from_qemu), Ok(mut to_qemu)) =
        (client.try_clone(), qemu.try_clone(), qemu.try_clone())
    else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_qemu, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Both);
    });
    std::thread::spawn(move || {
        let mut r = BufReader::new(client);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 || c.end.load(SeqCst) {
                break;
            }
            if to_qemu.write_all(line.as_bytes()).is_err() {
                break;
            }
            if line.contains("\"execute\"") && c.cut.swap(false, SeqCst) {
                // The command is on its way to QEMU; its reply never comes back.
                c.down.store(true, SeqCst);
                c.cuts.fetch_add(1, SeqCst);
                break;
            }
        }
        let _ = to_qemu.shutdown(Shutdown::Both);
        let _ = r.get_ref().shutdown(Shutdown::Both);
    });
}
