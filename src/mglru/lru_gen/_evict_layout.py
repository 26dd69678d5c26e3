"""Indices of the compiled eviction loop's state and configuration arrays.

See `lru_gen._evict_kernel.evict_loop` (the loop) and `lru_gen.evict_fast` (its driver).

Future optimizations:
1. none pending: names only.
"""

# exits
(X_DONE, X_ITER, X_PREP, X_WB, X_SHRINK, X_GROW, X_FLUSH, X_AGE, X_EVICT, X_WBEND,
 X_PMD) = range(11)
# phases
PH_START, PH_SCAN, PH_POSTSCAN, PH_ISOLATED, PH_SHRINK, PH_AFTER, PH_EVICT = range(7)
# st[]: the loop's state and the counters Python applies when the loop exits
(S_PHASE, S_NR_TO_SCAN, S_SCANNED, S_SEQ, S_TYPE, S_ATTEMPT, S_NEV, S_ISO_SCANNED,
 S_NOUT, S_DELTA, S_RET, S_EVICTED_ANON, S_WB_PENDING, S_NWB, S_GROW, S_NR_RECLAIMED,
 S_PGSCAN, S_PGSCAN1, S_PGSTEAL, S_PGSTEAL1, S_NR_SCANNED, S_FREED, S_NFREED,
 S_NCHUNKS, S_CHARGED, S_SWUSED, S_SWNEXT, S_SWNFREE, S_SCAN_RES, S_NBLOOM,
 S_NKEEP, S_SWREST, S_SWWANT, S_SCAN_MORE) = range(34)
NR_STATE = 34
# cf[]: the configuration and the scan control
(C_TWO_STEP, C_REFS_FLAGS, C_SHIFT, C_GFP_IO, C_SWAPPINESS, C_INDEPENDENT, C_RULES_6_1,
 C_ON_THREE, C_KSWAPD, C_ROOT, C_ABORT_AT_GOAL, C_PRIORITY, C_NR_TO_RECLAIM, C_MAX_SEQ,
 C_NR_HIST, C_MEMCG_ID, C_NID, C_ONLINE, C_UNPROTECTED, C_MEMORY_MIN, C_FAST_OK,
 C_NPROCS, C_SWCAP, C_HAS_IDLE, C_KEEP_OK, C_LA_MODE, C_SKIP_LONE, C_SEQ_BY_WS,
 C_RESETS_TIER, C_NODE_LO, C_NODE_HI, C_HAS_BLOOM, C_PMD_READY) = range(33)
NR_CONF = 33
# cf[C_LA_MODE]: how look-around treats its target PTE (see lru_gen.look_around)
LA_CLEAR_FLUSH, LA_SECONDARY_FIRST, LA_NOTIFY = range(3)
# cm[t]: the cached tail-first order of type t: present, pos, order_tail, gen
M_PRESENT, M_POS, M_TAIL, M_GEN = range(4)
