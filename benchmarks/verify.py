"""``lkm verify`` of a whole tree against a shell loop of openssl doing the same per module.

    python benchmarks/verify.py [--rounds N] [--sample N] [--jobs N]

Uses the trixie amd64 tree of the test world and its kernel image (tests/support/world.py
prepares both): every module (4,230 ``.ko.xz``) checked against the certificate built into the
image. Measured in turn, ``--rounds`` times each (alternating, so a busy moment weighs on both
alike):

- lkm: ``lkm.verify.verify(paths, certificates)`` in this process, a pool of worker processes
  over all cores (each decompresses its own modules), the certificates read from the image
  first (timed with it);
- openssl: a bash loop over the same modules doing by hand what a user would: decompress with
  ``xz -dc``, read the signature length from the trailer, cut the unsigned part and the PKCS#7
  with ``head``/``tail``, and ``openssl cms -verify -binary -inform DER -noverify -certfile``
  against the same certificate (written out once, outside the timing).

Both must find every module valid (else the benchmark stops). Prints each round, the medians
and their ratio. Target: lkm at least 20x faster.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import row
from support import world

LOOP = r"""
cert=$1 tmp=$2 ok=0 bad=0
while IFS= read -r module; do
    xz -dc "$module" > "$tmp/m"
    size=$(stat -c %s "$tmp/m")
    set -- $(od -An -j $((size - 32)) -N 4 -tu1 "$tmp/m")
    siglen=$(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 ))
    head -c $((size - 40 - siglen)) "$tmp/m" > "$tmp/content"
    tail -c $((siglen + 40)) "$tmp/m" | head -c "$siglen" > "$tmp/sig"
    if openssl cms -verify -binary -inform DER -noverify -in "$tmp/sig" \
            -content "$tmp/content" -certfile "$cert" -out /dev/null 2>/dev/null; then
        ok=$((ok + 1))
    else
        bad=$((bad + 1))
    fi
done
echo "$ok $bad"
"""


def run_lkm(image: str, paths: list[str], jobs: int | None) -> float:
    from lkm.keys import kernel_certificates
    from lkm.verify import Verdict, verify

    start = time.perf_counter()
    certificates = kernel_certificates(image).certificates
    records = verify(paths, certificates, jobs=jobs)
    seconds = time.perf_counter() - start
    wrong = [r for r in records if r.verdict is not Verdict.VALID]
    if wrong or len(records) != len(paths):
        raise SystemExit(f"lkm: {len(wrong)} modules not valid, e.g. {wrong[:1]}")
    return seconds


def run_openssl(cert: str, listing: str, tmp: str, count: int) -> float:
    start = time.perf_counter()
    with open(listing, "rb") as stdin:
        done = subprocess.run(["bash", "-c", LOOP, "loop", cert, tmp], stdin=stdin,
                              capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0 or done.stdout.split() != [str(count), "0"]:
        raise SystemExit(f"openssl loop: {done.stdout!r} {done.stderr[-500:]!r}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", type=int, help="only every module up to this many")
    parser.add_argument("--jobs", type=int, help="lkm's worker processes (default: all cores)")
    options = parser.parse_args()

    from lkm.keys import kernel_certificates

    tree = world.tree("trixie-amd64")
    image = str(world.kernel_image("trixie-amd64"))
    paths = [str(path) for path in tree.modules()][: options.sample]
    with tempfile.TemporaryDirectory(prefix="lkm-verify-bench-") as tmp:
        cert = os.path.join(tmp, "kernel.pem")
        with open(cert, "w") as file:
            file.write("".join(c.pem() for c in kernel_certificates(image).certificates))
        listing = os.path.join(tmp, "modules")
        with open(listing, "w") as file:
            file.write("".join(f"{path}\n" for path in paths))
        print(f"{len(paths)} modules of {tree.name} against {os.path.basename(image)}'s key; "
              f"{options.rounds} rounds, alternating; cores: {os.cpu_count()}")  # fmt: skip
        samples: dict[str, list[float]] = {"lkm verify (in-process, all cores)": [],
                                           "bash loop of openssl cms -verify": []}  # fmt: skip
        for number in range(options.rounds):
            lkm_seconds = run_lkm(image, paths, options.jobs)
            openssl_seconds = run_openssl(cert, listing, tmp, len(paths))
            samples["lkm verify (in-process, all cores)"].append(lkm_seconds)
            samples["bash loop of openssl cms -verify"].append(openssl_seconds)
            print(f"round {number + 1}: lkm {lkm_seconds:.2f} s, openssl {openssl_seconds:.2f} s")
    medians = {label: statistics.median(times) for label, times in samples.items()}
    print()
    print(f"{'measurement':<38} {'median s':>9} {'min s':>9} {'per module ms':>14}")
    for label, times in samples.items():
        per = medians[label] / len(paths) * 1000
        print(f"{label:<38} {medians[label]:9.2f} {min(times):9.2f} {per:14.2f}")
    lkm_median, openssl_median = medians.values()
    print(f"openssl / lkm (medians): {openssl_median / lkm_median:.1f}x faster; target 20x")
    row("verify", f"signatures of {len(paths)} modules, in-process", lkm=lkm_median,
        reference="bash loop of openssl cms -verify", reference_value=openssl_median,
        target=0.05, samples=options.rounds)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
