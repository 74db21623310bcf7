"""Seed blobs for the fuzzer: every shared model and a few hand-built graphs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from micronn import pack

ROOT = Path(__file__).resolve().parents[2]


def main(out: str) -> int:
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    shared = Path(os.environ.get("MICRONN_SHARED", ROOT.parent / "shared")) / "models"
    for p in sorted(shared.glob("*.tflite")):
        (d / f"{p.stem}.mnb").write_bytes(pack(p))
    sys.path.insert(0, str(ROOT))
    from micronn import blob
    from tests.test_format import _graph

    (d / "fc.mnb").write_bytes(blob.write(_graph()))
    # One small single-op blob per CMSIS-NN vector case: every kernel, fast to run.
    from tests import test_cmsis_vectors as v

    for case in v.CASES:
        try:
            g, _ = v.BUILD[case["family"]](*v._load(case))
        except BaseException:  # noqa: BLE001 - a case the tests skip (int16 output) is not a seed
            continue
        (d / f"{case['family']}-{case['case']}.mnb").write_bytes(blob.write(g))
    print(f"corpus: {len(list(d.iterdir()))} blobs in {d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
