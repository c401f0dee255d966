"""``spymaster check --file``: the conservation law checked byte for byte, and it finds losses."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from deltalake import DeltaTable

from connectors.delta.tables import BRONZE_MBO_DLQ
from flows.jobs.accounting import account_for_file
from tests.flows.dbn_edit import split_mbo_file, write_mbo_file
from tests.flows.test_cli import spymaster


def test_accounting_holds_then_finds_a_lost_dead_letter(sample_dir: Path, tmp_path: Path, replay) -> None:
    day = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(day.with_name(day.name.replace(".mbo.", ".definition.")), inputs)
    header, records = split_mbo_file(day)
    at = len(records) // 3
    target = write_mbo_file(inputs / day.name, header,
                            records[:at].tobytes() + np.random.default_rng(1).bytes(700) + records[at:].tobytes())
    lake = replay([inputs], tmp_path / "lake")

    held = account_for_file(lake, target)
    done = spymaster("check", "--lake", str(tmp_path / "lake"), "--file", str(inputs))

    assert (held.ok, held.rows, held.dead_letters, held.dead_bytes) == (True, len(records), 1, 700)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("every byte accounted for") == 2  # the MBO file and its definitions

    DeltaTable(lake.uri(BRONZE_MBO_DLQ)).delete("reason = 'garbage'")
    lost = account_for_file(lake, target)
    done = spymaster("check", "--lake", str(tmp_path / "lake"), "--file", str(target))

    body = len(records) * 56 + 700
    assert lost.problems == (
        f"positions are not 0..{len(records) - 1} once each (first missing: [{at}])",
        f"the rows and dead letters rebuild {body - 700:,} bytes, the file holds {body:,} record bytes; they first "
        f"differ at byte {at * 56:,}",
    )
    assert done.returncode == 1 and "FAIL" in done.stdout


def test_accounting_finds_a_file_changed_after_ingest(sample_dir: Path, tmp_path: Path, replay) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for f in sorted(sample_dir.glob("*.dbn.zst"))[:3]:  # the first day's definitions, MBO and statistics
        shutil.copy(f, inputs)
    lake = replay([inputs], tmp_path / "lake")
    target = sorted(inputs.glob("*.mbo.dbn.zst"))[0]
    header, records = split_mbo_file(target)
    assert account_for_file(lake, target).ok

    records[5]["size"] += 1
    write_mbo_file(target, header, records)

    assert account_for_file(lake, target).problems == (
        f"the rows and dead letters rebuild {len(records) * 56:,} bytes, the file holds {len(records) * 56:,} record "
        f"bytes; they first differ at byte {5 * 56 + 32:,}",
    )
