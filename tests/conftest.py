"""The order tests start in. `tasks.py test` runs two test files at a time (pytest-xdist,
--dist loadfile --no-loadscope-reorder), each file handed to whichever worker is free next in
this order: the files that take minutes go first, so that no long file starts when the others
are nearly done (in alphabetical order the asv history started at 252 s and ran alone to 384 s)."""

FIRST = ("test_asv_history.py", "test_cost.py", "test_asv_suite.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST))
