#ifndef SPUTNIK_CKERNELS_H
#define SPUTNIK_CKERNELS_H
#include <stdint.h>
#include <stddef.h>
#endif
