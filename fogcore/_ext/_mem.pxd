# Allocation wrappers shared by every extension module. In a FOGCORE_DEBUG=1 build they
# count live allocations so a test teardown can check that every block was freed.

cdef void *fog_malloc(size_t size) noexcept nogil
cdef void *fog_calloc(size_t count, size_t size) noexcept nogil
cdef void fog_free(void *ptr) noexcept nogil
