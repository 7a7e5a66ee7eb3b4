#pragma once

// cmocka for C++ tests. Include this header LAST in a test file: cmocka.h
// defines macros (fail, ...) that break standard headers included after it,
// so the ones tests use are included here first.
#include <fstream>
#include <ios>
#include <iostream>
#include <sstream>
#include <cstdio>
#include <string>

// cmocka needs these before its own header.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

// Not every declaration of cmocka 1.1 sits inside its own extern "C" block.
extern "C" {
#include <cmocka.h>
}

// Fails the current test with `what` unless `cond` holds. Unlike assert_true,
// the message says what was expected, so a failure in CI reads on its own.
// It is printed whole to stderr first: cmocka truncates long messages.
#define expect_that(cond, what)                                                      \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "expected %s (%s:%d)\n", std::string(what).c_str(), __FILE__, __LINE__); \
      fail_msg("expectation failed at %s:%d (see above)", __FILE__, __LINE__);      \
    }                                                                                \
  } while (0)

// Fails with the status text unless `st` is OK.
#define assert_status_ok(st)                                                    \
  do {                                                                          \
    const auto& st_ = (st);                                                     \
    if (!st_.ok()) fail_msg("unexpected error: %s", st_.ToString().c_str());   \
  } while (0)
