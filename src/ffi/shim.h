/* C shim: what bindgen cannot express (function-like macros of APR and
 * httpd), exposed as real functions. Every function here is a one-line
 * wrapper; all logic lives in Rust. */
#ifndef RWSGI_SHIM_H
#define RWSGI_SHIM_H
#include <httpd.h>
#include <http_log.h>
#include <apr_buckets.h>

/* ap_log_rerror/ap_log_error with a fixed "%s" format: `msg` is never a
 * format string. `module_index` gives the "[wsgi:level]" tag. */
void rwsgi_log_rerror(const char *file, int line, int module_index, int level,
                      apr_status_t status, const request_rec *r, const char *msg);
void rwsgi_log_error(const char *file, int line, int module_index, int level,
                     apr_status_t status, const server_rec *s, const char *msg);
/* APLOG_R_IS_LEVEL / APLOG_IS_LEVEL for the module. */
int rwsgi_log_r_is_level(const request_rec *r, int module_index, int level);
int rwsgi_log_s_is_level(const server_rec *s, int module_index, int level);

/* Bucket brigade ring macros. */
void rwsgi_brigade_insert_tail(apr_bucket_brigade *bb, apr_bucket *b);
int rwsgi_brigade_empty(apr_bucket_brigade *bb);
apr_bucket *rwsgi_brigade_first(apr_bucket_brigade *bb);
apr_bucket *rwsgi_brigade_sentinel(apr_bucket_brigade *bb);
apr_bucket *rwsgi_bucket_next(apr_bucket *b);
int rwsgi_bucket_is_eos(apr_bucket *b);
int rwsgi_bucket_is_metadata(apr_bucket *b);
apr_status_t rwsgi_bucket_read(apr_bucket *b, const char **str, apr_size_t *len,
                               apr_read_type_e block);
void rwsgi_bucket_delete(apr_bucket *b);
/* apr_bucket_setaside(b, p): transient data is copied to the heap. */
apr_status_t rwsgi_bucket_setaside(apr_bucket *b, apr_pool_t *p);

/* ap_http_scheme(r). */
const char *rwsgi_http_scheme(request_rec *r);

/* Whether Apache's EnableSendfile is On for r (its core_dir_config, from
 * the ap_get_core_module_config macro): 1 or 0. */
int rwsgi_enable_sendfile(request_rec *r);

#endif
