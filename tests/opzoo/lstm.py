"""The fused int8 LSTM (issue 18): tf-keras (Keras 2) LSTMs that loop over their time steps,
Input batch_size=1, converted to full int8, each one UNIDIRECTIONAL_SEQUENCE_LSTM (int16 cell
state). Its hidden and cell states are variable tensors that TFLite Micro keeps from one
Invoke to the next, so the models are stateful: the zoo runs each as one sequence with a
reset in the middle. (Keras 3's looping LSTM does not convert to int8; tests/opzoo/recurrent.py
has the unrolled one, rnn_lstm.)"""

from __future__ import annotations

from . import Case, seed


def _make(units: int, return_sequences: bool, head: int, **layer):
    def make(name: str, calib) -> bytes:
        import tensorflow as tf
        import tf_keras

        tf_keras.utils.set_random_seed(seed(name) % (1 << 31))
        xs = calib[0]
        x = tf_keras.Input(xs.shape[1:], batch_size=1)
        y = tf_keras.layers.LSTM(units, return_sequences=return_sequences, **layer)(x)
        if head:
            y = tf_keras.layers.Dense(head)(y)
        m = tf_keras.Model(x, y)
        conv = tf.lite.TFLiteConverter.from_keras_model(m)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([xs[i:i + 1]] for i in range(len(xs)))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
        return conv.convert()
    return make


def _case(steps: int, features: int, units: int, return_sequences: bool, head: int, **layer) -> Case:
    return Case(build=None, inputs=((steps, features),), ops="UNIDIRECTIONAL_SEQUENCE_LSTM", batch=1,
                stateful=True, make_tflite=_make(units, return_sequences, head, **layer))


MODELS = {
    # the last step through a Dense head (the converter slices the LSTM's sequence output)
    "lstm_fused": _case(6, 4, 8, False, 3),
    # every step's hidden state out, no head
    "lstm_fused_seq": _case(3, 2, 4, True, 0),
    # 32 units, a longer sequence, a Dense head on every step
    "lstm_fused_32": _case(10, 5, 32, True, 2),
    # rnn_lstm's network (tests/opzoo/recurrent.py: 8 steps of 6 features, 12 units, Dense(4)), fused
    # instead of unrolled: the two side by side in tools/bench.py
    "lstm_fused_12": _case(8, 6, 12, False, 4),
    # one step per run: the state carries the whole sequence (streaming)
    "lstm_fused_stream": _case(1, 7, 16, False, 0),
}
