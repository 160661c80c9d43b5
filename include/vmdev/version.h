/* SPDX-License-Identifier: MIT */
/*
 * The library's version: the macros say which release the headers a
 * program was compiled with belong to, vmdev_version() which library it
 * runs with. Until 1.0 a minor release may change the API.
 */
#ifndef VMDEV_VERSION_H
#define VMDEV_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_VERSION_MAJOR 0
#define VMDEV_VERSION_MINOR 1
#define VMDEV_VERSION_PATCH 0
#define VMDEV_VERSION "0.1.0"
/* One number that compares: 0.1.0 is 100, 1.2.3 is 10203. */
#define VMDEV_VERSION_NUMBER                                                  \
    (VMDEV_VERSION_MAJOR * 10000 + VMDEV_VERSION_MINOR * 100 +                \
     VMDEV_VERSION_PATCH)

/* The running library's version, "MAJOR.MINOR.PATCH". */
const char *vmdev_version(void);

#ifdef __cplusplus
}
#endif

#endif
