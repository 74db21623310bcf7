# Helpers for scripts on the board: top-k, labels, pre-processing.


def argmax(y):
    """Index of the largest value of a sequence."""
    best = 0
    for i in range(1, len(y)):
        if y[i] > y[best]:
            best = i
    return best


def top_k(y, k=3, labels=None):
    """The k largest outputs as (label or index, value), largest first."""
    order = sorted(range(len(y)), key=lambda i: y[i], reverse=True)[:k]
    return [((labels[i] if labels else i), y[i]) for i in order]


def load_labels(path):
    """One label per line of a text file."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def normalize(pixels, mean=0.0, std=1.0):
    """array('f') of (p - mean) / std for a sequence of numbers (e.g. 0..255 pixels)."""
    from array import array

    inv = 1.0 / std
    return array("f", ((p - mean) * inv for p in pixels))
