//! The WSGI environ dict of a request (PEP 3333 §environ Variables, plus
//! mod_wsgi's `mod_wsgi.*` keys).
//!
//! Constant items live in a base dict built once per interpreter and copied
//! per request; CGI variables come from `rwsgi_core::environ` (unit-tested)
//! with interned keys; values are latin-1 decoded `str`.

use super::module::{ProcessInfo, Types};
use crate::apache;
use crate::ffi;
use crate::python::object::{self, Owned};
use crate::python::{Keys, Runtime, MOD_WSGI_VERSION};
use pyo3_ffi::*;
use rwsgi_core::environ::{
    build_cgi_environ, header_env_name, header_env_name_into, CgiKey, EnvironSink, RequestFacts,
};
use std::sync::atomic::{AtomicU64, Ordering};

extern "C" {
    /// CPython's presized dict constructor (exported, `cpython/dictobject.h`).
    fn _PyDict_NewPresized(minused: Py_ssize_t) -> *mut PyObject;
}

unsafe fn set(d: *mut PyObject, k: &str, v: *mut PyObject) -> Result<(), String> {
    let key = object::str_from(k);
    if PyDict_SetItem(d, key.as_ptr(), v) < 0 {
        return Err(format!("cannot set environ[{k:?}]"));
    }
    Ok(())
}

fn apache_version() -> (i64, i64, i64) {
    // SAFETY: returns a static string owned by Apache.
    let desc = unsafe { apache::opt_str(ffi::ap_get_server_description()) }.unwrap_or("");
    let v = desc
        .split('/')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("");
    let mut it = v.split('.').map(|p| p.parse::<i64>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

unsafe fn tuple3(v: (i64, i64, i64)) -> Owned {
    let t = Owned::from_owned(PyTuple_New(3));
    PyTuple_SetItem(t.as_ptr(), 0, PyLong_FromLongLong(v.0));
    PyTuple_SetItem(t.as_ptr(), 1, PyLong_FromLongLong(v.1));
    PyTuple_SetItem(t.as_ptr(), 2, PyLong_FromLongLong(v.2));
    t
}

/// Builds the per-interpreter base environ: `wsgi.version` (1, 0),
/// `wsgi.multithread`, `wsgi.multiprocess` (from `info`), `wsgi.run_once`
/// False, `wsgi.input_terminated` True, `wsgi.file_wrapper`,
/// `mod_wsgi.version`, `mod_wsgi.process_group` (from `info`),
/// `mod_wsgi.request_handler`, `mod_wsgi.handler_script`,
/// `mod_wsgi.ignore_activity`, `apache.version`, `SERVER_SOFTWARE`. GIL held.
pub unsafe fn make_base_environ(
    keys: &Keys,
    types: &Types,
    info: &ProcessInfo,
) -> Result<Owned, String> {
    // Room for every key a request sets, so the per-request copy (which
    // clones this dict's hash table) never has to grow.
    let d = Owned::new(_PyDict_NewPresized(96)).ok_or("dict")?;
    let p = d.as_ptr();
    // Placeholders for the keys every request sets: the copy then only
    // replaces values instead of inserting.
    for key in CgiKey::ALWAYS_SET {
        PyDict_SetItem(p, keys.cgi[*key as usize].as_ptr(), keys.empty.as_ptr());
    }
    for key in [
        &keys.wsgi_url_scheme,
        &keys.wsgi_input,
        &keys.wsgi_errors,
        &keys.mod_wsgi_application_group,
        &keys.mod_wsgi_callable_object,
        &keys.mod_wsgi_script_reloading,
        &keys.mod_wsgi_request_id,
        &keys.mod_wsgi_request_start,
        &keys.mod_wsgi_script_name,
        &keys.mod_wsgi_path_info,
    ] {
        PyDict_SetItem(p, key.as_ptr(), keys.empty.as_ptr());
    }
    let version = Owned::from_owned(PyTuple_New(2));
    PyTuple_SetItem(version.as_ptr(), 0, PyLong_FromLong(1));
    PyTuple_SetItem(version.as_ptr(), 1, PyLong_FromLong(0));
    set(p, "wsgi.version", version.as_ptr())?;
    set(
        p,
        "wsgi.multithread",
        PyBool_FromLong(info.multithread as _),
    )?;
    set(
        p,
        "wsgi.multiprocess",
        PyBool_FromLong(info.multiprocess as _),
    )?;
    set(p, "wsgi.run_once", Py_False())?;
    set(p, "wsgi.input_terminated", Py_True())?;
    set(p, "wsgi.file_wrapper", types.file_wrapper as *mut PyObject)?;
    set(p, "mod_wsgi.version", tuple3(MOD_WSGI_VERSION).as_ptr())?;
    set(p, "apache.version", tuple3(apache_version()).as_ptr())?;
    set(
        p,
        "mod_wsgi.process_group",
        object::str_from(&info.process_group).as_ptr(),
    )?;
    set(
        p,
        "mod_wsgi.request_handler",
        object::str_from("wsgi-script").as_ptr(),
    )?;
    set(p, "mod_wsgi.handler_script", keys.empty.as_ptr())?;
    set(p, "mod_wsgi.ignore_activity", keys.zero.as_ptr())?;
    set(p, "mod_wsgi.enable_sendfile", keys.zero.as_ptr())?;
    let banner = apache::bytes(ffi::ap_get_server_banner());
    set(p, "SERVER_SOFTWARE", object::latin1(banner).as_ptr())?;
    Ok(d)
}

/// Longest value (bytes) remembered by [`EnvironCache`].
const MAX_CACHED_VALUE: usize = 256;
/// Most distinct request header names remembered by [`EnvironCache`].
const MAX_CACHED_HEADERS: usize = 64;

/// The last value seen for one environ key, with its Python `str`.
type CachedValue = Option<(Vec<u8>, Owned)>;

struct HeaderSlot {
    name: Vec<u8>,
    key: Owned,
    value: CachedValue,
}

/// Python strings reused across requests of one interpreter: most CGI
/// values (server name, port, protocol, method, document root, ...) and most
/// request headers repeat from one request to the next, so each fixed key
/// and each header name remembers its last value and `str` object, and a
/// header name its interned `HTTP_*` key. Saves a latin-1 decode and an
/// allocation per variable. Only used with the GIL held.
#[derive(Default)]
pub struct EnvironCache {
    fixed: Vec<CachedValue>,
    headers: Vec<HeaderSlot>,
    application_group: CachedValue,
    callable_object: CachedValue,
    /// Daemon-mode environ names seen (at most 512): the interned key and
    /// the last value with its `str` (most values repeat from request to
    /// request).
    pair_slots: Vec<PairSlot>,
    /// Index into `pair_slots` by name.
    pair_index: std::collections::HashMap<Vec<u8>, usize, FastHash>,
    /// The slot of the i-th pair of the last request: the Apache child
    /// sends the names in the same order each time, so a name is found by
    /// one comparison, without hashing.
    pair_order: Vec<usize>,
    /// Daemon mode: the base environ plus the last value of every pair
    /// whose slot says `in_template`; each environ starts as its copy.
    pairs_template: Option<Owned>,
    /// Daemon mode: requests built so far (marks the pairs each one had).
    generation: u64,
}

/// A daemon-mode environ name's interned key and last value.
struct PairSlot {
    name: Vec<u8>,
    key: Owned,
    value: CachedValue,
    /// Whether `pairs_template` holds `value` under `key`.
    in_template: bool,
    /// The last request (generation) that had this name.
    seen: u64,
}

/// FNV-1a over the (short) environ names: much cheaper than SipHash here.
/// Header names come from clients, but the map never holds more than 512
/// names, so colliding names cost at most that many comparisons.
#[derive(Default, Clone, Copy)]
struct FastHash;

impl std::hash::BuildHasher for FastHash {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

/// The FNV-1a state.
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Sets `environ[key]` to the `str` of `value` when it differs from what the
/// per-interpreter template (the dict every environ is copied from) holds,
/// updating the template too. `slot` mirrors the template's value: when they
/// match, the copy already has the right object and nothing is done. Returns
/// the value object, or `None` when it was not set (a dict error). GIL held.
unsafe fn set_templated(
    dict: *mut PyObject,
    template: *mut PyObject,
    key: *mut PyObject,
    slot: &mut CachedValue,
    value: &[u8],
) -> Option<Owned> {
    if let Some((bytes, obj)) = slot {
        if bytes.as_slice() == value {
            return Some(Owned::from_borrowed(obj.as_ptr()));
        }
    }
    let v = EnvironCache::value(slot, value);
    if PyDict_SetItem(dict, key, v.as_ptr()) < 0 || PyDict_SetItem(template, key, v.as_ptr()) < 0 {
        // Keep the invariant: a remembered value is the template's value.
        *slot = None;
        return None;
    }
    Some(v)
}

impl EnvironCache {
    /// The slot of environ name `name`, the `i`-th pair of the request:
    /// found by position when the last request had it there, else by
    /// name, else made (its key decoded and interned). `None` once 512
    /// names are remembered. GIL held.
    unsafe fn pair_slot(&mut self, i: usize, name: &[u8]) -> Option<usize> {
        if let Some(&idx) = self.pair_order.get(i) {
            if self.pair_slots.get(idx).is_some_and(|s| s.name == name) {
                return Some(idx);
            }
        }
        let idx = match self.pair_index.get(name) {
            Some(&idx) => idx,
            None if self.pair_slots.len() < 512 => {
                let mut p = object::latin1(name).into_ptr();
                PyUnicode_InternInPlace(&mut p);
                self.pair_slots.push(PairSlot {
                    name: name.to_vec(),
                    key: Owned::from_owned(p),
                    value: None,
                    in_template: false,
                    seen: 0,
                });
                let idx = self.pair_slots.len() - 1;
                self.pair_index.insert(name.to_vec(), idx);
                idx
            }
            None => return None,
        };
        if self.pair_order.len() <= i {
            self.pair_order.resize(i + 1, usize::MAX);
        }
        self.pair_order[i] = idx;
        Some(idx)
    }

    /// Daemon mode: a new environ dict holding the request's `pairs` over
    /// `base`. It is a copy of a template that holds the last value of each
    /// name, so only the values that changed since the last request are
    /// set (and names the last request had and this one lacks removed).
    /// GIL held.
    unsafe fn environ_from_pairs(
        &mut self,
        base: *mut PyObject,
        pairs: &[(&[u8], &[u8])],
    ) -> Result<Owned, String> {
        if self.pairs_template.is_none() {
            self.pairs_template =
                Some(Owned::new(PyDict_Copy(base)).ok_or("cannot copy base environ")?);
        }
        let tmpl = self
            .pairs_template
            .as_ref()
            .map(|t| t.as_ptr())
            .unwrap_or(base);
        let env = Owned::new(PyDict_Copy(tmpl)).ok_or("cannot copy the environ template")?;
        let d = env.as_ptr();
        self.generation += 1;
        let generation = self.generation;
        let set_error =
            |name: &[u8]| format!("cannot set environ[{:?}]", String::from_utf8_lossy(name));
        for (i, &(name, value)) in pairs.iter().enumerate() {
            let Some(idx) = self.pair_slot(i, name) else {
                // Not remembered (the map is full): never templated.
                let (k, v) = (object::latin1(name), object::latin1(value));
                if PyDict_SetItem(d, k.as_ptr(), v.as_ptr()) < 0 {
                    return Err(set_error(name));
                }
                continue;
            };
            let slot = &mut self.pair_slots[idx];
            slot.seen = generation;
            if slot.in_template
                && slot
                    .value
                    .as_ref()
                    .is_some_and(|(b, _)| b.as_slice() == value)
            {
                continue;
            }
            let v = EnvironCache::value(&mut slot.value, value);
            if PyDict_SetItem(d, slot.key.as_ptr(), v.as_ptr()) < 0 {
                return Err(set_error(name));
            }
            // Keep the template's value the slot's value, or none.
            if slot.value.is_some() {
                slot.in_template = PyDict_SetItem(tmpl, slot.key.as_ptr(), v.as_ptr()) == 0;
            } else if slot.in_template {
                slot.in_template = false;
                if PyDict_DelItem(tmpl, slot.key.as_ptr()) < 0 {
                    PyErr_Clear();
                }
            }
            if !slot.in_template {
                PyErr_Clear();
            }
        }
        // Names the template has from earlier requests that this one lacks.
        for slot in &self.pair_slots {
            if slot.in_template
                && slot.seen != generation
                && PyDict_DelItem(d, slot.key.as_ptr()) < 0
            {
                PyErr_Clear();
            }
        }
        Ok(env)
    }

    /// A new reference to the `str` of `value`, from `slot` when it holds
    /// the same bytes, else decoded (and remembered if short). GIL held.
    unsafe fn value(slot: &mut CachedValue, value: &[u8]) -> Owned {
        if let Some((bytes, obj)) = slot {
            if bytes.as_slice() == value {
                return Owned::from_borrowed(obj.as_ptr());
            }
        }
        let obj = object::latin1(value);
        if value.len() > MAX_CACHED_VALUE {
            *slot = None;
        } else {
            match slot {
                Some((bytes, cached)) => {
                    bytes.clear();
                    bytes.extend_from_slice(value);
                    *cached = Owned::from_borrowed(obj.as_ptr());
                }
                None => *slot = Some((value.to_vec(), Owned::from_borrowed(obj.as_ptr()))),
            }
        }
        obj
    }
}

/// A `GilCell` gives mutable access to data that only GIL holders touch.
pub struct GilCell<T>(std::cell::UnsafeCell<T>);

// SAFETY: the contents are only reached through `get`, which requires the GIL.
unsafe impl<T> Sync for GilCell<T> {}
unsafe impl<T> Send for GilCell<T> {}

impl<T> GilCell<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        GilCell(std::cell::UnsafeCell::new(value))
    }

    /// The contents, exclusively: the GIL serialises all callers.
    ///
    /// # Safety
    /// The caller must hold the GIL and must not call back into code that
    /// uses the same cell while the reference lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        &mut *self.0.get()
    }
}

struct DictSink<'a> {
    dict: *mut PyObject,
    /// The dict `dict` was copied from; holds the last value of every key in
    /// `CgiKey::ALWAYS_SET`.
    template: *mut PyObject,
    keys: &'a Keys,
    cache: &'a mut EnvironCache,
    failed: bool,
    /// SCRIPT_NAME and PATH_INFO, also stored as mod_wsgi.script_name/path_info.
    script_name: Option<Owned>,
    path_info: Option<Owned>,
}

impl EnvironSink for DictSink<'_> {
    fn fixed(&mut self, key: CgiKey, value: &[u8]) {
        // SAFETY: GIL held by the caller of build_environ.
        unsafe {
            let idx = key as usize;
            if self.cache.fixed.len() <= idx {
                self.cache.fixed.resize_with(CgiKey::ALL.len(), || None);
            }
            let slot = &mut self.cache.fixed[idx];
            let key_obj = self.keys.cgi[idx].as_ptr();
            let v = if CgiKey::ALWAYS_SET.contains(&key) {
                match set_templated(self.dict, self.template, key_obj, slot, value) {
                    Some(v) => v,
                    None => {
                        self.failed = true;
                        return;
                    }
                }
            } else {
                let v = EnvironCache::value(slot, value);
                if PyDict_SetItem(self.dict, key_obj, v.as_ptr()) < 0 {
                    self.failed = true;
                }
                v
            };
            match key {
                CgiKey::ScriptName => self.script_name = Some(v),
                CgiKey::PathInfo => self.path_info = Some(v),
                _ => {}
            }
        }
    }

    fn header(&mut self, name: &[u8], value: &[u8]) {
        // SAFETY: as above.
        unsafe {
            let pos = self.cache.headers.iter().position(|h| h.name == name);
            let (k, v) = match pos {
                Some(i) => {
                    let slot = &mut self.cache.headers[i];
                    (
                        Owned::from_borrowed(slot.key.as_ptr()),
                        EnvironCache::value(&mut slot.value, value),
                    )
                }
                None => {
                    let Some(key) = header_env_name(name) else {
                        return;
                    };
                    let k = object::interned_str(&key);
                    let v = object::latin1(value);
                    if self.cache.headers.len() < MAX_CACHED_HEADERS {
                        self.cache.headers.push(HeaderSlot {
                            name: name.to_vec(),
                            key: Owned::from_borrowed(k.as_ptr()),
                            value: None,
                        });
                    }
                    (k, v)
                }
            };
            if PyDict_SetItem(self.dict, k.as_ptr(), v.as_ptr()) < 0 {
                self.failed = true;
            }
        }
    }
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `n` in `radix` (10 or 16) at the end of `buf`; returns the digits.
fn format_radix(buf: &mut [u8], mut n: u64, radix: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(n % radix) as usize];
        n /= radix;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// `n` in decimal (`mod_wsgi.request_start`, microseconds since the epoch).
/// `n` in decimal ASCII, written into `buf` (no allocation).
pub(crate) fn format_decimal(buf: &mut [u8; 24], n: u64) -> &[u8] {
    format_radix(buf, n, 10)
}

/// `mod_wsgi.request_id`: `<pid hex>-<per-process request counter hex>`,
/// unique within the server's lifetime.
fn format_request_id(buf: &mut [u8; 48], pid: u32, n: u64) -> &[u8] {
    let mut counter = [0u8; 16];
    let counter = format_radix(&mut counter, n, 16);
    let mut pid_buf = [0u8; 16];
    let pid = format_radix(&mut pid_buf, pid as u64, 16);
    let len = pid.len() + 1 + counter.len();
    buf[..pid.len()].copy_from_slice(pid);
    buf[pid.len()] = b'-';
    buf[pid.len() + 1..len].copy_from_slice(counter);
    &buf[..len]
}

/// What the embedded handler has gathered about a request for its environ:
/// byte strings borrowed from `request_rec` (no Apache pointers).
pub struct Facts<'a> {
    /// The CGI variables' inputs.
    pub cgi: RequestFacts<'a>,
    /// `r->subprocess_env` (SetEnv and other modules' variables); the
    /// server's own keys win over these, as with mod_wsgi.
    pub extra: Vec<(&'a [u8], &'a [u8])>,
    /// Expanded application group name (`mod_wsgi.application_group`).
    pub application_group: &'a str,
    /// `mod_wsgi.callable_object`.
    pub callable_object: &'a str,
    /// `mod_wsgi.script_reloading`.
    pub script_reloading: bool,
    /// `mod_wsgi.request_start`: microseconds since the Unix epoch.
    pub request_start_us: u64,
    /// `mod_wsgi.enable_sendfile` (WSGIEnableSendfile).
    pub enable_sendfile: bool,
    /// `mod_wsgi.mount_point`: SCRIPT_NAME as a trusted proxy header set
    /// it (`mod_wsgi.script_name` keeps Apache's).
    pub mount_point: Option<&'a [u8]>,
    /// `apache.request_rec` (WSGIPassApacheRequest, embedded mode), or null.
    pub request_rec: *mut std::ffi::c_void,
    /// `WSGIHandlerScript` requests: (`mod_wsgi.request_handler`,
    /// `mod_wsgi.handler_script`), the handler name and the script's path
    /// (otherwise the base environ's `wsgi-script` and '').
    pub handler: Option<(&'a [u8], &'a [u8])>,
}

/// What an environ is made of.
// Made once per request on the stack: boxing Facts would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Source<'a> {
    /// Embedded mode: the request's facts (the fast path, with cached
    /// values and a templated base dict).
    Facts(Facts<'a>),
    /// Daemon mode: (name, value) pairs from the Apache child, in order,
    /// later names winning (see [`for_each_pair`]), plus the daemon's own
    /// `mod_wsgi.queue_start`/daemon keys among them.
    Pairs(&'a [(&'a [u8], &'a [u8])]),
}

/// The next `mod_wsgi.request_id`: `<pid hex>-<per-process counter hex>`,
/// unique within the server's lifetime.
fn next_request_id(buf: &mut [u8; 48]) -> &[u8] {
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    format_request_id(buf, crate::apache::pid(), n)
}

/// Calls `f(name, value)` for every environ item of `facts` except
/// `wsgi.input`/`wsgi.errors` and the constant `wsgi.*` keys, in an order
/// where a later name wins: `r->subprocess_env` first, then the CGI
/// variables, then `wsgi.url_scheme` and the `mod_wsgi.*` keys. Daemon mode
/// sends these to the daemon (PEP 3333 native strings as latin-1 bytes).
pub fn for_each_pair(facts: &Facts<'_>, f: &mut dyn FnMut(&[u8], &[u8])) {
    for (k, v) in &facts.extra {
        f(k, v);
    }
    if let Some((name, script)) = facts.handler {
        f(b"mod_wsgi.request_handler", name);
        f(b"mod_wsgi.handler_script", script);
    }
    struct Pairs<'f>(&'f mut dyn FnMut(&[u8], &[u8]));
    impl EnvironSink for Pairs<'_> {
        fn fixed(&mut self, key: CgiKey, value: &[u8]) {
            (self.0)(key.as_str().as_bytes(), value);
        }
        fn header(&mut self, name: &[u8], value: &[u8]) {
            let mut buf = [0u8; 128];
            if let Some(key) = header_env_name_into(name, &mut buf) {
                (self.0)(key, value);
            } else if name.len() + 5 > buf.len() {
                if let Some(key) = header_env_name(name) {
                    (self.0)(key.as_bytes(), value);
                }
            }
        }
    }
    let mut sink = Pairs(f);
    build_cgi_environ(&facts.cgi, &mut sink);
    let Pairs(f) = sink;
    let path_info = facts.cgi.path_info;
    let scheme: &[u8] = if facts.cgi.is_https() {
        b"https"
    } else {
        b"http"
    };
    f(b"wsgi.url_scheme", scheme);
    f(
        b"mod_wsgi.application_group",
        facts.application_group.as_bytes(),
    );
    f(
        b"mod_wsgi.callable_object",
        facts.callable_object.as_bytes(),
    );
    f(
        b"mod_wsgi.script_reloading",
        if facts.script_reloading { b"1" } else { b"0" },
    );
    let mut buf = [0u8; 48];
    f(b"mod_wsgi.request_id", next_request_id(&mut buf));
    let mut buf = [0u8; 24];
    f(
        b"mod_wsgi.request_start",
        format_decimal(&mut buf, facts.request_start_us),
    );
    // The Apache child that relays the request (mod_wsgi 6's server_pid).
    let mut buf = [0u8; 24];
    f(
        b"mod_wsgi.server_pid",
        format_decimal(&mut buf, crate::apache::pid() as u64),
    );
    f(b"mod_wsgi.script_name", facts.cgi.script_name);
    f(b"mod_wsgi.path_info", path_info);
    if let Some(mount) = facts.mount_point {
        f(b"mod_wsgi.mount_point", mount);
    }
    f(
        b"mod_wsgi.enable_sendfile",
        if facts.enable_sendfile { b"1" } else { b"0" },
    );
}

/// Builds the environ dict of a request from `source`; `input` and
/// `errors` become `wsgi.input` and `wsgi.errors`. GIL held.
pub unsafe fn build_environ(
    rt: &Runtime,
    source: &Source<'_>,
    input: *mut PyObject,
    errors: *mut PyObject,
) -> Result<Owned, String> {
    let k = &rt.keys;
    let env = match source {
        Source::Facts(facts) => {
            let env = Owned::new(PyDict_Copy(rt.base_environ.as_ptr()))
                .ok_or("cannot copy base environ")?;
            set_from_facts(rt, env.as_ptr(), facts)?;
            env
        }
        Source::Pairs(pairs) => rt
            .environ_cache
            .get()
            .environ_from_pairs(rt.base_environ.as_ptr(), pairs)?,
    };
    let d = env.as_ptr();
    // As mod_wsgi: the scheme is wsgi.url_scheme's to say, not a CGI-style
    // HTTPS variable (from mod_ssl's StdEnvVars or a trusted proxy header).
    let https = k.cgi[CgiKey::Https as usize].as_ptr();
    if PyDict_Contains(d, https) == 1 && PyDict_DelItem(d, https) < 0 {
        PyErr_Clear();
    }
    PyDict_SetItem(d, k.wsgi_input.as_ptr(), input);
    PyDict_SetItem(d, k.wsgi_errors.as_ptr(), errors);
    Ok(env)
}

/// Sets mod_wsgi's per-request counters in environ `d`:
/// `mod_wsgi.total_requests` (requests started in this process),
/// `mod_wsgi.thread_id` and `mod_wsgi.thread_requests` (this thread's
/// number and its requests, as the metrics API counts them), all `int`
/// counting the current request. GIL held.
pub unsafe fn set_counters(rt: &Runtime, d: *mut PyObject, thread_id: u64, thread_requests: u64) {
    let k = &rt.keys;
    let total = super::counters::count_request();
    for (key, n) in [
        (&k.mod_wsgi_total_requests, total),
        (&k.mod_wsgi_thread_id, thread_id),
        (&k.mod_wsgi_thread_requests, thread_requests),
    ] {
        if let Some(v) = Owned::new(PyLong_FromUnsignedLongLong(n)) {
            PyDict_SetItem(d, key.as_ptr(), v.as_ptr());
        } else {
            PyErr_Clear();
        }
    }
}

/// The embedded fast path: CGI variables with cached values over the
/// templated base dict, then the server's other keys. GIL held.
unsafe fn set_from_facts(rt: &Runtime, d: *mut PyObject, facts: &Facts<'_>) -> Result<(), String> {
    let mut sink = DictSink {
        dict: d,
        keys: &rt.keys,
        template: rt.base_environ.as_ptr(),
        cache: rt.environ_cache.get(),
        failed: false,
        script_name: None,
        path_info: None,
    };
    build_cgi_environ(&facts.cgi, &mut sink);
    if sink.failed {
        return Err("cannot set CGI variables in environ".into());
    }
    // Variables from SetEnv and other modules; the server's own keys win,
    // as with mod_wsgi (which adds the CGI variables over subprocess_env).
    for (k, v) in &facts.extra {
        let key = object::latin1(k);
        if PyDict_Contains(d, key.as_ptr()) == 0 {
            let val = object::latin1(v);
            PyDict_SetItem(d, key.as_ptr(), val.as_ptr());
        }
    }
    if let Some((name, script)) = facts.handler {
        for (k, v) in [
            (&b"mod_wsgi.request_handler"[..], name),
            (&b"mod_wsgi.handler_script"[..], script),
        ] {
            let (key, val) = (object::latin1(k), object::latin1(v));
            PyDict_SetItem(d, key.as_ptr(), val.as_ptr());
        }
    }
    let k = &rt.keys;
    let scheme = if facts.cgi.is_https() {
        &k.https
    } else {
        &k.http
    };
    PyDict_SetItem(d, k.wsgi_url_scheme.as_ptr(), scheme.as_ptr());
    let template = rt.base_environ.as_ptr();
    for (key, slot, text) in [
        (
            &k.mod_wsgi_application_group,
            &mut sink.cache.application_group,
            facts.application_group,
        ),
        (
            &k.mod_wsgi_callable_object,
            &mut sink.cache.callable_object,
            facts.callable_object,
        ),
    ] {
        if text.is_ascii() {
            set_templated(d, template, key.as_ptr(), slot, text.as_bytes());
        } else {
            PyDict_SetItem(d, key.as_ptr(), object::str_from(text).as_ptr());
        }
    }
    let reloading = if facts.script_reloading {
        &k.one
    } else {
        &k.zero
    };
    PyDict_SetItem(d, k.mod_wsgi_script_reloading.as_ptr(), reloading.as_ptr());
    let mut buf = [0u8; 48];
    let id = next_request_id(&mut buf);
    PyDict_SetItem(
        d,
        k.mod_wsgi_request_id.as_ptr(),
        object::latin1(id).as_ptr(),
    );
    let mut buf = [0u8; 24];
    let start = format_decimal(&mut buf, facts.request_start_us);
    PyDict_SetItem(
        d,
        k.mod_wsgi_request_start.as_ptr(),
        object::latin1(start).as_ptr(),
    );
    if let (Some(sn), Some(pi)) = (&sink.script_name, &sink.path_info) {
        PyDict_SetItem(d, k.mod_wsgi_script_name.as_ptr(), sn.as_ptr());
        PyDict_SetItem(d, k.mod_wsgi_path_info.as_ptr(), pi.as_ptr());
    }
    set_rare(d, k, facts);
    Ok(())
}

/// The items only some configurations set: a trusted proxy's mount point,
/// `mod_wsgi.enable_sendfile`, `apache.request_rec`. GIL held.
unsafe fn set_rare(d: *mut PyObject, k: &Keys, facts: &Facts<'_>) {
    if let Some(mount) = facts.mount_point {
        PyDict_SetItemString(
            d,
            c"mod_wsgi.mount_point".as_ptr(),
            object::latin1(mount).as_ptr(),
        );
        PyDict_SetItem(
            d,
            k.mod_wsgi_script_name.as_ptr(),
            object::latin1(facts.cgi.script_name).as_ptr(),
        );
    }
    if facts.enable_sendfile {
        PyDict_SetItemString(d, c"mod_wsgi.enable_sendfile".as_ptr(), k.one.as_ptr());
    }
    if !facts.request_rec.is_null() {
        if let Some(cap) = Owned::new(PyCapsule_New(facts.request_rec, std::ptr::null(), None)) {
            PyDict_SetItemString(d, c"apache.request_rec".as_ptr(), cap.as_ptr());
        } else {
            PyErr_Clear();
        }
    }
}
