/* Build-time switches for the fogcore extension modules.
 * FOG_DEBUG is defined to 0 or 1 by setup.py (FOGCORE_DEBUG=1). */
#ifndef FOG_DEBUG_H
#define FOG_DEBUG_H
#ifndef FOG_DEBUG
#define FOG_DEBUG 0
#endif
#endif
