//! Linux error numbers as system calls return them to the guest.

/// A Linux errno value (positive); a system call returns its negation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Errno = Errno(libc::$name);
            )*

            /// The symbolic name, for `--strace`.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $(libc::$name => stringify!($name),)*
                    _ => "E?",
                }
            }
        }
    };
}

errnos!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    ENOEXEC,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EMLINK,
    EPIPE,
    ERANGE,
    EDEADLK,
    ENAMETOOLONG,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENODATA,
    ETIMEDOUT,
    EOPNOTSUPP,
    ENOTSOCK,
    EAFNOSUPPORT,
    ECONNREFUSED,
    ENOTCONN,
    EMSGSIZE,
    ENOBUFS,
    EINPROGRESS,
    EALREADY,
    EISCONN,
    ENOPROTOOPT,
);

impl Errno {
    /// Internal: the call was interrupted and restarts if the handler has SA_RESTART
    /// (Linux's ERESTARTSYS); never seen by the guest.
    pub const ERESTARTSYS: Errno = Errno(512);

    /// Internal: the call was interrupted and restarts only if no handler runs (poll, sleeps,
    /// sigsuspend); after a handler the guest sees EINTR (Linux's ERESTARTNOHAND).
    pub const ERESTARTNOHAND: Errno = Errno(514);

    /// Internal: the calling vCPU must park and run the call again when woken (see
    /// `linux/wait.rs`); never seen by the guest.
    pub const PARKED: Errno = Errno(4096);

    /// The errno of a host I/O error.
    pub fn from_io(e: &std::io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }

    /// The errno left by the last failed host call.
    pub fn last() -> Errno {
        Errno::from_io(&std::io::Error::last_os_error())
    }
}

impl From<crate::mem::Fault> for Errno {
    fn from(_: crate::mem::Fault) -> Errno {
        Errno::EFAULT
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Errno {
        Errno::from_io(&e)
    }
}

/// Converts a host syscall return value (-1 + errno on failure) to a result.
pub fn host(ret: libc::c_long) -> Result<u64, Errno> {
    if ret < 0 { Err(Errno::last()) } else { Ok(ret as u64) }
}

/// Like [`host`] for calls returning `c_int`.
pub fn host_int(ret: libc::c_int) -> Result<u64, Errno> {
    host(libc::c_long::from(ret))
}

/// Like [`host`] for calls returning `ssize_t`.
pub fn host_size(ret: libc::ssize_t) -> Result<u64, Errno> {
    host(ret as libc::c_long)
}
