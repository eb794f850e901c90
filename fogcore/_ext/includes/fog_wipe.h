/* Zeroing of secret material that the compiler may not drop: writes through a volatile
 * pointer are observable behaviour, so a dead-store pass keeps them. */
#ifndef FOG_WIPE_H
#define FOG_WIPE_H
#include <stddef.h>

static inline void fog_wipe(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}
#endif
