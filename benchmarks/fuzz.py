"""Feed hundreds of mutated recordings to the decoder and the CLI; count the outcomes.

    python benchmarks/fuzz.py [--decode 400] [--cli 40] [--seed 0]

Each mutated file (a truncation, bit flips in the body or header, a zeroed or repeated
stretch of one of ``../shared/audio``'s recordings) must decode to finite samples or be
refused with a one-line error naming it, within its own timeout; through the CLI it must
end in a video or a one-line ``error:`` and no file. Any other ending stops the run with
the file's name. The same checks run on a few dozen files in CI (``tests/test_fuzz.py``).
"""

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fuzzing import KINDS, check_cli, check_decode, mutated_files  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decode", type=int, default=400, help="files for the decoder")
    parser.add_argument("--cli", type=int, default=40, help="files for the CLI")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for what, count, check in (("decoder", args.decode, check_decode),
                                   ("CLI", args.cli, None)):
            folder = Path(tmp) / what
            folder.mkdir()
            files = mutated_files(folder, count, seed=args.seed + (what == "CLI"))
            tally = collections.Counter()
            began = time.perf_counter()
            for path in files:
                kind = next(k for k in KINDS if k in path.name)
                outcome = check(path) if check else check_cli(path, folder / f"{path.stem}.mp4")
                tally[kind, outcome] += 1
            print(f"{what}: {count} files in {time.perf_counter() - began:.0f} s, no hang, "
                  "crash or traceback")
            for kind in KINDS:
                cells = ", ".join(f"{o} {tally[kind, o]}" for o in ("decoded", "video",
                                                                    "refused")
                                  if tally[kind, o])
                print(f"  {kind:15} {cells}")


if __name__ == "__main__":
    main()
