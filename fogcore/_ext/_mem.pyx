# cython: language_level=3, embedsignature=True
"""Counted allocation for the extension modules (counts only in a debug build)."""

from libc.stdlib cimport calloc, free, malloc

cdef extern from "fog_debug.h":
    const int FOG_DEBUG

# Only touched when FOG_DEBUG is set; atomics keep the count right under worker threads.
cdef extern from *:
    """
    static long fog_live_allocations = 0;
    #define FOG_COUNT_ADD(n) __atomic_add_fetch(&fog_live_allocations, (n), __ATOMIC_RELAXED)
    #define FOG_COUNT_GET() __atomic_load_n(&fog_live_allocations, __ATOMIC_RELAXED)
    """
    long FOG_COUNT_ADD(long n) nogil
    long FOG_COUNT_GET() nogil


cdef void *fog_malloc(size_t size) noexcept nogil:
    cdef void *ptr = malloc(size)
    if FOG_DEBUG and ptr != NULL:
        FOG_COUNT_ADD(1)
    return ptr


cdef void *fog_calloc(size_t count, size_t size) noexcept nogil:
    cdef void *ptr = calloc(count, size)
    if FOG_DEBUG and ptr != NULL:
        FOG_COUNT_ADD(1)
    return ptr


cdef void fog_free(void *ptr) noexcept nogil:
    if FOG_DEBUG and ptr != NULL:
        FOG_COUNT_ADD(-1)
    free(ptr)


def debug_build():
    """True when the extensions were compiled with FOGCORE_DEBUG=1."""
    return bool(FOG_DEBUG)


def live_allocations():
    """Blocks allocated through fog_malloc/fog_calloc and not yet freed (debug builds only;
    always 0 in a release build)."""
    return FOG_COUNT_GET()
