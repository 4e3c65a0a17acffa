#!/usr/bin/env python3
"""Runs the programs in examples/ on small data made here, so they cannot rot: the C one is
compiled as a user would (cc, the installed header's folder, the static library) and each
program's answers are checked against brute force. A layer of `make test` (tests/run-all.sh,
after the Python tests, which build the module in place in python/copse).

    python3 tests/cli/run_examples.py --lib build-test/release/libcopse.a
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_tests import (ROOT, Failure, brute_force, f32, gaussian, idx_bytes,  # noqa: E402
                       write_w2v_bin)

EXAMPLES = os.path.join(ROOT, "examples")


def run(args, rc=0, env=None):
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=300, env=env)
    out, err = p.stdout.decode(), p.stderr.decode()
    if p.returncode != rc:
        raise Failure("%s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                      % (" ".join(str(a) for a in args), p.returncode, rc, out, err))
    return out, err


def expect(cond, what):
    if not cond:
        raise Failure(what)


def python_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def check_nearest_images(tmp, lib):
    exe = os.path.join(tmp, "nearest_images")
    cc = os.environ.get("CC", "cc")
    run([cc, "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(ROOT, "include"),
         os.path.join(EXAMPLES, "nearest_images.c"), lib, "-lpthread", "-lm", "-o", exe])
    # 600 images of 28 x 28: a bright band per class at its own height, plus noise.
    rng = random.Random(31)
    rows = []
    for i in range(600):
        img = [rng.randint(0, 60) for _ in range(784)]
        for y in range(2 * (i % 10) + 2, 2 * (i % 10) + 6):
            for x in range(4, 24):
                img[y * 28 + x] = rng.randint(150, 255)
        rows.append(img)
    images = os.path.join(tmp, "train-images-idx3-ubyte")
    with open(images, "wb") as f:
        f.write(idx_bytes(rows, [28, 28]))
    index = os.path.join(tmp, "images.copse")
    out, _ = run([exe, images, index, 4])
    lines = out.splitlines()
    expect(lines[0].startswith(index + ": 600 images of 784 pixels"), "header: " + lines[0])
    expect(len(lines) == 5, "nearest_images printed:\n" + out)
    for q, line in enumerate(lines[1:]):
        ids = [int(x) for x in re.findall(r" (\d+) \(", line)]
        truth = brute_force(rows, rows[q], 6)[1:]
        said = int(re.search(r"\[(\d) of 5", line).group(1))
        expect(said == len(set(ids) & set(truth)) and said >= 4,
               "image %d: %r, brute force %r: %s" % (q, ids, truth, line))
    run([exe, os.path.join(tmp, "missing")], rc=2)
    _, err = run([exe, os.path.join(tmp, "missing"), index], rc=1)
    expect("not an uncompressed IDX file" in err, "missing file: " + err)


def check_word_neighbours(tmp):
    words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy", "river",
             "chinese", "yangtze", "delta"]
    rows = gaussian(len(words), 6, 32)
    vectors = os.path.join(tmp, "w.bin")
    write_w2v_bin(vectors, words, rows)
    stored = [[f32(x) for x in r] for r in rows]
    unit = [[x / sum(y * y for y in v) ** 0.5 for x in v] for v in stored]
    target = [a + b for a, b in zip(unit[9], unit[8])]
    want = [words[i] for i in brute_force(stored, target, 7, "angular") if i not in (8, 9)][:5]
    script = os.path.join(EXAMPLES, "word_neighbours.py")
    index = os.path.join(tmp, "w.ann")
    for query, note in ((["chinese", "river"], False), (["Chinese", "river"], True)):
        out, err = run([sys.executable, script, vectors, "--index", index, "-k", 5] + query,
                       env=python_env())
        got = [line.split()[1] for line in out.splitlines()[1:]]
        expect(got == want, "word_neighbours %r: %r, expected %r" % (query, got, want))
        expect(("using 'chinese'" in err) == note, "case note: %r" % err)
    expect(os.path.exists(index), "--index did not save the index")
    _, err = run([sys.executable, script, vectors, "zzz"], rc=1, env=python_env())
    expect("'zzz' is not in" in err, "unknown word: " + err)


def check_batch_queries(tmp):
    script = os.path.join(EXAMPLES, "batch_queries.py")
    out, _ = run([sys.executable, script, "--n", 5000], env=python_env())
    recalls = [float(r) for r in re.findall(r"recall@10 ([0-9.]+)", out)]
    expect(len(recalls) == 3 and recalls[-1] >= 0.95 and recalls == sorted(recalls),
           "batch_queries recall by search_k:\n" + out)
    import numpy as np
    rng = np.random.default_rng(5)
    data = rng.standard_normal((800, 16)).astype(np.float64)
    queries = data[:50] + 0.001
    np.save(os.path.join(tmp, "d.npy"), data)
    np.save(os.path.join(tmp, "q.npy"), queries)
    out, _ = run([sys.executable, script, os.path.join(tmp, "d.npy"),
                  os.path.join(tmp, "q.npy"), "--search-k", "800"], env=python_env())
    expect("50 queries" in out and "recall@10 1.0000" in out and
           "first query: ids [0," in out, "batch_queries on .npy files:\n" + out)


CHECKS = [("nearest_images.c", check_nearest_images), ("word_neighbours.py", check_word_neighbours),
          ("batch_queries.py", check_batch_queries)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", required=True, help="the static library (libcopse.a)")
    args = ap.parse_args()
    lib = os.path.abspath(args.lib)
    passed = failed = 0
    for name, check in CHECKS:
        tmp = tempfile.mkdtemp(prefix="copse-example-")
        try:
            check(tmp, lib) if check is check_nearest_images else check(tmp)
            passed += 1
            print("ok   examples/%s" % name)
        except (Failure, subprocess.TimeoutExpired) as e:
            failed += 1
            print("FAIL examples/%s: %s" % (name, e))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
