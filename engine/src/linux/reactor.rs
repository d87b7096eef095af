//! The readiness and timer loop that wakes parked vCPUs: one host thread for the whole process
//! `poll`s the descriptors parked vCPUs wait on and sleeps until the earliest deadline, then wakes
//! each vCPU whose descriptor became ready or whose deadline passed.
//!
//! A registration is one-shot: it wakes its vCPU once and is gone; a vCPU that wakes for another
//! reason (a signal, a futex) cancels it. Registrations hold the open files they watch, so a guest
//! that closes a descriptor while another thread waits on it cannot make the loop poll a host
//! descriptor number that meanwhile means something else.
//!
//! `poll` rather than `epoll`: the set changes with every park, and `poll` takes it as it is, with
//! duplicates (two vCPUs on one pipe), with no registration state in the host kernel to keep in
//! step. The loop is woken through an eventfd when a registration changes its set.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;
use std::time::Instant;

use super::fd::OpenFile;
use super::lock;

/// A registration, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Token(u64);

/// Readiness a vCPU waits for: `events` (POLLIN, POLLOUT, ...) on an open file.
#[derive(Debug, Clone)]
pub(crate) struct Interest {
    pub file: Arc<OpenFile>,
    pub events: i16,
}

#[derive(Debug)]
struct Entry {
    interests: Vec<Interest>,
    deadline: Option<Instant>,
    waker: Waker,
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    entries: HashMap<u64, Entry>,
}

/// The process's reactor.
#[derive(Debug)]
pub(crate) struct Reactor {
    registry: Mutex<Registry>,
    /// Written to make the loop rebuild its set.
    notify: OwnedFd,
}

/// The process's reactor, started on first use. `None` if its thread or eventfd could not be
/// created (the machine is out of threads or descriptors).
pub(crate) fn get() -> Option<&'static Reactor> {
    static REACTOR: OnceLock<Option<&'static Reactor>> = OnceLock::new();
    *REACTOR.get_or_init(|| {
        // SAFETY: eventfd has no memory arguments.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            tracing::error!("reactor: eventfd: {}", std::io::Error::last_os_error());
            return None;
        }
        // SAFETY: a fresh descriptor we own.
        let notify = unsafe { OwnedFd::from_raw_fd(fd) };
        let reactor: &'static Reactor = Box::leak(Box::new(Reactor { registry: Mutex::default(), notify }));
        match std::thread::Builder::new().name("shoal-reactor".into()).spawn(move || reactor.run()) {
            Ok(_) => Some(reactor),
            Err(e) => {
                tracing::error!("reactor: cannot start its thread: {e}");
                None
            }
        }
    })
}

impl Reactor {
    /// Wakes `waker` once, when one of `interests` is ready or at `deadline`, whichever first.
    pub fn register(&self, interests: Vec<Interest>, deadline: Option<Instant>, waker: Waker) -> Token {
        let token = {
            let mut reg = lock(&self.registry);
            reg.next += 1;
            let id = reg.next;
            reg.entries.insert(id, Entry { interests, deadline, waker });
            Token(id)
        };
        self.poke();
        token
    }

    /// Drops a registration that has not fired (a no-op if it has).
    pub fn cancel(&self, token: Token) {
        // The loop is not woken: it may poll the removed descriptors (closed, or meaning something
        // else, once the files are dropped) until its next wake-up, which at worst wakes it early,
        // and a wake-up per cancel would cost a context switch.
        lock(&self.registry).entries.remove(&token.0);
    }

    fn poke(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.notify.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    fn run(&self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut owners: Vec<u64> = Vec::new();
        loop {
            fds.clear();
            owners.clear();
            fds.push(libc::pollfd { fd: self.notify.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            owners.push(0);
            let deadline = {
                let reg = lock(&self.registry);
                for (&id, e) in &reg.entries {
                    for i in &e.interests {
                        fds.push(libc::pollfd { fd: i.file.raw(), events: i.events, revents: 0 });
                        owners.push(id);
                    }
                }
                reg.entries.values().filter_map(|e| e.deadline).min()
            };
            let timeout = deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                libc::timespec {
                    tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
                    tv_nsec: libc::c_long::from(left.subsec_nanos()),
                }
            });
            let tsp = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `fds` is a valid array of its length, `tsp` null or a valid timespec. The
            // registered files stay open while their entries exist; a cancelled entry's
            // descriptor may be closed and reused meanwhile, at worst waking this loop early.
            let n = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, tsp, std::ptr::null()) };
            if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                tracing::error!("reactor: ppoll: {}", std::io::Error::last_os_error());
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if fds[0].revents != 0 {
                let mut buf = 0u64;
                // SAFETY: reads 8 bytes into a valid u64 from our non-blocking eventfd.
                unsafe { libc::read(self.notify.as_raw_fd(), (&raw mut buf).cast(), 8) };
            }
            let mut ready: Vec<u64> =
                fds.iter().zip(&owners).skip(1).filter(|(p, _)| p.revents != 0).map(|(_, &id)| id).collect();
            let now = Instant::now();
            let fired: Vec<Entry> = {
                let mut reg = lock(&self.registry);
                ready.extend(
                    reg.entries.iter().filter(|(_, e)| e.deadline.is_some_and(|d| d <= now)).map(|(&id, _)| id),
                );
                ready.iter().filter_map(|id| reg.entries.remove(id)).collect()
            };
            for e in fired {
                e.waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    struct Flag(AtomicUsize, std::thread::Thread);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
            self.1.unpark();
        }
    }

    fn wait_for(flag: &Flag, n: usize) {
        let until = Instant::now() + Duration::from_secs(10);
        while flag.0.load(Ordering::SeqCst) < n && Instant::now() < until {
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }

    #[test]
    fn deadlines_and_readiness_wake_once() {
        let reactor = get().expect("reactor");
        let flag = Arc::new(Flag(AtomicUsize::new(0), std::thread::current()));
        let started = Instant::now();
        reactor.register(Vec::new(), Some(started + Duration::from_millis(20)), Waker::from(flag.clone()));
        wait_for(&flag, 1);
        assert!(started.elapsed() >= Duration::from_millis(20));

        let mut p = [0; 2];
        // SAFETY: pipe2 writes two descriptors.
        assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: fresh descriptors we own.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
        let file = OpenFile::new(r);
        let cancelled = reactor.register(
            vec![Interest { file: file.clone(), events: libc::POLLIN }],
            None,
            Waker::from(Arc::new(Flag(AtomicUsize::new(0), std::thread::current()))),
        );
        reactor.cancel(cancelled);
        reactor.register(vec![Interest { file, events: libc::POLLIN }], None, Waker::from(flag.clone()));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(flag.0.load(Ordering::SeqCst), 1, "not ready yet");
        // SAFETY: writes one byte to the pipe.
        assert_eq!(unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) }, 1);
        wait_for(&flag, 2);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(flag.0.load(Ordering::SeqCst), 2, "one wake-up per registration");
    }
}
