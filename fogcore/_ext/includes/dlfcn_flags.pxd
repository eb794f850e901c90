# dlopen flags not declared by Cython's posix.dlfcn.
cdef extern from "<dlfcn.h>" nogil:
    const int RTLD_NODELETE
