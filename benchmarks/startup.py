"""Start-up of the ``omnisep`` command: ``--help`` and one ``separate`` of the shipped
example (README's quick start): wall and CPU time (user + sys) of fresh processes, medians of
``--repeat``. On a shared machine the CPU time is the steadier figure: the start-up is
mostly one thread, so on an idle machine the wall time is about the CPU time.

``separate`` is timed twice: with an empty text cache for a text the bundle does not seed
(MiniLM and its libraries load) and for ``cello`` (seeded: no text model).

    python benchmarks/startup.py --repeat 3
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "omnisep_plugin" / "pretrained" / "default" / "example_mixture.wav"


def wall(args, env) -> tuple:
    """(wall s, CPU s) of one ``omnisep`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "omnisep_plugin.bin.cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return time.perf_counter() - start, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMNISEP_CACHE": str(Path(tmp) / "cache"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        sep = ["separate", str(EXAMPLE), "--model", "default", "--force", "--out", str(Path(tmp) / "o")]
        rows = {"omnisep --help": [wall(["--help"], env) for _ in range(args.repeat)]}
        cold = []
        for i in range(args.repeat):
            cold.append(wall([*sep, "--text", f"a bowed cello, take {i}"], env))  # unseen text
        rows["omnisep separate example, new text (MiniLM loads)"] = cold
        rows["omnisep separate example --text cello (seeded)"] = [
            wall([*sep, "--text", "cello"], env) for _ in range(args.repeat)]
    for name, runs in rows.items():
        walls, cpus = zip(*runs)
        print(f"{name}: wall median {statistics.median(walls):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in walls)}), CPU median "
              f"{statistics.median(cpus):.2f} s")
    print(f"load average: {os.getloadavg()[0]:.2f}, CPUs: {os.cpu_count()}")


if __name__ == "__main__":
    main()
