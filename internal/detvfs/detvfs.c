/*
** detvfs.c - deterministic shim VFS, random()/randomblob() overrides and the
** replication authorizer for rsqlite's applying connection. See doc.go.
**
** Concurrency: fields of struct detvfs that SQLite reads while running a
** statement are accessed with __atomic builtins, so a misuse (two connections
** on one shim) is at worst nondeterministic, never a C data race. The intended
** use is one connection, driven by one goroutine that calls Set/Clear/SetGuard
** between statements.
*/
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "detvfs.h"

/* Julian-day milliseconds of 1970-01-01 00:00:00 UTC (SQLite's constant). */
#define UNIX_EPOCH_JDMS ((int64_t)210866760000000LL)
/* splitmix64 increment (golden ratio). */
#define GAMMA ((uint64_t)0x9E3779B97F4A7C15ULL)
#define CLIENTDATA_KEY "rsqlite-detvfs"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

struct detvfs {
  sqlite3_vfs base;    /* must be first: SQLite sees a detvfs* as sqlite3_vfs* */
  sqlite3_vfs *pReal;  /* the "unix" VFS everything is forwarded to */
  int64_t jdMs;        /* stamped time in julian-day ms; <0: use the real clock */
  uint64_t seed;       /* PRNG seed (valid while seeded!=0) */
  uint64_t ctr;        /* number of 64-bit words drawn since the last Set */
  int seeded;          /* 0: fall back to sqlite3_randomness */
  int guard;           /* authorizer denies when nonzero */
  int dirty;           /* guard off allowed something it would deny */
  int trusted;         /* owner never runs guard-off statements with the guard on */
  int nConn;           /* open connections using this shim */
  sqlite3 *db;         /* most recently opened connection, NULL once closed */
  char zDenied[128];   /* reason for the last denial */
  char zTrig[64];      /* name from the last CREATE TRIGGER judged (guard on) */
  char zName[64];      /* registered VFS name (base.zName points here) */
};

/* Per-connection record, attached with sqlite3_set_clientdata so that the
** close of the connection is observed (its destructor runs in sqlite3_close). */
typedef struct detconn {
  detvfs *d;
  sqlite3 *db;
} detconn;

/* ---------------------------------------------------------------- VFS ---- */

#define REAL(p) (((detvfs *)(p))->pReal)

/* Files are wrapped only so tests can inject disk faults (detfile.c); with
** none registered the wrapper just forwards to the real file. */
static int dOpen(sqlite3_vfs *p, sqlite3_filename zName, sqlite3_file *pFile,
                 int flags, int *pOutFlags) {
  return detfile_open(REAL(p), zName, pFile, flags, pOutFlags);
}
static int dDelete(sqlite3_vfs *p, const char *z, int syncDir) {
  return REAL(p)->xDelete(REAL(p), z, syncDir);
}
static int dAccess(sqlite3_vfs *p, const char *z, int flags, int *pResOut) {
  return REAL(p)->xAccess(REAL(p), z, flags, pResOut);
}
static int dFullPathname(sqlite3_vfs *p, const char *z, int nOut, char *zOut) {
  return REAL(p)->xFullPathname(REAL(p), z, nOut, zOut);
}
static void *dDlOpen(sqlite3_vfs *p, const char *z) {
  return REAL(p)->xDlOpen(REAL(p), z);
}
static void dDlError(sqlite3_vfs *p, int n, char *zErr) {
  REAL(p)->xDlError(REAL(p), n, zErr);
}
static void (*dDlSym(sqlite3_vfs *p, void *h, const char *z))(void) {
  return REAL(p)->xDlSym(REAL(p), h, z);
}
static void dDlClose(sqlite3_vfs *p, void *h) { REAL(p)->xDlClose(REAL(p), h); }
static int dRandomness(sqlite3_vfs *p, int n, char *zOut) {
  return REAL(p)->xRandomness(REAL(p), n, zOut);
}
static int dSleep(sqlite3_vfs *p, int us) { return REAL(p)->xSleep(REAL(p), us); }
static int dGetLastError(sqlite3_vfs *p, int n, char *z) {
  return REAL(p)->xGetLastError ? REAL(p)->xGetLastError(REAL(p), n, z) : 0;
}
static int dSetSystemCall(sqlite3_vfs *p, const char *z, sqlite3_syscall_ptr f) {
  return REAL(p)->xSetSystemCall(REAL(p), z, f);
}
static sqlite3_syscall_ptr dGetSystemCall(sqlite3_vfs *p, const char *z) {
  return REAL(p)->xGetSystemCall(REAL(p), z);
}
static const char *dNextSystemCall(sqlite3_vfs *p, const char *z) {
  return REAL(p)->xNextSystemCall(REAL(p), z);
}

static int realNow(sqlite3_vfs *r, sqlite3_int64 *pOut) {
  double t = 0;
  int rc;
  if (r->iVersion >= 2 && r->xCurrentTimeInt64) return r->xCurrentTimeInt64(r, pOut);
  rc = r->xCurrentTime(r, &t);
  *pOut = (sqlite3_int64)(t * 86400000.0);
  return rc;
}

/* SQLite reads the clock through db->pVfs once per sqlite3_step (cached in
** the Vdbe), for 'now', CURRENT_*, DEFAULTs and triggers alike. */
static int dCurrentTimeInt64(sqlite3_vfs *p, sqlite3_int64 *pOut) {
  int64_t jd = LOAD(&((detvfs *)p)->jdMs);
  if (jd >= 0) {
    *pOut = jd;
    return SQLITE_OK;
  }
  return realNow(REAL(p), pOut);
}
static int dCurrentTime(sqlite3_vfs *p, double *pOut) {
  sqlite3_int64 t = 0;
  int rc = dCurrentTimeInt64(p, &t);
  *pOut = (double)t / 86400000.0;
  return rc;
}

detvfs *detvfs_new(const char *zName, int *pRc) {
  sqlite3_vfs *pReal;
  detvfs *d;
  int rc = sqlite3_initialize();
  if (rc != SQLITE_OK) {
    *pRc = rc;
    return 0;
  }
  pReal = sqlite3_vfs_find("unix");
  if (pReal == 0 || strlen(zName) >= sizeof d->zName) {
    *pRc = SQLITE_ERROR;
    return 0;
  }
  d = sqlite3_malloc(sizeof *d);
  if (d == 0) {
    *pRc = SQLITE_NOMEM;
    return 0;
  }
  memset(d, 0, sizeof *d);
  strcpy(d->zName, zName);
  d->pReal = pReal;
  d->jdMs = -1;
  d->base.iVersion = 3;
  d->base.szOsFile = detfile_size(pReal);
  d->base.mxPathname = pReal->mxPathname;
  d->base.zName = d->zName;
  d->base.pAppData = 0;
  d->base.xOpen = dOpen;
  d->base.xDelete = dDelete;
  d->base.xAccess = dAccess;
  d->base.xFullPathname = dFullPathname;
  d->base.xDlOpen = pReal->xDlOpen ? dDlOpen : 0;
  d->base.xDlError = pReal->xDlError ? dDlError : 0;
  d->base.xDlSym = pReal->xDlSym ? dDlSym : 0;
  d->base.xDlClose = pReal->xDlClose ? dDlClose : 0;
  d->base.xRandomness = dRandomness;
  d->base.xSleep = dSleep;
  d->base.xCurrentTime = dCurrentTime;
  d->base.xGetLastError = dGetLastError;
  d->base.xCurrentTimeInt64 = dCurrentTimeInt64;
  if (pReal->iVersion >= 3 && pReal->xSetSystemCall) {
    d->base.xSetSystemCall = dSetSystemCall;
    d->base.xGetSystemCall = dGetSystemCall;
    d->base.xNextSystemCall = dNextSystemCall;
  }
  rc = sqlite3_vfs_register(&d->base, 0);
  if (rc != SQLITE_OK) {
    sqlite3_free(d);
    *pRc = rc;
    return 0;
  }
  *pRc = SQLITE_OK;
  return d;
}

int detvfs_close(detvfs *d) {
  if (LOAD(&d->nConn) > 0) return SQLITE_BUSY;
  sqlite3_vfs_unregister(&d->base);
  sqlite3_free(d);
  return SQLITE_OK;
}

int detvfs_nconn(detvfs *d) { return LOAD(&d->nConn); }

void detvfs_set(detvfs *d, int64_t unixMilli, uint64_t seed) {
  int64_t jd;
  if (unixMilli <= -UNIX_EPOCH_JDMS) {
    jd = 0; /* before julian day 0: clamp (SQLite rejects such dates anyway) */
  } else if (unixMilli > INT64_MAX - UNIX_EPOCH_JDMS) {
    jd = INT64_MAX;
  } else {
    jd = unixMilli + UNIX_EPOCH_JDMS;
  }
  STORE(&d->seeded, 0);
  STORE(&d->seed, seed);
  STORE(&d->ctr, (uint64_t)0);
  STORE(&d->seeded, 1);
  STORE(&d->jdMs, jd);
}

void detvfs_clear(detvfs *d) {
  STORE(&d->seeded, 0);
  STORE(&d->jdMs, (int64_t)-1);
}

/* ---------------------------------------------------------------- PRNG --- */

/* Word i (0-based) after Set(seed) is splitmix64's output number i+1 from
** state seed, i.e. mix(seed + (i+1)*GAMMA). Counter-based: draws depend only
** on (seed, number of earlier draws), never on timing or other connections. */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * (uint64_t)0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * (uint64_t)0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* Reserves n consecutive counter values and returns the first. */
static uint64_t reserve(detvfs *d, uint64_t n) {
  return __atomic_fetch_add(&d->ctr, n, __ATOMIC_RELAXED);
}

static void randomFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  detvfs *d = (detvfs *)sqlite3_user_data(ctx);
  sqlite3_int64 r;
  (void)argc;
  (void)argv;
  if (LOAD(&d->seeded)) {
    uint64_t seed = LOAD(&d->seed);
    r = (sqlite3_int64)mix64(seed + (reserve(d, 1) + 1) * GAMMA);
  } else {
    sqlite3_randomness(sizeof r, &r);
  }
  /* As SQLite's randomFunc: never return INT64_MIN (abs() would fail). */
  if (r < 0) r = -(r & INT64_MAX);
  sqlite3_result_int64(ctx, r);
}

static void randomblobFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  detvfs *d = (detvfs *)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_int64 n = sqlite3_value_int64(argv[0]);
  unsigned char *p;
  (void)argc;
  if (n < 1) n = 1;
  if (n > sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1)) {
    sqlite3_result_error_toobig(ctx);
    return;
  }
  p = sqlite3_malloc64((sqlite3_uint64)n);
  if (p == 0) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (LOAD(&d->seeded)) {
    uint64_t seed = LOAD(&d->seed);
    uint64_t nw = ((uint64_t)n + 7) / 8;
    uint64_t i = reserve(d, nw);
    sqlite3_int64 k = 0;
    for (; nw > 0; nw--, i++) {
      /* little-endian bytes of each word; the last word is truncated */
      uint64_t x = mix64(seed + (i + 1) * GAMMA);
      int b;
      for (b = 0; b < 8 && k < n; b++, k++) {
        p[k] = (unsigned char)x;
        x >>= 8;
      }
    }
  } else {
    sqlite3_randomness((int)n, p);
  }
  sqlite3_result_blob64(ctx, p, (sqlite3_uint64)n, sqlite3_free);
}

/* ---------------------------------------------------------- authorizer --- */

static const char *const azPragmaOK[] = {
    "user_version",   "application_id",    "table_info",      "table_xinfo",
    "table_list",     "index_list",        "index_info",      "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
    "collation_list", "function_list",     "pragma_list",     "module_list",
    "database_list",  "compile_options",   "freelist_count",  "page_count",
    "data_version",
};

static int isBookkeeping(const char *z) {
  return z != 0 && sqlite3_strnicmp(z, "_rsqlite_", 9) == 0;
}

#define WHY(...) \
  do { \
    if (zWhy) sqlite3_snprintf(nWhy, zWhy, __VA_ARGS__); \
  } while (0)

/* "CREATE TABLE temp.x" and "CREATE VIEW temp.x" are reported with the
** non-TEMP action code and database "temp" in arg3; fold such actions (and
** their DROP/INDEX/TRIGGER/VTABLE relatives) into the TEMP codes. */
static int tempCode(int op, const char *zDb) {
  if (zDb == 0 || sqlite3_stricmp(zDb, "temp") != 0) return op;
  switch (op) {
    case SQLITE_CREATE_INDEX: return SQLITE_CREATE_TEMP_INDEX;
    case SQLITE_CREATE_TABLE: return SQLITE_CREATE_TEMP_TABLE;
    case SQLITE_CREATE_TRIGGER: return SQLITE_CREATE_TEMP_TRIGGER;
    case SQLITE_CREATE_VIEW: return SQLITE_CREATE_TEMP_VIEW;
    case SQLITE_DROP_INDEX: return SQLITE_DROP_TEMP_INDEX;
    case SQLITE_DROP_TABLE: return SQLITE_DROP_TEMP_TABLE;
    case SQLITE_DROP_TRIGGER: return SQLITE_DROP_TEMP_TRIGGER;
    case SQLITE_DROP_VIEW: return SQLITE_DROP_TEMP_VIEW;
    case SQLITE_CREATE_VTABLE: return -SQLITE_CREATE_VTABLE;
    case SQLITE_DROP_VTABLE: return -SQLITE_DROP_VTABLE;
  }
  return op;
}

/* Returns 1 if the guard denies (op, a1, a2, a3), writing a reason to zWhy
** (when not NULL). Argument meanings per action code: see sqlite3.h. */
static int judge(detvfs *d, int op, const char *a1, const char *a2, const char *a3,
                 char *zWhy, int nWhy) {
  const char *z = 0; /* bookkeeping-name candidate(s) for write actions */
  const char *z2 = 0;
  size_t i;
  if (a1 == 0) a1 = "";
  switch (tempCode(op, a3)) {
    case -SQLITE_CREATE_VTABLE: WHY("CREATE TEMP VIRTUAL TABLE %s", a1); return 1;
    case -SQLITE_DROP_VTABLE: WHY("DROP TEMP VIRTUAL TABLE %s", a1); return 1;
    case SQLITE_ATTACH: WHY("ATTACH"); return 1;
    case SQLITE_DETACH: WHY("DETACH"); return 1;
    case SQLITE_TRANSACTION: WHY("%s", a1); return 1; /* BEGIN/COMMIT/ROLLBACK */
    case SQLITE_SAVEPOINT:
      if (sqlite3_stricmp(a1, "BEGIN") == 0) {
        WHY("SAVEPOINT %s", a2 ? a2 : "");
      } else if (sqlite3_stricmp(a1, "ROLLBACK") == 0) {
        WHY("ROLLBACK TO %s", a2 ? a2 : "");
      } else {
        WHY("%s %s", a1, a2 ? a2 : ""); /* RELEASE name */
      }
      return 1;
    case SQLITE_CREATE_TEMP_INDEX: WHY("CREATE TEMP INDEX %s", a1); return 1;
    case SQLITE_CREATE_TEMP_TABLE: WHY("CREATE TEMP TABLE %s", a1); return 1;
    case SQLITE_CREATE_TEMP_TRIGGER: WHY("CREATE TEMP TRIGGER %s", a1); return 1;
    case SQLITE_CREATE_TEMP_VIEW: WHY("CREATE TEMP VIEW %s", a1); return 1;
    case SQLITE_DROP_TEMP_INDEX: WHY("DROP TEMP INDEX %s", a1); return 1;
    case SQLITE_DROP_TEMP_TABLE: WHY("DROP TEMP TABLE %s", a1); return 1;
    case SQLITE_DROP_TEMP_TRIGGER: WHY("DROP TEMP TRIGGER %s", a1); return 1;
    case SQLITE_DROP_TEMP_VIEW: WHY("DROP TEMP VIEW %s", a1); return 1;
    case SQLITE_FUNCTION:
      if (a2 && (sqlite3_stricmp(a2, "load_extension") == 0 ||
                 sqlite3_stricmp(a2, "total_changes") == 0)) {
        WHY("FUNCTION %s", a2);
        return 1;
      }
      return 0;
    case SQLITE_PRAGMA:
      for (i = 0; i < sizeof azPragmaOK / sizeof azPragmaOK[0]; i++) {
        if (sqlite3_stricmp(a1, azPragmaOK[i]) == 0) return 0;
      }
      if (a2 == 0 && sqlite3_stricmp(a1, "page_size") == 0) return 0;
      WHY("PRAGMA %s", a1);
      return 1;
    /* writes: arg1 is the table name */
    case SQLITE_INSERT:
      /* "CREATE TRIGGER temp.x ... ON main_table" is authorized as a plain
      ** CREATE_TRIGGER on "main"; only the nested INSERT into the temp schema
      ** table that follows shows where it goes. (ALTER TABLE RENAME also
      ** updates sqlite_temp_schema: that UPDATE stays allowed.) */
      if (sqlite3_stricmp(a1, "sqlite_temp_master") == 0 ||
          sqlite3_stricmp(a1, "sqlite_temp_schema") == 0) {
        if (zWhy && d->zTrig[0]) {
          WHY("CREATE TEMP TRIGGER %s", d->zTrig);
          d->zTrig[0] = 0;
        } else {
          WHY("CREATE TEMP object");
        }
        return 1;
      }
      z = a1;
      break;
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
    case SQLITE_CREATE_TABLE:
    case SQLITE_DROP_TABLE:
    /* also guard the names of views and virtual tables */
    case SQLITE_CREATE_VIEW:
    case SQLITE_DROP_VIEW:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE: z = a1; break;
    /* arg1 is the database name, arg2 the table */
    case SQLITE_ALTER_TABLE: z = a2; break;
    /* arg1 is the index/trigger name, arg2 the table: check both */
    case SQLITE_CREATE_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TRIGGER:
      if (zWhy) sqlite3_snprintf((int)sizeof d->zTrig, d->zTrig, "%s", a1);
      /* fall through */
    case SQLITE_DROP_TRIGGER: z = a2; z2 = a1; break;
    default: return 0;
  }
  if (isBookkeeping(z)) {
    WHY("write to %s", z);
    return 1;
  }
  if (isBookkeeping(z2)) {
    WHY("write to %s", z2);
    return 1;
  }
  return 0;
}

static int detvfs_auth(void *pArg, int op, const char *a1, const char *a2,
                       const char *a3, const char *a4) {
  detvfs *d = (detvfs *)pArg;
  (void)a4;
  if (__atomic_load_n(&d->guard, __ATOMIC_RELAXED)) {
    return judge(d, op, a1, a2, a3, d->zDenied, (int)sizeof d->zDenied) ? SQLITE_DENY
                                                                      : SQLITE_OK;
  }
  /* Guard off: allow, but remember that a statement the guard would deny may
  ** now sit prepared (e.g. in go-sqlite3's statement cache), so the next
  ** SetGuard(true) must expire prepared statements. */
  if (!__atomic_load_n(&d->trusted, __ATOMIC_RELAXED) &&
      !__atomic_load_n(&d->dirty, __ATOMIC_RELAXED) && judge(d, op, a1, a2, a3, 0, 0)) {
    __atomic_store_n(&d->dirty, 1, __ATOMIC_RELAXED);
  }
  return SQLITE_OK;
}

void detvfs_set_guard(detvfs *d, int on) {
  if (!on) {
    STORE(&d->guard, 0);
    return;
  }
  d->zDenied[0] = 0;
  d->zTrig[0] = 0;
  STORE(&d->guard, 1);
  if (LOAD(&d->dirty)) {
    sqlite3 *db = LOAD(&d->db);
    /* Re-installing the authorizer expires every prepared statement; each
    ** is re-prepared (and so re-authorized, now with the guard on) before
    ** its next run. */
    if (db) sqlite3_set_authorizer(db, detvfs_auth, d);
    STORE(&d->dirty, 0);
  }
}

const char *detvfs_last_denied(detvfs *d) { return d->zDenied; }

void detvfs_set_trusted(detvfs *d, int on) { STORE(&d->trusted, on); }

int detvfs_reset_conn(detvfs *d) {
  sqlite3 *db = LOAD(&d->db);
  if (db == 0) return 0;
  sqlite3_set_last_insert_rowid(db, 0);
  return 1;
}

/* ------------------------------------------------------- auto-extension --- */

static void connGone(void *p) {
  detconn *c = (detconn *)p;
  sqlite3 *expect = c->db;
  __atomic_compare_exchange_n(&c->d->db, &expect, (sqlite3 *)0, 0, __ATOMIC_ACQ_REL,
                              __ATOMIC_ACQUIRE);
  __atomic_sub_fetch(&c->d->nConn, 1, __ATOMIC_ACQ_REL);
  sqlite3_free(c);
}

/* Runs inside every sqlite3_open_v2 in the process; acts only on
** connections whose main database uses one of our shims. */
static int detvfs_autoext(sqlite3 *db, char **pzErr, const sqlite3_api_routines *pApi) {
  sqlite3_vfs *pVfs = 0;
  detvfs *d;
  detconn *c;
  const int flags = SQLITE_UTF8 | SQLITE_INNOCUOUS; /* not DETERMINISTIC */
  int rc;
  (void)pApi;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &pVfs) != SQLITE_OK ||
      pVfs == 0 || pVfs->xOpen != dOpen) {
    return SQLITE_OK;
  }
  d = (detvfs *)pVfs;
  c = sqlite3_malloc(sizeof *c);
  if (c == 0) return SQLITE_NOMEM;
  c->d = d;
  c->db = db;
  __atomic_add_fetch(&d->nConn, 1, __ATOMIC_ACQ_REL);
  STORE(&d->db, db);
  /* On failure set_clientdata runs connGone itself. */
  rc = sqlite3_set_clientdata(db, CLIENTDATA_KEY, c, connGone);
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db, "random", 0, flags, d, randomFunc, 0, 0, 0);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db, "randomblob", 1, flags, d, randomblobFunc, 0, 0, 0);
  }
  if (rc == SQLITE_OK) rc = sqlite3_set_authorizer(db, detvfs_auth, d);
  if (rc != SQLITE_OK && pzErr) {
    *pzErr = sqlite3_mprintf("rsqlite detvfs: connection setup failed (%d)", rc);
  }
  return rc;
}

int detvfs_install_autoext(void) {
  /* sqlite3_auto_extension ignores a second registration of the same entry. */
  return sqlite3_auto_extension((void (*)(void))detvfs_autoext);
}

/* ------------------------------------------------------------ localtime --- */

static int utcLocaltime(const void *t, void *tm) {
  return gmtime_r((const time_t *)t, (struct tm *)tm) == 0;
}

int detvfs_pin_localtime(void) {
  int rc = sqlite3_initialize();
  if (rc != SQLITE_OK) return rc;
  /* 2 = call xAlt instead of localtime() (SQLITE_TESTCTRL_LOCALTIME_FAULT). */
  return sqlite3_test_control(SQLITE_TESTCTRL_LOCALTIME_FAULT, 2, utcLocaltime);
}
