"""The order, names and meaning of every element of a setup vector (144 values).

Blocks, in order:

- **geometry** (20): signed and absolute distance to the level in ticks; velocity toward the level
  (ticks/s) over 5, 15, 30, 60, 120 and 300 s; acceleration over 15, 60 and 300 s (velocity over
  the later half of the window minus the earlier half); seconds since the level became known and
  since the RTH open; the level type one-hot (PDH, PDL, PMH, PML, ORH, ORL); direction (+1 UP,
  -1 DOWN).
- **book, flow, shape, wall, vacuum** (96): 24 registry features (``operators.features``), each
  averaged over the closed 5-second bars in the last 5, 30, 120 and 300 s.
- **oriented** (16): four quantities turned toward the level, over the same four windows:
  aggressor volume toward the level, OFI toward the level, resting depth ahead (between price and
  the level: the ask side for UP) and behind (the bid side for UP), both within 10 levels.
- **options** (12): the underlier's option chain at the start, near the level: GEX, open
  interest, volume, the zero-gamma level, skew, and a flag (0 = no chain: the block is zeros).
  Names and units in ``operators.vectors.options``.

Windows that hold no closed bar give 0. The vector of an episode uses only bars closed at or
before its start and 1-second rows at or before it.
"""

from __future__ import annotations

import hashlib
from typing import Final

import numpy as np

from operators.features.registry import REGISTRY_VERSION
from operators.vectors.options import OPTIONS_NAMES

VECTOR_VERSION: Final = "setup.v2"
LEVEL_TYPES: Final = ("PDH", "PDL", "PMH", "PML", "ORH", "ORL")
VELOCITY_WINDOWS_S: Final = (5, 15, 30, 60, 120, 300)
ACCEL_WINDOWS_S: Final = (15, 60, 300)
BAR_WINDOWS_S: Final = (5, 30, 120, 300)
BAR_FEATURES: Final = (
    "ladder_bid_depth_05", "ladder_ask_depth_05", "ladder_bid_depth_10", "ladder_ask_depth_10", "ladder_spread_ticks",
    "flow_aggressor_imbalance", "flow_net_aggressor_volume", "flow_ofi", "flow_ofi_norm", "flow_trade_count",
    "flow_avg_trade_size",
    "shape_book_skew", "shape_top_imbalance", "shape_microprice_offset_ticks", "shape_weighted_mid_offset_ticks",
    "wall_bid_ratio", "wall_ask_ratio", "wall_bid_distance_ticks", "wall_ask_distance_ticks",
    "vacuum_bid_near_depth_ratio", "vacuum_ask_near_depth_ratio", "vacuum_bid_pulled", "vacuum_ask_pulled",
    "vacuum_mid_velocity",
)
ORIENTED: Final = ("flow_toward", "ofi_toward", "depth_ahead", "depth_behind")
OPTIONS_BLOCK: Final = len(OPTIONS_NAMES)


def _names() -> tuple[str, ...]:
    names = ["geo_signed_distance_ticks", "geo_abs_distance_ticks"]
    names += [f"geo_velocity_{w}s" for w in VELOCITY_WINDOWS_S]
    names += [f"geo_accel_{w}s" for w in ACCEL_WINDOWS_S]
    names += ["geo_seconds_since_level_known", "geo_seconds_since_rth_open"]
    names += [f"geo_level_{t}" for t in LEVEL_TYPES]
    names += ["geo_direction"]
    names += [f"{f}_{w}s" for w in BAR_WINDOWS_S for f in BAR_FEATURES]
    names += [f"oriented_{f}_{w}s" for w in BAR_WINDOWS_S for f in ORIENTED]
    names += list(OPTIONS_NAMES)
    return tuple(names)


VECTOR_NAMES: Final = _names()
VECTOR_SIZE: Final = len(VECTOR_NAMES)
LOOKBACK_SPEC: Final = (
    f"{VECTOR_VERSION};bars=5s;bar_windows_s={','.join(map(str, BAR_WINDOWS_S))};"
    f"velocity_s={','.join(map(str, VELOCITY_WINDOWS_S))};accel_s={','.join(map(str, ACCEL_WINDOWS_S))}"
)


def feature_hash(vector: np.ndarray) -> str:
    """Deterministic hash of the vector's float32 bytes and the registry versions that define it."""
    digest = hashlib.sha256()
    digest.update(f"{VECTOR_VERSION}|{REGISTRY_VERSION}|".encode())
    digest.update(np.ascontiguousarray(vector, dtype=np.float32).tobytes())
    return digest.hexdigest()[:32]


def model_id_for(underlier: str) -> str:
    """The model that scores setups of an underlier: ``ES`` → ``ES_MODEL``."""
    return f"{underlier}_MODEL"
