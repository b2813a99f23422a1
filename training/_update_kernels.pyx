# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loops of `related update` (optional): training's float operations without numba's start-up.

Built from source at install when a C compiler is present (setup.py); without it the update
runs the same arithmetic in numpy (training.twins, training.update_merge). Every float is
computed as training's numba kernels compute it: float32 products added one by one from 0,
never fused (the extension is compiled with -ffp-contract=off), so the results are the same
bits (tests/test_update_kernels.py).
"""

from libc.math cimport INFINITY, isfinite
from libc.stdlib cimport free, malloc

cdef enum:
    COLUMNS = 512  # base columns per block of latent_dots (the block stays in cache across query rows)

cdef float MIN_SCORE = 1e-6  # training.lists.MIN_SCORE, compared in float32 as numpy does


def latent_dots(const float[:, ::1] q, const float[:, ::1] base_t, float[:, ::1] out):
    """``out = q @ base_t``, each score summed in float32 from 0 over the dimensions in order."""
    cdef Py_ssize_t rows = q.shape[0], dims = q.shape[1], n = base_t.shape[1]
    cdef Py_ssize_t i, k, j, j0, j1
    cdef float w
    cdef float *o
    cdef const float *b
    if rows == 0 or n == 0:
        return
    with nogil:
        j0 = 0
        while j0 < n:
            j1 = min(n, j0 + COLUMNS)
            for i in range(rows):
                o = &out[i, 0]
                for j in range(j0, j1):
                    o[j] = 0
                for k in range(dims):
                    w = q[i, k]
                    b = &base_t[k, 0]
                    for j in range(j0, j1):  # across scores, not within one: each stays a sum in order
                        o[j] += w * b[j]
            j0 = j1


cdef inline float _pair(const long long[:] indptr, const int[:] indices, const float[:] data,
                        long long a, long long b) noexcept nogil:
    """``x_a . x_b`` over the shared columns in ascending order (the kernel's sum)."""
    cdef long long ia = indptr[a], ea = indptr[a + 1], ib = indptr[b], eb = indptr[b + 1]
    cdef float s = 0
    cdef int ca, cb
    while ia < ea and ib < eb:
        ca = indices[ia]
        cb = indices[ib]
        if ca == cb:
            s += data[ib] * data[ia]
            ia += 1
            ib += 1
        elif ca < cb:
            ia += 1
        else:
            ib += 1
    return s


def pair_dots(const long long[:] indptr, const int[:] indices, const float[:] data,
              const long long[:] a, const long long[:] b, float[:] out):
    """``out[p] = x_a[p] . x_b[p]`` as training.kernels.pair_dots sums it (-1 in a or b: 0)."""
    cdef Py_ssize_t p
    with nogil:
        for p in range(a.shape[0]):
            out[p] = _pair(indptr, indices, data, a[p], b[p]) if a[p] >= 0 and b[p] >= 0 else 0


ctypedef fused index_t:
    int
    long long


cdef inline Py_ssize_t _lower_bound(const index_t[:] a, long long x) noexcept nogil:
    """The first position of the ascending ``a`` whose value is not below ``x``."""
    cdef Py_ssize_t lo = 0, hi = a.shape[0], mid
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline bint _before(float s1, long long r1, float s2, long long r2) noexcept nogil:
    """Entry 1 ranks before entry 2: higher score, or the same score and a lower row."""
    return s1 > s2 or (s1 == s2 and r1 < r2)


cdef inline bint _eligible(long long row, float total) noexcept nogil:
    return row >= 0 and isfinite(total) and total > MIN_SCORE


cdef inline int _keep_best(long long row, float total, float extra, int count, int n,
                           long long *rows, float *totals, float *extras) noexcept nogil:
    """Insert an entry into a best-first buffer of at most n; return the new count."""
    cdef int pos
    if count == n and not _before(total, row, totals[n - 1], rows[n - 1]):
        return count
    pos = count if count < n else n - 1
    while pos > 0 and _before(total, row, totals[pos - 1], rows[pos - 1]):
        if pos < n:
            rows[pos] = rows[pos - 1]
            totals[pos] = totals[pos - 1]
            extras[pos] = extras[pos - 1]
        pos -= 1
    rows[pos] = row
    totals[pos] = total
    extras[pos] = extra
    return count + 1 if count < n else n


def merge_rows(
    const long long[:] kept_old, const long long[:] kept, const int[:] map_old, long long n_old,
    const int[:, :] cand_state, const float[:, :] lat_state, const float[:, :] csp_state,
    const int[:, :] first_state, const float[:, :] first_scores_state, const float[:, :] first_sparse_state,
    const float[:, ::1] t_lat, const int[:] changed, const long long[:] fresh_keys, const float[:] fresh_sparse,
    const long long[:] indptr, const int[:] indices, const float[:] data,
    int[:, ::1] out_cand, float[:, ::1] out_lat, float[:, ::1] out_csp,
    int[:, ::1] out_first, float[:, ::1] out_scores, float[:, ::1] out_first_sparse,
    long long depth, long long candidates, signed char[:] status,
):
    """training.update_merge.merge_chunk for the rows ``kept`` (parent rows ``kept_old``), compiled.

    Writes each row's new state and first pass into the ``out_*`` arrays and its status
    (0 kept, 1 patched, 2 undecided) into ``status``; ``t_lat`` holds every new row's latent
    scores to the changed rows, ``map_old`` the parent -> new row map (-1: left).
    """
    cdef Py_ssize_t n_rows = kept.shape[0], W = cand_state.shape[1], C0 = csp_state.shape[1]
    cdef Py_ssize_t F = out_first.shape[1], nc = changed.shape[0], KC = out_csp.shape[1]
    cdef Py_ssize_t n = out_cand.shape[0], n_fresh = fresh_keys.shape[0]
    cdef Py_ssize_t r, j, c, e, q, p, ne, stored, length, w, cw, k, count, known, alive, lo, t
    cdef long long old, row, m, b, rank, key, last_idx
    cdef float floor, v, total, last_val, sp
    cdef bint tie, dead, same, lost, grow
    cdef long long *ent_rows = <long long *> malloc(sizeof(long long) * (nc + 1))
    cdef float *ent_lat = <float *> malloc(sizeof(float) * (nc + 1))
    cdef long long *new_rows = <long long *> malloc(sizeof(long long) * (depth + 1))
    cdef float *new_lat = <float *> malloc(sizeof(float) * (depth + 1))
    cdef long long *src = <long long *> malloc(sizeof(long long) * (depth + 1))
    cdef float *top_sparse = <float *> malloc(sizeof(float) * (depth + 1))
    cdef char *pushed = <char *> malloc(sizeof(char) * (n + 1))
    cdef long long *best_rows = <long long *> malloc(sizeof(long long) * (F + 1))
    cdef float *best_totals = <float *> malloc(sizeof(float) * (F + 1))
    cdef float *best_extras = <float *> malloc(sizeof(float) * (F + 1))
    if not (ent_rows and ent_lat and new_rows and new_lat and src and top_sparse and pushed and best_rows
            and best_totals and best_extras):
        raise MemoryError()
    try:
        with nogil:
            for j in range(n + 1):
                pushed[j] = 0
            w = min(W, depth)
            cw = min(C0, KC)
            k = min(candidates, depth)
            for r in range(n_rows):
                old = kept_old[r]
                row = kept[r]
                # the parent's state, mapped to new rows
                stored = 0
                dead = False
                for j in range(W):
                    if cand_state[old, j] >= 0:
                        stored += 1
                        if map_old[cand_state[old, j]] < 0:
                            dead = True
                for j in range(w):
                    out_cand[row, j] = map_old[cand_state[old, j]] if cand_state[old, j] >= 0 else -1
                    out_lat[row, j] = lat_state[old, j]
                for j in range(cw):
                    out_csp[row, j] = csp_state[old, j]
                for j in range(F):
                    out_first[row, j] = map_old[first_state[old, j]] if first_state[old, j] >= 0 else -1
                    out_scores[row, j] = first_scores_state[old, j]
                    out_first_sparse[row, j] = first_sparse_state[old, j]
                floor = lat_state[old, stored - 1] if 0 < stored < n_old - 1 else -INFINITY
                # the changed rows that enter (ascending rows), then by score, stable
                ne = 0
                tie = False
                for c in range(nc):
                    v = t_lat[row, c]
                    if v == floor:
                        tie = True
                    if v > floor:
                        e = ne
                        while e > 0 and ent_lat[e - 1] < v:
                            ent_rows[e] = ent_rows[e - 1]
                            ent_lat[e] = ent_lat[e - 1]
                            e -= 1
                        ent_rows[e] = changed[c]
                        ent_lat[e] = v
                        ne += 1
                status[r] = 0
                if ne == 0 and not dead:
                    continue
                # merge the stored entries still there with the entrants, by (latent desc, row asc)
                p = 0
                e = 0
                length = 0
                while length < depth:
                    while p < W and (cand_state[old, p] < 0 or map_old[cand_state[old, p]] < 0):
                        p += 1
                    if p < W and (e >= ne or _before(lat_state[old, p], map_old[cand_state[old, p]],
                                                     ent_lat[e], ent_rows[e])):
                        new_rows[length] = map_old[cand_state[old, p]]
                        new_lat[length] = lat_state[old, p]
                        src[length] = p
                        p += 1
                    elif e < ne:
                        new_rows[length] = ent_rows[e]
                        new_lat[length] = ent_lat[e]
                        src[length] = W + e
                        e += 1
                    else:
                        break
                    length += 1
                same = True
                for q in range(min(k, length)):
                    if src[q] != q:
                        same = False
                if tie or length < k:
                    status[r] = 2
                    continue
                status[r] = 0 if same else 1
                for q in range(depth):
                    out_cand[row, q] = new_rows[q] if q < length else -1
                    out_lat[row, q] = new_lat[q] if q < length else 0
                if same:
                    continue
                # the new top's sparse parts: stored, the changed rows' own, or computed
                known = 0
                for q in range(k):
                    if src[q] < C0:
                        top_sparse[q] = csp_state[old, src[q]]
                        known += 1
                        continue
                    b = new_rows[q]
                    sp = 0
                    rank = _lower_bound(changed, b)
                    if rank < nc and changed[rank] == b:
                        key = rank * n + row
                        lo = _lower_bound(fresh_keys, key)
                        if lo < n_fresh and fresh_keys[lo] == key:
                            sp = fresh_sparse[lo]
                        else:
                            sp = _pair(indptr, indices, data, row, b)
                    else:
                        sp = _pair(indptr, indices, data, row, b)
                    top_sparse[q] = sp
                for q in range(k):
                    out_csp[row, q] = top_sparse[q]
                # stored top entries no longer in the top: the first `known` still there stay
                alive = 0
                for j in range(C0):
                    if cand_state[old, j] >= 0 and map_old[cand_state[old, j]] >= 0:
                        alive += 1
                        if alive > known:
                            pushed[map_old[cand_state[old, j]]] = 1
                lost = False
                for q in range(F):
                    if first_state[old, q] >= 0 and out_first[row, q] < 0:
                        lost = True  # a member left
                    elif out_first[row, q] >= 0 and pushed[out_first[row, q]]:
                        lost = True  # a member pushed out of the top
                count = 0
                if lost:  # chosen again from the whole top
                    for q in range(k):
                        total = new_lat[q] + top_sparse[q]
                        if q < length and _eligible(new_rows[q], total):
                            count = _keep_best(new_rows[q], total, top_sparse[q], count, F,
                                               best_rows, best_totals, best_extras)
                else:  # the old first pass, joined by the fresh entries that beat its last member
                    t = 0
                    for q in range(F):
                        if out_first[row, q] >= 0:
                            t += 1
                    last_val = out_scores[row, max(t - 1, 0)]
                    last_idx = out_first[row, max(t - 1, 0)]
                    grow = False
                    for q in range(k):
                        total = new_lat[q] + top_sparse[q]
                        if (src[q] >= C0 and q < length and _eligible(new_rows[q], total)
                                and (t < F or total > last_val or (total == last_val and new_rows[q] < last_idx))):
                            grow = True
                            break
                    if grow:
                        for q in range(F):
                            if _eligible(out_first[row, q], out_scores[row, q]):
                                count = _keep_best(out_first[row, q], out_scores[row, q], out_first_sparse[row, q],
                                                   count, F, best_rows, best_totals, best_extras)
                        for q in range(k):
                            total = new_lat[q] + top_sparse[q]
                            if (src[q] >= C0 and q < length and _eligible(new_rows[q], total)
                                    and (t < F or total > last_val
                                         or (total == last_val and new_rows[q] < last_idx))):
                                count = _keep_best(new_rows[q], total, top_sparse[q], count, F,
                                                   best_rows, best_totals, best_extras)
                if lost or grow:
                    for q in range(F):
                        out_first[row, q] = best_rows[q] if q < count else -1
                        out_scores[row, q] = best_totals[q] if q < count else 0
                        out_first_sparse[row, q] = best_extras[q] if q < count else 0
                for j in range(C0):
                    if cand_state[old, j] >= 0 and map_old[cand_state[old, j]] >= 0:
                        pushed[map_old[cand_state[old, j]]] = 0
    finally:
        free(ent_rows)
        free(ent_lat)
        free(new_rows)
        free(new_lat)
        free(src)
        free(top_sparse)
        free(pushed)
        free(best_rows)
        free(best_totals)
        free(best_extras)
