
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Secrets: provider keys and Redis passwords read from the configuration
 * (env:VAR, file:PATH or the text itself), by one reader.
 *
 * Provider keys stay out of the logs.  nginx's proxy module writes the
 * whole request it builds for an upstream to the debug log ("http proxy
 * header: ..."), and a provider call's request holds the provider's key.
 * For the gateway's own provider subrequests, the content handler of the
 * pass location (proxy_pass) runs with the connection's debug logging
 * switched off; it builds the upstream request synchronously inside that
 * call, so nothing else is silenced.  Errors and warnings still log.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


static ngx_int_t ngx_http_ai_secret_env(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_ai_secret_opts_t *o, ngx_str_t *out);
static ngx_int_t ngx_http_ai_secret_file(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_ai_secret_opts_t *o, ngx_str_t *out);
static ngx_int_t ngx_http_ai_secrets_precontent(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_secrets_content(ngx_http_request_t *r);


ngx_int_t
ngx_http_ai_secrets_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_secrets_precontent;

    return NGX_OK;
}


/* a provider call: its content handler is wrapped */

static ngx_int_t
ngx_http_ai_secrets_precontent(ngx_http_request_t *r)
{
    ngx_http_ai_attempt_t  *a;

    if (r == r->main) {
        return NGX_DECLINED;
    }

    a = ngx_http_get_module_ctx(r, ngx_ai_gateway_attempt_module);

    if (a == NULL || r->content_handler == NULL
        || r->content_handler == ngx_http_ai_secrets_content)
    {
        return NGX_DECLINED;
    }

    a->content_handler = r->content_handler;
    r->content_handler = ngx_http_ai_secrets_content;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_secrets_content(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_uint_t              level;
    ngx_log_t              *log;
    ngx_http_ai_attempt_t  *a;

    a = ngx_http_get_module_ctx(r, ngx_ai_gateway_attempt_module);
    log = r->connection->log;

    level = log->log_level;
    log->log_level &= ~NGX_LOG_DEBUG_ALL;

    rc = a->content_handler(r);

    log->log_level = level;

    return rc;
}


/*
 * A secret from the configuration: env:VAR, or file:PATH without its
 * trailing newline and blanks.  NGX_OK: *out holds it (empty for an unset
 * VAR when o->unset allows one, with a warning that ends with that text);
 * NGX_DECLINED: value is neither, the caller takes it as it is;
 * NGX_ERROR: refused, logged with o->what first.
 */

ngx_int_t
ngx_http_ai_secret_read(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_ai_secret_opts_t *o, ngx_str_t *out)
{
    if (value->len > 4 && ngx_strncmp(value->data, "env:", 4) == 0) {
        return ngx_http_ai_secret_env(cf, value, o, out);
    }

    if (value->len > 5 && ngx_strncmp(value->data, "file:", 5) == 0) {
        return ngx_http_ai_secret_file(cf, value, o, out);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_secret_env(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_ai_secret_opts_t *o, ngx_str_t *out)
{
    char       *env;
    ngx_str_t   name;

    name.len = value->len - 4;
    name.data = ngx_pnalloc(cf->pool, name.len + 1);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn(name.data, value->data + 4, name.len + 1);

    env = getenv((char *) name.data);

    if (env == NULL || *env == '\0') {
        ngx_conf_log_error(o->unset ? NGX_LOG_WARN : NGX_LOG_EMERG, cf, 0,
                           "%V: environment variable \"%V\" is not set%s",
                           &o->what, &name, o->unset ? o->unset : "");

        if (o->unset == NULL) {
            return NGX_ERROR;
        }

        ngx_str_null(out);
        return NGX_OK;
    }

    out->len = ngx_strlen(env);
    out->data = ngx_pnalloc(cf->pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, env, out->len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_secret_file(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_ai_secret_opts_t *o, ngx_str_t *out)
{
    u_char           *buf;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         name;
    ngx_file_info_t   fi;

    name.len = value->len - 5;
    name.data = value->data + 5;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "%V: cannot open %s\"%V\"", &o->what, o->file,
                           &name);
        return NGX_ERROR;
    }

    buf = ngx_pnalloc(cf->pool, o->max + 1);
    if (buf == NULL) {
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
         || ngx_file_size(&fi) > (off_t) o->max)
        ? -1 : ngx_read_fd(fd, buf, o->max + 1);

    (void) ngx_close_file(fd);

    if (n < 0 || (size_t) n > o->max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V: cannot read %s\"%V\" (or it is over %uz "
                           "bytes)", &o->what, o->file, &name, o->max);
        return NGX_ERROR;
    }

    /* the usual trailing newline of a key file is not part of it */

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'
                     || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
    {
        n--;
    }

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V: %s\"%V\" is empty",
                           &o->what, o->file, &name);
        return NGX_ERROR;
    }

    out->data = buf;
    out->len = n;

    return NGX_OK;
}
