/* See shim.h. */
#include "shim.h"
#include <ap_mmn.h>
#include <http_protocol.h>
#include <http_core.h>

void rwsgi_log_rerror(const char *file, int line, int module_index, int level,
                      apr_status_t status, const request_rec *r, const char *msg)
{
    ap_log_rerror_(file, line, module_index, level, status, r, "%s", msg);
}

void rwsgi_log_error(const char *file, int line, int module_index, int level,
                     apr_status_t status, const server_rec *s, const char *msg)
{
    ap_log_error_(file, line, module_index, level, status, s, "%s", msg);
}

int rwsgi_log_r_is_level(const request_rec *r, int module_index, int level)
{
    return APLOG_R_MODULE_IS_LEVEL(r, module_index, level);
}

int rwsgi_log_s_is_level(const server_rec *s, int module_index, int level)
{
    return APLOG_MODULE_IS_LEVEL(s, module_index, level);
}

void rwsgi_brigade_insert_tail(apr_bucket_brigade *bb, apr_bucket *b)
{
    APR_BRIGADE_INSERT_TAIL(bb, b);
}

int rwsgi_brigade_empty(apr_bucket_brigade *bb) { return APR_BRIGADE_EMPTY(bb); }
apr_bucket *rwsgi_brigade_first(apr_bucket_brigade *bb) { return APR_BRIGADE_FIRST(bb); }
apr_bucket *rwsgi_brigade_sentinel(apr_bucket_brigade *bb) { return APR_BRIGADE_SENTINEL(bb); }
apr_bucket *rwsgi_bucket_next(apr_bucket *b) { return APR_BUCKET_NEXT(b); }
int rwsgi_bucket_is_eos(apr_bucket *b) { return APR_BUCKET_IS_EOS(b); }
int rwsgi_bucket_is_metadata(apr_bucket *b) { return APR_BUCKET_IS_METADATA(b); }

apr_status_t rwsgi_bucket_read(apr_bucket *b, const char **str, apr_size_t *len,
                               apr_read_type_e block)
{
    return apr_bucket_read(b, str, len, block);
}

void rwsgi_bucket_delete(apr_bucket *b) { apr_bucket_delete(b); }
apr_status_t rwsgi_bucket_setaside(apr_bucket *b, apr_pool_t *p) { return apr_bucket_setaside(b, p); }

const char *rwsgi_http_scheme(request_rec *r) { return ap_http_scheme(r); }

int rwsgi_enable_sendfile(request_rec *r)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    return d->enable_sendfile == ENABLE_SENDFILE_ON;
}
