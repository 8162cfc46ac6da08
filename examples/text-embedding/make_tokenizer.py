"""Writes tokenizer.json for the text examples (text-embedding, text-classifier): a BERT-style WordPiece tokenizer
with BERT's special-token ids ([PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103) and a small generated
vocabulary: ASCII letters, digits and punctuation (so every English text tokenizes), their '##' continuations, and
a few hundred common English words. It is NOT the vocabulary a pretrained BERT was trained with: the text-embedding
model has random weights (any vocabulary inside its 30,522 ids serves the pipeline), and the text-classifier is
trained on this vocabulary by its own make_model.py (remake it after changing this file).

    /usr/bin/python3 examples/text-embedding/make_tokenizer.py
"""
import json
import os
import string

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = [os.path.join(HERE, "tokenizer.json"), os.path.join(HERE, "..", "text-classifier", "tokenizer.json")]

WORDS = """the of and to in is was for on that with as by at from it his an are were which be this has had not
but or have they one their its all she he her we there been also more who when time can into some only other new
first two would after them then what about up out so than years most over many may these like could no world
any people where such through back state just how city film between because under year each both during school
university well while since made later part three being known called even before used well long war first good
great day way house home family life work play game team water light music night right left down turn stop go yes
kitchen room door window car road street man woman child old young big small high low open close start end red
green blue black white today tomorrow morning evening weather rain sun cold hot warm happy sad love movie book
song cat dog bird fish tree flower sat ran fast slow mat table chair phone computer model data learning machine
text image sound voice speech word sentence language question answer help please thank you hello goodbye""".split()


def main():
    special = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = list(string.ascii_lowercase) + list(string.digits) + list(string.punctuation)
    vocab_list = special + pieces + ["##" + p for p in string.ascii_lowercase + string.digits]
    seen = set(vocab_list)
    for w in WORDS:
        if w not in seen:
            seen.add(w)
            vocab_list.append(w)
    vocab = {t: i for i, t in enumerate(vocab_list)}
    assert vocab["[CLS]"] == 101 and vocab["[SEP]"] == 102 and len(vocab) < 30522
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
             for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]]
    cls, sep = {"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [cls, {"Sequence": {"id": "A", "type_id": 0}}, sep],
            "pair": [cls, {"Sequence": {"id": "A", "type_id": 0}}, sep, {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]}},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab},
    }
    for path in OUT:
        with open(path, "w") as f:
            json.dump(tok, f, separators=(",", ":"))
            f.write("\n")
        print(f"{os.path.relpath(path)}: {len(vocab)} tokens")


main()
