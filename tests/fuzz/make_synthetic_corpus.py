"""Seed blobs made only from this repository: zoo models (weights drawn from
fixed seeds) packed by micronn, one per operator family. The committed corpus
is grown from these, so it holds nothing from the shared test data."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

MODELS = ["conv_3x3_same_relu6", "conv_3x3_valid_s2", "conv_groups", "conv_single_channel", "conv_dilation_2_same",
          "dw_mult1_same", "dw_mult2_valid_s2", "dw_dilation_2", "maxpool_3x3_s2", "avgpool_3x3_s2", "gap",
          "mean_1d", "residual_add", "add_broadcast", "multiply", "se_block", "fire_modules", "concat_hw",
          "zero_padding", "conv1d", "head_softmax", "head_sigmoid", "float_io_cnn", "digits8x8_cnn",
          "conv_pool_same", "maxpool_2x2"]


def main(out: str) -> int:
    sys.path.insert(0, str(ROOT))
    from micronn import pack
    from tests.test_zoo import convert_case

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        (d / f"{name}.mnb").write_bytes(pack(convert_case(name), name=name))
    print(f"synthetic corpus: {len(MODELS)} blobs in {d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
