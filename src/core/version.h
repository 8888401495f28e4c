/* version.h - tool version and git revision, filled in by the build (CMake defines). */
#ifndef TB_VERSION_H
#define TB_VERSION_H

#ifndef TB_VERSION
#define TB_VERSION "0.0.0"
#endif
#ifndef TB_GIT
#define TB_GIT "unknown"
#endif

#endif
