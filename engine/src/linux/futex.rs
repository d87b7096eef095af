//! Guest futexes: wait queues keyed by the word's host address, so that a waiting vCPU parks
//! (holding no host thread) and a wake-up makes it runnable again.
//!
//! A word's key is its address in the host arena, which is unique per guest address space: the
//! threads of one process share it, two processes never do (as with FUTEX_PRIVATE_FLAG). The
//! queue of a key lives in one of [`BUCKETS`] buckets, each a mutex over its waiters. The classic
//! race (a waiter checks the word, a waker changes it and wakes before the waiter sleeps) cannot
//! lose a wake-up: the waiter compares the word and enqueues itself under the bucket lock, and the
//! waker changes the word before it takes that lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::task::Waker;

use super::{Errno, lock};
use crate::mem::AddressSpace;

const BUCKETS: usize = 256;

/// One parked futex wait.
#[derive(Debug)]
pub(crate) struct Waiter {
    /// The key it waits on; changed by a requeue (under both buckets' locks).
    key: AtomicUsize,
    bitset: u32,
    /// Set by the wake that dequeued it: the wait returns 0.
    woken: AtomicBool,
    waker: Waker,
}

impl Waiter {
    pub fn woken(&self) -> bool {
        self.woken.load(Ordering::Acquire)
    }
}

/// The futex wait queues of one guest machine.
#[derive(Debug)]
pub(crate) struct Futexes {
    buckets: Box<[std::sync::Mutex<Vec<Arc<Waiter>>>]>,
}

impl Default for Futexes {
    fn default() -> Self {
        Futexes { buckets: (0..BUCKETS).map(|_| std::sync::Mutex::new(Vec::new())).collect() }
    }
}

/// The key of the aligned word at guest `addr`, which the caller checked lies in `mem`.
pub(crate) fn key(mem: &AddressSpace, addr: u64) -> usize {
    mem.host_base() as usize + usize::try_from(addr).unwrap_or(usize::MAX)
}

fn bucket_of(key: usize) -> usize {
    // Fibonacci hashing of the word index; the high bits of the product are the well-mixed ones.
    ((key >> 2).wrapping_mul(0x9E37_79B9) >> 16) % BUCKETS
}

/// A count of waiters for the guest (a queue never holds 2^32 of them).
fn n_waiters(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

type Queue<'a> = std::sync::MutexGuard<'a, Vec<Arc<Waiter>>>;

impl Futexes {
    /// FUTEX_WAIT: if the word at guest `addr` still holds `val`, queues a waiter that `waker`
    /// wakes; EAGAIN if it does not.
    pub fn wait(
        &self,
        mem: &AddressSpace,
        addr: u64,
        val: u32,
        bitset: u32,
        waker: &Waker,
    ) -> Result<Arc<Waiter>, Errno> {
        let key = key(mem, addr);
        let mut queue = lock(&self.buckets[bucket_of(key)]);
        if mem.load::<u32>(addr)? != val {
            return Err(Errno::EAGAIN);
        }
        let waiter = Arc::new(Waiter {
            key: AtomicUsize::new(key),
            bitset,
            woken: AtomicBool::new(false),
            waker: waker.clone(),
        });
        queue.push(waiter.clone());
        Ok(waiter)
    }

    /// Takes `waiter` off its queue (a timeout, a signal, the thread's end). Returns whether a
    /// wake-up got it first, in which case the wait succeeded after all.
    pub fn cancel(&self, waiter: &Arc<Waiter>) -> bool {
        loop {
            let key = waiter.key.load(Ordering::Acquire);
            let mut queue = lock(&self.buckets[bucket_of(key)]);
            if waiter.key.load(Ordering::Acquire) != key {
                // Requeued meanwhile: look in its new bucket.
                continue;
            }
            queue.retain(|w| !Arc::ptr_eq(w, waiter));
            return waiter.woken();
        }
    }

    /// FUTEX_WAKE: wakes up to `n` waiters on `key` whose bitset meets `bitset`.
    pub fn wake(&self, key: usize, n: u32, bitset: u32) -> u32 {
        let woken = {
            let mut queue = lock(&self.buckets[bucket_of(key)]);
            take(&mut queue, key, bitset, n)
        };
        let count = n_waiters(woken.len());
        for w in woken {
            w.waker.wake_by_ref();
        }
        count
    }

    /// FUTEX_REQUEUE / FUTEX_CMP_REQUEUE: wakes up to `wake` waiters on `from` and moves up to
    /// `requeue` more to `to`; with `expect`, only if the word at guest `addr` (whose key is
    /// `from`) still holds it. Returns the waiters woken plus those moved.
    pub fn requeue(
        &self,
        mem: &AddressSpace,
        addr: u64,
        to: usize,
        wake: u32,
        requeue: u32,
        expect: Option<u32>,
    ) -> Result<u32, Errno> {
        let from = key(mem, addr);
        let (bf, bt) = (bucket_of(from), bucket_of(to));
        let (woken, moved) = {
            let (mut src, mut dst) = self.lock_pair(bf, bt);
            if let Some(v) = expect
                && mem.load::<u32>(addr)? != v
            {
                return Err(Errno::EAGAIN);
            }
            let woken = take(&mut src, from, u32::MAX, wake);
            let moved = remove(&mut src, from, u32::MAX, requeue);
            for w in &moved {
                w.key.store(to, Ordering::Release);
            }
            let count = n_waiters(moved.len());
            match dst.as_mut() {
                Some(dst) => dst.extend(moved),
                None => src.extend(moved),
            }
            (woken, count)
        };
        let count = n_waiters(woken.len()).saturating_add(moved);
        for w in woken {
            w.waker.wake_by_ref();
        }
        Ok(count)
    }

    /// FUTEX_WAKE_OP: atomically applies `op` to the word at guest `addr2` (key `k2`), wakes up
    /// to `n1` waiters on `k1` and, if the old value of the word passes the op's comparison, up
    /// to `n2` waiters on `k2`.
    pub fn wake_op(&self, mem: &AddressSpace, k1: usize, addr2: u64, n1: u32, n2: u32, op: u32) -> Result<u32, Errno> {
        let k2 = key(mem, addr2);
        let (b1, b2) = (bucket_of(k1), bucket_of(k2));
        let woken = {
            let (mut q1, mut q2) = self.lock_pair(b1, b2);
            let word: &AtomicU32 = mem.atomic(addr2)?;
            let old = apply_op(word, op)?;
            let mut woken = take(&mut q1, k1, u32::MAX, n1);
            if compare(old, op)? {
                let q = q2.as_mut().map_or(&mut *q1, |q| &mut **q);
                woken.extend(take(q, k2, u32::MAX, n2));
            }
            woken
        };
        let count = n_waiters(woken.len());
        for w in woken {
            w.waker.wake_by_ref();
        }
        Ok(count)
    }

    /// Locks two buckets in index order (the second is `None` when they are the same).
    fn lock_pair(&self, a: usize, b: usize) -> (Queue<'_>, Option<Queue<'_>>) {
        if a == b {
            (lock(&self.buckets[a]), None)
        } else if a < b {
            let first = lock(&self.buckets[a]);
            (first, Some(lock(&self.buckets[b])))
        } else {
            let second = lock(&self.buckets[b]);
            (lock(&self.buckets[a]), Some(second))
        }
    }
}

/// Removes up to `n` waiters on `key` whose bitset meets `bitset` from `queue`, oldest first,
/// marking them woken.
fn take(queue: &mut Vec<Arc<Waiter>>, key: usize, bitset: u32, n: u32) -> Vec<Arc<Waiter>> {
    let taken = remove(queue, key, bitset, n);
    for w in &taken {
        w.woken.store(true, Ordering::Release);
    }
    taken
}

/// Removes up to `n` waiters on `key` whose bitset meets `bitset` from `queue`, oldest first.
fn remove(queue: &mut Vec<Arc<Waiter>>, key: usize, bitset: u32, n: u32) -> Vec<Arc<Waiter>> {
    let mut out = Vec::new();
    queue.retain(|w| {
        if out.len() < n as usize && w.key.load(Ordering::Relaxed) == key && w.bitset & bitset != 0 {
            out.push(w.clone());
            false
        } else {
            true
        }
    });
    out
}

/// The operation part of a FUTEX_WAKE_OP argument, applied atomically; returns the old value.
fn apply_op(word: &AtomicU32, op: u32) -> Result<u32, Errno> {
    let kind = (op >> 28) & 7;
    let mut arg = (op >> 12) & 0xfff;
    if op & (8 << 28) != 0 {
        // FUTEX_OP_OPARG_SHIFT: the argument is a shift count.
        if arg > 31 {
            return Err(Errno::EINVAL);
        }
        arg = 1 << arg;
    } else {
        // A 12-bit signed argument.
        arg = ((arg << 20) as i32 >> 20) as u32;
    }
    let f = |v: u32| match kind {
        0 => Some(arg),
        1 => Some(v.wrapping_add(arg)),
        2 => Some(v | arg),
        3 => Some(v & !arg),
        4 => Some(v ^ arg),
        _ => None,
    };
    if f(0).is_none() {
        return Err(Errno::ENOSYS);
    }
    Ok(word.fetch_update(Ordering::SeqCst, Ordering::SeqCst, f).unwrap_or_else(|v| v))
}

/// The comparison part of a FUTEX_WAKE_OP argument.
fn compare(old: u32, op: u32) -> Result<bool, Errno> {
    let cmp = (op >> 24) & 0xf;
    let arg = ((op & 0xfff) << 20) as i32 >> 20;
    let old = old as i32;
    Ok(match cmp {
        0 => old == arg,
        1 => old != arg,
        2 => old < arg,
        3 => old <= arg,
        4 => old > arg,
        5 => old >= arg,
        _ => return Err(Errno::ENOSYS),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;
    use crate::mem::perm;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn space() -> AddressSpace {
        let mem = AddressSpace::with_size(1 << 20).expect("address space");
        mem.map_anon(0x1000, 0x1000, perm::RW, crate::mem::VmaKind::Anon).expect("map");
        mem
    }

    #[test]
    fn wait_compares_and_wake_takes_oldest_first() {
        let mem = space();
        let f = Futexes::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        mem.store::<u32>(0x1000, 7).expect("store");
        assert_eq!(f.wait(&mem, 0x1000, 8, u32::MAX, &waker).err(), Some(Errno::EAGAIN));
        let a = f.wait(&mem, 0x1000, 7, u32::MAX, &waker).expect("queued");
        let b = f.wait(&mem, 0x1000, 7, u32::MAX, &waker).expect("queued");
        assert_eq!(f.wake(key(&mem, 0x1000), 1, u32::MAX), 1);
        assert!(a.woken() && !b.woken());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(!f.cancel(&b), "a cancelled wait was not woken");
        assert_eq!(f.wake(key(&mem, 0x1000), 1, u32::MAX), 0);
    }

    #[test]
    fn bitsets_select_waiters() {
        let mem = space();
        let f = Futexes::default();
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let a = f.wait(&mem, 0x1000, 0, 0b01, &waker).expect("queued");
        let b = f.wait(&mem, 0x1000, 0, 0b10, &waker).expect("queued");
        assert_eq!(f.wake(key(&mem, 0x1000), 10, 0b10), 1);
        assert!(!a.woken() && b.woken());
    }

    #[test]
    fn requeue_moves_waiters_and_cancel_finds_them() {
        let mem = space();
        let f = Futexes::default();
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let ws: Vec<_> = (0..4).map(|_| f.wait(&mem, 0x1000, 0, u32::MAX, &waker).expect("queued")).collect();
        let to = key(&mem, 0x1040);
        assert_eq!(f.requeue(&mem, 0x1000, to, 1, 2, Some(1)).err(), Some(Errno::EAGAIN));
        assert_eq!(f.requeue(&mem, 0x1000, to, 1, 2, Some(0)), Ok(3));
        assert!(ws[0].woken());
        assert!(!f.cancel(&ws[1]), "found on the queue it moved to");
        assert_eq!(f.wake(to, 10, u32::MAX), 1);
        assert_eq!(f.wake(key(&mem, 0x1000), 10, u32::MAX), 1);
        assert!(ws[2].woken() && ws[3].woken());
    }

    #[test]
    fn wake_op_applies_and_compares() {
        let mem = space();
        let f = Futexes::default();
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let a = f.wait(&mem, 0x1000, 0, u32::MAX, &waker).expect("queued");
        let b = f.wait(&mem, 0x1004, 0, u32::MAX, &waker).expect("queued");
        mem.store::<u32>(0x1004, 5).expect("store");
        // FUTEX_OP_ADD 1, wake the second if the old value was > 4.
        let op = (1 << 28) | (1 << 12) | (4 << 24) | 4;
        assert_eq!(f.wake_op(&mem, key(&mem, 0x1000), 0x1004, 1, 1, op), Ok(2));
        assert_eq!(mem.load::<u32>(0x1004), Ok(6));
        assert!(a.woken() && b.woken());
        assert_eq!(f.wake_op(&mem, key(&mem, 0x1000), 0x1004, 1, 1, 7 << 28), Err(Errno::ENOSYS));
    }
}
