#!/usr/bin/env python3
"""Writes the starting corpus of each fuzz target into tests/fuzz/corpus/TARGET/ (standard
library only). The index targets start from the valid golden files; each reader from a few
small well-formed inputs of its format, plain and gzip-compressed. `make -C tests/fuzz merge`
later adds what the fuzzers find."""
import gzip
import os
import shutil
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "corpus")


def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def both(target, name, data):
    put(target, name, data)
    put(target, name + ".gz", gzip.compress(data, mtime=0))


rows = [[0.5, -1.0, 2.0], [1.0, 0.0, -3.25], [7.0, 8.0, 9.0]]

# fvecs / ivecs / bvecs: per record, int32 dim then dim elements.
both("reader-fvecs", "three", b"".join(struct.pack("<i3f", 3, *r) for r in rows))
both("reader-ivecs", "three", b"".join(struct.pack("<i3i", 3, 1, 2, 3) for _ in rows))
both("reader-bvecs", "three", b"".join(struct.pack("<i3B", 3, 1, 2, 255) for _ in rows))
put("reader-fvecs", "ragged", struct.pack("<i3f", 3, 1, 2, 3) + struct.pack("<i2f", 2, 1, 2))


def npy(descr, shape, payload, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", shape)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


flat = [v for r in rows for v in r]
both("reader-npy", "f4", npy("<f4", "(3, 3)", struct.pack("<9f", *flat)))
put("reader-npy", "f8", npy("<f8", "(3, 3)", struct.pack("<9d", *flat)))
put("reader-npy", "be-f4", npy(">f4", "(3, 3)", struct.pack(">9f", *flat)))
put("reader-npy", "u1-fortran", npy("|u1", "(2, 3)", bytes([1, 2, 3, 4, 5, 6]), True))
put("reader-npy", "i2-1d", npy("<i2", "(4,)", struct.pack("<4h", 1, -2, 3, -4)))

# IDX: magic 0 0 type ndim, big-endian dims, data.
both("reader-idx", "u8-images", b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 2, 2) + bytes(range(8)))
put("reader-idx", "f32", b"\x00\x00\x0d\x02" + struct.pack(">2I", 2, 3) + struct.pack(">6f", *flat[:6]))
put("reader-idx", "i16", b"\x00\x00\x0b\x02" + struct.pack(">2I", 2, 2) + struct.pack(">4h", 1, 2, -3, 4))

# CSV / TSV: the first byte picks the header/ids options (see fuzz_reader.c).
csv = b"id,a,b,c\n1,0.5,-1,2\n2,1,0,-3.25\n9,7,8,9\n"
for opt in (0, 4, 8):
    both("reader-csv", "header-ids-%d" % opt, bytes([opt]) + csv)
both("reader-csv", "plain", bytes([1]) + b"0.5,-1,2\n1,0,-3.25\r\n7,8e0,9\n")
put("reader-csv", "quoted", bytes([0]) + b'"x","y"\n"1","2"\n')
both("reader-tsv", "plain", bytes([1]) + b"0.5\t-1\t2\n1\t0\t-3.25\n")
put("reader-tsv", "header", bytes([8]) + b"id\tx\ty\n3\t1\t2\n4\t5\t6\n")

# word2vec text and binary.
both("reader-word2vec", "header", b"3 3\nthe 0.5 -1 2\nriver 1 0 -3.25\nchina 7 8 9\n")
put("reader-word2vec", "no-header", b"the 0.5 -1 2\nriver 1 0 -3.25\n")
w2vb = b"2 3\n" + b"".join(w + b" " + struct.pack("<3f", *r) + b"\n"
                           for w, r in ((b"the", rows[0]), (b"river", rows[1])))
both("reader-word2vec-bin", "two", w2vb)
put("reader-word2vec-bin", "no-newlines", b"2 3\n" + b"".join(
    w + b" " + struct.pack("<3f", *r) for w, r in ((b"a", rows[0]), (b"b", rows[1]))))

# Detection from the content: a little of everything.
put("reader-auto", "npy", npy("<f4", "(3, 3)", struct.pack("<9f", *flat)))
put("reader-auto", "idx", b"\x00\x00\x08\x02" + struct.pack(">2I", 2, 2) + bytes(range(4)))
put("reader-auto", "csv", b"a,b\n1,2\n")
put("reader-auto", "tsv", b"1\t2\n3\t4\n")
put("reader-auto", "w2v", b"2 2\nx 1 2\ny 3 4\n")
put("reader-auto", "gz-csv", gzip.compress(b"1,2\n3,4\n", mtime=0))

# Index targets: the valid golden files (quantized ones among them) and a few damaged ones
# (structure behind valid checksums, which only load's checks see, and a float16 code and an
# 8-bit row's range that only verify finds) when they exist.
golden = os.path.join(here, "..", "golden", "files")
damaged = ("nodes-cycle.copse", "label-data-no-nul.copse", "changes-graph-out-of-range.copse",
           "changes-angular-norm-nan.copse", "quant-f16-code-infinite.copse",
           "quant-i8-rows-step-negative.copse", "linked-graph-out-of-range.copse",
           "linked-angular-norm-wrong.copse", "filed-chain-link-to-itself.copse")
if os.path.isdir(golden):
    for name in sorted(os.listdir(golden)):
        if name.startswith("valid-") or name in damaged:
            for t in ("index", "verify"):
                d = os.path.join(corpus, t)
                os.makedirs(d, exist_ok=True)
                shutil.copy(os.path.join(golden, name), os.path.join(d, "golden-" + name))
