//! Names compiled regions for `perf`: with `SHOAL_PERF_MAP=1` in the environment, every region
//! installed is appended to `/tmp/perf-PID.map` (perf's convention for JIT code) as
//! `guest_0xPC`, so `perf report` attributes samples to guest entry pcs. perf reads the file
//! only for anonymous memory, so code chunks are then anonymous mappings (`arena`).

use std::io::Write;
use std::sync::{Mutex, OnceLock, PoisonError};

static MAP: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();

/// Whether `SHOAL_PERF_MAP` asks for the map.
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SHOAL_PERF_MAP").is_some())
}

/// Records `len` bytes of host code at `addr` as the region entered at guest `pc`.
pub(crate) fn record(addr: usize, len: usize, pc: u64) {
    let map = MAP.get_or_init(|| {
        if !enabled() {
            return None;
        }
        let path = format!("/tmp/perf-{}.map", std::process::id());
        std::fs::OpenOptions::new().create(true).append(true).open(path).ok().map(Mutex::new)
    });
    if let Some(file) = map {
        let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(file, "{addr:x} {len:x} guest_{pc:#x}");
    }
}
