# Runs on the board, not the host:  micronn exec examples/digits/classify.py --port digits
#
# Classifies the digits that examples/digits/run.py copied to the board's filesystem
# beside the model (samples.bin: int8 images, 64 bytes each; labels.bin: one byte per
# image, the true digit) and prints the label and score of each.
import micronn

with open("digits.mnb", "rb") as f:
    m = micronn.Model(f)
print(m)

size = 1
for d in m.input_shape:
    size *= d
with open("samples.bin", "rb") as f:
    xs = memoryview(f.read())
with open("labels.bin", "rb") as f:
    truth = f.read()

right = 0
for i in range(len(truth)):
    label, score = m.predict(xs[i * size:(i + 1) * size])
    ok = label == str(truth[i])
    right += ok
    print(f"sample {i:2d}: {label} score {score:.3f} (true {truth[i]}){'' if ok else '  <- wrong'}")
print(f"classify.py: {right} of {len(truth)} right")
