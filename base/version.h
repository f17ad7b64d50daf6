/*
 * base/version.h - the version of ltibadges, for --version, --help, serve's
 * startup line and /healthz.
 *
 * The build writes it (cmake/version.cmake) from CMake's project VERSION and,
 * in a git checkout, `git describe --always --dirty` as semver build
 * metadata: "0.1.0+2febae1", "0.1.0+v0.1.0-3-g2febae1-dirty"; from a tree
 * that is no git checkout, "0.1.0". One token, no spaces.
 */
#ifndef BASE_VERSION_H
#define BASE_VERSION_H

/* The version string, NUL-terminated, constant for the life of the program. */
extern const char base_version[];

#endif
