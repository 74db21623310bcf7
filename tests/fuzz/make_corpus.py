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
    from tests import cmsis_s4, cmsis_s16
    from tests import test_cmsis_vectors as v

    for case in v.CASES:
        # s4: the int4-weight ops; s16: the 16x8 ops
        build = {"s4": cmsis_s4.BUILD, "s16": cmsis_s16.BUILD}.get(case["group"], v.BUILD)
        try:
            g, _ = build[case["family"]](*v._load(case))
        except BaseException:  # noqa: BLE001 - a case the tests skip (int16 output) is not a seed
            continue
        (d / f"{case['family']}-{case['case']}.mnb").write_bytes(blob.write(g))
    # SVDF models written by the tests (TensorFlow's converter does not emit SVDF)
    from tests import svdf_models

    for name in svdf_models.MODELS:
        (d / f"{name}.mnb").write_bytes(pack(svdf_models.make_tflite(name), name=name))
    # 16x8 models of ADD, MUL, pooling, softmax, tanh/logistic, requantization, PAD, CONCATENATION,
    # and REQUANT between int8 and int16
    from tests import s16x_models
    from tests.test_ops_s16 import _requant_graph

    for name in s16x_models.MODELS:
        (d / f"{name}.mnb").write_bytes(pack(s16x_models.tflite(name), name=name))
    (d / "requant_s8_s16.mnb").write_bytes(blob.write(_requant_graph(0.05, 3, 0.0004, 0.07, -5)[0]))
    # a 16x8 model with a float interface (FLOAT_INPUT/FLOAT_OUTPUT flags on int16 IO)
    (d / "s16_add_float_io.mnb").write_bytes(pack(s16x_models.tflite("s16_add", float_io=True), name="s16_add_f"))
    # the fused LSTM (tf-keras models of the zoo; tests/test_lstm.py)
    from tests import opzoo

    for name in ("lstm_fused", "lstm_fused_seq", "lstm_fused_stream"):
        (d / f"{name}.mnb").write_bytes(pack(opzoo.tflite(name), name=name))
    print(f"corpus: {len(list(d.iterdir()))} blobs in {d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
