/*
** detvfs.h - C side of package detvfs (see doc.go).
**
** The sqlite3_* symbols are not defined here: they come from go-sqlite3's
** amalgamation at final (external) link time. sqlite3-binding.h is a verbatim
** copy of go-sqlite3's public header (checked by TestHeaderMatchesModule).
*/
#ifndef RSQLITE_DETVFS_H
#define RSQLITE_DETVFS_H

#include <stdint.h>
#include "sqlite3-binding.h"

typedef struct detvfs detvfs;

/* Process-wide, idempotent. */
int detvfs_install_autoext(void);
int detvfs_pin_localtime(void);

/* Allocates and registers (never as default) a shim named zName over "unix".
** On failure returns NULL and stores an SQLite result code in *pRc. */
detvfs *detvfs_new(const char *zName, int *pRc);
/* Unregisters and frees. Returns SQLITE_BUSY (and does nothing) while a
** connection opened with the shim is still open. */
int detvfs_close(detvfs *d);

void detvfs_set(detvfs *d, int64_t unixMilli, uint64_t seed);
void detvfs_clear(detvfs *d);
int detvfs_reset_conn(detvfs *d);
void detvfs_set_guard(detvfs *d, int on);
const char *detvfs_last_denied(detvfs *d);
int detvfs_nconn(detvfs *d);

void detvfs_set_trusted(detvfs *d, int on);

/* detfile.c: the file wrapper and process-wide disk-fault injection. */
#define DETVFS_NOSPACE 1
#define DETVFS_IOERR 2
int detfile_size(sqlite3_vfs *pReal);
int detfile_open(sqlite3_vfs *pReal, sqlite3_filename zName, sqlite3_file *pFile, int flags,
                 int *pOutFlags);
/* kind 0 clears zDir. SQLITE_FULL: table full; SQLITE_TOOBIG: bad length. */
int detvfs_inject_fault(const char *zDir, int kind);
void detvfs_clear_faults(void);
uint64_t detvfs_fault_hits(void);
int detvfs_probe(const char *zVfs, const char *zPath, int flags, int aRc[4]);

#endif /* RSQLITE_DETVFS_H */
