
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Runs every registered unit test; prints "N passed, N failed".
 */


#include "unit.h"
#include <stdarg.h>
#include <stdlib.h>


#define UNIT_MAX_TESTS  1024


typedef struct {
    const char    *name;
    unit_test_pt   fn;
} unit_entry_t;


static unit_entry_t  unit_tests[UNIT_MAX_TESTS];
static int           unit_ntests;
static int           unit_failed_now;
static ngx_pool_t   *unit_current_pool;


void
unit_register(const char *name, unit_test_pt fn)
{
    if (unit_ntests < UNIT_MAX_TESTS) {
        unit_tests[unit_ntests].name = name;
        unit_tests[unit_ntests].fn = fn;
        unit_ntests++;
    }
}


void
unit_fail(const char *file, int line, const char *fmt, ...)
{
    va_list  args;

    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fprintf(stderr, "\n");

    unit_failed_now = 1;
}


ngx_pool_t *
unit_pool(void)
{
    return unit_current_pool;
}


cJSON *
unit_json(ngx_str_t *s)
{
    cJSON  *j;

    j = ngx_ai_json_parse(unit_current_pool, s->data, s->len);
    if (j == NULL) {
        unit_fail(__FILE__, __LINE__, "not JSON: \"%.*s\"", (int) s->len,
                  s->data);
    }

    return j;
}


static int
unit_cmp(const void *a, const void *b)
{
    return strcmp(((unit_entry_t *) a)->name, ((unit_entry_t *) b)->name);
}


int
main(int argc, char **argv)
{
    int  i, passed, failed;

    passed = 0;
    failed = 0;

    /* cJSON's memory as inside nginx: pool blocks for pool trees */
    ngx_ai_json_init_allocator();

    qsort(unit_tests, unit_ntests, sizeof(unit_entry_t), unit_cmp);

    for (i = 0; i < unit_ntests; i++) {
        if (argc > 1 && strstr(unit_tests[i].name, argv[1]) == NULL) {
            continue;
        }

        unit_failed_now = 0;
        unit_current_pool = ngx_create_pool(4096, NULL);

        unit_tests[i].fn();

        ngx_destroy_pool(unit_current_pool);

        if (unit_failed_now) {
            printf("not ok - %s\n", unit_tests[i].name);
            failed++;

        } else {
            printf("ok - %s\n", unit_tests[i].name);
            passed++;
        }
    }

    printf("unit: %d passed, %d failed\n", passed, failed);

    return failed ? 1 : 0;
}
