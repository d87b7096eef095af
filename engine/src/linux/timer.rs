//! Wall-clock interval timers (setitimer ITIMER_REAL, and so alarm): one service thread per guest
//! machine sleeps until the earliest deadline and sends SIGALRM to the process that armed it.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::signal::{self, SigInfo};
use super::{Kernel, lock};

#[derive(Debug, Clone, Copy)]
struct Armed {
    deadline: Instant,
    interval: Duration,
}

#[derive(Debug, Default)]
struct State {
    armed: HashMap<i32, Armed>,
    running: bool,
}

/// The interval timers of one guest machine.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    state: Mutex<State>,
    changed: Condvar,
}

impl Timers {
    /// The remaining time and interval of `pid`'s timer (zero when disarmed).
    pub fn get(&self, pid: i32) -> (Duration, Duration) {
        let st = lock(&self.state);
        st.armed.get(&pid).map_or((Duration::ZERO, Duration::ZERO), |a| {
            (a.deadline.saturating_duration_since(Instant::now()).max(Duration::from_micros(1)), a.interval)
        })
    }

    /// Arms (or, with a zero `value`, disarms) `pid`'s timer; returns the previous setting.
    pub fn set(&self, kernel: &Arc<Kernel>, pid: i32, value: Duration, interval: Duration) -> (Duration, Duration) {
        let old = self.get(pid);
        let mut st = lock(&self.state);
        if value.is_zero() {
            st.armed.remove(&pid);
        } else {
            st.armed.insert(pid, Armed { deadline: Instant::now() + value, interval });
            if !st.running {
                st.running = true;
                let weak = Arc::downgrade(kernel);
                let spawned = std::thread::Builder::new().name("guest-timers".into()).spawn(move || service(&weak));
                if spawned.is_err() {
                    st.running = false;
                }
            }
        }
        drop(st);
        self.changed.notify_all();
        old
    }

    /// Drops a process's timer (at exit and execve keeps it, as Linux does; exit drops it).
    pub fn forget(&self, pid: i32) {
        lock(&self.state).armed.remove(&pid);
    }
}

fn service(kernel: &Weak<Kernel>) {
    loop {
        let Some(k) = kernel.upgrade() else { return };
        let mut st = lock(&k.timers.state);
        let now = Instant::now();
        let due: Vec<i32> = st.armed.iter().filter(|(_, a)| a.deadline <= now).map(|(&p, _)| p).collect();
        for pid in &due {
            if let Some(a) = st.armed.get_mut(pid) {
                if a.interval.is_zero() {
                    st.armed.remove(pid);
                } else {
                    a.deadline += a.interval;
                }
            }
        }
        let next = st.armed.values().map(|a| a.deadline).min();
        if due.is_empty() {
            let wait = next.map_or(Duration::from_secs(1), |d| d.saturating_duration_since(now));
            drop(k.timers.changed.wait_timeout(st, wait).unwrap_or_else(|e| e.into_inner()));
            continue;
        }
        drop(st);
        for pid in due {
            if let Some(p) = k.process(pid) {
                signal::send_to_process(&p, SigInfo::kernel(libc::SIGALRM));
            }
        }
    }
}
