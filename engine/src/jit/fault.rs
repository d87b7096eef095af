//! Guest memory faults in compiled code, caught by the host MMU.
//!
//! The host protection of guest memory mirrors the guest's permissions (`mem`), so compiled code
//! accesses guest memory with no check of its own: an access the guest may not make faults in
//! the host. This module turns that host fault back into guest state:
//!
//! ```text
//!  host ──enter()──► trampoline ──► region ──► region ...   (compiled code, cpu kept current)
//!    ▲                                            │ load from a protected guest page
//!    │                                            ▼
//!    │                                 SIGSEGV / SIGBUS handler
//!    │                                   the faulting address is in this thread's guest arena
//!    │                                   → record the host pc, resume where the call returns
//!    └──── EXIT_FAULT ◄── enter() returns as if compiled code had, its frame popped
//! ```
//!
//! `enter` saves the callee-saved registers, its stack pointer and the address its call into
//! compiled code returns to in the thread's [`Frame`]; the handler points the interrupted context
//! at that address with that stack pointer and `EXIT_FAULT` in the return register, so `enter`
//! restores the registers and returns `EXIT_FAULT`, as if compiled code had returned it. `cpu`
//! holds the guest state of each access's restart point (codegen), and each access has a trap
//! site naming that point, so the caller sets `cpu.pc` and `cpu.instret` from the site and lets
//! the interpreter run from there to the access (replaying loop iterations if the site says so):
//! it raises the guest signal exactly as it would have without the JIT, or, if another thread
//! changed the mapping meanwhile, just runs on.
//!
//! A fault is taken as compiled code's only when the thread is inside `enter` and the faulting
//! address lies in the guest arena it runs (with its guards). Any other fault goes to the handler
//! that was installed before (Rust's stack-overflow handler, or the default action), so host bugs
//! still crash loudly.
//!
//! Only x86-64 Linux hosts have this ([`SUPPORTED`]); elsewhere compiled code checks every access
//! against the page table inline, as the interpreter does.

use std::cell::Cell;

use crate::interp::Cpu;

use super::Env;

/// Exit code of `enter` when compiled code faulted on guest memory.
pub const EXIT_FAULT: u32 = 3;

/// Whether this host catches guest faults in compiled code with its MMU.
pub const SUPPORTED: bool = cfg!(all(target_arch = "x86_64", target_os = "linux"));

/// What one thread's current run of compiled code needs for fault recovery.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Frame {
    /// `enter`'s stack pointer once it saved the callee-saved registers (written by `enter`).
    saved_sp: u64,
    /// Where compiled code returns to in `enter` (written by `enter`).
    resume_pc: u64,
    /// Host pc of the faulting access (written by the handler).
    pub fault_pc: u64,
    /// Host address the access faulted on (written by the handler).
    pub fault_addr: u64,
    /// The guest arena with its guard: faults there are the guest's.
    arena_start: u64,
    arena_end: u64,
}

thread_local! {
    /// The frame of the compiled code this thread is running, null outside `enter`. Constant
    /// initialisation and no destructor: the signal handler may read it.
    static CURRENT: Cell<*mut Frame> = const { Cell::new(std::ptr::null_mut()) };
}

/// Runs compiled code through `trampoline` (`extern "C" fn(cpu, env, code) -> u32`), catching
/// guest faults: returns the region's exit code, or [`EXIT_FAULT`] with `frame.fault_pc` and
/// `frame.fault_addr` set.
///
/// # Safety
///
/// As `Trampoline::enter`; in addition [`install`] must have been called, and `env.arena` must
/// be the guest arena the code accesses (`GUEST_SPACE` bytes between its guards).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub unsafe fn enter(trampoline: usize, code: usize, cpu: &mut Cpu, env: &Env, frame: &mut Frame) -> u32 {
    frame.arena_start = env.arena as u64 - crate::mem::GUARD_SIZE;
    frame.arena_end = env.arena as u64 + crate::mem::GUEST_SPACE + crate::mem::GUARD_SIZE;
    let previous = CURRENT.replace(frame);
    // SAFETY: `enter_asm` calls `trampoline` with the C ABI and (cpu, env, code), which is the
    // trampoline's signature; the caller guarantees what the code needs of them. It returns
    // normally, or, after a guest fault, from the same return point on the same stack with the
    // same registers saved.
    let exit = unsafe { enter_asm(cpu, env, code, trampoline, frame) };
    CURRENT.set(previous);
    exit
}

/// Saves the callee-saved registers, records the stack pointer and the address the call returns
/// to in `frame.saved_sp` and `frame.resume_pc` (offsets 0 and 8) and calls
/// `trampoline(cpu, env, code)`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[unsafe(naked)]
unsafe extern "C" fn enter_asm(
    cpu: *mut Cpu,
    env: *const Env,
    code: usize,
    trampoline: usize,
    frame: *mut Frame,
) -> u32 {
    // The pushes and the `sub` leave the stack 16-byte aligned at the call, as the ABI asks.
    std::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "sub rsp, 8",
        "mov [r8], rsp",
        "lea rax, [rip + 2f]",
        "mov [r8 + 8], rax",
        "call rcx",
        // Compiled code returns here, and so does a fault, with eax = EXIT_FAULT.
        "2:",
        "add rsp, 8",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
    )
}

/// The handlers that were installed before ours, for faults that are not compiled code's.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
static PREVIOUS: [std::sync::OnceLock<libc::sigaction>; 2] = [std::sync::OnceLock::new(), std::sync::OnceLock::new()];

/// Installs the SIGSEGV and SIGBUS handlers, once per process.
///
/// # Errors
///
/// The host refused `sigaction`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub fn install() -> std::io::Result<()> {
    static DONE: std::sync::OnceLock<Result<(), i32>> = std::sync::OnceLock::new();
    let result = DONE.get_or_init(|| {
        for (i, sig) in [libc::SIGSEGV, libc::SIGBUS].into_iter().enumerate() {
            // SAFETY: a zeroed sigaction is a valid value to fill in; the handler has the
            // SA_SIGINFO signature and is async-signal-safe (it reads a thread-local cell and the
            // previous actions, and writes the interrupted context).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &action, &mut old) != 0 {
                    return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
                }
                let _ = PREVIOUS[i].set(old);
            }
        }
        Ok(())
    });
    result.map_err(std::io::Error::from_raw_os_error)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let frame = CURRENT.get();
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler; `frame`,
    // when not null, is the live frame of an `enter` on this thread's stack.
    unsafe {
        let addr = (*info).si_addr() as u64;
        if !frame.is_null() && ((*frame).arena_start..(*frame).arena_end).contains(&addr) {
            let uc = ctx.cast::<libc::ucontext_t>();
            let gregs = &mut (*uc).uc_mcontext.gregs;
            (*frame).fault_pc = gregs[libc::REG_RIP as usize] as u64;
            (*frame).fault_addr = addr;
            gregs[libc::REG_RSP as usize] = (*frame).saved_sp as i64;
            gregs[libc::REG_RIP as usize] = (*frame).resume_pc as i64;
            gregs[libc::REG_RAX as usize] = i64::from(EXIT_FAULT);
            return;
        }
        chain(sig, info, ctx);
    }
}

/// Hands a fault that is not compiled code's to the handler installed before ours; where that
/// was the default action, restores it, so that returning re-runs the access and the process
/// dies of the signal as it would have.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let i = usize::from(sig != libc::SIGSEGV);
    let Some(old) = PREVIOUS[i].get() else { return };
    let h = old.sa_sigaction;
    // SAFETY: `old` is the action the kernel reported for this signal: a handler with the
    // signature its flags say, or SIG_DFL / SIG_IGN, which are restored as they were.
    unsafe {
        if h == libc::SIG_DFL || h == libc::SIG_IGN {
            libc::sigaction(sig, old, std::ptr::null_mut());
        } else if old.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
            f(sig);
        }
    }
}

/// Hosts without MMU fault recovery compile checked code only.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub fn install() -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Without MMU fault recovery, code is checked and never faults: call the trampoline directly.
///
/// # Safety
///
/// As `Trampoline::enter`.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub unsafe fn enter(trampoline: usize, code: usize, cpu: &mut Cpu, env: &Env, _frame: &mut Frame) -> u32 {
    // SAFETY: the caller passes the trampoline's address, whose signature this is.
    let f: extern "C" fn(*mut Cpu, *const Env, usize) -> u32 = unsafe { std::mem::transmute(trampoline) };
    f(cpu, env, code)
}
