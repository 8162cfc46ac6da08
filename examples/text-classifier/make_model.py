"""Trains the text-classifier example: a small BERT-style encoder (token + position embeddings, two
nn.TransformerEncoder layers, mean pooling over the attention mask, a linear head) on a sentiment corpus this script
writes itself, tokenised with this folder's tokenizer.json. Writes 1/model.onnx (inputs input_ids, attention_mask
INT64 [N, S], both dimensions dynamic; output logits FP32 [N, 2]) and expected.json (torch's logits and softmax for a
few raw texts, with their token ids).

The tokenisation is done here, in Python, from the vocabulary (BERT's normaliser and pre-tokeniser, greedy longest-
match WordPiece, [CLS] ... [SEP]): the `tokenizers` package is not installed beside this torch. The ids written to
expected.json are then checked against the Hugging Face tokenizer library itself (@huggingface/tokenizers, run with
node from the repository), so the model is trained on exactly the ids dais gives it.

    /usr/bin/python3 examples/text-classifier/make_model.py     (seeded, CPU, well under a minute)
"""
import json
import math
import os
import random
import subprocess
import unicodedata

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SEED = 18
MAX_LENGTH = 128  # config.yaml's preprocess.text.max_length: the position table covers it
MIN_HELDOUT_ACCURACY = 0.95

with open(os.path.join(HERE, "tokenizer.json")) as f:
    VOCAB = json.load(f)["model"]["vocab"]
CLS, SEP, UNK, PAD = VOCAB["[CLS]"], VOCAB["[SEP]"], VOCAB["[UNK]"], VOCAB["[PAD]"]


def is_punctuation(ch):
    # BERT's rule: ASCII symbols count as punctuation, plus Unicode's P* categories.
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def pre_tokenize(text):
    """BertNormalizer (clean text, lowercase; accents stripped, as lowercase implies) + BertPreTokenizer."""
    dropped = lambda ch: ord(ch) in (0, 0xFFFD) or (unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n\r")
    text = "".join(" " if ch.isspace() else ch for ch in text if not dropped(ch))
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    words = []
    for word in text.split():
        current = ""
        for ch in word:
            if is_punctuation(ch):
                if current:
                    words.append(current)
                    current = ""
                words.append(ch)
            else:
                current += ch
        if current:
            words.append(current)
    return words


def wordpiece(word):
    if len(word) > 100:
        return [UNK]
    ids, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in VOCAB:
                found = VOCAB[piece]
                break
            end -= 1
        if found is None:
            return [UNK]
        ids.append(found)
        start = end
    return ids


def encode(text):
    return [CLS] + [i for w in pre_tokenize(text) for i in wordpiece(w)] + [SEP]


# The corpus: templated reviews of everyday things. Held-out sentences pair subjects and sentiment words that training
# never saw together (each is seen with others), so accuracy there means the words were learned, not the sentences.
SUBJECTS = ["the movie", "this film", "the book", "that song", "the music", "the weather", "my day", "the game", "the team",
            "this phone", "the computer", "the room", "the kitchen", "the food", "the city", "the school", "her voice",
            "the show", "this car", "the hotel", "the road", "his answer", "the model", "the morning"]
POSITIVE = ["good", "great", "happy", "lovely", "wonderful", "excellent", "amazing", "fun", "beautiful", "nice",
            "brilliant", "perfect", "fantastic", "warm", "delightful", "superb"]
NEGATIVE = ["bad", "sad", "terrible", "awful", "boring", "horrible", "poor", "ugly", "dull", "cold", "broken",
            "disappointing", "dreadful", "slow", "annoying", "miserable"]
TEMPLATES = ["{s} was {w}", "{s} is {w}", "i think {s} was really {w}", "{s} was so {w} today", "what a {w} day, {s} was {w}",
             "honestly {s} is {w}", "{s} felt {w} and {w2}", "i found {s} {w}", "{s}? {w}!", "we all agreed {s} was {w}"]
LOVE = ["i love {s}", "we loved {s}", "thank you, {s} was {w}"]
HATE = ["i hate {s}", "we hated {s}", "never again, {s} was {w}"]


def corpus(rng):
    rows = []
    for s in SUBJECTS:
        for label, words, extra in ((1, POSITIVE, LOVE), (0, NEGATIVE, HATE)):
            for t in TEMPLATES + extra:
                for _ in range(2):
                    w, w2 = rng.choice(words), rng.choice(words)
                    rows.append((t.format(s=s, w=w, w2=w2), label, s, w))
    rng.shuffle(rows)
    held_subjects = set(SUBJECTS[::6])
    held_words = set(POSITIVE[::5] + NEGATIVE[::5])
    held = lambda r: r[2] in held_subjects and r[3] in held_words
    return [r for r in rows if not held(r)], [r for r in rows if held(r)]


class SentimentEncoder(nn.Module):
    def __init__(self, vocab_size, dim=64, heads=4, layers=2, ff=128, classes=2):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Embedding(MAX_LENGTH, dim)
        self.norm = nn.LayerNorm(dim)
        layer = nn.TransformerEncoderLayer(dim, heads, ff, dropout=0.1, activation="gelu", batch_first=True)
        # No nested tensors: the padded, exported graph must be the one that was trained.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, input_ids, attention_mask):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.norm(self.tokens(input_ids) + self.positions(positions))
        x = self.encoder(x, src_key_padding_mask=attention_mask == 0)
        mask = attention_mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled)


def batch(rows):
    ids = [encode(r[0]) for r in rows]
    length = max(len(i) for i in ids)
    input_ids = torch.tensor([i + [PAD] * (length - len(i)) for i in ids], dtype=torch.long)
    attention_mask = torch.tensor([[1] * len(i) + [0] * (length - len(i)) for i in ids], dtype=torch.long)
    return input_ids, attention_mask, torch.tensor([r[1] for r in rows], dtype=torch.long)


def accuracy(model, rows):
    model.eval()
    with torch.no_grad():
        ids, mask, labels = batch(rows)
        return (model(ids, mask).argmax(1) == labels).float().mean().item()


def library_ids(texts):
    """The ids @huggingface/tokenizers gives, or None when node or the package is not at hand."""
    script = ("import {Tokenizer} from '@huggingface/tokenizers'; import {readFileSync} from 'node:fs';"
              "const t = new Tokenizer(JSON.parse(readFileSync(process.argv[1], 'utf8')), {});"
              "console.log(JSON.stringify(JSON.parse(process.argv[2]).map((s) => t.encode(s).ids)));")
    try:
        out = subprocess.run(["node", "--input-type=module", "-e", script, os.path.join(HERE, "tokenizer.json"), json.dumps(texts)],
                             cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"note: the tokenizer library could not be run ({e}); ids not cross-checked")
        return None
    return json.loads(out.stdout)


def main():
    random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    train, heldout = corpus(random.Random(SEED))
    model = SentimentEncoder(len(VOCAB))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(4):
        model.train()
        random.shuffle(train)
        for k in range(0, len(train), 32):
            ids, mask, labels = batch(train[k:k + 32])
            optimizer.zero_grad()
            loss = loss_fn(model(ids, mask), labels)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}, held-out accuracy {accuracy(model, heldout):.3f}")
    train_acc, held_acc = accuracy(model, train), accuracy(model, heldout)
    print(f"{len(train)} training sentences (accuracy {train_acc:.3f}), {len(heldout)} held out (accuracy {held_acc:.3f})")
    assert held_acc >= MIN_HELDOUT_ACCURACY, f"held-out accuracy {held_acc:.3f} < {MIN_HELDOUT_ACCURACY}"

    model.eval()
    os.makedirs(os.path.join(HERE, "1"), exist_ok=True)
    path = os.path.join(HERE, "1", "model.onnx")
    ids, mask, _ = batch(heldout[:3])
    # Exported with gradients on: in eval mode under no_grad, torch 1.13's TransformerEncoderLayer takes its fused
    # fast path, which has no ONNX export.
    torch.onnx.export(model, (ids, mask), path, input_names=["input_ids", "attention_mask"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}},
                      opset_version=14)
    print(f"{os.path.relpath(path, REPO)}: {os.path.getsize(path)} bytes")

    texts = ["what a lovely day", "I love this movie, it is great!", "the film was boring and bad",
             "Terrible weather today.", "The hotel room was wonderful"]
    ids = [encode(t) for t in texts]
    lib = library_ids(texts)
    if lib is not None:
        assert lib == ids, f"this script's tokenisation differs from the tokenizer library's: {ids} vs {lib}"
    cases = []
    with torch.no_grad():
        for text, i in zip(texts, ids):
            t = torch.tensor([i], dtype=torch.long)
            logits = model(t, torch.ones_like(t))[0]
            cases.append({"text": text, "ids": i, "logits": [float(v) for v in logits], "probabilities": [float(v) for v in torch.softmax(logits, 0)]})
            print(f"{text!r}: {['negative', 'positive'][int(logits.argmax())]} {cases[-1]['probabilities']}")
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({"model": "examples/text-classifier/make_model.py", "heldout_accuracy": held_acc, "texts": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
