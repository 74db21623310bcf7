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
    print(f"corpus: {len(list(d.iterdir()))} blobs in {d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
