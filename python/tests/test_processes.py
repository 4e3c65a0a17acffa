"""Two processes saving and loading the same index file."""
import os
import subprocess
import sys
import textwrap

from copse import AnnoyIndex

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, *args):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                            cwd=PKG_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


BUILD_AND_SAVE = """
    import sys, numpy as np
    from copse import AnnoyIndex
    path, seed = sys.argv[1], int(sys.argv[2])
    X = np.random.default_rng(seed).normal(size=(3000, 16)).astype(np.float32)
    t = AnnoyIndex(16, "euclidean")
    t.add_items(None, X)
    t.build(10)
    t.save(path)
    print([t.get_nns_by_item(i, 10) for i in range(0, 3000, 300)])
"""

LOAD_AND_QUERY = """
    import sys
    from copse import AnnoyIndex
    u = AnnoyIndex(16, "euclidean")
    u.load(sys.argv[1])
    print([u.get_nns_by_item(i, 10) for i in range(0, 3000, 300)])
"""


def test_saved_in_one_process_loaded_in_others(tmp_path):
    path = tmp_path / "shared.ann"
    written = finish(run_python(BUILD_AND_SAVE, path, 1))
    readers = [run_python(LOAD_AND_QUERY, path) for _ in range(2)]
    here = AnnoyIndex(16, "euclidean")
    here.load(str(path))
    mine = str([here.get_nns_by_item(i, 10) for i in range(0, 3000, 300)]) + "\n"
    assert written == mine
    for r in readers:
        assert finish(r) == mine


RELOAD_LOOP = """
    import sys
    from copse import AnnoyIndex
    path, rounds = sys.argv[1], int(sys.argv[2])
    seen = set()
    for _ in range(rounds):
        u = AnnoyIndex(16, "euclidean")
        u.load(path)            # must never see a partial file
        assert u.get_n_items() == 3000 and u.get_n_trees() == 10
        ids = u.get_nns_by_item(0, 5)
        assert ids[0] == 0 and len(ids) == 5
        seen.add(tuple(ids))
        u.unload()
    print(len(seen))
"""

SAVE_LOOP = """
    import sys, numpy as np
    from copse import AnnoyIndex
    path, rounds = sys.argv[1], int(sys.argv[2])
    for seed in range(rounds):
        X = np.random.default_rng(seed).normal(size=(3000, 16)).astype(np.float32)
        t = AnnoyIndex(16, "euclidean")
        t.add_items(None, X)
        t.build(10)
        t.save(path)
    print("saved", rounds)
"""


def test_one_process_saves_while_another_loads(tmp_path):
    path = tmp_path / "busy.ann"
    finish(run_python(SAVE_LOOP, path, 1))
    writer = run_python(SAVE_LOOP, path, 15)
    reader = run_python(RELOAD_LOOP, path, 400)
    assert finish(writer).strip() == "saved 15"
    assert int(finish(reader)) >= 1
    leftovers = [p for p in os.listdir(tmp_path) if p != "busy.ann"]
    assert leftovers == []  # temporary files were renamed, not left behind
