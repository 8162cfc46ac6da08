"""Image classification example: a two-conv-layer CNN on scikit-learn's 8x8 handwritten digits, exported to ONNX.

Run from the repository root:  /usr/bin/python3 examples/digits/make_model.py
Needs numpy, scikit-learn, torch and onnx (Debian: python3-sklearn python3-torch python3-onnx).
Seeds are fixed and torch runs deterministic kernels on one thread, so reruns give the same weights.
"""
import json
import os

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20241124
N_HELDOUT = 300
EPOCHS = 40
OPSET = 13


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, image):
        # Softmax lives in the graph so served outputs are probabilities, not logits.
        return torch.softmax(self.classifier(self.features(image)), dim=1)

    def logits(self, image):
        return self.classifier(self.features(image))


def f32(v):
    """Shortest decimal that reads back as the same float32."""
    return float(np.format_float_positional(np.float32(v), unique=True, trim="-"))


def to_json(obj, depth=0):
    """JSON with one line per row: lists of numbers stay on one line, containers are indented."""
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k)}: {to_json(v, depth + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[\n" + ",\n".join(inner + to_json(v, depth + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, separators=(",", ":"))


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(to_json(obj) + "\n")


def request(req_id, images):
    return {
        "id": req_id,
        "inputs": [{"name": "image", "shape": list(images.shape), "datatype": "FP32", "data": [f32(v) for v in images.ravel()]}],
    }


def main():
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # [1797, 1, 8, 8], pixels 0..1
    y = digits.target.astype(np.int64)
    order = rng.permutation(len(X))
    test_idx, train_idx = order[:N_HELDOUT], order[N_HELDOUT:]
    X_train, y_train = torch.from_numpy(X[train_idx]), torch.from_numpy(y[train_idx])
    X_test, y_test = X[test_idx], y[test_idx]

    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(X_train), generator=gen)
        for start in range(0, len(perm), 64):
            b = perm[start:start + 64]
            opt.zero_grad()
            loss = loss_fn(model.logits(X_train[b]), y_train[b])
            loss.backward()
            opt.step()
    model.eval()

    with torch.no_grad():
        proba_test = model(torch.from_numpy(X_test)).numpy()
    accuracy = float((proba_test.argmax(1) == y_test).mean())

    os.makedirs(os.path.join(HERE, "1"), exist_ok=True)
    onnx_path = os.path.join(HERE, "1", "model.onnx")
    torch.onnx.export(
        model,
        torch.from_numpy(X_test[:1]),
        onnx_path,
        input_names=["image"],
        output_names=["probabilities"],
        dynamic_axes={"image": {0: "N"}, "probabilities": {0: "N"}},
        opset_version=OPSET,
        do_constant_folding=True,
    )

    os.makedirs(os.path.join(HERE, "requests"), exist_ok=True)
    # The batch: the first held-out image of each digit 0..9, so every class appears.
    batch_idx = [int(np.where(y_test == d)[0][0]) for d in range(10)]
    requests = {
        "single.json": request("digits-single", X_test[batch_idx[7]:batch_idx[7] + 1]),
        "batch-10.json": request("digits-batch-10", X_test[batch_idx]),
    }
    expected = {}
    for name, req in requests.items():
        write_json(os.path.join(HERE, "requests", name), req)
        inp = req["inputs"][0]
        images = torch.tensor(np.array(inp["data"], dtype=np.float32).reshape(inp["shape"]))
        with torch.no_grad():
            proba = model(images).numpy()
        expected[name] = {
            "outputs": {
                "probabilities": {"datatype": "FP32", "shape": list(proba.shape), "data": [f32(v) for v in proba.ravel()]}
            }
        }
    write_json(os.path.join(HERE, "expected.json"), expected)

    write_json(
        os.path.join(HERE, "heldout.json"),
        {
            "input": "image",
            "rowShape": [1, 8, 8],
            "datatype": "FP32",
            "classes": [str(d) for d in range(10)],
            "x": [[f32(v) for v in img.ravel()] for img in X_test],
            "y": [int(v) for v in y_test],
        },
    )
    print(f"held-out accuracy (torch): {accuracy * 100:.2f}% on {N_HELDOUT} images")
    print(f"model.onnx: {os.path.getsize(onnx_path)} bytes")


if __name__ == "__main__":
    main()
