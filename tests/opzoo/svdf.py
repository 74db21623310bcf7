"""SVDF (issue 18): hand-written int8 SVDF flatbuffers (tests/svdf_models.py; TensorFlow's
converter does not emit SVDF), batch 1 and with bias, so that TFLite Micro runs them
(without bias it crashes; tests/test_svdf.py covers that model and batch 2 with its own
sequences). Stateful: the zoo runs each as one sequence with a reset in the middle."""

from __future__ import annotations

from .. import svdf_models
from . import Case


def _case(model: str) -> Case:
    c = svdf_models.MODELS[model]
    assert c.batch == 1 and c.bias
    return Case(build=None, inputs=((c.input_size,),), ops="SVDF", stateful=True,
                make_tflite=lambda name, calib: svdf_models.make_tflite(model))


MODELS = {
    "svdf_rank1": _case("svdf_r1"),
    "svdf_rank2_relu": _case("svdf_r2_relu"),
}
