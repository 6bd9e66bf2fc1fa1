
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * A minimal unit test framework: UNIT_TEST(name) { ... } registers itself;
 * each test gets a fresh pool from unit_pool(), destroyed after it.
 */


#ifndef _UNIT_H_INCLUDED_
#define _UNIT_H_INCLUDED_


#define _GNU_SOURCE
#include <ngx_config.h>
#include <ngx_core.h>
#include <stdio.h>
#include <string.h>
#include "ngx_ai_gateway_pure.h"


typedef void (*unit_test_pt)(void);

void unit_register(const char *name, unit_test_pt fn);
void unit_fail(const char *file, int line, const char *fmt, ...);
ngx_pool_t *unit_pool(void);
cJSON *unit_json(ngx_str_t *s);     /* parse or fail; freed with the pool */


#define UNIT_TEST(name)                                                      \
    static void name(void);                                                  \
    __attribute__((constructor)) static void name##_register(void)          \
    {                                                                        \
        unit_register(#name, name);                                          \
    }                                                                        \
    static void name(void)

#define UNIT_CHECK(cond)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            unit_fail(__FILE__, __LINE__, "check failed: %s", #cond);        \
        }                                                                    \
    } while (0)

#define UNIT_EQ_INT(a, b)                                                    \
    do {                                                                     \
        long long  unit_a_ = (long long) (a), unit_b_ = (long long) (b);     \
        if (unit_a_ != unit_b_) {                                            \
            unit_fail(__FILE__, __LINE__, "%s == %lld, expected %lld",       \
                      #a, unit_a_, unit_b_);                                 \
        }                                                                    \
    } while (0)

/* an ngx_str_t (or ngx_ai_buf_t data/len) equal to a C string */
#define UNIT_EQ_STR(s, lit)                                                  \
    do {                                                                     \
        const char  *unit_l_ = (lit);                                        \
        if ((s).len != strlen(unit_l_)                                       \
            || memcmp((s).data, unit_l_, (s).len) != 0)                      \
        {                                                                    \
            unit_fail(__FILE__, __LINE__, "%s == \"%.*s\", expected \"%s\"", \
                      #s, (int) (s).len, (s).data, unit_l_);                 \
        }                                                                    \
    } while (0)

/* a substring of an ngx_str_t */
#define UNIT_CONTAINS(s, lit)                                                \
    do {                                                                     \
        const char  *unit_l_ = (lit);                                        \
        if (memmem((s).data, (s).len, unit_l_, strlen(unit_l_)) == NULL) {   \
            unit_fail(__FILE__, __LINE__, "%s lacks \"%s\": \"%.*s\"",       \
                      #s, unit_l_, (int) (s).len, (s).data);                 \
        }                                                                    \
    } while (0)


#endif /* _UNIT_H_INCLUDED_ */
