//! Installing the preload library's hooks at run time, without `LD_PRELOAD`.
//!
//! A process started without the library can still route its native code's
//! libc calls through it: load `libfrontrun_io.so` with `dlopen`, then, in
//! every loaded object, point the GOT slots that the dynamic loader filled
//! for the hooked functions (`send`, `recv`, ..., `pthread_mutex_lock`) at
//! the library's definitions instead. That is what `LD_PRELOAD` achieves at
//! start-up by putting the library first in the symbol search order; here
//! the relocations are redone by hand:
//!
//! * `dl_iterate_phdr` lists the loaded objects; each one's `PT_DYNAMIC`
//!   gives its symbol and string tables and its relocation tables
//!   (`DT_JMPREL` for PLT calls, `DT_RELA` for `GLOB_DAT` slots used by
//!   `-fno-plt` code and function pointers);
//! * a relocation of type `JUMP_SLOT` or `GLOB_DAT` whose symbol the library
//!   defines has its slot overwritten with the library's address (a slot in
//!   the `PT_GNU_RELRO` range is made writable for the write, then read-only
//!   again);
//! * the objects' `dlopen` slots point at [`frontrun_dlopen`], which patches
//!   the objects a later `dlopen` brings in (a C extension imported after the
//!   exploration started, and the libraries it depends on).
//!
//! A symbol is redirected only when the library's hook can reach the real
//! function (a definition visible through `RTLD_DEFAULT`): a hook whose real
//! function it cannot find would stop the process. Nothing is restored
//! later: a hook passes straight through while no exploration is attached.
//! Objects whose relocations are not `RELA` on x86-64 or AArch64 are
//! refused; the caller reports a refusal as one line and goes on without.

use std::collections::HashSet;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

const DT_NULL: i64 = 0;
const DT_PLTRELSZ: i64 = 2;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_RELA: i64 = 7;
const DT_RELASZ: i64 = 8;
const DT_PLTREL: i64 = 20;
const DT_JMPREL: i64 = 23;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const PF_W: u32 = 2;

#[cfg(target_arch = "x86_64")]
const R_GLOB_DAT: u32 = 6;
#[cfg(target_arch = "x86_64")]
const R_JUMP_SLOT: u32 = 7;
#[cfg(target_arch = "aarch64")]
const R_GLOB_DAT: u32 = 1025;
#[cfg(target_arch = "aarch64")]
const R_JUMP_SLOT: u32 = 1026;

#[repr(C)]
struct Rela {
    offset: u64,
    info: u64,
    addend: i64,
}

#[repr(C)]
struct Sym {
    name: u32,
    info: u8,
    other: u8,
    shndx: u16,
    value: u64,
    size: u64,
}

#[repr(C)]
struct Dyn {
    tag: i64,
    val: u64,
}

/// What one installation did, for the caller to report.
#[derive(Default, Clone, Copy)]
pub struct Installed {
    pub objects: usize,
    pub slots: usize,
}

struct State {
    /// The library's `dlopen` handle.
    handle: usize,
    /// Base address and extent of the library's own mapping.
    own_range: (usize, usize),
    /// Objects already patched, by load address and name.
    seen: HashSet<(usize, Vec<u8>)>,
    totals: Installed,
    /// Decisions per symbol name: the hook's address, or None.
    hooks: std::collections::HashMap<Vec<u8>, Option<usize>>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static REAL_DLOPEN: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
thread_local! {
    /// This thread is patching: a `dlopen` it makes meanwhile is not rescanned.
    static PATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
/// Slots patched over the process's life (read without the lock).
static SLOTS: AtomicUsize = AtomicUsize::new(0);

/// Load `library` and redirect every loaded object's imports of the
/// functions it defines. Returns the totals so far; calling it again only
/// patches objects loaded since.
pub fn install(library: &str) -> Result<Installed, String> {
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        return Err("run-time hooking supports x86-64 and AArch64 only".into());
    }
    // Blocking is fine here: this runs from Python, never inside the loader.
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let path =
            CString::new(library).map_err(|_| "library path contains a NUL byte".to_string())?;
        // SAFETY: a valid C string; the library's constructor runs here.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if handle.is_null() {
            return Err(format!("dlopen({library}) failed: {}", dl_error()));
        }
        // SAFETY: a valid handle and NUL-terminated name.
        let probe = unsafe { libc::dlsym(handle, c"frontrun_io_ring_version".as_ptr()) };
        let own_range = mapping_of(probe).ok_or("cannot find the library's own mapping")?;
        // SAFETY: NUL-terminated name.
        let real = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"dlopen".as_ptr()) };
        if real.is_null() {
            return Err("dlopen is not visible through RTLD_DEFAULT".into());
        }
        REAL_DLOPEN.store(real, Ordering::Release);
        *guard = Some(State {
            handle: handle as usize,
            own_range,
            seen: HashSet::new(),
            totals: Installed::default(),
            hooks: Default::default(),
        });
    }
    let state = guard.as_mut().expect("initialised above");
    PATCHING.with(|p| p.set(true));
    rescan(state);
    PATCHING.with(|p| p.set(false));
    let totals = state.totals;
    drop(guard);
    drain();
    Ok(totals)
}

/// Number of GOT slots redirected so far (0: run-time hooks not installed).
pub fn slots_patched() -> usize {
    SLOTS.load(Ordering::Relaxed)
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a C string valid until the next call.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-null C string from dlerror.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

/// The loaded object containing `addr`: (load address, end of its highest segment).
fn mapping_of(addr: *mut c_void) -> Option<(usize, usize)> {
    if addr.is_null() {
        return None;
    }
    let mut found: Option<(usize, usize)> = None;
    for object in objects() {
        if object.contains(addr as usize) {
            found = Some((object.base, object.end));
        }
    }
    found
}

struct Object {
    base: usize,
    name: Vec<u8>,
    phdrs: &'static [libc::Elf64_Phdr],
    end: usize,
}

impl Object {
    fn contains(&self, addr: usize) -> bool {
        self.phdrs.iter().any(|p| {
            p.p_type == PT_LOAD && {
                let start = self.base + p.p_vaddr as usize;
                addr >= start && addr < start + p.p_memsz as usize
            }
        })
    }
}

fn objects() -> Vec<Object> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info and our Vec.
        let (info, out) = unsafe { (&*info, &mut *(data as *mut Vec<Object>)) };
        let name = if info.dlpi_name.is_null() {
            Vec::new()
        } else {
            // SAFETY: a NUL-terminated name owned by the loader.
            unsafe { CStr::from_ptr(info.dlpi_name) }
                .to_bytes()
                .to_vec()
        };
        // SAFETY: dlpi_phnum headers at dlpi_phdr, alive while the object is loaded
        // (objects are never unloaded while we hold the list: see patch_new_objects).
        let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        let base = info.dlpi_addr as usize;
        let end = phdrs
            .iter()
            .filter(|p| p.p_type == PT_LOAD)
            .map(|p| base + (p.p_vaddr + p.p_memsz) as usize)
            .max()
            .unwrap_or(base);
        out.push(Object {
            base,
            name,
            phdrs,
            end,
        });
        0
    }
    let mut out: Vec<Object> = Vec::new();
    // SAFETY: the callback only reads the info it is given.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut out as *mut Vec<Object> as *mut c_void) };
    out
}

fn skipped(object: &Object, own: (usize, usize)) -> bool {
    let name = &object.name;
    object.base == own.0
        || name.windows(8).any(|w| w == b"ld-linux")
        || name.starts_with(b"linux-vdso")
        || name.starts_with(b"linux-gate")
        || is_vdso(object)
}

fn is_vdso(object: &Object) -> bool {
    // SAFETY: getauxval is always callable.
    let vdso = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    vdso != 0 && object.contains(vdso)
}

fn patch_new_objects(state: &mut State) {
    for object in objects() {
        let key = (object.base, object.name.clone());
        if state.seen.contains(&key) || skipped(&object, state.own_range) {
            continue;
        }
        // The loader lists an object before it has relocated it (another
        // thread may be inside dlopen): patching then would race with the
        // relocation, and making a RELRO page read-only under the loader's
        // feet would crash it. dlopen(RTLD_NOLOAD) takes the loader's lock,
        // so it answers only once the object is complete (or gone); an
        // object it does not find is left for the next scan.
        let pin = if object.name.is_empty() {
            None // the main program, loaded before anything ran
        } else {
            let Ok(name) = CString::new(object.name.clone()) else {
                continue;
            };
            // SAFETY: a valid C string; NOLOAD never loads anything.
            let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
            if h.is_null() {
                continue;
            }
            Some(h)
        };
        state.seen.insert(key);
        // A refused object keeps its bindings; the others are still patched.
        if let Ok(n) = patch_object(state, &object) {
            if n > 0 {
                state.totals.objects += 1;
                state.totals.slots += n;
                SLOTS.fetch_add(n, Ordering::Relaxed);
            }
        }
        if let Some(h) = pin {
            // SAFETY: drops the reference the NOLOAD dlopen took.
            unsafe { libc::dlclose(h) };
        }
    }
}

/// The address `ptr` names in `object`: the loader has already added the
/// load address to most dynamic entries in place, but not everywhere.
fn absolute(object: &Object, ptr: u64) -> usize {
    let p = ptr as usize;
    if p < object.base {
        object.base + p
    } else {
        p
    }
}

fn patch_object(state: &mut State, object: &Object) -> Result<usize, &'static str> {
    let dynamic = object
        .phdrs
        .iter()
        .find(|p| p.p_type == PT_DYNAMIC)
        .ok_or("no dynamic section")?;
    let mut strtab = 0usize;
    let mut symtab = 0usize;
    let mut tables: [(usize, usize); 2] = [(0, 0); 2];
    let mut pltrel = DT_RELA;
    let mut entry = (object.base + dynamic.p_vaddr as usize) as *const Dyn;
    loop {
        // SAFETY: the dynamic array ends with DT_NULL.
        let d = unsafe { &*entry };
        match d.tag {
            DT_NULL => break,
            DT_STRTAB => strtab = absolute(object, d.val),
            DT_SYMTAB => symtab = absolute(object, d.val),
            DT_JMPREL => tables[0].0 = absolute(object, d.val),
            DT_PLTRELSZ => tables[0].1 = d.val as usize,
            DT_RELA => tables[1].0 = absolute(object, d.val),
            DT_RELASZ => tables[1].1 = d.val as usize,
            DT_PLTREL => pltrel = d.val as i64,
            _ => {}
        }
        // SAFETY: still inside the array (not past DT_NULL).
        entry = unsafe { entry.add(1) };
    }
    if strtab == 0 || symtab == 0 {
        return Err("no symbol table");
    }
    if pltrel != DT_RELA && tables[0].1 > 0 {
        return Err("PLT relocations are not RELA");
    }
    // The pages the loader made read-only: it rounds both ends of the
    // RELRO segment down to a page, so a last partial page shared with
    // .data stays writable (and must stay so after a patch).
    // SAFETY: sysconf cannot fail for _SC_PAGESIZE.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let relro: Vec<(usize, usize)> = object
        .phdrs
        .iter()
        .filter(|p| p.p_type == PT_GNU_RELRO)
        .map(|p| {
            let start = object.base + p.p_vaddr as usize;
            (
                start & !(page - 1),
                (start + p.p_memsz as usize) & !(page - 1),
            )
        })
        .collect();
    let mut patched = 0usize;
    for (start, size) in tables {
        if start == 0 || size == 0 {
            continue;
        }
        let count = size / std::mem::size_of::<Rela>();
        // SAFETY: the loader used this very table to relocate the object.
        let relas = unsafe { std::slice::from_raw_parts(start as *const Rela, count) };
        for rela in relas {
            let kind = (rela.info & 0xffff_ffff) as u32;
            if kind != R_JUMP_SLOT && kind != R_GLOB_DAT {
                continue;
            }
            let index = (rela.info >> 32) as usize;
            if index == 0 {
                continue;
            }
            // SAFETY: index is a symbol of this object's table.
            let sym = unsafe { &*((symtab + index * std::mem::size_of::<Sym>()) as *const Sym) };
            // SAFETY: st_name is an offset into the string table.
            let name =
                unsafe { CStr::from_ptr((strtab + sym.name as usize) as *const c_char) }.to_bytes();
            let target = if name == b"dlopen" {
                Some(frontrun_dlopen as *const () as usize)
            } else {
                hook_for(state, name)
            };
            let Some(target) = target else { continue };
            let slot = object.base + rela.offset as usize;
            if write_slot(object, &relro, slot, target).is_ok() {
                patched += 1;
            }
        }
    }
    Ok(patched)
}

/// The library's definition of `name`, when it has one and its hook can
/// find the real function.
fn hook_for(state: &mut State, name: &[u8]) -> Option<usize> {
    if let Some(known) = state.hooks.get(name) {
        return *known;
    }
    let decided = (|| {
        let cname = CString::new(name).ok()?;
        // SAFETY: a valid handle and C string.
        let hook = unsafe { libc::dlsym(state.handle as *mut c_void, cname.as_ptr()) } as usize;
        if hook == 0 || hook < state.own_range.0 || hook >= state.own_range.1 {
            return None; // not one of the library's own definitions
        }
        if !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
            || name.starts_with(b"frontrun_")
        {
            return None;
        }
        // SAFETY: as above.
        let real = unsafe { libc::dlsym(libc::RTLD_DEFAULT, cname.as_ptr()) } as usize;
        if real == 0 || (real >= state.own_range.0 && real < state.own_range.1) {
            return None; // the hook could not reach the real function
        }
        Some(hook)
    })();
    state.hooks.insert(name.to_vec(), decided);
    decided
}

fn write_slot(
    object: &Object,
    relro: &[(usize, usize)],
    slot: usize,
    value: usize,
) -> Result<(), ()> {
    let in_relro = relro.iter().any(|&(s, e)| slot >= s && slot < e);
    if !in_relro {
        // Outside RELRO the slot must lie in a writable segment.
        let writable = object.phdrs.iter().any(|p| {
            p.p_type == PT_LOAD && p.p_flags & PF_W != 0 && {
                let start = object.base + p.p_vaddr as usize;
                slot >= start && slot + 8 <= start + p.p_memsz as usize
            }
        });
        if !writable {
            return Err(());
        }
        // SAFETY: an aligned pointer-sized slot in a writable segment.
        unsafe { (slot as *const AtomicUsize).as_ref() }
            .ok_or(())?
            .store(value, Ordering::Release);
        return Ok(());
    }
    // SAFETY: sysconf cannot fail for _SC_PAGESIZE.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let start = slot & !(page - 1);
    // SAFETY: the page belongs to this object's RELRO segment (mapped, read-only).
    if unsafe {
        libc::mprotect(
            start as *mut c_void,
            page,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    } != 0
    {
        return Err(());
    }
    // SAFETY: now writable; aligned pointer-sized slot.
    unsafe { &*(slot as *const AtomicUsize) }.store(value, Ordering::Release);
    // SAFETY: back to what RELRO made it.
    unsafe { libc::mprotect(start as *mut c_void, page, libc::PROT_READ) };
    Ok(())
}

/// Stands in for `dlopen` in every patched object: objects the call loads
/// get their slots redirected before it returns (unless another thread is
/// patching at that moment: that thread then patches them, see [`drain`]).
#[no_mangle]
pub unsafe extern "C" fn frontrun_dlopen(file: *const c_char, flags: c_int) -> *mut c_void {
    let real = REAL_DLOPEN.load(Ordering::Acquire);
    // SAFETY: set before any slot points here; the real dlopen's signature.
    let real: unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void =
        unsafe { std::mem::transmute(real) };
    let reentered = PATCHING.with(|p| p.get());
    let before: Vec<usize> = if reentered {
        Vec::new()
    } else {
        objects().iter().map(|o| o.base).collect()
    };
    // SAFETY: forwarding the caller's arguments.
    let handle = unsafe { real(file, flags) };
    if !handle.is_null() && !reentered {
        let _ = std::panic::catch_unwind(|| {
            // Objects this call added: patched even if a concurrent scan saw
            // them before the loader had finished relocating them (the
            // loader's relocation would have overwritten that patch).
            let added: Vec<usize> = objects()
                .iter()
                .map(|o| o.base)
                .filter(|b| !before.contains(b))
                .collect();
            FORCE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(added);
            PENDING.store(true, Ordering::Release);
            drain();
        });
    }
    handle
}

/// Objects to patch again (by load address); never held while calling the loader.
static FORCE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Some `dlopen` finished since the last scan.
static PENDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Scan for the objects pending `dlopen`s added, unless another thread
/// holds the state: it scans again before it lets go (the flag and the
/// try-lock make sure one of the two does). A `dlopen` called from a
/// library constructor must never wait for a thread that waits for the
/// loader's lock (held by the outer `dlopen`), hence no blocking lock here.
fn drain() {
    while PENDING.load(Ordering::Acquire) {
        let mut guard = match STATE.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        PATCHING.with(|p| p.set(true));
        if let Some(state) = guard.as_mut() {
            rescan(state);
        }
        PATCHING.with(|p| p.set(false));
        drop(guard);
    }
}

fn rescan(state: &mut State) {
    PENDING.store(false, Ordering::Release);
    let force: Vec<usize> = std::mem::take(&mut *FORCE.lock().unwrap_or_else(|e| e.into_inner()));
    state.seen.retain(|(base, _)| !force.contains(base));
    patch_new_objects(state);
}
