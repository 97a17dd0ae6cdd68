#!/usr/bin/env python3
"""One set of random stories110M-shaped Q8_0 weights in two files, for side-by-side
decode measurements against other engines (docs/benchmarks.md, "Side by side").

Writes, into the folder given:
- model.gguf: a GGUF (llama architecture) whose matrices are Q8_0 blocks (32 int8
  weights and an f16 scale), written with the `gguf` package; `oracle-quant convert`
  imports Q8_0 losslessly (W8, groups of 32) and llama.cpp runs it as is;
- model-v2.bin + tokenizer.bin: the same int8 weights and the same scales (as f32)
  in llama2.c's version-2 "Q8_0" export layout (256-byte header with the group
  size, f32 norms, then each matrix's int8 values followed by its group scales),
  which its `runq.c` reads, and the same vocabulary in llama2.c's tokenizer layout.

The vocabulary is synthetic (32000 pieces: `<unk>`, `<s>`, `</s>`, the 256 byte
tokens, the space and the letters, then generated pieces): the measurement is of the forward pass. Run with
the packages of scripts/fixtures/requirements.txt:

    python scripts/bench/same_weights.py /tmp/side-by-side
"""

import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType as T

DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, CONTEXT = 768, 2048, 12, 12, 12, 32000, 1024
GROUP = 32
SEED = 110


def vocabulary():
    """(pieces as text with '▁' for a space, scores, GGUF token types)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    # llama2.c's encoder prefixes a prompt with the piece of a lone space.
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["▁"] + list(letters)
    types = [2, 3, 3] + [6] * 256 + [1] * 27
    i = 0
    while len(pieces) < VOCAB:
        word = letters[i % 26] + letters[(i // 26) % 26] + str(i // 676)
        pieces.append(("▁" if i % 2 == 0 else "") + word)
        types.append(1)
        i += 1
    scores = [0.0] * 259 + [-float(k) for k in range(VOCAB - 259)]
    assert len(set(pieces)) == VOCAB
    return pieces, scores, types


def q8_0(rng, rows, cols):
    """Random Q8_0 weights: int8 values in [-127, 127] (each group reaching 127, as
    llama.cpp's quantizer makes them) and one f16 scale per group of 32, aimed at a
    trained model's spread (about 1/sqrt(fan-in))."""
    q = rng.integers(-127, 128, size=(rows, cols), dtype=np.int8)
    # As llama.cpp's quantizer leaves them: each group's largest |value| is 127.
    q.reshape(rows, cols // GROUP, GROUP)[:, :, 0] = rng.choice(np.array([-127, 127], dtype=np.int8), size=(rows, cols // GROUP))
    d = (rng.uniform(0.5, 1.5, size=(rows, cols // GROUP)) * 2.0 / np.sqrt(cols) / 127).astype(np.float16)
    return q, d


def gguf_blocks(q, d):
    """Q8_0 blocks (f16 scale, then 32 int8) as the raw rows GGUF stores."""
    rows, cols = q.shape
    blocks = np.empty((rows, cols // GROUP, 2 + GROUP), dtype=np.uint8)
    blocks[:, :, :2] = d.view(np.uint8).reshape(rows, cols // GROUP, 2)
    blocks[:, :, 2:] = q.view(np.uint8).reshape(rows, cols // GROUP, GROUP)
    return blocks.reshape(rows, -1)


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "side-by-side")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    pieces, scores, types = vocabulary()

    kv = DIM // HEADS * KV_HEADS
    embedding = q8_0(rng, VOCAB, DIM)
    names = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"]
    shapes = {"attn_q": (DIM, DIM), "attn_k": (kv, DIM), "attn_v": (kv, DIM), "attn_output": (DIM, DIM),
              "ffn_gate": (HIDDEN, DIM), "ffn_down": (DIM, HIDDEN), "ffn_up": (HIDDEN, DIM)}
    layers = [{n: q8_0(rng, *shapes[n]) for n in names} for _ in range(LAYERS)]
    att_norms = [rng.uniform(0.8, 1.2, size=DIM).astype(np.float32) for _ in range(LAYERS)]
    ffn_norms = [rng.uniform(0.8, 1.2, size=DIM).astype(np.float32) for _ in range(LAYERS)]
    final_norm = rng.uniform(0.8, 1.2, size=DIM).astype(np.float32)

    w = GGUFWriter(str(out / "model.gguf"), "llama")
    w.add_name("stories110m-shape-random-q8_0")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(DIM)
    w.add_feed_forward_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(DIM // HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_tensor("token_embd.weight", gguf_blocks(*embedding), raw_dtype=T.Q8_0)
    w.add_tensor("output_norm.weight", final_norm)
    for i, layer in enumerate(layers):
        for n in names:
            w.add_tensor(f"blk.{i}.{n}.weight", gguf_blocks(*layer[n]), raw_dtype=T.Q8_0)
        w.add_tensor(f"blk.{i}.attn_norm.weight", att_norms[i])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", ffn_norms[i])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # llama2.c version 2: no separate classifier (shared with the embedding, as the
    # GGUF has no output.weight).
    with open(out / "model-v2.bin", "wb") as f:
        f.write(struct.pack("<Ii", 0x616B3432, 2))
        f.write(struct.pack("<7i", DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, CONTEXT))
        f.write(struct.pack("<Bi", 1, GROUP))
        f.write(b"\0" * (256 - f.tell()))
        for norm in att_norms + ffn_norms + [final_norm]:
            f.write(norm.tobytes())
        v2_order = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"]
        for q, d in [embedding] + [layer[n] for n in v2_order for layer in layers]:
            f.write(q.tobytes())
            f.write(d.astype(np.float32).tobytes())
    with open(out / "tokenizer.bin", "wb") as f:
        text = [p.replace("▁", " ").encode() for p in pieces]
        f.write(struct.pack("<i", max(len(t) for t in text)))
        for t, s in zip(text, scores):
            f.write(struct.pack("<fi", s, len(t)))
            f.write(t)
    for name in ["model.gguf", "model-v2.bin", "tokenizer.bin"]:
        print(f"wrote {out / name} ({(out / name).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
