//! Processes and threads: start, clone (threads, fork, vfork), execve, exit, wait and futex.
//!
//! Process life cycle:
//!
//! ```text
//! spawn_initial / clone ──> running ──(last thread exits)──> zombie ──(wait4 by parent)──> reaped
//!                              │                               │
//!                              └── execve: new address space   └── no parent, or the parent
//!                                  on the same threads             ignores SIGCHLD: reaped at once
//! ```
//!
//! A process that exits closes its descriptors at once (so pipe readers see end-of-file), tells its
//! parent with SIGCHLD and wakes anyone waiting on it (wait4, a vfork parent, the top-level caller).
#![expect(
    clippy::cast_possible_truncation,
    reason = "system call arguments are narrowed to their C parameter types as the Linux ABI does, and host sizes are 64-bit"
)]

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use super::fd::{FdTable, OpenFile};
use super::fs::FsContext;
use super::signal::{self, SigAction, SigInfo, code};
use super::syscall::{After, Sys, SysResult};
use super::{Errno, ExecImage, ExitStatus, Kernel, ProcState, Process, StartError, ThreadShared, lock};
use crate::interp::Cpu;
use crate::loader::{self, Image, LoaderError};
use crate::mem::{AddressSpace, PAGE_SIZE, SIGRETURN_PAGE, VmaKind, perm};

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x1_0000;
const CLONE_SETTLS: u64 = 0x8_0000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;
const CLONE_NAMESPACES: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000;
const WNOHANG: u64 = 1;
const WNOWAIT: u64 = 0x0100_0000;
const WEXITED: u64 = 4;

/// Most nested `#!` interpreters execve follows (Linux's BINPRM_MAX_RECURSION).
const MAX_SCRIPT_DEPTH: usize = 4;
/// Longest argument or environment string, and most of them.
const MAX_ARG_STRLEN: usize = 128 * 1024;
const MAX_ARGS: usize = 64 * 1024;

/// Why execve (or the first start) failed.
#[derive(Debug)]
enum ExecError {
    Errno(Errno),
    Load(LoaderError),
}

impl From<Errno> for ExecError {
    fn from(e: Errno) -> Self {
        ExecError::Errno(e)
    }
}

impl ExecError {
    fn errno(&self) -> Errno {
        match self {
            ExecError::Errno(e) => *e,
            ExecError::Load(l) => Errno(l.errno()),
        }
    }
}

/// A loaded program ready to run.
struct Program {
    mm: Arc<AddressSpace>,
    entry: u64,
    sp: u64,
    image: Arc<ExecImage>,
}

/// Creates a fresh address space with the signal trampoline page.
fn new_address_space(kernel: &Kernel) -> Result<AddressSpace, Errno> {
    let mm = AddressSpace::with_policy(kernel.memory.clone()).map_err(|_| Errno::ENOMEM)?;
    mm.map_anon(SIGRETURN_PAGE, PAGE_SIZE, perm::RW, VmaKind::Vdso).map_err(|_| Errno::ENOMEM)?;
    let code: Vec<u8> = signal::TRAMPOLINE.iter().flat_map(|w| w.to_le_bytes()).collect();
    mm.write_bytes(SIGRETURN_PAGE, &code).map_err(|_| Errno::ENOMEM)?;
    mm.protect(SIGRETURN_PAGE, PAGE_SIZE, perm::R | perm::X).map_err(|_| Errno::ENOMEM)?;
    Ok(mm)
}

/// Loads a program for execve (`depth` counts `#!` indirections; 0 is the file execve named).
/// The first program of a machine (`first`) need not be executable, as with qemu.
#[expect(clippy::too_many_arguments, reason = "the execve inputs travel together through #! recursion")]
fn load_program(
    kernel: &Kernel,
    file: std::fs::File,
    cwd: i32,
    path: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    depth: usize,
    first: bool,
) -> Result<Program, ExecError> {
    // SAFETY: zeroed stat is valid; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a descriptor we own.
    if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Errno::EACCES.into());
    }
    // SAFETY: faccessat2 with AT_EMPTY_PATH checks execute permission of the open file itself.
    let x =
        unsafe { libc::syscall(libc::SYS_faccessat2, file.as_raw_fd(), c"".as_ptr(), libc::X_OK, libc::AT_EMPTY_PATH) };
    if x != 0 && !first {
        return Err(Errno::EACCES.into());
    }
    if let Some((interp, arg)) = loader::script_interpreter(&file) {
        if depth >= MAX_SCRIPT_DEPTH {
            return Err(Errno::ELOOP.into());
        }
        let mut new_argv = vec![interp.clone()];
        new_argv.extend(arg);
        new_argv.push(path.to_vec());
        new_argv.extend(argv.iter().skip(1).cloned());
        let ifile = kernel.roots.open_exec(cwd, &interp)?;
        return load_program(kernel, ifile, cwd, &interp, &new_argv, envp, depth + 1, false);
    }
    let mm = new_address_space(kernel)?;
    // SAFETY: getuid/getgid cannot fail.
    let ids = unsafe { (libc::getuid(), libc::getgid()) };
    let exe = kernel.roots.name_of(file.as_raw_fd());
    let image = Image { file: &file, argv, envp, execfn: path, name: &exe, ids };
    let open_interp = |p: &[u8]| {
        let f = kernel.roots.open_exec(cwd, p).map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
        let name = kernel.roots.name_of(f.as_raw_fd());
        Ok((f, name))
    };
    let loaded = loader::load(&mm, &image, &open_interp).map_err(ExecError::Load)?;
    let image = ExecImage { exe, argv: argv.to_vec(), envp: envp.to_vec(), auxv: loaded.auxv };
    Ok(Program { mm: Arc::new(mm), entry: loaded.entry, sp: loaded.sp, image: Arc::new(image) })
}

/// The first process's descriptors 0, 1 and 2: the host's, or `/dev/null`.
fn stdio_table(stdio: &super::Stdio) -> FdTable {
    let mut t = FdTable::default();
    for fd in 0..3 {
        let file = match stdio {
            super::Stdio::Null => std::fs::OpenOptions::new()
                .read(fd == 0)
                .write(fd != 0)
                .open("/dev/null")
                .map(std::os::fd::OwnedFd::from),
            super::Stdio::Inherit => super::fs::dup_fd(fd).map_err(|e| std::io::Error::from_raw_os_error(e.0)),
            super::Stdio::Files(files) => files[fd as usize].try_clone(),
        };
        if let Ok(file) = file {
            let _ = t.set(fd, OpenFile::new(file), false, u64::MAX);
        }
    }
    t
}

/// Starts the first guest process from a host path (sysroot-prefixed when it exists there).
pub(super) fn spawn_initial(
    kernel: &Arc<Kernel>,
    program: &str,
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
) -> Result<Arc<Process>, StartError> {
    let cwd = kernel.roots.initial_cwd()?;
    let path = program.as_bytes();
    let file = if kernel.roots.confined() {
        kernel.roots.open_exec(cwd.as_raw_fd(), path).map(Ok)
    } else {
        let sys = kernel.config.sysroot.as_ref().filter(|_| path.first() == Some(&b'/')).map(|s| {
            let mut p = s.clone().into_os_string();
            p.push(program);
            std::path::PathBuf::from(p)
        });
        let host = sys.filter(|p| p.exists()).unwrap_or_else(|| program.into());
        Ok(std::fs::File::open(host))
    };
    let open_err = |source: std::io::Error| StartError::Open { path: program.to_string(), source };
    let file = match file {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return Err(open_err(e)),
        Err(e) => return Err(open_err(std::io::Error::from_raw_os_error(e.0))),
    };
    let prog = load_program(kernel, file, cwd.as_raw_fd(), path, &argv, &envp, 0, true).map_err(|e| match e {
        ExecError::Load(source) => StartError::Load { path: program.to_string(), source },
        ExecError::Errno(e) => open_err(std::io::Error::from_raw_os_error(e.0)),
    })?;
    let pid = kernel.alloc_pid();
    let thread = ThreadShared::new(pid, 0);
    let proc = Arc::new(Process {
        pid,
        parent: Mutex::new(Weak::new()),
        pgid: pid.into(),
        sid: pid.into(),
        mm: RwLock::new(prog.mm),
        files: Mutex::new(stdio_table(&kernel.config.stdio)),
        actions: Mutex::new([SigAction::default(); signal::NSIG]),
        fs: Mutex::new(FsContext { cwd, umask: 0o022 }),
        state: Mutex::new(ProcState { threads: vec![thread.clone()], ..ProcState::default() }),
        child_event: super::wait::Event::default(),
        shared_pending: Mutex::new(signal::SigQueue::default()),
        image: Mutex::new(prog.image),
        comm: Mutex::new(comm_of(path)),
        rlimits: Mutex::new(super::misc::Rlimits::under(kernel.memory_limit())),
        exit_signal: libc::SIGCHLD,
    });
    lock(&kernel.procs).insert(pid, proc.clone());
    let mut cpu = Cpu { pc: prog.entry, ..Cpu::default() };
    cpu.x[2] = prog.sp;
    kernel.spawn_vcpu(proc.clone(), thread, cpu).map_err(open_err)?;
    Ok(proc)
}

fn comm_of(path: &[u8]) -> [u8; 16] {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let mut c = [0u8; 16];
    let n = base.len().min(15);
    c[..n].copy_from_slice(&base[..n]);
    c
}

/// Marks a process as dying with `status` and stops all its threads.
pub(crate) fn kill_process(proc: &Process, status: ExitStatus) {
    let st = &mut *lock(&proc.state);
    if st.exiting.is_none() {
        st.exiting = Some(status);
    }
    for t in &st.threads {
        t.killed.store(true, Ordering::Release);
        t.kick();
    }
}

/// Called by a thread's host thread when it stops running guest code.
pub(crate) fn thread_exited(
    kernel: &Kernel,
    proc: &Arc<Process>,
    thread: &Arc<ThreadShared>,
    mem: &AddressSpace,
    code: u8,
) {
    let ctid = thread.clear_child_tid.load(Ordering::Relaxed);
    if ctid != 0 && mem.store::<u32>(ctid, 0).is_ok() && ctid.is_multiple_of(4) {
        kernel.futexes.wake(super::futex::key(mem, ctid), 1, u32::MAX);
    }
    let status = {
        let mut st = lock(&proc.state);
        st.threads.retain(|t| !Arc::ptr_eq(t, thread));
        if !st.threads.is_empty() {
            drop(st);
            proc.child_event.notify_all();
            return;
        }
        st.exiting.unwrap_or(ExitStatus::Exited(code))
    };
    process_exited(kernel, proc, status);
}

fn process_exited(kernel: &Kernel, proc: &Arc<Process>, status: ExitStatus) {
    kernel.timers.forget(proc.pid);
    let files = lock(&proc.files).take_all();
    drop(files);
    let children = {
        let mut st = lock(&proc.state);
        st.exit = Some(status);
        st.vfork_released = true;
        std::mem::take(&mut st.children)
    };
    proc.child_event.notify_all();
    if proc.pid == super::FIRST_PID {
        let on_exit = lock(&kernel.on_exit).take();
        if let Some(on_exit) = on_exit {
            (on_exit.0)(status);
        }
    }
    // Orphans are reaped by nobody: drop the zombies now, let the live ones reap themselves.
    for c in children {
        *lock(&c.parent) = Weak::new();
        if lock(&c.state).exit.is_some() {
            lock(&kernel.procs).remove(&c.pid);
        }
    }
    let parent = lock(&proc.parent).upgrade();
    let Some(parent) = parent else {
        lock(&kernel.procs).remove(&proc.pid);
        return;
    };
    let act = lock(&parent.actions)[libc::SIGCHLD as usize];
    if proc.exit_signal == libc::SIGCHLD && (act.handler == signal::SIG_IGN || act.flags & signal::SA_NOCLDWAIT != 0) {
        lock(&parent.state).children.retain(|c| !Arc::ptr_eq(c, proc));
        lock(&kernel.procs).remove(&proc.pid);
    } else if proc.exit_signal > 0 && proc.exit_signal < signal::NSIG as i32 {
        let (code, st) = match status {
            ExitStatus::Exited(c) => (code::CLD_EXITED, i32::from(c)),
            ExitStatus::Signaled { signal, core } => {
                (if core { code::CLD_DUMPED } else { code::CLD_KILLED }, i32::from(signal))
            }
        };
        let mut info = SigInfo::user(proc.exit_signal, code, proc.pid);
        info.status = st;
        signal::send_to_process(&parent, info);
    }
    let _guard = lock(&parent.state);
    parent.child_event.notify_all();
}

fn read_strings(mem: &AddressSpace, mut addr: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    loop {
        let p = mem.load::<u64>(addr)?;
        if p == 0 {
            return Ok(out);
        }
        if out.len() >= MAX_ARGS {
            return Err(Errno::E2BIG);
        }
        let s = mem.read_cstr(p, MAX_ARG_STRLEN + 1)?;
        if s.len() > MAX_ARG_STRLEN {
            return Err(Errno::E2BIG);
        }
        out.push(s);
        addr += 8;
    }
}

impl Sys<'_> {
    pub(crate) fn ppid(&self) -> i32 {
        lock(&self.proc.parent).upgrade().map_or(1, |p| p.pid)
    }

    pub fn sys_exit(&mut self, _a: &[u64; 6]) -> After {
        After::ExitThread
    }

    pub fn sys_exit_group(&mut self, a: &[u64; 6]) -> After {
        kill_process(self.proc, ExitStatus::Exited(a[0] as u8));
        After::ExitThread
    }

    pub fn sys_set_tid_address(&mut self, a: &[u64; 6]) -> SysResult {
        self.thread.clear_child_tid.store(a[0], Ordering::Relaxed);
        Ok(self.thread.tid as u64)
    }

    pub fn sys_set_robust_list(&mut self, a: &[u64; 6]) -> SysResult {
        if a[1] != 24 {
            return Err(Errno::EINVAL);
        }
        self.thread.robust_list.store(a[0], Ordering::Relaxed);
        Ok(0)
    }

    pub fn sys_get_robust_list(&mut self, a: &[u64; 6]) -> SysResult {
        if a[0] != 0 && a[0] as i32 != self.thread.tid {
            return Err(Errno::ESRCH);
        }
        self.mem.store::<u64>(a[1], self.thread.robust_list.load(Ordering::Relaxed))?;
        self.mem.store::<u64>(a[2], 24)?;
        Ok(0)
    }

    pub fn sys_clone(&mut self, a: &[u64; 6]) -> SysResult {
        // riscv64 argument order: flags, newsp, parent_tid, tls, child_tid.
        self.do_clone(a[0], a[1], a[2], a[3], a[4])
    }

    pub fn sys_clone3(&mut self, a: &[u64; 6]) -> SysResult {
        let size = a[1];
        if !(64..=4096).contains(&size) {
            return Err(Errno::EINVAL);
        }
        let f = |i: u64| self.mem.load::<u64>(a[0] + 8 * i);
        let (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) =
            (f(0)?, f(1)?, f(2)?, f(3)?, f(4)?, f(5)?, f(6)?, f(7)?);
        if flags & CLONE_PIDFD != 0 || pidfd != 0 || exit_signal > 64 || flags & 0xff != 0 {
            return Err(Errno::EINVAL);
        }
        let sp = if stack != 0 { stack.wrapping_add(stack_size) } else { 0 };
        self.do_clone(flags | exit_signal, sp, parent_tid, tls, child_tid)
    }

    fn do_clone(&mut self, flags: u64, newsp: u64, ptid: u64, tls: u64, ctid: u64) -> SysResult {
        if flags & CLONE_NAMESPACES != 0 {
            return Err(Errno::EPERM);
        }
        if (flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0)
            || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0)
        {
            return Err(Errno::EINVAL);
        }
        let tid = self.kernel.alloc_pid();
        let mut cpu = self.cpu.clone();
        cpu.pc += 4;
        cpu.x[10] = 0;
        cpu.reservation = None;
        if newsp != 0 {
            cpu.x[2] = newsp;
        }
        if flags & CLONE_SETTLS != 0 {
            cpu.x[4] = tls;
        }
        let thread = ThreadShared::new(tid, self.thread.blocked.load(Ordering::Relaxed));
        *lock(&thread.altstack) = *lock(&self.thread.altstack);
        if flags & CLONE_CHILD_CLEARTID != 0 {
            thread.clear_child_tid.store(ctid, Ordering::Relaxed);
        }
        if flags & CLONE_PARENT_SETTID != 0 {
            self.mem.store::<u32>(ptid, tid as u32)?;
        }
        if flags & CLONE_THREAD != 0 {
            if flags & CLONE_CHILD_SETTID != 0 {
                self.mem.store::<u32>(ctid, tid as u32)?;
            }
            {
                let mut st = lock(&self.proc.state);
                if st.exiting.is_some() {
                    return Err(Errno::EAGAIN);
                }
                st.threads.push(thread.clone());
            }
            if self.kernel.spawn_vcpu(self.proc.clone(), thread.clone(), cpu).is_err() {
                lock(&self.proc.state).threads.retain(|t| !Arc::ptr_eq(t, &thread));
                return Err(Errno::EAGAIN);
            }
            return Ok(tid as u64);
        }

        // A new process.
        let _ = (CLONE_FS, CLONE_FILES);
        let mm = if flags & CLONE_VM != 0 {
            self.mem.clone()
        } else {
            Arc::new(self.mem.duplicate().map_err(|_| Errno::ENOMEM)?)
        };
        if flags & CLONE_CHILD_SETTID != 0 {
            mm.store::<u32>(ctid, tid as u32)?;
        }
        let parent =
            if flags & CLONE_PARENT != 0 { lock(&self.proc.parent).clone() } else { Arc::downgrade(self.proc) };
        let child = Arc::new(Process {
            pid: tid,
            parent: Mutex::new(parent.clone()),
            pgid: self.proc.pgid.load(Ordering::Relaxed).into(),
            sid: self.proc.sid.load(Ordering::Relaxed).into(),
            mm: RwLock::new(mm),
            files: Mutex::new(lock(&self.proc.files).clone()),
            actions: Mutex::new(*lock(&self.proc.actions)),
            fs: Mutex::new(lock(&self.proc.fs).fork()?),
            state: Mutex::new(ProcState { threads: vec![thread.clone()], ..ProcState::default() }),
            child_event: super::wait::Event::default(),
            shared_pending: Mutex::new(signal::SigQueue::default()),
            image: Mutex::new(lock(&self.proc.image).clone()),
            comm: Mutex::new(*lock(&self.proc.comm)),
            rlimits: Mutex::new(*lock(&self.proc.rlimits)),
            exit_signal: (flags & 0xff) as i32,
        });
        lock(&self.kernel.procs).insert(tid, child.clone());
        if let Some(p) = parent.upgrade() {
            lock(&p.state).children.push(child.clone());
        }
        if self.kernel.spawn_vcpu(child.clone(), thread, cpu).is_err() {
            lock(&self.kernel.procs).remove(&tid);
            if let Some(p) = parent.upgrade() {
                lock(&p.state).children.retain(|c| !Arc::ptr_eq(c, &child));
            }
            return Err(Errno::EAGAIN);
        }
        if flags & CLONE_VFORK != 0 {
            // The vCPU parks after the call until the child execs or exits.
            self.wait.vfork = Some(child);
        }
        Ok(tid as u64)
    }

    pub fn sys_execve(&mut self, a: &[u64; 6]) -> After {
        match self.exec(a) {
            Ok(()) => After::Resume,
            Err(e) => After::Return(Err(e.errno())),
        }
    }

    /// execve's point of no return: the process's other threads are told to go and the caller
    /// parks until they have (the call then runs again, this time with no one to wait for).
    fn other_threads_gone(&mut self) -> Result<(), Errno> {
        let st = lock(&self.proc.state);
        if st.threads.len() <= 1 {
            return Ok(());
        }
        for t in st.threads.iter().filter(|t| !Arc::ptr_eq(t, self.thread)) {
            t.killed.store(true, Ordering::Release);
            t.kick();
        }
        self.proc.child_event.register(self.waker);
        drop(st);
        if self.thread.killed.load(Ordering::Acquire) {
            // Another thread's execve or exit_group won.
            return Err(Errno::ERESTARTSYS);
        }
        self.thread.set_waker(self.waker);
        Err(Errno::PARKED)
    }

    fn exec(&mut self, a: &[u64; 6]) -> Result<(), ExecError> {
        let path = self.path_arg(a[0])?;
        let argv = read_strings(&self.mem, a[1])?;
        let envp = read_strings(&self.mem, a[2])?;
        let cwd = lock(&self.proc.fs).cwd.as_raw_fd();
        let file = match self.proc_open(libc::AT_FDCWD as u64, &path, libc::O_RDONLY)? {
            Some(f) => std::fs::File::from(super::fs::dup_fd(f.raw())?),
            None => self.kernel.roots.open_exec(cwd, &path)?,
        };
        let prog = load_program(self.kernel, file, cwd, &path, &argv, &envp, 0, false)?;

        // Past the point of no return: other threads go, the new image comes.
        self.other_threads_gone()?;
        *self.proc.mm.write().unwrap_or_else(|e| e.into_inner()) = prog.mm.clone();
        self.mem = prog.mm;
        *lock(&self.proc.image) = prog.image;
        *lock(&self.proc.comm) = comm_of(&path);
        for act in lock(&self.proc.actions).iter_mut() {
            if act.handler != signal::SIG_IGN {
                *act = SigAction::default();
            } else {
                act.flags = 0;
                act.mask = 0;
            }
        }
        let closed = lock(&self.proc.files).close_on_exec();
        drop(closed);
        *lock(&self.thread.altstack) = signal::AltStack::default();
        self.thread.robust_list.store(0, Ordering::Relaxed);
        self.kernel.account(self.cpu.instret, None);
        *self.cpu = Cpu::default();
        self.cpu.pc = prog.entry;
        self.cpu.x[2] = prog.sp;
        let mut st = lock(&self.proc.state);
        st.vfork_released = true;
        drop(st);
        self.proc.child_event.notify_all();
        Ok(())
    }

    /// Children of this process that `pid` (wait4 convention) selects.
    fn wait_matches(&self, pid: i32, child: &Process) -> bool {
        match pid {
            -1 => true,
            0 => child.pgid.load(Ordering::Relaxed) == self.proc.pgid.load(Ordering::Relaxed),
            p if p > 0 => child.pid == p,
            g => child.pgid.load(Ordering::Relaxed) == -g,
        }
    }

    /// Waits for a matching child to become a zombie; returns it (reaped unless `nowait`).
    fn wait_child(&mut self, pid: i32, options: u64, nowait: bool) -> Result<Option<(i32, ExitStatus)>, Errno> {
        let mut st = lock(&self.proc.state);
        let matching: Vec<Arc<Process>> = st.children.iter().filter(|c| self.wait_matches(pid, c)).cloned().collect();
        if matching.is_empty() {
            return Err(Errno::ECHILD);
        }
        if let Some((c, status)) = matching.iter().find_map(|c| lock(&c.state).exit.map(|s| (c.clone(), s))) {
            if !nowait {
                st.children.retain(|x| !Arc::ptr_eq(x, &c));
                drop(st);
                lock(&self.kernel.procs).remove(&c.pid);
            }
            return Ok(Some((c.pid, status)));
        }
        if options & WNOHANG != 0 {
            return Ok(None);
        }
        // A child's exit notifies under this lock's protection: registered before it, so woken.
        self.proc.child_event.register(self.waker);
        drop(st);
        Err(self.park(Vec::new(), None, Errno::ERESTARTSYS))
    }

    pub fn sys_wait4(&mut self, a: &[u64; 6]) -> SysResult {
        let options = a[2];
        if options & !(WNOHANG | 2 | 8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000) != 0 {
            return Err(Errno::EINVAL);
        }
        match self.wait_child(a[0] as i32, options, false)? {
            Some((pid, status)) => {
                if a[1] != 0 {
                    self.mem.store::<u32>(a[1], status.wait_status() as u32)?;
                }
                if a[3] != 0 {
                    self.mem.write_bytes(a[3], &[0u8; 144])?;
                }
                Ok(pid as u64)
            }
            None => Ok(0),
        }
    }

    pub fn sys_waitid(&mut self, a: &[u64; 6]) -> SysResult {
        let (idtype, id, infop, options) = (a[0], a[1] as i32, a[2], a[3]);
        if options & WEXITED == 0 {
            return Err(Errno::EINVAL);
        }
        let pid = match idtype {
            0 => -1,
            1 if id > 0 => id,
            2 if id > 0 => -id,
            2 if id == 0 => 0,
            _ => return Err(Errno::EINVAL),
        };
        let r = self.wait_child(pid, options, options & WNOWAIT != 0)?;
        if infop != 0 {
            let mut info = [0u8; 128];
            if let Some((pid, status)) = r {
                let (code, st) = match status {
                    ExitStatus::Exited(c) => (code::CLD_EXITED, i32::from(c)),
                    ExitStatus::Signaled { signal, core } => {
                        (if core { code::CLD_DUMPED } else { code::CLD_KILLED }, i32::from(signal))
                    }
                };
                info[0..4].copy_from_slice(&libc::SIGCHLD.to_le_bytes());
                info[8..12].copy_from_slice(&code.to_le_bytes());
                info[16..20].copy_from_slice(&pid.to_le_bytes());
                info[20..24].copy_from_slice(&super::syscall::host_uid().to_le_bytes());
                info[24..28].copy_from_slice(&st.to_le_bytes());
            }
            self.mem.write_bytes(infop, &info)?;
        }
        Ok(0)
    }

    pub fn sys_futex(&mut self, a: &[u64; 6]) -> SysResult {
        const WAIT: u64 = 0;
        const WAKE: u64 = 1;
        const REQUEUE: u64 = 3;
        const CMP_REQUEUE: u64 = 4;
        const WAKE_OP: u64 = 5;
        const WAIT_BITSET: u64 = 9;
        const WAKE_BITSET: u64 = 10;
        const CLOCK_REALTIME: u64 = 256;
        let (uaddr, op, val) = (a[0], a[1], a[2] as u32);
        let cmd = op & 0x7f;
        if !uaddr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        self.mem.check(uaddr, 4, perm::R, crate::mem::Access::Read)?;
        let futexes = &self.kernel.futexes;
        match cmd {
            WAIT | WAIT_BITSET => {
                let bitset = if cmd == WAIT_BITSET { a[5] as u32 } else { u32::MAX };
                if bitset == 0 {
                    return Err(Errno::EINVAL);
                }
                let timeout = if a[3] == 0 {
                    None
                } else {
                    let t = self.timespec(a[3])?;
                    if cmd == WAIT {
                        Some(t)
                    } else {
                        // FUTEX_WAIT_BITSET takes an absolute time on its clock.
                        let clock = if op & CLOCK_REALTIME != 0 { libc::CLOCK_REALTIME } else { libc::CLOCK_MONOTONIC };
                        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
                        // SAFETY: clock_gettime writes one timespec.
                        unsafe { libc::clock_gettime(clock, &mut now) };
                        Some(t.saturating_sub(Duration::new(now.tv_sec as u64, now.tv_nsec as u32)))
                    }
                };
                let deadline = self.deadline(timeout);
                // Linux restarts an untimed futex wait after a handler (SA_RESTART) but not a
                // timed one.
                let interrupted = if deadline.is_some() { Errno::ERESTARTNOHAND } else { Errno::ERESTARTSYS };
                if let Some(waiter) = self.wait.futex.take() {
                    // Woken, timed out, interrupted, or a spurious wake-up to wait on.
                    if waiter.woken() {
                        return Ok(0);
                    }
                    let stop = Self::timed_out(deadline)
                        || (self.thread.attention.load(Ordering::Acquire) != 0
                            && super::thread::must_stop(self.proc, self.thread));
                    if stop {
                        if futexes.cancel(&waiter) {
                            return Ok(0);
                        }
                        return Err(if Self::timed_out(deadline) { Errno::ETIMEDOUT } else { interrupted });
                    }
                    self.wait.futex = Some(waiter);
                    return Err(self.park(Vec::new(), deadline, interrupted));
                }
                if Self::timed_out(deadline) {
                    return Err(Errno::ETIMEDOUT);
                }
                let waiter = futexes.wait(&self.mem, uaddr, val, bitset, self.waker)?;
                self.wait.futex = Some(waiter);
                match self.park(Vec::new(), deadline, interrupted) {
                    Errno::PARKED => Err(Errno::PARKED),
                    // Interrupted before it slept: off the queue again, unless a wake-up came.
                    e => match self.wait.futex.take() {
                        Some(w) if futexes.cancel(&w) => Ok(0),
                        _ => Err(e),
                    },
                }
            }
            WAKE | WAKE_BITSET => {
                let bitset = if cmd == WAKE_BITSET { a[5] as u32 } else { u32::MAX };
                if bitset == 0 {
                    return Err(Errno::EINVAL);
                }
                Ok(u64::from(futexes.wake(super::futex::key(&self.mem, uaddr), val, bitset)))
            }
            REQUEUE | CMP_REQUEUE => {
                let uaddr2 = a[4];
                if !uaddr2.is_multiple_of(4) {
                    return Err(Errno::EINVAL);
                }
                self.mem.check(uaddr2, 4, perm::R, crate::mem::Access::Read)?;
                let to = super::futex::key(&self.mem, uaddr2);
                // val2 (how many to requeue) travels in the timeout slot, as the futex ABI defines.
                let requeue = a[3] as u32;
                let expect = (cmd == CMP_REQUEUE).then_some(a[5] as u32);
                futexes.requeue(&self.mem, uaddr, to, val, requeue, expect).map(u64::from)
            }
            WAKE_OP => {
                let uaddr2 = a[4];
                if !uaddr2.is_multiple_of(4) {
                    return Err(Errno::EINVAL);
                }
                let k1 = super::futex::key(&self.mem, uaddr);
                futexes.wake_op(&self.mem, k1, uaddr2, val, a[3] as u32, a[5] as u32).map(u64::from)
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    pub fn sys_setpgid(&mut self, a: &[u64; 6]) -> SysResult {
        let pid = if a[0] == 0 { self.proc.pid } else { a[0] as i32 };
        let pgid = if a[1] == 0 { pid } else { a[1] as i32 };
        if pgid < 0 {
            return Err(Errno::EINVAL);
        }
        let target = self.kernel.process(pid).ok_or(Errno::ESRCH)?;
        target.pgid.store(pgid, Ordering::Relaxed);
        Ok(0)
    }

    pub fn sys_getpgid(&mut self, a: &[u64; 6]) -> SysResult {
        let pid = if a[0] == 0 { self.proc.pid } else { a[0] as i32 };
        let target = self.kernel.process(pid).ok_or(Errno::ESRCH)?;
        Ok(target.pgid.load(Ordering::Relaxed) as u64)
    }

    pub fn sys_getsid(&mut self, a: &[u64; 6]) -> SysResult {
        let pid = if a[0] == 0 { self.proc.pid } else { a[0] as i32 };
        let target = self.kernel.process(pid).ok_or(Errno::ESRCH)?;
        Ok(target.sid.load(Ordering::Relaxed) as u64)
    }

    pub fn sys_setsid(&mut self) -> SysResult {
        if self.proc.pgid.load(Ordering::Relaxed) == self.proc.pid {
            return Err(Errno::EPERM);
        }
        self.proc.pgid.store(self.proc.pid, Ordering::Relaxed);
        self.proc.sid.store(self.proc.pid, Ordering::Relaxed);
        Ok(self.proc.pid as u64)
    }
}
