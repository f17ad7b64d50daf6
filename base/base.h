/*
 * base/base.h - what every module of ltibadges needs and no library gives.
 *
 * Every .c file of the project includes this header first. It pulls in the
 * system headers the project relies on, then our own small building blocks
 * (errors, bounded buffers, string views, the request arena, limits), and
 * finally banned.h, so that a banned function used anywhere after it is a
 * compile error.
 */
#ifndef BASE_BASE_H
#define BASE_BASE_H

#define _GNU_SOURCE 1

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/limits.h"
#include "base/err.h"
#include "base/alloc.h"
#include "base/str.h"
#include "base/buf.h"
#include "base/arena.h"
#include "base/form.h"
#include "base/util.h"
#include "base/banned.h"

#endif
