/* tests.h: the test tables, one per file. */
#ifndef COPSE_TESTS_H
#define COPSE_TESTS_H
#include "harness.h"
extern const t_case basic_cases[], error_cases[], recall_cases[], file_cases[], kernel_cases[],
    thread_cases[], alloc_cases[], io_cases[], checksum_cases[], filter_cases[], live_cases[],
    storage_cases[], big_cases[];
/* Routes the library's memory through test_alloc.c's failure-injecting allocator. */
int t_install_allocator(void);
#endif
