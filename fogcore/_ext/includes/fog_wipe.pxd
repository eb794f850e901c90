# Secret wiping shared by every module that holds key material (fog_wipe.h).
#
#     from fogcore._ext.includes.fog_wipe cimport fog_wipe
#     fog_wipe(keys, sizeof(keys))

cdef extern from "fog_wipe.h" nogil:
    void fog_wipe(void *p, size_t n)
