"""Benchmark model: a 784 -> 128 -> 10 MLP on scikit-learn's digits upsampled to MNIST's 28x28, exported to ONNX.

Run from the repository root:  /usr/bin/python3 examples/mlp/make_model.py
Needs numpy, scikit-learn, torch and onnx (Debian: python3-sklearn python3-torch python3-onnx).
Seeds are fixed and torch runs deterministic kernels on one thread, so reruns give the same weights.

The shape (flat 784-value input, one hidden layer) is the classic MNIST MLP, so throughput, cold-start and
quantization numbers measured on it compare with published ones; the data is the 8x8 digits set (no
download needed) resized to 28x28.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20241124
N_HELDOUT = 300
EPOCHS = 30
OPSET = 13


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(784, 128)
        self.out = nn.Linear(128, 10)

    def logits(self, x):
        return self.out(F.relu(self.hidden(x)))

    def forward(self, x):
        # Softmax in the graph: served outputs are probabilities.
        return torch.softmax(self.logits(x), dim=1)


def upsample_28(images8):
    """[n, 8, 8] pixels 0..1 -> [n, 784]: bilinear resize to 28x28, rounded to 3 decimals so the JSON
    files hold exactly the values the network was trained and evaluated on."""
    t = torch.from_numpy(images8[:, None, :, :])
    big = F.interpolate(t, size=(28, 28), mode="bilinear", align_corners=False)
    return np.round(big.numpy().reshape(len(images8), 784), 3).astype(np.float32)


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


def request(req_id, x):
    return {
        "id": req_id,
        "inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": [f32(v) for v in x.ravel()]}],
    }


def main():
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)

    digits = load_digits()
    X = upsample_28((digits.images / 16.0).astype(np.float32))
    y = digits.target.astype(np.int64)
    order = rng.permutation(len(X))
    test_idx, train_idx = order[:N_HELDOUT], order[N_HELDOUT:]
    X_train, y_train = torch.from_numpy(X[train_idx]), torch.from_numpy(y[train_idx])
    X_test, y_test = X[test_idx], y[test_idx]

    model = MLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(X_train), generator=gen)
        for start in range(0, len(perm), 64):
            b = perm[start:start + 64]
            opt.zero_grad()
            loss_fn(model.logits(X_train[b]), y_train[b]).backward()
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
        input_names=["input"],
        output_names=["probabilities"],
        dynamic_axes={"input": {0: "N"}, "probabilities": {0: "N"}},
        opset_version=OPSET,
        do_constant_folding=True,
    )

    os.makedirs(os.path.join(HERE, "requests"), exist_ok=True)
    batch_idx = [int(np.where(y_test == d)[0][0]) for d in range(10)]  # one of each digit
    requests = {
        "single.json": request("mlp-single", X_test[batch_idx[3]:batch_idx[3] + 1]),
        "batch-10.json": request("mlp-batch-10", X_test[batch_idx]),
    }
    expected = {}
    for name, req in requests.items():
        write_json(os.path.join(HERE, "requests", name), req)
        inp = req["inputs"][0]
        x = torch.tensor(np.array(inp["data"], dtype=np.float32).reshape(inp["shape"]))
        with torch.no_grad():
            proba = model(x).numpy()
        expected[name] = {
            "outputs": {
                "probabilities": {"datatype": "FP32", "shape": list(proba.shape), "data": [f32(v) for v in proba.ravel()]}
            }
        }
    write_json(os.path.join(HERE, "expected.json"), expected)

    write_json(
        os.path.join(HERE, "heldout.json"),
        {
            "input": "input",
            "rowShape": [784],
            "datatype": "FP32",
            "classes": [str(d) for d in range(10)],
            "x": [[f32(v) for v in row] for row in X_test],
            "y": [int(v) for v in y_test],
        },
    )
    print(f"held-out accuracy (torch): {accuracy * 100:.2f}% on {N_HELDOUT} images")
    print(f"model.onnx: {os.path.getsize(onnx_path)} bytes")


if __name__ == "__main__":
    main()
