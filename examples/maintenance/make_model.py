"""Predictive maintenance example: a random forest on synthetic machine-sensor data, exported to ONNX-ML.

Run from the repository root:  /usr/bin/python3 examples/maintenance/make_model.py
Needs numpy, scikit-learn and onnx (Debian: python3-sklearn python3-onnx). Deterministic: the same
seeds give byte-identical outputs on the same library versions.

The forest is converted by hand to an ai.onnx.ml TreeEnsembleClassifier (no skl2onnx), with no ZipMap,
so the model returns plain tensors that every onnxruntime binding (Node, Web, Python) can hand back.
"""
import csv
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.ensemble import RandomForestClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20241124
N_ROWS = 6000
N_HELDOUT = 400
N_TREES = 40
MAX_DEPTH = 8

FEATURES = [
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
    "vibration_mm_s",
]
CLASSES = ["ok", "wear", "failure"]


def make_data(rng):
    """Sensor readings shaped like a milling machine's (AI4I-2020-like ranges), with three outcomes.

    'failure' = past the limit of one of five failure modes (heat dissipation, power, overstrain, tool
    wear, bearing vibration); 'wear' = maintenance due (worn tool or rough bearing) but no failure yet.
    Limits vary per machine (tolerance drawn at random) and 2% of labels are wrong (glitches), and three
    of the modes depend on products of features that depth-8 trees can only approximate, so the task is
    not a lookup table.
    """
    n = N_ROWS
    air = 300.0 + 2.0 * rng.standard_normal(n)
    process = air + 10.0 + 1.0 * rng.standard_normal(n)
    speed = np.exp(np.log(1540.0) + 0.11 * rng.standard_normal(n))
    torque = np.clip(40.0 - 0.035 * (speed - 1540.0) + 9.0 * rng.standard_normal(n), 3.0, None)
    wear = rng.uniform(0.0, 250.0, n)
    bearing = rng.gamma(2.0, 0.6, n)  # hidden bearing condition, only seen through vibration
    vibration = 1.2 + 0.008 * wear + 0.9 * bearing + 0.015 * np.abs(torque - 40.0) + 0.35 * rng.standard_normal(n)
    vibration = np.clip(vibration, 0.2, None)

    power_w = torque * speed * 2.0 * np.pi / 60.0
    # Per-machine tolerances: the same reading fails on one machine and not on another.
    tol = 1.0 + 0.02 * rng.standard_normal(n)
    # Each margin < 0 means that failure mode has happened.
    heat_margin = ((process - air) - 8.6) / 1.5 + (speed - 1380.0) / 250.0
    power_margin = np.minimum((power_w - 3500.0 * tol) / 1200.0, (9000.0 * tol - power_w) / 1200.0)
    strain_margin = (11000.0 * tol - wear * torque) / 2500.0
    wear_margin = (225.0 * tol - wear) / 30.0
    vib_margin = (6.0 * tol - vibration) / 1.0
    failed = np.minimum.reduce([heat_margin, power_margin, strain_margin, wear_margin, vib_margin]) < 0.0
    # Maintenance is due well before a limit: worn tool or rough-running bearing.
    due = (wear > 160.0 * tol) | (vibration > 4.8 * tol)

    y = np.where(failed, 2, np.where(due, 1, 0))
    # Sensor glitches / mislabelled maintenance logs.
    flip = rng.random(n) < 0.02
    y[flip] = rng.integers(0, 3, flip.sum())

    X = np.stack([air, process, speed, torque, wear, vibration], axis=1)
    # Readings are logged with 0.1 resolution; round so the CSV and JSON hold exactly what the model saw.
    X = np.round(X, 1).astype(np.float32)
    return X, y.astype(np.int64)


def floor_to_float32(t):
    """Largest float32 <= t. sklearn compares float32(x) <= float64 threshold; ONNX stores float32
    thresholds, and rounding one up would move inputs equal to the rounded value to the wrong branch."""
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


def forest_to_onnx(forest, n_features):
    n_trees = len(forest.estimators_)
    nodes = {k: [] for k in ["treeids", "nodeids", "featureids", "values", "modes", "true", "false"]}
    cls = {k: [] for k in ["treeids", "nodeids", "ids", "weights"]}
    for t, est in enumerate(forest.estimators_):
        tree = est.tree_
        for i in range(tree.node_count):
            left, right = int(tree.children_left[i]), int(tree.children_right[i])
            nodes["treeids"].append(t)
            nodes["nodeids"].append(i)
            if left == -1:  # leaf
                nodes["featureids"].append(0)
                nodes["values"].append(0.0)
                nodes["modes"].append("LEAF")
                nodes["true"].append(0)
                nodes["false"].append(0)
                counts = tree.value[i][0]
                frac = counts / counts.sum()  # sklearn's per-tree predict_proba
                for c, p in enumerate(frac):
                    if p > 0.0:
                        cls["treeids"].append(t)
                        cls["nodeids"].append(i)
                        cls["ids"].append(c)
                        cls["weights"].append(float(p) / n_trees)  # forest = mean over trees
            else:
                nodes["featureids"].append(int(tree.feature[i]))
                nodes["values"].append(floor_to_float32(float(tree.threshold[i])))
                nodes["modes"].append("BRANCH_LEQ")  # sklearn: x <= threshold goes left
                nodes["true"].append(left)
                nodes["false"].append(right)

    node = helper.make_node(
        "TreeEnsembleClassifier",
        inputs=["input"],
        outputs=["label", "probabilities"],
        domain="ai.onnx.ml",
        name="random_forest",
        nodes_treeids=nodes["treeids"],
        nodes_nodeids=nodes["nodeids"],
        nodes_featureids=nodes["featureids"],
        nodes_values=nodes["values"],
        nodes_modes=nodes["modes"],
        nodes_truenodeids=nodes["true"],
        nodes_falsenodeids=nodes["false"],
        class_treeids=cls["treeids"],
        class_nodeids=cls["nodeids"],
        class_ids=cls["ids"],
        class_weights=cls["weights"],
        classlabels_int64s=[int(c) for c in forest.classes_],
        post_transform="NONE",
    )
    graph = helper.make_graph(
        [node],
        "maintenance_random_forest",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        outputs=[
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(forest.classes_)]),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 1)],
        producer_name="dais-examples",
        producer_version="1",
        doc_string="Predictive maintenance: classes 0=ok, 1=wear, 2=failure. Features: " + ", ".join(FEATURES),
    )
    model.ir_version = 8
    helper.set_model_props(model, {"classes": ",".join(CLASSES), "features": ",".join(FEATURES)})
    onnx.checker.check_model(model)
    return model


def request(req_id, X):
    return {
        "id": req_id,
        "inputs": [{"name": "input", "shape": list(X.shape), "datatype": "FP32", "data": [f32(v) for v in X.ravel()]}],
    }


def expected_for(forest, X):
    proba = forest.predict_proba(X).astype(np.float32)
    label = forest.predict(X).astype(np.int64)
    return {
        "outputs": {
            "label": {"datatype": "INT64", "shape": [len(X)], "data": [int(v) for v in label]},
            "probabilities": {"datatype": "FP32", "shape": list(proba.shape), "data": [f32(v) for v in proba.ravel()]},
        }
    }


def clear_argmax(forest, X):
    """Rows whose top two class probabilities differ: a tie would make 'the label' depend on tie-breaking."""
    p = np.sort(forest.predict_proba(X), axis=1)
    return np.where(p[:, -1] - p[:, -2] > 1e-3)[0]


def f32(v):
    """Shortest decimal that reads back as the same float32 (314.1, not 314.1000061035156)."""
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


def main():
    rng = np.random.default_rng(SEED)
    X, y = make_data(rng)
    X_train, y_train = X[:-N_HELDOUT], y[:-N_HELDOUT]
    X_test, y_test = X[-N_HELDOUT:], y[-N_HELDOUT:]

    forest = RandomForestClassifier(n_estimators=N_TREES, max_depth=MAX_DEPTH, random_state=SEED, n_jobs=1)
    forest.fit(X_train, y_train)
    accuracy = float((forest.predict(X_test) == y_test).mean())

    model = forest_to_onnx(forest, X.shape[1])
    os.makedirs(os.path.join(HERE, "1"), exist_ok=True)
    onnx.save(model, os.path.join(HERE, "1", "model.onnx"))

    os.makedirs(os.path.join(HERE, "requests"), exist_ok=True)
    ok = clear_argmax(forest, X_test)
    # One row per class for the batch so every label shows up, plus a few more.
    picks = [int(ok[np.where(y_test[ok] == c)[0][0]]) for c in range(3)]
    picks += [int(i) for i in ok if i not in picks][:5]
    requests = {
        "single.json": request("maintenance-single", X_test[picks[2]:picks[2] + 1]),
        "batch-8.json": request("maintenance-batch-8", X_test[picks]),
    }
    expected = {}
    for name, req in requests.items():
        write_json(os.path.join(HERE, "requests", name), req)
        rows = np.array(req["inputs"][0]["data"], dtype=np.float32).reshape(req["inputs"][0]["shape"])
        expected[name] = expected_for(forest, rows)
    write_json(os.path.join(HERE, "expected.json"), expected)

    write_json(
        os.path.join(HERE, "heldout.json"),
        {
            "input": "input",
            "rowShape": [X.shape[1]],
            "datatype": "FP32",
            "featureNames": FEATURES,
            "classes": CLASSES,
            "x": [[f32(v) for v in row] for row in X_test],
            "y": [int(v) for v in y_test],
        },
    )
    # Tabular reference for data-drift checks: the same held-out rows, one column per feature + label.
    with open(os.path.join(HERE, "heldout.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(FEATURES + ["label"])
        for row, label in zip(X_test, y_test):
            w.writerow([f"{float(v):.1f}" for v in row] + [int(label)])

    counts = np.bincount(y, minlength=3)
    print(f"classes ok/wear/failure: {counts.tolist()}")
    print(f"held-out accuracy (sklearn): {accuracy * 100:.2f}% on {N_HELDOUT} rows")
    print(f"model.onnx: {os.path.getsize(os.path.join(HERE, '1', 'model.onnx'))} bytes")


if __name__ == "__main__":
    main()
