"""``python -m bench``: every benchmark in one run, then the summary and docs/benchmarks.md.

Options: ``--quick`` (a small data set, for trying the bench itself; never written to the
docs), ``--only auth|risk|vectors|pgvector|replicas|observe``, ``--keep`` (keep the
temporary data folders).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench import auth, observe, pgvector, replicas, vectors
from bench.data import make_dataset
from bench.report import Results, console, print_section, print_summary, write_docs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 vectors; docs untouched")
    parser.add_argument(
        "--only",
        choices=("auth", "risk", "vectors", "pgvector", "replicas", "observe"),
        help="run one part only",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folders")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the docs")
    args = parser.parse_args(argv)

    results = Results()
    began = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    try:
        if args.only in (None, "auth"):
            console.rule("auth: password + TOTP login, token verification")
            auth.run(root, results)
        if args.only in (None, "risk"):
            from bench import risk  # loads the engine's bundled data: only when it runs

            console.rule("risk: the engine per login and per data-plane request")
            risk.run(root / "risk", results)
        if args.only in (None, "observe"):
            console.rule("observe: per-request instrumentation, in-process")
            observe.run(root, results)
        if args.only in (None, "vectors"):
            console.rule("vectors: data set and exact ground truth")
            dataset = make_dataset(n=20_000, queries=200) if args.quick else make_dataset()
            console.print(dataset.describe())
            console.rule("vectors: ingest over HTTP, then search with and without auth")
            vectors.run(root, dataset, results)
        if args.only in (None, "pgvector"):
            console.rule("pgvector: the same data on PostgreSQL, beside the embedded engine")
            if args.only == "pgvector":  # else the vectors part made the same data set
                dataset = make_dataset(n=20_000, queries=200) if args.quick else make_dataset()
            pgvector.run(root, dataset, results)
        if args.only in (None, "replicas"):
            console.rule("replicas: one, two and --workers 2 on one PostgreSQL")
            replicas.run(root, results)
    finally:
        if args.keep:
            console.print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    results.runtime_s = time.perf_counter() - began

    for section in results.sections:
        print_section(section)
    print_summary(results)
    if not (args.quick or args.no_docs or args.only):
        console.print(f"figures written to {write_docs(results)}")
    console.print(f"bench finished in {results.runtime_s / 60:.1f} min")


if __name__ == "__main__":
    main()
