"""Generator backends for the packaged SmolLM2-135M-Instruct, measured in one run on the same
prompt (the reader's prompt for "Why did Putin travel to Beijing?"):

- transformers (the default: no compiler needed), float32 and bfloat16;
- llama-cpp-python, when installed. It has no wheel on PyPI and compiles in 4-8 minutes; on
  CPUs with AMX the default `-march=native` build segfaults on multi-token prompts, so build it
  with  CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir llama-cpp-python

    python benchmarks/generators.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = [
    {
        "role": "user",
        "content": (
            "[1] On Friday, Putin arrived in Beijing to attend the opening ceremony of the 2022 Winter "
            "Olympics.\n[1] After his face-to-face meeting with Xi, he ratified that Russia and China enjoy "
            '"unprecedented closeness.\n(Article date: 2022-02-04)\n\nQuestion: Why did Putin travel to '
            "Beijing?\nAnswer in a few words, citing the sentence like [1]."
        ),
    }
]
TOKENS = 24


def transformers_backend(dtype: str, threads: int, runs: int) -> tuple[float, float, str]:
    import torch

    from rag.config import Settings
    from rag.generate import smollm2_gguf
    from rag.generate.hf import TransformersGenerator, dequantized_checkpoint

    location = dequantized_checkpoint(smollm2_gguf(), Settings.from_env().cache_dir)
    gen = TransformersGenerator(location, "SmolLM2", threads, dtype)
    inputs = gen._inputs(PROMPT)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        with torch.inference_mode():
            out = gen.model.generate(
                **inputs,
                max_new_tokens=TOKENS,
                min_new_tokens=TOKENS,
                do_sample=False,
                pad_token_id=gen.tokenizer.eos_token_id,
            )
        times.append(time.perf_counter() - t)
    first = time.perf_counter()
    next(iter(gen.stream(PROMPT, TOKENS)))
    ttft = time.perf_counter() - first
    text = gen.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return statistics.median(times), ttft, text


def llama_cpp_backend(threads: int, runs: int) -> tuple[float, float, str]:
    from llama_cpp import Llama

    from rag.generate import smollm2_gguf

    llm = Llama(model_path=str(smollm2_gguf()), n_ctx=2048, n_threads=threads, verbose=False)
    times = []
    for _ in range(runs):
        llm.reset()
        t = time.perf_counter()
        out = llm.create_chat_completion(messages=PROMPT, max_tokens=TOKENS, temperature=0, top_k=1)
        times.append(time.perf_counter() - t)
    llm.reset()
    t = time.perf_counter()
    next(
        iter(
            llm.create_chat_completion(
                messages=PROMPT, max_tokens=TOKENS, temperature=0, top_k=1, stream=True
            )
        )
    )
    ttft = time.perf_counter() - t
    return statistics.median(times), ttft, out["choices"][0]["message"]["content"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rows = []
    for dtype in ("float32", "bfloat16"):
        total, ttft, text = transformers_backend(dtype, args.threads, args.runs)
        rows.append((f"transformers {dtype}", total, ttft, text))
    try:
        total, ttft, text = llama_cpp_backend(args.threads, args.runs)
        rows.append(("llama-cpp-python (Q4_1)", total, ttft, text))
    except ImportError:
        print("llama-cpp-python is not installed: skipped", file=sys.stderr)
    print(f"| backend | {TOKENS} tokens, median of {args.runs} | first token | output |")
    print("|---|---|---|---|")
    for name, total, ttft, text in rows:
        print(f"| {name} | {total:.2f} s | {ttft:.2f} s | {text!r} |")


if __name__ == "__main__":
    main()
