"""Pure market-data logic: numpy, numba and the standard library only. No I/O, no clock, no env."""
