/*
 * tests/fuzz/fuzz.h - what the libFuzzer targets of tests/fuzz share.
 *
 * Each target runs millions of inputs in one process, so it keeps no state
 * from one input to the next (everything it allocates is freed before it
 * returns, LeakSanitizer checks) and draws nothing at random: the same input
 * always takes the same path. A broken promise of the code under test (an
 * output its header says is valid, and is not) is a crash too: FUZZ_CHECK
 * prints what failed and aborts, so libFuzzer saves the input.
 */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
 do {                                                                                              \
  if (!(cond)) {                                                                                   \
   fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                   \
   abort();                                                                                        \
  }                                                                                                \
 } while (0)

#endif
