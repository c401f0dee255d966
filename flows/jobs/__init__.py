"""Offline jobs over a lake, run by ``spymaster`` subcommands: integrity checks, byte accounting,
physics-band calibration, training, similar setups, MBP top levels.
"""
