/*
 * util/must_use.h — the compiler refuses a fallible call whose result is dropped.
 *
 * Every function of store/ and worker/ that can fail carries MUST_USE: an error from
 * PostgreSQL or Redis that nobody looks at is a lost write or a wrong rank later. (GCC does
 * not take a (void) cast for looking: a caller handles the result or is changed.)
 */
#ifndef RANKD_UTIL_MUST_USE_H
#define RANKD_UTIL_MUST_USE_H

#define MUST_USE __attribute__((warn_unused_result))

#endif
