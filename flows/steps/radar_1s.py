"""The radar step: per (contract, session), wall and vacuum surfaces and physics bands each second."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bytewax.operators import StatefulLogic
from typing_extensions import override

from flows.items import BookRows, SurfaceRows, top_of_book
from operators.instruments import book_tick
from operators.sessions import day_to_date
from operators.surfaces import BandCalibration, SurfaceBuilder, SurfaceState, latest_calibration


@dataclass(frozen=True, slots=True)
class _SurfaceLogicState:
    builder: SurfaceState
    calibration: BandCalibration


class SurfaceLogic(StatefulLogic[BookRows, SurfaceRows, _SurfaceLogicState]):
    """Streams a session's seconds through ``SurfaceBuilder``, normalised with the contract's latest
    calibration from a session strictly before this one (no look-ahead)."""

    def __init__(
        self, calibrations: Mapping[str, Sequence[BandCalibration]], resume: _SurfaceLogicState | None
    ) -> None:
        self._calibrations = calibrations
        self._builder: SurfaceBuilder | None = None
        self._calibration: BandCalibration | None = None
        self._resume = resume

    def _start(self, value: BookRows) -> SurfaceBuilder:
        if self._resume is not None:
            state = self._resume
            self._calibration = state.calibration
            return SurfaceBuilder(state.builder.tick, state.calibration, resume=state.builder)
        tick = book_tick(value.info, value.rows[:1])
        mine = self._calibrations.get(value.info.raw_symbol, ())
        self._calibration = latest_calibration(mine, day_to_date(value.session_day))
        return SurfaceBuilder(tick, self._calibration)

    @override
    def on_item(self, value: BookRows) -> tuple[list[SurfaceRows], bool]:
        if self._builder is None:
            self._builder = self._start(value)
        wall, vacuum, bands = self._builder.feed(value.rows)
        out = SurfaceRows(value.key, value.source_id, value.info, value.session_day, wall, vacuum, bands, value.final,
                          top_of_book(value.rows))
        keep = [out] if len(wall) or value.final else []
        return keep, StatefulLogic.DISCARD if value.final else StatefulLogic.RETAIN

    @override
    def snapshot(self) -> _SurfaceLogicState:
        if self._builder is None:  # resumed, and no second of this session has arrived since
            assert self._resume is not None
            return self._resume
        assert self._calibration is not None
        return _SurfaceLogicState(self._builder.snapshot(), self._calibration)
