/*
** detfile.c - the file wrapper of the shim VFS, and disk-fault injection for
** tests (see doc.go, "Disk faults").
**
** Every file the shim opens is a dfile followed by the real "unix" file. The
** wrapper forwards every method; only xWrite, xTruncate and xSync first check
** the process-wide fault table. With no fault registered that check is one
** atomic load, so locking, WAL, shm and mmap behave exactly as "unix" does.
*/
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "detvfs.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

typedef struct dfile {
  sqlite3_file base;     /* must be first; pMethods = &m once open */
  sqlite3_io_methods m;  /* mirrors the real table: same iVersion, same NULLs */
  sqlite3_file *pReal;   /* the real file, in the tail of this allocation */
  const char *zPath;     /* NULL for temp files; SQLite keeps it valid until xClose */
} dfile;

/* The real file starts 8-aligned after the wrapper. */
#define DFILE_SZ ((int)((sizeof(dfile) + 7) & ~(size_t)7))

int detfile_size(sqlite3_vfs *pReal) { return DFILE_SZ + pReal->szOsFile; }

/* ------------------------------------------------------------- faults --- */

#define NFAULT 8
#define FAULT_PATHMAX 512 /* "unix" mxPathname: no longer path can match */

enum { OP_WRITE, OP_TRUNCATE, OP_SYNC };

/* The table is only touched under faultMu; nFault (the number of used slots)
** is also read without it, as the write path's whole cost when it is 0. */
static pthread_mutex_t faultMu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int kind; /* DETVFS_NOSPACE or DETVFS_IOERR; 0: free slot */
  int n;    /* strlen(z) */
  char z[FAULT_PATHMAX];
} aFault[NFAULT];
static int nFault;
static uint64_t nFaultHits;

/* Directory-prefix match: zDir covers zDir itself and paths below it, so
** ".../node1" does not cover ".../node10". */
static int covers(const char *zDir, int n, const char *zPath) {
  if (strncmp(zPath, zDir, (size_t)n) != 0) return 0;
  return zPath[n] == 0 || zPath[n] == '/' || (n > 0 && zDir[n - 1] == '/');
}

int detvfs_inject_fault(const char *zDir, int kind) {
  int i, n = (int)strlen(zDir), slot = -1, rc = SQLITE_OK;
  if (n == 0 || n >= FAULT_PATHMAX) return SQLITE_TOOBIG;
  pthread_mutex_lock(&faultMu);
  for (i = 0; i < NFAULT; i++) {
    if (aFault[i].kind != 0 && aFault[i].n == n && memcmp(aFault[i].z, zDir, n) == 0) {
      slot = i;
      break;
    }
    if (aFault[i].kind == 0 && slot < 0) slot = i;
  }
  if (slot >= 0 && aFault[slot].kind != 0) {
    /* existing entry: change or clear it */
    if (kind == 0) STORE(&nFault, nFault - 1);
    aFault[slot].kind = kind;
  } else if (kind == 0) {
    /* clearing a prefix that is not registered: nothing to do */
  } else if (slot < 0) {
    rc = SQLITE_FULL;
  } else {
    memcpy(aFault[slot].z, zDir, (size_t)n + 1);
    aFault[slot].n = n;
    aFault[slot].kind = kind;
    STORE(&nFault, nFault + 1);
  }
  pthread_mutex_unlock(&faultMu);
  return rc;
}

void detvfs_clear_faults(void) {
  int i;
  pthread_mutex_lock(&faultMu);
  for (i = 0; i < NFAULT; i++) aFault[i].kind = 0;
  STORE(&nFault, 0);
  pthread_mutex_unlock(&faultMu);
}

uint64_t detvfs_fault_hits(void) { return LOAD(&nFaultHits); }

/* Slow path: the longest registered prefix covering zPath wins. */
static int faultKind(const char *zPath) {
  int i, kind = 0, best = -1;
  pthread_mutex_lock(&faultMu);
  for (i = 0; i < NFAULT; i++) {
    if (aFault[i].kind != 0 && aFault[i].n > best && covers(aFault[i].z, aFault[i].n, zPath)) {
      kind = aFault[i].kind;
      best = aFault[i].n;
    }
  }
  pthread_mutex_unlock(&faultMu);
  return kind;
}

/* Returns the code the operation fails with, or SQLITE_OK to run it. The
** codes are those os_unix.c returns: unixWrite reports ENOSPC as SQLITE_FULL
** and other errors as SQLITE_IOERR_WRITE; unixSync and unixTruncate report
** any error as SQLITE_IOERR_FSYNC / SQLITE_IOERR_TRUNCATE. A full disk fails
** only writes (it never makes "unix" return SQLITE_FULL from a sync, and
** shrinking a file frees space), so NoSpace lets sync and truncate through.
** errno is set as the failed syscall would, for xGetLastError
** (sqlite3_system_errno, go-sqlite3's SystemErrno). */
static int injected(dfile *f, int op) {
  int kind, rc;
  if (LOAD(&nFault) == 0 || f->zPath == 0) return SQLITE_OK;
  kind = faultKind(f->zPath);
  if (kind == DETVFS_NOSPACE) {
    if (op != OP_WRITE) return SQLITE_OK;
    rc = SQLITE_FULL;
    errno = ENOSPC;
  } else if (kind == DETVFS_IOERR) {
    rc = op == OP_WRITE      ? SQLITE_IOERR_WRITE
         : op == OP_TRUNCATE ? SQLITE_IOERR_TRUNCATE
                             : SQLITE_IOERR_FSYNC;
    errno = EIO;
  } else {
    return SQLITE_OK;
  }
  __atomic_add_fetch(&nFaultHits, 1, __ATOMIC_RELAXED);
  sqlite3_log(rc, "detvfs: injected fault on %s", f->zPath);
  return rc;
}

/* --------------------------------------------------------- io methods --- */

#define RF(p) (((dfile *)(p))->pReal)
#define RM(p) (RF(p)->pMethods)

static int dxClose(sqlite3_file *p) { return RM(p)->xClose(RF(p)); }
static int dxRead(sqlite3_file *p, void *b, int n, sqlite3_int64 off) {
  return RM(p)->xRead(RF(p), b, n, off);
}
static int dxWrite(sqlite3_file *p, const void *b, int n, sqlite3_int64 off) {
  int rc = injected((dfile *)p, OP_WRITE);
  return rc ? rc : RM(p)->xWrite(RF(p), b, n, off);
}
static int dxTruncate(sqlite3_file *p, sqlite3_int64 size) {
  int rc = injected((dfile *)p, OP_TRUNCATE);
  return rc ? rc : RM(p)->xTruncate(RF(p), size);
}
static int dxSync(sqlite3_file *p, int flags) {
  int rc = injected((dfile *)p, OP_SYNC);
  return rc ? rc : RM(p)->xSync(RF(p), flags);
}
static int dxFileSize(sqlite3_file *p, sqlite3_int64 *pSize) {
  return RM(p)->xFileSize(RF(p), pSize);
}
static int dxLock(sqlite3_file *p, int e) { return RM(p)->xLock(RF(p), e); }
static int dxUnlock(sqlite3_file *p, int e) { return RM(p)->xUnlock(RF(p), e); }
static int dxCheckReservedLock(sqlite3_file *p, int *pOut) {
  return RM(p)->xCheckReservedLock(RF(p), pOut);
}
/* SQLITE_FCNTL_FILE_POINTER and _VFS_POINTER never get here (sqlite3_file_control
** answers them), so every op can be forwarded. */
static int dxFileControl(sqlite3_file *p, int op, void *pArg) {
  return RM(p)->xFileControl(RF(p), op, pArg);
}
static int dxSectorSize(sqlite3_file *p) { return RM(p)->xSectorSize(RF(p)); }
static int dxDeviceCharacteristics(sqlite3_file *p) {
  return RM(p)->xDeviceCharacteristics(RF(p));
}
/* Not faulted: "unix" opens the -shm file itself (not through xOpen), grows
** it in 32 KiB regions only as the WAL grows, and it is a rebuildable index.
** Writers map regions with bExtend=1 whether or not that grows the file, so
** failing xShmMap would fail writes that allocate nothing. */
static int dxShmMap(sqlite3_file *p, int iPg, int pgsz, int bExtend, void volatile **pp) {
  return RM(p)->xShmMap(RF(p), iPg, pgsz, bExtend, pp);
}
static int dxShmLock(sqlite3_file *p, int off, int n, int flags) {
  return RM(p)->xShmLock(RF(p), off, n, flags);
}
static void dxShmBarrier(sqlite3_file *p) { RM(p)->xShmBarrier(RF(p)); }
static int dxShmUnmap(sqlite3_file *p, int del) { return RM(p)->xShmUnmap(RF(p), del); }
static int dxFetch(sqlite3_file *p, sqlite3_int64 off, int n, void **pp) {
  return RM(p)->xFetch(RF(p), off, n, pp);
}
static int dxUnfetch(sqlite3_file *p, sqlite3_int64 off, void *pPage) {
  return RM(p)->xUnfetch(RF(p), off, pPage);
}

/* Copies r's shape into m: SQLite decides WAL support (xShmMap != NULL) and
** mmap use (iVersion >= 3) from the table, so ours must match it exactly. */
static void mirror(sqlite3_io_methods *m, const sqlite3_io_methods *r) {
#define F(x) m->x = r->x ? d##x : 0
  memset(m, 0, sizeof *m);
  m->iVersion = r->iVersion;
  F(xClose);
  F(xRead);
  F(xWrite);
  F(xTruncate);
  F(xSync);
  F(xFileSize);
  F(xLock);
  F(xUnlock);
  F(xCheckReservedLock);
  F(xFileControl);
  F(xSectorSize);
  F(xDeviceCharacteristics);
  if (r->iVersion >= 2) {
    F(xShmMap);
    F(xShmLock);
    F(xShmBarrier);
    F(xShmUnmap);
  }
  if (r->iVersion >= 3) {
    F(xFetch);
    F(xUnfetch);
  }
#undef F
}

/* pFile has detfile_size(pReal) bytes. pReal is passed to its own xOpen
** because unixOpen reads pVfs->pAppData. */
int detfile_open(sqlite3_vfs *pReal, sqlite3_filename zName, sqlite3_file *pFile, int flags,
                 int *pOutFlags) {
  dfile *f = (dfile *)pFile;
  sqlite3_file *pRealFile = (sqlite3_file *)((char *)pFile + DFILE_SZ);
  int rc;
  memset(f, 0, sizeof *f);
  pRealFile->pMethods = 0;
  f->pReal = pRealFile;
  f->zPath = zName;
  rc = pReal->xOpen(pReal, zName, pRealFile, flags, pOutFlags);
  /* (unix never reports success without methods; such a file is unusable) */
  if (pRealFile->pMethods == 0) return rc == SQLITE_OK ? SQLITE_CANTOPEN : rc;
  if (rc != SQLITE_OK) {
    /* SQLite would call our xClose only if we set pMethods; it must stay
    ** NULL on failure, so close the real file here. */
    pRealFile->pMethods->xClose(pRealFile);
    return rc;
  }
  mirror(&f->m, pRealFile->pMethods);
  f->base.pMethods = &f->m;
  return SQLITE_OK;
}

/* ------------------------------------------------------------ testing --- */

/* Opens zPath (created if missing) through the shim (!) named zVfs as a main db,
** runs xWrite, xSync and xTruncate on it and stores their codes in aRc[0..2];
** aRc[3] is 1 if the wrapper's table mirrors the real one. Returns xOpen's
** code; if that fails, aRc[3] is 1 if pMethods was left NULL. */
int detvfs_probe(const char *zVfs, const char *zPath, int flags, int aRc[4]) {
  sqlite3_vfs *pVfs = sqlite3_vfs_find(zVfs);
  sqlite3_filename zName;
  sqlite3_file *pFile;
  static const char block[512];
  int rc;
  memset(aRc, 0, 4 * sizeof aRc[0]);
  if (pVfs == 0) return SQLITE_ERROR;
  zName = sqlite3_create_filename(zPath, "", "", 0, 0);
  pFile = sqlite3_malloc(pVfs->szOsFile);
  if (zName == 0 || pFile == 0) {
    sqlite3_free_filename(zName);
    sqlite3_free(pFile);
    return SQLITE_NOMEM;
  }
  memset(pFile, 0xAB, pVfs->szOsFile); /* catch a pMethods left unset */
  rc = pVfs->xOpen(pVfs, zName, pFile, flags | SQLITE_OPEN_MAIN_DB, 0);
  if (rc != SQLITE_OK) {
    aRc[3] = pFile->pMethods == 0;
  } else {
    dfile *f = (dfile *)pFile;
    const sqlite3_io_methods *r = f->pReal->pMethods;
    aRc[0] = pFile->pMethods->xWrite(pFile, block, (int)sizeof block, 0);
    aRc[1] = pFile->pMethods->xSync(pFile, SQLITE_SYNC_NORMAL);
    aRc[2] = pFile->pMethods->xTruncate(pFile, 0);
    aRc[3] = pFile->pMethods == &f->m && f->m.iVersion == r->iVersion &&
             (f->m.iVersion < 2 || (!f->m.xShmMap == !r->xShmMap)) &&
             (f->m.iVersion < 3 || (!f->m.xFetch == !r->xFetch));
    pFile->pMethods->xClose(pFile);
  }
  sqlite3_free(pFile);
  sqlite3_free_filename(zName);
  return rc;
}
