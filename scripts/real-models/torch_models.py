"""Real-scale architectures from torch, exported to ONNX with torch's own outputs as the reference.

Run by scripts/make-real-models.mjs (which caches the result):
    /usr/bin/python3 scripts/real-models/torch_models.py <model> <out-dir>
<model> is mobilenetv2, resnet50 or bert-mini. Needs Debian's python3-torch, python3-torchvision, python3-onnx.

No weights can be downloaded here, so the weights are torch's own initialisation under a fixed seed: the
architecture, size and arithmetic are the real ones (what serving speed, memory and build limits depend on);
the predictions mean nothing. Writes <out-dir>/model.onnx and <out-dir>/reference/ (manifest.json + raw
little-endian tensors), the outputs of torch's eager forward pass on fixed inputs.
"""
import json
import os
import sys

import numpy as np
import torch
from torch import nn

SEED = 20251206
OPSET = 13
DATATYPES = {np.dtype("float32"): "FP32", np.dtype("int64"): "INT64"}


class BertMini(nn.Module):
    """A BERT-style encoder ("BERT-mini" size: 4 layers, hidden 256, 4 heads, 1024 feed-forward, WordPiece's
    30,522-token vocabulary): token + position embeddings, a post-norm transformer encoder, and BERT's pooler
    (tanh of a dense layer on the first token)."""

    def __init__(self, vocab=30522, hidden=256, layers=4, heads=4, ff=1024, max_positions=512):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.position = nn.Embedding(max_positions, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        layer = nn.TransformerEncoderLayer(hidden, heads, ff, dropout=0.1, activation="gelu", batch_first=True)
        # No nested tensors: padded positions get the same arithmetic in eager torch as in the exported graph.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.pool = nn.Linear(hidden, hidden)

    def forward(self, input_ids, attention_mask):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.norm(self.word(input_ids) + self.position(positions))
        hidden = self.encoder(x, src_key_padding_mask=attention_mask == 0)
        return hidden, torch.tanh(self.pool(hidden[:, 0]))


def build(name):
    """The module, its input names/dynamic axes, output names, and the fixed reference cases."""
    g = torch.Generator().manual_seed(SEED)
    if name in ("mobilenetv2", "resnet50"):
        import torchvision

        model = torchvision.models.mobilenet_v2() if name == "mobilenetv2" else torchvision.models.resnet50()
        # Softmax in the graph, as in the other examples: served outputs are probabilities.
        model = nn.Sequential(model, nn.Softmax(dim=1))
        cases = {"batch-1": [torch.randn(1, 3, 224, 224, generator=g)]}
        if name == "mobilenetv2":
            cases["batch-2"] = [torch.randn(2, 3, 224, 224, generator=g)]
        return model, ["input"], {"input": {0: "N"}, "probabilities": {0: "N"}}, ["probabilities"], cases
    if name == "bert-mini":
        model = BertMini()
        ids1 = torch.randint(1000, 30522, (1, 16), generator=g)
        ids1[0, 0] = 101  # [CLS]
        ids2 = torch.randint(1000, 30522, (2, 12), generator=g)
        ids2[:, 0] = 101
        mask2 = torch.ones(2, 12, dtype=torch.int64)
        mask2[1, 8:] = 0  # the second row is padded after 8 tokens
        ids2[1, 8:] = 0
        cases = {"batch-1": [ids1, torch.ones(1, 16, dtype=torch.int64)], "batch-2-padded": [ids2, mask2]}
        axes = {"input_ids": {0: "N", 1: "S"}, "attention_mask": {0: "N", 1: "S"}, "last_hidden_state": {0: "N", 1: "S"}, "pooled": {0: "N"}}
        return model, ["input_ids", "attention_mask"], axes, ["last_hidden_state", "pooled"], cases
    raise SystemExit(f"unknown model {name}: mobilenetv2, resnet50 or bert-mini")


def write_tensor(folder, file, name, array):
    array = np.ascontiguousarray(array)
    array.astype(array.dtype.newbyteorder("<")).tofile(os.path.join(folder, file))
    return {"name": name, "datatype": DATATYPES[array.dtype], "shape": list(array.shape), "file": file}


def main():
    name, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model, input_names, axes, output_names, cases = build(name)
    model.eval()
    os.makedirs(os.path.join(out, "reference"), exist_ok=True)
    first = next(iter(cases.values()))
    torch.onnx.export(model, tuple(first), os.path.join(out, "model.onnx"), input_names=input_names,
                      output_names=output_names, dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)
    manifest = {"model": name, "source": f"torch {torch.__version__} eager forward (eval mode), seed {SEED}", "cases": []}
    ref = os.path.join(out, "reference")
    for case, inputs in cases.items():
        # Gradients on (parameters require grad) keep torch on its reference path, not the fused inference
        # fast path, so eager and exported arithmetic agree on padded positions.
        outputs = model(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        manifest["cases"].append({
            "name": case,
            "inputs": [write_tensor(ref, f"{case}.{n}.bin", n, t.numpy()) for n, t in zip(input_names, inputs)],
            "outputs": [write_tensor(ref, f"{case}.out.{n}.bin", n, t.detach().numpy()) for n, t in zip(output_names, outputs)],
        })
    with open(os.path.join(ref, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
