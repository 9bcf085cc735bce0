#!/usr/bin/env python
"""Run every benchmark in bench/ in turn (`make bench`).

A benchmark is a script bench/NAME_bench.py that writes its results to bench/results/NAME.json. Each runs as
a process of its own, so one benchmark's memory and imports do not leak into the next one's measurements.
This script then writes bench/results/run.json: which benchmarks ran, their exit codes and times, and their
results gathered in one file.

    .venv/bin/python bench/run.py                       # all benchmarks, default sizes
    .venv/bin/python bench/run.py -k import -- --n 100000 --skip-layermapping
    .venv/bin/python bench/run.py -k intake_during_import    # complaint intake while a facilities import runs
Arguments after `--` go to every selected benchmark.
"""
import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def benchmarks():
    return {p.name[: -len("_bench.py")]: p for p in sorted(BENCH_DIR.glob("*_bench.py"))}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    passthrough = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    found = benchmarks()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", "--only", action="append", choices=sorted(found),
                        help="run only this benchmark (may be repeated)")
    args = parser.parse_args(argv)
    selected = args.only or list(found)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    summary = {"started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "args": passthrough, "benchmarks": []}
    failed = False
    for name in selected:
        print(f"== {name} ==", flush=True)
        started = time.perf_counter()
        rc = subprocess.run([sys.executable, str(found[name]), *passthrough], cwd=BENCH_DIR.parent).returncode
        result_file = RESULTS_DIR / f"{name}.json"
        entry = {"name": name, "exit_code": rc, "seconds": round(time.perf_counter() - started, 1),
                 "results": str(result_file.relative_to(BENCH_DIR.parent))}
        if rc == 0 and result_file.exists():
            entry["result"] = json.loads(result_file.read_text(encoding="utf-8"))
        else:
            failed = True
        summary["benchmarks"].append(entry)
        print(f"== {name}: exit {rc}, {entry['seconds']} s ==\n", flush=True)
    (RESULTS_DIR / "run.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"summary: {RESULTS_DIR / 'run.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
