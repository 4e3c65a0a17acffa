#!/usr/bin/env python3
"""The `copse` command's bad-input table (issue 6): every bad call exits with its documented
code (2 usage, 3 bad data, 4 I/O or not an index, 5 damaged index) and a "copse CMD: ..."
message, and leaves things usable: an existing index at the output path stays byte for byte
as it was, no temporary file is left beside it, and the good index still answers.
Also runs `copse verify` on every golden file (tests/golden/files) and checks its exit code.

    python3 tests/hardening/cli_bad_input.py --copse build-test/release/cli/copse \
        [--golden tests/golden/files]
Prints one line per case and "N passed, N failed". Standard library only.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

OK, USAGE, DATA, IO, DAMAGED = 0, 2, 3, 4, 5
passed = failed = 0


def result(ok, name, detail=""):
    global passed, failed
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok else "\n  " + detail))
    sys.stdout.flush()
    if ok:
        passed += 1
    else:
        failed += 1


def run(copse, args, stdin=None, timeout=60):
    try:
        p = subprocess.run([copse] + [str(a) for a in args], input=stdin, capture_output=True,
                           timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return "timeout", "", ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--copse", required=True)
    ap.add_argument("--golden")
    opts = ap.parse_args()
    copse = os.path.abspath(opts.copse)
    tmp = tempfile.mkdtemp(prefix="copse-cli-bad-")
    P = lambda name: os.path.join(tmp, name)

    def write(name, text):
        with open(P(name), "w") as f:
            f.write(text)
        return P(name)

    rows = "".join("%d,%g,%g,%g\n" % (i, i * 0.5, (i * 7) % 5 - 2, (i % 3) * 1.5) for i in range(40))
    good_csv = write("good.csv", "id,a,b,c\n" + rows)
    rc, out, err = run(copse, ["build", "-i", good_csv, "-m", "euclidean", "-t", "3", "-q",
                               "-o", P("good.copse")])
    if rc != 0:
        result(False, "build the good index", err)
        print("%d passed, %d failed" % (passed, failed))
        return 1
    with open(P("good.copse"), "rb") as f:
        good_bytes = f.read()
    rc, ref_out, _ = run(copse, ["query", P("good.copse"), "--item", 3, "-k", 5])

    def still_usable(name):
        """The target is the old index, nothing is left beside it, queries answer as before."""
        with open(P("target.copse"), "rb") as f:
            same = f.read() == good_bytes
        stray = [n for n in os.listdir(tmp) if ".tmp-" in n]
        rc, out, _ = run(copse, ["query", P("target.copse"), "--item", 3, "-k", 5])
        return same and not stray and rc == 0 and out == ref_out, \
            "target changed: %s, stray files: %s, query exit %s" % (not same, stray, rc)

    def case(name, args, want, stdin=None, target=True):
        shutil.copy(P("good.copse"), P("target.copse"))
        rc, out, err = run(copse, args, stdin)
        msg = any(line.startswith("copse") for line in err.splitlines())
        ok = rc == want and (want == OK or msg)
        detail = "exit %s, wanted %s; stderr: %s" % (rc, want, err.strip()[:300])
        if ok and target:
            ok, detail = still_usable(name)
        result(ok, name, detail)

    T = P("target.copse")
    build = ["build", "-m", "euclidean", "-t", "2", "-q", "-o", T]
    # Bad input data: the build fails and the index already at the output stays.
    data_cases = [
        ("NaN in a row", "1,2,3\n4,nan,6\n"),
        ("NaN spelled NaN", "1,2,3\n4,NaN,6\n"),
        ("infinity", "1,2,3\n4,inf,6\n"),
        ("-infinity", "1,2,3\n-inf,5,6\n"),
        ("beyond float range", "1,2,3\n4,1e39,6\n"),
        ("a row with too few components", "1,2,3\n4,5\n"),
        ("a row with too many components", "1,2,3\n4,5,6,7\n"),
        ("a word in a number column", "1,2,3\n4,five,6\n"),
        ("an empty field", "1,2,3\n4,,6\n"),
    ]
    for name, text in data_cases:
        case("build: " + name, build + ["-i", write("bad.csv", text), "--no-header", "--no-ids"], DATA)
    case("build: negative id", build + ["-i", write("neg.csv", "id,a,b\n-1,1,2\n")], DATA)
    case("build: id beyond int64", build + ["-i", write("big.csv", "id,a,b\n9223372036854775808,1,2\n")], DATA)
    case("build: empty input", build + ["-i", write("empty.csv", ""), "-f", "csv"], DATA)
    case("build: header only", build + ["-i", write("hdr.csv", "a,b,c\n"), "--header"], DATA)
    case("build: fvecs with a negative dimension",
         build + ["-i", P("neg.fvecs")], DATA) if open(P("neg.fvecs"), "wb").write(
        b"\xff\xff\xff\xff" + b"\0" * 16) else None
    case("build: fvecs dimension 2^31-1, file short",
         build + ["-i", P("huge.fvecs")], DATA) if open(P("huge.fvecs"), "wb").write(
        b"\xff\xff\xff\x7f" + b"\0" * 16) else None
    # Bad paths and options.
    os.mkdir(P("adir"))
    case("build: input is a directory", build + ["-i", P("adir"), "-f", "csv"], IO)
    case("build: input missing", build + ["-i", P("missing.csv")], IO)
    case("build: output is a directory", ["build", "-i", good_csv, "-m", "euclidean", "-q", "-o", P("adir")], IO)
    result(os.path.isdir(P("adir")), "build: the directory in the way is still a directory")
    case("build: output folder missing", ["build", "-i", good_csv, "-m", "euclidean", "-q", "-o", P("nope/x.copse")], IO)
    case("build: output in /proc", ["build", "-i", good_csv, "-m", "euclidean", "-q", "-o", "/proc/copse-x.copse"], IO)
    case("build: on-disk, output is a directory", ["build", "-i", good_csv, "-m", "euclidean", "-q", "--on-disk", "-o", P("adir")], IO)
    case("build: unknown metric", build[:1] + ["-i", good_csv, "-m", "cosinus", "-o", T], USAGE)
    case("build: 0 trees", ["build", "-i", good_csv, "-m", "euclidean", "-t", "0", "-o", T], USAGE)
    case("build: -5 trees", ["build", "-i", good_csv, "-m", "euclidean", "-t", "-5", "-o", T], USAGE)
    case("build: leaf size 1", ["build", "-i", good_csv, "-m", "euclidean", "--leaf-size", "1", "-o", T], USAGE)
    case("build: trees not a number", ["build", "-i", good_csv, "-m", "euclidean", "-t", "many", "-o", T], USAGE)
    case("build: standard input without a format", build + ["-i", "-"], USAGE, stdin=b"1,2\n")

    # Queries on the good index.
    G = P("good.copse")
    q = lambda *a: ["query", G] + list(a)
    case("query: vector with NaN", q("--vector", "1,nan,3"), DATA)
    case("query: vector with inf", q("--vector", "1,inf,3"), DATA)
    case("query: vector with 2 components for dimension 3", q("--vector", "1,2"), DATA)
    case("query: vector with 4 components", q("--vector", "1,2,3,4"), DATA)
    case("query: vector not numbers", q("--vector", "a,b,c"), USAGE)
    case("query: unknown item", q("--item", "999"), DATA)
    case("query: item beyond int64", q("--item", "9223372036854775808"), USAGE)
    case("query: k -1", q("--item", "3", "-k", "-1"), USAGE)
    case("query: search_k -2", q("--item", "3", "--search-k", "-2"), USAGE)
    case("query: k larger than the index", q("--item", "3", "-k", "1000000"), OK)
    case("query: k 0", q("--item", "3", "-k", "0"), USAGE)  # -k is 1..1000000
    case("query: search_k 0", q("--item", "3", "--search-k", "0"), OK)
    case("query: search_k INT64_MAX", q("--item", "3", "--search-k", "9223372036854775807"), OK)
    # The same on a forest without a graph (this hung until 24edbc8).
    rc, _, err = run(copse, ["build", "-i", good_csv, "-m", "euclidean", "-t", "3", "-q",
                             "--graph", "0", "-o", P("forest.copse")])
    result(rc == 0, "build a forest without a graph", err)
    case("query: search_k INT64_MAX, no graph",
         ["query", P("forest.copse"), "--item", "3", "--search-k", "9223372036854775807"], OK)
    case("query: search_k 2^62, no graph",
         ["query", P("forest.copse"), "--item", "3", "--search-k", "4611686018427387904"], OK)
    case("query: query file with the wrong dimension", q("-q", write("q2.csv", "1,2\n3,4\n"), "--no-header"), DATA)
    case("query: query file with NaN", q("-q", write("qn.csv", "1,2,3\nnan,1,1\n"), "--no-header"), DATA)
    case("query: query file is a directory", q("-q", P("adir"), "-f", "csv"), IO)
    case("query: query file empty", q("-q", write("qe.csv", ""), "-f", "csv"), DATA)
    case("query: unknown label (index without labels)", q("--label", "river"), DATA)
    case("query: --tags without any:/all:", q("--item", "3", "--tags", "3,5"), USAGE)
    case("query: --tags tag 64", q("--item", "3", "--tags", "any:64"), USAGE)
    case("query: --tags tag beyond int64", q("--item", "3", "--tags", "all:99999999999999999999"), USAGE)
    case("query: --tags no tags", q("--item", "3", "--tags", "all:"), USAGE)
    case("query: --allow missing", q("--item", "3", "--allow", P("missing.txt")), IO)
    case("query: --allow is a directory", q("--item", "3", "--allow", P("adir")), IO)
    case("query: --allow not an id", q("--item", "3", "--allow", write("al.txt", "1\n2x\n")), DATA)
    case("query: --allow id beyond int64", q("--item", "3", "--allow", "-"), DATA,
         stdin=b"9223372036854775808\n")
    case("query: --allow binary junk", q("--item", "3", "--allow", "-"), DATA, stdin=b"\xff\0\x01\n")
    case("query: --allow empty: no results", q("--item", "3", "--allow", "-"), OK, stdin=b"")
    case("build: --tags file missing", build + ["-i", good_csv, "--tags", P("missing.txt")], IO)
    case("build: --tags unknown id", build + ["-i", good_csv, "--tags", write("t1.txt", "99999 1\n")], DATA)
    case("build: --tags tag 64", build + ["-i", good_csv, "--tags", write("t2.txt", "1 64\n")], DATA)
    case("build: --tags negative id", build + ["-i", good_csv, "--tags", write("t3.txt", "-1 2\n")], DATA)
    case("build: CSV tags column, bad tag", build + ["-i", write("tg.csv", "a,b,tags\n1,2,x\n")], DATA)
    case("query: index missing", ["query", P("missing.copse"), "--item", "1"], IO)
    case("query: index is a directory", ["query", P("adir"), "--item", "1"], IO)
    case("query: index is a CSV file", ["query", good_csv, "--item", "1"], IO)
    case("info: index is a directory", ["info", P("adir")], IO)
    case("verify: index missing", ["verify", P("missing.copse")], IO)
    case("verify: the good index", ["verify", G], OK)

    # Full disk and read-only file system, when a tmpfs can be mounted here.
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0:
        d = P("mnt")
        os.mkdir(d)
        write("big.csv", "".join("%d,%d,%d\n" % (i, i * 7 % 101, i * 13 % 97) for i in range(30000)))
        script = ("mount -t tmpfs -o size=256k tmpfs '%s' && cp '%s' '%s/x.copse' && "
                  "'%s' build -i '%s/big.csv' -f csv --no-header -m euclidean -q -o '%s/x.copse'; rc=$?; "
                  "cmp -s '%s' '%s/x.copse' && ! ls '%s' | grep -q tmp- && echo intact; exit $rc") % (
            d, G, d, copse, tmp, d, G, d, d)
        p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, timeout=120)
        out = p.stdout.decode()
        result(p.returncode == IO and "intact" in out,
               "build: full disk (256 kB tmpfs) exits 4, the index there stays whole",
               "exit %d, %s %s" % (p.returncode, out, p.stderr.decode()[-300:]))
    else:
        print("skip build: full disk (cannot mount a tmpfs here)")

    # copse verify on every golden file: the exit code follows the expected status.
    if opts.golden:
        codes = {"OK": OK, "NOTCOPSE": IO, "VERSION": IO, "CORRUPT": DAMAGED}
        bad = []
        n = 0
        with open(os.path.join(opts.golden, "expected.txt")) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                name, load, verify = line.split()
                want = codes[load] if load != "OK" else codes[verify]
                rc, _, err = run(copse, ["verify", os.path.join(opts.golden, name + ".copse")])
                n += 1
                if rc != want:
                    bad.append("%s: exit %s, wanted %s (%s)" % (name, rc, want, err.strip()[:120]))
        result(not bad, "verify: %d golden files give their exit codes" % n, "\n  ".join(bad[:10]))
    shutil.rmtree(tmp)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
