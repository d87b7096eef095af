//! The persistent code cache: code objects in files, shared by every shoal process of a user.
//!
//! ```text
//! DIR/                                     mode 0700
//!   3f/                                    shard: the key's first byte in hex
//!     3f9a…e1                              one code object (object.rs layout), named by its entry key
//!     .3f9a…e1.4711.12.tmp                 a write in progress: key, writer's pid, counter
//!   a0/
//!     …
//! ```
//!
//! Several processes use one directory at once, with no lock between them:
//!
//! - **Writes are atomic.** An object is written to a temporary file in its shard, named uniquely
//!   (the writer's pid and a per-process counter), then renamed over its final name. A reader sees
//!   no file or a whole one; writers racing on one key each rename a whole object and the last one
//!   stays. Nothing is fsynced: a file torn by a crash fails its digest and is dropped when read.
//! - **Reads check everything.** A file is decoded with the key looked up ([`object::decode`]):
//!   magic, version, key, lengths and digest. A file that fails (or is not a regular file, or is
//!   absurdly large) is deleted, logged, counted as rejected and treated as a miss; its bytes never
//!   run. A hit sets the file's mtime, which makes mtime the last use.
//! - **Size is bounded by least recent use.** Each process keeps a running estimate of the
//!   directory's size: scanned at its first write, then increased by each write. When the estimate
//!   passes the bound, the process scans the directory and deletes the files used least recently
//!   (oldest mtime first) until the total is under 90% of the bound, and the scan's total becomes
//!   the new estimate. Files vanishing under a scan (another process evicting too) are skipped.
//!   Only names this module makes are ever deleted (two hex digits for a shard, 64 for an object),
//!   so a cache pointed at the wrong directory destroys nothing else; temporary files left by a
//!   crashed writer go once they are an hour old.
//! - **Failure turns the cache off, not the guest.** Any I/O error other than a missing file
//!   switches the cache off for the rest of the process with one warning; the guest runs on and
//!   compiles as if the cache were empty.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::object::{self, CodeObject, Key};

/// The size bound when none is given: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// The largest object file the cache writes or reads; anything larger is refused or rejected.
pub const MAX_OBJECT_BYTES: u64 = 64 << 20;

/// How old a temporary file must be before a scan takes it for a crashed writer's and deletes it.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Makes temporary file names unique within this process (the pid makes them unique between
/// processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where and how large the code cache is: the `--code-cache` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeCacheConfig {
    /// The cache directory.
    pub dir: PathBuf,
    /// The size bound in bytes.
    pub max_bytes: u64,
}

impl CodeCacheConfig {
    /// The default cache: [`default_dir`] with [`DEFAULT_MAX_BYTES`], or `None` when the
    /// environment names no directory.
    pub fn from_env() -> Option<CodeCacheConfig> {
        default_dir().map(|dir| CodeCacheConfig { dir, max_bytes: DEFAULT_MAX_BYTES })
    }

    /// Opens the cache this describes.
    pub fn open(&self) -> io::Result<DiskCache> {
        DiskCache::open(&self.dir, self.max_bytes)
    }
}

/// The default cache directory: `$SHOAL_CODE_CACHE` if set, else `$XDG_CACHE_HOME/shoal/code`,
/// else `$HOME/.cache/shoal/code`; `None` when none of them is set. Empty variables count as
/// unset, and so does a relative `$XDG_CACHE_HOME` (as the XDG base directory specification says).
pub fn default_dir() -> Option<PathBuf> {
    default_dir_from(|name| std::env::var_os(name))
}

fn default_dir_from(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("SHOAL_CODE_CACHE") {
        return Some(dir);
    }
    if let Some(xdg) = set("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Some(xdg.join("shoal").join("code"));
    }
    set("HOME").map(|home| home.join(".cache").join("shoal").join("code"))
}

/// What a cache has done since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that returned an object.
    pub hits: u64,
    /// Lookups that returned nothing (including rejected files and lookups while off).
    pub misses: u64,
    /// Files found but refused (corrupt, another key, not a regular file) and deleted.
    pub rejected: u64,
    /// Objects written.
    pub writes: u64,
    /// Bytes written, headers included.
    pub bytes: u64,
    /// Files deleted to keep the cache under its bound.
    pub evicted: u64,
}

/// A code cache in one directory. Shared by all threads of a process (`&self` everywhere) and by
/// any number of processes (see the module docs).
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    /// False once an I/O error turned the cache off.
    on: AtomicBool,
    /// The running estimate of the directory's size in bytes; `None` until the first write.
    size: Mutex<Option<u64>>,
    hits: AtomicU64,
    misses: AtomicU64,
    rejected: AtomicU64,
    writes: AtomicU64,
    bytes: AtomicU64,
    evicted: AtomicU64,
}

/// What is at an object's path.
enum Found {
    Nothing,
    /// The open file (kept to set its mtime on a hit) and its bytes.
    File(File, Vec<u8>),
    /// Something that cannot be an object.
    Unusable(&'static str),
}

/// One object file seen by a scan.
struct Entry {
    path: PathBuf,
    len: u64,
    used: SystemTime,
}

impl DiskCache {
    /// Opens (creating it, mode 0700, if need be) the cache in `dir`, bounded to `max_bytes`.
    /// Cheap: the directory is scanned only when the cache is first written to.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> io::Result<DiskCache> {
        let dir = dir.into();
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        if !fs::metadata(&dir)?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{} is not a directory", dir.display())));
        }
        Ok(DiskCache {
            dir,
            max_bytes,
            on: AtomicBool::new(true),
            size: Mutex::new(None),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the cache is still on (no I/O error turned it off).
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            rejected: get(&self.rejected),
            writes: get(&self.writes),
            bytes: get(&self.bytes),
            evicted: get(&self.evicted),
        }
    }

    /// The object stored under `key`, checked against it; `None` on a miss, when the file is bad
    /// (it is deleted) or when the cache is off.
    pub fn get(&self, key: &Key) -> Option<CodeObject> {
        let found = if self.is_on() { self.get_checked(key) } else { None };
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn get_checked(&self, key: &Key) -> Option<CodeObject> {
        let path = self.object_path(key);
        let reason = match read_object(&path) {
            Ok(Found::Nothing) => return None,
            Ok(Found::File(file, bytes)) => match object::decode(&bytes, key) {
                Ok(obj) => {
                    // Marks the object used for eviction; a failure only makes it look older.
                    let _ = file.set_modified(SystemTime::now());
                    return Some(obj);
                }
                Err(e) => e.to_string(),
            },
            Ok(Found::Unusable(why)) => why.to_owned(),
            Err(e) => {
                self.turn_off("reading", &path, &e);
                return None;
            }
        };
        tracing::warn!(path = %path.display(), %reason, "deleting a bad code cache file");
        self.rejected.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            self.turn_off("deleting", &path, &e);
        }
        None
    }

    /// Stores `obj` under its key, replacing whatever was there,
    /// and evicts old objects if the cache grew past its bound. Does nothing when the cache is off
    /// or the object would be larger than [`MAX_OBJECT_BYTES`].
    pub fn put(&self, obj: &CodeObject) {
        if !self.is_on() {
            return;
        }
        let key = &obj.key;
        let bytes = object::encode(obj);
        let len = bytes.len() as u64;
        if len > MAX_OBJECT_BYTES {
            return;
        }
        let path = self.object_path(key);
        if let Err(e) = write_atomically(&path, key, &bytes) {
            self.turn_off("writing", &path, &e);
            return;
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len, Ordering::Relaxed);
        self.grew(len);
    }

    /// Accounts for `len` new bytes and evicts if the estimate passes the bound.
    fn grew(&self, len: u64) {
        let mut size = self.size.lock().unwrap_or_else(PoisonError::into_inner);
        let estimate = match *size {
            Some(s) => s.saturating_add(len),
            // The first write: the scan counts the object just written.
            None => match self.scan() {
                Ok(entries) => entries.iter().map(|e| e.len).sum(),
                Err(e) => {
                    self.turn_off("scanning", &self.dir, &e);
                    return;
                }
            },
        };
        *size = Some(estimate);
        if estimate > self.max_bytes {
            match self.evict() {
                Ok(left) => *size = Some(left),
                Err((path, e)) => self.turn_off("evicting", &path, &e),
            }
        }
    }

    /// Deletes least recently used objects until the directory holds under 90% of the bound;
    /// returns what it then holds.
    fn evict(&self) -> Result<u64, (PathBuf, io::Error)> {
        let mut entries = self.scan().map_err(|e| (self.dir.clone(), e))?;
        let mut total: u64 = entries.iter().map(|e| e.len).sum();
        let target = self.max_bytes - self.max_bytes / 10;
        entries.sort_by(|a, b| a.used.cmp(&b.used).then_with(|| a.path.cmp(&b.path)));
        for entry in entries {
            if total <= target {
                break;
            }
            match fs::remove_file(&entry.path) {
                Ok(()) => {
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                // Another process evicted it first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err((entry.path, e)),
            }
            total -= entry.len;
        }
        Ok(total)
    }

    /// Lists the object files (and deletes stale temporary files). Entries that vanish while
    /// being looked at are skipped; only an unreadable cache directory is an error.
    fn scan(&self) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let now = SystemTime::now();
        for shard in fs::read_dir(&self.dir)? {
            let Ok(shard) = shard else { continue };
            let name = shard.file_name();
            if !name.to_str().is_some_and(|n| is_hex(n, 2)) || !shard.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(files) = fs::read_dir(shard.path()) else { continue };
            for file in files {
                let Ok(file) = file else { continue };
                let name = file.file_name();
                let Some(name) = name.to_str() else { continue };
                let Ok(meta) = file.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if is_hex(name, 64) {
                    entries.push(Entry { path: file.path(), len: meta.len(), used });
                } else if is_temp_name(name) && now.duration_since(used).is_ok_and(|age| age > STALE_TEMP) {
                    // A crashed writer's; one that vanished meanwhile is just as good.
                    let _ = fs::remove_file(file.path());
                }
            }
        }
        Ok(entries)
    }

    fn object_path(&self, key: &Key) -> PathBuf {
        let hex = key.to_string();
        self.dir.join(&hex[..2]).join(hex)
    }

    fn turn_off(&self, doing: &str, path: &Path, e: &io::Error) {
        if self.on.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                dir = %self.dir.display(),
                "code cache off for the rest of this run: {doing} {} failed: {e}",
                path.display()
            );
        }
    }
}

/// Reads the file at `path` if it is a regular file of a plausible size. Symbolic links are not
/// followed, and a FIFO does not block the open.
fn read_object(path: &Path) -> io::Result<Found> {
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Found::Unusable("a symbolic link")),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Found::Unusable("not a regular file"));
    }
    if meta.len() > MAX_OBJECT_BYTES {
        return Ok(Found::Unusable("larger than any code object"));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    (&file).take(MAX_OBJECT_BYTES + 1).read_to_end(&mut bytes)?;
    Ok(Found::File(file, bytes))
}

/// Writes `bytes` to a fresh temporary file beside `path`, then renames it to `path`.
fn write_atomically(path: &Path, key: &Key, bytes: &[u8]) -> io::Result<()> {
    let shard = path.parent().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    // Recreates the cache directory too if someone deleted it.
    fs::DirBuilder::new().recursive(true).mode(0o700).create(shard)?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = shard.join(format!(".{key}.{}.{n}.tmp", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&temp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Whether `name` is exactly `len` lower-case hex digits.
fn is_hex(name: &str, len: usize) -> bool {
    name.len() == len && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `name` is a temporary file's: `.KEY.PID.COUNTER.tmp`.
fn is_temp_name(name: &str) -> bool {
    let Some(middle) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { return false };
    let mut parts = middle.split('.');
    let key_ok = parts.next().is_some_and(|k| is_hex(k, 64));
    let numbers: Vec<&str> = parts.collect();
    key_ok && numbers.len() == 2 && numbers.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jit::MachineCode;
    use crate::testing::TempDir;

    fn key(n: u32) -> Key {
        let mut b = [0x5a; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        Key::from_bytes(b)
    }

    /// The object filed under `key(n)` for a region of one block at `entry`.
    fn object_of(n: u32, entry: u64, guest_insts: u32, code: MachineCode) -> CodeObject {
        CodeObject { key: key(n), region: key(!n), entry, guest_insts, blocks: vec![entry], code }
    }

    fn code(n: u32, len: usize) -> MachineCode {
        MachineCode { code: (0..len).map(|i| (i ^ n as usize).to_le_bytes()[0]).collect(), traps: Vec::new() }
    }

    /// Every regular file under `dir`, recursively, with its size.
    fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).expect("a readable directory") {
            let e = e.expect("a directory entry");
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                out.extend(files(&e.path()));
            } else {
                out.push((e.path(), meta.len()));
            }
        }
        out
    }

    fn total(dir: &Path) -> u64 {
        files(dir).iter().map(|(_, len)| len).sum()
    }

    #[test]
    fn put_then_get() {
        let dir = TempDir::new();
        let cache = DiskCache::open(dir.join("code"), DEFAULT_MAX_BYTES).expect("the cache opens");
        assert_eq!(cache.get(&key(1)), None);
        cache.put(&object_of(1, 0x10_0000, 12, code(1, 300)));
        let obj = cache.get(&key(1)).expect("a hit");
        assert_eq!(obj, object_of(1, 0x10_0000, 12, code(1, 300)));
        assert_eq!(cache.get(&key(2)), None);
        let hex = key(1).to_string();
        let path = dir.join("code").join(&hex[..2]).join(&hex);
        assert_eq!(
            fs::read(&path).expect("the object file"),
            object::encode(&object_of(1, 0x10_0000, 12, code(1, 300)))
        );
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 2, rejected: 0, writes: 1, bytes: 444, evicted: 0 });
        // Another process opening the same directory finds it.
        let other = DiskCache::open(dir.join("code"), DEFAULT_MAX_BYTES).expect("the cache opens");
        assert_eq!(other.get(&key(1)).map(|o| o.code), Some(code(1, 300)));
    }

    #[test]
    fn the_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new();
        let cache = DiskCache::open(dir.join("a/b"), DEFAULT_MAX_BYTES).expect("the cache opens");
        cache.put(&object_of(1, 0, 1, MachineCode { code: vec![0x90], traps: Vec::new() }));
        let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("a/b")) & 0o077, 0);
        let (file, _) = files(&dir.join("a/b")).pop().expect("one object");
        assert_eq!(mode(&file) & 0o077, 0);
        assert_eq!(mode(file.parent().expect("a shard")) & 0o077, 0);
    }

    #[test]
    fn corrupt_files_are_rejected_and_removed() {
        let dir = TempDir::new();
        let cache = DiskCache::open(&dir.0, DEFAULT_MAX_BYTES).expect("the cache opens");
        let good = object::encode(&object_of(1, 0x1000, 3, code(1, 64)));
        let path = cache.object_path(&key(1));
        let mut rejected = 0;
        for at in [0, 9, 20, 50, 60, 70, 100, good.len() - 1] {
            cache.put(&object_of(1, 0x1000, 3, code(1, 64)));
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            fs::write(&path, &bad).expect("overwrite the object");
            assert_eq!(cache.get(&key(1)), None, "corruption at byte {at}");
            rejected += 1;
            assert!(!path.exists(), "the bad file is deleted");
            assert_eq!(cache.stats().rejected, rejected);
        }
        // Truncated, and with bytes after the end.
        for bad in [good[..good.len() - 1].to_vec(), [&good[..], &[0]].concat(), Vec::new()] {
            fs::write(&path, &bad).expect("overwrite the object");
            assert_eq!(cache.get(&key(1)), None);
            assert!(!path.exists());
        }
        // Another key's object under this key's name.
        fs::write(&path, object::encode(&object_of(2, 0x1000, 3, code(1, 64)))).expect("write");
        assert_eq!(cache.get(&key(1)), None);
        assert!(!path.exists());
        assert!(cache.is_on(), "bad files do not turn the cache off");
        cache.put(&object_of(1, 0x1000, 3, code(1, 64)));
        assert!(cache.get(&key(1)).is_some());
    }

    #[test]
    fn symbolic_links_are_never_followed() {
        let dir = TempDir::new();
        let cache = DiskCache::open(dir.join("code"), DEFAULT_MAX_BYTES).expect("the cache opens");
        let path = cache.object_path(&key(1));
        fs::create_dir_all(path.parent().expect("a shard")).expect("the shard");
        let target = dir.join("elsewhere");
        fs::write(&target, object::encode(&object_of(1, 0x1000, 3, code(1, 64)))).expect("write");
        std::os::unix::fs::symlink(&target, &path).expect("a symlink");
        assert_eq!(cache.get(&key(1)), None);
        assert!(fs::symlink_metadata(&path).is_err(), "the link is deleted");
        assert!(target.exists(), "its target is not");
        assert_eq!(cache.stats().rejected, 1);
    }

    #[test]
    fn concurrent_writers_of_one_key() {
        let dir = TempDir::new();
        // Two caches on one directory stand for two processes; threads share each.
        let caches = [0, 1].map(|_| DiskCache::open(&dir.0, DEFAULT_MAX_BYTES).expect("the cache opens"));
        let code = code(7, 5000);
        std::thread::scope(|s| {
            for t in 0..4 {
                let cache = &caches[t % 2];
                let code = &code;
                s.spawn(move || {
                    for _ in 0..100 {
                        cache.put(&object_of(7, 0x4000, 99, code.clone()));
                        if let Some(obj) = cache.get(&key(7)) {
                            assert_eq!(obj.code, *code);
                        }
                    }
                });
            }
        });
        for cache in &caches {
            assert_eq!(cache.stats().rejected, 0, "a reader never sees a partial object");
            assert_eq!(cache.stats().writes, 200);
            assert!(cache.is_on());
            assert_eq!(cache.get(&key(7)).map(|o| o.code), Some(code.clone()));
        }
        let left = files(&dir.0);
        assert_eq!(left.len(), 1, "no temporary file is left behind: {left:?}");
    }

    #[test]
    fn eviction_keeps_the_cache_under_its_bound() {
        let dir = TempDir::new();
        let max = 16 * 1024;
        let cache = DiskCache::open(&dir.0, max).expect("the cache opens");
        let object_len = 1024;
        for n in 0..100 {
            cache.put(&object_of(n, 0x1000, 1, code(n, object_len - object::HEADER_LEN - 8)));
            // Key 0 is in use all along: the least recently used files go first, never it.
            assert!(cache.get(&key(0)).is_some(), "the object in use survives (after put {n})");
            assert!(total(&dir.0) <= max, "after put {n}: {} bytes", total(&dir.0));
        }
        let stats = cache.stats();
        assert!(stats.evicted >= 80, "{stats:?}");
        assert!(total(&dir.0) >= max / 2, "eviction stops near 90%: {} bytes", total(&dir.0));
        assert!(cache.get(&key(99)).is_some(), "the newest object survives");
        assert!(cache.get(&key(1)).is_none(), "the oldest unused object is gone");
        assert!(cache.is_on());
    }

    #[test]
    fn eviction_deletes_stale_temporary_files_and_nothing_foreign() {
        let dir = TempDir::new();
        let cache = DiskCache::open(&dir.0, 4096).expect("the cache opens");
        cache.put(&object_of(1, 0x1000, 1, code(1, 100)));
        let shard = cache.object_path(&key(1)).parent().expect("a shard").to_owned();
        let stale = shard.join(format!(".{}.1.2.tmp", key(1)));
        let fresh = shard.join(format!(".{}.1.3.tmp", key(1)));
        for (path, age) in [(&stale, 7200), (&fresh, 0)] {
            let f = File::create(path).expect("a temporary file");
            f.set_modified(SystemTime::now() - Duration::from_secs(age)).expect("set mtime");
        }
        let foreign = [dir.join("notes.txt"), shard.join("README"), dir.join("zz").join(key(9).to_string())];
        fs::create_dir_all(dir.join("zz")).expect("a directory");
        for f in &foreign {
            fs::write(f, vec![0u8; 10_000]).expect("a foreign file");
        }
        for n in 2..20 {
            cache.put(&object_of(n, 0x1000, 1, code(n, 1000)));
        }
        assert!(cache.stats().evicted > 0);
        assert!(!stale.exists(), "a crashed writer's old file is deleted");
        assert!(fresh.exists(), "a write that may be in progress is not");
        for f in &foreign {
            assert!(f.exists(), "{} is not the cache's to delete", f.display());
        }
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_an_error() {
        let dir = TempDir::new();
        fs::write(dir.join("file"), b"").expect("a file");
        assert!(DiskCache::open(dir.join("file"), DEFAULT_MAX_BYTES).is_err());
        assert!(DiskCache::open(dir.join("file/code"), DEFAULT_MAX_BYTES).is_err());
    }

    #[test]
    fn an_unwritable_directory_turns_the_cache_off() {
        let dir = TempDir::new();
        let cache = DiskCache::open(dir.join("code"), DEFAULT_MAX_BYTES).expect("the cache opens");
        cache.put(&object_of(1, 0x1000, 1, code(1, 10)));
        // The directory is replaced by a file: every write fails, whoever runs the test (root
        // ignores permission bits, so a read-only directory would not do).
        fs::remove_dir_all(dir.join("code")).expect("remove");
        fs::write(dir.join("code"), b"").expect("a file in its place");
        cache.put(&object_of(2, 0x1000, 1, code(2, 10)));
        assert!(!cache.is_on());
        assert_eq!(cache.get(&key(1)), None);
        cache.put(&object_of(3, 0x1000, 1, code(3, 10)));
        assert_eq!(cache.stats().writes, 1);
    }

    #[test]
    fn a_deleted_directory_is_made_again() {
        let dir = TempDir::new();
        let cache = DiskCache::open(dir.join("code"), DEFAULT_MAX_BYTES).expect("the cache opens");
        fs::remove_dir_all(dir.join("code")).expect("remove");
        assert_eq!(cache.get(&key(1)), None);
        cache.put(&object_of(1, 0x1000, 1, code(1, 10)));
        assert!(cache.is_on());
        assert!(cache.get(&key(1)).is_some());
    }

    #[test]
    fn default_directory_precedence() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
        };
        let dir = |vars| default_dir_from(env(vars));
        assert_eq!(
            dir(&[("SHOAL_CODE_CACHE", "/c"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(dir(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]), Some(PathBuf::from("/x/shoal/code")));
        assert_eq!(dir(&[("SHOAL_CODE_CACHE", ""), ("HOME", "/h")]), Some(PathBuf::from("/h/.cache/shoal/code")));
        assert_eq!(dir(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")]), Some(PathBuf::from("/h/.cache/shoal/code")));
        assert_eq!(dir(&[]), None);
    }

    #[test]
    fn temporary_names() {
        let k = key(1).to_string();
        assert!(is_temp_name(&format!(".{k}.123.0.tmp")));
        assert!(!is_temp_name(&format!(".{k}.123.tmp")));
        assert!(!is_temp_name(&format!(".{k}.12a.0.tmp")));
        assert!(!is_temp_name(&format!("{k}.123.0.tmp")));
        assert!(!is_temp_name(".x.1.2.tmp"));
    }

    #[test]
    fn the_cache_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<DiskCache>();
    }
}
