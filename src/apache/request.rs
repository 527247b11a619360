//! Embedded mode's side of a request: the handler's entry
//! ([`handle_request`]), the environ's facts read from `request_rec`
//! ([`gather_facts`], shared with daemon mode, whose Apache child sends them
//! on), and the transport over Apache's input filters ([`ApacheReader`])
//! and output brigades ([`ApacheWriter`]).

use super::{bytes, opt_bytes, opt_str, pool_box, pstrdup, table_entries, Level, LogTarget};
use crate::config::RequestSettings;
use crate::ffi;
use crate::python::{self, GilGuard};
use crate::wsgi::environ::Facts;
use crate::wsgi::transport::{BodyReader, Finish, Gone, Header, ResponseWriter};
use crate::wsgi::{self, Outcome};
use rwsgi_core::directives::{expand_application_group, MapHeadToGet};
use rwsgi_core::environ::{collapse_slashes, header_env_name, split_script_name, RequestFacts};
use rwsgi_core::proxy::Rewrite;
use rwsgi_core::validate::HeaderKind;
use std::borrow::Cow;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr;

const HTTP_500: c_int = ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;

/// Serves request `r` with the WSGI script in `r->filename`, using
/// `settings`: in this process (embedded mode), or relayed to the daemon
/// processes of `settings.process_group`. Returns the handler status for
/// Apache: `OK` once a response was sent, or an HTTP error status for
/// Apache to send (411, 500, 503, ...).
///
/// # Safety
/// `r` must be the live request of the calling handler hook.
pub unsafe fn handle_request(r: *mut ffi::request_rec, settings: &RequestSettings) -> c_int {
    let log = LogTarget::Request(r);
    // r->filename lives in the request pool, so it outlives this call.
    let Some(filename) = opt_str((*r).filename) else {
        log.log(
            Level::Error,
            "RWSGI0007: WSGI script file name is not valid UTF-8",
        );
        return HTTP_500;
    };
    // A WSGIHandlerScript runs instead of the requested file.
    let (script, script_mtime_us) = super::handler_script::script_of(r, settings, filename);
    let policy = if settings.chunked_request {
        ffi::REQUEST_CHUNKED_DECHUNK
    } else {
        ffi::REQUEST_CHUNKED_ERROR
    };
    let rv = ffi::ap_setup_client_block(r, policy as c_int);
    if rv != ffi::OK as c_int {
        if rv == ffi::HTTP_LENGTH_REQUIRED as c_int {
            log.log(
                Level::Info,
                &format!("RWSGI0006: chunked request body to {script:?} refused with 411: WSGIChunkedRequest is Off"),
            );
        }
        return rv;
    }
    // WSGIDispatchScript: may choose another process group, application
    // group or callable object.
    let dispatched;
    let settings = match super::dispatch::dispatch(r, settings) {
        Ok(Some(s)) => {
            dispatched = s;
            &dispatched
        }
        Ok(None) => settings,
        Err(status) => return status,
    };
    let group = rwsgi_core::directives::expand_process_group(&settings.process_group, |name| {
        let c = std::ffi::CString::new(name).ok()?;
        opt_str(ffi::apr_table_get((*r).subprocess_env, c.as_ptr())).map(str::to_owned)
    });
    let embedded = rwsgi_core::directives::is_embedded_group(&group);
    if let Some(allowed) = &settings.restrict_process {
        let name = if embedded {
            "%{GLOBAL}"
        } else {
            group.as_str()
        };
        if !allowed.iter().any(|g| g == name) {
            log.log(
                Level::Error,
                &format!("RWSGI0056: {script:?} may not run in process group {name:?}: WSGIRestrictProcess allows only {allowed:?} here (403)"),
            );
            return ffi::HTTP_FORBIDDEN as c_int;
        }
    }
    if !embedded {
        if let Some(g) = crate::daemon::group(&group) {
            if let Err(why) = crate::daemon::process::check_script_owner(&g.config, script) {
                log.log(
                    Level::Error,
                    &format!(
                        "RWSGI0057: {script:?} may not run in process group {group:?}: {why} (403)"
                    ),
                );
                return ffi::HTTP_FORBIDDEN as c_int;
            }
        }
        if crate::observe::shm::get().is_some() {
            crate::observe::request::labels(&group, &application_group(r, settings));
        }
        if group == settings.process_group {
            return error_override(r, crate::daemon::relay::handle_request(r, settings, script));
        }
        let mut chosen = settings.clone();
        chosen.process_group = group;
        return error_override(r, crate::daemon::relay::handle_request(r, &chosen, script));
    }
    let application_group = application_group(r, settings);
    crate::observe::request::labels("", &application_group);
    let scfg: &crate::config::ServerConfig = crate::config::server_config((*r).server);
    if scfg.restrict_embedded == Some(true) {
        log.log(
            Level::Error,
            &format!("RWSGI0009: cannot run {script:?}: embedded mode is disabled by WSGIRestrictEmbedded On; delegate it to a daemon process group (WSGIProcessGroup)"),
        );
        return HTTP_500;
    }
    let rt = match python::runtime() {
        Ok(_) => match python::runtime_for(&application_group) {
            Ok(rt) => rt,
            Err(e) => {
                log.log(Level::Error, &format!("{e}; {script:?} was not run"));
                return HTTP_500;
            }
        },
        Err(e) => {
            log.log(
                Level::Error,
                &format!("RWSGI0005: cannot run WSGI script {script:?}: Python is not available in this process: {e}"),
            );
            return HTTP_500;
        }
    };
    let facts = gather_facts(r, settings, &application_group);
    let req = wsgi::Request {
        script,
        script_mtime_us,
        script_reloading: settings.script_reloading,
        on_change: python::OnChange::Reload,
        callable_object: &settings.callable_object,
        log,
        head_only: (*r).header_only != 0,
        environ: wsgi::environ::Source::Facts(facts),
        body: (Box::new(ApacheReader(r)), body_length(r)),
        // WSGIErrorOverride applies to daemon mode only, as with mod_wsgi.
        output: Box::new(ApacheWriter::new(r).embedded()),
    };
    let _busy = crate::observe::request::busy(
        (*r).request_time.max(0) as u64,
        bytes((*r).method),
        bytes((*r).unparsed_uri),
        bytes((*r).useragent_ip),
    );
    let gil = GilGuard::acquire(rt);
    let outer = python::replace_log_target(log);
    let (outcome, end) = wsgi::run(&gil, rt, req);
    crate::observe::process::sample_gc(&gil, rt);
    python::flush_application_output();
    python::replace_log_target(outer);
    drop(gil);
    end.finish(log, script);
    match outcome {
        Outcome::Sent => ffi::OK as c_int,
        // Embedded mode re-imports a changed script: never a restart.
        Outcome::Failed | Outcome::Restart => HTTP_500,
        Outcome::TimedOut => ffi::HTTP_GATEWAY_TIME_OUT as c_int,
    }
}

/// The request body's length in bytes (Content-Length), `None` when chunked.
///
/// # Safety
/// `r` must be live, after `ap_setup_client_block`.
pub unsafe fn body_length(r: *mut ffi::request_rec) -> Option<u64> {
    ((*r).read_chunked == 0).then(|| (*r).remaining.max(0) as u64)
}

/// The expanded application group of `r` (`mod_wsgi.application_group`).
///
/// # Safety
/// `r` must be live.
pub unsafe fn application_group(r: *mut ffi::request_rec, settings: &RequestSettings) -> String {
    expand_application_group_of(r, &settings.application_group)
}

/// Application group `spec` (`%{GLOBAL}`, `%{RESOURCE}`, ...) expanded for
/// request `r`; with `WSGICaseSensitivity Off` the SCRIPT_NAME part of
/// `%{RESOURCE}` is lower-cased (mod_wsgi).
///
/// # Safety
/// `r` must be live.
pub unsafe fn expand_application_group_of(r: *mut ffi::request_rec, spec: &str) -> String {
    let uri = bytes((*r).uri);
    let (script_name, _) = split_script_name(uri, bytes((*r).path_info));
    let collapsed = collapse_slashes(script_name);
    let server_name = opt_str(ffi::ap_get_server_name(r)).unwrap_or("");
    let mut script_name = String::from_utf8_lossy(&collapsed);
    let scfg: &crate::config::ServerConfig = crate::config::server_config((*r).server);
    if scfg.more.case_sensitivity == Some(false) {
        script_name = script_name.to_lowercase().into();
    }
    expand_application_group(
        spec,
        server_name,
        ffi::ap_get_server_port(r),
        &script_name,
        |name| {
            let c = std::ffi::CString::new(name).ok()?;
            opt_str(ffi::apr_table_get((*r).subprocess_env, c.as_ptr())).map(str::to_owned)
        },
    )
}

/// Whether HEAD should reach the application as GET (WSGIMapHEADToGET):
/// with Auto, when an output filter before the protocol filters (content
/// filters such as mod_deflate or mod_cache) could depend on the body.
unsafe fn map_head(r: *mut ffi::request_rec, mode: MapHeadToGet) -> bool {
    match mode {
        MapHeadToGet::On => true,
        MapHeadToGet::Off => false,
        MapHeadToGet::Auto => {
            let mut f = (*r).output_filters;
            while !f.is_null() {
                let frec = (*f).frec;
                if !frec.is_null() && (*frec).ftype < ffi::ap_filter_type_AP_FTYPE_PROTOCOL {
                    return true;
                }
                f = (*f).next;
            }
            false
        }
    }
}

/// Reads what the environ of `r` is made of: CGI inputs, `subprocess_env`,
/// and the mod_wsgi settings. The byte strings borrow from `r` (its pool).
///
/// # Safety
/// `r` must be live for `'a`.
pub unsafe fn gather_facts<'a>(
    r: *mut ffi::request_rec,
    settings: &'a RequestSettings,
    application_group: &'a str,
) -> Facts<'a> {
    let c = (*r).connection;
    let useragent_addr = (*r).useragent_addr;
    let remote_port = if useragent_addr.is_null() {
        0
    } else {
        (*useragent_addr).port
    };
    let (script_name, path_info) = split_script_name(bytes((*r).uri), bytes((*r).path_info));
    // mod_wsgi collapses repeated slashes in SCRIPT_NAME (MergeSlashes Off).
    let script_name = match collapse_slashes(script_name) {
        Cow::Borrowed(s) => s,
        Cow::Owned(v) => {
            let p = pstrdup((*r).pool, &v);
            std::slice::from_raw_parts(p as *const u8, v.len())
        }
    };
    let method = bytes((*r).method);
    let method: &[u8] =
        if (*r).header_only != 0 && method == b"HEAD" && map_head(r, settings.map_head_to_get) {
            b"GET"
        } else {
            method
        };
    let proxy = proxy_rewrite(r, settings);
    let cgi = RequestFacts {
        method,
        protocol: bytes((*r).protocol),
        unparsed_uri: bytes((*r).unparsed_uri),
        query: opt_bytes((*r).args),
        script_name,
        path_info,
        server_name: bytes(ffi::ap_get_server_name(r)),
        server_port: ffi::ap_get_server_port(r),
        server_addr: bytes((*c).local_ip),
        server_software: None,
        server_signature: bytes(ffi::ap_psignature(c"".as_ptr(), r)),
        server_admin: bytes((*(*r).server).server_admin),
        remote_addr: bytes((*r).useragent_ip),
        remote_port,
        remote_host: opt_bytes(ffi::ap_get_useragent_host(
            r,
            ffi::REMOTE_HOST as i32,
            ptr::null_mut(),
        )),
        remote_user: opt_bytes((*r).user),
        auth_type: opt_bytes((*r).ap_auth_type),
        document_root: bytes(ffi::ap_document_root(r)),
        context_prefix: bytes(ffi::ap_context_prefix(r)),
        context_document_root: bytes(ffi::ap_context_document_root(r)),
        script_filename: bytes((*r).filename),
        scheme: bytes(ffi::rwsgi_http_scheme(r)),
        headers: table_entries((*r).headers_in).collect(),
        pass_authorization: settings.pass_authorization,
        proxy,
    };
    let mut extra: Vec<_> = table_entries((*r).subprocess_env).collect();
    if let Some(p) = proxy {
        extra.retain(|(k, _)| !p.removed.iter().any(|n| n.as_bytes() == *k));
    }
    Facts {
        handler: settings
            .handler_script
            .as_ref()
            .map(|h| (bytes((*r).handler), h.path.as_bytes())),
        cgi,
        extra,
        application_group,
        callable_object: &settings.callable_object,
        script_reloading: settings.script_reloading,
        request_start_us: (*r).request_time.max(0) as u64,
        enable_sendfile: settings.more.enable_sendfile,
        mount_point: proxy.and_then(|p| p.script_name.as_deref()),
        request_rec: if settings.more.pass_apache_request {
            r as *mut c_void
        } else {
            ptr::null_mut()
        },
    }
}

/// What `WSGITrustedProxyHeaders`/`WSGITrustedProxies` change in the
/// environ of `r` (kept in the request pool), `None` without trusted
/// headers.
///
/// # Safety
/// `r` must be live for `'a`.
unsafe fn proxy_rewrite<'a>(
    r: *mut ffi::request_rec,
    settings: &RequestSettings,
) -> Option<&'a Rewrite> {
    let headers = settings.more.trusted_proxy_headers.as_deref()?;
    let table: Vec<(&[u8], &[u8])> = table_entries((*r).headers_in).collect();
    let remote = opt_str((*r).useragent_ip).unwrap_or("");
    let rw = rwsgi_core::proxy::rewrite(
        headers,
        settings
            .more
            .trusted_proxies
            .as_deref()
            .map(|v| v.as_slice()),
        remote,
        |env| {
            table
                .iter()
                .find(|(n, _)| header_env_name(n).as_deref() == Some(env))
                .map(|(_, v)| *v)
        },
    );
    Some(&*pool_box((*r).pool, rw))
}

/// The request body from Apache's input filters (`ap_get_client_block`).
pub struct ApacheReader(pub *mut ffi::request_rec);

// SAFETY: used by one thread at a time (the WSGI core's input lock), only
// while the request lives (the core drops it before the handler returns).
unsafe impl Send for ApacheReader {}

impl BodyReader for ApacheReader {
    fn read(&mut self, dst: &mut [u8]) -> Result<usize, String> {
        // SAFETY: see the Send impl; dst is writable for its length.
        let n = unsafe {
            ffi::ap_get_client_block(self.0, dst.as_mut_ptr() as *mut c_char, dst.len() as _)
        };
        if n < 0 {
            return Err("the client disconnected, timed out, or sent a malformed body".to_string());
        }
        Ok(n as usize)
    }
}

/// The response down Apache's output filters: status and headers into
/// `request_rec`, body as buckets in one brigade of the request pool.
pub struct ApacheWriter {
    r: *mut ffi::request_rec,
    bb: *mut ffi::apr_bucket_brigade,
    /// WSGIEnableSendfile: file buckets may use sendfile().
    sendfile: bool,
    /// WSGIErrorOverride: an error status is left to Apache's error
    /// documents (the response is discarded; see [`error_override`]).
    override_errors: bool,
    /// The response is being discarded for Apache's error document.
    discarding: bool,
    /// Response headers follow Apache's CGI header parsing
    /// (`ap_scan_script_header_err`), as mod_wsgi's daemon mode does:
    /// repeated headers become one comma-separated header (except
    /// Set-Cookie) and a value's leading spaces and tabs are skipped
    /// (Django's `Set-Cookie` values start with one). Embedded mode keeps
    /// each line and value as given (mod_wsgi's `apr_table_add`).
    cgi_headers: bool,
}

/// The `r->notes` key carrying the status an overridden error response had.
const OVERRIDDEN: &std::ffi::CStr = c"rwsgi-error-override";

/// The handler status of a relayed request: with WSGIErrorOverride On, an
/// error response the writer discarded becomes that status, for Apache's
/// `ErrorDocument` (as mod_wsgi and `ProxyErrorOverride`).
///
/// # Safety
/// `r` must be live.
unsafe fn error_override(r: *mut ffi::request_rec, status: c_int) -> c_int {
    if status != ffi::OK as c_int {
        return status;
    }
    match opt_str(ffi::apr_table_get((*r).notes, OVERRIDDEN.as_ptr()))
        .and_then(|s| s.parse::<c_int>().ok())
    {
        Some(code) => {
            (*r).status = ffi::HTTP_OK as c_int;
            code
        }
        None => status,
    }
}

// SAFETY: used by one thread at a time (the WSGI core's output lock), only
// while the request lives (the core drops it before the handler returns).
unsafe impl Send for ApacheWriter {}

impl ApacheWriter {
    /// The writer of request `r`.
    ///
    /// # Safety
    /// `r` must be live while the writer is used.
    pub unsafe fn new(r: *mut ffi::request_rec) -> ApacheWriter {
        let bb = ffi::apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc);
        let d = super::module_config::<crate::config::DirConfig>((*r).per_dir_config);
        let more = d.as_ref().map(|d| &d.more);
        ApacheWriter {
            r,
            bb,
            sendfile: more.and_then(|m| m.enable_sendfile).unwrap_or(false),
            override_errors: more.and_then(|m| m.error_override).unwrap_or(false),
            discarding: false,
            cgi_headers: true,
        }
    }

    /// The writer for embedded mode: without WSGIErrorOverride (mod_wsgi
    /// does not apply it there) and with repeated headers and header values kept as they are.
    pub fn embedded(mut self) -> ApacheWriter {
        self.override_errors = false;
        self.cgi_headers = false;
        self
    }

    unsafe fn end(&mut self, finish: Finish) {
        let alloc = (*self.bb).bucket_alloc;
        if finish != Finish::Eos {
            ffi::rwsgi_brigade_insert_tail(self.bb, ffi::apr_bucket_flush_create(alloc));
        }
        if finish != Finish::Flush {
            ffi::rwsgi_brigade_insert_tail(self.bb, ffi::apr_bucket_eos_create(alloc));
        }
    }

    /// Adds `len` bytes of `fd` from `offset` as a file bucket, as
    /// [`ResponseWriter::file`] does for embedded mode's
    /// `wsgi.file_wrapper`, the descriptor now owned by the request pool:
    /// closed by a cleanup of that pool (APR's `apr_os_file_put` registers
    /// none), which Apache destroys only once the response's buckets are
    /// written or dropped (its EOR bucket), even when the file bucket was
    /// set aside for write completion. Daemon mode's relay of a File frame;
    /// `offset + len` must lie within the file. Apache's `EnableSendfile`
    /// alone decides whether sendfile() sends it, as for a static file
    /// (WSGIEnableSendfile is for the file buckets of embedded mode's
    /// `wsgi.file_wrapper`, as mod_wsgi); else Apache memory-maps or reads it.
    pub fn file_owned(&mut self, fd: OwnedFd, offset: u64, len: u64) {
        let raw = fd.as_raw_fd();
        // SAFETY: the request is live; the pool outlives the bucket.
        unsafe { crate::apache::pool_box((*self.r).pool, fd) };
        let sendfile = self.core_sendfile();
        self.insert_file(raw, offset, len, sendfile);
    }

    /// Apache's `EnableSendfile` for this request (core_dir_config; Off
    /// unless set). A file bucket goes out with sendfile() only when its
    /// file carries APR's sendfile flag, which Apache's own handler sets
    /// from this directive: a module must do the same.
    fn core_sendfile(&self) -> bool {
        // SAFETY: the request is live; its per-directory config includes
        // the core module's.
        unsafe { ffi::rwsgi_enable_sendfile(self.r) != 0 }
    }

    /// A file bucket of `len` bytes of `fd` from `offset`, sendfile()
    /// allowed or not.
    fn insert_file(&mut self, fd: i32, offset: u64, len: u64, sendfile: bool) -> bool {
        if self.discarding {
            return true;
        }
        let flags = if sendfile {
            ffi::APR_FOPEN_READ | ffi::APR_FOPEN_SENDFILE_ENABLED
        } else {
            ffi::APR_FOPEN_READ
        };
        // SAFETY: the request is live; APR does not close the descriptor
        // (apr_os_file_put registers no cleanup).
        unsafe {
            let pool = (*self.r).pool;
            let mut file: *mut ffi::apr_file_t = ptr::null_mut();
            let mut os_fd: ffi::apr_os_file_t = fd;
            ffi::apr_os_file_put(&mut file, &mut os_fd, flags as i32, pool);
            ffi::apr_brigade_insert_file(self.bb, file, offset as _, len as _, pool);
        }
        true
    }

    /// Passes what was added so far without FLUSH or EOS (daemon mode's
    /// relay of an unflushed block; Apache sets aside what it keeps).
    pub fn pass_plain(&mut self) -> Result<(), Gone> {
        // SAFETY: the request is live.
        unsafe { self.pass() }
    }

    /// Marks the response as cut off (a request-timeout or a broken daemon
    /// connection mid-response): an error bucket makes Apache's chunk
    /// filter omit the final chunk and close the connection, so the client
    /// sees it incomplete. Goes with the next send.
    pub fn cut_off(&mut self) {
        if self.discarding {
            return;
        }
        // SAFETY: the request is live.
        unsafe {
            let r = self.r;
            (*(*r).connection).keepalive = ffi::ap_conn_keepalive_e_AP_CONN_CLOSE;
            let e = ffi::ap_bucket_error_create(
                ffi::HTTP_BAD_GATEWAY as i32,
                ptr::null(),
                (*r).pool,
                (*self.bb).bucket_alloc,
            );
            ffi::rwsgi_brigade_insert_tail(self.bb, e);
        }
    }

    unsafe fn pass(&mut self) -> Result<(), Gone> {
        crate::observe::request::first_byte();
        if self.discarding {
            ffi::apr_brigade_cleanup(self.bb as *mut c_void);
            return Ok(());
        }
        let rv = ffi::ap_pass_brigade((*self.r).output_filters, self.bb);
        ffi::apr_brigade_cleanup(self.bb as *mut c_void);
        if rv != ffi::APR_SUCCESS as ffi::apr_status_t || (*(*self.r).connection).aborted != 0 {
            return Err(Gone);
        }
        Ok(())
    }
}

/// Copies validated text (every character <= U+00FF) into `pool` as latin-1
/// bytes, the encoding PEP 3333 gives native strings on the wire.
unsafe fn pool_latin1(pool: *mut ffi::apr_pool_t, text: &str) -> *mut c_char {
    if text.is_ascii() {
        return pstrdup(pool, text.as_bytes());
    }
    let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    pstrdup(pool, &bytes)
}

impl ResponseWriter for ApacheWriter {
    fn head(&mut self, (code, line): &(u16, String), headers: &[Header]) {
        // SAFETY: the request is live (see the Send impl).
        unsafe {
            let r = self.r;
            let pool = (*r).pool;
            if self.override_errors && (400..600).contains(code) {
                // Apache answers with its error document for this status.
                self.discarding = true;
                let text = pstrdup(pool, code.to_string().as_bytes());
                ffi::apr_table_setn((*r).notes, OVERRIDDEN.as_ptr(), text);
                return;
            }
            (*r).status = *code as _;
            (*r).status_line = pool_latin1(pool, line);
            // What mod_mime derived from the script's file name (`.py` is
            // text/x-python, `.gz` an encoding, `.en` a language) describes
            // the script, not the response: the response carries only what
            // the application set.
            (*r).content_type = ptr::null();
            (*r).content_encoding = ptr::null();
            (*r).content_languages = ptr::null_mut();
            // Daemon mode: repeated names are merged into one "a, b" header
            // (RFC 9110 §5.3), as ap_scan_script_header_err does for
            // mod_wsgi; Set-Cookie lines stay apart.
            let merge = if self.cgi_headers {
                ffi::apr_table_make(pool, headers.len() as c_int)
            } else {
                (*r).headers_out
            };
            let mut cookies = Vec::new();
            for (name, value, kind) in headers {
                let value = if self.cgi_headers {
                    value.trim_start_matches([' ', '\t'])
                } else {
                    value.as_str()
                };
                match kind {
                    HeaderKind::ContentType => {
                        ffi::ap_set_content_type(r, pool_latin1(pool, value));
                    }
                    // At most MAX_CONTENT_LENGTH (validated): fits apr_off_t.
                    HeaderKind::ContentLength(n) => ffi::ap_set_content_length(r, *n as _),
                    HeaderKind::Other => {
                        let k = pstrdup(pool, name.as_bytes());
                        let v = pool_latin1(pool, value);
                        if self.cgi_headers && name.eq_ignore_ascii_case("set-cookie") {
                            cookies.push((k, v));
                        } else {
                            ffi::apr_table_addn(merge, k, v);
                        }
                    }
                }
            }
            if self.cgi_headers {
                ffi::apr_table_overlap(
                    (*r).headers_out,
                    merge,
                    ffi::APR_OVERLAP_TABLES_MERGE as c_uint,
                );
                for (k, v) in cookies {
                    ffi::apr_table_addn((*r).headers_out, k, v);
                }
            }
        }
    }

    unsafe fn data(&mut self, data: &[u8]) {
        if self.discarding {
            return;
        }
        let b = ffi::apr_bucket_transient_create(
            data.as_ptr() as *const c_char,
            data.len() as _,
            (*self.bb).bucket_alloc,
        );
        ffi::rwsgi_brigade_insert_tail(self.bb, b);
    }

    fn file(&mut self, fd: i32, offset: u64, len: u64) -> bool {
        // WSGIEnableSendfile: without it Apache reads the file and writes
        // its bytes (mod_wsgi's default); with it the kernel's sendfile()
        // may send it, if Apache's EnableSendfile allows too.
        let sendfile = self.sendfile && self.core_sendfile();
        self.insert_file(fd, offset, len, sendfile)
    }

    fn send(&mut self, finish: Finish) -> Result<(), Gone> {
        // SAFETY: the request is live.
        unsafe {
            if !self.discarding {
                self.end(finish);
            }
            self.pass()
        }
    }

    fn set_aside(&mut self, finish: Finish) -> bool {
        // SAFETY: the request is live; transient buckets copy their bytes
        // into buckets of their own.
        unsafe {
            let pool = (*self.r).pool;
            let end = ffi::rwsgi_brigade_sentinel(self.bb);
            let mut b = ffi::rwsgi_brigade_first(self.bb);
            while b != end {
                let rv = ffi::rwsgi_bucket_setaside(b, pool);
                if rv != ffi::APR_SUCCESS as ffi::apr_status_t
                    && rv != ffi::APR_ENOTIMPL as ffi::apr_status_t
                {
                    return false;
                }
                b = ffi::rwsgi_bucket_next(b);
            }
            self.end(finish);
        }
        true
    }

    fn send_deferred(&mut self) -> Result<(), Gone> {
        // SAFETY: the request is live.
        unsafe { self.pass() }
    }

    fn abort(&mut self) {
        // As mod_wsgi: what was sent stays a complete response (the final
        // chunk follows with EOS), and the connection is not reused.
        self.close_connection();
    }

    fn close_connection(&mut self) {
        // SAFETY: the request is live.
        unsafe { (*(*self.r).connection).keepalive = ffi::ap_conn_keepalive_e_AP_CONN_CLOSE }
    }
}
